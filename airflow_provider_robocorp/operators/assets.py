"""Operators that put content into Control Room assets and get it back."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_robocorp.assets import robocorp_asset_uri
from airflow_provider_robocorp.exceptions import RobocorpConfigError, RobocorpError
from airflow_provider_robocorp.hooks._pipeline import positive_seconds
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.operators._asset_events import emit, outlet_alias
from airflow_provider_robocorp.operators._lineage import openlineage_module

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Largest asset content AssetDownloadOperator returns as XCom; bigger content needs ``dest_path``.
MAX_XCOM_BYTES = 1024 * 1024


class AssetUploadOperator(BaseOperator):
    """Put a file or some data into an asset (created if missing); returns the asset id.

    Content that base64-encodes to under 5 MB is sent inline, larger content is streamed with a
    PUT to the upload URL. The upload is then polled until ``completed``; ``failed`` fails the task
    with Control Room's ``reason``.

    :param asset_name: the asset. Templated.
    :param file_path: a file to upload. Templated.
    :param data: text, bytes, or a dict/list (sent as JSON). Templated.
    :param content_type: default: guessed from the file name; ``text/plain`` for text,
        ``application/json`` for a dict/list, else ``application/octet-stream``.
    :param create_if_missing: create the asset when it does not exist (else fail).
    :param wait_for_completion: poll the upload until Control Room has processed it.
    :param poll_interval: seconds between upload status checks.
    :param timeout: how long to wait for the upload to complete.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID. Templated.
    :param emit_asset_events: when the upload completes, record an asset event for
        ``robocorp://<workspace_id>/assets/<asset_name>`` (extra: asset id, upload id, content
        type, size), so DAGs scheduled on that asset run. ``False`` turns it off.
    """

    template_fields: Sequence[str] = ("asset_name", "file_path", "data", "content_type", "workspace_id", "robocorp_conn_id")
    ui_color = "#f0e4d2"

    def __init__(
        self,
        *,
        asset_name: str,
        file_path: str | None = None,
        data: str | bytes | dict[str, Any] | list[Any] | None = None,
        content_type: str | None = None,
        create_if_missing: bool = True,
        wait_for_completion: bool = True,
        poll_interval: float | timedelta = 1.0,
        timeout: float | timedelta = 600.0,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        emit_asset_events: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.emit_asset_events = emit_asset_events
        # the alias is named at parse time (robocorp_conn_id may be a template rendered only later)
        self._outlet_alias = outlet_alias(robocorp_conn_id)
        if emit_asset_events:
            self.outlets = [*self.outlets, self._outlet_alias]
        self._done: dict[str, Any] | None = None
        if (file_path is None) == (data is None):
            raise RobocorpConfigError("AssetUploadOperator: pass exactly one of file_path or data.")
        self.asset_name = asset_name
        self.file_path = file_path
        self.data = data
        self.content_type = content_type
        self.create_if_missing = create_if_missing
        self.wait_for_completion = wait_for_completion
        self.poll_interval = positive_seconds(poll_interval, "poll_interval")
        self.timeout = positive_seconds(timeout, "timeout")
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id

    def _content(self) -> tuple[str | bytes | None, str]:
        """The data to send (``None`` for a file) and its content type."""
        if self.file_path is not None:
            guessed = mimetypes.guess_type(str(self.file_path))[0]
            return None, self.content_type or guessed or "application/octet-stream"
        if isinstance(self.data, dict | list):
            return json.dumps(self.data), self.content_type or "application/json"
        if isinstance(self.data, str):
            return self.data, self.content_type or "text/plain"
        if isinstance(self.data, bytes):
            return self.data, self.content_type or "application/octet-stream"
        raise RobocorpConfigError(f"data must be text, bytes, a dict or a list, got {type(self.data).__name__}.")

    def execute(self, context: Context) -> str:
        data, content_type = self._content()
        hook = RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)
        result = hook.upload_asset(
            self.asset_name,
            file_path=self.file_path,
            data=data,
            content_type=content_type,
            create_if_missing=self.create_if_missing,
            wait=self.wait_for_completion,
            poll_interval=self.poll_interval,
            timeout=self.timeout,
        )
        asset_id = str(result["asset"]["id"])
        upload = result["upload"]
        self._done = {"workspace_id": hook.workspace_id, "asset_id": asset_id, "upload_id": upload.get("id")}
        self.log.info("Uploaded %s to asset %r (%s); upload %s is %s.", content_type, self.asset_name, asset_id,
                      upload.get("id"), upload.get("status"))
        if self.emit_asset_events and upload.get("status") == "completed":
            size = Path(self.file_path).stat().st_size if self.file_path is not None else len(
                data.encode() if isinstance(data, str) else data or b"")
            emit(context, self._outlet_alias, robocorp_asset_uri(hook.workspace_id, self.asset_name),
                 {"asset_id": asset_id, "asset_name": self.asset_name, "upload_id": upload.get("id"),
                  "content_type": content_type, "size": size}, self.log)
        return asset_id


    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the local file (if any) in, the Control Room asset out."""
        ol = openlineage_module()
        if ol is None or self._done is None:
            return None
        return ol.asset_lineage(self._done["workspace_id"], self.asset_name, upload=True,
                                asset_id=self._done["asset_id"], upload_id=self._done["upload_id"],
                                local_path=self.file_path)


class AssetDownloadOperator(BaseOperator):
    """Download an asset's content.

    With ``dest_path`` the content is streamed to that file and the path is returned; without it,
    the content is returned as text (UTF-8, at most 1 MiB, since it becomes an XCom).

    :param asset_name: the asset, by name. Templated.
    :param asset_id: or by id. Templated.
    :param dest_path: file to write (parent directories are created). Templated.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID. Templated.
    """

    template_fields: Sequence[str] = ("asset_name", "asset_id", "dest_path", "workspace_id", "robocorp_conn_id")
    ui_color = "#f0e4d2"

    def __init__(
        self,
        *,
        asset_name: str | None = None,
        asset_id: str | None = None,
        dest_path: str | None = None,
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (asset_name is None) == (asset_id is None):
            raise RobocorpConfigError("AssetDownloadOperator: pass exactly one of asset_name or asset_id.")
        self.asset_name = asset_name
        self.asset_id = asset_id
        self.dest_path = dest_path
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = workspace_id
        self._hook: RobocorpHook | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the Control Room asset in, the local file (with ``dest_path``) out."""
        ol = openlineage_module()
        if ol is None or self._hook is None:
            return None
        name = self.asset_name if self.asset_name is not None else str(self._hook.get_asset(str(self.asset_id))["name"])
        return ol.asset_lineage(self._hook.workspace_id, name, upload=False, asset_id=self.asset_id,
                                local_path=self.dest_path)

    def execute(self, context: Context) -> str:
        reference = f"name:{self.asset_name}" if self.asset_name is not None else str(self.asset_id)
        hook = self._hook = RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)
        if self.dest_path:
            Path(self.dest_path).parent.mkdir(parents=True, exist_ok=True)
            path = str(hook.download_asset(reference, self.dest_path))
            self.log.info("Downloaded asset %s to %s (%d bytes).", reference, path, Path(path).stat().st_size)
            return path
        content = hook.download_asset(reference)
        raw = content.encode() if isinstance(content, str) else content
        if len(raw) > MAX_XCOM_BYTES:
            raise RobocorpError(f"Asset {reference} holds {len(raw)} bytes, too much for an XCom; set dest_path.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RobocorpError(f"Asset {reference} is not UTF-8 text; set dest_path to save it as a file.") from None
        self.log.info("Downloaded asset %s (%d bytes).", reference, len(raw))
        return text
