"""Fixtures for the RobocorpHook unit tests.

* ``hook`` — a hook on the cloud base URL, for ``requests_mock`` tests (URI connection).
* ``server`` / ``loopback_conn`` — a scripted HTTP server on 127.0.0.1 for what ``requests_mock``
  cannot show (the async ``httpx`` transport, real timeouts, streamed bodies on the wire).
* ``sleeps`` / ``async_sleeps`` / ``clock`` — capture back-off and polling waits without waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_robocorp.hooks import robocorp as robocorp_module
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import CONN_ENV, KEY, WS, FakeClock, ScriptedServer, set_json_conn


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Proxies from the environment would reroute the loopback server traffic.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> None:
    """``robocorp_default`` in URI form: workspace ``WS``, key ``KEY``, empty host (= cloud)."""
    monkeypatch.setenv(CONN_ENV, f"robocorp://{WS}:{KEY}@")


@pytest.fixture
def hook(conn: None) -> Iterator[RobocorpHook]:
    h = RobocorpHook()
    yield h
    h.close()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every ``time.sleep`` (tenacity's back-off goes through it) is recorded instead of slept."""
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", calls.append)
    return calls


@pytest.fixture
def async_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """tenacity's ``AsyncRetrying`` sleeps through ``asyncio.sleep``; record and skip the wait."""
    calls: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: Any = None) -> Any:
        # Only the test's own loop (main thread): an emulator thread's loop must keep its real sleeps.
        if threading.current_thread() is not threading.main_thread():
            return await real_sleep(delay, result)
        calls.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return calls


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(robocorp_module, "time", fake)
    return fake


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def loopback_conn(monkeypatch: pytest.MonkeyPatch, server: ScriptedServer) -> ScriptedServer:
    """``robocorp_default`` (JSON form) pointing at the scripted server."""
    set_json_conn(monkeypatch, login=WS, password=KEY, host=server.base_url, extra={"timeout": 5})
    return server
