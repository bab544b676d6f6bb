"""Connection handling: API key prefix, base URL forms, extras, workspace override, config errors."""

from __future__ import annotations

import pytest

from airflow_provider_robocorp.exceptions import RobocorpConfigError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import CLOUD, CONN_ENV, KEY, WS, WS_URL, set_json_conn

WORKSPACE = {"id": WS, "name": "Finance robots", "organization": {"id": "org-9", "name": "Acme"}}


# --- API key ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [KEY, f"RC-WSKEY {KEY}", f"rc-wskey {KEY}", f"  RC-WSKEY   {KEY}  ", f"RC-WSKEY\t{KEY}", f"{KEY}\n"],
    ids=["bare", "prefixed", "lower-case-prefix", "padded", "tab-separated", "trailing-newline"],
)
def test_authorization_header_has_exactly_one_prefix(monkeypatch, requests_mock, password: str) -> None:
    set_json_conn(monkeypatch, login=WS, password=password)
    requests_mock.get(WS_URL.rstrip("/"), json=WORKSPACE)
    RobocorpHook().get_workspace()
    assert requests_mock.last_request.headers["Authorization"] == f"RC-WSKEY {KEY}"


def test_prefixed_key_in_uri_form(monkeypatch, requests_mock) -> None:
    monkeypatch.setenv(CONN_ENV, f"robocorp://{WS}:RC-WSKEY%20{KEY}@")
    requests_mock.get(WS_URL.rstrip("/"), json=WORKSPACE)
    RobocorpHook().get_workspace()
    assert requests_mock.last_request.headers["Authorization"] == f"RC-WSKEY {KEY}"


# --- base URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        (None, CLOUD),
        ("", CLOUD),
        ("   ", CLOUD),
        ("https://cloud.robocorp.com/api/v1/", CLOUD),
        ("https://acme.robocorp.com/api/v1/", "https://acme.robocorp.com/api/v1/"),
        ("https://acme.robocorp.com/api/v1", "https://acme.robocorp.com/api/v1/"),
        ("https://acme.robocorp.com", "https://acme.robocorp.com/api/v1/"),
        ("https://acme.robocorp.com/", "https://acme.robocorp.com/api/v1/"),
        ("acme.robocorp.com", "https://acme.robocorp.com/api/v1/"),
        ("acme.robocorp.com/api/v1", "https://acme.robocorp.com/api/v1/"),
        ("http://127.0.0.1:8123/api/v1/", "http://127.0.0.1:8123/api/v1/"),
        ("127.0.0.1:8123", "http://127.0.0.1:8123/api/v1/"),
        ("http://localhost:8123", "http://localhost:8123/api/v1/"),
        ("localhost:8123", "http://localhost:8123/api/v1/"),
        ("http://[::1]:8123/api/v1/", "http://[::1]:8123/api/v1/"),
    ],
)
def test_base_url_forms(monkeypatch, requests_mock, host: str | None, base_url: str) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, host=host)
    hook = RobocorpHook()
    assert hook.settings.base_url == base_url
    requests_mock.get(f"{base_url}workspaces/{WS}", json=WORKSPACE)
    assert hook.get_workspace() == WORKSPACE
    assert requests_mock.last_request.url == f"{base_url}workspaces/{WS}"


@pytest.mark.parametrize(
    ("host", "expected_text"),
    [
        ("http://example.com", "plain http:// is only allowed for loopback"),
        ("http://acme.robocorp.com/api/v1/", "use https:// for 'acme.robocorp.com'"),
        ("ftp://acme.robocorp.com", "unsupported URL scheme 'ftp'"),
        ("https://user:secret@acme.robocorp.com/api/v1/", "must not contain credentials"),
        ("https://acme.robocorp.com/api/v1/?tenant=1", "must not have a query or fragment"),
        ("https://acme.robocorp.com:https/api/v1/", "port in the host URL is not a number"),
    ],
)
def test_bad_hosts_are_refused_before_any_request(monkeypatch, requests_mock, host: str, expected_text: str) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, host=host)
    with pytest.raises(RobocorpConfigError) as err:
        RobocorpHook().get_workspace()
    assert expected_text in str(err.value)
    assert "robocorp_default" in str(err.value)
    assert requests_mock.call_count == 0


def test_uri_with_host_port_and_path(monkeypatch, requests_mock) -> None:
    monkeypatch.setenv(CONN_ENV, f"robocorp://{WS}:{KEY}@acme.robocorp.com:8443/api/v1")
    hook = RobocorpHook()
    assert hook.settings.base_url == "https://acme.robocorp.com:8443/api/v1/"
    requests_mock.get(f"https://acme.robocorp.com:8443/api/v1/workspaces/{WS}/processes/p-1", json={"id": "p-1"})
    hook.get_process("p-1")
    assert requests_mock.call_count == 1


def test_json_form_port_is_added_to_the_host(monkeypatch) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, host="https://acme.robocorp.com/api/v1/", port=8443)
    assert RobocorpHook().settings.base_url == "https://acme.robocorp.com:8443/api/v1/"


def test_uri_with_loopback_host_and_port_uses_http(monkeypatch) -> None:
    monkeypatch.setenv(CONN_ENV, f"robocorp://{WS}:{KEY}@127.0.0.1:8123")
    assert RobocorpHook().settings.base_url == "http://127.0.0.1:8123/api/v1/"


def test_uri_with_empty_host_means_cloud(monkeypatch) -> None:
    monkeypatch.setenv(CONN_ENV, f"robocorp://{WS}:{KEY}@")
    settings = RobocorpHook().settings
    assert settings.base_url == CLOUD
    assert settings.workspace_id == WS


# --- extras ----------------------------------------------------------------------------------


def test_json_form_extras_reach_the_request(monkeypatch, requests_mock) -> None:
    # requests lets these environment variables override a Session's verify/proxies; the
    # connection's extras must still win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.invalid:8080")
    set_json_conn(
        monkeypatch,
        login=WS,
        password=KEY,
        host="https://acme.robocorp.com/api/v1/",
        extra={"timeout": 7, "max_retries": 2, "verify": False, "proxies": {"https": "http://proxy.corp:3128"}},
    )
    hook = RobocorpHook()
    settings = hook.settings
    assert (settings.timeout, settings.max_retries, settings.verify) == (7.0, 2, False)
    assert settings.proxies == {"https": "http://proxy.corp:3128"}
    requests_mock.get(f"https://acme.robocorp.com/api/v1/workspaces/{WS}", json=WORKSPACE)
    hook.get_workspace()
    sent = requests_mock.last_request
    assert sent.timeout == (7.0, 7.0)
    assert sent.verify is False
    assert sent.proxies["https"] == "http://proxy.corp:3128"


def test_uri_query_extras_are_parsed_from_strings(monkeypatch, requests_mock) -> None:
    monkeypatch.setenv(
        CONN_ENV,
        f"robocorp://{WS}:{KEY}@?timeout=12.5&max_retries=0&verify=false&proxies=http%3A%2F%2Fproxy.corp%3A3128",
    )
    settings = RobocorpHook().settings
    assert settings.timeout == 12.5
    assert settings.max_retries == 0
    assert settings.verify is False
    assert settings.proxies == {"http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128"}


def test_long_timeout_caps_only_the_connect_timeout(monkeypatch, requests_mock) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, extra={"timeout": "120"})
    requests_mock.get(WS_URL.rstrip("/"), json=WORKSPACE)
    RobocorpHook().get_workspace()
    assert requests_mock.last_request.timeout == (10.0, 120.0)


def test_verify_accepts_a_ca_bundle_path(monkeypatch, requests_mock) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    set_json_conn(monkeypatch, login=WS, password=KEY, extra={"verify": "/etc/ssl/corp-ca.pem"})
    hook = RobocorpHook()
    assert hook.settings.verify == "/etc/ssl/corp-ca.pem"
    requests_mock.get(WS_URL.rstrip("/"), json=WORKSPACE)
    hook.get_workspace()
    assert requests_mock.last_request.verify == "/etc/ssl/corp-ca.pem"


def test_environment_proxy_still_applies_without_a_proxy_extra(monkeypatch, requests_mock) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.invalid:8080")
    set_json_conn(monkeypatch, login=WS, password=KEY)
    requests_mock.get(WS_URL.rstrip("/"), json=WORKSPACE)
    RobocorpHook().get_workspace()
    assert requests_mock.last_request.proxies.get("https") == "http://env-proxy.invalid:8080"


def test_defaults_without_extras(monkeypatch) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY)
    settings = RobocorpHook().settings
    assert (settings.timeout, settings.max_retries, settings.verify, settings.proxies) == (60.0, 5, True, None)


def test_prefixed_extra_names_are_understood(monkeypatch) -> None:
    set_json_conn(
        monkeypatch,
        login=WS,
        password=KEY,
        extra={
            "extra__robocorp__timeout": "9",
            "extra__robocorp__max_retries": "1",
            "extra__robocorp__verify": "false",
            "extra__robocorp__proxies": '{"https": "http://proxy.corp:3128"}',
        },
    )
    settings = RobocorpHook().settings
    assert (settings.timeout, settings.max_retries, settings.verify) == (9.0, 1, False)
    assert settings.proxies == {"https": "http://proxy.corp:3128"}


def test_hook_arguments_override_extras(monkeypatch) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, extra={"timeout": 30, "max_retries": 4})
    settings = RobocorpHook(timeout=3, max_retries=0).settings
    assert (settings.timeout, settings.max_retries) == (3.0, 0)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -5}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": "many"}, "max_retries"),
        ({"proxies": ["http://proxy:3128"]}, "proxies"),
    ],
)
def test_bad_extras_are_refused(monkeypatch, requests_mock, extra: dict, named: str) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, extra=extra)
    with pytest.raises(RobocorpConfigError) as err:
        RobocorpHook().get_workspace()
    assert f"'{named}'" in str(err.value)
    assert "robocorp_default" in str(err.value)
    assert requests_mock.call_count == 0


# --- workspace -------------------------------------------------------------------------------


def test_workspace_override(monkeypatch, requests_mock) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY)
    requests_mock.get(f"{CLOUD}workspaces/ws-other/processes/p-1", json={"id": "p-1"})
    hook = RobocorpHook(workspace_id="ws-other")
    hook.get_process("p-1")
    assert hook.workspace_id == "ws-other"
    assert requests_mock.call_count == 1


def test_workspace_override_without_login(monkeypatch, requests_mock) -> None:
    set_json_conn(monkeypatch, password=KEY)
    requests_mock.get(f"{CLOUD}workspaces/ws-other", json=WORKSPACE)
    RobocorpHook(workspace_id="ws-other").get_workspace()
    assert requests_mock.call_count == 1


def test_missing_workspace_names_the_connection_and_the_fix(monkeypatch, requests_mock) -> None:
    set_json_conn(monkeypatch, env="AIRFLOW_CONN_ROBOCORP_FINANCE", password=KEY)
    with pytest.raises(RobocorpConfigError) as err:
        RobocorpHook("robocorp_finance").get_workspace()
    message = str(err.value)
    assert "'robocorp_finance'" in message
    assert "Workspace ID" in message and "Login" in message and "workspace_id=" in message
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("password", [None, "", "   ", "RC-WSKEY ", "RC-WSKEY"])
def test_missing_api_key_names_the_connection_and_the_fix(monkeypatch, requests_mock, password) -> None:
    set_json_conn(monkeypatch, env="AIRFLOW_CONN_ROBOCORP_FINANCE", login=WS, password=password)
    with pytest.raises(RobocorpConfigError) as err:
        RobocorpHook("robocorp_finance").get_workspace()
    message = str(err.value)
    assert "'robocorp_finance'" in message
    assert "has no API key" in message and "Password" in message
    assert requests_mock.call_count == 0


def test_api_key_with_inner_white_space_is_refused(monkeypatch, requests_mock) -> None:
    set_json_conn(monkeypatch, login=WS, password="sk-abc def")
    with pytest.raises(RobocorpConfigError, match="white space"):
        RobocorpHook().get_workspace()
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("workspace", ["ws/../other", "ws 1"])
def test_invalid_workspace_id_is_refused(monkeypatch, requests_mock, workspace: str) -> None:
    set_json_conn(monkeypatch, login=workspace, password=KEY)
    with pytest.raises(RobocorpConfigError, match="is not a valid id"):
        RobocorpHook().get_workspace()
    assert requests_mock.call_count == 0


def test_config_errors_are_value_errors_and_airflow_exceptions(monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowException

    set_json_conn(monkeypatch, login=WS)
    with pytest.raises(RobocorpConfigError) as err:
        _ = RobocorpHook().settings
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, AirflowException)


# --- test_connection() -----------------------------------------------------------------------


def test_test_connection_success(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(WS_URL.rstrip("/"), json=WORKSPACE)
    ok, message = hook.test_connection()
    assert ok is True
    assert message == "Connected to Control Room workspace 'Finance robots' (organization 'Acme')."
    assert requests_mock.last_request.headers["Authorization"] == f"RC-WSKEY {KEY}"


def test_test_connection_rejected_key(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(WS_URL.rstrip("/"), status_code=401, json={"error": {"code": "unauthorized", "message": "Invalid API key"}})
    ok, message = hook.test_connection()
    assert ok is False
    assert "HTTP 401" in message and "Invalid API key" in message
    assert "Check the API key in connection 'robocorp_default'" in message
    assert KEY not in message
    assert requests_mock.call_count == 1  # 401 is not retried


def test_test_connection_bad_configuration(monkeypatch, requests_mock) -> None:
    set_json_conn(monkeypatch, login=WS)
    ok, message = RobocorpHook().test_connection()
    assert ok is False
    assert "has no API key" in message
    assert requests_mock.call_count == 0


def test_back_off_extras_reach_the_retry_policy(monkeypatch) -> None:
    import json as _json

    from airflow_provider_robocorp.hooks._transport import SyncTransport

    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", _json.dumps(
        {"conn_type": "robocorp", "login": WS, "password": KEY,
         "extra": {"backoff_initial": 0.25, "extra__robocorp__backoff_max": "4"}}))
    hook = RobocorpHook()
    assert (hook.settings.backoff_initial, hook.settings.backoff_max) == (0.25, 4.0)
    policy = SyncTransport(hook.settings).policy
    assert (policy.backoff_initial, policy.backoff_max) == (0.25, 4.0)
    assert all(policy.wait_seconds(n, None) <= 4.0 for n in range(1, 12))


@pytest.mark.parametrize(("extra", "message"), [
    ({"max_retry": 3}, "unknown extra 'max_retry'; the known extras are timeout, max_retries, backoff_initial"),
    ({"timeout": 5, "verfy": False}, "unknown extra 'verfy'"),
    ({"backoff_initial": 10, "backoff_max": 2}, "'backoff_initial' (10 s) is larger than 'backoff_max' (2 s)"),
    ({"backoff_max": "nan"}, "extra 'backoff_max' must be a finite, positive number"),
])
def test_bad_extras_are_clear_errors(monkeypatch, requests_mock, extra, message) -> None:
    import json as _json

    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", _json.dumps(
        {"conn_type": "robocorp", "login": WS, "password": KEY, "extra": extra}))
    with pytest.raises(RobocorpConfigError) as err:
        RobocorpHook().get_workspace()
    assert message in str(err.value)
    assert requests_mock.call_count == 0


def test_repr_of_a_request_never_shows_the_integration_token(hook: RobocorpHook) -> None:
    request = hook.settings.build("start_process_run_for_integration", {"process_id": "p-1"},
                                  params={"token": hook.settings.api_key}, json_body={"a": 1}, auth=False)
    assert hook.settings.api_key not in repr(request) and "token" in repr(request)
