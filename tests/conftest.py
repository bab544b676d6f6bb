"""Test-wide set-up: an isolated AIRFLOW_HOME before Airflow is imported anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

_home = tempfile.mkdtemp(prefix="robocorp-airflow-home-")
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
# Never reach a real Control Room from tests: the default connection points at nothing usable.
os.environ.pop("AIRFLOW_CONN_ROBOCORP_DEFAULT", None)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """``airflow db migrate`` on the session's SQLite DB (AIRFLOW_HOME is set by tests/conftest.py)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=dict(os.environ), check=True,
                   capture_output=True, timeout=180)
