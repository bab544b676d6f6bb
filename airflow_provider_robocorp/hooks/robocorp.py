"""RobocorpHook: every Control Room API endpoint, plus the helpers the operators share.

One method per endpoint, named as in ``reference/endpoints.tsv``. Arguments are validated locally
before a request is sent; ``list_*`` methods return lazy iterators that follow ``next``. The
request pipeline (URL, auth, retries, errors, paging) lives in ``_pipeline`` / ``_transport`` and
serves both the sync methods and the ``a*`` coroutines used by triggers.
"""

from __future__ import annotations

import base64
import math
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from airflow_provider_robocorp.exceptions import (
    ProcessRunFailedError,
    ProcessRunTimeoutError,
    RobocorpBadRequestError,
    RobocorpConfigError,
    RobocorpConflictError,
    RobocorpError,
    RobocorpNotFoundError,
)
from airflow_provider_robocorp.hooks._endpoints import (
    BATCH_OPERATIONS,
    CALLBACK_EVENTS,
    HANDSHAKES,
    PROCESS_RUN_STATES,
    WEBHOOK_EVENTS,
    WORK_ITEM_STATES,
)
from airflow_provider_robocorp.hooks._multipart import FileBody, MultipartStream, new_boundary
from airflow_provider_robocorp.hooks._pipeline import (
    NO_BODY,
    ApiRequest,
    ConnectionSettings,
    check_file_name,
    check_id,
    encode_json,
    is_loopback,
    positive_seconds,
)
from airflow_provider_robocorp.hooks._runs import (
    COUNT_PAGE_SIZE,
    clip,
    count_work_item,
    count_work_items,
    failed_work_item,
)

if TYPE_CHECKING:  # the transports import requests/urllib3 and httpx: loaded when a hook first sends
    from airflow_provider_robocorp.hooks._shared import Lease
    from airflow_provider_robocorp.hooks._transport import AsyncTransport, SyncTransport

#: Process run states after which a run never changes again.
TERMINAL_PROCESS_RUN_STATES = frozenset({"completed", "unresolved"})
#: The API's limit for inline (base64) asset uploads: "under 5 MB" read as decimal megabytes, so
#: content is inlined only when it fits under either reading.
INLINE_UPLOAD_LIMIT = 5_000_000


def _check_choice(value: Any, allowed: Sequence[str], argument: str, method: str) -> None:
    if value not in allowed:
        raise RobocorpConfigError(f"{method}(): {argument}={value!r} is not valid; use one of: {', '.join(allowed)}.")


def _check_limit(limit: int | None, method: str) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise RobocorpConfigError(f"{method}(): limit must be a positive whole number (the page size), got {limit!r}.")
    return limit


def _check_str(value: Any, argument: str, method: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RobocorpConfigError(f"{method}(): {argument} must be a non-empty string, got {value!r}.")
    return value


def _check_ids(values: Any, argument: str, method: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise RobocorpConfigError(f"{method}(): {argument} must be a non-empty list of ids, got {values!r}.")
    for index, value in enumerate(values):
        check_id(value, f"every item of {argument}: {argument}[{index}]", method)
    return list(values)


def _check_url(value: Any, argument: str, method: str) -> str:
    parts = urlsplit(_check_str(value, argument, method))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RobocorpConfigError(f"{method}(): {argument} must be an absolute http(s) URL, got {value!r}.")
    return value


def _check_push_url(value: Any, argument: str, method: str) -> str:
    """Where Control Room will POST run callbacks / webhook events (with their signing secret):
    ``https://``, or plain ``http://`` only on loopback (a local receiver), as for the connection."""
    url = _check_url(value, argument, method)
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise RobocorpConfigError(
            f"{method}(): {argument} {url!r} uses plain http://; Control Room would send its events and their "
            "signature over an unencrypted connection. Use https:// (http:// is allowed only for loopback hosts)."
        )
    return url


def _readable_file(path: str | os.PathLike[str], method: str) -> Path:
    file = Path(path)
    if not file.is_file():
        raise RobocorpConfigError(f"{method}(): file {str(file)!r} does not exist or is not a regular file.")
    if not os.access(file, os.R_OK):
        raise RobocorpConfigError(f"{method}(): file {str(file)!r} is not readable by this process.")
    return file


def build_callback(callback: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validate a process run ``callback`` (url, secret, callback_events) and fill the default events."""
    if callback is None:
        return None
    if not isinstance(callback, dict):
        raise RobocorpConfigError("start_process_run(): callback must be a dict with 'url', 'secret', 'callback_events'.")
    unknown = set(callback) - {"url", "secret", "callback_events"}
    if unknown:
        raise RobocorpConfigError(f"start_process_run(): unknown callback keys {sorted(unknown)}; use url, secret, callback_events.")
    events = callback.get("callback_events", list(CALLBACK_EVENTS))
    if isinstance(events, str) or not isinstance(events, Sequence) or not events:
        raise RobocorpConfigError("start_process_run(): callback['callback_events'] must be a non-empty list.")
    for event in events:
        _check_choice(event, CALLBACK_EVENTS, "callback event", "start_process_run")
    return {
        "url": _check_push_url(callback.get("url"), "callback['url']", "start_process_run"),
        "secret": _check_str(callback.get("secret"), "callback['secret']", "start_process_run"),
        "callback_events": list(events),
    }


def build_start_body(
    *,
    payloads: Sequence[Any] | None = None,
    work_item_ids: Sequence[str] | None = None,
    use_input_work_items: bool = False,
    callback: dict[str, Any] | None = None,
) -> Any:
    """The Start process run body for one of the four start modes (``NO_BODY`` = default work item)."""
    chosen = [name for name, on in (("payloads", payloads is not None), ("work_item_ids", work_item_ids is not None),
                                    ("use_input_work_items", bool(use_input_work_items))) if on]
    if len(chosen) > 1:
        raise RobocorpConfigError(
            f"start_process_run(): choose one start mode, got {' and '.join(chosen)}; pass payloads OR "
            "work_item_ids OR use_input_work_items=True (or none for the default work item)."
        )
    body: dict[str, Any] = {}
    if payloads is not None:
        if isinstance(payloads, str | bytes | dict) or not isinstance(payloads, Sequence) or not payloads:
            raise RobocorpConfigError(
                "start_process_run(): payloads must be a non-empty list of JSON payloads, one per work item."
            )
        encode_json(list(payloads), what="start_process_run(): payloads")
        body = {"type": "with_payloads", "payloads": list(payloads)}
    elif work_item_ids is not None:
        body = {"type": "with_work_item_ids", "work_item_ids": _check_ids(work_item_ids, "work_item_ids", "start_process_run")}
    elif use_input_work_items:
        body = {"type": "with_inputs"}
    checked = build_callback(callback)
    if checked:
        body["callback"] = checked
    return body or NO_BODY


class RobocorpHook(BaseHook):
    """Talks to the Robocorp Control Room API.

    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID (its login).
    :param timeout: per-request timeout in seconds (default: connection extra ``timeout`` or 60).
    :param max_retries: retries of transient failures (default: extra ``max_retries`` or 5).
    :param page_size: ``limit`` of ``list_*`` calls that pass none (default: extra ``page_size``;
        without either no ``limit`` is sent and the server picks the page size).
    """

    conn_name_attr = "robocorp_conn_id"
    default_conn_name = "robocorp_default"
    conn_type = "robocorp"
    hook_name = "Robocorp Control Room"

    def __init__(
        self,
        robocorp_conn_id: str = default_conn_name,
        *,
        workspace_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        page_size: int | None = None,
    ) -> None:
        super().__init__()
        self.robocorp_conn_id = robocorp_conn_id
        self._workspace_id = workspace_id
        self._timeout = timeout
        self._max_retries = max_retries
        self._page_size = _check_limit(page_size, "RobocorpHook") if page_size is not None else None
        self._organization_id: str | None = None
        self._async: AsyncTransport | None = None
        self._lease: Lease | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(robocorp_conn_id={self.robocorp_conn_id!r})"

    # --- connection form (Airflow < 3.2 reads these; newer ones read get_provider_info) --------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The provider info's ``ui-field-behaviour`` with the snake_case keys hooks return."""
        from airflow_provider_robocorp import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {key.replace("-", "_"): value for key, value in behaviour.items()}

    # --- plumbing ----------------------------------------------------------------------------

    def _settings_for(self, conn: Any) -> ConnectionSettings:
        settings = ConnectionSettings.from_connection(
            conn, workspace_id=self._workspace_id, timeout=self._timeout, max_retries=self._max_retries,
            page_size=self._page_size,
        )
        # Airflow masks the password as stored; the bare key (sent as the integration endpoint's
        # token, and visible in urllib3's debug log) may differ from it by the RC-WSKEY prefix.
        _mask(settings.api_key)
        return settings

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The validated connection (resolved once per hook)."""
        return self._settings_for(self.get_connection(self.robocorp_conn_id))

    @cached_property
    def _transport(self) -> SyncTransport:
        from airflow_provider_robocorp.hooks._transport import SyncTransport

        return SyncTransport(self.settings)

    @property
    def workspace_id(self) -> str:
        return self.settings.workspace_id

    def close(self) -> None:
        """Close the HTTP session (the hook can still be used afterwards; a new one opens)."""
        if "_transport" in self.__dict__:
            self.__dict__.pop("_transport").close()

    def _request(self, endpoint: str, *, params: dict[str, Any] | None = None, json_body: Any = NO_BODY,
                 **path: str) -> ApiRequest:
        return self.settings.build(endpoint, path, params=params, json_body=json_body)

    def _call(self, endpoint: str, *, params: dict[str, Any] | None = None, json_body: Any = NO_BODY,
              **path: str) -> Any:
        return self._transport.send(self._request(endpoint, params=params, json_body=json_body, **path))

    def _paged(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """``params`` with the default page size where the call takes a ``limit`` and gave none."""
        if params is not None and "limit" in params and params["limit"] is None and self.settings.page_size:
            return {**params, "limit": self.settings.page_size}
        return params

    def _list(self, endpoint: str, *, params: dict[str, Any] | None = None, **path: str) -> Iterator[dict[str, Any]]:
        # Build (and so validate) eagerly; fetch lazily, one page at a time.
        request = self._request(endpoint, params=self._paged(params), **path)
        return self._transport.paginate(request)

    # --- workspace ---------------------------------------------------------------------------

    def get_workspace(self) -> dict[str, Any]:
        """Get workspace (id, name, organization)."""
        return self._call("get_workspace")

    def test_connection(self) -> tuple[bool, str]:
        """Called by Airflow's "Test" button: Get workspace with the connection's key."""
        try:
            workspace = self.get_workspace()
        except Exception as err:  # report every failure as text, as Airflow expects
            return False, str(err)
        org = (workspace.get("organization") or {}).get("name", "?")
        return True, f"Connected to Control Room workspace '{workspace.get('name')}' (organization '{org}')."

    # --- assets ------------------------------------------------------------------------------

    def list_assets(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List assets (id, name), lazily across pages."""
        return self._list("list_assets", params={"limit": _check_limit(limit, "list_assets")})

    def get_asset(self, asset_id: str) -> dict[str, Any]:
        """Get asset by id or by ``name:<asset name>``; includes its payload (``empty`` or ``url``)."""
        return self._call("get_asset", asset_id=asset_id)

    def create_asset(self, name: str) -> dict[str, Any]:
        """Create new (empty) asset."""
        return self._call("create_asset", json_body={"name": _check_str(name, "name", "create_asset")})

    def delete_asset(self, asset_id: str) -> dict[str, Any]:
        """Delete asset (irreversible)."""
        return self._call("delete_asset", asset_id=asset_id)

    def create_asset_upload(self, asset_id: str, content_type: str, data: bytes | str | None = None) -> dict[str, Any]:
        """Create asset upload. ``data`` (raw bytes, or text sent as UTF-8) is base64-encoded and sent
        inline; it must encode to under 5 MB. Without ``data`` the answer holds an ``upload_url``."""
        body: dict[str, Any] = {"content_type": _check_str(content_type, "content_type", "create_asset_upload")}
        if data is not None:
            raw = data.encode() if isinstance(data, str) else data
            if not isinstance(raw, bytes | bytearray):
                raise RobocorpConfigError(f"create_asset_upload(): data must be bytes or str, got {type(data).__name__}.")
            encoded = base64.b64encode(raw).decode("ascii")
            if len(encoded) >= INLINE_UPLOAD_LIMIT:
                raise RobocorpConfigError(
                    f"create_asset_upload(): {len(raw)} bytes encode to {len(encoded)} base64 bytes, over the API's "
                    "5 MB inline limit; use upload_asset() (it PUTs large content to the upload URL)."
                )
            body["data"] = encoded
        return self._call("create_asset_upload", json_body=body, asset_id=asset_id)

    def get_asset_upload(self, asset_id: str, upload_id: str) -> dict[str, Any]:
        """Get asset upload (status ``pending``/``completed``/``failed`` with ``reason``)."""
        return self._call("get_asset_upload", asset_id=asset_id, upload_id=upload_id)

    # --- assistants --------------------------------------------------------------------------

    def list_assistants(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List assistants, lazily."""
        return self._list("list_assistants", params={"limit": _check_limit(limit, "list_assistants")})

    def get_assistant(self, assistant_id: str) -> dict[str, Any]:
        """Get assistant."""
        return self._call("get_assistant", assistant_id=assistant_id)

    def create_assistant(self, name: str, task_name: str, package_id: str) -> dict[str, Any]:
        """Create assistant for a task inside a task package."""
        m = "create_assistant"
        return self._call(m, json_body={
            "name": _check_str(name, "name", m),
            "task": {"name": _check_str(task_name, "task_name", m), "package_id": _check_str(package_id, "package_id", m)},
        })

    def list_assistant_runs(self, assistant_id: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List assistant runs (of one assistant, or all), lazily."""
        if assistant_id is not None:
            _check_str(assistant_id, "assistant_id", "list_assistant_runs")
        params = {"assistant_id": assistant_id, "limit": _check_limit(limit, "list_assistant_runs")}
        return self._list("list_assistant_runs", params=params)

    def get_assistant_run(self, assistant_run_id: str) -> dict[str, Any]:
        """Get assistant run."""
        return self._call("get_assistant_run", assistant_run_id=assistant_run_id)

    # --- processes and runs ------------------------------------------------------------------

    def list_processes(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List processes, lazily."""
        return self._list("list_processes", params={"limit": _check_limit(limit, "list_processes")})

    def get_process(self, process_id: str) -> dict[str, Any]:
        """Get process (with its steps)."""
        return self._call("get_process", process_id=process_id)

    def start_process_run(
        self,
        process_id: str,
        *,
        payloads: Sequence[Any] | None = None,
        work_item_ids: Sequence[str] | None = None,
        use_input_work_items: bool = False,
        callback: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start process run in one of four modes: default work item (no argument), ``payloads``
        (one new work item each), ``work_item_ids`` (existing items), or ``use_input_work_items``
        (the process's input queue; answered ``{"started": false}`` when it is empty).
        ``callback`` = ``{"url", "secret", "callback_events"?}`` (events default to all three)."""
        body = build_start_body(
            payloads=payloads, work_item_ids=work_item_ids, use_input_work_items=use_input_work_items, callback=callback
        )
        return self._call("start_process_run", json_body=body, process_id=process_id)

    def start_process_run_for_integration(
        self, process_id: str, payload: Any, with_handshake: str | None = None, *, hook_secret: str | None = None
    ) -> dict[str, Any]:
        """Start process run (for integrations): the key goes in the ``token`` query parameter and the
        whole ``payload`` becomes the input work item. ``with_handshake="asana"`` with ``hook_secret``
        performs Asana's handshake (the secret is sent as ``X-Hook-Secret``)."""
        m = "start_process_run_for_integration"
        if with_handshake is not None:
            _check_choice(with_handshake, HANDSHAKES, "with_handshake", m)
        request = self.settings.build(
            m,
            {"process_id": process_id},
            params={"token": self.settings.api_key, "with_handshake": with_handshake},
            json_body=payload,
            headers={"X-Hook-Secret": _check_str(hook_secret, "hook_secret", m)} if hook_secret is not None else None,
            auth=False,
        )
        return self._transport.send(request)

    def list_process_runs(
        self, process_id: str | None = None, state: str | None = None, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """List process runs (optionally of one process and/or in one state), lazily."""
        return self._list("list_process_runs", params=_process_run_filters(process_id, state, limit))

    def get_process_run(self, process_run_id: str) -> dict[str, Any]:
        """Get process run (state, timestamps, process, started_by, duration)."""
        return self._call("get_process_run", process_run_id=process_run_id)

    def stop_process_run(
        self,
        process_run_id: str,
        set_remaining_work_items_as_done: bool = False,
        terminate_ongoing_activity_runs: bool = True,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Stop process run. By default remaining work items are *not* marked done and ongoing
        step runs are terminated."""
        return self._call("stop_process_run", json_body=_stop_body(set_remaining_work_items_as_done,
                                                                  terminate_ongoing_activity_runs, reason),
                          process_run_id=process_run_id)

    def delete_process_run(self, process_run_id: str) -> dict[str, Any]:
        """Delete process run (irreversible)."""
        return self._call("delete_process_run", process_run_id=process_run_id)

    def list_process_run_outputs(self, process_run_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List process run outputs (the run's output work items with payload and files), lazily."""
        m = "list_process_run_outputs"
        return self._list(m, params={"process_run_id": _check_str(process_run_id, "process_run_id", m),
                                     "limit": _check_limit(limit, m)})

    # --- step runs ---------------------------------------------------------------------------

    def list_step_runs(self, process_run_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List step runs of a process run, lazily."""
        m = "list_step_runs"
        return self._list(m, params={"process_run_id": _check_str(process_run_id, "process_run_id", m),
                                     "limit": _check_limit(limit, m)})

    def get_step_run(self, step_run_id: str) -> dict[str, Any]:
        """Get step run."""
        return self._call("get_step_run", step_run_id=step_run_id)

    def list_step_run_artifacts(self, step_run_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List step run artifacts (id, name, size), lazily."""
        m = "list_step_run_artifacts"
        return self._list(m, params={"limit": _check_limit(limit, m)}, step_run_id=step_run_id)

    def get_step_run_artifact(self, step_run_id: str, artifact_id: str) -> dict[str, Any]:
        """Get step run artifact (with its download ``url``)."""
        return self._call("get_step_run_artifact", step_run_id=step_run_id, artifact_id=artifact_id)

    def list_step_run_console_messages(self, step_run_id: str) -> Iterator[dict[str, Any]]:
        """List step run console messages (timestamp, message), lazily."""
        return self._list("list_step_run_console_messages", step_run_id=step_run_id)

    def list_step_run_events(self, step_run_id: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List step run events (timestamp, event_type), lazily."""
        m = "list_step_run_events"
        return self._list(m, params={"limit": _check_limit(limit, m)}, step_run_id=step_run_id)

    # --- task packages -----------------------------------------------------------------------

    def get_task_package(self, task_package_id: str) -> dict[str, Any]:
        """Get task package (with download URL once uploaded)."""
        return self._call("get_task_package", task_package_id=task_package_id)

    def create_task_package(self, name: str) -> dict[str, Any]:
        """Create new task package (type ``zip``)."""
        return self._call("create_task_package", json_body={"name": _check_str(name, "name", "create_task_package"),
                                                            "type": "zip"})

    def delete_task_package(self, task_package_id: str) -> dict[str, Any]:
        """Delete task package (irreversible)."""
        return self._call("delete_task_package", task_package_id=task_package_id)

    # --- webhooks ----------------------------------------------------------------------------

    def list_webhooks(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List webhooks, lazily."""
        return self._list("list_webhooks", params={"limit": _check_limit(limit, "list_webhooks")})

    def get_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Get webhook (including its signing ``secret``)."""
        return self._call("get_webhook", webhook_id=webhook_id)

    def create_webhook(self, endpoint: str, enabled_events: Sequence[str], process_id: str) -> dict[str, Any]:
        """Create process webhook: ``enabled_events`` ⊆ process_run.started/completed/unresolved."""
        m = "create_webhook"
        if isinstance(enabled_events, str) or not isinstance(enabled_events, Sequence) or not enabled_events:
            raise RobocorpConfigError(f"{m}(): enabled_events must be a non-empty list of: {', '.join(WEBHOOK_EVENTS)}.")
        for event in enabled_events:
            _check_choice(event, WEBHOOK_EVENTS, "enabled_events item", m)
        return self._call(m, json_body={
            "endpoint": _check_push_url(endpoint, "endpoint", m),
            "enabled_events": list(enabled_events),
            "process": {"id": _check_str(process_id, "process_id", m)},
        })

    def delete_webhook(self, webhook_id: str) -> dict[str, Any]:
        """Delete webhook."""
        return self._call("delete_webhook", webhook_id=webhook_id)

    # --- work items --------------------------------------------------------------------------

    def list_work_items(
        self,
        process_id: str | None = None,
        process_run_id: str | None = None,
        state: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """List work items filtered by process, process run and/or state, lazily."""
        return self._list("list_work_items", params=_work_item_filters(process_id, process_run_id, state, limit))

    def get_work_item(self, work_item_id: str, include_data: bool = False) -> dict[str, Any]:
        """Get work item; ``include_data=True`` also returns its payload and files."""
        return self._call("get_work_item", params={"include_data": True} if include_data else None,
                          work_item_id=work_item_id)

    def create_work_item(self, process_id: str, payload: Any = None) -> dict[str, Any]:
        """Create work item in the process's input queue."""
        body = {"process": {"id": _check_str(process_id, "process_id", "create_work_item")}, "payload": payload}
        return self._call("create_work_item", json_body=body)

    def create_work_item_file(self, work_item_id: str, file_name: str, file_size: int) -> dict[str, Any]:
        """Create work item file: returns ``{"upload": {"url", "form_data"}}`` for the multipart upload."""
        m = "create_work_item_file"
        if isinstance(file_size, bool) or not isinstance(file_size, int) or file_size < 0:
            raise RobocorpConfigError(f"{m}(): file_size must be a whole number of bytes ≥ 0, got {file_size!r}.")
        body = {"file_name": check_file_name(file_name, "file_name", m), "file_size": file_size}
        return self._call(m, json_body=body, work_item_id=work_item_id)

    def update_work_item_payload(self, work_item_id: str, payload: Any) -> dict[str, Any]:
        """Update work item payload (any JSON value but ``null``: the API document types it ``JSON``)."""
        if payload is None:
            raise RobocorpConfigError(
                "update_work_item_payload(): payload=None is not allowed (the API takes a JSON value, not null); "
                "pass {} for an empty payload. Nothing was sent."
            )
        return self._call("update_work_item_payload", json_body={"payload": payload}, work_item_id=work_item_id)

    def batch_work_items(self, operation: str, work_item_ids: Sequence[str]) -> dict[str, Any]:
        """Retry, delete or mark work items as done (``operation``: retry | delete | mark_as_done)."""
        m = "batch_work_items"
        _check_choice(operation, BATCH_OPERATIONS, "operation", m)
        return self._call(m, json_body={"batch_operation": operation,
                                        "work_item_ids": _check_ids(work_item_ids, "work_item_ids", m)})

    # --- workers and groups ------------------------------------------------------------------

    def list_workers(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List workers, lazily."""
        return self._list("list_workers", params={"limit": _check_limit(limit, "list_workers")})

    def get_worker(self, worker_id: str) -> dict[str, Any]:
        """Get worker."""
        return self._call("get_worker", worker_id=worker_id)

    def update_worker(self, worker_id: str, name: str) -> dict[str, Any]:
        """Update worker (its name)."""
        return self._call("update_worker", json_body={"name": _check_str(name, "name", "update_worker")},
                          worker_id=worker_id)

    def delete_worker(self, worker_id: str) -> dict[str, Any]:
        """Delete worker."""
        return self._call("delete_worker", worker_id=worker_id)

    def list_worker_groups(self, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """List worker groups, lazily."""
        return self._list("list_worker_groups", params={"limit": _check_limit(limit, "list_worker_groups")})

    def get_worker_group(self, worker_group_id: str) -> dict[str, Any]:
        """Get worker group."""
        return self._call("get_worker_group", worker_group_id=worker_group_id)

    def create_worker_group(self, name: str) -> dict[str, Any]:
        """Create worker group."""
        return self._call("create_worker_group", json_body={"name": _check_str(name, "name", "create_worker_group")})

    def update_worker_group(self, worker_group_id: str, name: str) -> dict[str, Any]:
        """Update worker group (its name)."""
        return self._call("update_worker_group", json_body={"name": _check_str(name, "name", "update_worker_group")},
                          worker_group_id=worker_group_id)

    def delete_worker_group(self, worker_group_id: str) -> dict[str, Any]:
        """Delete worker group."""
        return self._call("delete_worker_group", worker_group_id=worker_group_id)

    def add_worker_to_group(self, worker_group_id: str, worker_id: str) -> dict[str, Any]:
        """Add worker to worker group."""
        body = {"worker": {"id": _check_str(worker_id, "worker_id", "add_worker_to_group")}}
        return self._call("add_worker_to_group", json_body=body, worker_group_id=worker_group_id)

    def remove_worker_from_group(self, worker_group_id: str, worker_id: str) -> dict[str, Any]:
        """Remove worker from worker group."""
        return self._call("remove_worker_from_group", worker_group_id=worker_group_id, worker_id=worker_id)

    # --- helpers shared by operators ---------------------------------------------------------

    def process_run_url(self, process_id: str, process_run_id: str, step_run_id: str | None = None) -> str:
        """The Control Room web page of a process run (organization id from Get workspace, cached)."""
        if self._organization_id is None:
            self._organization_id = str((self.get_workspace().get("organization") or {})["id"])
        return process_run_web_url(self.settings.origin, self._organization_id, self.workspace_id,
                                   process_id, process_run_id, step_run_id)

    def work_item_counts(self, process_run_id: str) -> dict[str, int]:
        """How many of a run's work items are in each state (plus ``total``), for progress lines."""
        return self.count_run_work_items(process_run_id)[0]

    def count_run_work_items(self, process_run_id: str) -> tuple[dict[str, int], int]:
        """:meth:`work_item_counts` and how many list requests it took: pages of
        ``COUNT_PAGE_SIZE`` items (the server's default page size if it refuses that)."""
        counts, requests = count_work_items(), 0
        try:
            for page in self._transport.pages(self._count_request(process_run_id)):
                requests += 1
                for item in page:
                    count_work_item(counts, item)
        except RobocorpBadRequestError:
            if requests or not self._refuse_count_limit():
                raise
            return self.count_run_work_items(process_run_id)
        return counts, requests

    def _refuse_count_limit(self) -> bool:
        """After a 400 to the counting page size: fall back to the server's default (once)."""
        if self.__dict__.get("_count_limit_refused"):
            return False
        self.__dict__["_count_limit_refused"] = True
        return True

    def _count_request(self, process_run_id: str) -> ApiRequest:
        limit = None if self.__dict__.get("_count_limit_refused") else COUNT_PAGE_SIZE
        return self._request("list_work_items", params=_work_item_filters(None, process_run_id, None, limit))

    def describe_unresolved_run(
        self, process_run_id: str, *, max_items: int = 10, max_console_messages: int = 200
    ) -> dict[str, Any]:
        """What went wrong in a run, as JSON: the failed work items (first ``max_items``, with the
        total count) and the step runs that failed or processed a failed item, each with its error
        code and the last ``max_console_messages`` console messages. A section that cannot be
        fetched is named in ``problems`` instead of hiding the run's own failure."""
        report: dict[str, Any] = {"failed_work_items": [], "failed_work_item_count": 0, "step_runs": [],
                                  "problems": []}
        step_run_ids: set[str] = set()
        try:
            for item in self.list_work_items(process_run_id=process_run_id, state="failed"):
                report["failed_work_item_count"] += 1
                if len(report["failed_work_items"]) < max_items:
                    report["failed_work_items"].append(failed_work_item(item))
                step_run_ids.add(str((item.get("step_run") or {}).get("id")))
        except RobocorpError as err:
            report["problems"].append(f"failed work items could not be listed: {err}")
        try:
            for step_run in self.list_step_runs(process_run_id):
                if step_run.get("state") != "failed" and str(step_run.get("id")) not in step_run_ids:
                    continue
                step_run_id = str(step_run.get("id"))
                entry: dict[str, Any] = {
                    "id": step_run_id,
                    "name": (step_run.get("step") or {}).get("name"),
                    "state": step_run.get("state"),
                    "error_code": (step_run.get("error") or {}).get("code"),
                    "console": [],
                }
                report["step_runs"].append(entry)
                try:
                    console = deque(self.list_step_run_console_messages(step_run_id), maxlen=max_console_messages)
                    entry["console"] = [clip(m.get("message"), 2000) for m in console]
                except RobocorpError as err:
                    report["problems"].append(f"console of step run {step_run_id} could not be read: {err}")
        except RobocorpError as err:
            report["problems"].append(f"step runs could not be listed: {err}")
        return report

    def wait_for_process_run(
        self,
        process_run_id: str,
        *,
        poll_interval: float = 10.0,
        timeout: float | None = None,
        deadline: float | None = None,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        accepted_states: Sequence[str] = ("completed",),
    ) -> dict[str, Any]:
        """Poll Get process run until it ends; return the run if it ended in ``accepted_states``.

        :param deadline: absolute ``time.time()`` limit (``timeout`` is relative). On expiry
            :class:`ProcessRunTimeoutError` is raised (the run is left as it is).
        :param on_poll: called with the run after every poll (e.g. to log progress).
        :raises ProcessRunFailedError: the run ended in a state not in ``accepted_states``.
        """
        m = "wait_for_process_run(): "
        poll_interval = positive_seconds(poll_interval, m + "poll_interval")
        if timeout is not None:
            timeout = positive_seconds(timeout, m + "timeout")
        if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, int | float)
                                     or not math.isfinite(deadline)):
            raise RobocorpConfigError(f"{m}deadline must be a finite epoch time in seconds, got {deadline!r}.")
        if timeout is not None:
            deadline = min(deadline or float("inf"), time.time() + timeout)
        while True:
            run = self.get_process_run(process_run_id)
            if on_poll:
                on_poll(run)
            state = run.get("state")
            if state in TERMINAL_PROCESS_RUN_STATES:
                if state not in accepted_states:
                    raise ProcessRunFailedError(f"Process run {process_run_id} ended {state}.", process_run=run)
                return run
            if state not in PROCESS_RUN_STATES:
                raise ProcessRunFailedError(
                    f"Process run {process_run_id} is in unknown state {state!r}; refusing to guess.", process_run=run
                )
            if deadline is not None and time.time() + poll_interval > deadline:
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise ProcessRunTimeoutError(
                        f"Process run {process_run_id} did not finish before the deadline (last state: {state})."
                    )
                time.sleep(remaining)
                continue
            time.sleep(poll_interval)

    def upload_asset(
        self,
        name: str,
        *,
        file_path: str | os.PathLike[str] | None = None,
        data: bytes | str | None = None,
        content_type: str = "application/octet-stream",
        create_if_missing: bool = True,
        wait: bool = True,
        poll_interval: float = 1.0,
        timeout: float = 600.0,
    ) -> dict[str, Any]:
        """Put content into the asset ``name`` (created if missing); returns ``{"asset", "upload"}``.

        Content that base64-encodes to under 5 MB is sent inline; larger content is streamed with a
        ``PUT`` to the upload URL (with ``Content-Length``). With ``wait`` the upload is polled until
        ``completed``; ``failed`` raises with the server's ``reason``.
        """
        m = "upload_asset"
        _check_str(name, "name", m)
        poll_interval, timeout = positive_seconds(poll_interval, f"{m}(): poll_interval"), positive_seconds(
            timeout, f"{m}(): timeout")
        _check_str(content_type, "content_type", m)
        if (file_path is None) == (data is None):
            raise RobocorpConfigError(f"{m}(): pass exactly one of file_path or data.")
        file = _readable_file(file_path, m) if file_path is not None else None
        raw = data.encode() if isinstance(data, str) else data
        if raw is not None and not isinstance(raw, bytes | bytearray):
            raise RobocorpConfigError(f"{m}(): data must be bytes or str, got {type(data).__name__}.")
        size = file.stat().st_size if file is not None else len(raw or b"")
        asset = self._get_or_create_asset(name, create_if_missing)
        asset_id = asset["id"]
        if 4 * ((size + 2) // 3) < INLINE_UPLOAD_LIMIT:
            content = file.read_bytes() if file is not None else bytes(raw or b"")
            upload = self.create_asset_upload(asset_id, content_type, data=content)
        else:
            upload = self.create_asset_upload(asset_id, content_type)
            if not upload.get("upload_url"):
                raise RobocorpError(f"{m}(): Control Room returned no upload_url for a {size}-byte upload.")
            self.put_presigned(upload["upload_url"], file if file is not None else bytes(raw or b""), content_type)
        if wait:
            upload = self._wait_for_asset_upload(asset_id, upload, poll_interval, timeout)
        return {"asset": asset, "upload": upload}

    def _get_or_create_asset(self, name: str, create_if_missing: bool) -> dict[str, Any]:
        try:
            return self.get_asset(f"name:{name}")
        except RobocorpNotFoundError:
            if not create_if_missing:
                raise
        try:
            return self.create_asset(name)
        except RobocorpConflictError:  # created concurrently by someone else
            return self.get_asset(f"name:{name}")

    def _wait_for_asset_upload(self, asset_id: str, upload: dict[str, Any], poll_interval: float,
                               timeout: float) -> dict[str, Any]:
        deadline = time.time() + timeout
        while upload.get("status") == "pending":
            if time.time() > deadline:
                raise ProcessRunTimeoutError(f"Asset upload {upload.get('id')} still pending after {timeout:g} s.")
            time.sleep(poll_interval)
            upload = self.get_asset_upload(asset_id, upload["id"])
        if upload.get("status") != "completed":
            raise RobocorpError(
                f"Asset upload {upload.get('id')} {upload.get('status')}: {upload.get('reason') or 'no reason given'}."
            )
        return upload

    def download_asset(self, asset_id: str, dest_path: str | os.PathLike[str] | None = None) -> bytes | str:
        """Download an asset's content (``asset_id`` may be ``name:<asset name>``).

        Returns the bytes, or, with ``dest_path``, streams to that file and returns its path.
        """
        asset = self.get_asset(asset_id)
        payload = asset.get("payload") or {}
        if payload.get("type") != "url" or not payload.get("url"):
            raise RobocorpError(f"Asset {asset.get('name') or asset_id!r} has no content yet (payload type "
                                f"{payload.get('type')!r}); upload something first.")
        return self.download_presigned(payload["url"], dest_path)

    def download_presigned(self, url: str, dest_path: str | os.PathLike[str] | None = None) -> bytes | str:
        """GET a pre-signed URL (asset, work item file, artifact) without the API key."""
        target = None
        if dest_path is not None:
            target = Path(dest_path)
            if target.is_dir():
                raise RobocorpConfigError(f"download: dest_path {str(target)!r} is a directory; give the path of the "
                                          "file to write (e.g. its name inside that directory).")
            if not target.parent.is_dir():
                raise RobocorpConfigError(f"download: the directory of dest_path {str(target)!r} does not exist.")
        request = ApiRequest(method="GET", url=_check_url(url, "url", "download"), auth=False)
        return self._transport.download(request, target)

    def put_presigned(self, url: str, content: Path | bytes, content_type: str) -> None:
        """PUT bytes or a file to a pre-signed upload URL, streamed, with ``Content-Length``."""
        body: bytes | Callable[[], FileBody] = content if isinstance(content, bytes) else lambda: FileBody(content)
        request = ApiRequest(method="PUT", url=_check_url(url, "upload_url", "upload"), body=body,
                             headers={"Content-Type": content_type}, auth=False)
        self._transport.send(request)

    def upload_work_item_file(
        self, work_item_id: str, file_path: str | os.PathLike[str], file_name: str | None = None
    ) -> dict[str, Any]:
        """Attach a file to a work item: Create work item file, then a streamed multipart POST of
        every ``form_data`` field plus the ``file`` part to the pre-signed URL. Returns the
        ``upload`` description."""
        file = _readable_file(file_path, "upload_work_item_file")
        name = check_file_name(file_name or file.name, "file_name", "upload_work_item_file")
        answer = self.create_work_item_file(work_item_id, name, file.stat().st_size)
        upload = answer.get("upload") or {}
        if not upload.get("url"):
            raise RobocorpError(f"Create work item file for {work_item_id} returned no upload URL.")
        fields = {str(k): str(v) for k, v in (upload.get("form_data") or {}).items()}
        boundary = new_boundary()

        def body() -> IO[bytes]:
            return MultipartStream(fields, name, file, boundary)  # type: ignore[return-value]

        request = ApiRequest(method="POST", url=_check_url(upload["url"], "upload.url", "upload"), body=body,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}, auth=False)
        self._transport.send(request)
        return upload

    # --- async (triggers) --------------------------------------------------------------------

    async def _async_transport(self) -> AsyncTransport:
        if self._async is None:
            from airflow_provider_robocorp.hooks._shared import SHARED
            from airflow_provider_robocorp.hooks._transport import AsyncTransport

            async def resolve() -> ConnectionSettings:
                return self._settings_for(await self.aget_connection(self.robocorp_conn_id))

            # Triggers in one triggerer share the resolved connection and the TLS context.
            key = (self.robocorp_conn_id, self._workspace_id, self._timeout, self._max_retries, self._page_size)
            lease = await SHARED.lease(key, resolve, self.__dict__.get("settings"))
            self.__dict__["settings"] = lease.settings
            try:
                self._async = AsyncTransport(lease.settings, tls_context=lease.tls_context)
            except BaseException:
                lease.release()
                raise
            self._lease = lease
        return self._async

    async def aclose(self) -> None:
        """Close the async client and release what it shared with other triggers."""
        if self._async is not None:
            transport, self._async = self._async, None
            try:
                await transport.aclose()
            finally:
                if self._lease is not None:
                    self._lease.release()
                    self._lease = None

    async def _acall(self, endpoint: str, *, json_body: Any = NO_BODY, **path: str) -> Any:
        transport = await self._async_transport()
        return await transport.send(self.settings.build(endpoint, path, json_body=json_body))

    async def _alist(self, endpoint: str, *, params: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
        transport = await self._async_transport()
        async for item in transport.paginate(self.settings.build(endpoint, params=self._paged(params))):
            yield item

    async def aget_workspace(self) -> dict[str, Any]:
        """Async Get workspace."""
        return await self._acall("get_workspace")

    async def aget_process_run(self, process_run_id: str) -> dict[str, Any]:
        """Async Get process run."""
        return await self._acall("get_process_run", process_run_id=process_run_id)

    async def astop_process_run(
        self,
        process_run_id: str,
        set_remaining_work_items_as_done: bool = False,
        terminate_ongoing_activity_runs: bool = True,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Async Stop process run (for a trigger's ``on_kill``)."""
        body = _stop_body(set_remaining_work_items_as_done, terminate_ongoing_activity_runs, reason)
        return await self._acall("stop_process_run", json_body=body, process_run_id=process_run_id)

    def alist_process_runs(
        self, process_id: str | None = None, state: str | None = None, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Async List process runs (newest first), lazily: one page in memory."""
        return self._alist("list_process_runs", params=_process_run_filters(process_id, state, limit))

    def alist_work_items(
        self, process_id: str | None = None, process_run_id: str | None = None, state: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Async List work items."""
        return self._alist("list_work_items", params=_work_item_filters(process_id, process_run_id, state, limit))

    async def awork_item_counts(self, process_run_id: str) -> dict[str, int]:
        """Async :meth:`work_item_counts`."""
        return (await self.acount_run_work_items(process_run_id))[0]

    async def acount_run_work_items(self, process_run_id: str) -> tuple[dict[str, int], int]:
        """Async :meth:`count_run_work_items`."""
        transport = await self._async_transport()
        counts, requests = count_work_items(), 0
        pages = transport.pages(self._count_request(process_run_id))
        try:
            async for page in pages:  # one page in memory
                requests += 1
                for item in page:
                    count_work_item(counts, item)
        except RobocorpBadRequestError:
            if requests or not self._refuse_count_limit():
                raise
            return await self.acount_run_work_items(process_run_id)
        finally:
            await pages.aclose()
        return counts, requests

    def alist_step_runs(self, process_run_id: str, limit: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Async List step runs."""
        m = "list_step_runs"
        return self._alist(m, params={"process_run_id": _check_str(process_run_id, "process_run_id", m),
                                      "limit": _check_limit(limit, m)})


def _mask(secret: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDKs
        return
    mask_secret(secret)


def _stop_body(set_remaining_work_items_as_done: bool, terminate_ongoing_activity_runs: bool,
               reason: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "set_remaining_work_items_as_done": bool(set_remaining_work_items_as_done),
        "terminate_ongoing_activity_runs": bool(terminate_ongoing_activity_runs),
    }
    if reason is not None:
        body["reason"] = _check_str(reason, "reason", "stop_process_run")
    return body


def _process_run_filters(process_id: str | None, state: str | None, limit: int | None) -> dict[str, Any]:
    m = "list_process_runs"
    if process_id is not None:
        _check_str(process_id, "process_id", m)
    if state is not None:
        _check_choice(state, PROCESS_RUN_STATES, "state", m)
    return {"process_id": process_id, "state": state, "limit": _check_limit(limit, m)}


def _work_item_filters(process_id: str | None, process_run_id: str | None, state: str | None,
                       limit: int | None) -> dict[str, Any]:
    m = "list_work_items"
    if process_id is not None:
        _check_str(process_id, "process_id", m)
    if process_run_id is not None:
        _check_str(process_run_id, "process_run_id", m)
    if state is not None:
        _check_choice(state, WORK_ITEM_STATES, "state", m)
    return {"process_id": process_id, "process_run_id": process_run_id, "state": state,
            "limit": _check_limit(limit, m)}


def process_run_web_url(origin: str, organization_id: str, workspace_id: str, process_id: str,
                        process_run_id: str, step_run_id: str | None = None) -> str:
    """Control Room's web page for a run: ``<origin>/organizations/…/runs/<id>[/stepRuns/<id>]``."""
    url = (f"{origin}/organizations/{organization_id}/workspaces/{workspace_id}"
           f"/processes/{process_id}/runs/{process_run_id}")
    return f"{url}/stepRuns/{step_run_id}" if step_run_id else url
