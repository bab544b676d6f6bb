"""The provider's error hierarchy.

Every error raised by the provider is an :class:`AirflowException`, so Airflow fails the task with
the message. No message, ``str()`` or ``repr()`` of these errors ever contains the API key: they are
built from the HTTP method, the request *path* (never the query string) and the server's answer.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException


class RobocorpError(AirflowException):
    """Base class of every error raised by this provider."""


class RobocorpConfigError(RobocorpError, ValueError):
    """The connection or an argument is invalid; raised before any request is sent."""


class RobocorpApiError(RobocorpError):
    """Control Room answered with a non-2xx status.

    :param status: HTTP status code.
    :param code: the API's error code (``None`` when the body had none, e.g. an HTML page from a proxy).
    :param message: the API's message, or a short excerpt of a non-JSON body.
    :param method: HTTP method of the request.
    :param path: path of the request, without the query string.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        method: str,
        path: str,
        *,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path
        self.hint = hint
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        code = f" {self.code}" if self.code else ""
        text = f"Control Room API error: {self.method} {self.path} returned HTTP {self.status}{code}: {self.message}"
        return f"{text}. {self.hint}" if self.hint else text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (Airflow may ship them across processes).
        return (
            _rebuild_api_error,
            (type(self), self.status, self.code, self.message, self.method, self.path, self.hint, self.retry_after),
        )


def _rebuild_api_error(cls: type[RobocorpApiError], *args: Any) -> RobocorpApiError:
    status, code, message, method, path, hint, retry_after = args
    return cls(status, code, message, method, path, hint=hint, retry_after=retry_after)


class RobocorpBadRequestError(RobocorpApiError):
    """HTTP 400: the request was malformed."""


class RobocorpAuthenticationError(RobocorpApiError):
    """HTTP 401: the API key is missing, wrong or revoked."""


class RobocorpPermissionError(RobocorpApiError):
    """HTTP 403: the API key lacks the permission the endpoint needs."""


class RobocorpNotFoundError(RobocorpApiError):
    """HTTP 404: no such resource (or wrong workspace)."""


class RobocorpConflictError(RobocorpApiError):
    """HTTP 409: the resource's current state forbids the operation."""


class RobocorpRateLimitError(RobocorpApiError):
    """HTTP 429: too many requests; ``retry_after`` holds the server's hint in seconds."""


class RobocorpServerError(RobocorpApiError):
    """HTTP 5xx: Control Room (or a proxy in front of it) failed."""


class RobocorpTransportError(RobocorpError):
    """The request could not be completed at the network level (after any retries).

    ``reached_server`` is ``False`` when the connection was never established (so nothing was
    applied), ``True`` or ``None`` when the request may have been received.
    """

    def __init__(self, message: str, *, method: str, path: str, reached_server: bool | None) -> None:
        self.method = method
        self.path = path
        self.reached_server = reached_server
        super().__init__(f"{method} {path}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        message = str(self).split(": ", 1)[-1]
        return (
            _rebuild_transport_error,
            (type(self), message, self.method, self.path, self.reached_server),
        )


def _rebuild_transport_error(cls: type[RobocorpTransportError], *args: Any) -> RobocorpTransportError:
    message, method, path, reached_server = args
    return cls(message, method=method, path=path, reached_server=reached_server)


class RobocorpTLSError(RobocorpTransportError):
    """The TLS handshake failed (untrusted certificate, host name mismatch, ...): nothing was sent,
    and retrying cannot help, so it is never retried. The message names the cause and the fix."""


class RobocorpRequestMayHaveBeenAppliedError(RobocorpTransportError):
    """A request that creates something lost its answer after it was sent.

    It is not retried automatically: Control Room may already have applied it, and a blind retry
    could start a second process run or create a duplicate work item.
    """


class ProcessRunFailedError(RobocorpError):
    """A process run ended ``unresolved`` (or in a state the caller does not accept)."""

    def __init__(self, message: str, *, process_run: dict[str, Any] | None = None) -> None:
        self.process_run = process_run
        super().__init__(message)


class ProcessRunTimeoutError(RobocorpError):
    """Waiting for a process run, an asset upload, ... exceeded its deadline."""
