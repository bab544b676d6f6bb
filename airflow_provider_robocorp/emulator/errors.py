"""Errors raised by the emulator's state layer and turned into HTTP answers by the app."""

from __future__ import annotations


class ApiError(Exception):
    """An error the API answers with ``{"error": {"code", "message"}}`` and an HTTP status."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def body(self) -> dict[str, dict[str, str]]:
        """The main documented error shape."""
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ApiError):
    """400: the request body or query is invalid."""

    status = 400
    code = "invalid_request"


class Unauthorized(ApiError):
    """401: no valid ``RC-WSKEY`` API key."""

    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    """403: the API key lacks the endpoint's permission."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """404: unknown workspace, resource or path."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """409: the request conflicts with the resource's current state."""

    status = 409
    code = "conflict"
