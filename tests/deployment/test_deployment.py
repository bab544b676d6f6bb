"""What only a running Airflow shows: the real triggerer, a triggerer restart, the scheduler acting
on asset events (from an operator, an AssetWatcher, a signed webhook), the api-server plugin.

The emulator's clock is frozen; a test moves it once Airflow is where the test wants it (a task
deferred, a watcher looking), so nothing depends on how fast this machine is.
"""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest
import requests

from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.webhooks import sign
from tests.deployment.support import Deployment, wait_for

pytestmark = pytest.mark.deployment

PIPELINE = "example_robocorp_pipeline"


@pytest.fixture
def hook(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> RobocorpHook:
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", emulator.connection_json())
    return RobocorpHook()


def runs_of(emulator: Any, process_id: str) -> list[dict[str, Any]]:
    return [r for r in emulator.state()["process_runs"] if r["process"]["id"] == process_id]


def deferred_in_the_triggerer(deployment: Deployment, run_id: str, task_id: str) -> dict[str, Any]:
    """The task is deferred and a triggerer holds its trigger (the worker has let go of it)."""
    def held() -> dict[str, Any] | None:
        ti = deployment.task_instance(PIPELINE, run_id, task_id)
        if ti["state"] in ("failed", "upstream_failed"):
            raise AssertionError(deployment.task_log(PIPELINE, run_id, task_id)[-3000:])
        return ti if ti["state"] == "deferred" and (ti.get("trigger") or {}).get("triggerer_id") else None

    ti = dict(wait_for(f"{task_id} deferred in a triggerer", held, timeout=180))
    wait_for("the deferring worker to exit", lambda: deployment.task_instance(PIPELINE, run_id, task_id).get("pid")
             is None or "Pausing task as DEFERRED" in deployment.task_log(PIPELINE, run_id, task_id), timeout=60)
    return ti


def scheduled_run_with(deployment: Deployment, dag_id: str, before: set[str], task_id: str, run_id: str) -> str:
    """The new DAG run of ``dag_id`` (not in ``before``) whose ``task_id`` returned a list holding
    ``run_id``: other asset events (e.g. from operators in earlier tests) may schedule runs too."""
    def found() -> str | None:
        for dag_run in deployment.dag_runs(dag_id):
            if dag_run["dag_run_id"] in before or dag_run["state"] not in ("success", "failed"):
                continue
            assert dag_run["run_type"] == "asset_triggered" and dag_run["state"] == "success", dag_run
            if run_id in (deployment.xcom(dag_id, dag_run["dag_run_id"], task_id) or []):
                return str(dag_run["dag_run_id"])
        return None

    return str(wait_for(f"a {dag_id} run scheduled for process run {run_id}", found, timeout=180, pause=1))


def test_pipeline_deferred_in_the_real_triggerer(deployment: Deployment, emulator: Any) -> None:
    before = len(runs_of(emulator, "proc-invoices"))
    run_id = deployment.trigger(PIPELINE)
    deferred_in_the_triggerer(deployment, run_id, "process_invoices")
    time.sleep(2)  # the 3.3.2 race: give the deferring worker time to be gone before the trigger fires
    emulator.advance(600)

    assert deployment.wait_dag_run(PIPELINE, run_id) == "success"
    (run,) = runs_of(emulator, "proc-invoices")[before:]
    assert run["state"] == "completed"
    assert deployment.xcom(PIPELINE, run_id, "process_invoices") == run["id"]
    assert deployment.xcom(PIPELINE, run_id, "process_invoices", "process_run_id") == run["id"]
    log = deployment.task_log(PIPELINE, run_id, "process_invoices")
    assert f"Process run {run['id']} is completed" in log  # written by the trigger in the triggerer
    assert emulator.api_key not in log


def test_triggerer_killed_and_restarted_while_a_run_is_waited_on(deployment: Deployment, emulator: Any) -> None:
    before = len(runs_of(emulator, "proc-invoices"))
    run_id = deployment.trigger(PIPELINE)
    deferred_in_the_triggerer(deployment, run_id, "process_invoices")
    deployment.kill_component("triggerer", signal.SIGKILL)
    emulator.advance(600)  # the run ends while no triggerer is watching
    deployment.start_component("triggerer")

    assert deployment.wait_dag_run(PIPELINE, run_id, timeout=240) == "success"
    assert [r["state"] for r in runs_of(emulator, "proc-invoices")[before:]] == ["completed"]  # exactly one run
    ti = deployment.task_instance(PIPELINE, run_id, "process_invoices")
    assert ti["try_number"] == 1  # picked up by the new triggerer, not retried


def test_asset_watcher_schedules_a_dag_when_a_run_started_elsewhere_ends(
    deployment: Deployment, emulator: Any, hook: RobocorpHook
) -> None:
    dag_id = "example_robocorp_after_invoices"
    deployment.unpause(dag_id)
    wait_for("the watcher's first look", lambda: "Watching process proc-invoices from now on"
             in deployment.component_log("triggerer"), timeout=180)
    before = {r["dag_run_id"] for r in deployment.dag_runs(dag_id)}
    run = hook.start_process_run("proc-invoices", payloads=[{"invoice": "INV-9"}])  # not from Airflow
    emulator.advance(600)

    scheduled_run_with(deployment, dag_id, before, "book_invoices", run["id"])


def test_asset_refresh_schedules_the_settings_dag(deployment: Deployment, emulator: Any) -> None:
    consumer = "example_robocorp_settings_changed"
    deployment.unpause(consumer)
    before = {r["dag_run_id"] for r in deployment.dag_runs(consumer)}
    on_report = "example_robocorp_webhook"  # scheduled on robocorp://<ws>/processes/proc-report
    deployment.unpause(on_report)
    before_report = {r["dag_run_id"] for r in deployment.dag_runs(on_report)}
    started = len(runs_of(emulator, "proc-report"))
    run_id = deployment.trigger("example_robocorp_asset_refresh")
    wait_for("run_report to start its process run", lambda: len(runs_of(emulator, "proc-report")) > started,
             timeout=180)
    emulator.advance(600)
    assert deployment.wait_dag_run("example_robocorp_asset_refresh", run_id) == "success"

    new = wait_for("the settings DAG scheduled by the upload's asset event",
                   lambda: [r for r in deployment.dag_runs(consumer) if r["dag_run_id"] not in before], timeout=120)
    assert deployment.wait_dag_run(consumer, new[0]["dag_run_id"]) == "success"
    # run_report's own asset event (StartProcessRunOperator, on completed) schedules the DAG on the process
    report_run = deployment.xcom("example_robocorp_asset_refresh", run_id, "run_report")
    scheduled_run_with(deployment, on_report, before_report, "publish_report", report_run)
    changes = deployment.xcom(consumer, new[0]["dag_run_id"], "announce_settings")
    assert len({c["upload_id"] for c in changes}) == 1, changes  # one upload (Airflow may list its event twice)
    assert changes[0]["asset_name"] == "invoice-settings" and changes[0]["content_type"] == "application/json"


def test_signed_webhook_schedules_the_dag_and_a_forged_one_creates_nothing(
    deployment: Deployment, emulator: Any, hook: RobocorpHook
) -> None:
    dag_id = "example_robocorp_webhook"
    endpoint = f"{deployment.url}/robocorp/webhooks/robocorp_webhooks"
    webhook = hook.create_webhook(endpoint, ["process_run.completed"], "proc-report")
    deployment.call("POST", "/connections", {
        "connection_id": "robocorp_webhooks", "conn_type": "robocorp", "login": emulator.workspace_id,
        "extra": json.dumps({"webhook_secret": webhook["secret"]})})
    deployment.unpause(dag_id)
    before = {r["dag_run_id"] for r in deployment.dag_runs(dag_id)}

    forged = json.dumps({"id": "ev-forged", "event": "process_run.completed", "data": {
        "process_run": {"id": "run-forged", "state": "completed"}, "process": {"id": "proc-report"},
        "workspace": {"id": emulator.workspace_id}}}).encode()
    answer = requests.post(endpoint, data=forged, headers={"x-rc-signature": sign(forged, "not-the-secret")},
                           timeout=30)
    assert answer.status_code == 401

    run = hook.start_process_run("proc-report")
    emulator.advance(600)  # the run ends; the emulator delivers the signed webhook

    scheduled_run_with(deployment, dag_id, before, "publish_report", run["id"])
    delivered = [d for d in emulator.webhook_deliveries() if d["source_id"] == webhook["id"]]
    assert delivered and delivered[0]["delivered"]
    events = deployment.get("/assets/events", limit=100)["asset_events"]
    assert not [e for e in events if (e.get("extra") or {}).get("process_run_id") == "run-forged"]
    hook.delete_webhook(webhook["id"])
