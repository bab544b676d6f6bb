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
    RobocorpConfigError,
    ProcessRunTimeoutError,
    RobocorpError,
    RobocorpNotFoundError,
)
from airflow_provider_robocorp.hooks._pipeline import positive_seconds
from airflow_provider_robocorp.hooks._runs import ProgressTracker, log_progress, log_unresolved
from airflow_provider_robocorp.hooks.robocorp import (
    TERMINAL_PROCESS_RUN_STATES,
    RobocorpHook,
    build_start_body,
)
from airflow_provider_robocorp.links import PROCESS_RUN_ID_KEY, PROCESS_RUN_URL_KEY, ControlRoomProcessRunLink
from airflow_provider_robocorp.operators._asset_events import emit, outlet_alias
from airflow_provider_robocorp.operators._lineage import openlineage_module
from airflow_provider_robocorp.triggers._events import check_event, process_run_trigger

if TYPE_CHECKING:
    from airflow.sdk import Context

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
    :param emit_asset_events: when the run completes, record an asset event for
        ``robocorp://<workspace_id>/processes/<process_id>`` (extra: run id, state, work item
        counts, output count), so DAGs scheduled on that asset run. ``False`` turns it off.
    """

    template_fields: Sequence[str] = ("process_id", "payloads", "work_item_ids", "callback", "workspace_id", "robocorp_conn_id")
    template_fields_renderers = {"payloads": "json", "work_item_ids": "json", "callback": "json"}
    operator_extra_links = (ControlRoomProcessRunLink(),)
    ui_color = "#c6e4ff"
    external_id_key = PROCESS_RUN_ID_KEY

    def __init__(
        self,
        *,
        process_id: str,
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        self._forget_a_succeeded_run(context)
        self.execute_resumable(context)
        if not self.wait_for_completion and self._run_id:
            self._mark_succeeded(context, self._run_id)
        return self._run_id

    def _forget_a_succeeded_run(self, context: Context) -> None:
        """A try after a *successful* one means the user cleared the task: run the robot again.
        (A retry after a crash or a failure finds no success mark and re-attaches as before.)"""
        store = context.get("task_state_store") if self.durable else None
        if store is None:
            return
        prior = store.get(self.external_id_key)
        if prior and store.get(SUCCEEDED_RUN_KEY) == prior:
            self.log.info("This task succeeded before with process run %s and was cleared: starting a new run.",
                          prior)
            store.delete(self.external_id_key)
            store.delete(SUCCEEDED_RUN_KEY)

    def _mark_succeeded(self, context: Context, run_id: str) -> None:
        store = context.get("task_state_store") if self.durable else None
        if store is not None:
            store.set(SUCCEEDED_RUN_KEY, run_id)

    def submit_job(self, context: Context) -> str:
        answer = self.hook.start_process_run(self.process_id, **(self._arguments or self._start_arguments()))
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
        return run_id

    def get_job_status(self, external_id: Any, context: Context) -> str:
        try:
            return str(self.hook.get_process_run(str(external_id)).get("state"))
        except RobocorpNotFoundError:
            return "deleted"

    def is_job_active(self, status: str) -> bool:
        return status in ("new", "in_progress")

    def is_job_succeeded(self, status: str) -> bool:
        return status == "completed"

    def poll_until_complete(self, external_id: Any, context: Context) -> None:
        run_id = str(external_id)
        self._announce(context, run_id)
        if not self.wait_for_completion:
            return
        if self.deferrable:
            state = self.hook.get_process_run(run_id).get("state")  # an ended run needs no triggerer
            if state in ("completed", "unresolved"):
                self.log.info("Process run %s is already %s; not deferring.", run_id, state)
                self._finish(context, run_id, state)
                return
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
            )
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
        self._finish(context, run_id, run.get("state"))

    def get_job_result(self, external_id: Any, context: Context) -> str:
        run_id = str(external_id)
        self._announce(context, run_id)
        if self.wait_for_completion and not self._finished:  # the run had completed before this try
            self._finish(context, run_id, "completed")
        return run_id

    def execute_complete(self, context: Context, event: Any = None) -> str:
        """Resume after ProcessRunTrigger: check its event (fail closed) and finish."""
        event = check_event(event)
        run_id = event["process_run_id"]
        self._run_id = run_id
        if event["status"] == "timeout":
            self._stop_after_timeout(run_id, event.get("state"))
        if event["status"] == "error":
            raise RobocorpError(str(event.get("message") or f"Waiting for process run {run_id} failed."))
        return self._finish(context, run_id, event["state"])

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
            return self.hook.process_run_url(self.process_id, run_id)
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
        ol = openlineage_module()
        if ol is None:
            return None
        run_id = self._run_id
        url = self._run_url_value or (self._run_url(run_id) if run_id else None)
        ids = (self._arguments or {}).get("work_item_ids")
        return ol.process_run_lineage(self.hook.workspace_id, self.process_id, run_id=run_id, run_url=url,
                                      state=self._final_state, work_item_ids=list(ids) if ids else None, error=error)

    def _emit_run_event(self, context: Context, run_id: str, state: str, outputs: list[Any] | None) -> None:
        extra: dict[str, Any] = {"process_run_id": run_id, "process_id": self.process_id, "state": state}
        try:
            extra["work_items"] = self.hook.work_item_counts(run_id)
            extra["outputs"] = len(outputs) if outputs is not None else sum(
                1 for _ in self.hook.list_process_run_outputs(run_id))
        except RobocorpError as err:  # the run completed: counts are a courtesy, not a condition
            self.log.warning("Could not count the work items / outputs of process run %s: %s", run_id, err)
        emit(context, self._outlet_alias, process_uri(self.hook.workspace_id, self.process_id),
             extra, self.log)


class StopProcessRunOperator(BaseOperator):
    """Stop a process run; returns the run id.

    :param process_run_id: the run to stop. Templated.
    :param set_remaining_work_items_as_done: mark the work items not yet processed as done.
    :param terminate_ongoing_activity_runs: terminate step runs in progress.
    :param reason: shown in Control Room. Templated.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID. Templated.
    """

    template_fields: Sequence[str] = ("process_run_id", "reason", "workspace_id", "robocorp_conn_id")
    ui_color = "#ffd9c6"

    def __init__(
        self,
        *,
        process_run_id: str,
        set_remaining_work_items_as_done: bool = False,
        terminate_ongoing_activity_runs: bool = True,
        reason: str | None = None,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.process_run_id = process_run_id
        self.set_remaining_work_items_as_done = set_remaining_work_items_as_done
        self.terminate_ongoing_activity_runs = terminate_ongoing_activity_runs
        self.reason = reason
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id

    def execute(self, context: Context) -> str:
        hook = RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)
        answer = hook.stop_process_run(
            self.process_run_id,
            set_remaining_work_items_as_done=self.set_remaining_work_items_as_done,
            terminate_ongoing_activity_runs=self.terminate_ongoing_activity_runs,
            reason=self.reason or f"Stopped by Airflow task {self.task_id}.",
        )
        if answer.get("accepted") is False:
            state = hook.get_process_run(self.process_run_id).get("state")
            if state not in TERMINAL_PROCESS_RUN_STATES:
                raise RobocorpError(f"Control Room did not accept stopping process run {self.process_run_id} "
                                    f"(state {state}).")
            self.log.info("Process run %s had already ended (%s); nothing to stop.", self.process_run_id, state)
        else:
            self.log.info("Stop of process run %s accepted.", self.process_run_id)
        return self.process_run_id
