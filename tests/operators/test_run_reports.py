"""The run reporting helpers the operators, the sensor and the trigger share (hooks/_runs.py)."""

from __future__ import annotations

import pytest

from airflow_provider_robocorp.hooks._runs import (
    ProgressTracker,
    clip,
    console_lines,
    count_work_items,
    format_unresolved,
)


def test_counts_and_progress_lines_only_on_visible_change():
    tracker = ProgressTracker("run-1")
    counts = count_work_items([{"state": "done"}, {"state": "pending"}, {"state": "failed"}, {}])
    assert counts == {"total": 4, "done": 1, "failed": 1, "pending": 1, "unknown": 1}

    assert tracker.update("new", None) == "Process run run-1 is new"
    assert tracker.update("in_progress", counts) == "Process run run-1 is in_progress; work items: 1 done, 1 failed, 4 total"
    assert tracker.update("in_progress", dict(counts, pending=0, in_progress=1)) is None  # nothing shown changed
    assert tracker.update("completed", counts) is not None


def test_failure_message_and_console():
    report = {
        "failed_work_items": [{"id": "wi-1", "type": "business", "code": "BAD", "message": "Rejected"},
                              {"id": "wi-2", "type": "application", "code": "", "message": ""}],
        "failed_work_item_count": 5,
        "step_runs": [{"id": "sr-1", "name": "Read", "state": "failed", "error_code": "BAD",
                       "console": ["starting", "ERROR BAD"]},
                      {"id": "sr-2", "name": "Book", "state": "completed", "error_code": None, "console": []}],
        "problems": ["console of step run sr-3 could not be read: HTTP 403"],
    }

    message = format_unresolved("run-1", report, "https://cr/run-1")

    assert message == (
        "Process run run-1 ended unresolved. 5 work items failed: wi-1 (business exception BAD): Rejected; "
        "wi-2 (application exception): no message; and 3 more. Step runs with errors: Read (sr-1) failed: "
        "error BAD. (console of step run sr-3 could not be read: HTTP 403) Control Room: https://cr/run-1"
    )
    assert console_lines(report) == [
        "--- console of step run sr-1 (Read), 2 message(s) ---", "[Read] starting", "[Read] ERROR BAD",
        "--- console of step run sr-2 (Book), 0 message(s) ---",
    ]
    assert clip("x" * 600) == "x" * 499 + "…" and clip(None) == ""


def test_work_items_are_recounted_on_state_changes_and_otherwise_at_most_every_count_every(monkeypatch):
    """Counting lists every work item of the run, so it is throttled between state changes."""
    import airflow_provider_robocorp.hooks._runs as runs

    now = [1000.0]
    monkeypatch.setattr(runs.time, "monotonic", lambda: now[0])
    tracker = ProgressTracker("run-1", count_every=60, request_budget=1.0)

    tracker.polled()
    assert not tracker.needs_counts("new")  # nothing to count yet
    assert not tracker.needs_counts("bogus")  # unknown states are not counted (and fail elsewhere)
    assert tracker.needs_counts("in_progress")
    assert tracker.update("in_progress", {"done": 1, "failed": 0, "total": 3}).endswith("1 done, 0 failed, 3 total")

    now[0] += 30
    tracker.polled()
    assert not tracker.needs_counts("in_progress")  # same state, counted 30 s ago
    assert tracker.update("in_progress", None) is None  # the last counts still stand: no new line

    now[0] += 31
    tracker.polled()
    assert tracker.needs_counts("in_progress")  # 61 s since the last count
    assert tracker.update("in_progress", {"done": 2, "failed": 0, "total": 3}).endswith("2 done, 0 failed, 3 total")

    now[0] += 1
    tracker.polled()
    assert tracker.needs_counts("completed")  # a state change recounts (sync waits)
    line = tracker.update("completed", {"done": 3, "failed": 0, "total": 3})
    assert line == "Process run run-1 is completed; work items: 3 done, 0 failed, 3 total"


def test_the_trigger_never_counts_at_a_final_state_and_shows_no_stale_counts():
    tracker = ProgressTracker("run-1", count_final=False)
    tracker.polled()
    assert tracker.needs_counts("in_progress")
    tracker.update("in_progress", {"done": 1, "failed": 0, "total": 3})
    tracker.polled()
    assert not tracker.needs_counts("completed") and not tracker.needs_counts("unresolved")
    assert tracker.update("completed") == "Process run run-1 is completed"


@pytest.mark.parametrize("items", [1, 250, 1000, 5000, 50_000])
@pytest.mark.parametrize("page_size", [100, 1000])
def test_counting_costs_at_most_the_request_budget_per_poll_whatever_the_run_size(monkeypatch, items, page_size):
    """Over a long wait, status polls plus counting stay under 1.2 requests per poll."""
    import math

    import airflow_provider_robocorp.hooks._runs as runs

    now = [0.0]
    monkeypatch.setattr(runs.time, "monotonic", lambda: now[0])
    tracker = ProgressTracker("run-1", count_every=0.0)  # no time floor: only the budget limits counting
    polls, requests = 2000, 0
    for _ in range(polls):
        now[0] += 1.0
        requests += 1  # the status poll
        tracker.polled()
        if tracker.needs_counts("in_progress"):
            cost = max(1, math.ceil(items / page_size))
            requests += cost
            tracker.update("in_progress", {"done": 0, "failed": 0, "total": items}, cost)
    first = max(1, math.ceil(items / page_size))  # the first count is let through at once
    assert requests <= polls * 1.2 + first
    assert requests > polls  # and counting did happen
