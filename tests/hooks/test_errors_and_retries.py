"""Error bodies and classes, and the retry policy (what is repeated, how long it waits, how often)."""

from __future__ import annotations

import email.utils
import pickle
import time

import pytest
import requests

from airflow_provider_robocorp.exceptions import (
    RobocorpApiError,
    RobocorpAuthenticationError,
    RobocorpBadRequestError,
    RobocorpConflictError,
    RobocorpError,
    RobocorpNotFoundError,
    RobocorpPermissionError,
    RobocorpRateLimitError,
    RobocorpRequestMayHaveBeenAppliedError,
    RobocorpServerError,
    RobocorpTransportError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .endpoint_cases import FIRST_CASE, ROWS, WireCase, call, expected_path
from .support import WS, WS_URL

PROCESS_URL = f"{WS_URL}processes/p-1"
PROCESS_PATH = f"/api/v1/workspaces/{WS}/processes/p-1"
RUNS_URL = f"{WS_URL}processes/p-1/process-runs"
WORK_ITEMS_URL = f"{WS_URL}work-items"
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    b"</center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.fixture
def no_retry_hook(conn) -> RobocorpHook:
    return RobocorpHook(max_retries=0)


# --- error bodies ----------------------------------------------------------------------------


def test_nested_error_body(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=404,
                      json={"error": {"code": "process_not_found", "message": "Process p-1 not found"}})
    with pytest.raises(RobocorpNotFoundError) as err:
        no_retry_hook.get_process("p-1")
    e = err.value
    assert (e.status, e.code, e.message, e.method, e.path) == (
        404, "process_not_found", "Process p-1 not found", "GET", PROCESS_PATH
    )
    assert str(e).startswith(
        f"Control Room API error: GET {PROCESS_PATH} returned HTTP 404 process_not_found: Process p-1 not found."
    )
    assert "belong to the workspace of connection 'robocorp_default'" in str(e)


def test_flat_error_body(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.post(f"{WS_URL}process-runs/pr-1/stop", status_code=409,
                       json={"code": "invalid_state", "message": "Process run already completed"})
    with pytest.raises(RobocorpConflictError) as err:
        no_retry_hook.stop_process_run("pr-1")
    e = err.value
    assert (e.status, e.code, e.message, e.method) == (409, "invalid_state", "Process run already completed", "POST")
    assert e.path == f"/api/v1/workspaces/{WS}/process-runs/pr-1/stop"
    assert "HTTP 409 invalid_state: Process run already completed" in str(e)


def test_html_error_page_from_a_proxy(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=502, content=NGINX_502, headers={"Content-Type": "text/html"})
    with pytest.raises(RobocorpServerError) as err:
        no_retry_hook.get_process("p-1")
    e = err.value
    assert e.code is None
    assert e.message == "502 Bad Gateway"
    assert str(e) == f"Control Room API error: GET {PROCESS_PATH} returned HTTP 502: 502 Bad Gateway"
    assert "<" not in str(e) and "nginx" not in str(e)


def test_plain_text_error_body(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=500, text="upstream   connect error\n or disconnect")
    with pytest.raises(RobocorpServerError) as err:
        no_retry_hook.get_process("p-1")
    assert err.value.message == "upstream connect error or disconnect"


def test_long_error_body_is_cut(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=500, text="x" * 5000)
    with pytest.raises(RobocorpServerError) as err:
        no_retry_hook.get_process("p-1")
    assert err.value.message == "x" * 300


def test_empty_error_body(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=500, content=b"")
    with pytest.raises(RobocorpServerError) as err:
        no_retry_hook.get_process("p-1")
    assert (err.value.code, err.value.message) == (None, "HTTP 500 with an empty body")


def test_json_error_without_code_or_message(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=400, json={"detail": "bad cursor"})
    with pytest.raises(RobocorpBadRequestError) as err:
        no_retry_hook.get_process("p-1")
    assert err.value.code is None
    assert err.value.message == '{"detail": "bad cursor"}'


def test_success_with_a_non_json_body_is_an_error(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=200, text="<html>login page</html>")
    with pytest.raises(RobocorpApiError, match="the response body is not JSON: <html>login page</html>"):
        no_retry_hook.get_process("p-1")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, RobocorpBadRequestError),
        (401, RobocorpAuthenticationError),
        (403, RobocorpPermissionError),
        (404, RobocorpNotFoundError),
        (409, RobocorpConflictError),
        (429, RobocorpRateLimitError),
        (500, RobocorpServerError),
        (502, RobocorpServerError),
        (503, RobocorpServerError),
        (504, RobocorpServerError),
        (418, RobocorpApiError),
    ],
)
def test_error_class_per_status(no_retry_hook: RobocorpHook, requests_mock, status: int, cls: type) -> None:
    from airflow.sdk.exceptions import AirflowException

    requests_mock.get(PROCESS_URL, status_code=status, json={"code": "c", "message": "m"})
    with pytest.raises(RobocorpApiError) as err:
        no_retry_hook.get_process("p-1")
    assert type(err.value) is cls
    assert isinstance(err.value, AirflowException)
    assert err.value.status == status


def test_401_says_to_check_the_key(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=401, json={"error": {"code": "unauthorized", "message": "Bad key"}})
    with pytest.raises(RobocorpAuthenticationError) as err:
        no_retry_hook.get_process("p-1")
    assert "Check the API key in connection 'robocorp_default'" in str(err.value)
    # Control Room may answer 401 to a key that lacks the permission: the message names it too
    assert "also answers 401 to a key without the permission 'Processes.read_processes' that 'Get process'" \
        in str(err.value)


@pytest.mark.parametrize("case", list(FIRST_CASE.values()), ids=list(FIRST_CASE))
def test_403_names_the_permission_from_the_reference(
    no_retry_hook: RobocorpHook, requests_mock, case: WireCase
) -> None:
    row = ROWS[case.endpoint]
    requests_mock.register_uri(row.method, "https://cloud.robocorp.com" + expected_path(case, WS), status_code=403,
                               json={"error": {"code": "forbidden", "message": "Missing permission"}})
    with pytest.raises(RobocorpPermissionError) as err:
        call(no_retry_hook, case)
    message = str(err.value)
    if row.permission:
        assert f"'{row.title}' needs the API key permission '{row.permission}'" in message
    else:
        assert "the API key is not allowed to do this" in message
    assert "grant it to the key of connection 'robocorp_default'" in message
    assert requests_mock.call_count == 1


def test_api_errors_survive_pickling(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.post(RUNS_URL, status_code=429, headers={"Retry-After": "3600"},
                       json={"code": "rate_limited", "message": "Slow down"})
    with pytest.raises(RobocorpRateLimitError) as err:
        no_retry_hook.start_process_run("p-1")
    copy = pickle.loads(pickle.dumps(err.value))
    assert type(copy) is RobocorpRateLimitError
    assert (copy.status, copy.code, copy.message, copy.method, copy.path, copy.hint, copy.retry_after) == (
        err.value.status, err.value.code, err.value.message, err.value.method, err.value.path,
        err.value.hint, 3600.0,
    )
    assert str(copy) == str(err.value)


def test_403_error_survives_pickling_with_its_hint(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, status_code=403, json={"code": "forbidden", "message": "no"})
    with pytest.raises(RobocorpPermissionError) as err:
        no_retry_hook.get_process("p-1")
    copy = pickle.loads(pickle.dumps(err.value))
    assert type(copy) is RobocorpPermissionError
    assert str(copy) == str(err.value)
    assert "Processes.read_processes" in str(copy)


def test_transport_errors_survive_pickling(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.post(RUNS_URL, exc=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(RobocorpRequestMayHaveBeenAppliedError) as err:
        no_retry_hook.start_process_run("p-1")
    copy = pickle.loads(pickle.dumps(err.value))
    assert type(copy) is RobocorpRequestMayHaveBeenAppliedError
    assert (copy.method, copy.path, copy.reached_server) == ("POST", err.value.path, True)
    assert str(copy) == str(err.value)


# --- retries ---------------------------------------------------------------------------------


def test_429_waits_retry_after_seconds(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    requests_mock.get(PROCESS_URL, [
        {"status_code": 429, "headers": {"Retry-After": "2"}, "json": {"code": "rate_limited", "message": "wait"}},
        {"json": {"id": "p-1"}},
    ])
    assert hook.get_process("p-1") == {"id": "p-1"}
    assert requests_mock.call_count == 2
    assert sleeps == [2.0]


def test_429_waits_until_an_http_date(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    requests_mock.get(PROCESS_URL, [
        {"status_code": 429, "headers": {"Retry-After": when}, "json": {"code": "rate_limited", "message": "wait"}},
        {"json": {"id": "p-1"}},
    ])
    hook.get_process("p-1")
    assert requests_mock.call_count == 2
    assert len(sleeps) == 1
    assert 28.0 <= sleeps[0] <= 30.5


def test_retry_after_of_300_seconds_is_still_waited(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    requests_mock.get(PROCESS_URL, [{"status_code": 503, "headers": {"Retry-After": "300"}}, {"json": {"id": "p-1"}}])
    hook.get_process("p-1")
    assert sleeps == [300.0]


def test_retry_after_over_300_seconds_is_not_waited(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    requests_mock.get(PROCESS_URL, [
        {"status_code": 429, "headers": {"Retry-After": "301"}, "json": {"code": "rate_limited", "message": "later"}},
        {"json": {"id": "p-1"}},
    ])
    with pytest.raises(RobocorpRateLimitError) as err:
        hook.get_process("p-1")
    assert err.value.retry_after == 301.0
    assert requests_mock.call_count == 1
    assert sleeps == []


def test_garbled_retry_after_falls_back_to_backoff(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    requests_mock.get(PROCESS_URL, [{"status_code": 429, "headers": {"Retry-After": "soon"}}, {"json": {"id": "p-1"}}])
    hook.get_process("p-1")
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_for_get(hook: RobocorpHook, requests_mock, sleeps: list[float], status: int) -> None:
    requests_mock.get(PROCESS_URL, [{"status_code": status}, {"status_code": status}, {"json": {"id": "p-1"}}])
    assert hook.get_process("p-1") == {"id": "p-1"}
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_for_delete(hook: RobocorpHook, requests_mock, sleeps: list[float], status: int) -> None:
    requests_mock.delete(f"{WS_URL}assets/as-1", [{"status_code": status}, {"json": {"id": "as-1", "deleted": True}}])
    assert hook.delete_asset("as-1") == {"id": "as-1", "deleted": True}
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("status", [500, 502, 504])
def test_ambiguous_5xx_is_not_retried_for_a_creating_post(
    hook: RobocorpHook, requests_mock, sleeps: list[float], status: int
) -> None:
    requests_mock.post(WORK_ITEMS_URL, [{"status_code": status}, {"json": {"id": "wi-1"}}])
    with pytest.raises(RobocorpServerError):
        hook.create_work_item("p-1", {"a": 1})
    assert requests_mock.call_count == 1
    assert sleeps == []


def test_500_is_not_retried_for_start_process_run(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    requests_mock.post(RUNS_URL, [{"status_code": 500}, {"json": {"started": True, "id": "pr-2"}}])
    with pytest.raises(RobocorpServerError):
        hook.start_process_run("p-1")
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    "refusal",
    [{"status_code": 503}, {"status_code": 429, "headers": {"Retry-After": "1"}}],
    ids=["503", "429"],
)
def test_refusals_are_retried_for_a_creating_post(hook: RobocorpHook, requests_mock, sleeps, refusal) -> None:
    requests_mock.post(WORK_ITEMS_URL, [refusal, {"json": {"id": "wi-1"}}])
    assert hook.create_work_item("p-1", {"a": 1}) == {"id": "wi-1"}
    assert requests_mock.call_count == 2
    assert requests_mock.request_history[0].body == requests_mock.request_history[1].body


def test_500_is_retried_for_an_idempotent_post(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    requests_mock.post(f"{WS_URL}process-runs/pr-1/stop", [{"status_code": 500}, {"json": {"accepted": True}}])
    assert hook.stop_process_run("pr-1") == {"accepted": True}
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_never_retried(hook: RobocorpHook, requests_mock, sleeps: list[float], status: int) -> None:
    requests_mock.get(PROCESS_URL, status_code=status, json={"code": "x", "message": "y"})
    with pytest.raises(RobocorpApiError):
        hook.get_process("p-1")
    assert requests_mock.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_retries_are_bounded_by_max_retries(conn, requests_mock, sleeps: list[float], max_retries: int) -> None:
    requests_mock.get(PROCESS_URL, status_code=503, json={"code": "unavailable", "message": "down"})
    with pytest.raises(RobocorpServerError) as err:
        RobocorpHook(max_retries=max_retries).get_process("p-1")
    assert err.value.message == "down"
    assert requests_mock.call_count == max_retries + 1
    assert len(sleeps) == max_retries


def test_max_retries_extra_bounds_retries(monkeypatch, requests_mock, sleeps: list[float]) -> None:
    from .support import KEY, set_json_conn

    set_json_conn(monkeypatch, login=WS, password=KEY, extra={"max_retries": 2})
    requests_mock.get(PROCESS_URL, status_code=502)
    with pytest.raises(RobocorpServerError):
        RobocorpHook().get_process("p-1")
    assert requests_mock.call_count == 3


def test_backoff_grows_exponentially_with_jitter(hook: RobocorpHook, requests_mock, sleeps: list[float]) -> None:
    requests_mock.get(PROCESS_URL, status_code=503)
    with pytest.raises(RobocorpServerError):
        hook.get_process("p-1")
    assert len(sleeps) == 5
    for attempt, slept in enumerate(sleeps):
        assert 2.0**attempt <= slept <= 2.0**attempt + 1.0


def test_connect_timeout_is_retried_even_for_a_creating_post(hook, requests_mock, sleeps) -> None:
    requests_mock.post(RUNS_URL, [{"exc": requests.exceptions.ConnectTimeout("connect timed out")},
                                  {"json": {"started": True, "id": "pr-1"}}])
    assert hook.start_process_run("p-1") == {"started": True, "id": "pr-1"}
    assert requests_mock.call_count == 2


def test_read_timeout_on_a_creating_post_is_not_retried(hook, requests_mock, sleeps) -> None:
    requests_mock.post(RUNS_URL, [{"exc": requests.exceptions.ReadTimeout("read timed out")},
                                  {"json": {"started": True, "id": "pr-2"}}])
    with pytest.raises(RobocorpRequestMayHaveBeenAppliedError) as err:
        hook.start_process_run("p-1", payloads=[{"x": 1}])
    assert requests_mock.call_count == 1
    assert err.value.reached_server is True
    assert "Control Room may have applied it, so it was not retried automatically" in str(err.value)
    assert isinstance(err.value, RobocorpTransportError)


def test_dropped_connection_on_a_creating_post_is_not_retried(hook, requests_mock, sleeps) -> None:
    requests_mock.post(WORK_ITEMS_URL, [{"exc": requests.exceptions.ConnectionError("Connection aborted.")},
                                        {"json": {"id": "wi-1"}}])
    with pytest.raises(RobocorpRequestMayHaveBeenAppliedError):
        hook.create_work_item("p-1", {})
    assert requests_mock.call_count == 1


def test_read_timeout_on_get_is_retried(hook, requests_mock, sleeps) -> None:
    requests_mock.get(PROCESS_URL, [{"exc": requests.exceptions.ReadTimeout("read timed out")}, {"json": {"id": "p-1"}}])
    assert hook.get_process("p-1") == {"id": "p-1"}
    assert requests_mock.call_count == 2


def test_transport_error_after_the_last_retry(conn, requests_mock, sleeps) -> None:
    requests_mock.get(PROCESS_URL, exc=requests.exceptions.ConnectionError("Connection reset by peer"))
    with pytest.raises(RobocorpTransportError) as err:
        RobocorpHook(max_retries=2).get_process("p-1")
    assert not isinstance(err.value, RobocorpRequestMayHaveBeenAppliedError)
    assert str(err.value) == (
        f"GET {PROCESS_PATH}: the connection failed before an answer came back (ConnectionError)"
    )
    assert requests_mock.call_count == 3


def test_retry_is_logged_without_the_query(hook, requests_mock, sleeps, caplog) -> None:
    requests_mock.get(PROCESS_URL, [{"status_code": 503}, {"json": {"id": "p-1"}}])
    with caplog.at_level("WARNING", logger="airflow_provider_robocorp"):
        hook.get_process("p-1")
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("airflow_provider_robocorp")]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Control Room request GET {PROCESS_PATH} failed (HTTP 503); retry 1 of 5 in ")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(hook: RobocorpHook, requests_mock, sleeps, status: int) -> None:
    """A redirect could carry the request (and its key) to another host: it is an error instead."""
    requests_mock.get(PROCESS_URL, status_code=status, headers={"Location": "https://evil.example.com/steal"})
    trap = requests_mock.get("https://evil.example.com/steal", json={"id": "p-1"})
    with pytest.raises(RobocorpApiError) as err:
        hook.get_process("p-1")
    assert err.value.status == status
    assert not trap.called
    assert requests_mock.call_count == 1


def test_errors_are_robocorp_errors(no_retry_hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(PROCESS_URL, exc=requests.exceptions.ConnectTimeout("x"))
    with pytest.raises(RobocorpError):
        no_retry_hook.get_process("p-1")
