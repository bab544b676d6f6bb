"""ProcessRunSensor: wait for a process run started elsewhere (poke, reschedule or deferrable)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseSensorOperator

from airflow_provider_robocorp._compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    conf,
)
from airflow_provider_robocorp.exceptions import RobocorpError
from airflow_provider_robocorp.hooks._endpoints import PROCESS_RUN_STATES
from airflow_provider_robocorp.hooks._pipeline import positive_seconds
from airflow_provider_robocorp.hooks._runs import ProgressTracker, log_progress, log_unresolved
from airflow_provider_robocorp.hooks.robocorp import TERMINAL_PROCESS_RUN_STATES, RobocorpHook
from airflow_provider_robocorp.links import PROCESS_RUN_URL_KEY, ControlRoomProcessRunLink
from airflow_provider_robocorp.triggers._events import check_event, process_run_trigger

if TYPE_CHECKING:
    from airflow.sdk import Context

#: States in which a run may still end either way.
WAITING_STATES = tuple(s for s in PROCESS_RUN_STATES if s not in TERMINAL_PROCESS_RUN_STATES)


class ProcessRunSensor(BaseSensorOperator):
    """Succeeds when a process run is ``completed``; fails on ``unresolved`` or any unknown state.

    On ``unresolved`` the failure names the failed work items and step run errors and the failing
    steps' console goes to the task log (``soft_fail`` turns it into a skip). The run's Control
    Room URL is pushed as XCom ``process_run_url`` (the "Control Room" link).

    :param process_run_id: the run to watch. Templated.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``); the
        sensor's ``timeout`` becomes the trigger's deadline.
    :param max_failed_items: how many failed work items a failure message lists.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID. Templated.
    """

    template_fields: Sequence[str] = ("process_run_id", "workspace_id", "robocorp_conn_id")
    operator_extra_links = (ControlRoomProcessRunLink(),)
    ui_color = "#c6e4ff"

    def __init__(
        self,
        *,
        process_run_id: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_failed_items: int = 10,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        for name in ("poke_interval", "timeout"):  # before Airflow's checks, which overflow on inf
            if name in kwargs:
                positive_seconds(kwargs[name], name)
        super().__init__(**kwargs)
        # Airflow accepts NaN here (every comparison with it is false): a NaN timeout never expires.
        self.poke_interval = positive_seconds(self.poke_interval, "poke_interval")
        self.timeout = positive_seconds(self.timeout, "timeout")
        self.process_run_id = process_run_id
        self.deferrable = deferrable
        self.max_failed_items = max_failed_items
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id
        self._url: str | None = None
        self._announced = False

    @cached_property
    def hook(self) -> RobocorpHook:
        return RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)

    @cached_property
    def _tracker(self) -> ProgressTracker:
        return ProgressTracker(self.process_run_id)

    def execute(self, context: Context) -> Any:
        self._announced = False  # each try / reschedule starts with its XComs cleared
        if not self.deferrable:
            return super().execute(context)
        try:
            if self.poke(context):  # already over: no need to defer
                return None
        except AirflowFailException as err:  # as BaseSensorOperator.execute treats it
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(str(err)) from err
            raise
        self.defer(
            trigger=process_run_trigger()(
                process_run_id=self.process_run_id,
                robocorp_conn_id=self.robocorp_conn_id,
                poll_interval=self.poke_interval,
                deadline=time.time() + self.timeout,
                stop_on_kill=False,  # the run is not ours to stop
                workspace_id=self.workspace_id,
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> bool:
        run = self.hook.get_process_run(self.process_run_id)
        state = run.get("state")
        self._announce(context, run)
        log_progress(self.hook, self._tracker, self.log, self.process_run_id, state)
        if state == "completed":
            return True
        if state == "unresolved":
            self._fail_unresolved()
        if state in WAITING_STATES:
            return False
        raise AirflowFailException(f"Process run {self.process_run_id} is in unknown state {state!r}; "
                                   "refusing to guess.")

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Resume after ProcessRunTrigger: check its event (fail closed)."""
        event = check_event(event)
        if event["status"] == "success":
            self.log.info("Process run %s completed.", event["process_run_id"])
            return
        if event["status"] == "failure":
            self._fail_unresolved()
        if event["status"] == "timeout":
            raise AirflowSensorTimeout(f"{event.get('message')} The sensor's timeout of {self.timeout:g} s passed.")
        raise RobocorpError(str(event.get("message") or f"Waiting for process run {self.process_run_id} failed."))

    def _announce(self, context: Context, run: dict[str, Any]) -> None:
        if self._announced:
            return
        self._announced = True
        if self._url is None:
            process_id = (run.get("process") or {}).get("id")
            try:
                self._url = self.hook.process_run_url(str(process_id), self.process_run_id) if process_id else None
            except RobocorpError as err:
                self.log.warning("Could not build the Control Room link of process run %s: %s",
                                 self.process_run_id, err)
        ti = context.get("ti")
        if self._url and ti is not None:
            ti.xcom_push(key=PROCESS_RUN_URL_KEY, value=self._url)
        self.log.info("Watching process run %s in Control Room: %s", self.process_run_id, self._url or "(no link)")

    def _fail_unresolved(self) -> NoReturn:
        message = log_unresolved(self.hook, self.log, self.process_run_id, self._url, self.max_failed_items)
        raise AirflowFailException(message)
