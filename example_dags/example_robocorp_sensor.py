"""Wait for a process run started elsewhere (a schedule in Control Room, another DAG, a person).

Trigger with ``{"process_run_id": "..."}``. ``wait_for_run`` defers to the triggerer until the run
ends: it succeeds when the run is ``completed`` and fails, naming the failed work items, when it
is ``unresolved``. Its "Control Room" link opens the run. ``collect_outputs`` then reads what the
run produced.

Needs the connection ``robocorp_default``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.sensors import ProcessRunSensor

with DAG(
    dag_id="example_robocorp_sensor",
    description="Sensor on a process run started outside this DAG",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
    params={"process_run_id": Param("", type="string", minLength=1, description="The run to wait for.")},
    doc_md=__doc__,
) as dag:
    wait_for_run = ProcessRunSensor(
        task_id="wait_for_run",
        process_run_id="{{ params.process_run_id }}",
        deferrable=True,
        poke_interval=60,
        timeout=timedelta(hours=6),
    )

    @task
    def collect_outputs(params: dict[str, Any]) -> list[Any]:
        """The payloads of the run's output work items."""
        outputs = RobocorpHook().list_process_run_outputs(params["process_run_id"])
        return [output.get("payload") for output in outputs]

    wait_for_run >> collect_outputs()
