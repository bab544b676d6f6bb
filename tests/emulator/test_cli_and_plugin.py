"""The console script, ``python -m``, the server class, the pytest fixtures, import lightness."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_robocorp.emulator.server import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def launch(*args: str) -> tuple[subprocess.Popen[str], dict[str, str], list[str]]:
    """Start the emulator CLI and read its banner; returns (process, connection, banner lines)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_robocorp.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Press Ctrl-C"):
            break
    conn_line = next(line for line in lines if line.startswith("AIRFLOW_CONN_ROBOCORP_DEFAULT="))
    conn = json.loads(shlex.split(conn_line)[0].split("=", 1)[1])
    return proc, conn, lines


def test_cli_serves_prints_the_connection_and_stops_on_ctrl_c() -> None:
    proc, conn, lines = launch("--fault", "status=503,times=1,path=/processes$", "--speed", "2")
    try:
        assert conn["conn_type"] == "robocorp" and conn["login"] == "ws-emulator"
        assert conn["password"] == "emulator-api-key" and conn["host"].startswith("http://127.0.0.1:")
        assert any(line.startswith("export AIRFLOW_CONN_ROBOCORP_DEFAULT='{") for line in lines)
        headers = {"Authorization": f"RC-WSKEY {conn['password']}"}
        url = f"{conn['host']}workspaces/{conn['login']}/processes"
        assert requests.get(url, headers=headers, timeout=5).status_code == 503
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        speed = requests.get(conn["host"].replace("/api/v1/", "/_emulator/time"), timeout=5).json()["speed"]
        assert speed == 2.0
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Emulator stopped." in out and "Traceback" not in err


def test_cli_uses_a_custom_config(tmp_path: Path) -> None:
    config = json.loads(_default_path().read_text())
    config["workspace"] = {"id": "ws-custom", "name": "Custom"}
    config["processes"] = [{"id": "p1", "name": "Only process", "steps": [{"id": "s1", "name": "Step"}]}]
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(config))
    proc, conn, _ = launch("--config", str(path))
    try:
        assert conn["login"] == "ws-custom"
        body = requests.get(
            f"{conn['host']}workspaces/ws-custom/processes",
            headers={"Authorization": "RC-WSKEY emulator-api-key"},
            timeout=5,
        ).json()
        assert [p["name"] for p in body["data"]] == ["Only process"]
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def _default_path() -> Path:
    from airflow_provider_robocorp.emulator.config import default_config_path

    return default_config_path()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--fault", "teapot"], "unknown fault kind"),
        (["--config", "/nonexistent.json"], "cannot read"),
        (["--fault", "status=503,chance=1"], "unknown fault rule keys"),
    ],
)
def test_cli_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_robocorp.emulator", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
    )
    assert result.returncode == 2 and message in result.stderr


def test_cli_help_documents_the_fault_syntax_and_prints_the_default_config() -> None:
    script = Path(sys.executable).with_name("robocorp-emulator")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "airflow_provider_robocorp.emulator"]
    )
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, env=ENV, timeout=30)
    assert result.returncode == 0
    for word in ("--host", "--port", "--config", "--fault", "retry_after", "commit_then_drop", "probability"):
        assert word in result.stdout
    printed = subprocess.run(
        [*command, "--print-default-config"], capture_output=True, text=True, env=ENV, timeout=30
    )
    assert json.loads(printed.stdout)["workspace"]["id"] == "ws-emulator"


def test_importing_the_package_and_plugin_stays_light() -> None:
    code = (
        "import sys, airflow_provider_robocorp.emulator, airflow_provider_robocorp.emulator.pytest_plugin\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'jsonschema', 'pydantic') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=30)


def test_server_binds_free_ports_and_stops_cleanly() -> None:
    with EmulatorServer() as first, EmulatorServer(speed=0) as second:
        assert first.port != second.port and first.port > 0
        assert first.url == f"http://127.0.0.1:{first.port}"
        assert first.api_url == f"{first.url}/api/v1/"
        headers = {"Authorization": f"RC-WSKEY {first.api_key}"}
        requests.post(
            f"{first.api_url}workspaces/{first.workspace_id}/assets",
            json={"name": "only-here"},
            headers=headers,
            timeout=5,
        ).raise_for_status()
        assets = requests.get(
            f"{second.api_url}workspaces/ws-emulator/assets", headers=headers, timeout=5
        ).json()
        assert [a["name"] for a in assets["data"]] == ["emulator-settings"]
        assert second.backend.clock.speed == 0
        port = first.port
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=2)
    with pytest.raises(RuntimeError):
        _ = first.backend
    first.stop()


def test_server_accepts_a_config_dict() -> None:
    config = json.loads(_default_path().read_text())
    config["organization"] = {"id": "org-x", "name": "X"}
    with EmulatorServer(config) as server:
        assert server.state()["workspace"]["organization"] == {"id": "org-x", "name": "X"}


def test_conn_env_fixture_points_airflow_at_the_emulator(robocorp_conn_env: str, emu: Any) -> None:
    assert os.environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"] == robocorp_conn_env
    assert json.loads(robocorp_conn_env) == {
        "conn_type": "robocorp",
        "login": "ws-emulator",
        "password": "emulator-api-key",
        "host": emu.api_url,
    }


def test_connection_forms_parse_in_airflow(emu: Any) -> None:
    connection = pytest.importorskip("airflow.models.connection").Connection
    from_json = connection.from_json(emu.connection_json(), conn_id="robocorp_default")
    from_uri = connection(conn_id="robocorp_default", uri=emu.connection_uri())
    for conn in (from_json, from_uri):
        assert (conn.conn_type, conn.login, conn.password, conn.host) == (
            "robocorp",
            "ws-emulator",
            "emulator-api-key",
            emu.api_url,
        )


def test_fixture_resets_state_between_tests_part_1(emu: Any) -> None:
    emu.backend.create_asset("left-over", emu.url)
    emu.add_fault(kind="latency", delay_seconds=0.01, path="/nothing")
    emu.set_speed(0)


def test_fixture_resets_state_between_tests_part_2(robocorp_emulator: Any) -> None:
    emu = robocorp_emulator  # the plugin's own fixture: state reset and the configured speed
    assert [a["name"] for a in emu.state()["assets"]] == ["emulator-settings"]
    assert emu.state()["faults"] == [] and emu.backend.clock.speed == 1.0


def test_advance_does_not_wait(emu: Any) -> None:
    started = time.monotonic()
    emu.advance(7200)
    assert time.monotonic() - started < 1
