"""Control endpoints under ``/_emulator/`` (no auth): state, reset, time, faults, logs."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .clock import iso
from .faults import FaultError, FaultRule
from .models import EmulatorBackend
from .responses import JsonResponse

CONTROL_PREFIX = "/_emulator"


def _backend(request: Request) -> EmulatorBackend:
    return request.app.state.backend  # type: ignore[no-any-return]


def _error(message: str) -> Response:
    return JsonResponse({"error": {"code": "invalid_request", "message": message}}, status_code=400)


async def _json(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else None


def _number(body: Any, key: str) -> float:
    if (
        not isinstance(body, dict)
        or isinstance(body.get(key), bool)
        or not isinstance(body.get(key), (int, float))
    ):
        raise ValueError(f'body must be {{"{key}": <number>}}')
    value = float(body[key])
    if value < 0:
        raise ValueError(f"{key} must be >= 0")
    return value


async def health(request: Request) -> Response:
    return JsonResponse({"status": "ok", "workspace_id": _backend(request).config.workspace_id})


async def state(request: Request) -> Response:
    secrets = request.query_params.get("secrets", "").lower() in ("1", "true", "yes")
    return JsonResponse(_backend(request).snapshot(with_secrets=secrets))


async def reset(request: Request) -> Response:
    _backend(request).reset()
    return JsonResponse({"reset": True})


async def get_time(request: Request) -> Response:
    backend = _backend(request)
    return JsonResponse({"now": iso(backend.now()), "epoch": backend.now(), "speed": backend.clock.speed})


async def advance(request: Request) -> Response:
    backend = _backend(request)
    try:
        seconds = _number(await _json(request), "seconds")
    except ValueError as exc:
        return _error(str(exc))
    now = backend.advance(seconds)
    return JsonResponse({"now": iso(now), "epoch": now, "speed": backend.clock.speed})


async def speed(request: Request) -> Response:
    backend = _backend(request)
    try:
        value = _number(await _json(request), "speed")
    except ValueError as exc:
        return _error(str(exc))
    backend.set_speed(value)
    return JsonResponse({"now": iso(backend.now()), "epoch": backend.now(), "speed": value})


async def list_faults(request: Request) -> Response:
    return JsonResponse({"rules": _backend(request).faults.rules()})


async def add_faults(request: Request) -> Response:
    """Body: one rule, a list of rules, or ``{"rules": [...], "seed": N}``."""
    backend = _backend(request)
    try:
        body = await _json(request)
        seed = None
        if isinstance(body, dict) and "rules" in body:
            seed, body = body.get("seed"), body["rules"]
        raw_rules = body if isinstance(body, list) else [body]
        if not raw_rules or not all(isinstance(r, dict) for r in raw_rules):
            raise FaultError("expected a fault rule object or a list of them")
        rules = [FaultRule.from_json(r) for r in raw_rules]
    except (ValueError, FaultError) as exc:
        return _error(str(exc))
    if seed is not None:
        backend.faults.seed(int(seed))
    added = [backend.faults.add(rule).to_json() for rule in rules]
    return JsonResponse({"rules": added})


async def clear_faults(request: Request) -> Response:
    _backend(request).faults.clear()
    return JsonResponse({"rules": []})


async def requests_log(request: Request) -> Response:
    return JsonResponse({"requests": _backend(request).requests()})


async def clear_requests_log(request: Request) -> Response:
    _backend(request).request_log.clear()
    return JsonResponse({"requests": []})


async def webhook_deliveries(request: Request) -> Response:
    return JsonResponse({"deliveries": _backend(request).webhook_deliveries()})


_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def _is_loopback_name(host: str) -> bool:
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def _cross_site(request: Request) -> str | None:
    """Why a control request looks like it came from a web page on another site (or ``None``).

    The control routes have no auth, so a page a developer visits must not be able to reset the
    emulator or inject faults: browsers send ``Origin`` / ``Sec-Fetch-Site`` on such requests, and a
    form post cannot send ``application/json``."""
    if request.headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
        return "a cross-site browser request"
    bind = str(getattr(request.app.state, "bind_host", "127.0.0.1"))
    if _is_loopback_name(bind):  # bound to loopback: only loopback names may reach it (DNS rebinding)
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if host and not _is_loopback_name(host):
            return f"a request for host {host!r}"
    origin = request.headers.get("origin")
    if origin is not None:
        if not _is_loopback_name(urlsplit(origin).hostname or ""):
            return f"a request from origin {origin!r}"
    if request.method != "GET":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if int(request.headers.get("content-length") or 0) > 0 and content_type != "application/json":
            return f"a {content_type or 'untyped'} body (control requests send application/json)"
    return None


def _guarded(handler: Any) -> Any:
    async def guarded(request: Request) -> Response:
        why = _cross_site(request)
        if why is not None:
            return JsonResponse({"error": {"code": "forbidden", "message": f"Refused {why}: the /_emulator "
                                           "control routes only take requests from this machine's tools."}},
                                status_code=403)
        return await handler(request)

    return guarded


def control_routes() -> list[Route]:
    routes = _control_routes()
    return [Route(r.path, _guarded(r.endpoint), methods=sorted(r.methods or ())) for r in routes]


def _control_routes() -> list[Route]:
    p = CONTROL_PREFIX
    return [
        Route(p + "/health", health, methods=["GET"]),
        Route(p + "/state", state, methods=["GET"]),
        Route(p + "/reset", reset, methods=["POST"]),
        Route(p + "/time", get_time, methods=["GET"]),
        Route(p + "/time/advance", advance, methods=["POST"]),
        Route(p + "/time/speed", speed, methods=["POST"]),
        Route(p + "/faults", list_faults, methods=["GET"]),
        Route(p + "/faults", add_faults, methods=["POST"]),
        Route(p + "/faults", clear_faults, methods=["DELETE"]),
        Route(p + "/requests", requests_log, methods=["GET"]),
        Route(p + "/requests", clear_requests_log, methods=["DELETE"]),
        Route(p + "/webhook-deliveries", webhook_deliveries, methods=["GET"]),
    ]
