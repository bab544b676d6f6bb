"""What a ProcessRunTrigger event may hold, checked fail-closed on the worker side.

Kept apart from the trigger class so that operators and sensors can check events without
importing ``airflow.triggers.base`` (and pydantic) when a DAG file is parsed.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_robocorp.exceptions import (
    RobocorpError,
    RobocorpRateLimitError,
    RobocorpRequestMayHaveBeenAppliedError,
    RobocorpServerError,
    RobocorpTransportError,
)

#: Every ``status`` a ProcessRunTrigger event can carry.
EVENT_STATUSES = ("success", "failure", "timeout", "error")


def is_transient(err: BaseException) -> bool:
    """429, 5xx and network failures: worth polling again rather than failing the task."""
    if isinstance(err, RobocorpRequestMayHaveBeenAppliedError):
        return False
    return isinstance(err, RobocorpRateLimitError | RobocorpServerError | RobocorpTransportError)


def check_event(event: Any) -> dict[str, Any]:
    """Return a well-formed trigger event, or raise: anything unexpected fails the task (fail closed)."""
    if (
        not isinstance(event, dict)
        or event.get("status") not in EVENT_STATUSES
        or not isinstance(event.get("process_run_id"), str)
        or not event["process_run_id"]
        or (event["status"] == "success" and event.get("state") != "completed")
        or (event["status"] == "failure" and event.get("state") != "unresolved")
    ):
        raise RobocorpError(f"Malformed event from ProcessRunTrigger, failing rather than guessing: {str(event)[:300]}")
    return event


def process_run_trigger() -> type[Any]:
    """ProcessRunTrigger, imported only when a task defers (it pulls in ``airflow.triggers.base``)."""
    from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

    return ProcessRunTrigger
