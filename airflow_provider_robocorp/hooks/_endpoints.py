"""The Control Room API endpoints: the one table that knows methods, paths and permissions.

Rows follow ``reference/endpoints.tsv``. Paths are relative to the API base URL and written with
``{placeholders}``; ``workspace_id`` is always filled from the hook. ``idempotent`` says whether a
request may be repeated after its answer was lost (GET, DELETE and updates: yes; creations: no).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One API operation."""

    name: str
    method: str
    path: str
    permission: str | None
    idempotent: bool
    title: str

    @property
    def paginated(self) -> bool:
        return self.name.startswith("list_")


# name, method, path, permission, idempotent, title
_ROWS: tuple[tuple[str, str, str, str | None, bool, str], ...] = (
    ("get_workspace", "GET", "workspaces/{workspace_id}", None, True, "Get workspace"),
    ("list_assets", "GET", "workspaces/{workspace_id}/assets", "Assets.read_asset_storage_assets", True, "List assets"),
    ("get_asset", "GET", "workspaces/{workspace_id}/assets/{asset_id}", "Assets.read_asset_storage_assets", True, "Get asset"),
    ("create_asset", "POST", "workspaces/{workspace_id}/assets", "Assets.write_asset_storage_assets", False, "Create new asset"),
    ("delete_asset", "DELETE", "workspaces/{workspace_id}/assets/{asset_id}", "Assets.write_asset_storage_assets", True, "Delete asset"),
    ("create_asset_upload", "POST", "workspaces/{workspace_id}/assets/{asset_id}/uploads", "Assets.write_asset_storage_assets", False, "Create asset upload"),
    ("get_asset_upload", "GET", "workspaces/{workspace_id}/assets/{asset_id}/uploads/{upload_id}", "Assets.write_asset_storage_assets", True, "Get asset upload"),
    ("list_assistants", "GET", "workspaces/{workspace_id}/assistants", "Assistants.read_assistants", True, "List assistants"),
    ("get_assistant", "GET", "workspaces/{workspace_id}/assistants/{assistant_id}", "Assistants.read_assistants", True, "Get assistant"),
    ("create_assistant", "POST", "workspaces/{workspace_id}/assistants", "Assistants.write_assistants", False, "Create assistant"),
    ("list_assistant_runs", "GET", "workspaces/{workspace_id}/assistant-runs", "Assistants.read_assistants", True, "List assistant runs"),
    ("get_assistant_run", "GET", "workspaces/{workspace_id}/assistant-runs/{assistant_run_id}", "Assistants.read_assistants", True, "Get assistant run"),
    ("list_processes", "GET", "workspaces/{workspace_id}/processes", "Processes.read_processes", True, "List processes"),
    ("get_process", "GET", "workspaces/{workspace_id}/processes/{process_id}", "Processes.read_processes", True, "Get process"),
    ("start_process_run", "POST", "workspaces/{workspace_id}/processes/{process_id}/process-runs", "Processes.trigger_processes", False, "Start process run"),
    ("start_process_run_for_integration", "POST", "workspaces/{workspace_id}/processes/{process_id}/process-runs-integrations", "Processes.trigger_processes", False, "Start process run (for integrations)"),
    ("list_process_runs", "GET", "workspaces/{workspace_id}/process-runs", "Processes.read_runs", True, "List process runs"),
    ("get_process_run", "GET", "workspaces/{workspace_id}/process-runs/{process_run_id}", "Processes.read_processes", True, "Get process run"),
    ("stop_process_run", "POST", "workspaces/{workspace_id}/process-runs/{process_run_id}/stop", "Processes.trigger_processes", True, "Stop process run"),
    ("delete_process_run", "DELETE", "workspaces/{workspace_id}/process-runs/{process_run_id}", "Processes.read_runs", True, "Delete process run"),
    ("list_process_run_outputs", "GET", "workspaces/{workspace_id}/outputs", "Processes.read_work_items", True, "List process run outputs"),
    ("list_step_runs", "GET", "workspaces/{workspace_id}/step-runs", "Processes.read_processes", True, "List step runs"),
    ("get_step_run", "GET", "workspaces/{workspace_id}/step-runs/{step_run_id}", "Processes.read_runs", True, "Get step run"),
    ("list_step_run_artifacts", "GET", "workspaces/{workspace_id}/step-runs/{step_run_id}/artifacts", "Processes.read_run_outputs", True, "List step run artifacts"),
    ("get_step_run_artifact", "GET", "workspaces/{workspace_id}/step-runs/{step_run_id}/artifacts/{artifact_id}", "Processes.read_run_outputs", True, "Get step run artifact"),
    ("list_step_run_console_messages", "GET", "workspaces/{workspace_id}/step-runs/{step_run_id}/console-messages", "Processes.read_run_outputs", True, "List step run console messages"),
    ("list_step_run_events", "GET", "workspaces/{workspace_id}/step-runs/{step_run_id}/events", "Processes.read_run_outputs", True, "List step run events"),
    ("get_task_package", "GET", "workspaces/{workspace_id}/task-packages/{task_package_id}", "Tasks.read_task_packages", True, "Get task package"),
    ("create_task_package", "POST", "workspaces/{workspace_id}/task-packages", "Tasks.write_task_packages", False, "Create new task package"),
    ("delete_task_package", "DELETE", "workspaces/{workspace_id}/task-packages/{task_package_id}", "Tasks.write_task_packages", True, "Delete task package"),
    ("list_webhooks", "GET", "workspaces/{workspace_id}/webhooks", "Webhooks.read_webhooks", True, "List webhooks"),
    ("get_webhook", "GET", "workspaces/{workspace_id}/webhooks/{webhook_id}", "Webhooks.read_webhooks", True, "Get webhook"),
    ("create_webhook", "POST", "workspaces/{workspace_id}/webhooks", "Webhooks.write_webhooks", False, "Create process webhook"),
    ("delete_webhook", "DELETE", "workspaces/{workspace_id}/webhooks/{webhook_id}", "Webhooks.write_webhooks", True, "Delete webhook"),
    ("list_work_items", "GET", "workspaces/{workspace_id}/work-items", "Processes.read_work_items", True, "List work items"),
    ("get_work_item", "GET", "workspaces/{workspace_id}/work-items/{work_item_id}", "Processes.read_work_items", True, "Get work item"),
    ("create_work_item", "POST", "workspaces/{workspace_id}/work-items", "Processes.write_work_items", False, "Create work item"),
    ("create_work_item_file", "POST", "workspaces/{workspace_id}/work-items/{work_item_id}/files", "Processes.write_work_items", False, "Create work item file"),
    ("update_work_item_payload", "POST", "workspaces/{workspace_id}/work-items/{work_item_id}/payload", "Processes.write_work_items", True, "Update work item payload"),
    ("batch_work_items", "POST", "workspaces/{workspace_id}/work-items/batch", "Processes.write_work_items", False, "Retry, delete or mark work items as done"),
    ("list_workers", "GET", "workspaces/{workspace_id}/workers", "Workers.read_workers", True, "List workers"),
    ("get_worker", "GET", "workspaces/{workspace_id}/workers/{worker_id}", "Workers.read_workers", True, "Get worker"),
    ("update_worker", "POST", "workspaces/{workspace_id}/workers/{worker_id}", "Workers.write_workers", True, "Update worker"),
    ("delete_worker", "DELETE", "workspaces/{workspace_id}/workers/{worker_id}", "Workers.write_workers", True, "Delete worker"),
    ("list_worker_groups", "GET", "workspaces/{workspace_id}/worker-groups", "Workers.read_workers", True, "List worker groups"),
    ("get_worker_group", "GET", "workspaces/{workspace_id}/worker-groups/{worker_group_id}", "Workers.read_workers", True, "Get worker group"),
    ("create_worker_group", "POST", "workspaces/{workspace_id}/worker-groups", "Workers.write_workers", False, "Create worker group"),
    ("update_worker_group", "POST", "workspaces/{workspace_id}/worker-groups/{worker_group_id}", "Workers.write_workers", True, "Update worker group"),
    ("delete_worker_group", "DELETE", "workspaces/{workspace_id}/worker-groups/{worker_group_id}", "Workers.write_workers", True, "Delete worker group"),
    ("add_worker_to_group", "POST", "workspaces/{workspace_id}/worker-groups/{worker_group_id}/workers", "Workers.write_workers", True, "Add worker to worker group"),
    ("remove_worker_from_group", "DELETE", "workspaces/{workspace_id}/worker-groups/{worker_group_id}/workers/{worker_id}", "Workers.write_workers", True, "Remove worker from worker group"),
)

ENDPOINTS: dict[str, Endpoint] = {row[0]: Endpoint(*row) for row in _ROWS}

# Enumerations the API documents; validated locally before any request.
PROCESS_RUN_STATES = ("new", "in_progress", "completed", "unresolved", "stopping")
WORK_ITEM_STATES = ("new", "pending", "in_progress", "failed", "done")
STEP_RUN_STATES = ("new", "awaiting_worker", "in_progress", "completed", "failed")
BATCH_OPERATIONS = ("retry", "delete", "mark_as_done")
WEBHOOK_EVENTS = ("process_run.started", "process_run.completed", "process_run.unresolved")
CALLBACK_EVENTS = ("started", "completed", "unresolved")
HANDSHAKES = ("asana",)
