"""Operators for work items: create one (with files), act on many (retry, mark as done, delete)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_robocorp.exceptions import (
    RobocorpConfigError,
    RobocorpError,
    RobocorpRequestMayHaveBeenAppliedError,
)
from airflow_provider_robocorp.hooks._endpoints import BATCH_OPERATIONS, WORK_ITEM_STATES
from airflow_provider_robocorp.hooks._pipeline import check_file_name, check_id, encode_json
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.operators._lineage import openlineage_module
from airflow_provider_robocorp.operators._run_control import created_item_candidates, reconcile

if TYPE_CHECKING:
    from airflow.sdk import Context

FilesArgument = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]]

#: Work item ids sent per batch request.
BATCH_SIZE = 100


def checked_files(files: FilesArgument | None) -> list[tuple[str, Path]]:
    """``(file name, path)`` pairs from a path, a list of paths or a ``{file name: path}`` mapping;
    every path must be a readable regular file and every name unique."""
    if files is None:
        return []
    if isinstance(files, str | os.PathLike):
        pairs = [(Path(files).name, Path(files))]
    elif isinstance(files, Mapping):
        pairs = [(str(name), Path(path)) for name, path in files.items()]
    elif isinstance(files, Iterable):
        pairs = [(Path(path).name, Path(path)) for path in files]
    else:
        raise RobocorpConfigError(f"files must be a path, a list of paths or a {{name: path}} dict, got {files!r}.")
    seen: set[str] = set()
    for name, path in pairs:
        check_file_name(name, f"the file name for {str(path)!r}", "files")
        if name in seen:
            raise RobocorpConfigError(f"files: the file name {name!r} is used twice; give unique names with a dict.")
        seen.add(name)
        if not path.is_file():
            raise RobocorpConfigError(f"files: {str(path)!r} does not exist or is not a regular file.")
        if not os.access(path, os.R_OK):
            raise RobocorpConfigError(f"files: {str(path)!r} is not readable by this process.")
    return pairs


class CreateWorkItemOperator(BaseOperator):
    """Create a work item in a process's input queue, attach files; returns the work item id.

    Everything is checked locally first (the payload is JSON-serialisable, every file exists and is
    readable), so a bad input creates nothing in Control Room. Each file is streamed to its
    pre-signed upload URL. If an upload fails, the error names the (already created) work item.

    :param process_id: the process whose input queue gets the item. Templated.
    :param payload: the JSON payload. Templated.
    :param files: a path, a list of paths, or ``{file name: path}``. Templated.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID. Templated.
    """

    template_fields: Sequence[str] = ("process_id", "payload", "files", "workspace_id", "robocorp_conn_id")
    template_fields_renderers = {"payload": "json"}
    ui_color = "#d8f0d2"

    def __init__(
        self,
        *,
        process_id: str,
        payload: Any = None,
        files: FilesArgument | None = None,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.process_id = process_id
        self.payload = payload
        self.files = files
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id
        self._created: tuple[str, str, list[str]] | None = None  # (workspace, item id, local files)

    def execute(self, context: Context) -> str:
        if not isinstance(self.process_id, str) or not self.process_id.strip():
            raise RobocorpConfigError(f"process_id must be a non-empty string, got {self.process_id!r}.")
        encode_json(self.payload, what="The work item payload")
        files = checked_files(self.files)
        hook = RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)
        item_id = self._create(hook)
        self._created = (hook.workspace_id, item_id, [str(path) for _, path in files])
        self.log.info("Created work item %s for process %s.", item_id, self.process_id)
        for name, path in files:
            try:
                hook.upload_work_item_file(item_id, path, file_name=name)
            except RobocorpError as err:
                # Batch operations only act on failed items, so the new item cannot be deleted again.
                raise RobocorpError(
                    f"Work item {item_id} was created in process {self.process_id}, but attaching {name!r} "
                    f"failed, so it is in the input queue without all its files: {err}"
                ) from err
            self.log.info("Attached %s (%d bytes) to work item %s.", name, path.stat().st_size, item_id)
        return item_id


    def _create(self, hook: RobocorpHook) -> str:
        """Create the work item once: after a lost answer, find the item the request created (same
        payload, waiting, created since just before) instead of creating a second one."""
        for _ in range(3):
            started_at = time.time()
            try:
                return str(hook.create_work_item(self.process_id, self.payload)["id"])
            except RobocorpRequestMayHaveBeenAppliedError as err:
                found = reconcile(self.log, "Create work item", f"process {self.process_id}", "work item", err,
                                  created_item_candidates(hook, self.process_id, self.payload, started_at))
                if found is not None:
                    return found
        raise RobocorpError(f"Create work item of {self.process_id} kept losing its answer; no item was created.")

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the local files in, the process's work item queue out."""
        ol = openlineage_module()
        if ol is None or self._created is None:
            return None
        workspace_id, item_id, files = self._created
        return ol.work_item_lineage(workspace_id, self.process_id, item_id, files)


class WorkItemBatchOperator(BaseOperator):
    """Retry, mark as done or delete work items; returns the ids acted on.

    Name the items explicitly (``work_item_ids``) or select them: all items of ``process_run_id``
    and/or ``process_id`` in ``state`` (default ``failed``), e.g. "retry every failed item of run X".
    An empty selection does nothing and returns ``[]``.

    :param operation: ``retry``, ``mark_as_done`` or ``delete``.
    :param work_item_ids: explicit ids. Templated.
    :param process_run_id: select the items of this run. Templated.
    :param process_id: select the items of this process. Templated.
    :param state: state of the selected items (ignored with explicit ids).
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID. Templated.
    """

    template_fields: Sequence[str] = ("work_item_ids", "process_run_id", "process_id", "workspace_id", "robocorp_conn_id")
    ui_color = "#d8f0d2"

    def __init__(
        self,
        *,
        operation: str,
        work_item_ids: Sequence[str] | None = None,
        process_run_id: str | None = None,
        process_id: str | None = None,
        state: str = "failed",
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if operation not in BATCH_OPERATIONS:
            raise RobocorpConfigError(f"operation={operation!r} is not valid; use one of: {', '.join(BATCH_OPERATIONS)}.")
        if state not in WORK_ITEM_STATES:
            raise RobocorpConfigError(f"state={state!r} is not valid; use one of: {', '.join(WORK_ITEM_STATES)}.")
        if (work_item_ids is None) == (process_run_id is None and process_id is None):
            raise RobocorpConfigError(
                "Pass either work_item_ids, or process_run_id and/or process_id to select the items by state."
            )
        self.operation = operation
        self.work_item_ids = work_item_ids
        self.process_run_id = process_run_id
        self.process_id = process_id
        self.state = state
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id

    def execute(self, context: Context) -> list[str]:
        hook = RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)
        if self.work_item_ids is not None:
            if isinstance(self.work_item_ids, str) or not isinstance(self.work_item_ids, Iterable):
                raise RobocorpConfigError(f"work_item_ids must be a list of ids, got {self.work_item_ids!r}.")
            ids = [check_id(item_id, f"work_item_ids[{index}]", "WorkItemBatchOperator")
                   for index, item_id in enumerate(self.work_item_ids)]  # a None stays an error, not "None"
        else:
            if not self.process_run_id and not self.process_id:  # e.g. a template rendered empty
                raise RobocorpConfigError("process_run_id and process_id are both empty; refusing to act on "
                                          f"every {self.state} work item of the workspace.")
            items = hook.list_work_items(process_id=self.process_id or None,
                                         process_run_id=self.process_run_id or None, state=self.state)
            ids = [str(item["id"]) for item in items]
        if not ids:
            self.log.info("No work items selected; nothing to %s.", self.operation)
            return []
        for start in range(0, len(ids), BATCH_SIZE):
            hook.batch_work_items(self.operation, ids[start : start + BATCH_SIZE])
        self.log.info("Batch %s accepted for %d work item(s): %s", self.operation, len(ids), ", ".join(ids[:20]))
        return ids
