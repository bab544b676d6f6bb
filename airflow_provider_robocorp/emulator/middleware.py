"""Raw ASGI middleware (outermost): the request log and fault injection.

Dropping a connection "without any answer" needs the server's transport: with uvicorn the
``send`` callable is a bound method of the request cycle, which holds it. The transport is
closed and the cycle marked disconnected, so uvicorn sends nothing (no 500). Under a server
without that structure the drop falls back to raising ``ConnectionDropped``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from .clock import iso
from .faults import ERROR_CODES, FaultRule
from .models import EmulatorBackend

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Any
Send = Any
ASGIApp = Any

CONTROL_PREFIX = "/_emulator"


class ConnectionDropped(Exception):
    """Raised when the connection cannot be closed directly (not running under uvicorn)."""


class EmulatorMiddleware:
    """Logs every API/file request and applies the fault rule that fires for it, if any."""

    def __init__(self, app: ASGIApp, backend: EmulatorBackend) -> None:
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"")
        entry: dict[str, Any] = {
            "time": iso(time.time()),
            "method": method,
            "path": path,
            "query_keys": sorted({k for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)})
            if query
            else [],
            "status": None,
            "fault": None,
        }

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        rule = self.backend.faults.pick(method, path)
        try:
            if rule is None:
                await self.app(scope, receive, logged_send)
            else:
                entry["fault"] = rule.kind
                await self._apply(rule, scope, receive, send, logged_send)
        finally:
            self.backend.log_request(entry)

    async def _apply(
        self, rule: FaultRule, scope: Scope, receive: Receive, send: Send, logged_send: Send
    ) -> None:
        if rule.kind == "latency":
            # A slow server has still received the request: it is handled (and applied) even if
            # the client gives up waiting meanwhile, as a real one would.
            receive = await _buffered(receive)
        if rule.delay_seconds:
            await asyncio.sleep(rule.delay_seconds)
        if rule.kind == "latency":
            await self.app(scope, receive, logged_send)
        elif rule.kind == "status":
            await _fault_response(rule, logged_send)
        elif rule.kind == "drop":
            _drop(send)
        else:  # commit_then_drop: perform the request, discard its answer

            async def discard(message: Message) -> None:
                return None

            await self.app(scope, receive, discard)
            _drop(send)


async def _buffered(receive: Receive) -> Receive:
    """Read the whole request body now; the returned ``receive`` replays it, then defers."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


async def _fault_response(rule: FaultRule, send: Send) -> None:
    status = rule.status or 503
    code = ERROR_CODES.get(status, "injected_fault")
    body = json.dumps(
        {"error": {"code": code, "message": f"Injected fault: HTTP {status} (emulator)"}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if rule.retry_after is not None:
        headers.append((b"retry-after", rule.retry_after.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _drop(send: Send) -> None:
    """Close the client connection without a response."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionDropped("fault injection dropped the connection")
    cycle.disconnected = True  # type: ignore[union-attr]
    transport.close()
