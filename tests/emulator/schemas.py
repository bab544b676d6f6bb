"""JSON schemas of every response, written from the API document (control-room-api-v1.txt).

Objects are closed (``additionalProperties: false``): the emulator must answer exactly the
documented fields. ``ENDPOINTS`` is the 51-endpoint table of ``endpoints.tsv``.
"""

from __future__ import annotations

from typing import Any

import jsonschema

Schema = dict[str, Any]

TIMESTAMP: Schema = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"}
STRING: Schema = {"type": "string"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
URL: Schema = {"type": "string", "pattern": r"^https?://[^/]+(:\d+)?/"}
ANY_JSON: Schema = {}


def obj(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def enum(*values: Any) -> Schema:
    return {"enum": list(values)}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def page(item: Schema) -> Schema:
    return obj({"next": nullable(URL), "has_more": BOOLEAN, "data": array(item)})


def ref(extra: dict[str, Schema] | None = None) -> Schema:
    return obj({"id": STRING, **(extra or {})})


DELETED = obj({"id": STRING, "deleted": enum(True)})
ERROR = obj({"error": obj({"code": STRING, "message": STRING})})
FLAT_ERROR = obj({"code": STRING, "message": STRING})

ASSET_PAYLOAD = {
    "oneOf": [
        obj({"type": enum("empty")}),
        obj({"type": enum("url"), "content_type": STRING, "url": URL}),
    ]
}
ASSET = obj({"id": STRING, "name": STRING, "payload": ASSET_PAYLOAD})
ASSET_UPLOAD = {
    "oneOf": [
        obj({"id": STRING, "status": enum("pending"), "content_type": STRING}),
        obj({"id": STRING, "status": enum("completed"), "content_type": STRING}),
        obj({"id": STRING, "status": enum("failed"), "content_type": STRING, "reason": STRING}),
    ]
}
ASSET_UPLOAD_CREATED = {
    "oneOf": [
        obj({"id": STRING, "status": enum("completed"), "content_type": STRING}),
        obj({"id": STRING, "status": enum("pending"), "content_type": STRING, "upload_url": URL}),
    ]
}
TASK = obj({"name": STRING, "package_id": STRING})
ASSISTANT = obj({"id": STRING, "name": STRING, "task": TASK, "created_at": TIMESTAMP})
ASSISTANT_RUN = obj(
    {
        "id": STRING,
        "state": enum("in_progress", "completed", "failed"),
        "error": nullable(obj({"code": STRING})),
        "started_at": TIMESTAMP,
        "ended_at": nullable(TIMESTAMP),
        "duration": nullable(NUMBER),
        "assistant": obj({"id": STRING, "name": STRING}),
    }
)
PROCESS_SUMMARY = obj({"id": STRING, "name": STRING, "created_at": TIMESTAMP})
PROCESS = obj(
    {
        "id": STRING,
        "name": STRING,
        "created_at": TIMESTAMP,
        "steps": array(obj({"id": STRING, "name": STRING})),
    }
)
RUN_STATE = enum("new", "in_progress", "completed", "unresolved", "stopping")
PROCESS_RUN = obj(
    {
        "id": STRING,
        "state": RUN_STATE,
        "created_at": TIMESTAMP,
        "started_at": nullable(TIMESTAMP),
        "ended_at": nullable(TIMESTAMP),
        "process": obj({"id": STRING, "name": STRING}),
        "started_by": obj(
            {
                "type": enum("api", "user", "schedule", "email"),
                "details": nullable(obj({"id": STRING, "first_name": STRING, "last_name": STRING})),
            }
        ),
        "duration": nullable(NUMBER),
    }
)
START_RUN = {"oneOf": [obj({"started": enum(False)}), obj({"started": enum(True), "id": STRING})]}
STARTED_RUN = obj({"started": enum(True), "id": STRING})
FILE = obj({"id": STRING, "size": NUMBER, "name": STRING, "download": obj({"url": URL})})
OUTPUT = obj(
    {
        "id": STRING,
        "created_at": TIMESTAMP,
        "process": ref(),
        "process_run": ref(),
        "payload": ANY_JSON,
        "files": array(FILE),
    }
)
STEP_RUN = obj(
    {
        "id": STRING,
        "state": enum("new", "awaiting_worker", "in_progress", "completed", "failed"),
        "state_updated_at": TIMESTAMP,
        "error": nullable(obj({"code": STRING})),
        "started_at": nullable(TIMESTAMP),
        "ended_at": nullable(TIMESTAMP),
        "duration": nullable(NUMBER),
        "step": obj({"id": STRING, "name": STRING}),
    }
)
ARTIFACT_SUMMARY = obj({"id": STRING, "name": STRING, "size": NUMBER})
ARTIFACT = obj({"id": STRING, "name": STRING, "size": NUMBER, "url": URL})
CONSOLE_MESSAGE = obj({"timestamp": TIMESTAMP, "message": STRING})
EVENT = obj({"timestamp": STRING, "event_type": STRING})
TASK_PACKAGE = obj(
    {
        "id": STRING,
        "name": STRING,
        "type": enum("zip"),
        "tasks": array(obj({"name": STRING})),
        "download": nullable(obj({"url": URL})),
        "upload": obj({"url": URL, "form_data": {"type": "object", "additionalProperties": STRING}}),
    }
)
WEBHOOK = obj(
    {
        "id": STRING,
        "process": nullable(ref()),
        "enabled_events": array(STRING),
        "secret": STRING,
        "endpoint": STRING,
    }
)
WEBHOOK_SUMMARY = obj(
    {"id": STRING, "process": nullable(ref()), "enabled_events": array(STRING), "endpoint": STRING}
)
ITEM_STATE = enum("new", "pending", "in_progress", "failed", "done")
EXCEPTION = nullable(
    obj(
        {
            "code": STRING,
            "type": enum("application", "business", "orchestrator", "unspecified"),
            "message": STRING,
        }
    )
)
WORK_ITEM_SUMMARY = obj(
    {
        "id": STRING,
        "created_at": TIMESTAMP,
        "state": ITEM_STATE,
        "state_updated_at": nullable(TIMESTAMP),
        "process": ref(),
        "process_run": nullable(ref()),
        "step": nullable(ref()),
        "step_run": nullable(ref()),
        "exception": EXCEPTION,
    }
)
WORK_ITEM = obj({**WORK_ITEM_SUMMARY["properties"], "payload": ANY_JSON, "files": array(FILE)})
WORK_ITEM_FILE_UPLOAD = obj({"upload": obj({"url": URL, "form_data": {"type": "object"}})})
WORKER = obj({"id": STRING, "name": STRING, "state": enum("offline", "idle", "busy")})
WORKER_GROUP = obj({"id": STRING, "name": STRING})
WORKER_LINKS = obj({"worker": ref(), "worker_groups": array(WORKER_GROUP)})
WORKSPACE = obj({"id": STRING, "name": STRING, "organization": obj({"id": STRING, "name": STRING})})

RESPONSES: dict[str, Schema] = {
    "get_workspace": WORKSPACE,
    "list_assets": page(obj({"id": STRING, "name": STRING})),
    "get_asset": ASSET,
    "create_asset": obj({"id": STRING, "name": STRING, "payload": obj({"type": enum("empty")})}),
    "delete_asset": DELETED,
    "create_asset_upload": ASSET_UPLOAD_CREATED,
    "get_asset_upload": ASSET_UPLOAD,
    "list_assistants": page(ASSISTANT),
    "get_assistant": ASSISTANT,
    "create_assistant": obj({"id": STRING, "name": STRING}),
    "list_assistant_runs": page(ASSISTANT_RUN),
    "get_assistant_run": ASSISTANT_RUN,
    "list_processes": page(PROCESS_SUMMARY),
    "get_process": PROCESS,
    "start_process_run": START_RUN,
    "start_process_run_for_integration": STARTED_RUN,
    "list_process_runs": page(PROCESS_RUN),
    "get_process_run": PROCESS_RUN,
    "stop_process_run": obj({"accepted": BOOLEAN}),
    "delete_process_run": DELETED,
    "list_process_run_outputs": page(OUTPUT),
    "list_step_runs": page(STEP_RUN),
    "get_step_run": STEP_RUN,
    "list_step_run_artifacts": page(ARTIFACT_SUMMARY),
    "get_step_run_artifact": ARTIFACT,
    "list_step_run_console_messages": page(CONSOLE_MESSAGE),
    "list_step_run_events": page(EVENT),
    "get_task_package": TASK_PACKAGE,
    "create_task_package": TASK_PACKAGE,
    "delete_task_package": DELETED,
    "list_webhooks": page(WEBHOOK_SUMMARY),
    "get_webhook": WEBHOOK,
    "create_webhook": WEBHOOK,
    "delete_webhook": DELETED,
    "list_work_items": page(WORK_ITEM_SUMMARY),
    "get_work_item": WORK_ITEM,
    "create_work_item": WORK_ITEM,
    "create_work_item_file": WORK_ITEM_FILE_UPLOAD,
    "update_work_item_payload": obj({"payload": ANY_JSON}),
    "batch_work_items": obj({"accepted": enum(True)}),
    "list_workers": page(WORKER),
    "get_worker": WORKER,
    "update_worker": WORKER,
    "delete_worker": DELETED,
    "list_worker_groups": page(WORKER_GROUP),
    "get_worker_group": WORKER_GROUP,
    "create_worker_group": WORKER_GROUP,
    "update_worker_group": WORKER_GROUP,
    "delete_worker_group": DELETED,
    "add_worker_to_group": WORKER_LINKS,
    "remove_worker_from_group": WORKER_LINKS,
}

ENDPOINTS: list[tuple[str, str, str | None, str]] = [
    ("GET", "/workspaces/{workspace_id}", None, "get_workspace"),
    ("GET", "/workspaces/{workspace_id}/assets", "Assets.read_asset_storage_assets", "list_assets"),
    ("GET", "/workspaces/{workspace_id}/assets/{asset_id}", "Assets.read_asset_storage_assets", "get_asset"),
    ("POST", "/workspaces/{workspace_id}/assets", "Assets.write_asset_storage_assets", "create_asset"),
    (
        "DELETE",
        "/workspaces/{workspace_id}/assets/{asset_id}",
        "Assets.write_asset_storage_assets",
        "delete_asset",
    ),
    (
        "POST",
        "/workspaces/{workspace_id}/assets/{asset_id}/uploads",
        "Assets.write_asset_storage_assets",
        "create_asset_upload",
    ),
    (
        "GET",
        "/workspaces/{workspace_id}/assets/{asset_id}/uploads/{upload_id}",
        "Assets.write_asset_storage_assets",
        "get_asset_upload",
    ),
    ("GET", "/workspaces/{workspace_id}/assistants", "Assistants.read_assistants", "list_assistants"),
    (
        "GET",
        "/workspaces/{workspace_id}/assistants/{assistant_id}",
        "Assistants.read_assistants",
        "get_assistant",
    ),
    ("POST", "/workspaces/{workspace_id}/assistants", "Assistants.write_assistants", "create_assistant"),
    ("GET", "/workspaces/{workspace_id}/assistant-runs", "Assistants.read_assistants", "list_assistant_runs"),
    (
        "GET",
        "/workspaces/{workspace_id}/assistant-runs/{assistant_run_id}",
        "Assistants.read_assistants",
        "get_assistant_run",
    ),
    ("GET", "/workspaces/{workspace_id}/processes", "Processes.read_processes", "list_processes"),
    ("GET", "/workspaces/{workspace_id}/processes/{process_id}", "Processes.read_processes", "get_process"),
    (
        "POST",
        "/workspaces/{workspace_id}/processes/{process_id}/process-runs",
        "Processes.trigger_processes",
        "start_process_run",
    ),
    (
        "POST",
        "/workspaces/{workspace_id}/processes/{process_id}/process-runs-integrations",
        "Processes.trigger_processes",
        "start_process_run_for_integration",
    ),
    ("GET", "/workspaces/{workspace_id}/process-runs", "Processes.read_runs", "list_process_runs"),
    (
        "GET",
        "/workspaces/{workspace_id}/process-runs/{process_run_id}",
        "Processes.read_processes",
        "get_process_run",
    ),
    (
        "POST",
        "/workspaces/{workspace_id}/process-runs/{process_run_id}/stop",
        "Processes.trigger_processes",
        "stop_process_run",
    ),
    (
        "DELETE",
        "/workspaces/{workspace_id}/process-runs/{process_run_id}",
        "Processes.read_runs",
        "delete_process_run",
    ),
    ("GET", "/workspaces/{workspace_id}/outputs", "Processes.read_work_items", "list_process_run_outputs"),
    ("GET", "/workspaces/{workspace_id}/step-runs", "Processes.read_processes", "list_step_runs"),
    ("GET", "/workspaces/{workspace_id}/step-runs/{step_run_id}", "Processes.read_runs", "get_step_run"),
    (
        "GET",
        "/workspaces/{workspace_id}/step-runs/{step_run_id}/artifacts",
        "Processes.read_run_outputs",
        "list_step_run_artifacts",
    ),
    (
        "GET",
        "/workspaces/{workspace_id}/step-runs/{step_run_id}/artifacts/{artifact_id}",
        "Processes.read_run_outputs",
        "get_step_run_artifact",
    ),
    (
        "GET",
        "/workspaces/{workspace_id}/step-runs/{step_run_id}/console-messages",
        "Processes.read_run_outputs",
        "list_step_run_console_messages",
    ),
    (
        "GET",
        "/workspaces/{workspace_id}/step-runs/{step_run_id}/events",
        "Processes.read_run_outputs",
        "list_step_run_events",
    ),
    (
        "GET",
        "/workspaces/{workspace_id}/task-packages/{task_package_id}",
        "Tasks.read_task_packages",
        "get_task_package",
    ),
    ("POST", "/workspaces/{workspace_id}/task-packages", "Tasks.write_task_packages", "create_task_package"),
    (
        "DELETE",
        "/workspaces/{workspace_id}/task-packages/{task_package_id}",
        "Tasks.write_task_packages",
        "delete_task_package",
    ),
    ("GET", "/workspaces/{workspace_id}/webhooks", "Webhooks.read_webhooks", "list_webhooks"),
    ("GET", "/workspaces/{workspace_id}/webhooks/{webhook_id}", "Webhooks.read_webhooks", "get_webhook"),
    ("POST", "/workspaces/{workspace_id}/webhooks", "Webhooks.write_webhooks", "create_webhook"),
    (
        "DELETE",
        "/workspaces/{workspace_id}/webhooks/{webhook_id}",
        "Webhooks.write_webhooks",
        "delete_webhook",
    ),
    ("GET", "/workspaces/{workspace_id}/work-items", "Processes.read_work_items", "list_work_items"),
    (
        "GET",
        "/workspaces/{workspace_id}/work-items/{work_item_id}",
        "Processes.read_work_items",
        "get_work_item",
    ),
    ("POST", "/workspaces/{workspace_id}/work-items", "Processes.write_work_items", "create_work_item"),
    (
        "POST",
        "/workspaces/{workspace_id}/work-items/{work_item_id}/files",
        "Processes.write_work_items",
        "create_work_item_file",
    ),
    (
        "POST",
        "/workspaces/{workspace_id}/work-items/{work_item_id}/payload",
        "Processes.write_work_items",
        "update_work_item_payload",
    ),
    ("POST", "/workspaces/{workspace_id}/work-items/batch", "Processes.write_work_items", "batch_work_items"),
    ("GET", "/workspaces/{workspace_id}/workers", "Workers.read_workers", "list_workers"),
    ("GET", "/workspaces/{workspace_id}/workers/{worker_id}", "Workers.read_workers", "get_worker"),
    ("POST", "/workspaces/{workspace_id}/workers/{worker_id}", "Workers.write_workers", "update_worker"),
    ("DELETE", "/workspaces/{workspace_id}/workers/{worker_id}", "Workers.write_workers", "delete_worker"),
    ("GET", "/workspaces/{workspace_id}/worker-groups", "Workers.read_workers", "list_worker_groups"),
    (
        "GET",
        "/workspaces/{workspace_id}/worker-groups/{worker_group_id}",
        "Workers.read_workers",
        "get_worker_group",
    ),
    ("POST", "/workspaces/{workspace_id}/worker-groups", "Workers.write_workers", "create_worker_group"),
    (
        "POST",
        "/workspaces/{workspace_id}/worker-groups/{worker_group_id}",
        "Workers.write_workers",
        "update_worker_group",
    ),
    (
        "DELETE",
        "/workspaces/{workspace_id}/worker-groups/{worker_group_id}",
        "Workers.write_workers",
        "delete_worker_group",
    ),
    (
        "POST",
        "/workspaces/{workspace_id}/worker-groups/{worker_group_id}/workers",
        "Workers.write_workers",
        "add_worker_to_group",
    ),
    (
        "DELETE",
        "/workspaces/{workspace_id}/worker-groups/{worker_group_id}/workers/{worker_id}",
        "Workers.write_workers",
        "remove_worker_from_group",
    ),
]

_VALIDATORS: dict[str, jsonschema.protocols.Validator] = {}


def validator(name: str) -> Any:
    if name not in _VALIDATORS:
        schema = {"ERROR": ERROR, "FLAT_ERROR": FLAT_ERROR}.get(name) or RESPONSES[name]
        jsonschema.Draft202012Validator.check_schema(schema)
        _VALIDATORS[name] = jsonschema.Draft202012Validator(schema)
    return _VALIDATORS[name]


def check(name: str, body: Any) -> Any:
    """Validate ``body`` against the documented response of operation ``name``; returns it."""
    validator(name).validate(body)
    return body


def check_error(body: Any, code: str | None = None, *, flat: bool = False) -> Any:
    """Validate an error body (``{"error": {...}}``, or ``{"code", "message"}`` when ``flat``)."""
    validator("FLAT_ERROR" if flat else "ERROR").validate(body)
    if code is not None:
        assert (body["code"] if flat else body["error"]["code"]) == code, body
    return body
