"""Retry semantics through the emulator's injected faults (``add_fault``).

The policy (``_pipeline.RetryPolicy`` + ``_transport``): 429/503 are retried for every request;
500/502/504 and a lost answer only for idempotent ones; a creating POST whose connection broke
after it was sent is ambiguous and raises ``RobocorpRequestMayHaveBeenAppliedError`` without a
retry; a connection that was never established is retried for anything.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from typing import Any

import pytest

from airflow_provider_robocorp.emulator.server import EmulatorServer
from airflow_provider_robocorp.exceptions import (
    RobocorpRateLimitError,
    RobocorpRequestMayHaveBeenAppliedError,
    RobocorpServerError,
    RobocorpTransportError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import (
    API,
    API_KEY,
    CONN_ENV,
    WS,
    endpoint_regex,
    fast_hook,
    hits,
    raises,
    settled_log,
    state_of,
)

WORK_ITEMS = API + "/work-items"


@pytest.fixture
def hook(emulator: Any) -> Any:
    h = fast_hook()
    yield h
    h.close()


def _retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("airflow_provider_robocorp") and r.levelno == logging.WARNING]


def _fired(emulator: Any) -> list[int]:
    return [rule["fired"] for rule in emulator.state()["faults"]]


def test_429_with_retry_after_is_honoured(hook: RobocorpHook, emulator: Any,
                                          caplog: pytest.LogCaptureFixture) -> None:
    emulator.add_fault(kind="status", status=429, retry_after=1, method="GET", path="/processes$", times=1)
    began = time.monotonic()
    assert [p["id"] for p in hook.list_processes()] == ["proc-invoices", "proc-report", "proc-slow"]
    # Retry-After (1 s) wins over the back-off, which is at most 0.05 s for this hook
    assert time.monotonic() - began >= 0.95
    log = settled_log(emulator)
    assert [(e["status"], e["fault"]) for e in hits(log, "GET", API + "/processes")] == [
        (429, "status"), (200, None)]
    [warning] = _retry_warnings(caplog)
    assert "HTTP 429" in warning and "retry 1 of 5 in 1.0 s" in warning


def test_429_beyond_max_retries_raises_rate_limit_error(hook: RobocorpHook, emulator: Any) -> None:
    emulator.add_fault(kind="status", status=429, retry_after=0, method="GET", path="/processes$")
    with raises(RobocorpRateLimitError) as info:
        list(hook.list_processes())
    assert info.value.status == 429 and info.value.retry_after == 0.0
    assert len(hits(settled_log(emulator), "GET", API + "/processes")) == 6  # 1 + max_retries (5)


def test_503_on_create_work_item_is_retried_and_creates_one_item(hook: RobocorpHook, emulator: Any) -> None:
    emulator.add_fault(kind="status", status=503, method="POST", path="/work-items$", times=2)
    item = hook.create_work_item("proc-invoices", {"invoice": 1})
    assert [i["id"] for i in state_of(emulator, "work_items")] == [item["id"]]
    assert [e["status"] for e in hits(settled_log(emulator), "POST", WORK_ITEMS)] == [503, 503, 200]


def test_500_on_create_work_item_is_not_retried(hook: RobocorpHook, emulator: Any) -> None:
    emulator.add_fault(kind="status", status=500, method="POST", path="/work-items$", times=1)
    with raises(RobocorpServerError, match="HTTP 500 internal_server_error") as info:
        hook.create_work_item("proc-invoices", {"invoice": 1})
    assert (info.value.status, info.value.method, info.value.path) == (500, "POST", WORK_ITEMS)
    assert [e["status"] for e in hits(settled_log(emulator), "POST", WORK_ITEMS)] == [500]
    assert state_of(emulator, "work_items") == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_5xx_on_a_get_is_retried(hook: RobocorpHook, emulator: Any, status: int) -> None:
    emulator.add_fault(kind="status", status=status, method="GET", path="/work-items$", times=2)
    assert list(hook.list_work_items()) == []
    assert [e["status"] for e in hits(settled_log(emulator), "GET", WORK_ITEMS)] == [status, status, 200]


def test_drop_on_a_get_is_retried(hook: RobocorpHook, emulator: Any) -> None:
    run_id = hook.start_process_run("proc-report")["id"]
    emulator.add_fault(kind="drop", method="GET", path="/process-runs/", times=1)
    assert hook.get_process_run(run_id)["id"] == run_id
    log = hits(settled_log(emulator), "GET", endpoint_regex("get_process_run"))
    assert [(e["status"], e["fault"]) for e in log] == [(None, "drop"), (200, None)]


def test_commit_then_drop_on_start_raises_and_starts_exactly_one_run(hook: RobocorpHook, emulator: Any) -> None:
    emulator.add_fault(kind="commit_then_drop", method="POST", path="/process-runs$", times=1)
    with raises(RobocorpRequestMayHaveBeenAppliedError, match="may have applied it") as info:
        hook.start_process_run("proc-invoices", payloads=[{"invoice": 1}])
    assert info.value.reached_server is not False
    runs = state_of(emulator, "process_runs")
    assert len(runs) == 1 and runs[0]["process"]["id"] == "proc-invoices"
    assert len(hits(settled_log(emulator), "POST", endpoint_regex("start_process_run"))) == 1
    # and the caller can find the run it may have started
    assert [r["id"] for r in hook.list_process_runs(process_id="proc-invoices")] == [runs[0]["id"]]


def test_drop_before_commit_on_a_creating_post_is_ambiguous_so_not_retried(hook: RobocorpHook,
                                                                           emulator: Any) -> None:
    """The connection closes after the request was sent: the client cannot know whether it was
    applied (here it was not), so the creating POST is reported, not repeated."""
    emulator.add_fault(kind="drop", method="POST", path="/work-items$", times=1)
    with raises(RobocorpRequestMayHaveBeenAppliedError) as info:
        hook.create_work_item("proc-invoices", {"invoice": 1})
    assert info.value.reached_server is None
    assert [e["fault"] for e in hits(settled_log(emulator), "POST", WORK_ITEMS)] == ["drop"]
    assert state_of(emulator, "work_items") == []


def test_drop_on_an_idempotent_post_is_retried(hook: RobocorpHook, frozen: Any) -> None:
    run_id = hook.start_process_run("proc-slow")["id"]
    frozen.advance(1)
    frozen.add_fault(kind="drop", method="POST", path="/stop$", times=1)
    assert hook.stop_process_run(run_id) == {"accepted": True}
    assert [e["fault"] for e in hits(settled_log(frozen), "POST", endpoint_regex("stop_process_run"))] == [
        "drop", None]


def test_latency_beyond_the_timeout_on_a_get(emulator: Any) -> None:
    hook = fast_hook(timeout=0.3, max_retries=2)
    emulator.add_fault(kind="latency", delay_seconds=1.0, method="GET", path="/workers$")
    began = time.monotonic()
    with raises(RobocorpTransportError, match=r"no answer within 0.3 s \(read timeout\)") as info:
        list(hook.list_workers())
    elapsed = time.monotonic() - began
    assert type(info.value) is RobocorpTransportError and info.value.reached_server is True
    assert _fired(emulator) == [3]  # the first attempt and two retries
    assert 0.85 <= elapsed < 3
    hook.close()


def test_latency_then_success_on_a_get(emulator: Any) -> None:
    hook = fast_hook(timeout=0.3)
    emulator.add_fault(kind="latency", delay_seconds=1.0, method="GET", path="/workers$", times=1)
    assert len(list(hook.list_workers())) == 2
    assert _fired(emulator) == [1]
    hook.close()


def test_read_timeout_on_a_creating_post_is_not_retried(emulator: Any) -> None:
    hook = fast_hook(timeout=0.3)
    emulator.add_fault(kind="latency", delay_seconds=0.8, method="POST", path="/work-items$")
    with raises(RobocorpRequestMayHaveBeenAppliedError, match="read timeout") as info:
        hook.create_work_item("proc-invoices", {"invoice": 1})
    assert info.value.reached_server is True
    assert _fired(emulator) == [1]
    # the server went on and applied it: exactly the case a blind retry would have duplicated
    deadline = time.monotonic() + 3
    while not state_of(emulator, "work_items") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(state_of(emulator, "work_items")) == 1
    hook.close()


def _point_connection_at(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps({"conn_type": "robocorp", "login": WS, "password": API_KEY,
                                             "host": base_url}))


def test_connection_refused_on_an_unused_port(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _point_connection_at(monkeypatch, f"http://127.0.0.1:{port}/api/v1/")
    hook = fast_hook(max_retries=2)
    with raises(RobocorpTransportError, match="could not connect to Control Room") as info:
        hook.create_work_item("proc-invoices", {"invoice": 1})
    # never connected: nothing can have been applied, so even a creating POST was retried
    assert type(info.value) is RobocorpTransportError and info.value.reached_server is False
    assert len(_retry_warnings(caplog)) == 2
    hook.close()


def test_connection_refused_by_a_stopped_server(monkeypatch: pytest.MonkeyPatch) -> None:
    server = EmulatorServer().start()
    try:
        _point_connection_at(monkeypatch, server.api_url)
        hook = fast_hook(max_retries=1)
        assert hook.get_workspace()["id"] == WS
        hook.close()  # drop the pooled keep-alive connection too
    finally:
        server.stop()
    assert not server.running
    with raises(RobocorpTransportError, match="could not connect") as info:
        hook.start_process_run("proc-report")
    assert type(info.value) is RobocorpTransportError and info.value.reached_server is False
    hook.close()
