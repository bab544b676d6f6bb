"""Retry classification over real loopback sockets: refused connections, silent servers, dropped answers."""

from __future__ import annotations

import time

import pytest

from airflow_provider_robocorp.exceptions import (
    RobocorpRequestMayHaveBeenAppliedError,
    RobocorpTransportError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import KEY, WS, Recorded, Reply, ScriptedServer, closed_port, set_json_conn


def test_connection_refused_is_retried_for_a_creating_post(monkeypatch) -> None:
    """Nothing listens on the port; the server appears during the back-off; the POST then lands once."""
    port = closed_port()
    set_json_conn(monkeypatch, login=WS, password=KEY, host=f"http://127.0.0.1:{port}/api/v1/")
    revived: list[ScriptedServer] = []
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if not revived:
            srv = ScriptedServer(port=port).start()
            srv.script(Reply(200, {"id": "wi-1"}))
            revived.append(srv)

    monkeypatch.setattr(time, "sleep", sleep)
    try:
        result = RobocorpHook().create_work_item("p-1", {"n": 1})
    finally:
        for srv in revived:
            srv.stop()
    assert result == {"id": "wi-1"}
    assert len(waits) == 1
    assert [(r.method, r.path, r.json()) for r in revived[0].requests] == [
        ("POST", f"/api/v1/workspaces/{WS}/work-items", {"process": {"id": "p-1"}, "payload": {"n": 1}})
    ]


def test_connection_refused_exhausts_retries(monkeypatch, sleeps: list[float]) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, host=f"127.0.0.1:{closed_port()}")
    with pytest.raises(RobocorpTransportError) as err:
        RobocorpHook(max_retries=2).start_process_run("p-1")
    assert not isinstance(err.value, RobocorpRequestMayHaveBeenAppliedError)
    assert err.value.reached_server is False
    assert "could not connect to Control Room" in str(err.value)
    assert len(sleeps) == 2


def test_read_timeout_on_start_process_run_is_not_retried(loopback_conn: ScriptedServer, sleeps) -> None:
    loopback_conn.script(Reply(action="hang"), Reply(200, {"started": True, "id": "pr-2"}))
    started = time.monotonic()
    with pytest.raises(RobocorpRequestMayHaveBeenAppliedError) as err:
        RobocorpHook(timeout=0.3).start_process_run("p-1", use_input_work_items=True)
    assert time.monotonic() - started < 2.5
    message = str(err.value)
    assert message.startswith(f"POST /api/v1/workspaces/{WS}/processes/p-1/process-runs: the request was sent")
    assert "no answer within 0.3 s (read timeout)" in message
    assert "Control Room may have applied it, so it was not retried automatically" in message
    assert len(loopback_conn.requests) == 1
    assert sleeps == []


def test_read_timeout_on_create_work_item_is_not_retried(loopback_conn: ScriptedServer, sleeps) -> None:
    loopback_conn.script(Reply(action="hang"))
    with pytest.raises(RobocorpRequestMayHaveBeenAppliedError):
        RobocorpHook(timeout=0.3).create_work_item("p-1", {"n": 1})
    assert len(loopback_conn.requests) == 1


def test_read_timeout_on_get_is_retried(loopback_conn: ScriptedServer, sleeps) -> None:
    loopback_conn.script(Reply(action="hang"), Reply(200, {"id": "pr-1", "state": "in_progress"}))
    run = RobocorpHook(timeout=0.3).get_process_run("pr-1")
    assert run == {"id": "pr-1", "state": "in_progress"}
    assert [r.path for r in loopback_conn.requests] == [f"/api/v1/workspaces/{WS}/process-runs/pr-1"] * 2
    assert len(sleeps) == 1


def test_read_timeouts_on_get_stop_after_max_retries(loopback_conn: ScriptedServer, sleeps) -> None:
    loopback_conn.script(Reply(action="hang"), Reply(action="hang"))
    with pytest.raises(RobocorpTransportError) as err:
        RobocorpHook(timeout=0.3, max_retries=1).get_process_run("pr-1")
    assert not isinstance(err.value, RobocorpRequestMayHaveBeenAppliedError)
    assert err.value.reached_server is True
    assert len(loopback_conn.requests) == 2


def test_dropped_answer_on_a_creating_post_is_not_retried(loopback_conn: ScriptedServer, sleeps) -> None:
    loopback_conn.script(Reply(action="close"), Reply(200, {"id": "wi-1"}))
    with pytest.raises(RobocorpRequestMayHaveBeenAppliedError):
        RobocorpHook().create_work_item("p-1", {})
    assert len(loopback_conn.requests) == 1


def test_dropped_answer_on_get_is_retried(loopback_conn: ScriptedServer, sleeps) -> None:
    loopback_conn.script(Reply(action="close"), Reply(200, {"id": "p-1"}))
    assert RobocorpHook().get_process("p-1") == {"id": "p-1"}
    assert len(loopback_conn.requests) == 2


def test_real_429_then_success(loopback_conn: ScriptedServer, sleeps) -> None:
    loopback_conn.script(
        Reply(429, {"code": "rate_limited", "message": "slow down"}, headers={"Retry-After": "2"}),
        Reply(200, {"started": True, "id": "pr-9"}),
    )
    assert RobocorpHook().start_process_run("p-1") == {"started": True, "id": "pr-9"}
    assert sleeps == [2.0]
    first, second = loopback_conn.requests
    assert first.body == second.body == b""
    assert "content-type" not in first.headers


def test_server_sees_the_same_request_on_the_wire(loopback_conn: ScriptedServer) -> None:
    """requests_mock shows what requests was asked to send; this shows what left the socket."""

    def answer(record: Recorded) -> Reply:
        return Reply(200, {"id": "wi-1", "echo": record.json()})

    loopback_conn.script(answer)
    result = RobocorpHook().create_work_item("p-1", {"é": "ü", "n": [1, 2.5, None, True]})
    assert result["echo"] == {"process": {"id": "p-1"}, "payload": {"é": "ü", "n": [1, 2.5, None, True]}}
    (record,) = loopback_conn.requests
    assert record.headers["authorization"] == f"RC-WSKEY {KEY}"
    assert record.headers["content-type"] == "application/json"
    assert record.headers["content-length"] == str(len(record.body))
    assert "transfer-encoding" not in record.headers
