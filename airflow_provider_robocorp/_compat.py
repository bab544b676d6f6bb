"""Differences between Airflow 3.x releases, in one place.

``conf``: ``airflow.sdk.configuration`` (3.2+) or ``airflow.configuration``.
Task-flow exceptions (``AirflowFailException``, ``AirflowSkipException``, ``AirflowSensorTimeout``,
and, for the tests, ``AirflowRescheduleException`` and ``TaskDeferred``): ``airflow.sdk.exceptions``
(3.2+) or ``airflow.exceptions``.
``ResumableJobMixin`` from Airflow 3.3+, or a stand-in that simply submits on every try.

With the real mixin, the id of the started process run is kept in the task's state store, so a try
that follows a worker crash re-attaches to the run instead of starting a second one. Airflow
versions without it have no task state store to resume from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow < 3.2
    from airflow.configuration import conf  # type: ignore[no-redef]

if TYPE_CHECKING:
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
else:
    try:
        from airflow.sdk.exceptions import (
            AirflowFailException,
            AirflowRescheduleException,
            AirflowSensorTimeout,
            AirflowSkipException,
            TaskDeferred,
        )
    except ImportError:  # Airflow < 3.2
        from airflow.exceptions import (
            AirflowFailException,
            AirflowRescheduleException,
            AirflowSensorTimeout,
            AirflowSkipException,
            TaskDeferred,
        )

if TYPE_CHECKING:
    from airflow.sdk.bases.resumablejobmixin import ResumableJobMixin
else:
    try:
        from airflow.sdk import ResumableJobMixin
    except ImportError:  # Airflow < 3.3

        class ResumableJobMixin:
            """Stand-in: no state store, so every try starts a new job."""

            external_id_key: str = "remote_job_id"

            def __init__(self, *, durable: bool = False, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.durable = False

            def execute_resumable(self, context: Any) -> Any:
                external_id = self.submit_job(context)
                self.poll_until_complete(external_id, context)
                return self.get_job_result(external_id, context)


__all__ = [
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "ResumableJobMixin",
    "TaskDeferred",
    "conf",
]
