"""ProcessRunTrigger against the emulator: events, deadline, transient errors, on_kill, serde."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

try:  # how the triggerer stores trigger kwargs
    from airflow.sdk.serde import deserialize, serialize
except ImportError:  # Airflow < 3.2: BaseSerialization
    from airflow.serialization.serialized_objects import BaseSerialization

    serialize, deserialize = BaseSerialization.serialize, BaseSerialization.deserialize  # type: ignore[assignment]

from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.triggers import ProcessRunTrigger
from airflow_provider_robocorp.triggers.process_run import check_event, is_transient
from tests.operators.helpers import posts, run_trigger


@pytest.fixture
def no_hook_retries(robocorp_emulator, monkeypatch):
    """The connection with ``max_retries=0``: only the trigger's own loop can survive errors."""
    conn = json.loads(robocorp_emulator.connection_json())
    conn["extra"] = {"max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps(conn))
    return robocorp_emulator


def start(process_id: str = "proc-invoices", **kwargs: object) -> str:
    return RobocorpHook().start_process_run(process_id, **kwargs)["id"]  # type: ignore[arg-type]


def test_serialize_round_trips_through_airflow_serde():
    trigger = ProcessRunTrigger("run-1", "my_conn", poll_interval=5, deadline=1700000000.5, stop_on_kill=True,
                                workspace_id="ws-2")
    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_robocorp.triggers.process_run.ProcessRunTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    restored: Any = deserialize(serialize(kwargs))
    again = ProcessRunTrigger(**restored)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs == {"process_run_id": "run-1", "robocorp_conn_id": "my_conn", "poll_interval": 5.0,
                      "deadline": 1700000000.5, "stop_on_kill": True, "workspace_id": "ws-2",
                      "first_poll_delay": 0.0}


@pytest.mark.usefixtures("robocorp_conn_env")
def test_completed_run_gives_success_and_logs_progress(robocorp_emulator, capsys):
    run_id = start(payloads=[{"n": 1}, {"n": 2}])

    event = run_trigger(ProcessRunTrigger(run_id, poll_interval=0.1))

    assert event.payload == {"status": "success", "process_run_id": run_id, "state": "completed",
                             "message": f"Process run {run_id} completed."}
    assert check_event(event.payload) == event.payload
    out = capsys.readouterr().out
    assert f"Process run {run_id} is in_progress; work items: " in out  # counted while it ran
    assert f"Process run {run_id} is completed" in out  # reported at once, with no new count
    assert {r["method"] for r in robocorp_emulator.requests_log()[1:]} == {"GET"}  # polls only


@pytest.mark.usefixtures("robocorp_conn_env")
def test_unresolved_run_gives_failure(robocorp_emulator):
    run_id = start(payloads=[{"fail": True}])

    event = run_trigger(ProcessRunTrigger(run_id, poll_interval=0.1))

    assert event.payload["status"] == "failure" and event.payload["state"] == "unresolved"


@pytest.mark.usefixtures("robocorp_conn_env")
def test_deadline_gives_timeout_and_leaves_the_run_alone(robocorp_emulator):
    run_id = start("proc-slow")
    began = time.monotonic()

    event = run_trigger(ProcessRunTrigger(run_id, poll_interval=10, deadline=time.time() + 0.5, stop_on_kill=True))

    assert 0.4 < time.monotonic() - began < 5  # the sleep is cut at the deadline, not a full poll interval
    assert event.payload["status"] == "timeout"
    assert event.payload["state"] == "in_progress"
    assert len(posts(robocorp_emulator)) == 1  # only the start by the test itself: the trigger never POSTs


def test_transient_errors_are_polled_through(no_hook_retries, capsys):
    emulator = no_hook_retries
    run_id = start(payloads=[{"n": 1}])
    emulator.add_fault(kind="status", status=429, retry_after="0", method="GET", path="/process-runs/", times=2)
    emulator.add_fault(kind="status", status=503, method="GET", path="/process-runs/", times=2)
    emulator.add_fault(kind="drop", method="GET", path="/process-runs/", times=1)

    event = run_trigger(ProcessRunTrigger(run_id, poll_interval=0.05))

    assert event.payload["status"] == "success"
    faulted = [r["status"] for r in emulator.requests_log() if r.get("fault")]
    assert faulted.count(429) == 2 and faulted.count(503) == 2
    assert "polling again" in capsys.readouterr().out


def test_permanent_errors_end_with_an_error_event(no_hook_retries):
    event = run_trigger(ProcessRunTrigger("no-such-run", poll_interval=0.05))

    assert event.payload["status"] == "error"
    assert "404" in event.payload["message"]
    assert "emulator-api-key" not in json.dumps(event.payload)


def test_unknown_state_is_an_error(monkeypatch, robocorp_conn_env):
    async def weird(self: RobocorpHook, process_run_id: str) -> dict[str, str]:
        return {"id": process_run_id, "state": "paused"}

    monkeypatch.setattr(RobocorpHook, "aget_process_run", weird)

    event = run_trigger(ProcessRunTrigger("run-1", poll_interval=0.05))

    assert event.payload["status"] == "error"
    assert "unknown state 'paused'" in event.payload["message"]


@pytest.mark.usefixtures("robocorp_conn_env")
@pytest.mark.parametrize("stop_on_kill", [True, False])
def test_on_kill_stops_the_run_only_when_asked(robocorp_emulator, stop_on_kill):
    run_id = start("proc-slow")
    trigger = ProcessRunTrigger(run_id, poll_interval=0.05, stop_on_kill=stop_on_kill)

    async def kill_while_waiting() -> None:
        waiting = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(0.3)
        waiting.cancel()  # what the triggerer does before calling on_kill()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await trigger.on_kill()

    asyncio.run(kill_while_waiting())

    stops = posts(robocorp_emulator, "/stop")
    assert len(stops) == (1 if stop_on_kill else 0)
    state = RobocorpHook().get_process_run(run_id)["state"]
    assert (state in ("stopping", "unresolved")) is stop_on_kill


def test_transient_classification():
    from airflow_provider_robocorp.exceptions import (
        RobocorpNotFoundError,
        RobocorpRateLimitError,
        RobocorpRequestMayHaveBeenAppliedError,
        RobocorpServerError,
        RobocorpTransportError,
    )

    assert is_transient(RobocorpRateLimitError(429, None, "slow down", "GET", "/x"))
    assert is_transient(RobocorpServerError(502, None, "bad gateway", "GET", "/x"))
    assert is_transient(RobocorpTransportError("refused", method="GET", path="/x", reached_server=False))
    assert not is_transient(RobocorpNotFoundError(404, None, "nope", "GET", "/x"))
    assert not is_transient(RobocorpRequestMayHaveBeenAppliedError("lost", method="POST", path="/x",
                                                                   reached_server=True))
