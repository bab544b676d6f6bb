"""Correct and retry the work items a robot rejected, then wait for the resumed run.

``process_invoices`` runs ``proc-invoices`` on the ``invoices`` parameter and accepts an
``unresolved`` outcome (``fail_on_unresolved=False``). ``correct_rejected_items`` fixes the
payload of every item rejected with ``INVALID_INVOICE``; ``retry_failed_items`` retries all failed
items of that run (``WorkItemBatchOperator`` selecting by run and state), which resumes the run;
``wait_for_retried_run`` waits for it to end.

Needs the connection ``robocorp_default`` and a process ``proc-invoices``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, task

from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.operators import StartProcessRunOperator, WorkItemBatchOperator
from airflow_provider_robocorp.sensors import ProcessRunSensor

with DAG(
    dag_id="example_robocorp_retry_failed",
    description="Unresolved run -> correct rejected items -> retry them -> wait",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
    render_template_as_native_obj=True,
    params={
        "invoices": Param(
            [
                {"invoice": "INV-101", "supplier": "Paper & Co"},
                {"invoice": "INV-102", "supplier": "Unknown Ltd", "fail": True, "reason": "Supplier not in registry"},
            ],
            type="array",
        )
    },
    doc_md=__doc__,
) as dag:
    process_invoices = StartProcessRunOperator(
        task_id="process_invoices",
        process_id="proc-invoices",
        payloads="{{ params.invoices }}",
        fail_on_unresolved=False,
        deferrable=True,
        poll_interval=30,
        timeout=timedelta(hours=1),
    )

    @task
    def correct_rejected_items(process_run_id: str) -> list[str]:
        """Fix the payload of every item the robot rejected as an invalid invoice."""
        hook = RobocorpHook()
        corrected = []
        for item in hook.list_work_items(process_run_id=process_run_id, state="failed"):
            if (item.get("exception") or {}).get("code") != "INVALID_INVOICE":
                continue
            payload = hook.get_work_item(item["id"], include_data=True).get("payload") or {}
            fixed = {key: value for key, value in payload.items() if key not in ("fail", "reason")}
            hook.update_work_item_payload(item["id"], {**fixed, "supplier_checked": True})
            corrected.append(item["id"])
        print(f"Corrected {len(corrected)} rejected work item(s): {', '.join(corrected)}")
        return corrected

    retry_failed_items = WorkItemBatchOperator(
        task_id="retry_failed_items",
        operation="retry",
        process_run_id=process_invoices.output,
        state="failed",
    )

    wait_for_retried_run = ProcessRunSensor(
        task_id="wait_for_retried_run",
        process_run_id=process_invoices.output,
        deferrable=True,
        poke_interval=30,
        timeout=timedelta(hours=1),
    )

    correct_rejected_items(process_invoices.output) >> retry_failed_items >> wait_for_retried_run
