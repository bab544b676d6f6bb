"""Triggers of the Robocorp Control Room provider (imported lazily: DAG parsing never needs them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

__all__ = ["ProcessRunTrigger"]


def __getattr__(name: str) -> Any:
    if name == "ProcessRunTrigger":
        from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

        return ProcessRunTrigger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
