"""One real Airflow 3.3 deployment (PostgreSQL + four components) and one emulator per session.

Run with ``pytest -m deployment tests/deployment`` (``.ci/run`` does); the default run leaves
these out, since they need PostgreSQL (``.ci/setup-postgres``) and about two minutes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deployment.support import Deployment


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    from airflow_provider_robocorp.emulator.server import EmulatorServer

    with EmulatorServer() as server:
        server.set_speed(0)  # runs move only when a test advances the clock
        yield server


@pytest.fixture(scope="session")
def deployment(emulator: Any) -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="robocorp-deployment-"))
    airflow = Deployment(root, emulator)
    try:
        yield airflow.start()
    finally:
        airflow.stop()
        print(f"\ndeployment logs: {root}")
