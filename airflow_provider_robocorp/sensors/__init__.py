"""Sensors of the Robocorp Control Room provider."""

from airflow_provider_robocorp.sensors.process_run import ProcessRunSensor

__all__ = ["ProcessRunSensor"]
