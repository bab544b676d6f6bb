"""Extra links to Control Room's web pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

#: XCom keys pushed by the run operator and the sensor as soon as the run is known.
PROCESS_RUN_ID_KEY = "process_run_id"
PROCESS_RUN_URL_KEY = "process_run_url"


def _xcom_value(ti_key: TaskInstanceKey, key: str) -> Any:
    try:
        from airflow.sdk.execution_time.xcom import XCom
    except ImportError:  # Airflow 3.0
        from airflow.models.xcom import XCom  # type: ignore[no-redef]
    return XCom.get_value(ti_key=ti_key, key=key)


class ControlRoomProcessRunLink(BaseOperatorLink):
    """"Control Room": the web page of the process run the task started or watched.

    The URL is the ``process_run_url`` XCom the task pushed while it ran (built from the connection's
    host, so SSO tenants get their own host, and the organization id from Get workspace); reading
    it costs no API call. Empty when the task never got as far as a run.
    """

    name = "Control Room"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        url = _xcom_value(ti_key, PROCESS_RUN_URL_KEY)
        return url if isinstance(url, str) and url.startswith(("https://", "http://")) else ""
