"""Provider registration: ``get_provider_info()`` is valid for the installed Airflow, names the
installed distribution, and everything it points at imports; Airflow's own CLI finds it."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_provider_robocorp import __version__, get_provider_info

DIST = "airflow-provider-robocorp"
INFO = get_provider_info()


def _schema(name: str = "provider_info.schema.json") -> dict[str, Any]:
    return json.loads(importlib.resources.files("airflow").joinpath(name).read_text())


def test_validates_against_airflows_schema() -> None:
    jsonschema.validate(INFO, _schema())


def test_schema_check_is_not_vacuous() -> None:
    broken = {k: v for k, v in INFO.items() if k != "name"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _schema())


def test_package_name_and_version_match_the_distribution() -> None:
    dist = importlib.metadata.distribution(DIST)
    assert INFO["package-name"] == dist.metadata["Name"] == DIST
    assert INFO["versions"][0] == __version__ == dist.version


def test_entry_point_is_registered() -> None:
    eps = [ep for ep in importlib.metadata.entry_points(group="apache_airflow_provider") if ep.dist and ep.dist.name == DIST]
    assert len(eps) == 1
    assert eps[0].load() is get_provider_info


def _import_or_skip(module: str):
    """Import ``module``; skip only while it does not exist yet (another part of the provider)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not written yet")
    return importlib.import_module(module)


def _named_modules() -> list[str]:
    modules = []
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in INFO.get(section, []):
            modules.extend(entry["python-modules"])
    return modules


def _named_classes() -> list[str]:
    classes = list(INFO.get("extra-links", []))
    classes += [ct["hook-class-name"] for ct in INFO.get("connection-types", [])]
    return classes


@pytest.mark.parametrize("module", _named_modules())
def test_every_named_module_imports(module: str) -> None:
    _import_or_skip(module)


@pytest.mark.parametrize("dotted", _named_classes())
def test_every_named_class_imports(dotted: str) -> None:
    module_name, _, class_name = dotted.rpartition(".")
    module = _import_or_skip(module_name)
    assert isinstance(getattr(module, class_name), type)


def test_named_modules_cover_the_hook() -> None:
    assert "airflow_provider_robocorp.hooks.robocorp" in _named_modules()


def test_connection_type_matches_the_hook() -> None:
    from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

    (conn_type,) = INFO["connection-types"]
    assert conn_type["connection-type"] == RobocorpHook.conn_type == "robocorp"
    assert conn_type["hook-name"] == RobocorpHook.hook_name
    assert RobocorpHook.conn_name_attr == "robocorp_conn_id"
    assert RobocorpHook.default_conn_name == "robocorp_default"
    behaviour = RobocorpHook.get_ui_field_behaviour()  # what Airflow < 3.2 reads, in the hooks' snake_case
    jsonschema.validate(behaviour, _schema("customized_form_field_behaviours.schema.json"))
    declared = conn_type["ui-field-behaviour"]
    assert behaviour == {"hidden_fields": declared["hidden-fields"], "relabeling": declared["relabeling"],
                         "placeholders": declared["placeholders"]}
    assert set(conn_type["conn-fields"]) == {"timeout", "max_retries", "backoff_initial", "backoff_max", "page_size", "verify", "proxies"}


def _airflow(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_airflow_providers_list_finds_the_provider() -> None:
    providers = json.loads(_airflow("providers", "list", "-o", "json"))
    mine = [p for p in providers if p["package_name"] == DIST]
    assert mine and mine[0]["version"] == __version__


def test_airflow_providers_hooks_lists_the_connection_type() -> None:
    hooks = json.loads(_airflow("providers", "hooks", "-o", "json"))
    mine = [h for h in hooks if h["connection_type"] == "robocorp"]
    assert mine == [{
        "connection_type": "robocorp",
        "class": "airflow_provider_robocorp.hooks.robocorp.RobocorpHook",
        "conn_id_attribute_name": "robocorp_conn_id",
        "package_name": DIST,
        "hook_name": "Robocorp Control Room",
    }]


def test_connection_form_as_the_ui_builds_it() -> None:
    """The React UI's form for ``robocorp`` (Airflow ≥ 3.2 builds it from get_provider_info only;
    older ones take the standard fields from the hook and show no conn-fields: those go in Extra)."""
    services = pytest.importorskip("airflow.api_fastapi.core_api.services.ui.connections")
    metas = [m for m in services.HookMetaService.hook_meta_data() if m.connection_type == "robocorp"]
    assert len(metas) == 1
    form = metas[0].model_dump()
    standard = form["standard_fields"]
    assert standard["login"]["title"] == "Workspace ID"
    assert standard["password"]["title"] == "API key"
    assert standard["host"]["title"] == "API base URL"
    assert standard["port"]["hidden"] and standard["url_schema"]["hidden"]
    if Version(airflow_version) < Version("3.2"):
        assert form["extra_fields"] is None
        return
    assert set(form["extra_fields"]) == {"timeout", "max_retries", "backoff_initial", "backoff_max", "page_size", "verify", "proxies"}
    assert form["extra_fields"]["timeout"]["schema"]["title"] == "Request timeout (s)"


def test_connection_saved_by_the_ui_form_is_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The UI stores the extra fields as top-level keys of ``extra``, unset ones as null."""
    from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_UI", json.dumps({
        "conn_type": "robocorp", "login": "ws-1", "password": "RC-WSKEY k-123", "host": "",
        "extra": {"timeout": 12, "max_retries": None, "verify": True, "proxies": None},
    }))
    settings = RobocorpHook("robocorp_ui").settings
    assert settings.base_url == "https://cloud.robocorp.com/api/v1/"
    assert settings.timeout == 12 and settings.max_retries == 5 and settings.verify is True
    assert settings.proxies is None and settings.authorization == "RC-WSKEY k-123"
