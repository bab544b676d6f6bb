"""The ``robocorp://`` asset URIs: builders, Airflow's normaliser and factory (no I/O, no connection).

One canonical URI per thing a DAG can depend on:

* ``robocorp://<workspace_id>/processes/<process_id>`` — runs of a process that ended
  (``StartProcessRunOperator``, the ``ProcessRunEventTrigger`` watcher, the webhook plugin);
* ``robocorp://<workspace_id>/processes/<process_id>/work-items`` — the process's work item queue
  (``CreateWorkItemOperator``; a lineage dataset);
* ``robocorp://<workspace_id>/assets/<asset_name>`` — a Control Room asset (``AssetUploadOperator``).

Ids are used as they are; an asset name is percent-encoded (a name may hold spaces or ``/``), so
``robocorp_asset_uri(ws, "daily report")`` is ``robocorp://<ws>/assets/daily%20report``. DAG files
build the URIs with the helpers below: nothing here reads a connection or calls Control Room.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from airflow.sdk import Asset

SCHEME = "robocorp"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]*$")
_FORMS = (
    "robocorp://<workspace_id>/processes/<process_id>, "
    "robocorp://<workspace_id>/processes/<process_id>/work-items or "
    "robocorp://<workspace_id>/assets/<asset_name>"
)


def _check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ID.match(value) or value in (".", ".."):
        raise ValueError(
            f"{what}={value!r} is not a Control Room id (letters, digits, '.', '_', '~', '-'; "
            "not empty, no '/', no spaces)."
        )
    return value


def _encode_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"asset_name={name!r} is not a Control Room asset name (a non-empty string without "
                         "control characters).")
    return urllib.parse.quote(name, safe="")


def process_uri(workspace_id: str, process_id: str) -> str:
    """URI of the process runs of ``process_id`` (an event on it = a run of the process ended)."""
    return f"{SCHEME}://{_check_id(workspace_id, 'workspace_id')}/processes/{_check_id(process_id, 'process_id')}"


def work_item_queue_uri(workspace_id: str, process_id: str) -> str:
    """URI of the work item queue of ``process_id`` (what ``CreateWorkItemOperator`` writes)."""
    return process_uri(workspace_id, process_id) + "/work-items"


def robocorp_asset_uri(workspace_id: str, asset_name: str) -> str:
    """URI of the Control Room asset called ``asset_name``."""
    return f"{SCHEME}://{_check_id(workspace_id, 'workspace_id')}/assets/{_encode_name(asset_name)}"


def process_asset(workspace_id: str, process_id: str, **kwargs: Any) -> Asset:
    """An Airflow ``Asset`` for the runs of a process: ``schedule=[process_asset(ws, "proc-id")]``."""
    from airflow.sdk import Asset

    return Asset(uri=process_uri(workspace_id, process_id), **kwargs)


def control_room_asset(workspace_id: str, asset_name: str, **kwargs: Any) -> Asset:
    """An Airflow ``Asset`` for a Control Room asset: ``schedule=[control_room_asset(ws, "rates")]``."""
    from airflow.sdk import Asset

    return Asset(uri=robocorp_asset_uri(workspace_id, asset_name), **kwargs)


def parse_uri(uri: str) -> dict[str, str]:
    """Split a canonical ``robocorp://`` URI into its parts (``kind`` is ``process``,
    ``work_item_queue`` or ``asset``); a malformed URI is a ``ValueError`` naming the valid forms."""
    parts = urllib.parse.urlsplit(uri)
    return _parse(parts, uri)


def _parse(parts: SplitResult, original: str) -> dict[str, str]:
    def bad(why: str) -> ValueError:
        return ValueError(f"{original!r} is not a valid robocorp asset URI: {why}. Use {_FORMS}.")

    if parts.scheme.lower() != SCHEME:
        raise bad(f"the scheme is {parts.scheme!r}, not 'robocorp'")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise bad("it must not have a query, a fragment, user info or a port")
    if not parts.netloc:
        raise bad("the workspace id (the URI's host part) is missing")
    try:
        workspace_id = _check_id(parts.netloc, "workspace_id")
    except ValueError as err:
        raise bad(str(err)) from None
    segments = parts.path.strip("/").split("/") if parts.path.strip("/") else []
    try:
        if len(segments) == 2 and segments[0] == "processes":
            return {"kind": "process", "workspace_id": workspace_id, "process_id": _check_id(segments[1], "process_id")}
        if len(segments) == 3 and segments[0] == "processes" and segments[2] == "work-items":
            return {"kind": "work_item_queue", "workspace_id": workspace_id,
                    "process_id": _check_id(segments[1], "process_id")}
        if len(segments) == 2 and segments[0] == "assets":
            name = urllib.parse.unquote(segments[1])
            _encode_name(name)
            return {"kind": "asset", "workspace_id": workspace_id, "asset_name": name}
    except ValueError as err:
        raise bad(str(err)) from None
    raise bad(f"the path {parts.path!r} names no process, work item queue or asset")


def _canonical(parsed: dict[str, str]) -> str:
    if parsed["kind"] == "asset":
        return robocorp_asset_uri(parsed["workspace_id"], parsed["asset_name"])
    if parsed["kind"] == "work_item_queue":
        return work_item_queue_uri(parsed["workspace_id"], parsed["process_id"])
    return process_uri(parsed["workspace_id"], parsed["process_id"])


def normalize_uri(parts: SplitResult) -> SplitResult:
    """Airflow's ``asset-uris`` handler: the canonical form, or a ``ValueError`` saying what is wrong.

    The asset name is re-encoded one way (``a b`` and ``a%20b`` are the same asset)."""
    original = urllib.parse.urlunsplit(parts)
    return urllib.parse.urlsplit(_canonical(_parse(parts, original)))


def create_asset(
    *,
    workspace_id: str,
    process_id: str | None = None,
    asset_name: str | None = None,
    work_items: bool = False,
    extra: dict[str, Any] | None = None,
) -> Asset:
    """Airflow's ``asset-uris`` factory: exactly one of ``process_id`` / ``asset_name``."""
    from airflow.sdk import Asset

    if (process_id is None) == (asset_name is None):
        raise ValueError("create_asset(): pass exactly one of process_id= or asset_name=.")
    if asset_name is not None:
        if work_items:
            raise ValueError("create_asset(): work_items=True goes with process_id=, not asset_name=.")
        uri = robocorp_asset_uri(workspace_id, asset_name)
    else:
        assert process_id is not None
        uri = work_item_queue_uri(workspace_id, process_id) if work_items else process_uri(workspace_id, process_id)
    return Asset(uri=uri, extra=extra or {})


def to_openlineage_dataset(asset: Asset, lineage_context: Any = None) -> Any:
    """Airflow's ``asset-uris`` OpenLineage converter: namespace ``robocorp://<workspace_id>``,
    name ``processes/<id>``, ``processes/<id>/work-items`` or ``assets/<name>``."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urllib.parse.urlsplit(_canonical(parse_uri(asset.uri)))
    return Dataset(namespace=f"{SCHEME}://{parts.netloc}", name=urllib.parse.unquote(parts.path.lstrip("/")))
