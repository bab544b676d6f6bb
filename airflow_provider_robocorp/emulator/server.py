"""Run the emulator in a background thread: ``EmulatorServer`` (tests, the CLI, notebooks)."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
from types import TracebackType
from typing import Any
from urllib.parse import quote

from .config import ConfigSource, EmulatorConfig, load_config
from .faults import FaultRule
from .models import EmulatorBackend

START_TIMEOUT_SECONDS = 15.0


class EmulatorServer:
    """A Control Room emulator listening on ``host:port`` (port 0 picks a free port).

    ``speed`` defaults to the configuration's (1.0 in the shipped one). Use as a context
    manager, or call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        config: EmulatorConfig | ConfigSource = None,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | None = None,
        *,
        log_level: str = "warning",
    ) -> None:
        self.config = config if isinstance(config, EmulatorConfig) else load_config(config)
        self.host = host
        self.port = port
        self.speed = speed
        self.log_level = log_level
        self._backend: EmulatorBackend | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Start serving; returns once the socket accepts connections."""
        if self._thread is not None:
            return self
        import uvicorn

        from .app import create_app

        backend = EmulatorBackend(self.config, speed=self.speed)
        backend.start()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            backend.close()
            raise
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        app = create_app(backend)
        app.state.bind_host = self.host  # the control routes' DNS-rebinding check reads it
        config = uvicorn.Config(
            app,
            http="httptools" if importlib.util.find_spec("httptools") else "h11",
            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            log_level=self.log_level,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=3,
        )
        self._server = uvicorn.Server(config)
        self._backend, self._socket = backend, sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="robocorp-emulator-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Control Room emulator failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release everything (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        if self._backend is not None:
            self._backend.close()
        self._server = self._thread = self._socket = self._backend = None

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        """Block until the server thread ends (after ``stop()`` from another thread)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses and credentials -----------------------------------------------------------

    @property
    def backend(self) -> EmulatorBackend:
        if self._backend is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._backend

    @property
    def url(self) -> str:
        """Where a client on this machine reaches it (a wildcard bind is reached on loopback, which
        the provider accepts over plain http)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1/"

    @property
    def workspace_id(self) -> str:
        return self.config.workspace_id

    @property
    def api_key(self) -> str:
        return self.config.default_api_key

    def connection(self) -> dict[str, str]:
        """The Airflow connection fields for this emulator."""
        return {
            "conn_type": "robocorp",
            "login": self.workspace_id,
            "password": self.api_key,
            "host": self.api_url,
        }

    def connection_json(self) -> str:
        """JSON for ``AIRFLOW_CONN_ROBOCORP_DEFAULT``."""
        return json.dumps(self.connection())

    def connection_uri(self) -> str:
        """URI form of the connection, as Airflow's ``Connection.get_uri()`` writes it."""
        rest = self.api_url.split("://", 1)[1]
        return f"robocorp://http://{quote(self.workspace_id, safe='')}:{quote(self.api_key, safe='')}@{quote(rest, safe='')}"

    # -- test helpers (act on the backend directly) --------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move emulated time forward; runs progress at once."""
        self.backend.advance(seconds)

    def set_speed(self, speed: float) -> None:
        self.backend.set_speed(speed)

    def reset(self) -> None:
        """Back to the seed (faults are kept; see ``clear_faults``)."""
        self.backend.reset()

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (see ``faults.FaultRule``); returns it as JSON."""
        return self.backend.faults.add(FaultRule.from_json(rule)).to_json()

    def clear_faults(self) -> None:
        self.backend.faults.clear()

    def requests_log(self) -> list[dict[str, Any]]:
        return self.backend.requests()

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self.backend.webhook_deliveries()

    def state(self, *, with_secrets: bool = False) -> dict[str, Any]:
        return self.backend.snapshot(with_secrets=with_secrets)
