"""The FastAPI application: API routes, pre-signed file routes, control routes, middleware."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from .control import control_routes
from .files import file_routes
from .middleware import EmulatorMiddleware
from .models import EmulatorBackend
from .pages import page_routes
from .responses import ENDPOINTS, JsonResponse, make_endpoint

_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


class EmulatorApp(FastAPI):
    """FastAPI with the emulator's raw ASGI middleware outermost (it needs the server's send)."""

    def build_middleware_stack(self) -> Any:
        return EmulatorMiddleware(super().build_middleware_stack(), self.state.backend)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths (404) and methods (405) answer with the API's error shape."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"No such API path: {request.method} {request.url.path}"
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Starlette names only the first matching route's methods
        methods = _allowed_methods(request)
        if methods:
            headers["Allow"] = ", ".join(methods)
            message = f"Method {request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
    body = {"error": {"code": _ERROR_CODES.get(exc.status_code, "error"), "message": message}}
    return JsonResponse(body, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path."""
    from starlette.routing import Match

    scope = {**request.scope, "method": "GET"}
    methods: set[str] = set()
    for route in request.app.router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches({**scope, "method": next(iter(route_methods))})[0] == Match.FULL:
            methods.update(route_methods)
    return sorted(methods)


def create_app(backend: EmulatorBackend) -> FastAPI:
    """An ASGI app serving ``backend`` (start the backend's ticker separately)."""
    app = EmulatorApp(
        title="Robocorp Control Room emulator",
        description="A local, stateful emulation of the Control Room REST API v1.",
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
    )
    app.state.backend = backend
    for spec in ENDPOINTS:
        app.add_api_route(
            spec.path,
            make_endpoint(spec),
            methods=[spec.method],
            name=spec.name,
            summary=spec.name.replace("_", " ").capitalize(),
            description=f"Permission: {spec.permission or 'any valid API key'}",
        )
    app.router.routes.extend(file_routes())
    app.router.routes.extend(control_routes())
    app.router.routes.extend(page_routes())
    app.add_exception_handler(StarletteHTTPException, _http_error)
    return app
