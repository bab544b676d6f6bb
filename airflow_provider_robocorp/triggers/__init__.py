"""Triggers of the Robocorp Control Room provider."""

from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

__all__ = ["ProcessRunTrigger"]
