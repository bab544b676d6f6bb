"""End-to-end set-up: a migrated SQLite metadata DB (once per session) and the example DAGs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
#: Seconds between polls in tests: the emulated runs take about a second.
FAST_POLL = 0.2


@pytest.fixture(scope="session")
def example_dags(airflow_db: None) -> dict[str, Any]:
    """Every DAG of ``example_dags/``, parsed the way the DAG processor does."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags


@pytest.fixture
def load_dag(example_dags: dict[str, Any], robocorp_conn_env: str) -> Iterator[Any]:
    """Returns a function giving an example DAG with its poll intervals shortened for the emulator."""

    def load(dag_id: str) -> Any:
        dag = example_dags[dag_id]
        for task in dag.tasks:
            if hasattr(task, "poll_interval"):
                task.poll_interval = FAST_POLL
            if hasattr(task, "poke_interval"):
                task.poke_interval = FAST_POLL
            if hasattr(task, "defer_grace_period"):
                task.defer_grace_period = 0.0  # dag.test() runs triggers inline: no worker to outlive
        return dag

    yield load
