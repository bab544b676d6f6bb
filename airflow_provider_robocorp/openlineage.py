"""OpenLineage facets of the operators (needs ``apache-airflow-providers-openlineage``: the
``openlineage`` extra). The operators import this module only when Airflow's OpenLineage listener
asks them for lineage; without the provider it is never imported and nothing changes.

Datasets use the namespace ``robocorp://<workspace_id>`` and the names of the ``robocorp://``
asset URIs: ``processes/<process_id>`` (a process's runs), ``processes/<process_id>/work-items``
(its work item queue) and ``assets/<asset_name>`` (a Control Room asset); local files are
``file://<host>`` datasets. The process is the job (``robocorp_process`` job facet), the run
carries the Control Room ids and the run URL (``robocorp_process_run`` run facet, plus the
standard ``externalQuery``), and an unresolved run adds the standard ``errorMessage`` facet.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import attr
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.generated.base import Dataset, JobFacet, RunFacet
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.external_query_run import ExternalQueryRunFacet

SCHEMA_BASE = "https://github.com/robocorp/airflow-provider-robocorp/blob/main/docs/openlineage"


@attr.define
class RobocorpProcessJobFacet(JobFacet):
    """The Control Room process this task drives."""

    workspaceId: str  # noqa: N815
    processId: str  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/RobocorpProcessJobFacet.json"


@attr.define
class RobocorpProcessRunFacet(RunFacet):
    """The Control Room ids of what this task did, and where to see it."""

    workspaceId: str  # noqa: N815
    processId: str | None = attr.field(default=None)  # noqa: N815
    processRunId: str | None = attr.field(default=None)  # noqa: N815
    processRunUrl: str | None = attr.field(default=None)  # noqa: N815
    state: str | None = attr.field(default=None)
    workItemIds: list[str] | None = attr.field(default=None)  # noqa: N815
    assetId: str | None = attr.field(default=None)  # noqa: N815
    uploadId: str | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/RobocorpProcessRunFacet.json"


def namespace(workspace_id: str) -> str:
    return f"robocorp://{workspace_id}"


def process_dataset(workspace_id: str, process_id: str) -> Dataset:
    return Dataset(namespace=namespace(workspace_id), name=f"processes/{process_id}")


def work_item_queue_dataset(workspace_id: str, process_id: str) -> Dataset:
    return Dataset(namespace=namespace(workspace_id), name=f"processes/{process_id}/work-items")


def asset_dataset(workspace_id: str, asset_name: str) -> Dataset:
    return Dataset(namespace=namespace(workspace_id), name=f"assets/{asset_name}")


def file_dataset(path: str | Path) -> Dataset:
    return Dataset(namespace=f"file://{socket.getfqdn()}", name=str(Path(path).resolve()))


def process_run_lineage(
    workspace_id: str, process_id: str, *, run_id: str | None, run_url: str | None, state: str | None,
    work_item_ids: list[str] | None = None, error: str | None = None,
) -> OperatorLineage:
    """A process run: its work item queue in, the process's runs out, the process as the job."""
    run_facets: dict[str, Any] = {"robocorp_process_run": RobocorpProcessRunFacet(
        workspaceId=workspace_id, processId=process_id, processRunId=run_id, processRunUrl=run_url, state=state,
        workItemIds=work_item_ids)}
    if run_id:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=run_id, source=run_url or namespace(workspace_id))
    if error:
        run_facets["errorMessage"] = ErrorMessageRunFacet(message=error, programmingLanguage="robot")
    return OperatorLineage(
        inputs=[work_item_queue_dataset(workspace_id, process_id)],
        outputs=[process_dataset(workspace_id, process_id)],
        run_facets=run_facets,
        job_facets={"robocorp_process": RobocorpProcessJobFacet(workspaceId=workspace_id, processId=process_id)},
    )


def work_item_lineage(workspace_id: str, process_id: str, work_item_id: str | None,
                      files: list[str] | None = None) -> OperatorLineage:
    """A work item created: local files in, the process's work item queue out."""
    return OperatorLineage(
        inputs=[file_dataset(f) for f in files or []],
        outputs=[work_item_queue_dataset(workspace_id, process_id)],
        run_facets={"robocorp_process_run": RobocorpProcessRunFacet(
            workspaceId=workspace_id, processId=process_id, workItemIds=[work_item_id] if work_item_id else None)},
        job_facets={"robocorp_process": RobocorpProcessJobFacet(workspaceId=workspace_id, processId=process_id)},
    )


def asset_lineage(workspace_id: str, asset_name: str, *, upload: bool, asset_id: str | None = None,
                  upload_id: str | None = None, local_path: str | None = None) -> OperatorLineage:
    """An asset upload (local file in, asset out) or download (asset in, local file out)."""
    asset = asset_dataset(workspace_id, asset_name)
    local = [file_dataset(local_path)] if local_path else []
    facets = {"robocorp_process_run": RobocorpProcessRunFacet(workspaceId=workspace_id, assetId=asset_id,
                                                              uploadId=upload_id)}
    if upload:
        return OperatorLineage(inputs=local, outputs=[asset], run_facets=facets)
    return OperatorLineage(inputs=[asset], outputs=local, run_facets=facets)
