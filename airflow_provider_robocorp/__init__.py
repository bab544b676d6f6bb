"""Apache Airflow provider for Robocorp Control Room."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Provider metadata read by Airflow's provider manager (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-robocorp",
        "name": "Robocorp Control Room",
        "description": "Run Robocorp Control Room process runs, work items and assets from Apache Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Robocorp Control Room",
                "external-doc-url": "https://robocorp.com/docs/control-room",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Robocorp Control Room",
                "python-modules": ["airflow_provider_robocorp.hooks.robocorp"],
            }
        ],
        "operators": [
            {
                "integration-name": "Robocorp Control Room",
                "python-modules": [
                    "airflow_provider_robocorp.operators.process_runs",
                    "airflow_provider_robocorp.operators.stop_process_run",
                    "airflow_provider_robocorp.operators.work_items",
                    "airflow_provider_robocorp.operators.assets",
                    "airflow_provider_robocorp.operators.review",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Robocorp Control Room",
                "python-modules": ["airflow_provider_robocorp.sensors.process_run"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Robocorp Control Room",
                "python-modules": [
                    "airflow_provider_robocorp.triggers.process_run",
                    "airflow_provider_robocorp.triggers.process_run_events",
                ],
            }
        ],
        "asset-uris": [
            {
                "schemes": ["robocorp"],
                "handler": "airflow_provider_robocorp.assets.normalize_uri",
                "factory": "airflow_provider_robocorp.assets.create_asset",
                "to_openlineage_converter": "airflow_provider_robocorp.assets.to_openlineage_dataset",
            }
        ],

        "extra-links": ["airflow_provider_robocorp.links.ControlRoomProcessRunLink"],
        "connection-types": [
            {
                "connection-type": "robocorp",
                "hook-class-name": "airflow_provider_robocorp.hooks.robocorp.RobocorpHook",
                "hook-name": "Robocorp Control Room",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "login": "Workspace ID",
                        "password": "API key",
                        "host": "API base URL",
                    },
                    "placeholders": {
                        "login": "Workspace ID from Control Room (Configuration → API keys)",
                        "password": "API key (the RC-WSKEY prefix is optional)",
                        "host": "empty = https://cloud.robocorp.com/api/v1/ (SSO: https://<sub>.robocorp.com/api/v1/)",
                        "extra": '{"timeout": 60, "max_retries": 5}',
                    },
                },
                "conn-fields": {
                    "timeout": {
                        "label": "Request timeout (s)",
                        "description": "Seconds to wait for each Control Room answer (default 60).",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of transient failures: 429, 5xx, connection errors (default 5).",
                        "schema": {"type": ["integer", "null"], "minimum": 0},
                    },
                    "backoff_initial": {
                        "label": "Initial back-off (s)",
                        "description": "Wait before the first retry; doubles per retry, with jitter (default 1).",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "backoff_max": {
                        "label": "Max back-off (s)",
                        "description": "Longest wait between two retries (default 60).",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "page_size": {
                        "label": "Page size",
                        "description": "Items per page for list calls that set no limit (empty: the server's default).",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "verify": {
                        "label": "Verify TLS",
                        "description": "Verify the server's TLS certificate (a CA bundle path can be given in Extra).",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "proxies": {
                        "label": "Proxy URL",
                        "description": "HTTPS proxy, e.g. http://proxy:3128 (or a JSON object per scheme in Extra).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
