"""Operators that start and stop Control Room process runs."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator

from airflow_provider_robocorp._compat import AirflowSkipException, ResumableJobMixin, conf
from airflow_provider_robocorp.assets import process_uri
from airflow_provider_robocorp.exceptions import (
    ProcessRunFailedError,
    ProcessRunTimeoutError,
    RobocorpConfigError,
    RobocorpError,
    RobocorpNotFoundError,
    RobocorpRequestMayHaveBeenAppliedError,
)
from airflow_provider_robocorp.hooks._pipeline import positive_seconds
from airflow_provider_robocorp.hooks._runs import ProgressTracker, log_progress, log_unresolved
from airflow_provider_robocorp.hooks.robocorp import (
    RobocorpHook,
    build_start_body,
)
from airflow_provider_robocorp.links import PROCESS_RUN_ID_KEY, PROCESS_RUN_URL_KEY, ControlRoomProcessRunLink
from airflow_provider_robocorp.operators._asset_events import emit, outlet_alias
from airflow_provider_robocorp.operators._lineage import process_run_lineage_of
from airflow_provider_robocorp.operators._run_control import (
    DEFAULT_RETRY_EXCEPTION_TYPES,
    IF_RUNNING,
    GuardedStateStore,
    check_retry_types,
    describe_items,
    exception_type,
    failed_items,
    find_kept_run,
    forget_succeeded_run,
    handle_running_runs,
    reconcile,
    resolve_process_id,
    started_run_candidates,
    untracked_run,
)
from airflow_provider_robocorp.operators.stop_process_run import StopProcessRunOperator
from airflow_provider_robocorp.triggers._events import check_event, is_transient, process_run_trigger

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["OUTPUTS_KEY", "StartProcessRunOperator", "StopProcessRunOperator"]

#: XCom key of the run's outputs (with ``push_outputs=True``).
OUTPUTS_KEY = "outputs"
#: Where Airflow keeps an operator's extra link (``_link_<link class name>``).
LINK_XCOM_KEY = f"_link_{ControlRoomProcessRunLink.__name__}"
#: Task state store key: the process run with which this task last *succeeded* (clear = run again).
SUCCEEDED_RUN_KEY = "robocorp_succeeded_process_run_id"


def _as_list(value: Any) -> Any:
    """Materialise a sequence of ids/payloads (a list, a tuple, a mapped task's XCom) as a list."""
    if value is None or isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        return value
    if isinstance(value, Sequence):  # by index: a mapped XCom's iterator probes one past the end
        return [value[index] for index in range(len(value))]
    return list(value)


def _needs_rendering(value: Any, depth: int = 0) -> bool:
    """True for a Jinja string or an XComArg, also inside lists and dicts (``[a.output, b.output]``,
    which Airflow renders item by item): only known at run time."""
    if isinstance(value, str):
        return "{{" in value
    if value is None or isinstance(value, bool | int | float):
        return False
    if isinstance(value, list | tuple) and depth < 50:
        return any(_needs_rendering(item, depth + 1) for item in value)
    if isinstance(value, dict) and depth < 50:
        return any(_needs_rendering(item, depth + 1) for item in (*value.keys(), *value.values()))
    return callable(getattr(value, "resolve", None))  # XComArg & co. (Airflow's ResolveMixin)


class StartProcessRunOperator(ResumableJobMixin, BaseOperator):
    """Start a Control Room process run and (by default) wait until it ends.

    The run is started in ``execute()`` only. Its id and web URL are pushed to XCom
    (``process_run_id``, ``process_run_url``) before waiting; the task returns the run id.

    Start modes (at most one): ``payloads`` (a new work item per payload), ``work_item_ids``
    (existing items, e.g. ``CreateWorkItemOperator(...).output``), ``use_input_work_items=True``
    (the process's input queue), or none (the process's default work item).

    :param process_id: the process to run. Templated.
    :param process_name: or the process's exact name, resolved through List processes before
        anything is started (none or several matches: a clear error). Templated.
    :param if_running: when the process already has a ``new``/``in_progress`` run: ``"start"``
        (default: start another), ``"join"`` (wait for the newest one instead), ``"stop"`` (stop them,
        then start), ``"skip"`` (skip the task) or ``"fail"`` (fail it, without retries).
    :param retry_failed_work_items: when the run ends ``unresolved``, retry its failed work items in
        place (batch retry; the run re-opens) and wait again, up to this many rounds (default 0).
    :param retry_exception_types: which failed items a round retries, by exception type (default
        ``application`` and ``unspecified``; a ``business`` exception is a data problem).
    :param payloads: JSON payloads, one work item each. Templated.
    :param work_item_ids: ids of existing work items. Templated.
    :param use_input_work_items: run the work items waiting in the process's input queue.
    :param callback: ``{"url", "secret", "callback_events"?}`` for Control Room's run callbacks. Templated.
    :param wait_for_completion: wait for the run to end (else return right after starting it).
    :param poll_interval: seconds between status checks.
    :param timeout: wall-clock limit (seconds or timedelta) from the start of ``execute()``; when it
        passes the run is stopped and the task fails saying so.
    :param deferrable: wait in the triggerer instead of a worker slot (default: ``[operators]
        default_deferrable``).
    :param fail_on_unresolved: fail the task when the run ends ``unresolved`` (with the failed work
        items and step run errors; the failing steps' console goes to the task log).
    :param stop_on_kill: stop the run when the task is killed (worker or triggerer side).
    :param skip_if_not_started: when Control Room answers ``{"started": false}`` (empty input queue),
        skip the task; ``False`` fails it instead.
    :param push_outputs: push the run's output work items (payloads and file names) as XCom ``outputs``.
    :param max_failed_items: how many failed work items a failure message lists (the rest are counted).
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID. Templated.
    :param durable: (Airflow 3.3+) remember the run id across tries, so a retry after a worker crash
        re-attaches to the run instead of starting another one.
    :param defer_grace_period: (deferrable) seconds before the trigger's first poll (default 10). Airflow
        3.3.2 marks a task failed when its trigger fires before the deferring worker has exited; a
        run that is already over when the task would defer is finished without deferring.
    :param stop_untracked_run: (durable) when Airflow cannot save the started run's id in the task
        state (after 3 tries), stop the run (default) rather than leave it running unknown to Airflow.
    :param emit_asset_events: when the run completes, record an asset event for
        ``robocorp://<workspace_id>/processes/<process_id>`` (extra: run id, state, work item
        counts, output count), so DAGs scheduled on that asset run. ``False`` turns it off.
    """

    template_fields: Sequence[str] = ("process_id", "process_name", "payloads", "work_item_ids", "callback", "workspace_id", "robocorp_conn_id")
    template_fields_renderers = {"payloads": "json", "work_item_ids": "json", "callback": "json"}
    operator_extra_links = (ControlRoomProcessRunLink(),)
    ui_color = "#c6e4ff"
    external_id_key = PROCESS_RUN_ID_KEY

    def __init__(
        self,
        *,
        process_id: str | None = None,
        process_name: str | None = None,
        if_running: str = "start",
        retry_failed_work_items: int = 0,
        retry_exception_types: Sequence[str] = DEFAULT_RETRY_EXCEPTION_TYPES,
        payloads: Sequence[Any] | None = None,
        work_item_ids: Sequence[str] | None = None,
        use_input_work_items: bool = False,
        callback: dict[str, Any] | None = None,
        wait_for_completion: bool = True,
        poll_interval: float | timedelta = 30.0,
        timeout: float | timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        fail_on_unresolved: bool = True,
        stop_on_kill: bool = True,
        skip_if_not_started: bool = True,
        push_outputs: bool = False,
        max_failed_items: int = 10,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        emit_asset_events: bool = True,
        defer_grace_period: float = 10.0,
        stop_untracked_run: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (process_id is None) == (process_name is None):
            raise RobocorpConfigError("StartProcessRunOperator: pass exactly one of process_id or process_name.")
        if if_running not in IF_RUNNING:
            raise RobocorpConfigError(f"if_running={if_running!r} is not valid; use one of: {', '.join(IF_RUNNING)}.")
        if isinstance(retry_failed_work_items, bool) or not isinstance(retry_failed_work_items, int) or (
                retry_failed_work_items < 0):
            raise RobocorpConfigError(f"retry_failed_work_items must be a whole number of rounds (0 or more), "
                                      f"got {retry_failed_work_items!r}.")
        self.process_name = process_name
        self.stop_untracked_run = stop_untracked_run
        self.if_running = if_running
        self.retry_failed_work_items = retry_failed_work_items
        self.retry_exception_types = check_retry_types(retry_exception_types)
        self._rounds_done = 0
        self.emit_asset_events = emit_asset_events
        self.defer_grace_period = 0.0 if defer_grace_period == 0 else positive_seconds(
            defer_grace_period, "defer_grace_period")
        # the alias is named at parse time (robocorp_conn_id may be a template rendered only later)
        self._outlet_alias = outlet_alias(robocorp_conn_id)
        if emit_asset_events:
            self.outlets = [*self.outlets, self._outlet_alias]
        self.process_id = process_id
        self.payloads = payloads
        self.work_item_ids = work_item_ids
        self.use_input_work_items = use_input_work_items
        self.callback = callback
        self.wait_for_completion = wait_for_completion
        self.poll_interval = positive_seconds(poll_interval, "poll_interval")
        self.timeout = None if timeout is None else positive_seconds(timeout, "timeout")
        self.deferrable = deferrable
        self.fail_on_unresolved = fail_on_unresolved
        self.stop_on_kill = stop_on_kill
        self.skip_if_not_started = skip_if_not_started
        self.push_outputs = push_outputs
        self.max_failed_items = max_failed_items
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id
        self._run_id: str | None = None
        self._run_url_value: str | None = None
        self._final_state: str | None = None
        self._failure: str | None = None
        self._run_ended = False
        self._finished = False
        self._deadline: float | None = None
        self._arguments: dict[str, Any] | None = None
        if not any(_needs_rendering(v) for v in (payloads, work_item_ids, callback)):
            self._start_arguments()  # fail at parse time when nothing is left to render

    @cached_property
    def hook(self) -> RobocorpHook:
        return RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)

    def _start_arguments(self) -> dict[str, Any]:
        ids = self.work_item_ids
        if isinstance(ids, str) and ids.strip()[:1] in ("[", "("):
            raise RobocorpConfigError(
                f"work_item_ids must be a non-empty list of work item ids, or one id; got the text {ids[:80]!r}, "
                "a list rendered as a string: pass the XComArg itself (create.output) or set "
                "render_template_as_native_obj=True on the DAG."
            )
        arguments = {
            "payloads": _as_list(self.payloads),
            # one id (e.g. the output of one unmapped CreateWorkItemOperator) is a list of one
            "work_item_ids": [ids] if isinstance(ids, str) else _as_list(ids),
            "use_input_work_items": bool(self.use_input_work_items),
            "callback": self.callback,
        }
        build_start_body(**arguments)
        return arguments

    # --- execute: start (once), then wait --------------------------------------------------

    def execute(self, context: Context) -> str | None:
        self._run_id, self._run_ended, self._finished = None, False, False
        self._arguments = self._start_arguments()  # validate the rendered values before the first request
        self._deadline = time.time() + self.timeout if self.timeout else None
        self._rounds_done = 0
        if self.process_name is not None:  # before anything is started (or re-attached)
            self.process_id = resolve_process_id(self.hook, self.process_name)
            self.log.info("Process %r is %s.", self.process_name, self.process_id)
            ti = context.get("ti")
            if ti is not None:
                ti.xcom_push(key="process_id", value=self.process_id)
        self._forget_a_succeeded_run(context)
        if self.durable and context.get("task_state_store") is not None:
            context["task_state_store"] = GuardedStateStore(  # type: ignore[typeddict-item]
                context["task_state_store"], self.external_id_key, self._untracked)
        self.execute_resumable(context)
        if not self.wait_for_completion and self._run_id:
            self._mark_succeeded(context, self._run_id)
        return self._run_id

    def _forget_a_succeeded_run(self, context: Context) -> None:
        """A try after a *successful* one means the user cleared the task: run the robot again."""
        forget_succeeded_run(context.get("task_state_store") if self.durable else None, self.external_id_key,
                             SUCCEEDED_RUN_KEY, self.log)

    def _mark_succeeded(self, context: Context, run_id: str) -> None:
        store = context.get("task_state_store") if self.durable else None
        if store is not None:
            store.set(SUCCEEDED_RUN_KEY, run_id)

    def submit_job(self, context: Context) -> str:
        process_id = str(self.process_id)
        arguments = self._arguments or self._start_arguments()
        kept = self._find_kept_run(context, process_id, arguments)
        if kept is not None:
            return kept
        joined = self._handle_running_runs(process_id)
        if joined is not None:
            return joined
        for _ in range(3):
            started_at = time.time()
            try:
                answer = self.hook.start_process_run(process_id, **arguments)
                break
            except RobocorpRequestMayHaveBeenAppliedError as err:
                found = self._reconcile_start(process_id, arguments, started_at, err)
                if found is not None:
                    return found
        else:
            raise RobocorpError(f"Start process run of {process_id} kept losing its answer; no run was created.")
        if answer.get("started") is False:
            message = (f"Control Room did not start a run of process {self.process_id}: it answered "
                       '{"started": false} (no input work items were waiting).')
            if self.skip_if_not_started:
                raise AirflowSkipException(message)
            raise RobocorpError(message)
        run_id = answer.get("id")
        if not isinstance(run_id, str) or not run_id:
            raise RobocorpError(f"Start process run of {self.process_id} answered without a run id: {answer!r}")
        self.log.info("Started process run %s of process %s.", run_id, self.process_id)
        self._announce(context, run_id)  # XCom and log hold the id before Airflow's task state does
        return run_id

    def _find_kept_run(self, context: Context, process_id: str, arguments: dict[str, Any]) -> str | None:
        """``stop_untracked_run=False``: a retry with no stored run id looks for the run it kept."""
        ti = context.get("ti")
        if self.stop_untracked_run or not self.durable or ti is None or int(getattr(ti, "try_number", 1) or 1) < 2:
            return None
        found = find_kept_run(self.hook, self.log, process_id, arguments)
        if found is not None:
            self._announce(context, found)
        return found

    def _handle_running_runs(self, process_id: str) -> str | None:
        """``if_running``: the id of a run to join, or None to start one (after stopping, if asked)."""
        return handle_running_runs(self.hook, self.log, process_id, self.if_running, self.task_id)

    def _reconcile_start(self, process_id: str, arguments: dict[str, Any], started_at: float,
                         err: RobocorpRequestMayHaveBeenAppliedError) -> str | None:
        """The answer to Start process run was lost: the run it created, or None when it created none."""
        return reconcile(self.log, "Start process run", f"process {process_id}", "run", err,
                         started_run_candidates(self.hook, process_id, arguments, started_at))

    def get_job_status(self, external_id: Any, context: Context) -> str:
        try:
            return str(self.hook.get_process_run(str(external_id)).get("state"))
        except RobocorpNotFoundError:
            return "deleted"

    def is_job_active(self, status: str) -> bool:
        # with retry rounds, a run that ended unresolved while no try was watching is taken up
        # again (its failed items are retried in place) rather than started afresh
        return status in ("new", "in_progress") or (status == "unresolved" and self.retry_failed_work_items > 0)

    def is_job_succeeded(self, status: str) -> bool:
        return status == "completed"

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        run_id = str(external_id)
        self._announce(context, run_id)
        if self.wait_for_completion:
            self._wait(context, run_id)

    def _wait(self, context: Context, run_id: str) -> None:
        """Wait for the run (here, or deferred to the triggerer), retrying failed items in rounds."""
        while True:
            if self.deferrable:
                state = self._state_before_deferring(run_id)
                if state in ("completed", "unresolved"):
                    self.log.info("Process run %s is %s; not deferring.", run_id, state)
                else:
                    self._defer(run_id)
            else:
                state = self._wait_here(run_id)
            if not self._retry_round(run_id, state):
                break
        self._finish(context, run_id, state)

    def _state_before_deferring(self, run_id: str) -> Any:
        """One look before deferring (a run already over needs no triggerer); a transient error here
        just means deferring, since the trigger polls through such errors."""
        try:
            return self.hook.get_process_run(run_id).get("state")
        except RobocorpError as err:
            if not is_transient(err):
                raise
            self.log.warning("Checking process run %s before deferring failed (%s); deferring.", run_id, err)
            return None

    def _defer(self, run_id: str) -> NoReturn:
        self.defer(
            trigger=process_run_trigger()(
                process_run_id=run_id,
                robocorp_conn_id=self.robocorp_conn_id,
                poll_interval=self.poll_interval,
                deadline=self._deadline,
                stop_on_kill=self.stop_on_kill,
                workspace_id=self.workspace_id,
                first_poll_delay=self.defer_grace_period,
            ),
            method_name="execute_complete",
            kwargs={"rounds_done": self._rounds_done, "deadline": self._deadline},
        )
        raise AssertionError("defer() returned")  # pragma: no cover - defer always raises

    def _wait_here(self, run_id: str) -> Any:
        tracker = ProgressTracker(run_id)
        try:
            run = self.hook.wait_for_process_run(
                run_id,
                poll_interval=self.poll_interval,
                deadline=self._deadline,
                on_poll=lambda polled: self._log_progress(tracker, run_id, polled.get("state")),
                accepted_states=("completed", "unresolved"),
            )
        except ProcessRunTimeoutError:
            self._stop_after_timeout(run_id, tracker.last[0] if tracker.last else None)
        return run.get("state")

    def _retry_round(self, run_id: str, state: Any) -> bool:
        """After an ``unresolved`` end, retry the failed items whose exception type is retryable
        (one round); False when there is no round left, no time left or nothing to retry."""
        if state != "unresolved" or self._rounds_done >= self.retry_failed_work_items:
            return False
        if self._deadline is not None and time.time() >= self._deadline:
            return False
        failed = failed_items(self.hook, run_id)
        retry = [item for item in failed if exception_type(item) in self.retry_exception_types]
        kept = [item for item in failed if exception_type(item) not in self.retry_exception_types]
        if not retry:
            self.log.info("Process run %s ended unresolved; none of its %d failed work item(s) has a retryable "
                          "exception type (%s), so it is not retried.", run_id, len(failed),
                          ", ".join(self.retry_exception_types))
            return False
        self._rounds_done += 1
        self.log.info("Retry round %d of %d for process run %s: retrying %d failed work item(s): %s%s",
                      self._rounds_done, self.retry_failed_work_items, run_id, len(retry), describe_items(retry),
                      f". Not retried (exception type not in {', '.join(self.retry_exception_types)}): "
                      f"{describe_items(kept)}" if kept else "")
        ids = [str(item["id"]) for item in retry]
        for start in range(0, len(ids), 100):
            self.hook.batch_work_items("retry", ids[start:start + 100])
        self._wait_reopened(run_id)
        return True

    def _wait_reopened(self, run_id: str) -> None:
        """A retried item re-opens its run; give Control Room a few polls to show it (not unresolved)."""
        for _ in range(5):
            if self.hook.get_process_run(run_id).get("state") != "unresolved":
                return
            time.sleep(min(self.poll_interval, 2.0))

    def get_job_result(self, external_id: Any, context: Context) -> str:
        run_id = str(external_id)
        self._announce(context, run_id)
        if self.wait_for_completion and not self._finished:  # the run had completed before this try
            self._finish(context, run_id, "completed")
        return run_id

    def execute_complete(self, context: Context, event: Any = None, rounds_done: int = 0,
                         deadline: float | None = None) -> str:
        """Resume after ProcessRunTrigger: check its event (fail closed), retry a round or finish."""
        event = check_event(event)
        run_id = event["process_run_id"]
        self._run_id, self._rounds_done, self._deadline = run_id, int(rounds_done or 0), deadline
        if event["status"] == "timeout":
            self._stop_after_timeout(run_id, event.get("state"))
        if event["status"] == "error":
            raise RobocorpError(str(event.get("message") or f"Waiting for process run {run_id} failed."))
        if self._retry_round(run_id, event["state"]):
            self._wait(context, run_id)  # defers again, or finishes
            return run_id
        return self._finish(context, run_id, event["state"])

    def _untracked(self, run_id: str, err: Exception) -> NoReturn:
        """Airflow could not remember the started run: stop it (default) or say it keeps running."""
        self._run_ended = True
        untracked_run(self.hook, run_id, err, stop=self.stop_untracked_run, task_id=self.task_id)

    def on_kill(self) -> None:
        if not self.stop_on_kill or not self._run_id or self._run_ended:
            return
        try:
            self.hook.stop_process_run(self._run_id, reason=f"The Airflow task {self.task_id} was killed.")
            self.log.info("Stopped process run %s because the task was killed.", self._run_id)
        except RobocorpError as err:
            self.log.warning("Could not stop process run %s: %s", self._run_id, err)

    # --- helpers ---------------------------------------------------------------------------

    def _run_url(self, run_id: str) -> str | None:
        try:
            return self.hook.process_run_url(str(self.process_id), run_id)
        except RobocorpError as err:  # a missing link must not fail a started run
            self.log.warning("Could not build the Control Room link of process run %s: %s", run_id, err)
            return None

    def _announce(self, context: Context, run_id: str) -> None:
        """Push ``process_run_id`` / ``process_run_url`` (once per try) and log the link."""
        if self._run_id == run_id:
            return
        self._run_id = run_id
        url = self._run_url_value = self._run_url(run_id)
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=PROCESS_RUN_ID_KEY, value=run_id)
            if url:
                ti.xcom_push(key=PROCESS_RUN_URL_KEY, value=url)
                # Airflow stores extra links only when a try ends or defers; written now, the
                # "Control Room" link works while a long synchronous wait is still running.
                ti.xcom_push(key=LINK_XCOM_KEY, value=url)
        self.log.info("Process run %s in Control Room: %s", run_id, url or "(no link)")

    def _log_progress(self, tracker: ProgressTracker, run_id: str, state: Any) -> None:
        log_progress(self.hook, tracker, self.log, run_id, state)

    def _stop_after_timeout(self, run_id: str, state: Any) -> NoReturn:
        try:
            answer = self.hook.stop_process_run(run_id, reason=f"The Airflow task {self.task_id} timed out.")
            outcome = ("the process run was stopped" if answer.get("accepted") is not False
                       else "Control Room refused to stop the process run (it may have just ended)")
        except RobocorpError as err:
            outcome = f"stopping the process run failed: {err}"
        self._run_ended = True
        raise ProcessRunTimeoutError(
            f"Process run {run_id} did not finish within the timeout of {self.timeout or 0:g} s "
            f"(last state: {state}); {outcome}."
        )

    def _finish(self, context: Context, run_id: str, state: Any) -> str:
        self._run_ended = True
        self._finished = True
        self._final_state = str(state)
        if state == "unresolved":
            message = log_unresolved(self.hook, self.log, run_id, self._run_url(run_id), self.max_failed_items)
            if self._rounds_done:
                message = (f"{message} (Still failed after {self._rounds_done} retry round(s) of the failed work "
                           "items.)")
            self._failure = message
            if self.fail_on_unresolved:
                raise ProcessRunFailedError(message, process_run={"id": run_id, "state": state})
            self.log.warning("%s", message)
        elif state != "completed":
            raise ProcessRunFailedError(f"Process run {run_id} ended in unexpected state {state!r}.")
        else:
            self.log.info("Process run %s completed.", run_id)
        outputs: list[dict[str, Any]] | None = None
        if self.push_outputs:
            outputs = [
                {"id": o.get("id"), "payload": o.get("payload"), "files": [f.get("name") for f in o.get("files") or []]}
                for o in self.hook.list_process_run_outputs(run_id)
            ]
            ti = context.get("ti")
            if ti is not None:
                ti.xcom_push(key=OUTPUTS_KEY, value=outputs)
            self.log.info("Process run %s produced %d output work item(s).", run_id, len(outputs))
        if self.emit_asset_events and state == "completed":
            self._emit_run_event(context, run_id, state, outputs)
        self._mark_succeeded(context, run_id)
        return run_id

    # --- OpenLineage (called by Airflow's OpenLineage listener, when installed) ------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return self._lineage(error=None)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self._lineage(error=self._failure)

    def _lineage(self, error: str | None) -> Any:
        return process_run_lineage_of(self, error)

    def _emit_run_event(self, context: Context, run_id: str, state: str, outputs: list[Any] | None) -> None:
        extra: dict[str, Any] = {"process_run_id": run_id, "process_id": self.process_id, "state": state}
        try:
            extra["work_items"] = self.hook.work_item_counts(run_id)
            extra["outputs"] = len(outputs) if outputs is not None else sum(
                1 for _ in self.hook.list_process_run_outputs(run_id))
        except RobocorpError as err:  # the run completed: counts are a courtesy, not a condition
            self.log.warning("Could not count the work items / outputs of process run %s: %s", run_id, err)
        emit(context, self._outlet_alias, process_uri(self.hook.workspace_id, str(self.process_id)),
             extra, self.log)
