"""Refresh an asset from Airflow, check it, then run the robot that reads it.

``build_settings`` computes today's settings; ``upload_settings`` puts them into the asset
``invoice-settings`` (created if missing; small content goes inline, large content is streamed);
``read_back_settings`` downloads the stored content; ``run_report`` starts ``proc-report`` with its
default work item and waits for it on the worker (sync mode, stopped after 30 minutes).

Needs the connection ``robocorp_default`` and a process ``proc-report``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_robocorp.operators import (
    AssetDownloadOperator,
    AssetUploadOperator,
    StartProcessRunOperator,
)

ASSET = "invoice-settings"

with DAG(
    dag_id="example_robocorp_asset_refresh",
    description="Airflow data -> Control Room asset -> robot run",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "robocorp"],
    doc_md=__doc__,
) as dag:

    @task
    def build_settings(ds: str) -> dict[str, Any]:
        """The settings the robot should use from today on."""
        return {"valid_from": ds, "currency": "EUR", "approval_limit": 5000}

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
        poll_interval=30,
        timeout=timedelta(minutes=30),
    )

    upload_settings >> read_back_settings
    check_settings(read_back_settings.output, settings) >> run_report
