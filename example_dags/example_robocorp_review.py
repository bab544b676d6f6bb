"""A person decides what happens to the failed work items of an unresolved run, inside Airflow.

``process_invoices`` runs the invoices robot and, with ``fail_on_unresolved=False``, lets an
unresolved run through; ``review_failures`` then shows its failed work items (exception type,
code, message) as a required action — *Retry failed items* (retried in place, then the run is
waited for again), *Mark them done*, or *Fail*. With no answer in 4 hours it fails. An invoice with
``"flaky": true`` fails once with an application exception (a retry fixes it); ``"fail": true``
is a business exception.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airflow_provider_robocorp.operators import StartProcessRunOperator
from airflow_provider_robocorp.operators.review import FAIL, ProcessRunReviewOperator

with DAG(
    dag_id="example_robocorp_review",
    description="Unresolved run -> human review of its failed work items -> retry / accept / fail",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    params={"invoices": Param([{"invoice": "INV-101", "flaky": True}, {"invoice": "INV-102"}], type="array")},
    tags=["example", "robocorp"],
    doc_md=__doc__,
):
    process_invoices = StartProcessRunOperator(
        task_id="process_invoices",
        process_id="proc-invoices",
        payloads="{{ params.invoices }}",
        fail_on_unresolved=False,
        poll_interval=float(os.environ.get("ROBOCORP_POLL_SECONDS", "30")),
    )

    ProcessRunReviewOperator(
        task_id="review_failures",
        process_run_id=process_invoices.output,
        default_choice=FAIL,
        response_timeout=timedelta(hours=4),
        poll_interval=float(os.environ.get("ROBOCORP_POLL_SECONDS", "30")),
    )
