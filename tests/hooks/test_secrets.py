"""The API key never shows: not in error messages, str/repr, pickles, tracebacks, the hook, its
settings, or log records emitted while calls fail and retry (the integration endpoint included,
where the key travels in the ``token`` query parameter)."""

from __future__ import annotations

import asyncio
import logging
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_robocorp.exceptions import RobocorpError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import CONN_ENV, KEY, WS, WS_URL, Reply, ScriptedServer, closed_port, set_json_conn

INTEGRATION_URL = f"{WS_URL}processes/p-1/process-runs-integrations"
#: Loggers of the test tooling itself (requests_mock logs the mocked URL at DEBUG).
TOOLING = ("requests_mock",)


def _assert_error_is_clean(err: BaseException) -> None:
    assert KEY not in str(err)
    assert KEY not in repr(err)
    assert KEY not in repr(err.args)
    assert KEY not in "".join(traceback.format_exception(err))
    assert KEY.encode() not in pickle.dumps(err)
    assert KEY not in repr(vars(err))


def _leaks(records: list[logging.LogRecord], *, library_debug: bool = True) -> list[str]:
    """Log lines that contain the key. ``library_debug=False`` ignores third-party DEBUG records."""
    found = []
    for record in records:
        if record.name.startswith(TOOLING):
            continue
        ours = record.name.startswith(("airflow_provider_robocorp", "tenacity"))
        if not library_debug and not ours and record.levelno < logging.INFO:
            continue
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        if KEY in text:
            found.append(f"{record.name}:{record.levelname}: {text}")
    return found


def test_hook_and_settings_reprs(hook: RobocorpHook) -> None:
    settings = hook.settings
    assert settings.authorization == f"RC-WSKEY {KEY}"  # it is there ...
    for text in (repr(hook), str(hook), repr(settings), str(settings)):  # ... but never shown
        assert KEY not in text
    assert "robocorp_default" in repr(hook)
    assert KEY not in repr(hook._transport.session.headers)


Scenario = Callable[[RobocorpHook], Any]
MOCKED: list[tuple[str, str, str, dict, Scenario]] = [
    ("401", "GET", f"{WS_URL}processes/p-1", {"status_code": 401, "json": {"message": f"bad key {KEY[:5]}"}},
     lambda h: h.get_process("p-1")),
    ("403", "POST", f"{WS_URL}work-items", {"status_code": 403, "json": {"code": "forbidden", "message": "no"}},
     lambda h: h.create_work_item("p-1", {})),
    ("500-retried", "GET", f"{WS_URL}processes/p-1", {"status_code": 500, "text": "boom"},
     lambda h: h.get_process("p-1")),
    ("429-retried", "DELETE", f"{WS_URL}assets/as-1", {"status_code": 429, "headers": {"Retry-After": "1"}},
     lambda h: h.delete_asset("as-1")),
    ("read-timeout-post", "POST", f"{WS_URL}processes/p-1/process-runs",
     {"exc": requests.exceptions.ReadTimeout(f"HTTPSConnectionPool: Read timed out. (token={KEY})")},
     lambda h: h.start_process_run("p-1")),
    ("connection-error-get", "GET", f"{WS_URL}processes/p-1",
     {"exc": requests.exceptions.ConnectionError(f"Max retries exceeded with url: /x?token={KEY}")},
     lambda h: h.get_process("p-1")),
    ("integration-400", "POST", INTEGRATION_URL, {"status_code": 400, "json": {"code": "bad", "message": "bad"}},
     lambda h: h.start_process_run_for_integration("p-1", {"a": 1})),
    ("integration-401", "POST", INTEGRATION_URL, {"status_code": 401, "json": {"code": "denied", "message": "no"}},
     lambda h: h.start_process_run_for_integration("p-1", {"a": 1}, with_handshake="asana")),
    ("integration-503-retried", "POST", INTEGRATION_URL, {"status_code": 503},
     lambda h: h.start_process_run_for_integration("p-1", {"a": 1})),
    ("integration-500", "POST", INTEGRATION_URL, {"status_code": 500, "text": "Internal Server Error"},
     lambda h: h.start_process_run_for_integration("p-1", {"a": 1})),
    ("integration-read-timeout", "POST", INTEGRATION_URL,
     {"exc": requests.exceptions.ReadTimeout(f"Read timed out: /x?token={KEY}")},
     lambda h: h.start_process_run_for_integration("p-1", {"a": 1})),
    ("integration-connect-timeout", "POST", INTEGRATION_URL,
     {"exc": requests.exceptions.ConnectTimeout(f"timed out: /x?token={KEY}")},
     lambda h: h.start_process_run_for_integration("p-1", {"a": 1})),
]


@pytest.mark.parametrize(("method", "url", "response", "scenario"), [m[1:] for m in MOCKED], ids=[m[0] for m in MOCKED])
def test_failing_calls_never_show_the_key(
    conn, requests_mock, sleeps, caplog, method: str, url: str, response: dict, scenario: Scenario
) -> None:
    requests_mock.register_uri(method, url, **response)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RobocorpError) as err:
        scenario(RobocorpHook(max_retries=2))
    _assert_error_is_clean(err.value)
    assert _leaks(caplog.records) == []


def test_retry_warnings_are_logged_and_clean(conn, requests_mock, sleeps, caplog) -> None:
    requests_mock.post(INTEGRATION_URL, status_code=503)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RobocorpError):
        RobocorpHook(max_retries=2).start_process_run_for_integration("p-1", {})
    retries = [r for r in caplog.records if r.name.startswith("airflow_provider_robocorp") and "retry" in r.getMessage()]
    assert len(retries) == 2  # the check below saw the lines it is about
    assert all(f"/api/v1/workspaces/{WS}/processes/p-1/process-runs-integrations failed" in r.getMessage()
               for r in retries)
    assert _leaks(caplog.records) == []


REAL: list[tuple[str, list[Reply]]] = [
    ("403", [Reply(403, {"error": {"code": "forbidden", "message": "Not allowed"}})]),
    ("502-html", [Reply(502, body=b"<html><title>502 Bad Gateway</title></html>")]),
    ("503-retried", [Reply(503), Reply(503), Reply(503)]),
    ("timeout", [Reply(action="hang")]),
    ("dropped", [Reply(action="close")]),
]


@pytest.mark.parametrize("replies", [r[1] for r in REAL], ids=[r[0] for r in REAL])
def test_integration_endpoint_over_the_wire(loopback_conn: ScriptedServer, sleeps, caplog, replies) -> None:
    loopback_conn.script(*replies)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RobocorpError) as err:
        RobocorpHook(timeout=0.3, max_retries=2).start_process_run_for_integration("p-1", {"a": 1})
    _assert_error_is_clean(err.value)
    # The key did travel (as the token) ...
    assert dict(loopback_conn.requests[0].query)["token"] == KEY
    assert "authorization" not in loopback_conn.requests[0].headers
    # ... but no log line shows it, not even urllib3's DEBUG request line (its token is redacted).
    assert _leaks(caplog.records) == []
    if replies[0].action is None:  # urllib3 logs the request line once an answer arrived
        assert any("token=***" in r.getMessage() for r in caplog.records if r.name == "urllib3.connectionpool")


def test_integration_endpoint_connection_refused(monkeypatch, sleeps, caplog) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, host=f"http://127.0.0.1:{closed_port()}/api/v1/")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RobocorpError) as err:
        RobocorpHook(max_retries=1).start_process_run_for_integration("p-1", {})
    _assert_error_is_clean(err.value)
    assert _leaks(caplog.records, library_debug=False) == []


def test_async_failures_never_show_the_key(loopback_conn: ScriptedServer, async_sleeps, caplog) -> None:
    loopback_conn.script(Reply(503), Reply(401, {"code": "unauthorized", "message": "Invalid key"}))
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        hook = RobocorpHook(max_retries=2)
        try:
            await hook.aget_process_run("pr-1")
        finally:
            await hook.aclose()

    with pytest.raises(RobocorpError) as err:
        asyncio.run(main())
    _assert_error_is_clean(err.value)
    assert _leaks(caplog.records) == []


def test_config_errors_never_show_the_key(monkeypatch, requests_mock) -> None:
    monkeypatch.setenv(CONN_ENV, f"robocorp://{WS}:{KEY}@http%3A%2F%2Fexample.com")
    with pytest.raises(RobocorpError) as err:
        RobocorpHook().get_workspace()
    _assert_error_is_clean(err.value)
    set_json_conn(monkeypatch, login=WS, password=f"{KEY} {KEY}")
    with pytest.raises(RobocorpError) as err:
        RobocorpHook().get_workspace()
    _assert_error_is_clean(err.value)
    assert requests_mock.call_count == 0


def test_test_connection_message_never_shows_the_key(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(WS_URL.rstrip("/"), status_code=403, json={"message": "Forbidden"})
    ok, message = hook.test_connection()
    assert not ok and KEY not in message
