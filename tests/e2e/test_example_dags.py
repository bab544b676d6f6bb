"""Every example DAG run with ``dag.test()`` (real Airflow, SQLite) against the emulator.

``dag.test()`` runs the tasks in-process and deferred triggers inline; task logs go to stdout,
so ``capfd`` holds the full task logs of the run.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import pytest

from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from tests.operators.helpers import posts

pytestmark = pytest.mark.timeout(120)


def xcoms(dag_run: Any) -> dict[tuple[str, str], Any]:
    """``{(task_id, key): value}`` of a finished DAG run (unmapped tasks only)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
                                    XComModel.map_index < 0)
        ).all()
        return {(row.task_id, row.key): XComModel.deserialize_value(row) for row in rows}


def states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti.state
            for ti in dag_run.get_task_instances()}


def run_url(emulator: Any, process_id: str, run_id: str) -> str:
    return (f"{emulator.url}/organizations/org-emulator/workspaces/ws-emulator/processes/{process_id}/runs/{run_id}")


def assert_no_secret(logs: str, emulator: Any, values: dict[tuple[str, str], Any]) -> None:
    """The API key appears nowhere in the task logs or the XComs of the run."""
    assert "Task started" in logs  # the logs were really captured
    assert emulator.api_key not in logs
    assert emulator.api_key not in json.dumps(list(values.values()), default=str)


def test_pipeline_success_deferred_through_429_and_503(load_dag, robocorp_emulator, monkeypatch, capfd):
    conn = json.loads(robocorp_emulator.connection_json())
    conn["extra"] = {"max_retries": 0}  # so the trigger's own loop has to survive the faults
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps(conn))
    robocorp_emulator.add_fault(kind="status", status=429, retry_after="0", method="GET",
                                path="/process-runs/[^/]+$", times=2)
    robocorp_emulator.add_fault(kind="status", status=503, method="GET", path="/process-runs/[^/]+$", times=2)

    dag_run = load_dag("example_robocorp_pipeline").test()

    logs = capfd.readouterr().out
    assert dag_run.state == "success", states(dag_run)
    values = xcoms(dag_run)
    run_id = values[("process_invoices", "return_value")]
    url = run_url(robocorp_emulator, "proc-invoices", run_id)
    assert values[("process_invoices", "process_run_id")] == run_id
    assert values[("process_invoices", "process_run_url")] == url
    assert values[("process_invoices", "_link_ControlRoomProcessRunLink")] == url
    outputs = values[("process_invoices", "outputs")]
    assert sorted(o["payload"]["invoice"] for o in outputs) == ["INV-001", "INV-002"]
    assert sorted(f for o in outputs for f in o["files"]) == ["invoice-001.csv", "invoice-002.csv"]
    assert values[("summarize", "return_value")]["booked"] == ["INV-001", "INV-002"]

    run = robocorp_emulator.state()["process_runs"]
    assert [(r["id"], r["state"]) for r in run] == [(run_id, "completed")]
    items = robocorp_emulator.state()["work_items"]
    assert sorted(f["name"] for i in items for f in i["files"]) == ["invoice-001.csv", "invoice-002.csv"]
    faulted = [r["status"] for r in robocorp_emulator.requests_log() if r.get("fault")]
    assert sorted(faulted) == [429, 429, 503, 503]
    assert "polling again" in logs and "Pausing task as DEFERRED" in logs
    assert f"Process run {run_id} is completed" in logs  # the trigger reports the end at once, uncounted
    assert_no_secret(logs, robocorp_emulator, values)


def test_pipeline_unresolved_fails_with_the_items_message_in_the_task_log(load_dag, robocorp_emulator, capfd):
    invoices = [
        {"invoice": "INV-001", "file": "invoice-001.csv"},
        {"invoice": "INV-003", "file": "invoice-003.csv", "fail": True, "reason": "Supplier not in registry"},
    ]

    dag_run = load_dag("example_robocorp_pipeline").test(run_conf={"invoices": invoices})

    logs = capfd.readouterr().out
    assert dag_run.state == "failed"
    assert states(dag_run)["process_invoices"] == "failed"
    assert states(dag_run)["summarize"] == "upstream_failed"
    (failed,) = [i for i in robocorp_emulator.state()["work_items"] if i["state"] == "failed"]
    assert f"{failed['id']} (business exception INVALID_INVOICE): Supplier not in registry" in logs
    assert "[Read invoice] ERROR INVALID_INVOICE: Supplier not in registry" in logs
    assert_no_secret(logs, robocorp_emulator, xcoms(dag_run))


def test_asset_refresh(load_dag, robocorp_emulator, capfd):
    dag_run = load_dag("example_robocorp_asset_refresh").test()

    logs = capfd.readouterr().out
    assert dag_run.state == "success", states(dag_run)
    values = xcoms(dag_run)
    stored = json.loads(RobocorpHook().download_asset("name:invoice-settings"))
    assert stored == values[("build_settings", "return_value")]
    assert stored["currency"] == "EUR"
    (run,) = robocorp_emulator.state()["process_runs"]
    assert run["process"]["id"] == "proc-report" and run["state"] == "completed"
    assert values[("run_report", "process_run_url")] == run_url(robocorp_emulator, "proc-report", run["id"])
    assert "Pausing task as DEFERRED" not in logs  # the run task waited in sync mode
    assert_no_secret(logs, robocorp_emulator, values)


def test_sensor_on_a_run_started_elsewhere(load_dag, robocorp_emulator, capfd):
    """A slow run (an emulated hour per item) ends when the test moves the emulator's clock."""
    run_id = RobocorpHook().start_process_run("proc-slow", payloads=[{"batch": 7}])["id"]

    def finish_once_deferred() -> None:
        for _ in range(400):
            polls = [r for r in robocorp_emulator.requests_log() if r["path"].endswith(run_id)]
            if len(polls) >= 2:  # the sensor's own poke, then the trigger's first poll
                robocorp_emulator.advance(3600)
                return
            time.sleep(0.05)

    clock = threading.Thread(target=finish_once_deferred, daemon=True)
    clock.start()
    dag_run = load_dag("example_robocorp_sensor").test(run_conf={"process_run_id": run_id})
    clock.join(5)

    logs = capfd.readouterr().out
    assert dag_run.state == "success", states(dag_run)
    values = xcoms(dag_run)
    assert values[("wait_for_run", "_link_ControlRoomProcessRunLink")] == run_url(robocorp_emulator,
                                                                                    "proc-slow", run_id)
    assert values[("collect_outputs", "return_value")] == [{"batch": 7, "processed": True}]
    assert "Pausing task as DEFERRED" in logs
    assert f"Process run {run_id} is completed" in logs  # reported by the trigger at once, uncounted
    assert posts(robocorp_emulator, "/stop") == []
    assert_no_secret(logs, robocorp_emulator, values)


def test_retry_failed_work_items(load_dag, robocorp_emulator, capfd):
    dag_run = load_dag("example_robocorp_retry_failed").test()

    logs = capfd.readouterr().out
    assert dag_run.state == "success", states(dag_run)
    values = xcoms(dag_run)
    run_id = values[("process_invoices", "return_value")]
    (retried,) = values[("retry_failed_items", "return_value")]
    assert values[("correct_rejected_items", "return_value")] == [retried]
    assert RobocorpHook().get_process_run(run_id)["state"] == "completed"
    item = RobocorpHook().get_work_item(retried, include_data=True)
    assert item["state"] == "done" and item["payload"]["supplier_checked"] is True
    assert "ended unresolved" in logs and "Supplier not in registry" in logs
    assert len(posts(robocorp_emulator, "/work-items/batch")) == 1
    assert_no_secret(logs, robocorp_emulator, values)


def test_bad_input_creates_nothing(load_dag, robocorp_emulator, capfd):
    invoices = [{"invoice": "INV-404", "file": "no-such-invoice.csv"}]

    dag_run = load_dag("example_robocorp_pipeline").test(run_conf={"invoices": invoices})

    logs = capfd.readouterr().out
    assert dag_run.state == "failed"
    assert states(dag_run)["create_work_items[0]"] == "failed"
    assert "no-such-invoice.csv' does not exist" in logs
    assert robocorp_emulator.state()["work_items"] == []
    assert robocorp_emulator.state()["process_runs"] == []


def test_sensor_fails_on_an_unresolved_run(load_dag, robocorp_emulator, capfd):
    run_id = RobocorpHook().start_process_run("proc-invoices", payloads=[{"fail": True, "reason": "Duplicate"}])["id"]

    dag_run = load_dag("example_robocorp_sensor").test(run_conf={"process_run_id": run_id})

    logs = capfd.readouterr().out
    assert dag_run.state == "failed"
    assert states(dag_run) == {"wait_for_run": "failed", "collect_outputs": "upstream_failed"}
    assert "(business exception INVALID_INVOICE): Duplicate" in logs
    assert_no_secret(logs, robocorp_emulator, xcoms(dag_run))


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_timeout_stops_the_run(load_dag, robocorp_emulator, monkeypatch, capfd, deferrable):
    dag = load_dag("example_robocorp_asset_refresh")
    report = dag.get_task("run_report")
    monkeypatch.setattr(report, "process_id", "proc-slow")  # items take an emulated hour each
    monkeypatch.setattr(report, "timeout", 1.0)
    monkeypatch.setattr(report, "deferrable", deferrable)

    dag_run = dag.test()

    logs = capfd.readouterr().out
    assert dag_run.state == "failed"
    assert states(dag_run)["run_report"] == "failed"
    (run,) = robocorp_emulator.state()["process_runs"]
    assert run["state"] == "unresolved"
    assert len(posts(robocorp_emulator, "/stop")) == 1
    assert f"Process run {run['id']} did not finish within the timeout of 1 s" in logs
    assert "the process run was stopped" in logs


@pytest.mark.parametrize("skip", [True, False], ids=["skip", "fail"])
def test_nothing_to_start(load_dag, robocorp_emulator, monkeypatch, capfd, skip):
    dag = load_dag("example_robocorp_asset_refresh")
    report = dag.get_task("run_report")
    monkeypatch.setattr(report, "process_id", "proc-invoices")
    monkeypatch.setattr(report, "use_input_work_items", True)  # the input queue is empty
    monkeypatch.setattr(report, "skip_if_not_started", skip)

    dag_run = dag.test()

    logs = capfd.readouterr().out
    assert states(dag_run)["run_report"] == ("skipped" if skip else "failed")
    assert dag_run.state == ("success" if skip else "failed")
    assert '{"started": false}' in logs
    assert robocorp_emulator.state()["process_runs"] == []


def test_kill_stops_the_run(load_dag, robocorp_emulator, monkeypatch, capfd):
    """SIGTERM to the task (what Airflow sends to kill it) runs on_kill, which stops the run."""
    dag = load_dag("example_robocorp_asset_refresh")
    report = dag.get_task("run_report")
    monkeypatch.setattr(report, "process_id", "proc-slow")
    monkeypatch.setattr(report, "deferrable", False)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # a stray signal must not end pytest

    def kill_when_waiting() -> None:
        # Kill only once the task has polled its run twice after starting it: it is then surely in
        # its poll loop, under the task runner's handler (no wall-clock guess, so a busy machine
        # cannot make the signal arrive before the run id is known).
        for _ in range(2400):
            runs = robocorp_emulator.state()["process_runs"]
            if runs:
                polls = [r for r in robocorp_emulator.requests_log()
                         if r.get("method") == "GET" and r.get("path", "").endswith(f"/process-runs/{runs[0]['id']}")]
                if len(polls) >= 2:
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_when_waiting, daemon=True)
    killer.start()
    try:
        dag_run = dag.test()
    finally:
        killer.join(5)
        signal.signal(signal.SIGTERM, previous)

    logs = capfd.readouterr().out
    assert states(dag_run)["run_report"] == "failed"
    (run,) = robocorp_emulator.state()["process_runs"]
    assert run["state"] == "unresolved"
    assert len(posts(robocorp_emulator, "/stop")) == 1
    assert f"Stopped process run {run['id']} because the task was killed." in logs


def asset_events(uri: str) -> list[dict[str, Any]]:
    """The ``extra`` of every asset event recorded for ``uri``, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [dict(e.extra) for e in session.scalars(
            select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == uri).order_by(AssetEvent.id))]


def test_completed_runs_and_uploads_emit_asset_events(load_dag, robocorp_emulator, capfd):
    settings_uri = "robocorp://ws-emulator/assets/invoice-settings"
    report_uri = "robocorp://ws-emulator/processes/proc-report"
    before = len(asset_events(settings_uri)), len(asset_events(report_uri))

    dag_run = load_dag("example_robocorp_asset_refresh").test()

    assert dag_run.state == "success", states(dag_run)
    uploads, runs = asset_events(settings_uri)[before[0]:], asset_events(report_uri)[before[1]:]
    (asset,) = robocorp_emulator.state()["assets"][-1:]
    assert len(uploads) == 1 and uploads[0]["asset_name"] == "invoice-settings"
    assert uploads[0]["content_type"] == "application/json" and uploads[0]["size"] > 0
    assert uploads[0]["upload_id"] and uploads[0]["asset_id"] == xcoms(dag_run)[("upload_settings", "return_value")]
    (run,) = robocorp_emulator.state()["process_runs"]
    assert runs == [{"process_run_id": run["id"], "process_id": "proc-report", "state": "completed",
                     "work_items": runs[0]["work_items"], "outputs": runs[0]["outputs"]}]
    assert runs[0]["work_items"]["done"] >= 1 and isinstance(runs[0]["outputs"], int)
    assert asset["name"] == "invoice-settings"  # (the scheduler running the second DAG: tests/deployment)


def test_no_asset_event_when_turned_off_or_the_run_failed(load_dag, robocorp_emulator, capfd):
    from airflow_provider_robocorp.operators import StartProcessRunOperator

    off = StartProcessRunOperator(task_id="t", process_id="proc-report", emit_asset_events=False)
    assert off.outlets == []
    invoices_uri = "robocorp://ws-emulator/processes/proc-invoices"
    before = len(asset_events(invoices_uri))
    invoices = [{"invoice": "INV-003", "file": "invoice-003.csv", "fail": True, "reason": "Supplier unknown"}]
    dag_run = load_dag("example_robocorp_pipeline").test(run_conf={"invoices": invoices})
    assert dag_run.state == "failed"
    assert asset_events(invoices_uri)[before:] == []


def test_lost_answers_create_no_duplicate_run_or_work_item(load_dag, robocorp_emulator, capfd):
    """Commit-then-drop on Create work item and on Start process run, with task retries on: the
    tasks reconcile instead of creating again, so Control Room holds one item per invoice and one run."""
    dag = load_dag("example_robocorp_pipeline")
    retries = {task.task_id: task.retries for task in dag.tasks}
    for task in dag.tasks:
        task.retries = 2
    robocorp_emulator.add_fault(kind="commit_then_drop", method="POST", path="/work-items$", times=1)
    robocorp_emulator.add_fault(kind="commit_then_drop", method="POST", path="/process-runs$", times=1)
    invoices = [{"invoice": "INV-001", "file": "invoice-001.csv"}, {"invoice": "INV-002", "file": "invoice-002.csv"}]

    try:
        dag_run = dag.test(run_conf={"invoices": invoices})  # explicit: Airflow 3.1 keeps an earlier test's conf
    finally:
        for task in dag.tasks:  # the parsed DAGs are shared by the session's tests
            task.retries = retries[task.task_id]

    logs = capfd.readouterr().out
    assert dag_run.state == "success", states(dag_run)
    assert len(robocorp_emulator.state()["process_runs"]) == 1
    assert len(robocorp_emulator.state()["work_items"]) == 2  # one per invoice (outputs are listed apart)
    assert sorted(r["fault"] for r in robocorp_emulator.requests_log() if r.get("fault")) == ["commit_then_drop"] * 2
    assert "but it created run" in logs and "but it created work item" in logs
    assert all(ti.try_number == 1 for ti in dag_run.get_task_instances())  # no task retry was needed
