"""The "Control Room" extra link, the provider registration and the import-light DAG parsing path."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_robocorp import get_provider_info
from airflow_provider_robocorp.links import ControlRoomProcessRunLink
from airflow_provider_robocorp.operators import StartProcessRunOperator
from airflow_provider_robocorp.sensors import ProcessRunSensor

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_robocorp"
PARSE_PATH = ("operators", "sensors", "triggers", "links.py")
KEY: Any = "ti-key"  # stands in for a TaskInstanceKey


def test_link_reads_the_url_pushed_at_execute_time(monkeypatch):
    from airflow.sdk.execution_time.xcom import XCom

    seen = []

    def get_value(*, ti_key: object, key: str) -> object:
        seen.append((ti_key, key))
        return {"process_run_url": "https://sso.robocorp.com/organizations/o/workspaces/w/processes/p/runs/r"}.get(key)

    monkeypatch.setattr(XCom, "get_value", get_value)
    link = ControlRoomProcessRunLink()

    assert link.name == "Control Room"
    assert link.get_link(StartProcessRunOperator(task_id="t", process_id="p"), ti_key=KEY) == (
        "https://sso.robocorp.com/organizations/o/workspaces/w/processes/p/runs/r"
    )
    assert seen == [(KEY, "process_run_url")]


@pytest.mark.parametrize("value", [None, "", "javascript:alert(1)", ["https://x"]])
def test_link_is_empty_without_a_usable_url(monkeypatch, value):
    from airflow.sdk.execution_time.xcom import XCom

    monkeypatch.setattr(XCom, "get_value", lambda **_: value)
    assert ControlRoomProcessRunLink().get_link(ProcessRunSensor(task_id="s", process_run_id="r"), ti_key=KEY) == ""


def test_link_is_on_the_run_operator_and_the_sensor():
    for operator in (StartProcessRunOperator, ProcessRunSensor):
        assert [type(link) for link in operator.operator_extra_links] == [ControlRoomProcessRunLink]


def test_provider_info_names_classes_that_exist():
    info = get_provider_info()
    modules = [m for kind in ("operators", "sensors", "triggers") for entry in info[kind] for m in entry["python-modules"]]
    for module in modules:
        importlib.import_module(module)
    for path in info["extra-links"]:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name) is ControlRoomProcessRunLink
    exported = {
        "airflow_provider_robocorp.operators": {"StartProcessRunOperator", "StopProcessRunOperator",
                                                "CreateWorkItemOperator", "WorkItemBatchOperator",
                                                "AssetUploadOperator", "AssetDownloadOperator"},
        "airflow_provider_robocorp.sensors": {"ProcessRunSensor"},
        "airflow_provider_robocorp.triggers": {"ProcessRunTrigger"},
    }
    for module, names in exported.items():
        assert set(importlib.import_module(module).__all__) == names


def test_parsing_path_imports_no_emulator_server_or_async_client():
    code = (
        "import sys\n"
        "import airflow_provider_robocorp.operators, airflow_provider_robocorp.sensors\n"
        "import airflow_provider_robocorp.triggers, airflow_provider_robocorp.links\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', 'starlette')"
        " or m.startswith('airflow_provider_robocorp.emulator')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_parsing_path_modules_do_not_import_httpx_at_module_level():
    # Airflow's own SDK loads httpx, so check our modules' top-level imports instead of sys.modules.
    files = [p for part in PARSE_PATH for p in ((PACKAGE / part).rglob("*.py") if (PACKAGE / part).is_dir()
                                                else [PACKAGE / part])]
    for file in files:
        for node in ast.parse(file.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("httpx", "fastapi", "uvicorn") for n in names), file
            assert not any("emulator" in n for n in names), file


def test_resumable_stand_in_on_airflow_without_it(monkeypatch):
    """Below Airflow 3.3 the operator gets a stand-in mixin: every try simply starts a run."""
    import types

    import airflow_provider_robocorp._compat as compat

    monkeypatch.setitem(sys.modules, "airflow.sdk", types.ModuleType("airflow.sdk"))  # no ResumableJobMixin
    namespace: dict[str, Any] = {"__name__": "compat_without_mixin"}
    exec(compile(Path(compat.__file__).read_text(), compat.__file__, "exec"), namespace)
    stand_in = namespace["ResumableJobMixin"]
    assert stand_in is not compat.ResumableJobMixin

    calls: list[str] = []

    class Job(stand_in):  # type: ignore[misc, valid-type]
        def submit_job(self, context: Any) -> str:
            calls.append("submit")
            return "run-1"

        def poll_until_complete(self, external_id: Any, context: Any) -> None:
            calls.append(f"poll {external_id}")

        def get_job_result(self, external_id: Any, context: Any) -> str:
            calls.append(f"result {external_id}")
            return str(external_id)

    job = Job(durable=True)
    assert job.durable is False
    assert job.execute_resumable({"task_state_store": object()}) == "run-1"
    assert calls == ["submit", "poll run-1", "result run-1"]


def test_dag_parsing_loads_no_http_client_until_a_hook_is_used():
    """Importing the operators, sensors and links adds no package beyond Airflow's SDK (no
    requests/urllib3, no trigger base class), nor does an example DAG; the first hook call loads them."""
    example_dags = Path(__file__).resolve().parents[2] / "example_dags"
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(example_dags)!r})\n"
        "import airflow.sdk\n"
        "from airflow.sdk import DAG, BaseOperator\n"
        "before = set(sys.modules)\n"
        "import airflow_provider_robocorp.operators, airflow_provider_robocorp.sensors\n"
        "import airflow_provider_robocorp.triggers, airflow_provider_robocorp.links\n"
        "provider = set(sys.modules) - before\n"
        "import example_robocorp_pipeline\n"
        "dag_file = set(sys.modules) - before\n"
        "from airflow_provider_robocorp.hooks.robocorp import RobocorpHook\n"
        "RobocorpHook()._transport\n"
        "print('RESULT ' + json.dumps({'provider': sorted({m.split('.')[0] for m in provider}),\n"
        "    'airflow': sorted(m for m in provider if m.startswith('airflow.') and not m.startswith('airflow.sdk')),\n"
        "    'dag_file': sorted({m.split('.')[0] for m in dag_file}),\n"
        "    'on_use': 'requests' in sys.modules and 'urllib3' in sys.modules}))\n"
    )
    env = {**os.environ, "AIRFLOW_CONN_ROBOCORP_DEFAULT": '{"conn_type": "robocorp", "login": "ws", "password": "key-1"}'}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    assert result["provider"] == ["airflow", "airflow_provider_robocorp"]
    assert result["airflow"] == []  # e.g. airflow.triggers.base (and pydantic) load only when a task defers
    assert not {"requests", "urllib3", "httpx", "charset_normalizer", "pydantic", "openlineage"} & set(result["dag_file"])
    assert result["on_use"] is True
