"""ProcessRunSensor in poke, reschedule and deferrable modes, against the emulator."""

from __future__ import annotations

import pytest

from airflow_provider_robocorp._compat import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow_provider_robocorp.exceptions import RobocorpError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.sensors import ProcessRunSensor
from tests.operators.helpers import context, posts, run_trigger

pytestmark = pytest.mark.usefixtures("robocorp_conn_env")


def start(process_id: str = "proc-invoices", **kwargs: object) -> str:
    return RobocorpHook().start_process_run(process_id, **kwargs)["id"]  # type: ignore[arg-type]


def sensor(run_id: str, **kwargs: object) -> ProcessRunSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("deferrable", False)
    return ProcessRunSensor(task_id="wait", process_run_id=run_id, **kwargs)  # type: ignore[arg-type]


def test_poke_mode_waits_for_completion_and_pushes_the_url(robocorp_emulator, capsys):
    run_id = start(payloads=[{"n": 1}])
    ctx = context()

    sensor(run_id, timeout=30).execute(ctx)

    assert ctx["ti"].xcom["process_run_url"].endswith(f"/processes/proc-invoices/runs/{run_id}")
    assert ctx["ti"].xcom["process_run_url"].startswith(robocorp_emulator.url + "/organizations/org-emulator/")
    assert f"Process run {run_id} is completed; work items: 1 done" in capsys.readouterr().out


def test_poke_reports_waiting_states_as_not_done(robocorp_emulator):
    run_id = start("proc-slow")
    assert sensor(run_id).poke(context()) is False


def test_unresolved_fails_with_the_failed_items(robocorp_emulator, capsys):
    run_id = start(payloads=[{"fail": True, "reason": "Supplier unknown"}])

    with pytest.raises(AirflowFailException, match=r"ended unresolved.*INVALID_INVOICE\): Supplier unknown"):
        sensor(run_id, timeout=30).execute(context())
    assert "[Read invoice] ERROR INVALID_INVOICE: Supplier unknown" in capsys.readouterr().out


@pytest.mark.parametrize("deferrable", [False, True])
def test_unresolved_with_soft_fail_skips(robocorp_emulator, deferrable):
    run_id = start(payloads=[{"fail": True}])
    RobocorpHook().wait_for_process_run(run_id, poll_interval=0.1, timeout=10, accepted_states=("unresolved",))
    with pytest.raises(AirflowSkipException):
        sensor(run_id, timeout=30, soft_fail=True, deferrable=deferrable).execute(context())


def test_poke_mode_timeout(robocorp_emulator):
    run_id = start("proc-slow")
    with pytest.raises(AirflowSensorTimeout):
        sensor(run_id, timeout=0.3).execute(context())
    assert posts(robocorp_emulator, "/stop") == []  # a sensor never stops a run


def test_reschedule_mode_frees_the_slot_while_waiting(robocorp_emulator):
    run_id = start("proc-slow")
    ctx = context()
    with pytest.raises(AirflowRescheduleException):
        sensor(run_id, mode="reschedule", poke_interval=30, timeout=600).execute(ctx)
    assert "process_run_url" in ctx["ti"].xcom


def test_deferrable_defers_then_succeeds(robocorp_emulator):
    run_id = start(payloads=[{"n": 1}])
    op = sensor(run_id, deferrable=True, timeout=60)
    ctx = context()

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)

    trigger = deferred.value.trigger
    assert trigger.stop_on_kill is False and trigger.poll_interval == 0.1
    assert "process_run_url" in ctx["ti"].xcom
    event = run_trigger(trigger)
    sensor(run_id, deferrable=True).execute_complete(context(), event=event.payload)  # no exception: success


def test_deferrable_returns_at_once_when_already_done(robocorp_emulator):
    run_id = start(payloads=[{"n": 1}])
    RobocorpHook().wait_for_process_run(run_id, poll_interval=0.1, timeout=10)
    assert sensor(run_id, deferrable=True).execute(context()) is None


def test_deferrable_failure_and_timeout_events(robocorp_emulator):
    run_id = start(payloads=[{"fail": True}])
    RobocorpHook().wait_for_process_run(run_id, poll_interval=0.1, timeout=10, accepted_states=("unresolved",))
    op = sensor(run_id, deferrable=True)
    failure = {"status": "failure", "process_run_id": run_id, "state": "unresolved", "message": "x"}
    timeout = {"status": "timeout", "process_run_id": run_id, "state": "in_progress", "message": "Too slow."}

    with pytest.raises(AirflowFailException, match="INVALID_INVOICE"):
        op.execute_complete(context(), event=failure)
    with pytest.raises(AirflowSensorTimeout, match="Too slow"):
        op.execute_complete(context(), event=timeout)


@pytest.mark.parametrize("event", [None, {"status": "success", "process_run_id": "r", "state": "stopping"}, []])
def test_malformed_events_fail_closed(event):
    with pytest.raises(RobocorpError, match="Malformed event"):
        sensor("r", deferrable=True).execute_complete(context(), event=event)


def test_unknown_state_fails_closed(monkeypatch):
    monkeypatch.setattr(RobocorpHook, "get_process_run", lambda self, run_id: {"id": run_id, "state": "paused",
                                                                               "process": {"id": "proc-report"}})
    monkeypatch.setattr(RobocorpHook, "work_item_counts", lambda self, run_id: {"total": 0})
    with pytest.raises(AirflowFailException, match="unknown state 'paused'"):
        sensor("r").poke(context())
