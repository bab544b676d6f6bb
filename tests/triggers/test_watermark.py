"""The watcher's watermark rule on its own: server times only, skew, re-opened and deleted runs."""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_robocorp.triggers._watermark import Watermark, parse_time

T0 = "2026-01-01T10:00:00.000Z"


def r(run_id: str, state: str, created: str, process: str = "p") -> dict[str, Any]:
    return {"id": run_id, "state": state, "created_at": created, "process_id": process}


def at(seconds: int) -> str:
    return f"2026-01-01T10:{seconds // 60:02d}:{seconds % 60:02d}.000Z"


def apply(mark: Watermark, runs: list[dict[str, Any]], covers_from: str | None = None, skew: float = 60,
          states: tuple[str, ...] = ("completed",)) -> list[str]:
    fired = mark.apply(runs, covers_from=covers_from, skew=skew, states=states)
    mark = Watermark.from_json(json.loads(json.dumps(mark.to_json())))  # what the store would hold
    return [x["id"] for x in fired]


def test_history_is_not_replayed_open_runs_are_followed() -> None:
    mark = Watermark.baseline([r("old", "completed", at(0)), r("busy", "in_progress", at(1))], skew=60)
    assert mark.open == {"busy": at(1)}
    assert apply(mark, [r("old", "completed", at(0)), r("busy", "completed", at(1))]) == ["busy"]
    assert apply(mark, [r("old", "completed", at(0)), r("busy", "completed", at(1))]) == []


def test_a_run_visible_late_with_an_older_created_at_is_caught_within_the_skew() -> None:
    mark = Watermark.baseline([r("a", "completed", at(100))], skew=60)
    assert apply(mark, [r("b", "completed", at(200))]) == ["b"]  # since moves to 200 - 60
    late = r("late", "completed", at(170))  # created before b, listed only now (server-side lag)
    assert apply(mark, [late, r("b", "completed", at(200))]) == ["late"]
    too_late = r("ancient", "completed", at(100))  # beyond the tolerance: counted as history
    assert apply(mark, [too_late]) == []


def test_this_machines_clock_is_never_used(monkeypatch) -> None:
    import time

    monkeypatch.setattr(time, "time", lambda: 0.0)  # a wildly wrong local clock changes nothing
    mark = Watermark.baseline([], skew=0)
    assert apply(mark, [r("x", "completed", "2099-01-01T00:00:00Z")]) == ["x"]


def test_a_reopened_run_fires_again_when_it_ends_again() -> None:
    mark = Watermark.baseline([r("a", "in_progress", at(0))], skew=60)
    assert apply(mark, [r("a", "unresolved", at(0))], states=("completed", "unresolved")) == ["a"]
    assert apply(mark, [r("a", "in_progress", at(0))]) == []  # a failed item was retried in place
    assert apply(mark, [r("a", "completed", at(0))]) == ["a"]


def test_a_deleted_open_run_is_forgotten_only_when_the_listing_covers_it() -> None:
    mark = Watermark.baseline([r("gone", "in_progress", at(10)), r("new", "new", at(500))], skew=0)
    apply(mark, [r("new", "new", at(500))], covers_from=at(400))  # not covered: kept
    assert "gone" in mark.open
    apply(mark, [r("new", "new", at(500))], covers_from=at(0))
    assert "gone" not in mark.open and "new" in mark.open


def test_done_stays_small_and_coverage_is_judged_on_what_it_needs() -> None:
    mark = Watermark.baseline([], skew=10)
    apply(mark, [r(f"r{i}", "completed", at(i * 30)) for i in range(20)], skew=10)
    assert set(mark.done) == {"r19"}  # only runs inside the skew window are remembered
    assert not mark.covered_by(at(9 * 60 + 30)) and mark.covered_by(at(0)) and mark.covered_by(None)


def test_a_stored_value_that_is_not_a_watermark_is_ignored() -> None:
    assert Watermark.from_json({"v": 99}) is None
    assert Watermark.from_json("junk") is None
    assert Watermark.from_json({"v": 1, "since": "not a time", "open": {}, "done": {}}) is None
    assert parse_time("2026-01-01T00:00:00Z") == parse_time("2026-01-01T00:00:00+00:00")
