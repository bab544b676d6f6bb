"""Refresh an asset from Airflow, check it, then run the robot that reads it.

``build_settings`` computes today's settings; ``upload_settings`` puts them into the asset
``invoice-settings`` (created if missing; small content goes inline, large content is streamed);
``read_back_settings`` downloads the stored content; ``run_report`` starts ``proc-report`` with its
default work item and waits for it on the worker (sync mode, stopped after 30 minutes).

The upload records an asset event on ``robocorp://<workspace_id>/assets/invoice-settings``, so the
second DAG, ``example_robocorp_settings_changed``, is scheduled by Airflow whenever the settings
change. The workspace id is read from ``ROBOCORP_WORKSPACE_ID`` (DAG parsing never reads a
connection); it defaults to the emulator's.

Needs the connection ``robocorp_default`` and a process ``proc-report``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_robocorp.assets import control_room_asset
from airflow_provider_robocorp.operators import (
    AssetDownloadOperator,
    AssetUploadOperator,
    StartProcessRunOperator,
)

ASSET = "invoice-settings"
WORKSPACE_ID = os.environ.get("ROBOCORP_WORKSPACE_ID", "ws-emulator")

with DAG(
    dag_id="example_robocorp_asset_refresh",
    description="Airflow data -> Control Room asset -> robot run",
    schedule=None,  # trigger it (or give it a schedule); see the README on concurrent first asset events
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
    doc_md=__doc__,
) as dag:

    @task
    def build_settings(dag_run: Any = None) -> dict[str, Any]:
        """The settings the robot should use from this run on (a manual run has no logical date)."""
        when = dag_run.logical_date or dag_run.run_after
        return {"valid_from": when.date().isoformat(), "currency": "EUR", "approval_limit": 5000}

    settings = build_settings()

    upload_settings = AssetUploadOperator(task_id="upload_settings", asset_name=ASSET, data=settings)

    read_back_settings = AssetDownloadOperator(task_id="read_back_settings", asset_name=ASSET)

    @task
    def check_settings(stored: str, expected: dict[str, Any]) -> None:
        """Fail before the robot runs if Control Room holds anything but what was uploaded."""
        if json.loads(stored) != expected:
            raise ValueError(f"Asset {ASSET} holds {stored!r}, expected {expected!r}")

    run_report = StartProcessRunOperator(
        task_id="run_report",
        process_id="proc-report",
        deferrable=False,
        poll_interval=float(os.environ.get("ROBOCORP_POLL_SECONDS", "30")),  # seconds between status checks
        timeout=timedelta(minutes=30),
    )

    upload_settings >> read_back_settings
    check_settings(read_back_settings.output, settings) >> run_report


with DAG(
    dag_id="example_robocorp_settings_changed",
    description="Runs whenever the Control Room asset invoice-settings is updated from Airflow",
    schedule=[control_room_asset(WORKSPACE_ID, ASSET)],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
) as settings_changed:

    @task
    def announce_settings(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """What changed: the upload's asset id, upload id, content type and size."""
        changes = [dict(event.extra) for events in (triggering_asset_events or {}).values() for event in events]
        for change in changes:
            print(f"Asset {change.get('asset_name')} changed: upload {change.get('upload_id')}, "
                  f"{change.get('size')} bytes of {change.get('content_type')}")
        return changes

    announce_settings()
