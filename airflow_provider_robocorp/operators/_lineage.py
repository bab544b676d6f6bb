"""Where the operators reach the OpenLineage facets: only when Airflow's OpenLineage listener asks,
and only if ``apache-airflow-providers-openlineage`` is installed (else ``None``: no lineage)."""

from __future__ import annotations

from types import ModuleType
from typing import Any


def openlineage_module() -> ModuleType | None:
    """``airflow_provider_robocorp.openlineage``, or None without the OpenLineage provider."""
    try:
        from airflow_provider_robocorp import openlineage
    except ImportError:
        return None
    return openlineage


def process_run_lineage_of(operator: Any, error: str | None) -> Any:
    """The OpenLineage of a StartProcessRunOperator after its run (None without the provider)."""
    ol = openlineage_module()
    if ol is None:
        return None
    run_id = operator._run_id
    url = operator._run_url_value or (operator._run_url(run_id) if run_id else None)
    ids = (operator._arguments or {}).get("work_item_ids")
    return ol.process_run_lineage(operator.hook.workspace_id, str(operator.process_id), run_id=run_id, run_url=url,
                                  state=operator._final_state, work_item_ids=list(ids) if ids else None, error=error)
