"""A real Airflow deployment for tests: PostgreSQL, scheduler, dag-processor, triggerer, api-server.

Why PostgreSQL and not SQLite: with SQLite the four components (and LocalExecutor's workers) write
to one file; under load that gives ``database is locked`` and the scheduler can exit. A throw-away
PostgreSQL cluster (``initdb`` in a temp dir, trust auth, ``fsync=off``, 127.0.0.1, a free port)
is solid and starts in about a second. ``.ci/setup-postgres`` installs the server when missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, pause: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
        except (requests.RequestException, ValueError, KeyError) as err:
            last = err
        else:
            if last:
                return last
        time.sleep(pause)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {str(last)[:500]})")


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"PostgreSQL's {name} was not found: run .ci/setup-postgres (installs Debian's "
                       "postgresql) or put its bin directory on PATH.")


class Postgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        self.dir, self.port = root / "pgdata", free_port()
        self.as_user: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> str:
        self.dir.mkdir(parents=True)
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir.parent, "postgres", "postgres")
        run = lambda *cmd: subprocess.run([*self.as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: E731
        run(pg_bin("initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync")
        run(pg_bin("pg_ctl"), "-D", str(self.dir), "-w", "-l", str(self.dir.parent / "postgres.log"), "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off -c max_connections=200", "start")
        run(pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "airflow")
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def stop(self) -> None:
        if self.dir.exists():
            subprocess.run([*self.as_user, pg_bin("pg_ctl"), "-D", str(self.dir), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)


class Deployment:
    """The four Airflow components, started with one environment; REST helpers over ``/api/v2``.

    They run with a working directory outside the checkout: with the checkout on
    sys.path, its ``*.egg-info`` is a second copy of this distribution, so every entry point plugin
    is found twice, and Airflow 3.3's task-side plugin loader stops at the first duplicate name."""

    def __init__(self, root: Path, emulator: Any) -> None:
        self.root, self.emulator = root, emulator
        self.home = root / "airflow-home"
        self.home.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.url}/api/v2"
        self.postgres = Postgres(root)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> Deployment:
        db = self.postgres.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "10",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "30",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": "deployment-tests-jwt-secret-0123456789",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "20",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_ROBOCORP_DEFAULT": self.emulator.connection_json(),
            "ROBOCORP_WORKSPACE_ID": self.emulator.workspace_id,
            "ROBOCORP_WATCH_POLL_SECONDS": "1",
            "ROBOCORP_POLL_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        })
        self.env = env
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                                 text=True, timeout=300, cwd=self.root)
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed:\n{(migrate.stdout + migrate.stderr)[-4000:]}")
        for component in COMPONENTS:
            self.start_component(component)
        wait_for("all four components to report healthy", self.healthy, timeout=240)
        return self

    def start_component(self, component: str) -> None:
        args = {"scheduler": ["--skip-serve-logs"], "triggerer": ["--skip-serve-logs"],
                "api-server": ["--host", "127.0.0.1", "--port", str(self.port)], "dag-processor": []}[component]
        log = open(self.root / f"{component}.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.procs[component] = subprocess.Popen([sys.executable, "-m", "airflow", component, *args], env=self.env,
                                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                 cwd=self.root)  # not the checkout (see the class docstring)

    def kill_component(self, component: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(component)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)

    def stop(self) -> None:
        for component in list(self.procs):
            try:
                os.killpg(self.procs[component].pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for component, proc in list(self.procs.items()):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            self.procs.pop(component)
        self.postgres.stop()

    def healthy(self) -> bool:
        for component, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {component} exited ({proc.returncode}); see {self.root}/{component}.log:\n"
                                   + self.component_log(component)[-3000:])
        health = requests.get(f"{self.api}/monitor/health", timeout=10).json()
        return all(health.get(part, {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))

    def component_log(self, component: str) -> str:
        path = self.root / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- REST -------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        answer = requests.get(f"{self.api}{path}", params=params, timeout=30, headers={"Accept": "application/json"})
        answer.raise_for_status()
        return answer.json()

    def call(self, method: str, path: str, body: Any) -> Any:
        answer = requests.request(method, f"{self.api}{path}", json=body, timeout=30)
        assert answer.ok, (method, path, answer.status_code, answer.text)
        return answer.json()

    def dag_parsed(self, dag_id: str) -> bool:
        return requests.get(f"{self.api}/dags/{dag_id}", timeout=10).status_code == 200

    def unpause(self, dag_id: str) -> None:
        wait_for(f"the DAG {dag_id} to be parsed", lambda: self.dag_parsed(dag_id), timeout=120)
        self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.unpause(dag_id)
        return str(self.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})["dag_run_id"])

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_dag_run(self, dag_id: str, run_id: str, timeout: float = 180.0) -> str:
        state = str(wait_for(f"DAG run {dag_id}/{run_id} to finish",
                             lambda: (s if (s := self.dag_run_state(dag_id, run_id)) in ("success", "failed") else None),
                             timeout=timeout))
        if state != "success":
            print(self.failure_report(dag_id, run_id))
        return state

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", order_by="-run_after", limit=50)["dag_runs"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def wait_task_state(self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float = 120.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            ti = self.task_instance(dag_id, run_id, task_id)
            if ti["state"] in ("failed", "upstream_failed") and state not in ("failed", "upstream_failed"):
                raise AssertionError(f"{task_id} ended {ti['state']}:\n{self.failure_report(dag_id, run_id)}")
            return ti if ti["state"] == state else None

        return dict(wait_for(f"{dag_id}/{run_id}/{task_id} to be {state}", reached, timeout=timeout))

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """Each task's state, and the log tail of those that failed."""
        tis = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        lines = [f"{ti['task_id']}[{ti['map_index']}]: {ti['state']}" for ti in tis]
        for ti in tis:
            if ti["state"] == "failed" and ti["map_index"] < 0:
                lines.append(f"--- log of {ti['task_id']} ---\n{self.task_log(dag_id, run_id, ti['task_id'])[-2500:]}")
        return "\n".join(lines)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                        deserialize="true")["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
        if try_number is None:
            try_number = max(int(self.task_instance(dag_id, run_id, task_id).get("try_number") or 1), 1)
        body = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
                        full_content="true")
        content = body.get("content")
        if isinstance(content, list):
            return "\n".join(json.dumps(line) if not isinstance(line, str) else line for line in content)
        return str(content)
