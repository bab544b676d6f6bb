"""Push instead of poll: Control Room's signed webhook schedules this DAG within seconds.

The provider's api-server plugin answers ``POST <api-server>/robocorp/webhooks/<conn_id>``. It
checks ``x-rc-signature`` with the ``webhook_secret`` extra of the ``robocorp`` connection
``<conn_id>`` and, for a run of ``proc-report`` that ended, records an asset event on
``robocorp://<workspace_id>/processes/proc-report`` — which schedules this DAG.

Register the webhook once (Control Room answers with the secret to store in the connection)::

    from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

    hook = RobocorpHook("robocorp_default")
    created = hook.create_webhook(
        endpoint="https://airflow.example.com/robocorp/webhooks/robocorp_default",
        enabled_events=["process_run.completed", "process_run.unresolved"],
        process_id="proc-report",
    )
    # then: airflow connections add robocorp_default ... --conn-extra '{"webhook_secret": "<created["secret"]>"}'

A per-run callback (``StartProcessRunOperator(callback={"url": ..., "secret": ...})``) is received
the same way, with the secret in the same extra.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_robocorp.assets import process_asset

WORKSPACE_ID = os.environ.get("ROBOCORP_WORKSPACE_ID", "ws-emulator")

with DAG(
    dag_id="example_robocorp_webhook",
    description="Scheduled by Control Room's signed webhook when a report run ends",
    schedule=[process_asset(WORKSPACE_ID, "proc-report")],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
    doc_md=__doc__,
):

    @task
    def publish_report(triggering_asset_events: Any = None) -> list[str]:
        """The runs Control Room told us about."""
        runs = [str(event.extra.get("process_run_id")) for events in (triggering_asset_events or {}).values()
                for event in events]
        print(f"Control Room reported run(s) {runs}")
        return runs

    publish_report()
