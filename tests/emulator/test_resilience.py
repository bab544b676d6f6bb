"""The emulator's background threads survive any exception in one tick or one delivery, and
``/_emulator/reset`` restores a working emulator."""

from __future__ import annotations

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
