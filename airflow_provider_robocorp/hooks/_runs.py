"""Process run reporting shared by the operators, the sensor and the trigger.

Pure functions over the API's JSON: counting work items for progress lines, the progress tracker
that says when something changed, and the text of an ``unresolved`` failure. Fetching the data is
the hook's job (:meth:`RobocorpHook.describe_unresolved_run`, :meth:`RobocorpHook.work_item_counts`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_robocorp.exceptions import RobocorpError
from airflow_provider_robocorp.hooks._endpoints import PROCESS_RUN_STATES

if TYPE_CHECKING:
    from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

#: Longest exception / console message kept in a report (characters).
MAX_MESSAGE_CHARS = 500


def clip(text: Any, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` as one string of at most ``limit`` characters (``…`` marks a cut)."""
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def count_work_item(counts: dict[str, int], item: Mapping[str, Any]) -> None:
    """Add one work item to ``counts`` (as made by :func:`count_work_items`)."""
    state = str(item.get("state") or "unknown")
    counts["total"] += 1
    counts[state] = counts.get(state, 0) + 1


def count_work_items(items: Iterable[Mapping[str, Any]] = ()) -> dict[str, int]:
    """``{"total", "done", "failed", <every other state>: n}`` for a run's work items."""
    counts = {"total": 0, "done": 0, "failed": 0}
    for item in items:
        count_work_item(counts, item)
    return counts


def failed_work_item(item: Mapping[str, Any]) -> dict[str, str]:
    """The part of a failed work item a user needs: id, exception type, code and message."""
    exception = item.get("exception") or {}
    return {
        "id": str(item.get("id")),
        "type": str(exception.get("type") or "unspecified"),
        "code": str(exception.get("code") or ""),
        "message": clip(exception.get("message")),
    }


#: Page size asked for when counting a run's work items (one request per this many items).
COUNT_PAGE_SIZE = 1000
#: Extra requests per status poll that counting may cost, on average (0.2: at most 1.2 per poll).
COUNT_REQUEST_BUDGET = 0.2


@dataclass
class ProgressTracker:
    """Decides when a run's work items are counted for a progress line, and formats the line.

    Counting lists the run's work items (one request per :data:`COUNT_PAGE_SIZE` items), so it is
    rationed: every status poll (:meth:`polled`) earns ``request_budget`` requests of credit, and a
    count starts only when the credit covers what the last count cost, at most once every
    ``count_every`` seconds (or at once on a state change), and never for ``new`` or an unknown
    state. ``count_final=False`` (the trigger) never counts at a final state either: the outcome
    is reported at once, without counts. A run of N work items so costs on average at most
    ``1 + request_budget`` requests per poll, however large N is.
    """

    process_run_id: str
    count_every: float = 60.0
    request_budget: float = COUNT_REQUEST_BUDGET
    count_final: bool = True
    last: tuple[Any, ...] | None = field(default=None, init=False)
    _counts: Mapping[str, int] | None = field(default=None, init=False)
    _counted: tuple[Any, float] | None = field(default=None, init=False)  # (state, monotonic time)
    _credit: float = field(default=1.0, init=False)
    _cost: int = field(default=1, init=False)  # requests the last count took

    def polled(self) -> None:
        """One status poll happened: earn counting credit (capped at one count's worth)."""
        self._credit = min(self._credit + self.request_budget, float(max(1, self._cost)))

    def needs_counts(self, state: Any) -> bool:
        """Whether to count the work items now."""
        if state not in PROCESS_RUN_STATES or state == "new":
            return False
        if state in ("completed", "unresolved") and not self.count_final:
            return False
        if self._credit < self._cost:
            return False
        if self._counted is None or self._counted[0] != state:
            return True
        return time.monotonic() - self._counted[1] >= self.count_every

    def counted(self, state: Any, counts: Mapping[str, int], requests: int) -> None:
        """Record a finished count (``requests``: how many list calls it took)."""
        self._counts, self._counted = counts, (state, time.monotonic())
        self._cost = max(1, int(requests))
        self._credit -= self._cost

    def count_failed(self, state: Any) -> None:
        """A count failed: wait as after a successful one before trying again (counts unchanged)."""
        self._counted = (state, time.monotonic())
        self._credit -= self._cost

    def update(self, state: Any, counts: Mapping[str, int] | None = None, requests: int = 1) -> str | None:
        """A progress line if the state or the work item counts changed since the last call."""
        if counts is not None:
            self.counted(state, counts, requests)
        # Counts taken in another state (before the run ended, say) would mislead: shown only fresh.
        counts = self._counts if self._counted and self._counted[0] == state else None
        shown = (counts.get("done", 0), counts.get("failed", 0), counts.get("total", 0)) if counts else ()
        snapshot = (state, *shown)
        if snapshot == self.last:
            return None
        self.last = snapshot
        line = f"Process run {self.process_run_id} is {state}"
        if shown:
            line += f"; work items: {shown[0]} done, {shown[1]} failed, {shown[2]} total"
        return line


def log_progress(hook: RobocorpHook, tracker: ProgressTracker, log: Any, process_run_id: str, state: Any) -> None:
    """After a status poll (sync waits): count if the tracker allows it and log a changed line.
    Progress is best effort: a failed count is a warning, never a failure."""
    tracker.polled()
    counts, requests = None, 1
    if tracker.needs_counts(state):
        try:
            counts, requests = hook.count_run_work_items(process_run_id)
        except RobocorpError as err:
            log.warning("Could not count the work items of process run %s: %s", process_run_id, err)
            tracker.count_failed(state)
    line = tracker.update(state, counts, requests)
    if line:
        log.info("%s", line)


def format_unresolved(process_run_id: str, report: Mapping[str, Any], url: str | None = None) -> str:
    """The failure message of an ``unresolved`` run, from :meth:`RobocorpHook.describe_unresolved_run`."""
    parts = [f"Process run {process_run_id} ended unresolved."]
    items = report.get("failed_work_items") or []
    count = int(report.get("failed_work_item_count") or len(items))
    if count:
        shown = "; ".join(
            f"{item['id']} ({item['type']} exception{' ' + item['code'] if item['code'] else ''}): "
            f"{item['message'] or 'no message'}"
            for item in items
        )
        more = f"; and {count - len(items)} more" if count > len(items) else ""
        parts.append(_sentence(f"{count} work item{'s' if count != 1 else ''} failed: {shown}{more}"))
    errors = [s for s in report.get("step_runs") or [] if s.get("error_code") or s.get("state") == "failed"]
    if errors:
        parts.append(_sentence("Step runs with errors: " + "; ".join(
            f"{s.get('name') or s.get('id')} ({s.get('id')}) {s.get('state')}: error {s.get('error_code') or 'unknown'}"
            for s in errors
        )))
    for problem in report.get("problems") or []:
        parts.append(f"({problem})")
    if url:
        parts.append(f"Control Room: {url}")
    return " ".join(parts)


def _sentence(text: str) -> str:
    """``text`` ending in exactly one period (a message quoted at the end may bring its own)."""
    return text if text.endswith((".", "!", "?")) else text + "."


def console_lines(report: Mapping[str, Any]) -> list[str]:
    """The console messages of the report's step runs, one line each, prefixed by the step name."""
    lines: list[str] = []
    for step_run in report.get("step_runs") or []:
        name = step_run.get("name") or step_run.get("id")
        messages = step_run.get("console") or []
        lines.append(f"--- console of step run {step_run.get('id')} ({name}), {len(messages)} message(s) ---")
        lines.extend(f"[{name}] {message}" for message in messages)
    return lines


def log_unresolved(hook: RobocorpHook, log: Any, process_run_id: str, url: str | None, max_items: int) -> str:
    """Fetch what went wrong in an unresolved run, write the failing step runs' console to ``log``
    (one line per message) and return the failure message."""
    report = hook.describe_unresolved_run(process_run_id, max_items=max_items)
    for line in console_lines(report):
        log.info("%s", line)
    return format_unresolved(process_run_id, report, url)
