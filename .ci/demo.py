"""Run example_dags/example_robocorp_pipeline.py against the local emulator and print the outcome.

Uses a throw-away AIRFLOW_HOME (SQLite), the emulator on a free loopback port, and ``dag.test()``,
which runs the deferred trigger inline. Exit code 0 only if the DAG run succeeded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "example_robocorp_pipeline"


def main() -> int:
    home = tempfile.mkdtemp(prefix="robocorp-demo-")
    os.environ.update(
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
    )
    from airflow_provider_robocorp.emulator.server import EmulatorServer

    with EmulatorServer(port=0) as emulator:
        os.environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"] = emulator.connection_json()
        print(f"==> emulator listening at {emulator.api_url} (workspace {emulator.workspace_id})")
        print("==> airflow db migrate (SQLite in a temp AIRFLOW_HOME)")
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)

        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "example_dags"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}")
            return 1
        dag = bag.dags[DAG_ID]
        for task in dag.tasks:  # the emulated robot takes about a second: poll fast
            if hasattr(task, "poll_interval"):
                task.poll_interval = 0.5
        print(f"==> dag.test() {DAG_ID}")
        started = time.monotonic()
        dag_run = dag.test()
        elapsed = time.monotonic() - started

        state = emulator.state()
        print("\n==================== outcome ====================")
        print(f"DAG run {dag_run.run_id}: {dag_run.state} in {elapsed:.1f} s")
        for ti in sorted(dag_run.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
            index = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
            print(f"  task {ti.task_id}{index}: {ti.state}")
        runs = state.get("process_runs", [])
        for run in runs if isinstance(runs, list) else runs.values():
            print(f"Control Room process run {run.get('id')}: {run.get('state')}")
        summary = _xcom(dag_run, "summarize")
        url = _xcom(dag_run, "process_invoices", key="process_run_url")
        if url:
            print(f"Run page (extra link 'Control Room'): {url}")
        if summary is not None:
            print(f"Outputs summary (XCom of 'summarize'): {json.dumps(summary)}")
        return 0 if str(dag_run.state) in ("success", "DagRunState.SUCCESS") else 1


def _xcom(dag_run: object, task_id: str, key: str = "return_value") -> object:
    for ti in dag_run.get_task_instances():  # type: ignore[attr-defined]
        if ti.task_id == task_id:
            try:
                return ti.xcom_pull(task_ids=task_id, key=key)
            except Exception:  # noqa: BLE001 - best effort reporting
                return None
    return None


if __name__ == "__main__":
    sys.exit(main())
