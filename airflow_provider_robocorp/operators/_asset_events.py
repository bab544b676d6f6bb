"""Asset events from the operators: a run that completed, an upload that completed.

The workspace id is only known once the connection is read (at run time, never at parse time), so
an operator declares an ``AssetAlias`` as its outlet and adds the real ``robocorp://`` asset to it
when it succeeds; a DAG scheduled on that asset (``schedule=[process_asset(ws, "proc")]``) runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

if TYPE_CHECKING:
    from airflow.sdk import Context


def outlet_alias(conn_id: str) -> AssetAlias:
    """The alias through which operators on ``conn_id`` emit their ``robocorp://`` asset events."""
    return AssetAlias(name=f"robocorp:{conn_id}")


def emit(context: Context, alias: AssetAlias, uri: str, extra: dict[str, Any], log: Any) -> None:
    """Record an asset event for ``uri`` with ``extra`` (part of the task's successful end)."""
    events = context.get("outlet_events")
    if events is None:  # execute() called outside a task run (e.g. op.execute({}))
        return
    events[alias].add(Asset(uri=uri), extra=extra)
    log.info("Asset event for %s: %s", uri, extra)
