"""React to a robot finishing: a DAG scheduled by an ``AssetWatcher`` on the invoices process.

``ProcessRunEventTrigger`` watches ``proc-invoices`` from the triggerer and fires once for each of
its runs that ends ``completed`` — whoever started it (Control Room's scheduler, a person, another
system). Each event schedules ``example_robocorp_after_invoices``; the task sees the run in
``triggering_asset_events``. Runs that ended before the watcher started are not replayed; on
Airflow 3.3 a triggerer restart neither repeats nor misses a run (the watermark is in the asset
state store), and all watchers of a workspace share one poll.

``ROBOCORP_WORKSPACE_ID`` names the workspace (the emulator's by default) and
``ROBOCORP_WATCH_POLL_SECONDS`` the poll interval (60 s by default).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_robocorp.assets import process_uri
from airflow_provider_robocorp.triggers.process_run_events import ProcessRunEventTrigger

WORKSPACE_ID = os.environ.get("ROBOCORP_WORKSPACE_ID", "ws-emulator")

invoice_runs = Asset(
    uri=process_uri(WORKSPACE_ID, "proc-invoices"),
    watchers=[
        AssetWatcher(
            name="robocorp_invoice_runs",
            trigger=ProcessRunEventTrigger(
                process_id="proc-invoices",
                states=("completed",),
                poll_interval=float(os.environ.get("ROBOCORP_WATCH_POLL_SECONDS", "60")),
            ),
        )
    ],
)

with DAG(
    dag_id="example_robocorp_after_invoices",
    description="Runs when a run of the invoices robot completes, however it was started",
    schedule=[invoice_runs],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
    doc_md=__doc__,
):

    @task
    def book_invoices(triggering_asset_events: Any = None) -> list[str]:
        """The process runs that scheduled this DAG run."""
        runs = []
        for events in (triggering_asset_events or {}).values():
            for event in events:
                payload = (event.extra or {}).get("payload") or event.extra or {}
                runs.append(str(payload.get("process_run_id")))
                print(f"Process run {payload.get('process_run_id')} of {payload.get('process_id')} "
                      f"ended {payload.get('state')} at {payload.get('ended_at')}")
        return runs

    book_invoices()
