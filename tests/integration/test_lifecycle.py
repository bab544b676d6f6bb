"""Process run lifecycle through the hook: the four start modes, waiting until completed or
unresolved (emulated time is frozen and moved by ``advance()`` from the wait's ``on_poll``), the
failure report, fixing a failed item and retrying it, and stopping runs."""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_robocorp.exceptions import (
    ProcessRunFailedError,
    ProcessRunTimeoutError,
    RobocorpConflictError,
)
from airflow_provider_robocorp.hooks._runs import console_lines, format_unresolved
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import driver, fast_hook, raises, state_of


@pytest.fixture
def hook(frozen: Any) -> Any:
    h = fast_hook()
    yield h
    h.close()


def _wait(hook: RobocorpHook, emu: Any, run_id: str, **kwargs: Any) -> tuple[dict[str, Any], list[str]]:
    on_poll, seen = driver(emu, step=0.2)
    run = hook.wait_for_process_run(run_id, poll_interval=0.01, timeout=20, on_poll=on_poll, **kwargs)
    return run, seen


def test_default_work_item_mode(hook: RobocorpHook, frozen: Any) -> None:
    started = hook.start_process_run("proc-report")
    assert started == {"started": True, "id": started["id"]}
    run, seen = _wait(hook, frozen, started["id"])
    assert run["state"] == "completed" and run["ended_at"] is not None
    assert seen[0] == "new" and "in_progress" in seen  # it really waited through the states
    [item] = hook.list_work_items(process_run_id=started["id"])
    assert hook.get_work_item(item["id"], include_data=True)["payload"] == {"report": "nightly", "format": "csv"}
    assert hook.work_item_counts(started["id"]) == {"total": 1, "done": 1, "failed": 0}


def test_payloads_mode(hook: RobocorpHook, frozen: Any) -> None:
    started = hook.start_process_run("proc-invoices", payloads=[{"invoice": 1}, {"invoice": 2}])
    run, _ = _wait(hook, frozen, started["id"])
    assert run["state"] == "completed"
    outputs = list(hook.list_process_run_outputs(started["id"]))
    assert sorted(o["payload"]["invoice"] for o in outputs) == [1, 2]
    assert all(o["payload"]["processed"] is True for o in outputs)


def test_work_item_ids_mode(hook: RobocorpHook, frozen: Any) -> None:
    ids = [hook.create_work_item("proc-invoices", {"invoice": n})["id"] for n in range(3)]
    started = hook.start_process_run("proc-invoices", work_item_ids=ids)
    run, _ = _wait(hook, frozen, started["id"])
    assert run["state"] == "completed"
    assert sorted(i["id"] for i in hook.list_work_items(process_run_id=started["id"], state="done")) == sorted(ids)
    # those items are no longer "new": starting them again is refused
    with raises(RobocorpConflictError, match="only new work items"):
        hook.start_process_run("proc-invoices", work_item_ids=ids[:1])


def test_input_queue_mode(hook: RobocorpHook, frozen: Any) -> None:
    assert hook.start_process_run("proc-invoices", use_input_work_items=True) == {"started": False}
    assert state_of(frozen, "process_runs") == []
    queued = [hook.create_work_item("proc-invoices", {"invoice": n})["id"] for n in range(2)]
    hook.create_work_item("proc-report", {"other": "queue"})  # another process's queue stays untouched
    started = hook.start_process_run("proc-invoices", use_input_work_items=True)
    assert started["started"] is True
    run, _ = _wait(hook, frozen, started["id"])
    assert run["state"] == "completed"
    assert sorted(i["id"] for i in hook.list_work_items(process_run_id=started["id"])) == sorted(queued)
    assert [i["state"] for i in hook.list_work_items(process_id="proc-report")] == ["new"]


def test_unresolved_report_then_fix_and_retry(hook: RobocorpHook, frozen: Any) -> None:
    payloads = [{"invoice": 1}, {"invoice": 2, "fail": True, "reason": "IBAN missing"}, {"invoice": 3}]
    run_id = hook.start_process_run("proc-invoices", payloads=payloads)["id"]

    with raises(ProcessRunFailedError, match="ended unresolved") as info:
        _wait(hook, frozen, run_id)
    assert info.value.process_run is not None and info.value.process_run["state"] == "unresolved"
    run, _ = _wait(hook, frozen, run_id, accepted_states=("completed", "unresolved"))
    assert run["state"] == "unresolved"

    report = hook.describe_unresolved_run(run_id)
    assert report["problems"] == []
    assert report["failed_work_item_count"] == 1
    [failed] = report["failed_work_items"]
    assert failed["type"] == "business" and failed["code"] == "INVALID_INVOICE"
    assert failed["message"] == "IBAN missing"
    [step] = report["step_runs"]
    assert step["name"] == "Read invoice" and step["state"] == "failed" and step["error_code"] == "INVALID_INVOICE"
    assert "ERROR INVALID_INVOICE: IBAN missing" in step["console"]
    assert f"Work item {failed['id']} failed (business exception)" in step["console"]
    message = format_unresolved(run_id, report)
    assert "INVALID_INVOICE" in message and failed["id"] in message
    assert any("ERROR INVALID_INVOICE" in line for line in console_lines(report))

    hook.update_work_item_payload(failed["id"], {"invoice": 2})
    assert hook.batch_work_items("retry", [failed["id"]]) == {"accepted": True}
    run, seen = _wait(hook, frozen, run_id)
    assert run["state"] == "completed" and seen[0] == "in_progress"
    assert hook.work_item_counts(run_id) == {"total": 3, "done": 3, "failed": 0}
    assert hook.get_work_item(failed["id"], include_data=True)["exception"] is None
    assert hook.describe_unresolved_run(run_id)["failed_work_items"] == []


def test_stop_process_run(hook: RobocorpHook, frozen: Any) -> None:
    run_id = hook.start_process_run("proc-slow", payloads=[{"n": 1}, {"n": 2}])["id"]
    frozen.advance(1)
    assert hook.get_process_run(run_id)["state"] == "in_progress"
    assert hook.stop_process_run(run_id, reason="stopped by the integration test") == {"accepted": True}
    assert hook.get_process_run(run_id)["state"] == "unresolved"
    items = list(hook.list_work_items(process_run_id=run_id))
    assert {i["state"] for i in items} == {"failed"}
    assert {i["exception"]["code"] for i in items} == {"PROCESS_RUN_STOPPED"}
    assert {i["exception"]["message"] for i in items} == {"stopped by the integration test"}
    [step_run] = hook.list_step_runs(run_id)
    assert step_run["error"] == {"code": "TERMINATED"}
    # stopping an ended run is not accepted (and not an error)
    assert hook.stop_process_run(run_id) == {"accepted": False}

    other = hook.start_process_run("proc-slow")["id"]
    frozen.advance(1)
    assert hook.stop_process_run(other, set_remaining_work_items_as_done=True) == {"accepted": True}
    assert hook.get_process_run(other)["state"] == "completed"


def test_wait_gives_up_at_its_deadline(hook: RobocorpHook, frozen: Any) -> None:
    run_id = hook.start_process_run("proc-slow")["id"]
    began = time.monotonic()
    with raises(ProcessRunTimeoutError, match="did not finish before the deadline"):
        hook.wait_for_process_run(run_id, poll_interval=0.05, timeout=0.3)
    assert 0.25 <= time.monotonic() - began < 3
    assert hook.get_process_run(run_id)["state"] == "new"  # left as it was


def test_process_run_url(hook: RobocorpHook, frozen: Any) -> None:
    run_id = hook.start_process_run("proc-report")["id"]
    assert hook.process_run_url("proc-report", run_id) == (
        f"{frozen.url}/organizations/org-emulator/workspaces/ws-emulator/processes/proc-report/runs/{run_id}"
    )
