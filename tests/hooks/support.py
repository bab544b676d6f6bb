"""Shared helpers of the hook tests: constants, a fake clock and a scripted loopback HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

WS = "ws-123"
KEY = "sk-LEAK-CHECK-123"
CLOUD = "https://cloud.robocorp.com/api/v1/"
WS_URL = f"{CLOUD}workspaces/{WS}/"
CONN_ENV = "AIRFLOW_CONN_ROBOCORP_DEFAULT"


def set_json_conn(monkeypatch: pytest.MonkeyPatch, env: str = CONN_ENV, **fields: Any) -> None:
    """Set a connection in Airflow's JSON form (``conn_type`` robocorp is added)."""
    monkeypatch.setenv(env, json.dumps({"conn_type": "robocorp", **fields}))


class FakeClock:
    """Stands in for the ``time`` module inside ``hooks.robocorp`` (polling helpers)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- a scripted HTTP server on loopback --------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer. ``action``: ``None`` (answer), ``"hang"`` (never answer),
    ``"close"`` (drop the connection without an answer), ``"short"`` (half the body, then drop)."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        record = Recorded(
            method=self.command,
            target=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        reply = self.server.next_reply(record)
        if reply.action == "hang":
            self.server.release.wait(10)
            self.close_connection = True
            return
        if reply.action == "close":
            self.close_connection = True
            return
        body = reply.body if reply.body is not None else (
            b"" if reply.json is None else json.dumps(reply.json).encode()
        )
        self.send_response(reply.status)
        headers = dict(reply.headers)
        if reply.json is not None:
            headers.setdefault("Content-Type", "application/json")
        headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.action == "short":  # promise the whole body, send half of it, drop the connection
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class ScriptedServer(ThreadingHTTPServer):
    """Answers requests from a queue of :class:`Reply` (or callables of the request) and records them."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.replies: deque[Reply | Callable[[Recorded], Reply]] = deque()
        self.requests: list[Recorded] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/v1/"

    @property
    def ws_url(self) -> str:
        return f"{self.base_url}workspaces/{WS}/"

    def script(self, *replies: Reply | Callable[[Recorded], Reply]) -> None:
        self.replies.extend(replies)

    def next_reply(self, record: Recorded) -> Reply:
        with self._lock:
            self.requests.append(record)
            scripted = self.replies.popleft() if self.replies else Reply(
                418, {"code": "unscripted", "message": f"no reply scripted for {record.method} {record.path}"}
            )
        return scripted(record) if callable(scripted) else scripted

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


def closed_port() -> int:
    """A loopback port with nothing listening on it (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
