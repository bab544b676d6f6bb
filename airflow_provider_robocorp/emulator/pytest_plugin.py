"""Pytest fixtures for the Control Room emulator (auto-loaded through the ``pytest11`` entry point).

* ``robocorp_emulator`` — a running ``EmulatorServer`` shared by the session, reset to its
  seed and cleared of faults before each test that uses it;
* ``robocorp_emulator_session`` — the same server without the per-test reset;
* ``robocorp_emulator_config`` — the seed configuration (override it in a ``conftest.py`` to use
  your own: a dict, a JSON file path, or ``None`` for the shipped default);
* ``robocorp_conn_env`` — sets ``AIRFLOW_CONN_ROBOCORP_DEFAULT`` to the emulator's connection.

Importing this module stays cheap: the server (FastAPI, uvicorn) loads only when a fixture runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .server import EmulatorServer

CONN_ENV_VAR = "AIRFLOW_CONN_ROBOCORP_DEFAULT"


@pytest.fixture(scope="session")
def robocorp_emulator_config() -> Any:
    """Seed configuration for the session's emulator (``None`` = the shipped default)."""
    return None


@pytest.fixture(scope="session")
def robocorp_emulator_session(robocorp_emulator_config: Any) -> Iterator[EmulatorServer]:
    """One emulator for the whole session, on a free loopback port."""
    from .server import EmulatorServer

    server = EmulatorServer(robocorp_emulator_config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def robocorp_emulator(robocorp_emulator_session: EmulatorServer) -> EmulatorServer:
    """The session's emulator, reset to its seed, with no faults and normal speed."""
    server = robocorp_emulator_session
    server.clear_faults()
    server.set_speed(server.speed if server.speed is not None else server.config.speed)
    server.reset()
    return server


@pytest.fixture
def robocorp_conn_env(robocorp_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Airflow's ``robocorp_default`` connection at the emulator; returns the JSON."""
    value = robocorp_emulator.connection_json()
    monkeypatch.setenv(CONN_ENV_VAR, value)
    return value
