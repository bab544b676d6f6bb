"""What a process run watcher has already seen: pure logic, no I/O (unit-tested on its own).

All comparisons use the server's own timestamps (``created_at``), never this machine's clock, so
a skewed clock on either side cannot make a run look old or new. A watermark is

* ``since`` — runs created before it are history (ended before the watcher looked, or handled);
* ``open`` — runs seen ``new`` / ``in_progress`` / ``stopping``: they fire when they end, however
  old they are (a retried work item re-opens a run, which then ends again);
* ``done`` — runs created at or after ``since`` that already ended (no second event for them).

``since`` trails the newest run seen by ``skew`` seconds, so a run that becomes visible a little
late (created_at slightly older than a run seen before it) is still caught, and ``done`` stays
small: only runs created inside that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

FINAL_STATES = ("completed", "unresolved")
OPEN_STATES = ("new", "in_progress", "stopping")
VERSION = 1


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` allowed, also on Python 3.10) as an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def compact_run(run: dict[str, Any]) -> dict[str, Any]:
    """The fields of a listed process run that watchers and their events use (JSON only)."""
    process: dict[str, Any] = run["process"] if isinstance(run.get("process"), dict) else {}
    started_by: dict[str, Any] = run["started_by"] if isinstance(run.get("started_by"), dict) else {}
    return {
        "id": run.get("id"),
        "state": run.get("state"),
        "process_id": process.get("id"),
        "process_name": process.get("name"),
        "created_at": run.get("created_at"),
        "started_at": run.get("started_at"),
        "ended_at": run.get("ended_at"),
        "started_by": started_by.get("type"),
        "duration": run.get("duration"),
    }


@dataclass
class Watermark:
    since: str | None = None
    open: dict[str, str] = field(default_factory=dict)
    done: dict[str, str] = field(default_factory=dict)

    # --- persistence ------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "since": self.since, "open": dict(self.open), "done": dict(self.done)}

    @classmethod
    def from_json(cls, value: Any) -> Watermark | None:
        """A stored watermark, or None when there is none (or it is not one this code wrote)."""
        if not isinstance(value, dict) or value.get("v") != VERSION:
            return None
        since, open_, done = value.get("since"), value.get("open"), value.get("done")
        if (since is not None and parse_time(since) is None) or not isinstance(open_, dict) or not isinstance(done, dict):
            return None
        return cls(since, {str(k): str(v) for k, v in open_.items()}, {str(k): str(v) for k, v in done.items()})

    # --- coverage ---------------------------------------------------------------------------

    def covered_by(self, covers_from: str | None) -> bool:
        """Whether a listing holding every run created at or after ``covers_from`` (None: all runs)
        shows everything this watermark needs: runs since ``since`` and every open run."""
        if covers_from is None:
            return True
        if self.since is None:  # the first look saw no run at all: every run since is new
            return False
        bound = parse_time(covers_from)
        needed = [parse_time(t) for t in (self.since, *self.open.values()) if t is not None]
        return bound is not None and all(t is not None and t >= bound for t in needed)

    def oldest_needed(self) -> str | None:
        """The oldest ``created_at`` a catch-up listing must reach (the epoch: every run)."""
        times = [t for t in (self.since, *self.open.values()) if parse_time(t) is not None]
        if self.since is None or not times:
            return EPOCH.isoformat()
        return min(times, key=lambda t: parse_time(t))  # type: ignore[arg-type, return-value]

    # --- the rule ---------------------------------------------------------------------------

    @classmethod
    def baseline(cls, runs: list[dict[str, Any]], skew: float, process_id: str | None = None) -> Watermark:
        """The first look: runs that already ended are history (no replay); open ones are followed.

        ``runs`` is the whole listing (its times place ``since``); only ``process_id``'s are kept."""
        mark = cls()
        mark._advance(runs, skew)
        for run in _of(runs, process_id):
            if run.get("state") in OPEN_STATES and run.get("id"):
                mark.open[run["id"]] = str(run.get("created_at"))
            elif run.get("state") in FINAL_STATES and run.get("id"):
                mark.done[run["id"]] = str(run.get("created_at"))
        mark._prune()
        return mark

    def apply(
        self, runs: list[dict[str, Any]], *, covers_from: str | None, skew: float, states: tuple[str, ...],
        process_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Take one listing (all of it: its times move ``since``) into account; returns ``process_id``'s
        runs that newly ended in ``states``, oldest first."""
        fired: list[dict[str, Any]] = []
        since = parse_time(self.since)
        listed: set[str] = set()
        for run in sorted(_of(runs, process_id), key=lambda r: (parse_time(r.get("created_at")) or EPOCH, str(r.get("id")))):
            run_id, state, created = run.get("id"), run.get("state"), parse_time(run.get("created_at"))
            if not isinstance(run_id, str) or created is None:
                continue
            listed.add(run_id)
            new = since is None or created >= since
            if state in OPEN_STATES:
                self.open[run_id] = str(run["created_at"])
                self.done.pop(run_id, None)  # re-opened: it may end (and fire) again
            elif state in FINAL_STATES:
                if run_id in self.open or (new and run_id not in self.done):
                    if state in states:
                        fired.append(run)
                    self.open.pop(run_id, None)
                    self.done[run_id] = str(run["created_at"])
        self._forget_deleted(listed, covers_from)
        self._advance(runs, skew)
        self._prune()
        return fired

    def _forget_deleted(self, listed: set[str], covers_from: str | None) -> None:
        """An open run missing from a listing that covers its creation time was deleted."""
        bound = parse_time(covers_from) if covers_from is not None else None
        for run_id, created in list(self.open.items()):
            at = parse_time(created)
            if run_id not in listed and at is not None and (covers_from is None or (bound is not None and at >= bound)):
                del self.open[run_id]

    def _advance(self, runs: list[dict[str, Any]], skew: float) -> None:
        times = [t for t in (parse_time(r.get("created_at")) for r in runs) if t is not None]
        if not times:
            return
        candidate = max(times) - timedelta(seconds=skew)
        current = parse_time(self.since)
        if current is None or candidate > current:
            self.since = candidate.isoformat()

    def _prune(self) -> None:
        since = parse_time(self.since)
        if since is None:
            return
        self.done = {k: v for k, v in self.done.items() if (parse_time(v) or EPOCH) >= since}


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _of(runs: list[dict[str, Any]], process_id: str | None) -> list[dict[str, Any]]:
    return runs if process_id is None else [r for r in runs if r.get("process_id") == process_id]
