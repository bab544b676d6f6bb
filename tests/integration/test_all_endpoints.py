"""Every one of the hook's 51 endpoint methods, over real HTTP, against the emulator.

Each resource family has a scenario that creates, reads, lists (with a small ``limit`` so paging
follows the emulator's real ``next`` URLs across several pages), updates and deletes. The first
test runs each family on its own; the last runs them all on one hook and checks that the set of
hook methods called is exactly the endpoint table, and that every endpoint's route was answered 2xx.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_robocorp.exceptions import RobocorpNotFoundError
from airflow_provider_robocorp.hooks._endpoints import ENDPOINTS
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import endpoint_regex, fast_hook, hits, log_mark, pages_of, raises, settled_log, state_of


class Recorder:
    """Wraps a hook's endpoint methods on the instance and records the top-level calls."""

    def __init__(self, hook: RobocorpHook) -> None:
        self.called: list[str] = []
        self._depth = 0
        for name in ENDPOINTS:
            setattr(hook, name, self._wrap(name, getattr(hook, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self._depth == 0:
                self.called.append(name)
            self._depth += 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1

        return wrapper


# --- the families ---------------------------------------------------------------------------------


def workspace(hook: RobocorpHook, emu: Any) -> None:
    ws = hook.get_workspace()
    assert ws == {"id": "ws-emulator", "name": "Emulator Workspace",
                  "organization": {"id": "org-emulator", "name": "Emulator Org"}}


def assets(hook: RobocorpHook, emu: Any) -> None:
    created = [hook.create_asset(f"it-asset-{n}") for n in range(3)]
    assert all(a["payload"] == {"type": "empty"} for a in created)
    mark = log_mark(emu)
    listed = list(hook.list_assets(limit=1))
    assert [a["name"] for a in listed] == ["emulator-settings", "it-asset-0", "it-asset-1", "it-asset-2"]
    assert len(pages_of(settled_log(emu, mark), "list_assets")) == 4

    first = created[0]
    assert hook.get_asset(first["id"])["name"] == "it-asset-0"
    assert hook.get_asset("name:it-asset-0")["id"] == first["id"]
    # "update": new content, inline (base64) and through an upload URL
    inline = hook.create_asset_upload(first["id"], "text/plain", data="hello asset")
    assert inline["status"] == "completed" and "upload_url" not in inline
    assert hook.get_asset_upload(first["id"], inline["id"])["status"] == "completed"
    payload = hook.get_asset(first["id"])["payload"]
    assert payload["type"] == "url" and hook.download_presigned(payload["url"]) == b"hello asset"
    by_url = hook.create_asset_upload(created[1]["id"], "application/octet-stream")
    assert by_url["status"] == "pending" and by_url["upload_url"].startswith(emu.url + "/_files/")
    assert hook.get_asset_upload(created[1]["id"], by_url["id"])["status"] == "pending"

    for asset in created:
        assert hook.delete_asset(asset["id"]) == {"id": asset["id"], "deleted": True}
    with raises(RobocorpNotFoundError):
        hook.get_asset(first["id"])
    assert [a["name"] for a in state_of(emu, "assets")] == ["emulator-settings"]


def assistants(hook: RobocorpHook, emu: Any) -> None:
    made = [hook.create_assistant(f"it-assistant-{n}", "Nightly report", "pkg-emulator") for n in range(2)]
    mark = log_mark(emu)
    names = [a["name"] for a in hook.list_assistants(limit=1)]
    assert names == ["Invoice helper", "it-assistant-0", "it-assistant-1"]
    assert len(pages_of(settled_log(emu, mark), "list_assistants")) == 3
    got = hook.get_assistant(made[0]["id"])
    assert got["task"] == {"name": "Nightly report", "package_id": "pkg-emulator"}

    mark = log_mark(emu)
    runs = list(hook.list_assistant_runs("assistant-emulator", limit=1))
    assert [r["id"] for r in runs] == ["assistant-run-1", "assistant-run-2"]
    assert len(pages_of(settled_log(emu, mark), "list_assistant_runs")) == 2
    run = hook.get_assistant_run("assistant-run-2")
    assert run["state"] == "failed" and run["error"] == {"code": "USER_CANCELLED"}
    assert run["assistant"] == {"id": "assistant-emulator", "name": "Invoice helper"}


def processes(hook: RobocorpHook, emu: Any) -> None:
    emu.set_speed(0)
    mark = log_mark(emu)
    assert [p["id"] for p in hook.list_processes(limit=1)] == ["proc-invoices", "proc-report", "proc-slow"]
    assert len(pages_of(settled_log(emu, mark), "list_processes")) == 3
    process = hook.get_process("proc-invoices")
    assert [s["id"] for s in process["steps"]] == ["step-read-invoice", "step-book-invoice"]

    started = hook.start_process_run("proc-invoices", payloads=[{"invoice": n} for n in range(60)])
    assert started["started"] is True
    run_id = started["id"]
    integration = hook.start_process_run_for_integration("proc-report", {"source": "integration"})
    assert integration["started"] is True
    slow = hook.start_process_run("proc-slow")
    emu.advance(60)

    run = hook.get_process_run(run_id)
    assert run["state"] == "completed" and run["process"]["id"] == "proc-invoices"
    [item] = hook.list_work_items(process_run_id=integration["id"])
    assert hook.get_work_item(item["id"], include_data=True)["payload"] == {"source": "integration"}

    mark = log_mark(emu)
    all_runs = list(hook.list_process_runs(limit=1))
    assert {r["id"] for r in all_runs} == {run_id, integration["id"], slow["id"]}
    assert len(pages_of(settled_log(emu, mark), "list_process_runs")) == 3
    assert [r["id"] for r in hook.list_process_runs(process_id="proc-report", state="completed")] == [
        integration["id"]
    ]

    mark = log_mark(emu)
    outputs = list(hook.list_process_run_outputs(run_id, limit=25))
    assert sorted(o["payload"]["invoice"] for o in outputs) == list(range(60))
    assert all(o["payload"]["processed"] is True for o in outputs)
    assert len(pages_of(settled_log(emu, mark), "list_process_run_outputs")) == 3

    mark = log_mark(emu)
    step_runs = list(hook.list_step_runs(run_id, limit=1))
    assert [s["step"]["id"] for s in step_runs] == ["step-read-invoice", "step-book-invoice"]
    assert len(pages_of(settled_log(emu, mark), "list_step_runs")) == 2
    read, book = (hook.get_step_run(s["id"]) for s in step_runs)
    assert read["state"] == book["state"] == "completed"

    mark = log_mark(emu)
    artifacts = list(hook.list_step_run_artifacts(book["id"], limit=1))
    assert [a["name"] for a in artifacts] == ["output.log", "bookings.csv"]
    assert len(pages_of(settled_log(emu, mark), "list_step_run_artifacts")) == 2
    bookings = hook.get_step_run_artifact(book["id"], artifacts[1]["id"])
    assert hook.download_presigned(bookings["url"]) == b"invoice,status\nemulated,booked\n"

    # 60 items → 122 console lines: more than one page of the server's default size (100)
    mark = log_mark(emu)
    console = [m["message"] for m in hook.list_step_run_console_messages(read["id"])]
    assert len(console) == 122 and console[0].startswith("Step run started: Read invoice")
    assert console[-1] == "Step run completed: Read invoice"
    assert len(pages_of(settled_log(emu, mark), "list_step_run_console_messages")) == 2

    mark = log_mark(emu)
    events = [e["event_type"] for e in hook.list_step_run_events(read["id"], limit=50)]
    assert len(events) == 122 and events[0] == "step_run_started" and events[-1] == "step_run_completed"
    assert events.count("work_item_completed") == 60
    assert len(pages_of(settled_log(emu, mark), "list_step_run_events")) == 3

    # "update" of a run: stop it
    assert hook.get_process_run(slow["id"])["state"] == "in_progress"
    assert hook.stop_process_run(slow["id"], reason="integration test") == {"accepted": True}
    assert hook.get_process_run(slow["id"])["state"] == "unresolved"

    assert hook.delete_process_run(run_id) == {"id": run_id, "deleted": True}
    with raises(RobocorpNotFoundError):
        hook.get_process_run(run_id)
    assert run_id not in {r["id"] for r in state_of(emu, "process_runs")}


def task_packages(hook: RobocorpHook, emu: Any) -> None:
    seeded = hook.get_task_package("pkg-emulator")
    assert [t["name"] for t in seeded["tasks"]] == ["Process invoices", "Nightly report"]
    bundle = hook.download_presigned(seeded["download"]["url"])
    assert isinstance(bundle, bytes)
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        assert "Nightly report" in archive.read("robot.yaml").decode()

    created = hook.create_task_package("it-package")
    assert created["type"] == "zip" and created["download"] is None
    assert set(created["upload"]) == {"url", "form_data"}
    assert hook.get_task_package(created["id"])["name"] == "it-package"
    assert hook.delete_task_package(created["id"]) == {"id": created["id"], "deleted": True}
    with raises(RobocorpNotFoundError):
        hook.get_task_package(created["id"])


def webhooks(hook: RobocorpHook, emu: Any) -> None:
    made = [
        hook.create_webhook(f"https://example.invalid/hook/{n}", ["process_run.completed"], "proc-report")
        for n in range(3)
    ]
    assert all(len(w["secret"]) >= 32 for w in made)
    mark = log_mark(emu)
    listed = list(hook.list_webhooks(limit=2))
    assert [w["id"] for w in listed] == [w["id"] for w in made]
    assert all("secret" not in w for w in listed)
    assert len(pages_of(settled_log(emu, mark), "list_webhooks")) == 2
    got = hook.get_webhook(made[1]["id"])
    assert got["secret"] == made[1]["secret"] and got["endpoint"] == "https://example.invalid/hook/1"
    for webhook in made:
        assert hook.delete_webhook(webhook["id"]) == {"id": webhook["id"], "deleted": True}
    assert list(hook.list_webhooks()) == []


def work_items(hook: RobocorpHook, emu: Any, tmp_path: Any) -> None:
    emu.set_speed(0)
    created = [hook.create_work_item("proc-invoices", {"n": n}) for n in range(5)]
    assert all(i["state"] == "new" and i["payload"] == {"n": n} for n, i in enumerate(created))
    mark = log_mark(emu)
    listed = list(hook.list_work_items(process_id="proc-invoices", state="new", limit=2))
    assert [i["id"] for i in listed] == [i["id"] for i in created]
    assert len(pages_of(settled_log(emu, mark), "list_work_items")) == 3

    first = created[0]["id"]
    assert hook.get_work_item(first)["payload"] is None  # without include_data
    answer = hook.create_work_item_file(first, "raw.bin", 3)
    assert answer["upload"]["url"] == emu.url + "/_files/uploads" and answer["upload"]["form_data"]["key"]
    attachment = tmp_path / "notes.txt"
    attachment.write_bytes(b"some notes")
    hook.upload_work_item_file(first, attachment)
    assert hook.update_work_item_payload(first, {"n": 0, "fail": True}) == {"payload": {"n": 0, "fail": True}}
    full = hook.get_work_item(first, include_data=True)
    assert full["payload"] == {"n": 0, "fail": True}
    assert [(f["name"], f["size"]) for f in full["files"]] == [("notes.txt", 10)]

    for item in created[1:3]:
        hook.update_work_item_payload(item["id"], {"fail": True, "reason": "bad"})
    ids = [i["id"] for i in created]
    run_id = hook.start_process_run("proc-invoices", work_item_ids=ids)["id"]
    emu.advance(30)
    assert hook.get_process_run(run_id)["state"] == "unresolved"
    failed = [i["id"] for i in hook.list_work_items(process_run_id=run_id, state="failed")]
    assert failed == ids[:3]

    assert hook.batch_work_items("mark_as_done", [ids[1]]) == {"accepted": True}
    assert hook.batch_work_items("delete", [ids[2]]) == {"accepted": True}
    with raises(RobocorpNotFoundError):
        hook.get_work_item(ids[2])
    hook.update_work_item_payload(ids[0], {"n": 0})
    assert hook.batch_work_items("retry", [ids[0]]) == {"accepted": True}
    emu.advance(30)
    assert hook.get_process_run(run_id)["state"] == "completed"
    assert {i["state"] for i in hook.list_work_items(process_run_id=run_id)} == {"done"}


def workers(hook: RobocorpHook, emu: Any) -> None:
    mark = log_mark(emu)
    assert [w["id"] for w in hook.list_workers(limit=1)] == ["worker-emulator-1", "worker-emulator-2"]
    assert len(pages_of(settled_log(emu, mark), "list_workers")) == 2
    assert hook.get_worker("worker-emulator-1")["state"] == "idle"
    assert hook.update_worker("worker-emulator-1", "Renamed worker")["name"] == "Renamed worker"
    assert hook.get_worker("worker-emulator-1")["name"] == "Renamed worker"

    group = hook.create_worker_group("it-group")
    mark = log_mark(emu)
    assert [g["id"] for g in hook.list_worker_groups(limit=1)] == ["wg-emulator", group["id"]]
    assert len(pages_of(settled_log(emu, mark), "list_worker_groups")) == 2
    assert hook.update_worker_group(group["id"], "it-group renamed")["name"] == "it-group renamed"
    assert hook.get_worker_group(group["id"]) == {"id": group["id"], "name": "it-group renamed"}
    added = hook.add_worker_to_group(group["id"], "worker-emulator-2")
    assert {g["id"] for g in added["worker_groups"]} == {"wg-emulator", group["id"]}
    removed = hook.remove_worker_from_group(group["id"], "worker-emulator-2")
    assert [g["id"] for g in removed["worker_groups"]] == ["wg-emulator"]
    assert hook.delete_worker_group(group["id"]) == {"id": group["id"], "deleted": True}
    with raises(RobocorpNotFoundError):
        hook.get_worker_group(group["id"])

    assert hook.delete_worker("worker-emulator-2") == {"id": "worker-emulator-2", "deleted": True}
    assert [w["id"] for w in hook.list_workers()] == ["worker-emulator-1"]
    [seeded_group] = [g for g in state_of(emu, "worker_groups") if g["id"] == "wg-emulator"]
    assert seeded_group["worker_ids"] == ["worker-emulator-1"]


FAMILIES: dict[str, tuple[Callable[..., None], set[str]]] = {
    "workspace": (workspace, {"get_workspace"}),
    "assets": (assets, {"list_assets", "get_asset", "create_asset", "delete_asset", "create_asset_upload",
                        "get_asset_upload"}),
    "assistants": (assistants, {"list_assistants", "get_assistant", "create_assistant", "list_assistant_runs",
                                "get_assistant_run"}),
    "processes": (processes, {"list_processes", "get_process", "start_process_run",
                              "start_process_run_for_integration", "list_process_runs", "get_process_run",
                              "stop_process_run", "delete_process_run", "list_process_run_outputs",
                              "list_step_runs", "get_step_run", "list_step_run_artifacts",
                              "get_step_run_artifact", "list_step_run_console_messages",
                              "list_step_run_events", "list_work_items", "get_work_item"}),
    "task_packages": (task_packages, {"get_task_package", "create_task_package", "delete_task_package"}),
    "webhooks": (webhooks, {"list_webhooks", "get_webhook", "create_webhook", "delete_webhook"}),
    "work_items": (work_items, {"list_work_items", "get_work_item", "create_work_item", "create_work_item_file",
                                "update_work_item_payload", "batch_work_items", "start_process_run",
                                "get_process_run"}),
    "workers": (workers, {"list_workers", "get_worker", "update_worker", "delete_worker", "list_worker_groups",
                          "get_worker_group", "create_worker_group", "update_worker_group",
                          "delete_worker_group", "add_worker_to_group", "remove_worker_from_group"}),
}


def _run(family: str, hook: RobocorpHook, emu: Any, tmp_path: Any) -> None:
    scenario = FAMILIES[family][0]
    if family == "work_items":
        scenario(hook, emu, tmp_path)
    else:
        scenario(hook, emu)


def _assert_routes_answered(emu: Any, names: set[str]) -> None:
    log = settled_log(emu)
    for name in sorted(names):
        method = ENDPOINTS[name].method
        ok = [e for e in hits(log, method, endpoint_regex(name)) if 200 <= (e["status"] or 0) < 300]
        assert ok, f"{name}: no 2xx {method} {endpoint_regex(name)} in the emulator's request log"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family(family: str, emulator: Any, tmp_path: Any) -> None:
    hook = fast_hook()
    recorder = Recorder(hook)
    try:
        _run(family, hook, emulator, tmp_path)
    finally:
        hook.close()
    expected = FAMILIES[family][1]
    assert set(recorder.called) == expected
    _assert_routes_answered(emulator, expected)


def test_every_endpoint_method_against_the_emulator(emulator: Any, tmp_path: Any) -> None:
    """All families on one hook: the methods called are exactly the 51 of the endpoint table."""
    assert len(ENDPOINTS) == 51
    hook = fast_hook()
    recorder = Recorder(hook)
    try:
        for family in FAMILIES:
            emulator.set_speed(1.0)
            _run(family, hook, emulator, tmp_path)
    finally:
        hook.close()
    assert set(recorder.called) == set(ENDPOINTS)
    _assert_routes_answered(emulator, set(ENDPOINTS))
    # nothing went wrong on the wire: every API request was answered 2xx or an expected 404
    statuses = {e["status"] for e in settled_log(emulator)}
    assert statuses <= {200, 204, 404}, statuses
