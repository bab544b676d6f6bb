"""``test_connection()``, API key permissions, and the API key never showing in an exception or a
log record (the autouse guard in ``conftest`` checks every test; these tests aim at the risky
places: the integration endpoint carries the key in its ``token`` query parameter)."""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any

import pytest

from airflow_provider_robocorp.exceptions import (
    RobocorpAuthenticationError,
    RobocorpPermissionError,
    RobocorpRequestMayHaveBeenAppliedError,
    RobocorpServerError,
    RobocorpTransportError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import (
    API,
    API_KEY,
    CONN_ENV,
    READONLY_KEY,
    WS,
    endpoint_regex,
    fast_hook,
    hits,
    raises,
    settled_log,
    state_of,
)

INTEGRATION = endpoint_regex("start_process_run_for_integration")


def _use_key(monkeypatch: pytest.MonkeyPatch, emulator: Any, key: str) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps({**emulator.connection(), "password": key}))


def test_test_connection_succeeds(emulator: Any) -> None:
    assert RobocorpHook().test_connection() == (
        True, "Connected to Control Room workspace 'Emulator Workspace' (organization 'Emulator Org')."
    )


def test_test_connection_with_a_wrong_key(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_key(monkeypatch, emulator, "RC-WSKEY not-the-right-key")
    ok, message = RobocorpHook().test_connection()
    assert ok is False
    assert message.startswith(f"Control Room API error: GET {API} returned HTTP 401 unauthorized: Invalid API key.")
    assert "Check the API key in connection 'robocorp_default'" in message
    assert "not-the-right-key" not in message
    assert [e["status"] for e in settled_log(emulator)] == [401]  # a 401 is not retried


def test_test_connection_on_another_workspace(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps({**emulator.connection(), "login": "ws-other"}))
    ok, message = RobocorpHook().test_connection()
    assert ok is False and "HTTP 404" in message and "Workspace ws-other not found" in message


def test_read_only_key_cannot_start_a_run(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_key(monkeypatch, emulator, READONLY_KEY)
    hook = fast_hook()
    assert hook.test_connection()[0] is True
    assert len(list(hook.list_processes())) == 3  # reading is allowed
    with raises(RobocorpPermissionError) as info:
        hook.start_process_run("proc-report")
    err = info.value
    assert (err.status, err.code, err.method) == (403, "forbidden", "POST")
    assert "'Start process run' needs the API key permission 'Processes.trigger_processes'" in str(err)
    with raises(RobocorpPermissionError, match="Processes.write_work_items"):
        hook.create_work_item("proc-report", {})
    assert state_of(emulator, "process_runs") == [] and state_of(emulator, "work_items") == []
    # 403s are final: one request each
    assert [e["status"] for e in settled_log(emulator) if e["method"] == "POST"] == [403, 403]
    hook.close()


def test_integration_endpoint_succeeds_with_the_key_in_the_query(emulator: Any) -> None:
    hook = fast_hook()
    started = hook.start_process_run_for_integration("proc-report", {"ticket": 42})
    assert started["started"] is True
    [entry] = hits(settled_log(emulator), "POST", INTEGRATION)
    assert entry["query_keys"] == ["token"] and entry["status"] == 200
    [item] = hook.list_work_items(process_run_id=started["id"])
    assert hook.get_work_item(item["id"], include_data=True)["payload"] == {"ticket": 42}
    hook.close()


def test_integration_endpoint_asana_handshake(emulator: Any) -> None:
    hook = fast_hook()
    started = hook.start_process_run_for_integration("proc-report", {"events": []}, "asana",
                                                     hook_secret="asana-secret")
    assert started["started"] is True
    [entry] = hits(settled_log(emulator), "POST", INTEGRATION)
    assert entry["query_keys"] == ["token", "with_handshake"]
    hook.close()


def test_integration_endpoint_faults_never_show_the_key(emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    hook = fast_hook()

    def fault(**rule: Any) -> None:
        emulator.add_fault(method="POST", path="process-runs-integrations", times=1, **rule)

    fault(kind="status", status=500)
    with raises(RobocorpServerError) as server_error:  # a creating POST: a 500 is not retried
        hook.start_process_run_for_integration("proc-report", {"n": 1})
    assert server_error.value.path == f"{API}/processes/proc-report/process-runs-integrations"
    fault(kind="status", status=503)
    started = hook.start_process_run_for_integration("proc-report", {"n": 2})  # 503 → retried → 200
    fault(kind="drop")
    with raises(RobocorpRequestMayHaveBeenAppliedError):
        hook.start_process_run_for_integration("proc-report", {"n": 3})
    fault(kind="commit_then_drop")
    with raises(RobocorpRequestMayHaveBeenAppliedError):
        hook.start_process_run_for_integration("proc-report", {"n": 4})

    log = hits(settled_log(emulator), "POST", INTEGRATION)
    assert [(e["status"], e["fault"]) for e in log] == [
        (500, "status"), (503, "status"), (200, None), (None, "drop"), (None, "commit_then_drop")]
    assert all(e["query_keys"] == ["token"] for e in log)  # the key really travelled in the query
    # one run from the retried call, one from commit-then-drop; nothing else, nothing twice
    runs = state_of(emulator, "process_runs")
    assert len(runs) == 2 and started["id"] in {r["id"] for r in runs}
    payloads = sorted(i["payload"]["n"] for i in state_of(emulator, "work_items"))
    assert payloads == [2, 4]

    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("airflow_provider_robocorp")]
    assert any("process-runs-integrations failed (HTTP 503)" in w for w in warnings)
    hook.close()


def test_integration_endpoint_wrong_key_and_unreachable_server(emulator: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _use_key(monkeypatch, emulator, "wrong-key-123")
    hook = fast_hook()
    with raises(RobocorpAuthenticationError, match="HTTP 401 unauthorized: Invalid API key") as info:
        hook.start_process_run_for_integration("proc-report", {})
    assert "wrong-key-123" not in str(info.value) and "wrong-key-123" not in repr(info.value)
    hook.close()

    # connection refused: urllib3's own error text holds the full URL, token included; it must not
    # reach the message, the repr or the formatted traceback
    monkeypatch.setenv(CONN_ENV, json.dumps({**emulator.connection(), "password": API_KEY,
                                             "host": "http://127.0.0.1:9/api/v1/"}))
    hook = fast_hook(max_retries=1)
    with raises(RobocorpTransportError, match="could not connect") as refused:
        hook.start_process_run_for_integration("proc-report", {})
    assert refused.value.reached_server is False
    hook.close()


def test_errors_survive_pickling_without_the_key(emulator: Any) -> None:
    hook = fast_hook()
    emulator.add_fault(kind="status", status=500, method="POST", path="process-runs-integrations", times=1)
    with raises(RobocorpServerError) as info:
        hook.start_process_run_for_integration("proc-report", {})
    copy = pickle.loads(pickle.dumps(info.value))
    assert str(copy) == str(info.value) and API_KEY not in str(copy)
    assert API_KEY.encode() not in pickle.dumps(info.value)
    hook.close()


def test_hook_and_settings_reprs_hide_the_key(emulator: Any) -> None:
    hook = fast_hook()
    assert hook.settings.workspace_id == WS
    assert hook.settings.authorization == f"RC-WSKEY {API_KEY}"
    for text in (repr(hook), str(hook), repr(hook.settings), repr(hook._transport.settings)):
        assert API_KEY not in text, text
    hook.close()


def test_debug_logging_of_a_whole_session_has_no_key(emulator: Any, caplog: pytest.LogCaptureFixture,
                                                     tmp_path: Any) -> None:
    """A busy session under DEBUG on the provider's loggers; the guard checks every record."""
    caplog.set_level(logging.DEBUG, logger="airflow_provider_robocorp")
    hook = fast_hook()
    emulator.add_fault(kind="status", status=503, times=3)
    hook.upload_asset("it-logged", data=b"x" * 10, poll_interval=0.05)
    hook.start_process_run_for_integration("proc-report", {})
    assert hook.test_connection()[0] is True
    assert any(r.name.startswith("airflow_provider_robocorp") for r in caplog.records)
    hook.close()
