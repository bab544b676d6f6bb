"""The emulator's background threads survive any exception in one tick or one delivery, and
``/_emulator/reset`` restores a working emulator."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import requests

from airflow_provider_robocorp.emulator.core import BackendCore as EmulatorBackend

from .conftest import Api, start_run


def _eventually(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_the_ticker_survives_an_exception_in_one_tick(api: Api, emu: Any, monkeypatch) -> None:
    real = EmulatorBackend._catch_up
    failures: list[int] = []

    def flaky(self: EmulatorBackend, now: float) -> None:
        if len(failures) < 3 and threading.current_thread().name == "robocorp-emulator-ticker":
            failures.append(1)
            raise RuntimeError("a poisoned run")
        real(self, now)

    monkeypatch.setattr(EmulatorBackend, "_catch_up", flaky)
    run_id = start_run(api, "proc-report")
    emu.backend.clock.advance(60)  # moves the clock without catching up; the ticker must do it
    assert _eventually(lambda: len(failures) == 3)
    assert emu.backend._ticker is not None and emu.backend._ticker.is_alive()
    monkeypatch.setattr(EmulatorBackend, "_catch_up", real)
    assert _eventually(lambda: api.call("get_process_run", process_run_id=run_id)["state"] == "completed")


def test_the_webhook_dispatcher_survives_an_exception_in_one_delivery(emu: Any, monkeypatch) -> None:
    dispatcher = emu.backend.dispatcher

    def broken(delivery: Any) -> None:
        raise TypeError("a bad secret")

    monkeypatch.setattr(dispatcher, "_attempt", broken)
    for n in range(2):
        dispatcher.submit(kind="webhook", source_id="wh-1", url="http://127.0.0.1:9/hook", secret="s3cret",
                          event="process_run.completed", payload={"id": f"evt-{n}", "event": "process_run.completed"})
    assert dispatcher.wait_idle(10)
    assert dispatcher._thread.is_alive()
    assert [d["gave_up"] for d in dispatcher.deliveries()] == [True, True]  # both handled, none lost the thread


def test_reset_restarts_a_dead_ticker(emu: Any) -> None:
    backend = emu.backend
    backend._stopping.set()  # end the ticker as an unexpected crash would
    assert backend._ticker is not None
    backend._ticker.join(5)
    assert not backend._ticker.is_alive()
    backend._stopping.clear()
    assert requests.post(f"{emu.url}/_emulator/reset", timeout=10).json() == {"reset": True}
    assert backend._ticker is not None and backend._ticker.is_alive()


def test_state_shows_webhook_secrets_only_when_asked(api: Api, emu: Any) -> None:
    created = api.call("create_webhook", json={"endpoint": "http://127.0.0.1:9/hook",
                                               "enabled_events": ["process_run.completed"],
                                               "process": {"id": "proc-invoices"}})
    plain = requests.get(f"{emu.url}/_emulator/state", timeout=10).json()["webhooks"]
    asked = requests.get(f"{emu.url}/_emulator/state?secrets=true", timeout=10).json()["webhooks"]
    assert [w["id"] for w in plain] == [created["id"]] and "secret" not in plain[0]
    assert asked[0]["secret"] == created["secret"] and created["secret"] not in json.dumps(plain)
    assert "secret" not in emu.state()["webhooks"][0] and emu.state(with_secrets=True)["webhooks"][0]["secret"]


def test_control_routes_refuse_cross_site_requests(emu: Any) -> None:
    control = f"{emu.url}/_emulator"
    emu.advance(0)
    attacks = [
        requests.post(f"{control}/reset", headers={"Origin": "https://evil.example"}, timeout=10),
        requests.post(f"{control}/faults", data="kind=status", timeout=10,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}),
        requests.post(f"{control}/faults", data='{"kind": "status"}', headers={"Content-Type": "text/plain"},
                      timeout=10),
        requests.delete(f"{control}/faults", headers={"Sec-Fetch-Site": "cross-site"}, timeout=10),
    ]
    assert [r.status_code for r in attacks] == [403, 403, 403, 403]
    assert all(r.json()["error"]["code"] == "forbidden" for r in attacks)
    assert emu.state()["faults"] == []
    ok = requests.post(f"{control}/faults", json={"kind": "status", "status": 503, "times": 1},
                       headers={"Origin": "http://127.0.0.1:8080"}, timeout=10)
    assert ok.status_code == 200 and len(emu.state()["faults"]) == 1
    assert requests.post(f"{control}/reset", timeout=10).json() == {"reset": True}  # tools send no Origin


def test_a_wildcard_bind_hands_out_a_loopback_url_the_provider_accepts() -> None:
    from airflow_provider_robocorp.emulator.server import EmulatorServer
    from airflow_provider_robocorp.hooks._pipeline import resolve_base_url

    server = EmulatorServer(host="0.0.0.0", port=8123)
    assert server.url == "http://127.0.0.1:8123"
    assert resolve_base_url(server.api_url, conn_id="x") == "http://127.0.0.1:8123/api/v1/"
    assert EmulatorServer(host="::", port=1).url == "http://[::1]:1"


def test_the_cli_warns_when_listening_beyond_loopback() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "airflow_provider_robocorp.emulator", "--host", "0.0.0.0",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        warning = proc.stderr.readline()
        assert "warning: listening on 0.0.0.0" in warning
        lines = [proc.stdout.readline() for _ in range(2)]
        assert "http://127.0.0.1:" in lines[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_control_routes_refuse_a_rebound_host_name(emu: Any) -> None:
    """A page on evil.example whose name resolves to 127.0.0.1 sends ``Host: evil.example``."""
    refused = requests.post(f"{emu.url}/_emulator/reset", headers={"Host": "evil.example"}, timeout=10)
    assert refused.status_code == 403 and "host 'evil.example'" in refused.json()["error"]["message"]
    assert requests.get(f"{emu.url}/_emulator/health", headers={"Host": "localhost:1"}, timeout=10).ok
