"""Human review of an unresolved process run (Airflow's human-in-the-loop operators, 3.1+).

``ProcessRunReviewOperator`` shows the run's failed work items (id, exception type, code and
message; a capped list and the count) as a required action in Airflow with three choices:

* **Retry failed items** — batch retry (the run re-opens), then wait for the run again; the task
  fails if it ends unresolved again;
* **Mark them done** — batch mark as done; the task succeeds;
* **Fail** — the task fails (the default when ``response_timeout`` passes without an answer).

It waits like the HITL operators it builds on (Airflow 3.3: the ``awaiting_input`` state; 3.1/3.2:
deferred to the triggerer), and a retry waits for the run in the triggerer too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator

from airflow_provider_robocorp._compat import AirflowFailException
from airflow_provider_robocorp.exceptions import ProcessRunFailedError, RobocorpConfigError, RobocorpError
from airflow_provider_robocorp.hooks._pipeline import check_id, positive_seconds
from airflow_provider_robocorp.hooks._runs import failed_work_item
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.operators._run_control import describe_items, exception_type, failed_items
from airflow_provider_robocorp.triggers._events import check_event, process_run_trigger

if TYPE_CHECKING:
    from airflow.sdk import Context

RETRY, MARK_DONE, FAIL = "Retry failed items", "Mark them done", "Fail"
CHOICES = [RETRY, MARK_DONE, FAIL]


class ProcessRunReviewOperator(HITLOperator):
    """Ask a person what to do with the failed work items of an ``unresolved`` run.

    :param process_run_id: the run to review (e.g. ``start.output`` of a ``StartProcessRunOperator``
        with ``fail_on_unresolved=False``). Templated.
    :param default_choice: taken when ``response_timeout`` passes with no answer (default ``Fail``).
    :param response_timeout: how long to wait for an answer (default 24 hours).
    :param max_items: how many failed items the request lists (the rest are counted).
    :param poll_interval: seconds between status checks while a retried run is waited for.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``. Templated.
    :param workspace_id: overrides the connection's Workspace ID. Templated.

    Returns ``{"process_run_id", "choice", "work_item_ids", "state"}``; a run that is
    ``completed`` (nothing to review) returns at once with ``choice`` None.
    """

    template_fields: Sequence[str] = (*HITLOperator.template_fields, "process_run_id", "robocorp_conn_id",
                                      "workspace_id")
    ui_color = "#fff2c6"

    def __init__(
        self,
        *,
        process_run_id: str,
        default_choice: str = FAIL,
        response_timeout: timedelta | None = timedelta(hours=24),
        max_items: int = 20,
        poll_interval: float = 30.0,
        subject: str | None = None,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        if default_choice not in CHOICES:
            raise RobocorpConfigError(f"default_choice={default_choice!r} is not valid; use one of: "
                                      f"{', '.join(CHOICES)}.")
        super().__init__(subject=subject or "Review the failed work items of an unresolved Control Room run",
                         options=list(CHOICES), defaults=[default_choice], response_timeout=response_timeout,
                         **kwargs)
        self.process_run_id = process_run_id
        self.max_items = max_items
        self.poll_interval = positive_seconds(poll_interval, "poll_interval")
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id

    def _hook(self) -> RobocorpHook:
        return RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)

    def execute(self, context: Context) -> Any:
        run_id = check_id(self.process_run_id, "process_run_id", "ProcessRunReviewOperator")
        hook = self._hook()
        run = hook.get_process_run(run_id)
        state = run.get("state")
        if state == "completed":
            self.log.info("Process run %s completed: nothing to review.", run_id)
            return {"process_run_id": run_id, "choice": None, "work_item_ids": [], "state": state}
        if state != "unresolved":
            raise RobocorpError(f"Process run {run_id} is {state}, not unresolved: there is nothing to review yet.")
        failed = failed_items(hook, run_id)
        if not failed:
            self.log.info("Process run %s is unresolved but has no failed work item: nothing to review.", run_id)
            return {"process_run_id": run_id, "choice": None, "work_item_ids": [], "state": state}
        process: dict[str, Any] = run["process"] if isinstance(run.get("process"), dict) else {}
        self.body = self._body(hook, run_id, process.get("id"), failed)
        self.log.info("Asking for a review of %d failed work item(s) of process run %s: %s", len(failed), run_id,
                      describe_items(failed, self.max_items))
        return super().execute(context)

    def _body(self, hook: RobocorpHook, run_id: str, process_id: Any, failed: list[dict[str, Any]]) -> str:
        lines = [f"Process run `{run_id}` ended **unresolved** with **{len(failed)}** failed work item(s).", "",
                 "| work item | exception type | code | message |", "|---|---|---|---|"]
        for item in failed[: self.max_items]:
            shown = failed_work_item(item)
            message = shown["message"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{shown['id']}` | {exception_type(item)} | {shown['code']} | {message} |")
        if len(failed) > self.max_items:
            lines.append(f"| … and {len(failed) - self.max_items} more | | | |")
        try:
            lines += ["", f"[The run in Control Room]({hook.process_run_url(str(process_id), run_id)})"]
        except RobocorpError as err:
            self.log.warning("No Control Room link for process run %s: %s", run_id, err)
        lines += ["", f"*{RETRY}*: retry them in place and wait for the run; *{MARK_DONE}*: accept them as they "
                      f"are; *{FAIL}*: fail this task."]
        return "\n".join(lines)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        answer = super().execute_complete(context, event)
        choice = answer["chosen_options"][0]
        run_id = str(self.process_run_id)
        hook = self._hook()
        ids = [str(item["id"]) for item in failed_items(hook, run_id)]
        self.log.info("Review of process run %s by %s: %s (%d failed work item(s)).", run_id,
                      answer.get("responded_by_user") or "the timeout default", choice, len(ids))
        if choice == FAIL:
            raise AirflowFailException(f"The review of process run {run_id} chose {FAIL!r}: {len(ids)} work item(s) "
                                       "stay failed.")
        for start in range(0, len(ids), 100):
            hook.batch_work_items("retry" if choice == RETRY else "mark_as_done", ids[start:start + 100])
        if choice == MARK_DONE:
            return {"process_run_id": run_id, "choice": choice, "work_item_ids": ids, "state": "unresolved"}
        self.defer(
            trigger=process_run_trigger()(process_run_id=run_id, robocorp_conn_id=self.robocorp_conn_id,
                                          poll_interval=self.poll_interval, workspace_id=self.workspace_id,
                                          first_poll_delay=min(self.poll_interval, 10.0)),
            method_name="after_retry",
            kwargs={"work_item_ids": ids},
        )

    def after_retry(self, context: Context, event: Any = None, work_item_ids: list[str] | None = None) -> Any:
        """The retried run ended: succeed when it completed, fail listing what failed again."""
        event = check_event(event)
        run_id = event["process_run_id"]
        if event["status"] == "success":
            self.log.info("Process run %s completed after the reviewed retry.", run_id)
            return {"process_run_id": run_id, "choice": RETRY, "work_item_ids": work_item_ids or [],
                    "state": "completed"}
        if event["status"] != "failure":
            raise RobocorpError(str(event.get("message") or f"Waiting for process run {run_id} failed."))
        again = failed_items(self._hook(), run_id)
        raise ProcessRunFailedError(f"Process run {run_id} ended unresolved again after the reviewed retry: "
                                    f"{describe_items(again, self.max_items)}.", process_run={"id": run_id})
