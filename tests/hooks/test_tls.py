"""TLS failures are not retried like network failures, and say what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_robocorp.exceptions import RobocorpTLSError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import KEY, WS


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.pem", tmp / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[int]]]:
    """An HTTPS listener whose certificate is self-signed for 'control-room.example' (not 127.0.0.1)."""
    cert, key = _self_signed(tmp_path, "control-room.example")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted.append(1)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], cert, accepted
    stop.set()
    thread.join(timeout=5)
    sock.close()


def _connect(monkeypatch, port: int, **extra: object) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps(
        {"conn_type": "robocorp", "login": WS, "password": KEY, "host": f"https://127.0.0.1:{port}/api/v1/",
         "extra": {"max_retries": 3, **extra}}))


def test_an_untrusted_certificate_is_named_with_its_fix_and_not_retried(monkeypatch, tls_server, sleeps) -> None:
    port, _, accepted = tls_server
    _connect(monkeypatch, port)
    with pytest.raises(RobocorpTLSError) as err:
        RobocorpHook().get_workspace()
    message = str(err.value)
    assert "certificate verify failed" in message and "self-signed" in message
    assert "extra 'verify'" in message and "CA bundle" in message and "Not retried" in message
    assert KEY not in message and len(accepted) == 1 and sleeps == []


def test_a_host_name_mismatch_is_named(monkeypatch, tls_server, sleeps) -> None:
    port, cert, accepted = tls_server
    _connect(monkeypatch, port, verify=str(cert))  # trusted, but issued for another name
    with pytest.raises(RobocorpTLSError, match="hostname mismatch"):
        RobocorpHook().get_workspace()
    assert len(accepted) == 1 and sleeps == []


def test_the_async_path_says_the_same(monkeypatch, tls_server, async_sleeps) -> None:
    port, _, accepted = tls_server
    _connect(monkeypatch, port)

    async def call() -> None:
        hook = RobocorpHook()
        try:
            await hook.aget_workspace()
        finally:
            await hook.aclose()

    with pytest.raises(RobocorpTLSError, match="certificate verify failed.*extra 'verify'"):
        asyncio.run(call())
    assert len(accepted) == 1 and async_sleeps == []
