"""Shared fixtures: an HTTP client for the emulator that checks documented shapes."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from airflow_provider_robocorp.emulator import pytest_plugin
from airflow_provider_robocorp.emulator.server import EmulatorServer

from . import openapi, schemas

FULL_KEY = "emulator-api-key"
READONLY_KEY = "emulator-readonly-key"
NO_PERMISSIONS_KEY = "emulator-no-permissions-key"
TEMPLATES = {name: (method, path) for method, path, _, name in schemas.ENDPOINTS}


def pytest_configure(config: pytest.Config) -> None:
    """Provide the emulator fixtures even when the package is not installed (no entry point)."""
    if not config.pluginmanager.is_registered(pytest_plugin):
        config.pluginmanager.register(pytest_plugin)


class Api:
    """Calls operations by their ``endpoints.tsv`` name and validates the answers."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.session = requests.Session()
        self.base = server.api_url.rstrip("/")

    def url(self, name: str, **path: str) -> str:
        method, template = TEMPLATES[name]
        path.setdefault("workspace_id", self.server.workspace_id)
        return self.base + template.format(**path)

    def raw(self, name: str, *, key: str | None = FULL_KEY, **kwargs: Any) -> requests.Response:
        """Send operation ``name``; keyword arguments named like path parameters fill the path."""
        method, template = TEMPLATES[name]
        path = {k: kwargs.pop(k) for k in list(kwargs) if "{" + k + "}" in template}
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"RC-WSKEY {key}")
        return self.session.request(method, self.url(name, **path), headers=headers, timeout=30, **kwargs)

    def call(self, name: str, *, expect: int = 200, **kwargs: Any) -> Any:
        """Send operation ``name``, assert the status, validate the body; returns the JSON."""
        response = self.raw(name, **kwargs)
        assert response.status_code == expect, (name, response.status_code, response.text)
        body = response.json()
        assert response.headers["content-type"].startswith("application/json")
        if expect == 200:
            schemas.check(name, body)
            method, template = TEMPLATES[name]
            openapi.check(method, template, body)
        else:
            schemas.check_error(body, flat=name == "start_process_run_for_integration")
        return body

    def get_url(self, url: str, key: str | None = FULL_KEY) -> requests.Response:
        headers = {"Authorization": f"RC-WSKEY {key}"} if key else {}
        return self.session.get(url, headers=headers, timeout=30)


@pytest.fixture
def emu(robocorp_emulator: EmulatorServer) -> EmulatorServer:
    """The emulator with its clock frozen: emulated time moves only by ``advance`` (so a busy machine
    cannot move a run on between two assertions)."""
    robocorp_emulator.set_speed(0)
    return robocorp_emulator


@pytest.fixture
def api(emu: EmulatorServer) -> Api:
    return Api(emu)


def start_run(api: Api, process_id: str, body: dict[str, Any] | None = None) -> str:
    """Start a run and return its id."""
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    started = api.call("start_process_run", process_id=process_id, **kwargs)
    assert started["started"] is True
    return str(started["id"])


def run_to_end(api: Api, emu: EmulatorServer, run_id: str, seconds: float = 60.0) -> dict[str, Any]:
    """Advance emulated time and return the finished run."""
    emu.advance(seconds)
    run = api.call("get_process_run", process_run_id=run_id)
    assert run["state"] in ("completed", "unresolved"), run
    return run


def upload_work_item_file(api: Api, work_item_id: str, name: str, data: bytes) -> requests.Response:
    """Create a work item file and send it by multipart POST, as a client would."""
    upload = api.call(
        "create_work_item_file", work_item_id=work_item_id, json={"file_name": name, "file_size": len(data)}
    )
    spec = upload["upload"]
    return requests.post(spec["url"], data=spec["form_data"], files={"file": (name, data)}, timeout=30)
