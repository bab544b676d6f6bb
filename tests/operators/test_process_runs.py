"""StartProcessRunOperator / StopProcessRunOperator against the emulator (real HTTP, no Airflow DB)."""

from __future__ import annotations

import inspect
import json
import threading
import time
from typing import Any

import pytest

from airflow_provider_robocorp import _compat
from airflow_provider_robocorp._compat import AirflowSkipException, TaskDeferred, conf
from airflow_provider_robocorp.exceptions import (
    ProcessRunFailedError,
    ProcessRunTimeoutError,
    RobocorpConfigError,
    RobocorpError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.operators import StartProcessRunOperator, StopProcessRunOperator
from airflow_provider_robocorp.operators.process_runs import SUCCEEDED_RUN_KEY
from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger
from tests.operators.helpers import FakeStateStore, context, posts, run_trigger

pytestmark = pytest.mark.usefixtures("robocorp_conn_env")
needs_resumable_job_mixin = pytest.mark.skipif(
    _compat.ResumableJobMixin.__module__ == _compat.__name__,
    reason="re-attaching through the task state store needs Airflow 3.3+ (ResumableJobMixin)",
)

FAILING = {"invoice": "INV-2", "fail": True, "reason": "Total does not match the lines"}


def start(**kwargs: object) -> StartProcessRunOperator:
    kwargs.setdefault("process_id", "proc-invoices")
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("deferrable", False)
    return StartProcessRunOperator(task_id="run", **kwargs)  # type: ignore[arg-type]


def run_states(emulator: object) -> dict[str, str]:
    return {r["id"]: r["state"] for r in emulator.state()["process_runs"]}  # type: ignore[attr-defined]


def test_sync_success_pushes_id_url_and_outputs_and_logs_progress(robocorp_emulator, capsys):
    ctx = context()
    op = start(payloads=[{"invoice": "INV-1"}, {"invoice": "INV-3"}], push_outputs=True)

    run_id = op.execute(ctx)

    assert run_states(robocorp_emulator) == {run_id: "completed"}
    xcom = ctx["ti"].xcom
    assert xcom["process_run_id"] == run_id
    assert xcom["process_run_url"] == (
        f"{robocorp_emulator.url}/organizations/org-emulator/workspaces/ws-emulator/processes/proc-invoices/runs/{run_id}"
    )
    assert sorted(o["payload"]["invoice"] for o in xcom["outputs"]) == ["INV-1", "INV-3"]
    assert all(o["payload"]["processed"] is True and o["files"] == [] for o in xcom["outputs"])
    assert f"Process run {run_id} is completed; work items: 2 done, 0 failed, 2 total" in capsys.readouterr().out
    assert len(posts(robocorp_emulator, "/process-runs")) == 1


def test_sync_unresolved_fails_with_failed_items_and_writes_console_to_log(robocorp_emulator, capsys):
    op = start(payloads=[{"invoice": "INV-1"}, FAILING])

    with pytest.raises(ProcessRunFailedError) as failure:
        op.execute(context())

    message = str(failure.value)
    failed = [i for i in robocorp_emulator.state()["work_items"] if i["state"] == "failed"]
    assert len(failed) == 1
    assert "ended unresolved" in message
    assert f"{failed[0]['id']} (business exception INVALID_INVOICE): Total does not match the lines" in message
    assert "Read invoice" in message and "error INVALID_INVOICE" in message
    assert "1 work item failed" in message
    assert "[Read invoice] ERROR INVALID_INVOICE: Total does not match the lines" in capsys.readouterr().out
    assert "/organizations/org-emulator/" in message


def test_unresolved_failure_lists_a_capped_number_of_items(robocorp_emulator):
    op = start(payloads=[dict(FAILING, invoice=f"INV-{n}") for n in range(4)], max_failed_items=1)

    with pytest.raises(ProcessRunFailedError, match=r"4 work items failed: .*; and 3 more\."):
        op.execute(context())


def test_unresolved_can_be_accepted(robocorp_emulator, capsys):
    op = start(payloads=[FAILING], fail_on_unresolved=False, push_outputs=True)
    ctx = context()

    run_id = op.execute(ctx)

    assert run_states(robocorp_emulator) == {run_id: "unresolved"}
    assert ctx["ti"].xcom["outputs"] == []
    assert "ended unresolved" in capsys.readouterr().out


def test_start_with_existing_work_item_ids(robocorp_emulator):
    hook = RobocorpHook()
    ids = [hook.create_work_item("proc-invoices", {"invoice": n})["id"] for n in ("A", "B")]

    run_id = start(work_item_ids=tuple(ids)).execute(context())

    items = {i["id"]: i for i in robocorp_emulator.state()["work_items"]}
    assert {items[i]["process_run"]["id"] for i in ids} == {run_id}
    assert posts(robocorp_emulator, "/process-runs")[0]["status"] == 200


def test_default_work_item_and_no_wait(robocorp_emulator):
    ctx = context()
    run_id = start(process_id="proc-slow", wait_for_completion=False).execute(ctx)

    assert run_states(robocorp_emulator) == {run_id: "in_progress"} or run_states(robocorp_emulator) == {run_id: "new"}
    assert ctx["ti"].xcom["process_run_id"] == run_id


def test_started_false_skips_or_fails_as_chosen(robocorp_emulator):
    with pytest.raises(AirflowSkipException, match='"started": false'):
        start(use_input_work_items=True).execute(context())
    with pytest.raises(RobocorpError, match='"started": false'):
        start(use_input_work_items=True, skip_if_not_started=False).execute(context())
    assert robocorp_emulator.state()["process_runs"] == []


def test_input_queue_mode_runs_waiting_items(robocorp_emulator):
    RobocorpHook().create_work_item("proc-invoices", {"invoice": "queued"})

    run_id = start(use_input_work_items=True).execute(context())

    assert run_states(robocorp_emulator) == {run_id: "completed"}


def test_invalid_start_arguments_fail_at_parse_time():
    with pytest.raises(RobocorpConfigError, match="choose one start mode"):
        start(payloads=[{}], work_item_ids=["a"])
    with pytest.raises(RobocorpConfigError, match="JSON-serialisable"):
        start(payloads=[{"when": object()}])
    with pytest.raises(RobocorpConfigError, match="poll_interval"):
        start(poll_interval=0)
    with pytest.raises(RobocorpConfigError, match="timeout"):
        start(timeout=-1)


def test_templated_arguments_are_validated_before_any_request(robocorp_emulator):
    op = start(work_item_ids="{{ ti.xcom_pull('create') }}")  # not checkable before rendering
    op.work_item_ids = "['wi-1']"  # what a non-native rendering produces

    with pytest.raises(RobocorpConfigError, match="work_item_ids must be a non-empty list"):
        op.execute(context())
    assert robocorp_emulator.requests_log() == []


def test_sync_timeout_stops_the_run(robocorp_emulator):
    op = start(process_id="proc-slow", timeout=0.6, poll_interval=0.2)
    began = time.monotonic()

    with pytest.raises(ProcessRunTimeoutError, match=r"within the timeout of 0.6 s .*the process run was stopped"):
        op.execute(context())

    assert time.monotonic() - began < 5
    (stop,) = posts(robocorp_emulator, "/stop")
    assert stop["status"] == 200
    assert list(run_states(robocorp_emulator).values())[0] in ("stopping", "unresolved")


def test_kill_stops_the_run(robocorp_emulator):
    op = start(process_id="proc-slow", poll_interval=0.1)
    ctx = context()
    outcome: list[BaseException] = []

    def execute() -> None:
        try:
            op.execute(ctx)
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            outcome.append(err)

    worker = threading.Thread(target=execute)
    worker.start()
    for _ in range(100):
        if "process_run_id" in ctx["ti"].xcom:
            break
        time.sleep(0.05)
    op.on_kill()
    worker.join(10)

    assert not worker.is_alive()
    assert len(posts(robocorp_emulator, "/stop")) == 1
    assert run_states(robocorp_emulator) == {ctx["ti"].xcom["process_run_id"]: "unresolved"}
    assert isinstance(outcome[0], ProcessRunFailedError)


def test_kill_does_nothing_when_disabled_or_finished(robocorp_emulator):
    op = start(payloads=[{"invoice": 1}], stop_on_kill=True)
    op.execute(context())
    op.on_kill()  # the run already ended
    start(process_id="proc-slow", stop_on_kill=False, wait_for_completion=False).execute(context())
    assert posts(robocorp_emulator, "/stop") == []


def test_deferrable_success_round_trip(robocorp_emulator):
    op = start(payloads=[{"invoice": "INV-9"}], deferrable=True, push_outputs=True, timeout=60)
    ctx = context()

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)

    trigger = deferred.value.trigger
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_robocorp.triggers.process_run.ProcessRunTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert kwargs["process_run_id"] == ctx["ti"].xcom["process_run_id"]
    assert kwargs["stop_on_kill"] is True and kwargs["deadline"] > time.time()
    event = run_trigger(ProcessRunTrigger(**kwargs))

    resumed = start(payloads=[{"invoice": "INV-9"}], deferrable=True, push_outputs=True)  # a fresh worker
    assert resumed.execute_complete(ctx, event=event.payload) == kwargs["process_run_id"]
    assert ctx["ti"].xcom["outputs"][0]["payload"]["invoice"] == "INV-9"
    assert len(posts(robocorp_emulator, "/process-runs")) == 1


def test_deferrable_failure_reports_failed_items(robocorp_emulator, capsys):
    op = start(payloads=[FAILING], deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    event = run_trigger(deferred.value.trigger)
    assert event.payload["status"] == "failure"

    with pytest.raises(ProcessRunFailedError, match=r"INVALID_INVOICE\): Total does not match the lines"):
        op.execute_complete(context(), event=event.payload)
    assert "[Read invoice] ERROR INVALID_INVOICE" in capsys.readouterr().out


def test_deferrable_timeout_stops_the_run(robocorp_emulator):
    op = start(process_id="proc-slow", deferrable=True, timeout=0.5, poll_interval=0.1)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context())
    event = run_trigger(deferred.value.trigger)
    assert event.payload["status"] == "timeout"
    assert posts(robocorp_emulator, "/stop") == []  # the trigger never POSTs

    with pytest.raises(ProcessRunTimeoutError, match="the process run was stopped"):
        op.execute_complete(context(), event=event.payload)
    assert len(posts(robocorp_emulator, "/stop")) == 1


@pytest.mark.parametrize(
    "event",
    [
        None,
        "completed",
        {},
        {"status": "success", "process_run_id": "r1", "state": "unresolved"},
        {"status": "failure", "process_run_id": "r1", "state": "completed"},
        {"status": "success", "process_run_id": "", "state": "completed"},
        {"status": "done", "process_run_id": "r1", "state": "completed"},
    ],
)
def test_malformed_events_fail_closed(event):
    with pytest.raises(RobocorpError, match="Malformed event"):
        start().execute_complete(context(), event=event)


def test_error_event_fails_the_task():
    event = {"status": "error", "process_run_id": "r1", "state": "weird", "message": "unknown state 'weird'"}
    with pytest.raises(RobocorpError, match="unknown state 'weird'"):
        start().execute_complete(context(), event=event)


@needs_resumable_job_mixin
def test_retry_after_crash_reattaches_to_the_running_run(robocorp_emulator):
    first = start(process_id="proc-slow", wait_for_completion=False)
    store = FakeStateStore()
    first.execute(context(task_state_store=store))
    run_id = store.values["process_run_id"]
    store.delete(SUCCEEDED_RUN_KEY)  # as if that try had crashed while waiting: it never succeeded

    retried = start(process_id="proc-slow", deferrable=True)
    ctx = context(task_state_store=store)
    with pytest.raises(TaskDeferred) as deferred:
        retried.execute(ctx)

    assert deferred.value.trigger.process_run_id == run_id
    assert ctx["ti"].xcom["process_run_id"] == run_id
    assert len(posts(robocorp_emulator, "/process-runs")) == 1


@needs_resumable_job_mixin
def test_retry_after_completed_run_returns_it_and_failed_run_starts_anew(robocorp_emulator):
    store = FakeStateStore()
    run_id = start(payloads=[{"invoice": 1}]).execute(context(task_state_store=store))
    store.delete(SUCCEEDED_RUN_KEY)  # the run completed, then the worker crashed before the task succeeded

    ctx = context(task_state_store=store)
    assert start(payloads=[{"invoice": 1}], push_outputs=True).execute(ctx) == run_id
    assert ctx["ti"].xcom["outputs"][0]["payload"]["invoice"] == 1
    assert len(posts(robocorp_emulator, "/process-runs")) == 1

    store.values["process_run_id"] = "no-such-run"
    assert start(payloads=[{"invoice": 1}]).execute(context(task_state_store=store)) != run_id
    assert len(posts(robocorp_emulator, "/process-runs")) == 2


@needs_resumable_job_mixin
def test_clear_after_success_runs_the_robot_again_and_retry_reattaches(robocorp_emulator, capsys):
    store = FakeStateStore()
    first = start(payloads=[{"invoice": 1}]).execute(context(task_state_store=store))
    assert store.values[SUCCEEDED_RUN_KEY] == first

    again = start(payloads=[{"invoice": 1}]).execute(context(task_state_store=store))  # the user's Clear
    assert again != first and store.values[SUCCEEDED_RUN_KEY] == again
    assert len(posts(robocorp_emulator, "/process-runs")) == 2
    assert f"succeeded before with process run {first} and was cleared: starting a new run" in capsys.readouterr().out


def test_a_single_work_item_id_is_a_list_of_one(robocorp_emulator):
    item = RobocorpHook().create_work_item("proc-invoices", {"n": 1})["id"]
    op = start(work_item_ids=item)  # e.g. the output of one unmapped CreateWorkItemOperator
    run_id = op.execute(context())
    (run_item,) = RobocorpHook().list_work_items(process_run_id=run_id)
    assert run_item["id"] == item


def test_a_deferrable_start_of_a_run_already_over_does_not_defer(robocorp_emulator, monkeypatch):
    from airflow_provider_robocorp.hooks.robocorp import RobocorpHook as Hook

    real = Hook.start_process_run

    def start_and_finish(self, *args, **kwargs):
        answer = real(self, *args, **kwargs)
        robocorp_emulator.advance(600)  # the run ends before the task could defer
        return answer

    monkeypatch.setattr(Hook, "start_process_run", start_and_finish)
    robocorp_emulator.set_speed(0)
    ctx = context()
    run_id = start(process_id="proc-report", deferrable=True).execute(ctx)  # no TaskDeferred raised
    assert ctx["ti"].xcom["process_run_id"] == run_id


def test_the_link_is_stored_while_a_sync_wait_runs(robocorp_emulator):
    ctx = context()
    op = start(process_id="proc-report")
    seen: list[Any] = []
    op.hook.wait_for_process_run = lambda run_id, **kw: seen.append(dict(ctx["ti"].xcom)) or {"state": "completed"}
    run_id = op.execute(ctx)
    assert seen[0]["_link_ControlRoomProcessRunLink"] == seen[0]["process_run_url"]
    assert seen[0]["process_run_url"].endswith(f"/runs/{run_id}")


def test_deferrable_defaults_to_the_airflow_setting():
    default = inspect.signature(StartProcessRunOperator.__init__).parameters["deferrable"].default
    assert default is conf.getboolean("operators", "default_deferrable", fallback=False)


def test_templated_fields():
    assert {"process_id", "payloads", "work_item_ids", "callback"} <= set(StartProcessRunOperator.template_fields)
    assert "process_run_id" in StopProcessRunOperator.template_fields


def test_stop_operator(robocorp_emulator):
    run_id = RobocorpHook().start_process_run("proc-slow")["id"]
    op = StopProcessRunOperator(task_id="stop", process_run_id=run_id, reason="maintenance window")

    assert op.execute(context()) == run_id
    assert run_states(robocorp_emulator)[run_id] in ("stopping", "unresolved")
    assert op.execute(context()) == run_id  # already ended: nothing to stop, not an error
    item = robocorp_emulator.state()["work_items"][0]
    assert item["exception"]["message"] == "maintenance window"


def test_xcom_args_inside_lists_and_dicts_are_accepted_at_parse_time():
    """``work_item_ids=[a.output, b.output]`` and payloads holding an XComArg are rendered by Airflow
    item by item at run time: parse time must not refuse them (static values are still checked)."""
    from airflow.sdk import DAG, task

    from airflow_provider_robocorp.exceptions import RobocorpConfigError
    from airflow_provider_robocorp.operators import StartProcessRunOperator

    with DAG(dag_id="xcom_in_lists", schedule=None):
        @task
        def one() -> str:
            return "wi-1"

        a, b = one(), one()
        op = StartProcessRunOperator(task_id="ids", process_id="p", work_item_ids=[a, b])
        StartProcessRunOperator(task_id="payloads", process_id="p", payloads=[{"n": 1, "ref": a}, {"n": 2}])
        StartProcessRunOperator(task_id="cb", process_id="p", callback={"url": "{{ var.value.cb }}", "secret": "s"})
        with pytest.raises(RobocorpConfigError, match="every item of work_item_ids"):
            StartProcessRunOperator(task_id="static", process_id="p", work_item_ids=["wi-1", ""])
    assert op.upstream_task_ids == {a.operator.task_id, b.operator.task_id}
