"""Feed a robot invoices (payload + file each), run it without holding a worker slot, use its outputs.

``list_invoices`` turns the ``invoices`` parameter into work item arguments; one mapped
``create_work_items`` task per invoice creates the work item and attaches its CSV from
``example_dags/data``; ``process_invoices`` starts one process run with exactly those items and
waits for it in the triggerer; ``summarize`` reads the run's outputs from XCom. An invoice with
``"fail": true`` makes the emulated robot reject it (business exception ``INVALID_INVOICE``), and
the run's task fails naming the item, the exception and the robot's message.

Needs the connection ``robocorp_default`` (e.g. ``robocorp-emulator`` and its printed
``AIRFLOW_CONN_ROBOCORP_DEFAULT``) and a process ``proc-invoices``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_robocorp.operators import CreateWorkItemOperator, StartProcessRunOperator

DATA = Path(__file__).parent / "data"
PROCESS_ID = "proc-invoices"

with DAG(
    dag_id="example_robocorp_pipeline",
    description="Work items with files -> process run (deferred) -> outputs",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
    params={
        "invoices": Param(
            [
                {"invoice": "INV-001", "supplier": "Paper & Co", "file": "invoice-001.csv"},
                {"invoice": "INV-002", "supplier": "Chairs Ltd", "file": "invoice-002.csv"},
            ],
            type="array",
            description='Invoices to book: payload fields plus "file" (a CSV in example_dags/data).',
        )
    },
    doc_md=__doc__,
) as dag:

    @task
    def list_invoices(params: dict[str, Any]) -> list[dict[str, Any]]:
        """One set of CreateWorkItemOperator arguments per invoice."""
        return [
            {
                "payload": {key: value for key, value in invoice.items() if key != "file"},
                "files": [str(DATA / invoice["file"])],
            }
            for invoice in params["invoices"]
        ]

    work_items = CreateWorkItemOperator.partial(task_id="create_work_items", process_id=PROCESS_ID).expand_kwargs(
        list_invoices()
    )

    process_invoices = StartProcessRunOperator(
        task_id="process_invoices",
        process_id=PROCESS_ID,
        work_item_ids=work_items.output,
        deferrable=True,
        poll_interval=float(os.environ.get("ROBOCORP_POLL_SECONDS", "30")),  # seconds between status checks
        timeout=timedelta(hours=2),
        push_outputs=True,
    )

    @task
    def summarize(ti: Any) -> dict[str, Any]:
        """What the robot produced, from the outputs the run task pushed."""
        outputs = ti.xcom_pull(task_ids="process_invoices", key="outputs") or []
        booked = sorted(str(output["payload"].get("invoice")) for output in outputs)
        print(f"The robot booked {len(booked)} invoice(s): {', '.join(booked)}")
        return {"booked": booked, "files": sorted(f for output in outputs for f in output["files"])}

    process_invoices >> summarize()
