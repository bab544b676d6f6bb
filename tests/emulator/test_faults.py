"""Fault injection: statuses with Retry-After, latency, dropped connections, commit-then-drop."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest
import requests

from airflow_provider_robocorp.emulator.faults import FaultError, FaultRule, parse_fault_spec

from . import schemas
from .conftest import Api


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_status_faults_answer_once_then_recover(api: Api, emu: Any, status: int) -> None:
    emu.add_fault(kind="status", status=status, times=1)
    response = api.raw("list_processes")
    assert response.status_code == status
    schemas.check_error(response.json())
    assert "retry-after" not in response.headers
    assert api.raw("list_processes").status_code == 200


def test_429_carries_retry_after_seconds_or_date(api: Api, emu: Any) -> None:
    emu.add_fault(status=429, retry_after=2, times=1)
    response = api.raw("get_workspace")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")
    schemas.check_error(response.json(), "rate_limited")
    when = format_datetime(datetime(2030, 1, 1, tzinfo=timezone.utc), usegmt=True)
    emu.add_fault(status=429, retry_after=when, times=1)
    response = api.raw("get_workspace")
    assert parsedate_to_datetime(response.headers["Retry-After"]).year == 2030


def test_faults_match_method_and_path(api: Api, emu: Any) -> None:
    emu.add_fault(status=503, method="POST", path=r"/assets$")
    assert api.raw("list_assets").status_code == 200
    assert api.raw("create_asset", json={"name": "x"}).status_code == 503
    assert api.raw("create_asset", json={"name": "x"}).status_code == 503
    assert api.call("list_assets")["data"][0]["name"] == "emulator-settings"
    assert len(api.call("list_assets")["data"]) == 1, "a faulted request is not performed"
    emu.clear_faults()
    assert api.raw("create_asset", json={"name": "x"}).status_code == 200


def test_probabilistic_faults_are_seedable(api: Api, emu: Any) -> None:
    emu.backend.faults.seed(7)
    emu.add_fault(status=500, probability=0.3, path="/workers")
    statuses = [api.raw("list_workers").status_code for _ in range(200)]
    assert 30 <= statuses.count(500) <= 90 and statuses.count(200) == 200 - statuses.count(500)
    emu.clear_faults()
    emu.backend.faults.seed(7)
    emu.add_fault(status=500, probability=0.3, path="/workers")
    assert [api.raw("list_workers").status_code for _ in range(200)] == statuses


def test_latency_delays_then_answers(api: Api, emu: Any) -> None:
    emu.add_fault(kind="latency", delay_seconds=0.3, times=1)
    started = time.monotonic()
    assert api.raw("get_workspace").status_code == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    api.raw("get_workspace")
    assert time.monotonic() - started < 0.3


def test_drop_closes_the_connection_before_acting(api: Api, emu: Any) -> None:
    emu.add_fault(kind="drop", method="POST", times=1)
    with pytest.raises(requests.ConnectionError):
        api.raw("create_asset", json={"name": "dropped"})
    assert [a["name"] for a in api.call("list_assets")["data"]] == ["emulator-settings"]
    fresh = requests.post(
        api.url("create_asset"),
        json={"name": "dropped"},
        timeout=5,
        headers={"Authorization": "RC-WSKEY emulator-api-key"},
    )
    assert fresh.status_code == 200
    log = emu.requests_log()
    assert log[0]["fault"] == "drop" and log[0]["status"] is None


def test_drop_is_a_connection_error_not_a_500(emu: Any) -> None:
    import http.client

    emu.add_fault(kind="drop", times=1)
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    connection.request("GET", "/api/v1/workspaces/ws-emulator")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        connection.getresponse()
    connection.close()


def test_commit_then_drop_performs_the_request(api: Api, emu: Any) -> None:
    emu.add_fault(kind="commit_then_drop", method="POST", path="/process-runs$", times=1)
    with pytest.raises(requests.ConnectionError):
        api.raw("start_process_run", process_id="proc-report")
    [run] = api.call("list_process_runs")["data"]
    assert run["process"]["id"] == "proc-report"
    assert emu.requests_log()[0]["fault"] == "commit_then_drop"


def test_faults_apply_to_pre_signed_urls_too(api: Api, emu: Any) -> None:
    url = api.call("get_asset", asset_id="name:emulator-settings")["payload"]["url"]
    emu.add_fault(status=503, path="^/_files/", times=1)
    assert requests.get(url, timeout=5).status_code == 503
    assert requests.get(url, timeout=5).status_code == 200


def test_control_endpoints_manage_faults_and_are_never_faulted(api: Api, emu: Any) -> None:
    control = f"{emu.url}/_emulator/faults"
    added = requests.post(
        control, json={"rules": [{"kind": "drop"}, {"status": 502}], "seed": 1}, timeout=5
    ).json()
    assert [r["kind"] for r in added["rules"]] == ["drop", "status"]
    assert requests.get(f"{emu.url}/_emulator/state", timeout=5).status_code == 200
    assert len(requests.get(control, timeout=5).json()["rules"]) == 2
    with pytest.raises(requests.ConnectionError):
        api.raw("get_workspace")
    assert requests.delete(control, timeout=5).json() == {"rules": []}
    assert api.raw("get_workspace").status_code == 200
    single = requests.post(control, json={"status": 429, "retry_after": 1, "times": 1}, timeout=5).json()
    assert single["rules"][0]["retry_after"] == "1"
    bad: Any
    for bad in (
        {"kind": "explode"},
        {"status": 200},
        {"kind": "drop", "probability": 2},
        {"kind": "drop", "path": "("},
        {"kind": "drop", "extra": 1},
        [],
        "x",
    ):
        assert requests.post(control, json=bad, timeout=5).status_code == 400, bad


def test_request_log_records_method_path_query_keys_and_status(api: Api, emu: Any) -> None:
    api.raw("list_process_runs", params={"limit": 5, "state": "completed"})
    api.raw("get_process", process_id="nope")
    api.raw(
        "start_process_run_for_integration",
        key=None,
        process_id="proc-report",
        params={"token": "emulator-api-key"},
        json={},
    )
    log = requests.get(f"{emu.url}/_emulator/requests", timeout=5).json()["requests"]
    assert [(e["method"], e["status"]) for e in log] == [("GET", 200), ("GET", 404), ("POST", 200)]
    assert log[0]["query_keys"] == ["limit", "state"] and log[0]["path"].endswith("/process-runs")
    assert log[2]["query_keys"] == ["token"] and "emulator-api-key" not in str(log)
    assert requests.delete(f"{emu.url}/_emulator/requests", timeout=5).json() == {"requests": []}


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("503:0.1", {"kind": "status", "status": 503, "probability": 0.1}),
        ("429", {"kind": "status", "status": 429, "probability": None}),
        ("drop", {"kind": "drop"}),
        ("commit_then_drop:0.5", {"kind": "commit_then_drop", "probability": 0.5}),
        (
            "status=429,retry_after=1,probability=0.2,path=/process-runs",
            {
                "kind": "status",
                "status": 429,
                "retry_after": "1",
                "probability": 0.2,
                "path": "/process-runs",
            },
        ),
        ("kind=latency,delay=0.5", {"kind": "latency", "delay_seconds": 0.5}),
        (
            "delay=2,method=get,times=3",
            {"kind": "latency", "delay_seconds": 2.0, "method": "GET", "times": 3},
        ),
        ("kind=commit_then_drop,method=POST,n=1", {"kind": "commit_then_drop", "method": "POST", "times": 1}),
    ],
)
def test_fault_spec_syntax(spec: str, expected: dict[str, Any]) -> None:
    rule = parse_fault_spec(spec).to_json()
    assert {k: rule[k] for k in expected} == expected


@pytest.mark.parametrize("spec", ["", "teapot", "200", "status=503,chance=1", "kind=drop,probability=x", "p"])
def test_bad_fault_specs_are_rejected(spec: str) -> None:
    with pytest.raises((FaultError, ValueError)):
        parse_fault_spec(spec)


def test_latency_default_and_status_default() -> None:
    assert FaultRule(kind="latency").delay_seconds == 1.0
    assert FaultRule(kind="status").status == 503
