"""Operators of the Robocorp Control Room provider."""

from airflow_provider_robocorp.operators.assets import AssetDownloadOperator, AssetUploadOperator
from airflow_provider_robocorp.operators.process_runs import StartProcessRunOperator, StopProcessRunOperator
from airflow_provider_robocorp.operators.work_items import CreateWorkItemOperator, WorkItemBatchOperator

__all__ = [
    "AssetDownloadOperator",
    "AssetUploadOperator",
    "CreateWorkItemOperator",
    "StartProcessRunOperator",
    "StopProcessRunOperator",
    "WorkItemBatchOperator",
]
