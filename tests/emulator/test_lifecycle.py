"""Process runs over emulated time: states, steps, outcome rules, start modes, stop, batch."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from . import schemas
from .conftest import Api, run_to_end, start_run, upload_work_item_file


@pytest.fixture
def frozen(emu: Any) -> Any:
    """Emulated time stands still unless the test advances it."""
    emu.set_speed(0)
    return emu


def items_of(api: Api, run_id: str) -> list[dict[str, Any]]:
    return api.call("list_work_items", params={"process_run_id": run_id})["data"]


def item(api: Api, item_id: str) -> dict[str, Any]:
    return api.call("get_work_item", work_item_id=item_id, params={"include_data": "true"})


def step_runs(api: Api, run_id: str) -> list[dict[str, Any]]:
    return api.call("list_step_runs", params={"process_run_id": run_id})["data"]


def test_run_flows_items_through_the_steps_over_time(api: Api, frozen: Any) -> None:
    run_id = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [{"n": 1}, {"n": 2}]})
    run = api.call("get_process_run", process_run_id=run_id)
    assert run["state"] == "new" and run["started_at"] is None and run["duration"] is None
    assert run["process"] == {"id": "proc-invoices", "name": "Process invoices"}
    assert run["started_by"] == {"type": "api", "details": None}
    first, second = (i["id"] for i in items_of(api, run_id))
    assert [i["state"] for i in items_of(api, run_id)] == ["pending", "pending"]
    assert step_runs(api, run_id) == []

    frozen.advance(0.1)
    run = api.call("get_process_run", process_run_id=run_id)
    assert run["state"] == "in_progress" and run["started_at"] is not None
    assert (item(api, first)["state"], item(api, second)["state"]) == ("in_progress", "pending")
    [read] = step_runs(api, run_id)
    assert read["state"] == "in_progress" and read["step"]["name"] == "Read invoice"
    assert item(api, first)["step_run"] == {"id": read["id"]}
    assert item(api, first)["step"] == {"id": "step-read-invoice"}

    frozen.advance(0.3)
    one, two = item(api, first), item(api, second)
    assert (one["state"], one["step"]["id"]) == ("in_progress", "step-book-invoice")
    assert (two["state"], two["step"]["id"]) == ("in_progress", "step-read-invoice")

    frozen.advance(0.3)
    assert item(api, first)["state"] == "done"
    assert [s["state"] for s in step_runs(api, run_id)] == ["completed", "in_progress"]

    frozen.advance(0.3)
    run = api.call("get_process_run", process_run_id=run_id)
    assert run["state"] == "completed" and run["duration"] == pytest.approx(0.9)
    assert run["ended_at"] > run["started_at"] > run["created_at"]
    assert [s["state"] for s in step_runs(api, run_id)] == ["completed", "completed"]
    outputs = api.call("list_process_run_outputs", params={"process_run_id": run_id})["data"]
    assert sorted(o["payload"]["n"] for o in outputs) == [1, 2]
    assert all(o["payload"]["processed"] is True and o["process_run"] == {"id": run_id} for o in outputs)


def test_step_runs_have_console_messages_events_and_artifacts(api: Api, emu: Any) -> None:
    run_id = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [{"n": 1}]})
    run_to_end(api, emu, run_id)
    [item_id] = [i["id"] for i in items_of(api, run_id)]
    read, book = step_runs(api, run_id)
    messages = [
        m["message"] for m in api.call("list_step_run_console_messages", step_run_id=read["id"])["data"]
    ]
    assert f"Processing work item {item_id}" in messages and f"Work item {item_id} done" in messages
    events = [e["event_type"] for e in api.call("list_step_run_events", step_run_id=read["id"])["data"]]
    assert events == ["step_run_started", "work_item_started", "work_item_completed", "step_run_completed"]
    assert read["duration"] == pytest.approx(0.3) and read["error"] is None
    artifacts = api.call("list_step_run_artifacts", step_run_id=book["id"])["data"]
    by_name = {a["name"]: a for a in artifacts}
    log = api.call("get_step_run_artifact", step_run_id=book["id"], artifact_id=by_name["output.log"]["id"])
    text = requests.get(log["url"], timeout=10).text
    assert f"Processing work item {item_id}" in text and len(text.encode()) == log["size"]
    csv = api.call("get_step_run_artifact", step_run_id=book["id"], artifact_id=by_name["bookings.csv"]["id"])
    assert requests.get(csv["url"], timeout=10).content == b"invoice,status\nemulated,booked\n"
    messages_page = api.call("list_step_run_console_messages", step_run_id=read["id"], params={"limit": 2})
    assert len(messages_page["data"]) == 2 and messages_page["has_more"] is True


def test_outcome_rules_fail_work_items_with_exceptions(api: Api, emu: Any) -> None:
    payloads = [{"n": 1}, {"fail": True, "reason": "Missing VAT number"}, {"fail": True}, {"crash": True}]
    run_id = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": payloads})
    run = run_to_end(api, emu, run_id)
    assert run["state"] == "unresolved"
    by_payload = {
        json.dumps(item(api, i["id"])["payload"], sort_keys=True): item(api, i["id"])
        for i in items_of(api, run_id)
    }
    ok = by_payload['{"n": 1}']
    assert ok["state"] == "done" and ok["exception"] is None
    vat = by_payload['{"fail": true, "reason": "Missing VAT number"}']
    assert vat["state"] == "failed" and vat["step"] == {"id": "step-read-invoice"}
    assert vat["exception"] == {
        "code": "INVALID_INVOICE",
        "type": "business",
        "message": "Missing VAT number",
    }
    assert by_payload['{"fail": true}']["exception"]["message"] == "Invoice rejected by robot"
    crash = by_payload['{"crash": true}']
    assert crash["step"] == {"id": "step-book-invoice"}
    assert crash["exception"] == {
        "code": "BOOKING_SYSTEM_DOWN",
        "type": "application",
        "message": "Booking system did not answer",
    }
    read, book = step_runs(api, run_id)
    assert (read["state"], read["error"]) == ("failed", {"code": "INVALID_INVOICE"})
    assert (book["state"], book["error"]) == ("failed", {"code": "BOOKING_SYSTEM_DOWN"})
    messages = [
        m["message"] for m in api.call("list_step_run_console_messages", step_run_id=read["id"])["data"]
    ]
    assert "ERROR INVALID_INVOICE: Missing VAT number" in messages
    events = [e["event_type"] for e in api.call("list_step_run_events", step_run_id=read["id"])["data"]]
    assert events.count("work_item_failed") == 2 and events[-1] == "step_run_failed"
    outputs = api.call("list_process_run_outputs", params={"process_run_id": run_id})["data"]
    assert [o["payload"] for o in outputs] == [{"processed": True, "n": 1}]
    failed = api.call("list_work_items", params={"process_run_id": run_id, "state": "failed"})["data"]
    assert len(failed) == 3


def test_default_start_uses_the_default_work_item(api: Api, emu: Any) -> None:
    report = start_run(api, "proc-report")
    [report_item] = items_of(api, report)
    assert item(api, report_item["id"])["payload"] == {"report": "nightly", "format": "csv"}
    invoices = start_run(api, "proc-invoices", {})
    [invoice_item] = items_of(api, invoices)
    assert item(api, invoice_item["id"])["payload"] is None
    assert run_to_end(api, emu, report)["state"] == "completed"


def test_with_inputs_consumes_the_input_queue(api: Api, emu: Any) -> None:
    assert api.call("start_process_run", process_id="proc-invoices", json={"type": "with_inputs"}) == {
        "started": False
    }
    queued = [
        api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": {"n": n}})["id"]
        for n in range(2)
    ]
    other = api.call("create_work_item", json={"process": {"id": "proc-report"}, "payload": None})["id"]
    run_id = start_run(api, "proc-invoices", {"type": "with_inputs"})
    assert sorted(i["id"] for i in items_of(api, run_id)) == sorted(queued)
    assert item(api, other)["state"] == "new" and item(api, other)["process_run"] is None
    assert api.call("start_process_run", process_id="proc-invoices", json={"type": "with_inputs"}) == {
        "started": False
    }
    assert run_to_end(api, emu, run_id)["state"] == "completed"


def test_with_work_item_ids_runs_those_items_and_copies_their_files(api: Api, emu: Any) -> None:
    created = api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": {"doc": "x"}})
    assert upload_work_item_file(api, created["id"], "scan.pdf", b"%PDF-1.4 fake").status_code == 204
    run_id = start_run(api, "proc-invoices", {"type": "with_work_item_ids", "work_item_ids": [created["id"]]})
    assert item(api, created["id"])["process_run"] == {"id": run_id}
    run_to_end(api, emu, run_id)
    [output] = api.call("list_process_run_outputs", params={"process_run_id": run_id})["data"]
    assert output["payload"] == {"processed": True, "doc": "x"}
    [copied] = output["files"]
    original = item(api, created["id"])["files"][0]
    assert copied["name"] == "scan.pdf" and copied["id"] != original["id"]
    assert requests.get(copied["download"]["url"], timeout=10).content == b"%PDF-1.4 fake"


def test_integration_endpoint_uses_the_token_and_the_flat_error_shape(api: Api, emu: Any) -> None:
    body = api.call(
        "start_process_run_for_integration",
        key=None,
        process_id="proc-invoices",
        params={"token": "emulator-api-key"},
        json={"event": "invoice", "id": 7},
    )
    [created] = items_of(api, body["id"])
    assert item(api, created["id"])["payload"] == {"event": "invoice", "id": 7}
    response = api.raw(
        "start_process_run_for_integration",
        key=None,
        process_id="proc-invoices",
        params={"token": "nope"},
        json={},
    )
    assert response.status_code == 401
    schemas.check_error(response.json(), "unauthorized", flat=True)
    for params, data in (
        ({"token": "emulator-api-key", "with_handshake": "slack"}, b"{}"),
        ({"token": "emulator-api-key"}, b"not json"),
        ({"token": "emulator-api-key"}, b""),
    ):
        response = api.raw(
            "start_process_run_for_integration",
            key=None,
            process_id="proc-invoices",
            params=params,
            data=data,
        )
        assert response.status_code == 400, response.text
        schemas.check_error(response.json(), "invalid_request", flat=True)
    log = json.dumps(emu.requests_log())
    assert "token" in log and "emulator-api-key" not in log


def test_asana_handshake_echoes_the_hook_secret(api: Api) -> None:
    response = api.raw(
        "start_process_run_for_integration",
        key=None,
        process_id="proc-report",
        params={"token": "emulator-api-key", "with_handshake": "asana"},
        headers={"X-Hook-Secret": "s3cr3t-value"},
        data=b"",
    )
    assert response.status_code == 200 and response.headers["X-Hook-Secret"] == "s3cr3t-value"
    schemas.check("start_process_run_for_integration", response.json())
    [created] = items_of(api, response.json()["id"])
    assert item(api, created["id"])["payload"] is None
    plain = api.raw(
        "start_process_run_for_integration",
        key=None,
        process_id="proc-report",
        params={"token": "emulator-api-key"},
        headers={"X-Hook-Secret": "x"},
        json={},
    )
    assert plain.status_code == 200 and "X-Hook-Secret" not in plain.headers


def stop(api: Api, run_id: str, done: bool, terminate: bool, reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "set_remaining_work_items_as_done": done,
        "terminate_ongoing_activity_runs": terminate,
    }
    if reason:
        body["reason"] = reason
    return api.call("stop_process_run", process_run_id=run_id, json=body)


def test_stop_terminating_ongoing_work_fails_remaining_items(api: Api, frozen: Any) -> None:
    run_id = start_run(api, "proc-slow", {"type": "with_payloads", "payloads": [{"n": 1}, {"n": 2}]})
    frozen.advance(10)
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "in_progress"
    assert stop(api, run_id, done=False, terminate=True, reason="Maintenance window") == {"accepted": True}
    run = api.call("get_process_run", process_run_id=run_id)
    assert run["state"] == "unresolved" and run["ended_at"] is not None
    for work_item in items_of(api, run_id):
        assert work_item["state"] == "failed"
        assert work_item["exception"] == {
            "code": "PROCESS_RUN_STOPPED",
            "type": "orchestrator",
            "message": "Maintenance window",
        }
    [step_run] = step_runs(api, run_id)
    assert step_run["state"] == "failed" and step_run["error"] == {"code": "TERMINATED"}
    assert stop(api, run_id, done=False, terminate=True) == {"accepted": False}


def test_stop_setting_remaining_items_done_completes_the_run(api: Api, frozen: Any) -> None:
    run_id = start_run(api, "proc-slow")
    frozen.advance(5)
    stop(api, run_id, done=True, terminate=True)
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "completed"
    assert [i["state"] for i in items_of(api, run_id)] == ["done"]


def test_stop_without_terminating_waits_in_stopping(api: Api, frozen: Any) -> None:
    run_id = start_run(api, "proc-slow", {"type": "with_payloads", "payloads": [{"n": 1}, {"n": 2}]})
    frozen.advance(10)
    stop(api, run_id, done=False, terminate=False)
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "stopping"
    assert api.call("list_process_runs", params={"state": "stopping"})["data"][0]["id"] == run_id
    states = sorted(i["state"] for i in items_of(api, run_id))
    assert states == ["failed", "in_progress"]
    assert stop(api, run_id, done=False, terminate=False) == {"accepted": False}
    frozen.advance(3600)
    run = api.call("get_process_run", process_run_id=run_id)
    assert run["state"] == "unresolved"
    assert sorted(i["state"] for i in items_of(api, run_id)) == ["done", "failed"]


def test_stop_without_terminating_keeps_items_from_the_next_step(api: Api, frozen: Any) -> None:
    run_id = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [{"n": 1}]})
    frozen.advance(0.2)
    stop(api, run_id, done=True, terminate=False)
    frozen.advance(5)
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "completed"
    assert [s["step"]["id"] for s in step_runs(api, run_id)] == ["step-read-invoice"]
    assert api.call("list_process_run_outputs", params={"process_run_id": run_id})["data"] == []


def test_stop_before_the_run_starts(api: Api, frozen: Any) -> None:
    run_id = start_run(api, "proc-invoices")
    stop(api, run_id, done=False, terminate=False)
    run = api.call("get_process_run", process_run_id=run_id)
    assert run["state"] == "unresolved" and run["started_at"] is None and run["duration"] is None
    frozen.advance(10)
    assert step_runs(api, run_id) == []


def failed_run(api: Api, emu: Any, payloads: list[Any]) -> tuple[str, list[str]]:
    run_id = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": payloads})
    run_to_end(api, emu, run_id)
    failed = api.call("list_work_items", params={"process_run_id": run_id, "state": "failed"})["data"]
    return run_id, [i["id"] for i in failed]


def batch(api: Api, operation: str, ids: list[str], expect: int = 200) -> Any:
    return api.call(
        "batch_work_items", json={"batch_operation": operation, "work_item_ids": ids}, expect=expect
    )


def test_retry_after_fixing_the_payload_completes_the_run(api: Api, emu: Any) -> None:
    run_id, [failed] = failed_run(api, emu, [{"n": 1}, {"fail": True}])
    first_end = api.call("get_process_run", process_run_id=run_id)["ended_at"]
    api.call("update_work_item_payload", work_item_id=failed, json={"payload": {"n": 2}})
    assert batch(api, "retry", [failed]) == {"accepted": True}
    retried = item(api, failed)
    assert retried["exception"] is None and retried["state"] in ("pending", "in_progress")
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "in_progress"
    run = run_to_end(api, emu, run_id)
    assert run["state"] == "completed" and run["ended_at"] > first_end
    assert item(api, failed)["state"] == "done"
    assert len(step_runs(api, run_id)) == 4
    outputs = api.call("list_process_run_outputs", params={"process_run_id": run_id})["data"]
    assert sorted(o["payload"]["n"] for o in outputs) == [1, 2]


def test_retry_without_a_fix_fails_again(api: Api, emu: Any) -> None:
    run_id, [failed] = failed_run(api, emu, [{"fail": True, "reason": "bad"}])
    batch(api, "retry", [failed])
    assert run_to_end(api, emu, run_id)["state"] == "unresolved"
    assert item(api, failed)["exception"]["message"] == "bad"


def test_mark_as_done_resolves_the_run(api: Api, emu: Any) -> None:
    run_id, failed = failed_run(api, emu, [{"fail": True}, {"fail": True}])
    batch(api, "mark_as_done", failed[:1])
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "unresolved"
    batch(api, "mark_as_done", failed[1:])
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "completed"
    assert {item(api, i)["state"] for i in failed} == {"done"}


def test_delete_removes_failed_items(api: Api, emu: Any) -> None:
    run_id, [failed] = failed_run(api, emu, [{"n": 1}, {"fail": True}])
    batch(api, "delete", [failed])
    api.call("get_work_item", work_item_id=failed, expect=404)
    assert len(items_of(api, run_id)) == 1
    assert api.call("get_process_run", process_run_id=run_id)["state"] == "completed"


def test_batch_is_all_or_nothing(api: Api, emu: Any) -> None:
    run_id, [failed] = failed_run(api, emu, [{"n": 1}, {"fail": True}])
    done = next(i["id"] for i in items_of(api, run_id) if i["id"] != failed)
    error = batch(api, "mark_as_done", [failed, done], expect=409)
    assert done in error["error"]["message"]
    assert item(api, failed)["state"] == "failed"


def test_delete_process_run_removes_its_items_and_step_runs(api: Api, emu: Any) -> None:
    run_id = start_run(api, "proc-report")
    run_to_end(api, emu, run_id)
    [work_item] = items_of(api, run_id)
    [step_run] = step_runs(api, run_id)
    api.call("delete_process_run", process_run_id=run_id)
    api.call("get_process_run", process_run_id=run_id, expect=404)
    api.call("get_work_item", work_item_id=work_item["id"], expect=404)
    api.call("get_step_run", step_run_id=step_run["id"], expect=404)


def test_list_filters_and_ordering(api: Api, emu: Any) -> None:
    first = start_run(api, "proc-invoices")
    second = start_run(api, "proc-report")
    third = start_run(api, "proc-slow")
    emu.advance(30)
    assert [r["id"] for r in api.call("list_process_runs")["data"]] == [third, second, first]
    assert [r["id"] for r in api.call("list_process_runs", params={"process_id": "proc-report"})["data"]] == [
        second
    ]
    completed = api.call("list_process_runs", params={"state": "completed"})["data"]
    assert {r["id"] for r in completed} == {first, second}
    assert api.call("list_work_items", params={"state": "in_progress"})["data"][0]["process_run"] == {
        "id": third
    }


def test_workers_are_busy_while_running(api: Api, frozen: Any) -> None:
    start_run(api, "proc-slow")
    frozen.advance(1)
    states = [w["state"] for w in api.call("list_workers")["data"]]
    assert sorted(states) == ["busy", "idle"]


def test_runs_progress_in_real_time_without_advance(api: Api, emu: Any) -> None:
    import time

    emu.set_speed(1.0)  # this one is about real time (every other emulator test freezes the clock)
    run_id = start_run(api, "proc-report")
    deadline = time.monotonic() + 5
    while api.call("get_process_run", process_run_id=run_id)["state"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_control_endpoints_drive_time_and_state(api: Api, emu: Any) -> None:
    control = f"{emu.url}/_emulator"
    assert requests.post(f"{control}/time/speed", json={"speed": 0}, timeout=5).json()["speed"] == 0
    run_id = start_run(api, "proc-report")
    before = requests.get(f"{control}/time", timeout=5).json()["epoch"]
    advanced = requests.post(f"{control}/time/advance", json={"seconds": 120}, timeout=5).json()
    assert advanced["epoch"] == pytest.approx(before + 120, abs=0.01)
    state = requests.get(f"{control}/state", timeout=5).json()
    assert [r["state"] for r in state["process_runs"]] == ["completed"]
    assert state["work_items"][0]["payload"] == {"report": "nightly", "format": "csv"}
    assert requests.post(f"{control}/time/advance", json={"seconds": -1}, timeout=5).status_code == 400
    assert requests.post(f"{control}/time/speed", json={"speed": "fast"}, timeout=5).status_code == 400
    assert requests.post(f"{control}/reset", timeout=5).json() == {"reset": True}
    api.call("get_process_run", process_run_id=run_id, expect=404)
    assert requests.get(f"{control}/state", timeout=5).json()["process_runs"] == []
    assert requests.get(f"{control}/health", timeout=5).json()["status"] == "ok"
