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


@dataclass
class ProgressTracker:
    """Remembers the last reported progress of a run and formats a line when it changes.

    Counting a run's work items lists them (one request per page), so :meth:`needs_counts` asks for
    a fresh count on every state change but otherwise at most every ``count_every`` seconds; in
    between, :meth:`update` keeps showing the last counts.
    """

    process_run_id: str
    count_every: float = 60.0
    last: tuple[Any, ...] | None = field(default=None, init=False)
    _counts: Mapping[str, int] | None = field(default=None, init=False)
    _counted: tuple[Any, float] | None = field(default=None, init=False)  # (state, monotonic time)

    def needs_counts(self, state: Any) -> bool:
        """Whether to count the work items now (never for ``new`` or an unknown state)."""
        if state not in PROCESS_RUN_STATES or state == "new":
            return False
        if self._counted is None or self._counted[0] != state:
            return True
        return time.monotonic() - self._counted[1] >= self.count_every

    def update(self, state: Any, counts: Mapping[str, int] | None) -> str | None:
        """A progress line if the state or the work item counts changed since the last call."""
        if counts is not None:
            self._counts, self._counted = counts, (state, time.monotonic())
        elif self._counted is not None and self._counted[0] == state:
            counts = self._counts  # not recounted this time: the last counts still stand
        shown = (counts.get("done", 0), counts.get("failed", 0), counts.get("total", 0)) if counts else ()
        snapshot = (state, *shown)
        if snapshot == self.last:
            return None
        self.last = snapshot
        line = f"Process run {self.process_run_id} is {state}"
        if shown:
            line += f"; work items: {shown[0]} done, {shown[1]} failed, {shown[2]} total"
        return line


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
        parts.append(f"{count} work item{'s' if count != 1 else ''} failed: {shown}{more}.")
    errors = [s for s in report.get("step_runs") or [] if s.get("error_code") or s.get("state") == "failed"]
    if errors:
        parts.append("Step runs with errors: " + "; ".join(
            f"{s.get('name') or s.get('id')} ({s.get('id')}) {s.get('state')}: error {s.get('error_code') or 'unknown'}"
            for s in errors
        ) + ".")
    for problem in report.get("problems") or []:
        parts.append(f"({problem})")
    if url:
        parts.append(f"Control Room: {url}")
    return " ".join(parts)


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
