"""Where the operators reach the OpenLineage facets: only when Airflow's OpenLineage listener asks,
and only if ``apache-airflow-providers-openlineage`` is installed (else ``None``: no lineage)."""

from __future__ import annotations

from types import ModuleType


def openlineage_module() -> ModuleType | None:
    """``airflow_provider_robocorp.openlineage``, or None without the OpenLineage provider."""
    try:
        from airflow_provider_robocorp import openlineage
    except ImportError:
        return None
    return openlineage
