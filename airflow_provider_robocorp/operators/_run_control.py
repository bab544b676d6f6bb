"""The RPA side of starting runs: a process by name, the runs already going, the run (or work
item) a lost answer may have created, and which failed work items a retry can fix.

Functions of the hook's data only, so the operators stay thin and each rule is tested alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from airflow_provider_robocorp._compat import AirflowFailException, AirflowSkipException
from airflow_provider_robocorp.exceptions import RobocorpConfigError, RobocorpError
from airflow_provider_robocorp.hooks._runs import failed_work_item
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.triggers._watermark import EPOCH, parse_time

IF_RUNNING = ("start", "join", "stop", "skip", "fail")
#: Exception types retried in place by default: ``business`` is a data problem a retry cannot fix.
DEFAULT_RETRY_EXCEPTION_TYPES = ("application", "unspecified")
EXCEPTION_TYPES = ("application", "business", "unspecified")
#: How far before the lost request a created run or work item may be dated (clocks differ).
RECONCILE_TOLERANCE_SECONDS = 300.0


def resolve_process_id(hook: RobocorpHook, process_name: str) -> str:
    """The id of the one process called exactly ``process_name``; none or several is a clear error."""
    if not isinstance(process_name, str) or not process_name.strip():
        raise RobocorpConfigError(f"process_name must be a non-empty string, got {process_name!r}.")
    matches = [p for p in hook.list_processes() if p.get("name") == process_name]
    if len(matches) == 1 and isinstance(matches[0].get("id"), str):
        return str(matches[0]["id"])
    if not matches:
        raise RobocorpConfigError(
            f"No process is called {process_name!r} in workspace {hook.workspace_id} (names match exactly, "
            "case included); nothing was started. Check the name in Control Room, or pass process_id."
        )
    ids = ", ".join(str(p.get("id")) for p in matches)
    raise RobocorpConfigError(f"{len(matches)} processes are called {process_name!r} ({ids}); nothing was "
                              "started. Pass process_id to say which one.")


def active_runs(hook: RobocorpHook, process_id: str) -> list[dict[str, Any]]:
    """The process's ``new`` / ``in_progress`` runs, newest first."""
    runs = [r for state in ("in_progress", "new") for r in hook.list_process_runs(process_id=process_id, state=state)]
    return sorted(runs, key=lambda r: parse_time(r.get("created_at")) or EPOCH, reverse=True)


def handle_running_runs(hook: RobocorpHook, log: Any, process_id: str, if_running: str, task_id: str) -> str | None:
    """``if_running`` of StartProcessRunOperator: a run to join, or None to start one (after
    stopping the running ones for ``"stop"``); ``"skip"`` / ``"fail"`` raise."""
    if if_running == "start":
        return None
    running = active_runs(hook, process_id)
    if not running:
        return None
    ids = ", ".join(str(r.get("id")) for r in running)
    if if_running == "join":
        log.info("Process %s already has a run going (%s); joining process run %s instead of starting one "
                 "(if_running='join').", process_id, ids, running[0]["id"])
        return str(running[0]["id"])
    if if_running == "skip":
        raise AirflowSkipException(f"Process {process_id} already has run(s) going ({ids}); skipping "
                                   "(if_running='skip').")
    if if_running == "fail":
        raise AirflowFailException(f"Process {process_id} already has run(s) going ({ids}); failing without "
                                   "retry (if_running='fail').")
    for run in running:  # "stop"
        hook.stop_process_run(str(run["id"]), reason=f"Stopped by the Airflow task {task_id} to start a new run "
                                                     "(if_running='stop')")
        log.info("Stopped process run %s (%s) before starting a new one (if_running='stop').", run["id"],
                 run.get("state"))
    return None


def reconcile(log: Any, operation: str, where: str, what: str, err: Exception, candidates: list[str]) -> str | None:
    """After a lost answer: the one thing the request created, None when it created nothing (sending
    it again is safe), or a failure without retry when several candidates make it ambiguous."""
    if len(candidates) == 1:
        log.warning("The answer to %s was lost (%s), but it created %s %s: carrying on with it.", operation, err,
                    what, candidates[0])
        return candidates[0]
    if not candidates:
        log.warning("The answer to %s was lost (%s) and no %s was created: sending it again is safe.", operation,
                    err, what)
        return None
    raise AirflowFailException(
        f"The answer to {operation} of {where} was lost ({err}); it may have created any of the {what}s "
        f"{', '.join(candidates)}, so the task fails without retry rather than create another. Check them "
        "in Control Room (remove any extra one)."
    )


def _since(started_at: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(started_at - RECONCILE_TOLERANCE_SECONDS, tz=timezone.utc)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def started_run_candidates(hook: RobocorpHook, process_id: str, arguments: dict[str, Any], started_at: float,
                           known: Iterable[str] = (), *, active_only: bool = False) -> list[str]:
    """Runs of ``process_id`` that a Start process run sent at ``started_at`` may have created: started
    by the API since shortly before, and holding the requested work items (or payloads)."""
    since, skip = _since(started_at), set(known)
    ids: list[str] = []
    for run in hook.list_process_runs(process_id=process_id):  # newest first
        created = parse_time(run.get("created_at"))
        if created is not None and created < since:
            break
        started_by: dict[str, Any] = run["started_by"] if isinstance(run.get("started_by"), dict) else {}
        if run.get("id") in skip or started_by.get("type") not in (None, "api"):
            continue
        if active_only and run.get("state") not in ("new", "in_progress"):
            continue
        if _run_matches(hook, str(run["id"]), arguments):
            ids.append(str(run["id"]))
    return ids


def _run_matches(hook: RobocorpHook, run_id: str, arguments: dict[str, Any]) -> bool:
    wanted_ids, payloads = arguments.get("work_item_ids"), arguments.get("payloads")
    if not wanted_ids and payloads is None:
        return True  # default work item or input queue: nothing to compare; the time window decides
    items = list(hook.list_work_items(process_run_id=run_id))
    if wanted_ids:
        return set(wanted_ids) <= {str(i.get("id")) for i in items}
    got = sorted(_canonical(hook.get_work_item(str(i["id"]), include_data=True).get("payload")) for i in items)
    return got == sorted(_canonical(p) for p in payloads or [])


def find_kept_run(hook: RobocorpHook, log: Any, process_id: str, arguments: dict[str, Any]) -> str | None:
    """The run an earlier try started but could not save (``stop_untracked_run=False``): still active,
    started by the API within a day, holding this task's work items or payloads. A default-mode
    start has nothing to match, so it starts anew."""
    if not arguments.get("work_item_ids") and arguments.get("payloads") is None:
        return None
    candidates = started_run_candidates(hook, process_id, arguments, time.time() - 86400 + RECONCILE_TOLERANCE_SECONDS,
                                        active_only=True)
    if not candidates:
        return None
    return reconcile(log, "an earlier try's Start process run", f"process {process_id}", "run",
                     RuntimeError("its run id was not saved"), candidates)


def untracked_run(hook: RobocorpHook, run_id: str, err: Exception, *, stop: bool, task_id: str) -> NoReturn:
    """Airflow could not save a started run's id: stop the run (``stop``) or leave it; raise naming it."""
    if stop:
        try:
            hook.stop_process_run(run_id, reason=f"The Airflow task {task_id} could not save the run id, so it "
                                                 "stopped the run")
            outcome = "so the run was stopped (stop_untracked_run=True); the next try starts a new one"
        except RobocorpError as stop_err:
            outcome = f"and stopping it failed too ({stop_err}): stop it in Control Room"
    else:
        outcome = "it keeps running (stop_untracked_run=False): the next try looks for it to re-attach"
    raise RobocorpError(f"Process run {run_id} was started, but Airflow could not save its id in the task "
                        f"state ({err}), {outcome}.")


def created_item_candidates(hook: RobocorpHook, process_id: str, payload: Any, started_at: float) -> list[str]:
    """Work items of ``process_id`` a lost Create work item may have created: waiting (``new``),
    created since shortly before, with the same payload."""
    since, wanted, ids = _since(started_at), _canonical(payload), []
    for item in hook.list_work_items(process_id=process_id, state="new"):
        created = parse_time(item.get("created_at"))
        if created is None or created < since:
            continue
        full = hook.get_work_item(str(item["id"]), include_data=True)
        if _canonical(full.get("payload")) == wanted:
            ids.append(str(item["id"]))
    return ids


def check_retry_types(types: Sequence[str] | str) -> tuple[str, ...]:
    chosen = (types,) if isinstance(types, str) else tuple(types)
    bad = [t for t in chosen if t not in EXCEPTION_TYPES]
    if bad or not chosen:
        raise RobocorpConfigError(f"retry_exception_types={list(chosen)!r} is not valid; use some of "
                                  f"{', '.join(EXCEPTION_TYPES)}.")
    return chosen


def exception_type(item: dict[str, Any]) -> str:
    exception: dict[str, Any] = item["exception"] if isinstance(item.get("exception"), dict) else {}
    kind = exception.get("type")
    return kind if kind in EXCEPTION_TYPES else "unspecified"


def failed_items(hook: RobocorpHook, run_id: str) -> list[dict[str, Any]]:
    return list(hook.list_work_items(process_run_id=run_id, state="failed"))


def describe_items(items: Sequence[dict[str, Any]], limit: int = 10) -> str:
    def one(item: dict[str, Any]) -> str:
        shown = failed_work_item(item)
        code = f" {shown['code']}" if shown["code"] else ""
        return f"{shown['id']} ({exception_type(item)}{code}: {shown['message'] or 'no message'})"

    listed = "; ".join(one(i) for i in items[:limit])
    return listed + (f"; and {len(items) - limit} more" if len(items) > limit else "")




def forget_succeeded_run(store: Any, id_key: str, succeeded_key: str, log: Any) -> None:
    """Clear vs retry. A try that finds the stored run marked as the one the task *succeeded* with
    was cleared by a user (run the robot again): forget it. A retry after a crash or a failure
    finds no mark and re-attaches, as ``ResumableJobMixin`` does."""
    if store is None:
        return
    prior = store.get(id_key)
    if prior and store.get(succeeded_key) == prior:
        log.info("This task succeeded before with process run %s and was cleared: starting a new run.", prior)
        store.delete(id_key)
        store.delete(succeeded_key)


class GuardedStateStore:
    """The task state store, for the run id: a save that fails (an overloaded api-server) is tried
    again, and if it still fails ``on_lost`` decides (stop the run or leave it), naming it; its id
    is already in XCom and the log by then."""

    def __init__(self, store: Any, id_key: str, on_lost: Callable[[str, Exception], Any]) -> None:
        self._store, self._id_key, self._on_lost = store, id_key, on_lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        for attempt in range(3):
            try:
                self._store.set(key, value, **kwargs)
                return
            except Exception as err:  # whatever the state store backend raises
                if attempt < 2:
                    time.sleep(1.0 + attempt)
                    continue
                if key != self._id_key:
                    raise
                self._on_lost(str(value), err)


__all__ = [
    "GuardedStateStore",
    "find_kept_run",
    "untracked_run",
    "forget_succeeded_run",
    "DEFAULT_RETRY_EXCEPTION_TYPES",
    "IF_RUNNING",
    "active_runs",
    "handle_running_runs",
    "reconcile",
    "check_retry_types",
    "created_item_candidates",
    "describe_items",
    "exception_type",
    "failed_items",
    "resolve_process_id",
    "started_run_candidates",
]
