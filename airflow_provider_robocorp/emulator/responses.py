"""The API's 51 endpoints: parse the request, check the key, call the backend, answer JSON.

``ENDPOINTS`` is the route table (method, path, permission, handler) mirroring
``endpoints.tsv``; ``None`` as permission means any valid key will do. Handlers receive a
``Call`` (request + backend) and return a JSON-ready dict (or a ready ``Response``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import ApiError, BadRequest
from .models import EmulatorBackend, Page
from .validation import parse_json, validate

JSON = dict[str, Any]
API_PREFIX = "/api/v1"
DEFAULT_PAGE_SIZE = 100
#: Largest JSON request body accepted (413 beyond); env ROBOCORP_EMULATOR_MAX_JSON_BYTES overrides it.
MAX_JSON_BODY_BYTES = int(os.environ.get("ROBOCORP_EMULATOR_MAX_JSON_BYTES") or 10_000_000)
MAX_PAGE_SIZE = 1000


class JsonResponse(Response):
    """A compact JSON response (cheaper than re-validating through FastAPI)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Call:
    """One API call: the request, the backend, and helpers shared by handlers."""

    request: Request
    backend: EmulatorBackend
    response_headers: dict[str, str] = field(default_factory=dict)

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def required_query(self, name: str) -> str:
        value = self.query(name)
        if not value:
            raise BadRequest(f"Query parameter {name} is required")
        return value

    def enum_query(self, name: str, allowed: tuple[str, ...]) -> str | None:
        value = self.query(name)
        if value is not None and value not in allowed:
            raise BadRequest(f"Query parameter {name} must be one of {', '.join(allowed)}")
        return value

    @property
    def base_url(self) -> str:
        url = self.request.url
        return f"{url.scheme}://{url.netloc}"

    async def body(self, schema: str, *, allow_empty: bool = False) -> Any:
        limit = MAX_JSON_BODY_BYTES
        declared = self.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:  # refused before a byte of it is read
            raise ApiError(f"The JSON request body is larger than {limit} bytes", code="payload_too_large",
                           status=413)
        raw = await self.request.body()
        if len(raw) > limit:  # a chunked body has no Content-Length
            raise ApiError(f"The JSON request body is larger than {limit} bytes", code="payload_too_large",
                           status=413)
        return validate(schema, parse_json(raw, allow_empty=allow_empty))

    def window(self) -> tuple[int, int]:
        """``(offset, limit)`` from the ``cursor`` and ``limit`` query parameters."""
        limit = DEFAULT_PAGE_SIZE
        raw_limit = self.query("limit")
        if raw_limit is not None:
            try:
                number = float(raw_limit)
            except ValueError:
                raise BadRequest("limit must be a number") from None
            if not number.is_integer() or number < 1:
                raise BadRequest("limit must be a positive integer")
            limit = min(int(number), MAX_PAGE_SIZE)
        offset = 0
        cursor = self.query("cursor")
        if cursor:
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"])
            except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
                raise BadRequest("Invalid pagination cursor") from None
            if offset < 0:
                raise BadRequest("Invalid pagination cursor")
        return offset, limit

    def paginated(self, page: Page, offset: int, limit: int) -> JSON:
        """The documented list envelope with a full-URL ``next``."""
        data, has_more = page
        next_url = None
        if has_more:
            cursor = base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
            next_url = str(self.request.url.include_query_params(cursor=cursor))
        return {"next": next_url, "has_more": has_more, "data": data}


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    """One API operation; ``token_auth`` endpoints take the key from the ``token`` query."""

    method: str
    path: str
    permission: str | None
    name: str
    handler: Handler
    token_auth: bool = False


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str, path: str, permission: str | None, *, token_auth: bool = False
) -> Callable[[Handler], Handler]:
    """Register a handler for ``method API_PREFIX+path``."""

    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(
            Endpoint(method, API_PREFIX + path, permission, handler.__name__, handler, token_auth)
        )
        return handler

    return register


def make_endpoint(spec: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint: auth (401/404/403), then the handler; API errors become JSON.

    Errors use ``{"error": {"code", "message"}}``, except on ``token_auth`` endpoints, which
    answer with the API's other documented shape ``{"code", "message"}``.
    """

    async def handle(request: Request) -> Response:
        backend: EmulatorBackend = request.app.state.backend
        call = Call(request, backend)
        try:
            if spec.token_auth:
                key = backend.key_for_token(request.query_params.get("token"))
            else:
                key = backend.authenticate(request.headers.get("authorization"))
            backend.authorize(key, request.path_params["workspace_id"], spec.permission)
            result = await spec.handler(call)
        except ApiError as error:
            body = {"code": error.code, "message": error.message} if spec.token_auth else error.body()
            return JsonResponse(body, status_code=error.status, headers=call.response_headers)
        if isinstance(result, Response):
            return result
        return JsonResponse(result, headers=call.response_headers)

    handle.__name__ = spec.name
    return handle


WS = "/workspaces/{workspace_id}"
ASSETS_READ, ASSETS_WRITE = "Assets.read_asset_storage_assets", "Assets.write_asset_storage_assets"
ASSISTANTS_READ, ASSISTANTS_WRITE = "Assistants.read_assistants", "Assistants.write_assistants"
READ_PROCESSES, TRIGGER = "Processes.read_processes", "Processes.trigger_processes"
READ_RUNS, READ_OUTPUTS = "Processes.read_runs", "Processes.read_run_outputs"
READ_ITEMS, WRITE_ITEMS = "Processes.read_work_items", "Processes.write_work_items"
TASKS_READ, TASKS_WRITE = "Tasks.read_task_packages", "Tasks.write_task_packages"
HOOKS_READ, HOOKS_WRITE = "Webhooks.read_webhooks", "Webhooks.write_webhooks"
WORKERS_READ, WORKERS_WRITE = "Workers.read_workers", "Workers.write_workers"
RUN_STATES = ("new", "in_progress", "completed", "unresolved", "stopping")
ITEM_STATES = ("new", "pending", "in_progress", "failed", "done")


# -- workspace ------------------------------------------------------------------------------


@endpoint("GET", WS, None)
async def get_workspace(c: Call) -> JSON:
    return c.backend.get_workspace()


# -- assets -----------------------------------------------------------------------------------


@endpoint("GET", WS + "/assets", ASSETS_READ)
async def list_assets(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_assets(offset, limit), offset, limit)


@endpoint("GET", WS + "/assets/{asset_id}", ASSETS_READ)
async def get_asset(c: Call) -> JSON:
    return c.backend.get_asset(c.path("asset_id"), c.base_url)


@endpoint("POST", WS + "/assets", ASSETS_WRITE)
async def create_asset(c: Call) -> JSON:
    body = await c.body("create_asset")
    return c.backend.create_asset(body["name"], c.base_url)


@endpoint("DELETE", WS + "/assets/{asset_id}", ASSETS_WRITE)
async def delete_asset(c: Call) -> JSON:
    return c.backend.delete_asset(c.path("asset_id"))


@endpoint("POST", WS + "/assets/{asset_id}/uploads", ASSETS_WRITE)
async def create_asset_upload(c: Call) -> JSON:
    body = await c.body("create_asset_upload")
    return c.backend.create_asset_upload(
        c.path("asset_id"), body["content_type"], body.get("data"), c.base_url
    )


@endpoint("GET", WS + "/assets/{asset_id}/uploads/{upload_id}", ASSETS_WRITE)
async def get_asset_upload(c: Call) -> JSON:
    return c.backend.get_asset_upload(c.path("asset_id"), c.path("upload_id"))


# -- assistants -------------------------------------------------------------------------------


@endpoint("GET", WS + "/assistants", ASSISTANTS_READ)
async def list_assistants(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_assistants(offset, limit), offset, limit)


@endpoint("GET", WS + "/assistants/{assistant_id}", ASSISTANTS_READ)
async def get_assistant(c: Call) -> JSON:
    return c.backend.get_assistant(c.path("assistant_id"))


@endpoint("POST", WS + "/assistants", ASSISTANTS_WRITE)
async def create_assistant(c: Call) -> JSON:
    body = await c.body("create_assistant")
    return c.backend.create_assistant(body["name"], body["task"]["name"], body["task"]["package_id"])


@endpoint("GET", WS + "/assistant-runs", ASSISTANTS_READ)
async def list_assistant_runs(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_assistant_runs(c.query("assistant_id"), offset, limit), offset, limit)


@endpoint("GET", WS + "/assistant-runs/{assistant_run_id}", ASSISTANTS_READ)
async def get_assistant_run(c: Call) -> JSON:
    return c.backend.get_assistant_run(c.path("assistant_run_id"))


# -- processes and process runs ---------------------------------------------------------------


@endpoint("GET", WS + "/processes", READ_PROCESSES)
async def list_processes(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_processes(offset, limit), offset, limit)


@endpoint("GET", WS + "/processes/{process_id}", READ_PROCESSES)
async def get_process(c: Call) -> JSON:
    return c.backend.get_process(c.path("process_id"))


@endpoint("POST", WS + "/processes/{process_id}/process-runs", TRIGGER)
async def start_process_run(c: Call) -> JSON:
    body = await c.body("start_process_run", allow_empty=True)
    return c.backend.start_process_run(c.path("process_id"), body)


@endpoint("GET", WS + "/process-runs", READ_RUNS)
async def list_process_runs(c: Call) -> JSON:
    offset, limit = c.window()
    state = c.enum_query("state", RUN_STATES)
    return c.paginated(
        c.backend.list_process_runs(c.query("process_id"), state, offset, limit), offset, limit
    )


@endpoint("GET", WS + "/process-runs/{process_run_id}", READ_PROCESSES)
async def get_process_run(c: Call) -> JSON:
    return c.backend.get_process_run(c.path("process_run_id"))


@endpoint("POST", WS + "/process-runs/{process_run_id}/stop", TRIGGER)
async def stop_process_run(c: Call) -> JSON:
    body = await c.body("stop_process_run")
    return c.backend.stop_process_run(
        c.path("process_run_id"),
        body["set_remaining_work_items_as_done"],
        body["terminate_ongoing_activity_runs"],
        body.get("reason"),
    )


@endpoint("DELETE", WS + "/process-runs/{process_run_id}", READ_RUNS)
async def delete_process_run(c: Call) -> JSON:
    return c.backend.delete_process_run(c.path("process_run_id"))


@endpoint("GET", WS + "/outputs", READ_ITEMS)
async def list_process_run_outputs(c: Call) -> JSON:
    offset, limit = c.window()
    run_id = c.required_query("process_run_id")
    return c.paginated(c.backend.list_process_run_outputs(run_id, c.base_url, offset, limit), offset, limit)


# -- step runs ----------------------------------------------------------------------------------


@endpoint("GET", WS + "/step-runs", READ_PROCESSES)
async def list_step_runs(c: Call) -> JSON:
    offset, limit = c.window()
    run_id = c.required_query("process_run_id")
    return c.paginated(c.backend.list_step_runs(run_id, offset, limit), offset, limit)


@endpoint("GET", WS + "/step-runs/{step_run_id}", READ_RUNS)
async def get_step_run(c: Call) -> JSON:
    return c.backend.get_step_run(c.path("step_run_id"))


@endpoint("GET", WS + "/step-runs/{step_run_id}/artifacts", READ_OUTPUTS)
async def list_step_run_artifacts(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_step_run_artifacts(c.path("step_run_id"), offset, limit), offset, limit)


@endpoint("GET", WS + "/step-runs/{step_run_id}/artifacts/{artifact_id}", READ_OUTPUTS)
async def get_step_run_artifact(c: Call) -> JSON:
    return c.backend.get_step_run_artifact(c.path("step_run_id"), c.path("artifact_id"), c.base_url)


@endpoint("GET", WS + "/step-runs/{step_run_id}/console-messages", READ_OUTPUTS)
async def list_step_run_console_messages(c: Call) -> JSON:
    offset, limit = c.window()
    page = c.backend.list_step_run_console_messages(c.path("step_run_id"), offset, limit)
    return c.paginated(page, offset, limit)


@endpoint("GET", WS + "/step-runs/{step_run_id}/events", READ_OUTPUTS)
async def list_step_run_events(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_step_run_events(c.path("step_run_id"), offset, limit), offset, limit)


# -- task packages ------------------------------------------------------------------------------


@endpoint("GET", WS + "/task-packages/{task_package_id}", TASKS_READ)
async def get_task_package(c: Call) -> JSON:
    return c.backend.get_task_package(c.path("task_package_id"), c.base_url)


@endpoint("POST", WS + "/task-packages", TASKS_WRITE)
async def create_task_package(c: Call) -> JSON:
    body = await c.body("create_task_package")
    return c.backend.create_task_package(body["name"], c.base_url)


@endpoint("DELETE", WS + "/task-packages/{task_package_id}", TASKS_WRITE)
async def delete_task_package(c: Call) -> JSON:
    return c.backend.delete_task_package(c.path("task_package_id"))


# -- webhooks -----------------------------------------------------------------------------------


@endpoint("GET", WS + "/webhooks", HOOKS_READ)
async def list_webhooks(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_webhooks(offset, limit), offset, limit)


@endpoint("GET", WS + "/webhooks/{webhook_id}", HOOKS_READ)
async def get_webhook(c: Call) -> JSON:
    return c.backend.get_webhook(c.path("webhook_id"))


@endpoint("POST", WS + "/webhooks", HOOKS_WRITE)
async def create_webhook(c: Call) -> JSON:
    body = await c.body("create_webhook")
    return c.backend.create_webhook(body["endpoint"], body["enabled_events"], body["process"]["id"])


@endpoint("DELETE", WS + "/webhooks/{webhook_id}", HOOKS_WRITE)
async def delete_webhook(c: Call) -> JSON:
    return c.backend.delete_webhook(c.path("webhook_id"))


# -- work items ---------------------------------------------------------------------------------


@endpoint("GET", WS + "/work-items", READ_ITEMS)
async def list_work_items(c: Call) -> JSON:
    offset, limit = c.window()
    state = c.enum_query("state", ITEM_STATES)
    page = c.backend.list_work_items(c.query("process_id"), c.query("process_run_id"), state, offset, limit)
    return c.paginated(page, offset, limit)


@endpoint("POST", WS + "/work-items/batch", WRITE_ITEMS)
async def batch_work_items(c: Call) -> JSON:
    body = await c.body("batch_work_items")
    return c.backend.batch_work_items(body["batch_operation"], body["work_item_ids"])


@endpoint("GET", WS + "/work-items/{work_item_id}", READ_ITEMS)
async def get_work_item(c: Call) -> JSON:
    include = c.enum_query("include_data", ("true", "false", "1", "0")) in ("true", "1")
    return c.backend.get_work_item(c.path("work_item_id"), include, c.base_url)


@endpoint("POST", WS + "/work-items", WRITE_ITEMS)
async def create_work_item(c: Call) -> JSON:
    body = await c.body("create_work_item")
    return c.backend.create_work_item(body["process"]["id"], body.get("payload"), c.base_url)


@endpoint("POST", WS + "/work-items/{work_item_id}/files", WRITE_ITEMS)
async def create_work_item_file(c: Call) -> JSON:
    body = await c.body("create_work_item_file")
    return c.backend.create_work_item_file(
        c.path("work_item_id"), body["file_name"], int(body["file_size"]), c.base_url
    )


@endpoint("POST", WS + "/work-items/{work_item_id}/payload", WRITE_ITEMS)
async def update_work_item_payload(c: Call) -> JSON:
    body = await c.body("update_work_item_payload")
    return c.backend.update_work_item_payload(c.path("work_item_id"), body["payload"])


# -- workers and worker groups ------------------------------------------------------------------


@endpoint("GET", WS + "/workers", WORKERS_READ)
async def list_workers(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_workers(offset, limit), offset, limit)


@endpoint("GET", WS + "/workers/{worker_id}", WORKERS_READ)
async def get_worker(c: Call) -> JSON:
    return c.backend.get_worker(c.path("worker_id"))


@endpoint("POST", WS + "/workers/{worker_id}", WORKERS_WRITE)
async def update_worker(c: Call) -> JSON:
    body = await c.body("update_worker")
    return c.backend.update_worker(c.path("worker_id"), body["name"])


@endpoint("DELETE", WS + "/workers/{worker_id}", WORKERS_WRITE)
async def delete_worker(c: Call) -> JSON:
    return c.backend.delete_worker(c.path("worker_id"))


@endpoint("GET", WS + "/worker-groups", WORKERS_READ)
async def list_worker_groups(c: Call) -> JSON:
    offset, limit = c.window()
    return c.paginated(c.backend.list_worker_groups(offset, limit), offset, limit)


@endpoint("GET", WS + "/worker-groups/{worker_group_id}", WORKERS_READ)
async def get_worker_group(c: Call) -> JSON:
    return c.backend.get_worker_group(c.path("worker_group_id"))


@endpoint("POST", WS + "/worker-groups", WORKERS_WRITE)
async def create_worker_group(c: Call) -> JSON:
    body = await c.body("create_worker_group")
    return c.backend.create_worker_group(body["name"])


@endpoint("POST", WS + "/worker-groups/{worker_group_id}", WORKERS_WRITE)
async def update_worker_group(c: Call) -> JSON:
    body = await c.body("update_worker_group")
    return c.backend.update_worker_group(c.path("worker_group_id"), body["name"])


@endpoint("DELETE", WS + "/worker-groups/{worker_group_id}", WORKERS_WRITE)
async def delete_worker_group(c: Call) -> JSON:
    return c.backend.delete_worker_group(c.path("worker_group_id"))


@endpoint("POST", WS + "/worker-groups/{worker_group_id}/workers", WORKERS_WRITE)
async def add_worker_to_group(c: Call) -> JSON:
    body = await c.body("add_worker_to_group")
    return c.backend.add_worker_to_group(c.path("worker_group_id"), body["worker"]["id"])


@endpoint("DELETE", WS + "/worker-groups/{worker_group_id}/workers/{worker_id}", WORKERS_WRITE)
async def remove_worker_from_group(c: Call) -> JSON:
    return c.backend.remove_worker_from_group(c.path("worker_group_id"), c.path("worker_id"))


# -- the integration endpoint (token in the query, the other error shape) -----------------------


@endpoint("POST", WS + "/processes/{process_id}/process-runs-integrations", TRIGGER, token_auth=True)
async def start_process_run_for_integration(c: Call) -> JSON:
    """The request body becomes the run's input work item.

    With ``with_handshake=asana`` the request's ``X-Hook-Secret`` header is echoed back (an
    Asana handshake request may then have an empty body, taken as a ``null`` payload).
    """
    handshake = c.query("with_handshake")
    if handshake is not None and handshake != "asana":
        raise BadRequest("with_handshake must be 'asana'")
    secret = c.request.headers.get("x-hook-secret")
    if handshake == "asana" and secret is not None:
        c.response_headers["X-Hook-Secret"] = secret
    payload = parse_json(await c.request.body(), allow_empty=bool(c.response_headers))
    return c.backend.start_process_run_for_integration(c.path("process_id"), payload)
