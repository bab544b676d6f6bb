"""StopProcessRunOperator: stop a Control Room process run (re-exported by ``operators.process_runs``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_robocorp.exceptions import RobocorpError
from airflow_provider_robocorp.hooks.robocorp import TERMINAL_PROCESS_RUN_STATES, RobocorpHook

if TYPE_CHECKING:
    from airflow.sdk import Context


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
