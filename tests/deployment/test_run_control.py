"""Run control in a real deployment: the link during a sync wait, Clear runs the robot again, and
the human review of an unresolved run answered through Airflow's REST API."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.deployment.support import Deployment, wait_for

pytestmark = pytest.mark.deployment

REFRESH, REVIEW = "example_robocorp_asset_refresh", "example_robocorp_review"


def runs_of(emulator: Any, process_id: str) -> list[dict[str, Any]]:
    return [r for r in emulator.state()["process_runs"] if r["process"]["id"] == process_id]


def new_run(emulator: Any, process_id: str, before: int) -> dict[str, Any]:
    """The first run of ``process_id`` after the first ``before`` ones (only the review DAG starts
    proc-invoices runs in this module, one at a time)."""
    return dict(wait_for(f"a new run of {process_id}", lambda: runs_of(emulator, process_id)[before:][:1], timeout=180)[0])


def test_link_during_a_sync_wait_and_clear_runs_the_robot_again(deployment: Deployment, emulator: Any) -> None:
    run_id = deployment.trigger(REFRESH)  # the process run is told apart by this DAG run's XCom

    def process_run_of_this_try() -> str | None:
        try:
            return str(deployment.xcom(REFRESH, run_id, "run_report", "process_run_id"))
        except requests.HTTPError:
            return None

    first = wait_for("run_report to start its process run", process_run_of_this_try, timeout=180)
    links_path = f"/dags/{REFRESH}/dagRuns/{run_id}/taskInstances/run_report/links"
    link = wait_for("the Control Room link while run_report waits",
                    lambda: deployment.get(links_path).get("extra_links", {}).get("Control Room"), timeout=60)
    assert link.endswith(f"/runs/{first}")
    assert deployment.task_instance(REFRESH, run_id, "run_report")["state"] == "running"  # still waiting
    emulator.advance(600)
    assert deployment.wait_dag_run(REFRESH, run_id) == "success"

    deployment.call("POST", f"/dags/{REFRESH}/clearTaskInstances", {
        "dag_run_id": run_id, "task_ids": ["run_report"], "only_failed": False, "dry_run": False,
        "reset_dag_runs": True})
    second = wait_for("the cleared run_report to start a new process run",
                      lambda: (r if (r := process_run_of_this_try()) not in (None, first) else None), timeout=180)
    emulator.advance(600)
    assert deployment.wait_dag_run(REFRESH, run_id) == "success"
    assert deployment.xcom(REFRESH, run_id, "run_report") == second  # Clear means: run the robot again
    assert {r["id"] for r in runs_of(emulator, "proc-report")} >= {first, second}
    log = deployment.task_log(REFRESH, run_id, "run_report", try_number=2)
    assert f"succeeded before with process run {first} and was cleared: starting a new run" in log


def hitl_path(run_id: str) -> str:
    return f"/dags/{REVIEW}/dagRuns/{run_id}/taskInstances/review_failures/-1/hitlDetails"


def review(deployment: Deployment, emulator: Any, invoices: list[dict[str, Any]], choice: str) -> tuple[str, str]:
    """Run the review DAG until it asks, answer ``choice`` through the REST API; (DAG run, process run)."""
    before = len(runs_of(emulator, "proc-invoices"))
    run_id = deployment.trigger(REVIEW, {"invoices": invoices})
    process_run = new_run(emulator, "proc-invoices", before)
    emulator.advance(600)  # the run ends unresolved
    detail = wait_for("the review's required action", lambda: requests.get(
        f"{deployment.api}{hitl_path(run_id)}", timeout=10).json() if requests.get(
        f"{deployment.api}{hitl_path(run_id)}", timeout=10).ok else None, timeout=180)
    # Airflow 3.3.2 marks the task failed when it is resumed before the parked worker has exited
    # (the race of deferred tasks, seen here with awaiting_input too): answer as a person would, later.
    wait_for("review_failures to be parked", lambda: deployment.task_instance(REVIEW, run_id, "review_failures")[
        "state"] == "awaiting_input" and "Pausing task as AWAITING_INPUT" in deployment.task_log(
        REVIEW, run_id, "review_failures"), timeout=120)
    time.sleep(3)
    assert detail["options"] == ["Retry failed items", "Mark them done", "Fail"]
    assert "failed work item" in detail["body"] and "| exception type | code | message |" in detail["body"]
    deployment.call("PATCH", hitl_path(run_id), {"chosen_options": [choice], "params_input": {}})
    return run_id, process_run["id"]


def test_review_retry_then_the_run_completes(deployment: Deployment, emulator: Any) -> None:
    run_id, process_run = review(deployment, emulator, [{"invoice": "INV-201", "flaky": True}], "Retry failed items")
    wait_for("the retried run to re-open", lambda: next(r for r in runs_of(emulator, "proc-invoices")
                                                        if r["id"] == process_run)["state"] != "unresolved")
    emulator.advance(600)
    assert deployment.wait_dag_run(REVIEW, run_id) == "success"
    assert {i["state"] for i in emulator.state()["work_items"] if i.get("process_run", {}).get("id") == process_run} \
        == {"done"}
    assert deployment.xcom(REVIEW, run_id, "review_failures")["state"] == "completed"


def test_review_mark_done(deployment: Deployment, emulator: Any) -> None:
    run_id, process_run = review(deployment, emulator, [{"invoice": "INV-202", "fail": True}], "Mark them done")
    assert deployment.wait_dag_run(REVIEW, run_id) == "success"
    assert {i["state"] for i in emulator.state()["work_items"] if i.get("process_run", {}).get("id") == process_run} \
        == {"done"}


def test_review_fail(deployment: Deployment, emulator: Any) -> None:
    run_id, process_run = review(deployment, emulator, [{"invoice": "INV-203", "fail": True}], "Fail")
    assert deployment.wait_dag_run(REVIEW, run_id) == "failed"
    assert {i["state"] for i in emulator.state()["work_items"] if i.get("process_run", {}).get("id") == process_run} \
        == {"failed"}
