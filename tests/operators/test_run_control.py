"""RPA run control over the emulator: retry failed work items in place, start by name, what to do
when the process is already running, and no duplicate run or work item after a lost answer."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_robocorp import _compat
from airflow_provider_robocorp._compat import AirflowFailException, AirflowSkipException, TaskDeferred
from airflow_provider_robocorp.exceptions import (
    ProcessRunFailedError,
    ProcessRunTimeoutError,
    RobocorpConfigError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.operators import CreateWorkItemOperator, StartProcessRunOperator
from tests.operators.helpers import context, posts, run_trigger

pytestmark = pytest.mark.usefixtures("robocorp_conn_env")


def start(**kwargs: Any) -> StartProcessRunOperator:
    if "process_name" not in kwargs:
        kwargs.setdefault("process_id", "proc-invoices")
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("deferrable", False)
    return StartProcessRunOperator(task_id="run", **kwargs)


def run_starts(emulator: Any) -> list[dict[str, Any]]:
    return [r for r in posts(emulator, "/process-runs") if r["path"].endswith("/process-runs")]


def items_of(run_id: str) -> dict[str, str]:
    return {i["id"]: i["state"] for i in RobocorpHook().list_work_items(process_run_id=run_id)}


# --- retry failed work items in place --------------------------------------------------------

def test_an_application_exception_is_retried_in_place_and_the_run_completes(robocorp_emulator, capsys):
    op = start(payloads=[{"invoice": 1}, {"invoice": 2, "flaky": True}], retry_failed_work_items=2)
    run_id = op.execute(context())
    assert set(items_of(run_id).values()) == {"done"}
    assert len(run_starts(robocorp_emulator)) == 1 and len(posts(robocorp_emulator, "/work-items/batch")) == 1
    out = capsys.readouterr().out
    assert f"Retry round 1 of 2 for process run {run_id}: retrying 1 failed work item(s)" in out
    assert "application BOOKING_SYSTEM_BUSY" in out


def test_a_business_exception_is_not_retried(robocorp_emulator, capsys):
    op = start(payloads=[{"invoice": 1, "fail": True, "reason": "No supplier"}], retry_failed_work_items=3)
    with pytest.raises(ProcessRunFailedError, match="No supplier"):
        op.execute(context())
    assert posts(robocorp_emulator, "/work-items/batch") == []
    assert "has a retryable exception type (application, unspecified), so it is not retried" in capsys.readouterr().out


def test_rounds_run_out_and_the_failure_lists_what_is_still_failed(robocorp_emulator, capsys):
    op = start(payloads=[{"invoice": 1, "crash": True}], retry_failed_work_items=2)
    with pytest.raises(ProcessRunFailedError, match=r"BOOKING_SYSTEM_DOWN.*Still failed after 2 retry round"):
        op.execute(context())
    assert len(posts(robocorp_emulator, "/work-items/batch")) == 2
    out = capsys.readouterr().out
    assert "Retry round 1 of 2" in out and "Retry round 2 of 2" in out


def test_business_items_are_named_as_not_retried_beside_the_retried_ones(robocorp_emulator, capsys):
    op = start(payloads=[{"invoice": 1, "flaky": True}, {"invoice": 2, "fail": True}], retry_failed_work_items=1)
    with pytest.raises(ProcessRunFailedError, match="INVALID_INVOICE"):
        op.execute(context())
    assert "Not retried (exception type not in application, unspecified)" in capsys.readouterr().out


def test_the_timeout_covers_every_round(robocorp_emulator):
    robocorp_emulator.set_speed(0)  # nothing moves: the first wait already uses up the timeout
    op = start(payloads=[{"invoice": 1, "crash": True}], retry_failed_work_items=5, timeout=0.5)
    with pytest.raises(ProcessRunTimeoutError, match="did not finish within the timeout of 0.5 s"):
        op.execute(context())


def test_deferrable_retry_rounds_defer_again(robocorp_emulator):
    op = start(payloads=[{"invoice": 1, "flaky": True}], retry_failed_work_items=1, deferrable=True,
               defer_grace_period=0)
    ctx = context()
    with pytest.raises(TaskDeferred) as first:
        op.execute(ctx)
    event = run_trigger(first.value.trigger)
    assert event.payload["state"] == "unresolved"
    resumed = start(payloads=[{"invoice": 1, "flaky": True}], retry_failed_work_items=1, deferrable=True,
                    defer_grace_period=0)
    with pytest.raises(TaskDeferred) as second:  # round 1: items retried, the run waited for again
        resumed.execute_complete(ctx, event=event.payload, **first.value.kwargs)
    assert second.value.kwargs["rounds_done"] == 1
    final = run_trigger(second.value.trigger)
    again = start(payloads=[{"invoice": 1, "flaky": True}], retry_failed_work_items=1, deferrable=True)
    assert again.execute_complete(ctx, event=final.payload, **second.value.kwargs) == event.payload["process_run_id"]


@pytest.mark.skipif(_compat.ResumableJobMixin.__module__ == _compat.__name__,
                    reason="the task state store is Airflow 3.3+ (ResumableJobMixin)")
def test_a_retry_after_a_crash_re_attaches_and_retries_the_failed_items_in_place(robocorp_emulator):
    from tests.operators.helpers import FakeStateStore

    hook = RobocorpHook()
    run_id = hook.start_process_run("proc-invoices", payloads=[{"invoice": 1, "flaky": True}])["id"]
    store = FakeStateStore(process_run_id=run_id)  # the try that started it crashed while it ran
    RobocorpHook().wait_for_process_run(run_id, poll_interval=0.1, accepted_states=("completed", "unresolved"))
    assert hook.get_process_run(run_id)["state"] == "unresolved"  # it ended while no try watched

    ctx = context(task_state_store=store)
    assert start(payloads=[{"invoice": 1, "flaky": True}], retry_failed_work_items=1).execute(ctx) == run_id
    assert hook.get_process_run(run_id)["state"] == "completed" and len(run_starts(robocorp_emulator)) == 1


def test_retry_arguments_are_checked_locally():
    with pytest.raises(RobocorpConfigError, match="retry_exception_types=\\['fatal'\\] is not valid"):
        start(retry_exception_types=["fatal"])
    with pytest.raises(RobocorpConfigError, match="retry_failed_work_items must be a whole number"):
        start(retry_failed_work_items=-1)


# --- start by name ---------------------------------------------------------------------------

def test_process_name_is_resolved_logged_and_pushed(robocorp_emulator, capsys):
    ctx = context()
    run_id = start(process_name="Nightly report").execute(ctx)
    assert ctx["ti"].xcom["process_id"] == "proc-report"
    assert RobocorpHook().get_process_run(run_id)["process"]["id"] == "proc-report"
    assert "Process 'Nightly report' is proc-report." in capsys.readouterr().out


def test_no_or_several_processes_by_that_name_start_nothing(robocorp_emulator, monkeypatch):
    with pytest.raises(RobocorpConfigError, match="No process is called 'nightly report'"):
        start(process_name="nightly report").execute(context())
    real = RobocorpHook.list_processes
    monkeypatch.setattr(RobocorpHook, "list_processes", lambda self, limit=None: [
        *real(self), {"id": "proc-copy", "name": "Nightly report"}])
    with pytest.raises(RobocorpConfigError, match=r"2 processes are called 'Nightly report' \(proc-report, proc-copy\)"):
        start(process_name="Nightly report").execute(context())
    assert run_starts(robocorp_emulator) == []
    with pytest.raises(RobocorpConfigError, match="exactly one of process_id or process_name"):
        StartProcessRunOperator(task_id="t", process_id="p", process_name="P")


# --- if_running -------------------------------------------------------------------------------

@pytest.fixture
def running(robocorp_emulator) -> str:
    robocorp_emulator.set_speed(0)
    return RobocorpHook().start_process_run("proc-slow")["id"]


def test_if_running_join_waits_for_the_running_run(robocorp_emulator, running):
    op = start(process_id="proc-slow", if_running="join", wait_for_completion=False)
    assert op.execute(context()) == running
    assert len(run_starts(robocorp_emulator)) == 1


def test_if_running_stop_stops_it_then_starts(robocorp_emulator, running):
    op = start(process_id="proc-slow", if_running="stop", wait_for_completion=False)
    new = op.execute(context())
    assert new != running and len(run_starts(robocorp_emulator)) == 2
    stop = posts(robocorp_emulator, "/stop")
    assert len(stop) == 1 and running in stop[0]["path"]


@pytest.mark.parametrize(("mode", "error"), [("skip", AirflowSkipException), ("fail", AirflowFailException)])
def test_if_running_skip_or_fail(robocorp_emulator, running, mode, error):
    with pytest.raises(error, match=f"already has run\\(s\\) going \\({running}\\)"):
        start(process_id="proc-slow", if_running=mode).execute(context())
    assert len(run_starts(robocorp_emulator)) == 1


def test_if_running_start_starts_another_and_nothing_running_starts_one(robocorp_emulator, running):
    assert start(process_id="proc-slow", wait_for_completion=False).execute(context()) != running
    assert start(process_id="proc-report", if_running="join", wait_for_completion=False).execute(context())
    assert len(run_starts(robocorp_emulator)) == 3
    with pytest.raises(RobocorpConfigError, match="if_running='wait' is not valid"):
        start(if_running="wait")


# --- a lost answer creates no duplicate ---------------------------------------------------------

def test_a_lost_start_answer_attaches_to_the_run_it_created(robocorp_emulator, capsys):
    robocorp_emulator.add_fault(kind="commit_then_drop", method="POST", path="/process-runs$", times=1)
    run_id = start(payloads=[{"invoice": 7}]).execute(context())
    assert [r["id"] for r in robocorp_emulator.state()["process_runs"]] == [run_id]
    assert "but it created run" in capsys.readouterr().out


def test_a_lost_start_answer_that_created_nothing_starts_again(robocorp_emulator, capsys):
    robocorp_emulator.add_fault(kind="drop", method="POST", path="/process-runs$", times=1)
    op = start(payloads=[{"invoice": 8}])
    try:
        run_id = op.execute(context())
    except Exception as err:  # a drop before the request reached the app may also be retried by the hook
        raise AssertionError(err) from err
    assert [r["id"] for r in robocorp_emulator.state()["process_runs"]] == [run_id]


def test_a_lost_start_answer_with_several_candidates_fails_without_retry(robocorp_emulator):
    hook = RobocorpHook()
    other = hook.start_process_run("proc-report")["id"]  # started by the API a moment before
    robocorp_emulator.add_fault(kind="commit_then_drop", method="POST", path="/process-runs$", times=1)
    with pytest.raises(AirflowFailException, match=f"may have created any of the runs .*{other}"):
        start(process_id="proc-report").execute(context())
    assert len(robocorp_emulator.state()["process_runs"]) == 2  # and no third


def test_a_lost_create_answer_finds_the_work_item_it_created(robocorp_emulator, capsys):
    robocorp_emulator.add_fault(kind="commit_then_drop", method="POST", path="/work-items$", times=1)
    item_id = CreateWorkItemOperator(task_id="w", process_id="proc-invoices", payload={"invoice": 9}).execute({})
    assert [i["id"] for i in robocorp_emulator.state()["work_items"]] == [item_id]
    assert "but it created work item" in capsys.readouterr().out


# --- what a real deployment showed, and small things -----------------------------------------

class FailingStore:
    """A task state store whose writes time out (an overloaded api-server)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.attempts = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.attempts += 1
        raise TimeoutError("api-server did not answer")

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.mark.skipif(_compat.ResumableJobMixin.__module__ == _compat.__name__,
                    reason="the task state store is Airflow 3.3+ (ResumableJobMixin)")
@pytest.mark.parametrize("stop", [True, False])
def test_a_run_whose_id_cannot_be_saved_is_not_orphaned(robocorp_emulator, monkeypatch, stop):
    import time as time_module

    monkeypatch.setattr(time_module, "sleep", lambda seconds: None)  # the store's retries, without waiting
    robocorp_emulator.set_speed(0)
    store, ctx = FailingStore(), context()
    ctx["task_state_store"] = store
    with pytest.raises(Exception, match="could not save its id in the task state") as err:
        start(process_id="proc-slow", stop_untracked_run=stop).execute(ctx)
    (run,) = robocorp_emulator.state()["process_runs"]
    assert ctx["ti"].xcom["process_run_id"] == run["id"]  # XCom (and the log) had it before the failure
    assert store.attempts == 3 and run["id"] in str(err.value)
    assert (len(posts(robocorp_emulator, "/stop")) == 1) is stop
    assert ("the run was stopped" in str(err.value)) is stop


@pytest.mark.skipif(_compat.ResumableJobMixin.__module__ == _compat.__name__,
                    reason="the task state store is Airflow 3.3+ (ResumableJobMixin)")
def test_a_kept_untracked_run_is_re_attached_by_the_next_try(robocorp_emulator, monkeypatch):
    import time as time_module

    from tests.operators.helpers import FakeStateStore

    monkeypatch.setattr(time_module, "sleep", lambda seconds: None)
    robocorp_emulator.set_speed(0)
    first = context()
    first["task_state_store"] = FailingStore()
    with pytest.raises(Exception, match="the next try looks for it to re-attach"):
        start(payloads=[{"invoice": 42}], stop_untracked_run=False).execute(first)
    (kept,) = robocorp_emulator.state()["process_runs"]

    retry = context()
    retry["ti"].try_number = 2
    retry["task_state_store"] = FakeStateStore()
    op = start(payloads=[{"invoice": 42}], stop_untracked_run=False, wait_for_completion=False)
    assert op.execute(retry) == kept["id"]
    assert len(run_starts(robocorp_emulator)) == 1 and posts(robocorp_emulator, "/stop") == []
    assert retry["task_state_store"].values["process_run_id"] == kept["id"]


def test_robocorp_conn_id_is_templated_everywhere():
    from airflow_provider_robocorp import operators, sensors
    from airflow_provider_robocorp.operators.review import ProcessRunReviewOperator

    classes = [getattr(operators, name) for name in operators.__all__] + [sensors.ProcessRunSensor,
                                                                           ProcessRunReviewOperator]
    assert classes and all("robocorp_conn_id" in cls.template_fields for cls in classes), [
        cls.__name__ for cls in classes if "robocorp_conn_id" not in cls.template_fields]


def test_a_kill_reason_ends_in_one_period(robocorp_emulator):
    from airflow_provider_robocorp.hooks._runs import format_unresolved

    report = {"failed_work_items": [{"id": "wi-1", "type": "application", "code": "STOPPED",
                                     "message": "The Airflow task run was killed."}], "failed_work_item_count": 1}
    message = format_unresolved("r-1", report)
    assert "was killed." in message and ".." not in message


def test_the_first_poll_waits_the_grace_period_but_never_past_the_deadline(robocorp_emulator):
    import time as time_module

    from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

    robocorp_emulator.set_speed(0)
    run_id = RobocorpHook().start_process_run("proc-slow")["id"]
    before = len(robocorp_emulator.requests_log())
    trigger = ProcessRunTrigger(run_id, poll_interval=0.1, first_poll_delay=600, deadline=time_module.time() + 0.3)
    event = run_trigger(trigger)
    assert event.payload["status"] == "timeout"
    polls = [r for r in robocorp_emulator.requests_log()[before:] if r["path"].endswith(run_id)]
    assert len(polls) == 1  # one look at the deadline, none during the grace period
