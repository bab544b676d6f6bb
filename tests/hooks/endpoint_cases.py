"""The endpoint contract (``reference/endpoints.tsv``) and one table of hook calls pinned against it.

Every :class:`WireCase` names the hook method (= endpoint name in the tsv), the call's arguments,
the values that fill the tsv path's placeholders *as they must appear on the wire*, the exact
query string and the exact JSON body. Method and path template come from the tsv, not from the
provider's own endpoint table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .support import KEY

TSV = Path(__file__).resolve().parents[1] / "reference" / "endpoints.tsv"


@dataclass(frozen=True)
class TsvRow:
    method: str
    path: str  # "/workspaces/{workspace_id}/..."
    title: str
    permission: str | None
    name: str
    signature: str  # the text inside the parentheses


def _load_rows() -> dict[str, TsvRow]:
    rows: dict[str, TsvRow] = {}
    lines = TSV.read_text().splitlines()[1:]
    for line in filter(None, lines):
        method, path, title, permission, call = line.split("\t")
        match = re.fullmatch(r"(\w+)\((.*)\)", call.strip())
        assert match, f"unparsable hook method column: {call!r}"
        rows[match.group(1)] = TsvRow(
            method, path, title, None if permission == "-" else permission, match.group(1), match.group(2)
        )
    return rows


ROWS: dict[str, TsvRow] = _load_rows()


class _NoBody:
    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY: Any = _NoBody()


@dataclass(frozen=True)
class WireCase:
    id: str
    endpoint: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = NO_BODY
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True

    @property
    def paginated(self) -> bool:
        return self.endpoint.startswith("list_")


def _c(endpoint: str, *args: Any, id: str | None = None, path: dict[str, str] | None = None,  # noqa: A002
       query: dict[str, str] | None = None, body: Any = NO_BODY, headers: dict[str, str] | None = None,
       auth: bool = True, **kwargs: Any) -> WireCase:
    return WireCase(id or endpoint, endpoint, args, kwargs, path or {}, query or {}, body, headers or {}, auth)


CALLBACK = {"url": "https://airflow.example.com/robocorp-callback", "secret": "cb-secret"}
ALL_CALLBACK_EVENTS = ["started", "completed", "unresolved"]

CASES: list[WireCase] = [
    # workspace
    _c("get_workspace"),
    # assets
    _c("list_assets", limit=5, query={"limit": "5"}),
    _c("list_assets", id="list_assets-no-limit"),
    _c("get_asset", "as-1", path={"asset_id": "as-1"}),
    _c("get_asset", "name:monthly-report", id="get_asset-by-name", path={"asset_id": "name:monthly-report"}),
    _c("create_asset", "monthly-report", body={"name": "monthly-report"}),
    _c("delete_asset", "as-1", path={"asset_id": "as-1"}),
    _c("delete_asset", "name:old", id="delete_asset-by-name", path={"asset_id": "name:old"}),
    _c("create_asset_upload", "as-1", "text/plain", data=b"hello", path={"asset_id": "as-1"},
       body={"content_type": "text/plain", "data": "aGVsbG8="}),
    _c("create_asset_upload", "name:big", "application/pdf", id="create_asset_upload-presigned",
       path={"asset_id": "name:big"}, body={"content_type": "application/pdf"}),
    _c("get_asset_upload", "as-1", "up-1", path={"asset_id": "as-1", "upload_id": "up-1"}),
    # assistants
    _c("list_assistants", limit=2, query={"limit": "2"}),
    _c("get_assistant", "asst-1", path={"assistant_id": "asst-1"}),
    _c("create_assistant", "Invoice helper", "Read invoices", "pkg-1",
       body={"name": "Invoice helper", "task": {"name": "Read invoices", "package_id": "pkg-1"}}),
    _c("list_assistant_runs", assistant_id="asst-1", limit=3, query={"assistant_id": "asst-1", "limit": "3"}),
    _c("list_assistant_runs", id="list_assistant_runs-all"),
    _c("get_assistant_run", "ar-1", path={"assistant_run_id": "ar-1"}),
    # processes and runs
    _c("list_processes", limit=10, query={"limit": "10"}),
    _c("get_process", "p-1", path={"process_id": "p-1"}),
    _c("start_process_run", "p-1", id="start_process_run-default-work-item", path={"process_id": "p-1"}),
    _c("start_process_run", "p-1", id="start_process_run-payloads", path={"process_id": "p-1"},
       payloads=[{"invoice": 1}, {"invoice": 2}],
       body={"type": "with_payloads", "payloads": [{"invoice": 1}, {"invoice": 2}]}),
    _c("start_process_run", "p-1", id="start_process_run-work-item-ids", path={"process_id": "p-1"},
       work_item_ids=["wi-1", "wi-2"], body={"type": "with_work_item_ids", "work_item_ids": ["wi-1", "wi-2"]}),
    _c("start_process_run", "p-1", id="start_process_run-input-queue", path={"process_id": "p-1"},
       use_input_work_items=True, body={"type": "with_inputs"}),
    _c("start_process_run", "p-1", id="start_process_run-callback-default-events", path={"process_id": "p-1"},
       callback=dict(CALLBACK), body={"callback": {**CALLBACK, "callback_events": ALL_CALLBACK_EVENTS}}),
    _c("start_process_run", "p-1", id="start_process_run-payloads-and-callback", path={"process_id": "p-1"},
       payloads=[{"a": None}], callback={**CALLBACK, "callback_events": ["completed", "unresolved"]},
       body={"type": "with_payloads", "payloads": [{"a": None}],
             "callback": {**CALLBACK, "callback_events": ["completed", "unresolved"]}}),
    _c("start_process_run", "p-1", id="start_process_run-inputs-and-callback", path={"process_id": "p-1"},
       use_input_work_items=True, callback={**CALLBACK, "callback_events": ["started"]},
       body={"type": "with_inputs", "callback": {**CALLBACK, "callback_events": ["started"]}}),
    _c("start_process_run_for_integration", "p-1", {"task": {"gid": "123"}}, path={"process_id": "p-1"},
       query={"token": KEY}, body={"task": {"gid": "123"}}, auth=False),
    _c("start_process_run_for_integration", "p-1", {"events": []}, id="start_process_run_for_integration-asana",
       with_handshake="asana", hook_secret="asana-hook-secret", path={"process_id": "p-1"},
       query={"token": KEY, "with_handshake": "asana"}, body={"events": []},
       headers={"X-Hook-Secret": "asana-hook-secret"}, auth=False),
    _c("list_process_runs", process_id="p-1", state="completed", limit=4,
       query={"process_id": "p-1", "state": "completed", "limit": "4"}),
    _c("list_process_runs", id="list_process_runs-unfiltered"),
    _c("get_process_run", "pr-1", path={"process_run_id": "pr-1"}),
    _c("stop_process_run", "pr-1", path={"process_run_id": "pr-1"},
       body={"set_remaining_work_items_as_done": False, "terminate_ongoing_activity_runs": True}),
    _c("stop_process_run", "pr-1", id="stop_process_run-with-reason", path={"process_run_id": "pr-1"},
       set_remaining_work_items_as_done=True, terminate_ongoing_activity_runs=False, reason="Airflow task killed",
       body={"set_remaining_work_items_as_done": True, "terminate_ongoing_activity_runs": False,
             "reason": "Airflow task killed"}),
    _c("delete_process_run", "pr-1", path={"process_run_id": "pr-1"}),
    _c("list_process_run_outputs", "pr-1", limit=7, query={"process_run_id": "pr-1", "limit": "7"}),
    # step runs
    _c("list_step_runs", "pr-1", limit=2, query={"process_run_id": "pr-1", "limit": "2"}),
    _c("get_step_run", "sr-1", path={"step_run_id": "sr-1"}),
    _c("list_step_run_artifacts", "sr-1", limit=3, path={"step_run_id": "sr-1"}, query={"limit": "3"}),
    _c("get_step_run_artifact", "sr-1", "art-1", path={"step_run_id": "sr-1", "artifact_id": "art-1"}),
    _c("list_step_run_console_messages", "sr-1", path={"step_run_id": "sr-1"}),
    _c("list_step_run_events", "sr-1", limit=5, path={"step_run_id": "sr-1"}, query={"limit": "5"}),
    # task packages
    _c("get_task_package", "tp-1", path={"task_package_id": "tp-1"}),
    _c("create_task_package", "invoice-bot", body={"name": "invoice-bot", "type": "zip"}),
    _c("delete_task_package", "tp-1", path={"task_package_id": "tp-1"}),
    # webhooks
    _c("list_webhooks", limit=1, query={"limit": "1"}),
    _c("get_webhook", "wh-1", path={"webhook_id": "wh-1"}),
    _c("create_webhook", "https://airflow.example.com/hook", ["process_run.completed", "process_run.unresolved"],
       "p-1", body={"endpoint": "https://airflow.example.com/hook",
                    "enabled_events": ["process_run.completed", "process_run.unresolved"],
                    "process": {"id": "p-1"}}),
    _c("delete_webhook", "wh-1", path={"webhook_id": "wh-1"}),
    # work items
    _c("list_work_items", process_id="p-1", process_run_id="pr-1", state="failed", limit=9,
       query={"process_id": "p-1", "process_run_id": "pr-1", "state": "failed", "limit": "9"}),
    _c("list_work_items", id="list_work_items-unfiltered"),
    _c("get_work_item", "wi-1", path={"work_item_id": "wi-1"}),
    _c("get_work_item", "wi-1", id="get_work_item-include-data", include_data=True, path={"work_item_id": "wi-1"},
       query={"include_data": "true"}),
    _c("create_work_item", "p-1", {"invoice": {"id": 7, "amount": 12.5}},
       body={"process": {"id": "p-1"}, "payload": {"invoice": {"id": 7, "amount": 12.5}}}),
    _c("create_work_item", "p-1", id="create_work_item-null-payload", body={"process": {"id": "p-1"}, "payload": None}),
    _c("create_work_item_file", "wi-1", "report.csv", 1234, path={"work_item_id": "wi-1"},
       body={"file_name": "report.csv", "file_size": 1234}),
    _c("update_work_item_payload", "wi-1", {"status": "checked"}, path={"work_item_id": "wi-1"},
       body={"payload": {"status": "checked"}}),
    _c("batch_work_items", "retry", ["wi-1", "wi-2"], body={"batch_operation": "retry", "work_item_ids": ["wi-1", "wi-2"]}),
    _c("batch_work_items", "mark_as_done", ["wi-3"], id="batch_work_items-mark-as-done",
       body={"batch_operation": "mark_as_done", "work_item_ids": ["wi-3"]}),
    # workers and groups
    _c("list_workers", limit=3, query={"limit": "3"}),
    _c("get_worker", "w-1", path={"worker_id": "w-1"}),
    _c("update_worker", "w-1", "worker-east", path={"worker_id": "w-1"}, body={"name": "worker-east"}),
    _c("delete_worker", "w-1", path={"worker_id": "w-1"}),
    _c("list_worker_groups", limit=3, query={"limit": "3"}),
    _c("get_worker_group", "g-1", path={"worker_group_id": "g-1"}),
    _c("create_worker_group", "east", body={"name": "east"}),
    _c("update_worker_group", "g-1", "west", path={"worker_group_id": "g-1"}, body={"name": "west"}),
    _c("delete_worker_group", "g-1", path={"worker_group_id": "g-1"}),
    _c("add_worker_to_group", "g-1", "w-1", path={"worker_group_id": "g-1"}, body={"worker": {"id": "w-1"}}),
    _c("remove_worker_from_group", "g-1", "w-1", path={"worker_group_id": "g-1", "worker_id": "w-1"}),
]

#: One plain call per endpoint (the first case of each), for tests that go over every endpoint.
FIRST_CASE: dict[str, WireCase] = {}
for _case in CASES:
    FIRST_CASE.setdefault(_case.endpoint, _case)


def expected_path(case: WireCase, workspace_id: str, prefix: str = "/api/v1") -> str:
    return prefix + ROWS[case.endpoint].path.format(workspace_id=workspace_id, **case.path_params)


def call(hook: Any, case: WireCase) -> Any:
    """Invoke the case on the hook; list iterators are drained."""
    result = getattr(hook, case.endpoint)(*case.args, **case.kwargs)
    return list(result) if case.paginated else result
