"""ProcessRunTrigger: waits for a Control Room process run in the triggerer, without a worker slot."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_robocorp.exceptions import RobocorpConfigError, RobocorpError
from airflow_provider_robocorp.hooks._endpoints import PROCESS_RUN_STATES
from airflow_provider_robocorp.hooks._pipeline import positive_seconds
from airflow_provider_robocorp.hooks._runs import ProgressTracker
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.triggers._events import EVENT_STATUSES, check_event, is_transient

__all__ = ["EVENT_STATUSES", "ProcessRunTrigger", "check_event", "is_transient"]

class ProcessRunTrigger(BaseTrigger):
    """Polls Get process run until the run ends or ``deadline`` passes; never starts anything.

    Yields one event ``{"status", "process_run_id", "state", "message"}`` with status ``success``
    (``completed``), ``failure`` (``unresolved``), ``timeout`` (deadline passed; the run is left
    running for the task to stop) or ``error`` (unknown state, or an error that retrying cannot
    fix). Transient errors (429, 5xx, network) are logged and polled through. While waiting it logs
    the run's state and work item counts whenever they change.

    :param process_run_id: the run to wait for.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param poll_interval: seconds between polls.
    :param deadline: absolute time (epoch seconds) after which a ``timeout`` event is sent.
    :param stop_on_kill: stop the run in :meth:`on_kill` (a user marked or cleared the deferred task).
    :param workspace_id: overrides the connection's Workspace ID.
    :param first_poll_delay: seconds to wait before the first poll (a task that just deferred: see
        ``StartProcessRunOperator(defer_grace_period=)``); never past the deadline.
    """

    def __init__(
        self,
        process_run_id: str,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        poll_interval: float = 30.0,
        deadline: float | None = None,
        stop_on_kill: bool = False,
        workspace_id: str | None = None,
        first_poll_delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.first_poll_delay = 0.0 if not first_poll_delay else positive_seconds(
            first_poll_delay, "ProcessRunTrigger first_poll_delay")
        self.process_run_id = process_run_id
        self.robocorp_conn_id = robocorp_conn_id
        self.poll_interval = positive_seconds(poll_interval, "ProcessRunTrigger poll_interval")
        self.deadline = None if deadline is None else float(deadline)
        if self.deadline is not None and not math.isfinite(self.deadline):
            raise RobocorpConfigError(f"ProcessRunTrigger deadline must be a finite epoch time, got {deadline!r}.")
        self.stop_on_kill = bool(stop_on_kill)
        self.workspace_id = workspace_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "process_run_id": self.process_run_id,
                "robocorp_conn_id": self.robocorp_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "stop_on_kill": self.stop_on_kill,
                "workspace_id": self.workspace_id,
                "first_poll_delay": self.first_poll_delay,
            },
        )

    def _hook(self) -> RobocorpHook:
        return RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)

    def _event(self, status: str, state: Any, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "process_run_id": self.process_run_id, "state": state,
                             "message": message})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        progress = _Progress(self, hook)
        state: Any = None
        try:
            if self.first_poll_delay:
                end = time.time() + self.first_poll_delay
                await asyncio.sleep(max(0.0, min(end, self.deadline or end) - time.time()))
            while True:
                try:
                    run = await hook.aget_process_run(self.process_run_id)
                    state = run.get("state") if isinstance(run, dict) else None
                except RobocorpError as err:
                    if not is_transient(err):
                        yield self._event("error", state, f"Waiting for process run {self.process_run_id} "
                                                          f"failed: {err}")
                        return
                    self.log.warning("Polling process run %s failed (%s); polling again.", self.process_run_id, err)
                else:
                    if state in PROCESS_RUN_STATES:
                        progress.polled(state)  # never waits for a count: counting runs beside the polls
                    if state == "completed":
                        yield self._event("success", state, f"Process run {self.process_run_id} completed.")
                        return
                    if state == "unresolved":
                        yield self._event("failure", state, f"Process run {self.process_run_id} ended unresolved.")
                        return
                    if state not in PROCESS_RUN_STATES:
                        yield self._event("error", state, f"Process run {self.process_run_id} is in unknown "
                                                          f"state {state!r}; refusing to guess.")
                        return
                now = time.time()
                if self.deadline is not None and now >= self.deadline:
                    yield self._event("timeout", state, f"Process run {self.process_run_id} did not finish "
                                                        f"before the deadline (last state: {state}).")
                    return
                pause = self.poll_interval if self.deadline is None else min(self.poll_interval, self.deadline - now)
                await asyncio.sleep(max(pause, 0.0))
        finally:
            await progress.aclose()
            await hook.aclose()

    async def on_kill(self) -> None:
        """Stop the run when a user kills the deferred task (Airflow 3.3+ calls this; older ones never do)."""
        if not self.stop_on_kill:
            return
        hook = self._hook()
        try:
            await hook.astop_process_run(self.process_run_id, reason="The Airflow task waiting for it was killed.")
            self.log.info("Stopped process run %s because its Airflow task was killed.", self.process_run_id)
        finally:
            await hook.aclose()


class _Progress:
    """Progress lines of one trigger: counts run as a task of their own beside the status polls,
    so a slow listing never delays a poll or the final event (a count still running then is
    cancelled)."""

    def __init__(self, trigger: ProcessRunTrigger, hook: RobocorpHook) -> None:
        self.trigger, self.hook = trigger, hook
        self.tracker = ProgressTracker(trigger.process_run_id, count_final=False)
        self.task: asyncio.Task[None] | None = None

    def polled(self, state: str) -> None:
        self.tracker.polled()
        if self.task is None and self.tracker.needs_counts(state):
            self.task = asyncio.get_running_loop().create_task(self._count(state))
        self._log(self.tracker.update(state))

    async def _count(self, state: str) -> None:
        run_id = self.trigger.process_run_id
        try:
            counts, requests = await self.hook.acount_run_work_items(run_id)
        except RobocorpError as err:
            self.trigger.log.warning("Could not count the work items of process run %s: %s", run_id, err)
            self.tracker.count_failed(state)
        else:
            self._log(self.tracker.update(self.tracker.last[0] if self.tracker.last else state, counts, requests))
        finally:
            self.task = None

    def _log(self, line: str | None) -> None:
        if line:
            self.trigger.log.info("%s", line)

    async def aclose(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
