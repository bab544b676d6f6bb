"""OpenLineage: the operators' facets, and the events the OpenLineage provider really emits for
them (its own file transport, in a ``dag.test()`` run); without the provider nothing is needed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_robocorp.operators import (
    AssetDownloadOperator,
    AssetUploadOperator,
    CreateWorkItemOperator,
    StartProcessRunOperator,
)
from airflow_provider_robocorp.operators._lineage import openlineage_module

REPO = Path(__file__).resolve().parents[1]
NS = "robocorp://ws-emulator"


def test_without_the_openlineage_provider_there_is_no_lineage_and_no_error(monkeypatch) -> None:
    for name in ("openlineage", "airflow.providers.openlineage", "airflow_provider_robocorp.openlineage"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    assert openlineage_module() is None
    op = StartProcessRunOperator(task_id="t", process_id="proc-report")
    assert op.get_openlineage_facets_on_complete(None) is None
    assert op.get_openlineage_facets_on_failure(None) is None
    assert CreateWorkItemOperator(task_id="w", process_id="p").get_openlineage_facets_on_complete(None) is None


needs_openlineage = pytest.mark.skipif(importlib.util.find_spec("airflow.providers.openlineage") is None,
                                       reason="the openlineage extra is not installed (CI: the Python 3.13 pair)")


def as_dict(lineage: Any) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    return {
        "inputs": [(d.namespace, d.name) for d in lineage.inputs],
        "outputs": [(d.namespace, d.name) for d in lineage.outputs],
        "run": {k: Serde.to_dict(v) for k, v in lineage.run_facets.items()},
        "job": {k: Serde.to_dict(v) for k, v in lineage.job_facets.items()},
    }


@needs_openlineage
@pytest.mark.usefixtures("robocorp_conn_env")
def test_facets_of_each_operator(robocorp_emulator: Any, tmp_path: Path) -> None:
    start = StartProcessRunOperator(task_id="run", process_id="proc-report", poll_interval=0.1)
    run_id = start.execute({})
    got = as_dict(start.get_openlineage_facets_on_complete(None))
    assert got["inputs"] == [(NS, "processes/proc-report/work-items")]
    assert got["outputs"] == [(NS, "processes/proc-report")]
    facet = got["run"]["robocorp_process_run"]
    assert facet["processRunId"] == run_id and facet["state"] == "completed" and facet["workspaceId"] == "ws-emulator"
    assert facet["processRunUrl"].endswith(f"/processes/proc-report/runs/{run_id}")
    assert got["run"]["externalQuery"]["externalQueryId"] == run_id
    assert got["job"]["robocorp_process"] == {**got["job"]["robocorp_process"], "processId": "proc-report"}

    failing = StartProcessRunOperator(task_id="bad", process_id="proc-invoices", payloads=[{"fail": True,
                                      "reason": "Supplier unknown"}], poll_interval=0.1)
    with pytest.raises(Exception, match="unresolved"):
        failing.execute({})
    failed = as_dict(failing.get_openlineage_facets_on_failure(None))
    assert "Supplier unknown" in failed["run"]["errorMessage"]["message"]

    csv = tmp_path / "invoice.csv"
    csv.write_text("a,b\n")
    create = CreateWorkItemOperator(task_id="item", process_id="proc-invoices", payload={"n": 1}, files=[str(csv)])
    item_id = create.execute({})
    created = as_dict(create.get_openlineage_facets_on_complete(None))
    assert created["outputs"] == [(NS, "processes/proc-invoices/work-items")]
    assert created["inputs"][0][1] == str(csv.resolve()) and created["inputs"][0][0].startswith("file://")
    assert created["run"]["robocorp_process_run"]["workItemIds"] == [item_id]

    upload = AssetUploadOperator(task_id="up", asset_name="rates eu", data={"eur": 1})
    asset_id = upload.execute({})
    up = as_dict(upload.get_openlineage_facets_on_complete(None))
    assert up["outputs"] == [(NS, "assets/rates eu")] and up["run"]["robocorp_process_run"]["assetId"] == asset_id

    download = AssetDownloadOperator(task_id="down", asset_id=asset_id, dest_path=str(tmp_path / "rates.json"))
    download.execute({})
    down = as_dict(download.get_openlineage_facets_on_complete(None))
    assert down["inputs"] == [(NS, "assets/rates eu")] and down["outputs"][0][1] == str(tmp_path / "rates.json")


@needs_openlineage
@pytest.mark.timeout(300)
def test_the_openlineage_provider_emits_them_through_its_transport(robocorp_emulator: Any, tmp_path: Path,
                                                                   airflow_db: None) -> None:
    """A ``dag.test()`` run in a fresh interpreter with the provider's file transport configured:
    the COMPLETE event of the run task carries our datasets and facets, the FAIL one the error."""
    events_file = tmp_path / "openlineage.jsonl"
    code = textwrap.dedent(f"""
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(REPO / "example_dags")!r})
        ok = bag.dags["example_robocorp_asset_refresh"]
        for t in ok.tasks:
            if hasattr(t, "poll_interval"):
                t.poll_interval = 0.2
        print("STATE", ok.test().state)
        bad = bag.dags["example_robocorp_pipeline"]
        for t in bad.tasks:
            if hasattr(t, "poll_interval"):
                t.poll_interval = 0.2
        conf = {{"invoices": [{{"invoice": "INV-9", "file": "invoice-001.csv", "fail": True,
                                "reason": "Supplier unknown"}}]}}
        print("STATE", bad.test(run_conf=conf).state)
    """)
    env = {**os.environ, "AIRFLOW_CONN_ROBOCORP_DEFAULT": robocorp_emulator.connection_json(),
           "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_file),
                                                           "append": True}),
           "AIRFLOW__OPENLINEAGE__NAMESPACE": "robocorp-tests",
           # emit from a thread of the task process: a forked emitter's file writes may be cut off by os._exit
           "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True"}
    # Run outside the checkout: with the repository on sys.path its egg-info is a second copy of this
    # distribution, and Airflow 3.3's task-side plugin loader stops at the first duplicate plugin name
    # (airflow/sdk/plugins_manager.py returns instead of continuing), dropping OpenLineage's listener.
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=280,
                         cwd=tmp_path)
    assert out.stdout.count("STATE") == 2, out.stdout[-3000:] + out.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]

    def event(job_suffix: str, kind: str) -> dict[str, Any]:
        found = [e for e in events if e["eventType"] == kind and e["job"]["name"].endswith(job_suffix)]
        assert found, sorted({(e["job"]["name"], e["eventType"]) for e in events})
        return found[-1]

    complete = event("example_robocorp_asset_refresh.run_report", "COMPLETE")
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [(NS, "processes/proc-report")]
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [(NS, "processes/proc-report/work-items")]
    run_facet = complete["run"]["facets"]["robocorp_process_run"]
    assert run_facet["state"] == "completed" and run_facet["processRunUrl"]
    assert complete["job"]["facets"]["robocorp_process"]["processId"] == "proc-report"
    upload = event("example_robocorp_asset_refresh.upload_settings", "COMPLETE")
    assert [(d["namespace"], d["name"]) for d in upload["outputs"]] == [(NS, "assets/invoice-settings")]
    failed = event("example_robocorp_pipeline.process_invoices", "FAIL")
    assert "Supplier unknown" in failed["run"]["facets"]["errorMessage"]["message"]
    assert robocorp_emulator.api_key not in events_file.read_text()
