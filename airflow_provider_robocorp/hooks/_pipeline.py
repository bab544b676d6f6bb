"""The request pipeline shared by the sync hook and the async (trigger) path.

One description of a request (:class:`ApiRequest`) is built once from the connection
(:class:`ConnectionSettings`) and the endpoint table; error parsing (:func:`raise_for_response`),
the retry policy (:class:`RetryPolicy`) and pagination (:func:`next_page`) are plain functions of
it. The two transports (``requests`` and ``httpx``) only move bytes and translate their network
errors with :func:`transport_error`.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import math
import platform
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import tenacity

from airflow_provider_robocorp import __version__
from airflow_provider_robocorp.exceptions import (
    RobocorpApiError,
    RobocorpAuthenticationError,
    RobocorpBadRequestError,
    RobocorpConfigError,
    RobocorpConflictError,
    RobocorpError,
    RobocorpNotFoundError,
    RobocorpPermissionError,
    RobocorpRateLimitError,
    RobocorpRequestMayHaveBeenAppliedError,
    RobocorpServerError,
    RobocorpTLSError,
    RobocorpTransportError,
)
from airflow_provider_robocorp.hooks._endpoints import ENDPOINTS, Endpoint

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://cloud.robocorp.com/api/v1/"
API_KEY_PREFIX = "RC-WSKEY "
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 5
#: A ``Retry-After`` longer than this is not waited for: the error is raised instead.
MAX_RETRY_AFTER = 300.0
USER_AGENT = f"airflow-provider-robocorp/{__version__} (python/{platform.python_version()})"


class _NoBody:
    def __repr__(self) -> str:
        return "NO_BODY"


#: Marker for "send no request body" (``None`` would mean the JSON literal ``null``).
NO_BODY: Any = _NoBody()


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (where plain ``http://`` is allowed)."""
    if hostname.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_base_url(host: str | None, port: int | None = None, schema: str | None = None, *, conn_id: str) -> str:
    """Turn the connection's host (and optional port / path in schema) into the API base URL.

    Empty → Robocorp cloud; ``https://<sso>.robocorp.com/api/v1/`` as is; a bare host gets
    ``https://`` (``http://`` on loopback, for the emulator) and ``/api/v1/``.
    """
    raw = (host or "").strip()
    if not raw:
        return DEFAULT_BASE_URL
    if "://" not in raw:
        bare_host = raw.split("/", 1)[0].rsplit("@", 1)[-1]
        hostname = bare_host.rsplit(":", 1)[0] if bare_host.count(":") == 1 else bare_host
        raw = ("http://" if is_loopback(hostname) else "https://") + raw
    parts = urlsplit(raw)
    fix = (
        f"Set the Host of connection '{conn_id}' to the Control Room API base URL, e.g. "
        f"'{DEFAULT_BASE_URL}' (empty means that) or 'https://<your-sso-subdomain>.robocorp.com/api/v1/'."
    )
    if parts.scheme not in ("http", "https"):
        raise RobocorpConfigError(f"Connection '{conn_id}': unsupported URL scheme '{parts.scheme}' in host. {fix}")
    if not parts.hostname:
        raise RobocorpConfigError(f"Connection '{conn_id}': host has no host name. {fix}")
    if parts.username or parts.password:
        raise RobocorpConfigError(
            f"Connection '{conn_id}': the host URL must not contain credentials; put the API key in the "
            f"Password field. {fix}"
        )
    if parts.query or parts.fragment:
        raise RobocorpConfigError(f"Connection '{conn_id}': the host URL must not have a query or fragment. {fix}")
    try:
        url_port = parts.port
    except ValueError:
        raise RobocorpConfigError(f"Connection '{conn_id}': the port in the host URL is not a number. {fix}") from None
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise RobocorpConfigError(
            f"Connection '{conn_id}': plain http:// is only allowed for loopback hosts (the local emulator); "
            f"use https:// for '{parts.hostname}'."
        )
    netloc = parts.netloc
    if port and url_port is None:
        netloc = f"{netloc}:{int(port)}"
    path = parts.path
    if path in ("", "/") and schema:
        path = "/" + schema.strip("/")
    if path in ("", "/"):
        path = "/api/v1"
    return urlunsplit((parts.scheme, netloc, path.rstrip("/") + "/", "", ""))


_API_KEY_PREFIX_RE = re.compile(r"RC-WSKEY(?:\s+|$)", re.IGNORECASE)


def normalize_api_key(raw: str | None, *, conn_id: str) -> str:
    """Return the ``Authorization`` value: the key with exactly one ``RC-WSKEY `` prefix."""
    key = (raw or "").strip()
    prefix = _API_KEY_PREFIX_RE.match(key)
    if prefix:
        key = key[prefix.end() :]
    if not key:
        raise RobocorpConfigError(
            f"Connection '{conn_id}' has no API key. Put a Control Room API key in its Password field "
            f"(the '{API_KEY_PREFIX.strip()}' prefix is optional)."
        )
    if any(ch.isspace() for ch in key):
        raise RobocorpConfigError(
            f"Connection '{conn_id}': the API key contains white space; paste the key exactly as Control Room shows it."
        )
    return API_KEY_PREFIX + key


_ID_FIX = "pass the id exactly as Control Room shows it"


def check_id(value: Any, argument: str, method: str, *, asset_name: bool = False) -> str:
    """An id that is safe as one URL path segment, or a clear error naming ``argument``.

    ``requests`` removes ``.`` / ``..`` segments, so such an id would call another endpoint;
    ``/``, ``?``, ``#`` and ``\\`` have no place in an id either. Refused before any request.
    With ``asset_name`` the ``name:<asset name>`` form keeps any name (it is percent-encoded into
    the one segment), except an empty one or control characters.
    """
    if not isinstance(value, str) or not value.strip():
        raise RobocorpConfigError(f"{method}(): '{argument}' must be a non-empty string, got {value!r}.")
    if asset_name and value.startswith("name:"):
        name = value[len("name:"):]
        if not name.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
            raise RobocorpConfigError(f"{method}(): '{argument}'={value!r} is not a valid asset name lookup "
                                      "(the name after 'name:' must be non-empty, without control characters).")
        return value
    problem = _id_problem(value)
    if problem:
        raise RobocorpConfigError(f"{method}(): '{argument}'={value!r} {problem} (it would change which URL "
                                  f"is called); {_ID_FIX}.")
    return value


def _id_problem(value: str) -> str | None:
    """Why ``value`` cannot be one URL path segment (``None`` when it can)."""
    if value in (".", ".."):
        return "is not an id"
    bad = sorted({ch for ch in value if ch in "/?#\\" or ord(ch) < 32 or ord(ch) == 127})
    return f"contains {', '.join(repr(c) for c in bad)}, which an id cannot hold" if bad else None


def positive_seconds(value: Any, name: str) -> float:
    """``value`` (seconds or a ``timedelta``) as finite, positive float seconds, or a clear error
    (NaN would disable every comparison, so a NaN timeout would silently mean none)."""
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    if (isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds)
            or seconds <= 0):
        raise RobocorpConfigError(
            f"{name} must be a finite, positive number of seconds or a timedelta, got {value!r}."
        )
    return float(seconds)


#: Every extra the connection understands (each also as ``extra__robocorp__<name>``, as older forms wrote).
KNOWN_EXTRAS = ("timeout", "max_retries", "backoff_initial", "backoff_max", "page_size", "verify", "proxies",
                "workspace_id")


def _check_extras(extras: Mapping[str, Any], conn_id: str) -> None:
    """A typo (``max_retry``) must not silently fall back to a default: name the known extras."""
    unknown = sorted(key for key in extras
                     if key.removeprefix("extra__robocorp__") not in KNOWN_EXTRAS)
    if unknown:
        raise RobocorpConfigError(
            f"Connection '{conn_id}': unknown extra {', '.join(repr(k) for k in unknown)}; the known extras are "
            f"{', '.join(KNOWN_EXTRAS)}."
        )


def check_file_name(value: Any, argument: str, method: str) -> str:
    """A work item file name Control Room and robots can use as is: no path parts, no control
    characters, not empty (checked before anything is created)."""
    if not isinstance(value, str) or not value.strip():
        raise RobocorpConfigError(f"{method}(): {argument} must be a non-empty file name, got {value!r}.")
    bad = sorted({ch for ch in value if ch in "/\\" or ord(ch) < 32 or ord(ch) == 127})
    if bad or value in (".", "..") or value.strip() != value:
        why = (f"contains {', '.join(repr(c) for c in bad)}" if bad
               else "is a path part" if value in (".", "..") else "starts or ends with white space")
        raise RobocorpConfigError(
            f"{method}(): {argument} {value!r} {why}; give a plain file name like 'invoice-001.csv' "
            "(a {name: path} dict sets the name of each file)."
        )
    return value


def _extra(extras: Mapping[str, Any], name: str) -> Any:
    """An extra by its plain name, or by the ``extra__robocorp__`` name older forms wrote."""
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__robocorp__{name}")
    return None if value == "" else value


def _as_float(value: Any, name: str, conn_id: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not number > 0 or not math.isfinite(number):
        raise RobocorpConfigError(
            f"Connection '{conn_id}': extra '{name}' must be a finite, positive number of seconds, got {value!r}."
        )
    return number


def _as_int(value: Any, name: str, conn_id: str) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise RobocorpConfigError(f"Connection '{conn_id}': extra '{name}' must be a whole number ≥ 0, got {value!r}.")
    return number


def _backoff(extras: Mapping[str, Any], conn_id: str) -> dict[str, float]:
    """``backoff_initial`` / ``backoff_max`` extras (seconds of exponential back-off between retries)."""
    values = {name: _as_float(raw, name, conn_id) for name in ("backoff_initial", "backoff_max")
              if (raw := _extra(extras, name)) is not None}
    initial, maximum = values.get("backoff_initial", 1.0), values.get("backoff_max", 60.0)
    if initial > maximum:
        raise RobocorpConfigError(
            f"Connection '{conn_id}': extra 'backoff_initial' ({initial:g} s) is larger than 'backoff_max' "
            f"({maximum:g} s); make the initial back-off the smaller one."
        )
    return {"backoff_initial": initial, "backoff_max": maximum}


def _as_page_size(value: Any, conn_id: str) -> int:
    number = _as_int(value, "page_size", conn_id)
    if number < 1:
        raise RobocorpConfigError(f"Connection '{conn_id}': extra 'page_size' must be a whole number ≥ 1, got {value!r}.")
    return number


def _as_verify(value: Any, conn_id: str) -> bool | str:
    if value is None:
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    if text:
        return text  # a CA bundle path
    raise RobocorpConfigError(f"Connection '{conn_id}': extra 'verify' must be true, false or a CA bundle path.")


def _as_proxies(value: Any, conn_id: str) -> dict[str, str] | None:
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = {"http": value, "https": value}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise RobocorpConfigError(
            f"Connection '{conn_id}': extra 'proxies' must be an object like "
            '{"https": "http://proxy:3128"} or a single proxy URL.'
        )
    return {str(k): v for k, v in value.items()}


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything a transport needs, resolved and validated once from an Airflow connection."""

    conn_id: str
    base_url: str
    workspace_id: str
    authorization: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    proxies: dict[str, str] | None = None
    verify: bool | str = True
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    #: ``limit`` sent by ``list_*`` calls that pass none (``None``: no limit, the server's default).
    page_size: int | None = None

    @classmethod
    def from_connection(
        cls,
        conn: Any,
        *,
        workspace_id: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        page_size: int | None = None,
    ) -> ConnectionSettings:
        """Validate an Airflow ``Connection`` (host/login/password/extra) into settings."""
        conn_id = conn.conn_id or "robocorp"
        extras: Mapping[str, Any] = conn.extra_dejson or {}
        _check_extras(extras, conn_id)
        workspace = (workspace_id or conn.login or _extra(extras, "workspace_id") or "").strip()
        if not workspace:
            raise RobocorpConfigError(
                f"Connection '{conn_id}' has no Workspace ID. Put it in the connection's Login (shown as "
                "'Workspace ID') or pass RobocorpHook(workspace_id=...)."
            )
        if any(ch.isspace() for ch in workspace) or _id_problem(workspace):
            raise RobocorpConfigError(
                f"Connection '{conn_id}': Workspace ID {workspace!r} is not a valid id; put the workspace id "
                "exactly as Control Room shows it in the connection's Login."
            )
        raw_timeout = timeout if timeout is not None else _extra(extras, "timeout")
        raw_retries = max_retries if max_retries is not None else _extra(extras, "max_retries")
        raw_page_size = page_size if page_size is not None else _extra(extras, "page_size")
        return cls(
            conn_id=conn_id,
            base_url=resolve_base_url(conn.host, conn.port, conn.schema, conn_id=conn_id),
            workspace_id=workspace,
            authorization=normalize_api_key(conn.password, conn_id=conn_id),
            timeout=DEFAULT_TIMEOUT if raw_timeout is None else _as_float(raw_timeout, "timeout", conn_id),
            max_retries=DEFAULT_MAX_RETRIES if raw_retries is None else _as_int(raw_retries, "max_retries", conn_id),
            proxies=_as_proxies(_extra(extras, "proxies"), conn_id),
            verify=_as_verify(_extra(extras, "verify"), conn_id),
            page_size=None if raw_page_size is None else _as_page_size(raw_page_size, conn_id),
            **_backoff(extras, conn_id),
        )

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def api_key(self) -> str:
        """The bare key (for the integration endpoint's ``token`` query parameter)."""
        return self.authorization[len(API_KEY_PREFIX) :]

    def headers(self, *, auth: bool = True) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if auth:
            headers["Authorization"] = self.authorization
        return headers

    def request_headers(self, request: ApiRequest) -> dict[str, str]:
        """The request's own headers plus ``Authorization`` (never for pre-signed URLs)."""
        headers = dict(request.headers)
        if request.auth:
            headers["Authorization"] = self.authorization
        return headers

    def build(
        self,
        endpoint_name: str,
        path_params: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = NO_BODY,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> ApiRequest:
        """Describe a call of ``endpoint_name``; validates ids and the body before anything is sent."""
        endpoint = ENDPOINTS[endpoint_name]
        if not endpoint.idempotent:
            _refuse_unrendered(endpoint_name, path_params or {}, json_body)
        values = {"workspace_id": self.workspace_id}
        for name, value in (path_params or {}).items():
            values[name] = check_id(value, name, endpoint_name, asset_name=name == "asset_id")
        try:
            path = endpoint.path.format(**{k: quote(v, safe=":") for k, v in values.items()})
        except KeyError as missing:
            raise RobocorpConfigError(f"{endpoint_name}(): missing argument {missing}.") from None
        body = None
        request_headers = dict(headers or {})
        if json_body is not NO_BODY:
            body = encode_json(json_body, what=f"{endpoint_name}() request body")
            request_headers["Content-Type"] = "application/json"
        return ApiRequest(
            method=endpoint.method,
            url=self.base_url + path,
            params=_clean_params(params),
            body=body,
            headers=request_headers,
            idempotent=endpoint.idempotent,
            endpoint=endpoint,
            auth=auth,
        )


_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def unrendered_template(value: Any, where: str, depth: int = 0) -> str | None:
    """The place (``payloads[0].invoice``) of the first string still holding a Jinja expression."""
    if isinstance(value, str):
        return where if _JINJA.search(value) else None
    if depth > 64:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unrendered_template(key, f"{where} key", depth + 1) or unrendered_template(
                item, f"{where}.{key}" if where else str(key), depth + 1)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if found := unrendered_template(item, f"{where}[{index}]", depth + 1):
                return found
    return None


def _refuse_unrendered(endpoint_name: str, path_params: Mapping[str, Any], json_body: Any) -> None:
    """A creating call must not send ``{{ params.x }}`` to Control Room (it would create a process run,
    work item or asset named after the template text)."""
    found = next((name for name, value in path_params.items() if unrendered_template(value, name)), None)
    if found is None and json_body is not NO_BODY:
        found = unrendered_template(json_body, "body")
    if found:
        raise RobocorpConfigError(
            f"{endpoint_name}(): {found} was not rendered: it still holds a Jinja template ('{{{{ ... }}}}'). "
            "Pass it in a templated field of the operator (see its template_fields) and check the expression "
            "(e.g. that the param or XCom it names exists); nothing was sent."
        )


def encode_json(value: Any, *, what: str) -> bytes:
    """Serialise a body strictly (no NaN, no arbitrary objects) or say what is wrong."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as err:
        raise RobocorpConfigError(
            f"{what} is not JSON-serialisable: {err}. Pass only dicts, lists, strings, numbers, booleans and None "
            "(convert dates to ISO strings, Decimals to float/str)."
        ) from None


def _clean_params(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    cleaned: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        cleaned[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return cleaned or None


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request, independent of the transport that will send it."""

    method: str
    url: str
    params: dict[str, str] | None = None
    body: bytes | Callable[[], Any] | None = None  # a callable opens a fresh file-like body per attempt
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool = True
    endpoint: Endpoint | None = None
    auth: bool = True
    stream: bool = False

    def __repr__(self) -> str:
        """Method, path and query names only: the integration endpoint's query holds the API key."""
        query = f" params={sorted(self.params)}" if self.params else ""
        return f"ApiRequest({self.method} {self.path}{query}, idempotent={self.idempotent}, auth={self.auth})"

    @property
    def path(self) -> str:
        """The URL path: what messages show (the query may hold a token, so never that)."""
        return urlsplit(self.url).path or "/"

    def with_url(self, url: str) -> ApiRequest:
        return replace(self, url=url, params=None)


@dataclass(frozen=True)
class ApiResponse:
    """A transport-neutral response (body fully read unless streamed)."""

    status: int
    headers: Mapping[str, str]
    content: bytes = b""

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None


# --- errors -----------------------------------------------------------------------------------

_ERROR_CLASSES: dict[int, type[RobocorpApiError]] = {
    400: RobocorpBadRequestError,
    401: RobocorpAuthenticationError,
    403: RobocorpPermissionError,
    404: RobocorpNotFoundError,
    409: RobocorpConflictError,
    429: RobocorpRateLimitError,
}
_TAG = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; ``None`` if absent or garbled."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _error_fields(content: bytes, content_type: str) -> tuple[str | None, str | None]:
    """Extract (code, message) from either documented error body shape, or from any text body."""
    text = content.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        inner = data.get("error")
        source = inner if isinstance(inner, dict) else data
        code = source.get("code")
        message = source.get("message")
        if isinstance(inner, str):  # {"error": "<code or text>", "message": ...}
            if message is None:
                message = inner
            elif code is None:
                code = inner
        if code is not None or message is not None:
            return (str(code) if code is not None else None, str(message) if message is not None else None)
        return None, text[:300]
    if not text:
        return None, None
    if "html" in content_type.lower() or text.lstrip().startswith("<"):
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", text)
    return None, " ".join(text.split())[:300]


def api_error(request: ApiRequest, response: ApiResponse, *, conn_id: str) -> RobocorpApiError:
    """Build the right :class:`RobocorpApiError` subclass for a non-2xx response."""
    status = response.status
    code, message = _error_fields(response.content, response.headers.get("Content-Type", ""))
    message = message or f"HTTP {status} with an empty body"
    cls = _ERROR_CLASSES.get(status, RobocorpServerError if status >= 500 else RobocorpApiError)
    hint = None
    endpoint = request.endpoint
    if status == 401:
        needs = (f"; Control Room also answers 401 to a key without the permission "
                 f"'{endpoint.permission}' that '{endpoint.title}' needs") if endpoint and endpoint.permission else ""
        hint = (
            f"Check the API key in connection '{conn_id}': it must be a valid, unexpired Control Room "
            f"workspace API key (the RC-WSKEY prefix is optional){needs}"
        )
    elif status == 403:
        permission = endpoint.permission if endpoint else None
        where = f"'{endpoint.title if endpoint else request.path}' needs the API key permission '{permission}'" if permission else (
            "the API key is not allowed to do this"
        )
        hint = f"{where}; grant it to the key of connection '{conn_id}' in Control Room (API keys), or use another key"
    elif status == 404 and endpoint is not None:
        hint = f"Check the ids and that they belong to the workspace of connection '{conn_id}'"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return cls(status, code, message, request.method, request.path, hint=hint, retry_after=retry_after)


def raise_for_response(request: ApiRequest, response: ApiResponse, *, conn_id: str) -> Any:
    """Return the decoded JSON of a 2xx response, or raise the matching API error."""
    if 200 <= response.status < 300:
        try:
            return response.json()
        except ValueError:
            raise RobocorpApiError(
                response.status,
                None,
                "the response body is not JSON: " + " ".join(response.content[:200].decode("utf-8", "replace").split()),
                request.method,
                request.path,
            ) from None
    raise api_error(request, response, conn_id=conn_id)


_TLS_CAUSES = (
    ("hostname mismatch", "the certificate is not valid for this host name (hostname mismatch)"),
    ("ip address mismatch", "the certificate is not valid for this address (hostname mismatch: IP address)"),
    ("doesn't match", "the certificate is not valid for this host name (hostname mismatch)"),
    ("self-signed certificate", "certificate verify failed: self-signed certificate"),
    ("self signed certificate", "certificate verify failed: self-signed certificate"),
    ("unable to get local issuer certificate", "certificate verify failed: unable to get local issuer certificate "
                                               "(the issuing CA is not trusted)"),
    ("certificate has expired", "certificate verify failed: the certificate has expired"),
    ("certificate_verify_failed", "certificate verify failed"),
    ("certificate verify failed", "certificate verify failed"),
    ("wrong_version_number", "the server did not answer with TLS (wrong version number: is it plain http?)"),
)


def tls_error(request: ApiRequest, raw: str, *, conn_id: str) -> RobocorpTLSError:
    """A TLS failure, with its cause picked from known phrases (the raw text may hold the URL and
    its query, so it is never copied) and the fix."""
    text = raw.lower()
    cause = next((said for phrase, said in _TLS_CAUSES if phrase in text), "the TLS handshake failed")
    return RobocorpTLSError(
        f"TLS error: {cause}. Not retried. If Control Room is reached through a TLS-inspecting proxy or a "
        f"private CA, set the extra 'verify' of connection '{conn_id}' to the path of a CA bundle that "
        "trusts it (verify=false turns checking off: only for testing)",
        method=request.method, path=request.path, reached_server=False,
    )


def transport_error(request: ApiRequest, detail: str, *, reached_server: bool | None) -> RobocorpTransportError:
    """Translate a network failure; a lost answer to a creating request is flagged, never retried."""
    if reached_server is False:
        return RobocorpTransportError(
            f"could not connect to Control Room ({detail})", method=request.method, path=request.path, reached_server=False
        )
    if not request.idempotent:
        return RobocorpRequestMayHaveBeenAppliedError(
            f"the request was sent but no answer came back ({detail}). Control Room may have applied it, so it "
            "was not retried automatically: check whether it took effect (e.g. list the process runs or work "
            "items) before trying again",
            method=request.method,
            path=request.path,
            reached_server=reached_server,
        )
    return RobocorpTransportError(
        f"the connection failed before an answer came back ({detail})",
        method=request.method,
        path=request.path,
        reached_server=reached_server,
    )


# --- retries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before repeating a request; the same for both transports.

    Retried: failures to connect (nothing reached the server), 429 and 503 (the server refused the
    work), and for idempotent requests also 500/502/504 and connections lost mid-answer. A
    ``Retry-After`` header is honoured; otherwise exponential back-off with jitter.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = MAX_RETRY_AFTER

    def should_retry(self, request: ApiRequest, exc: BaseException) -> bool:
        if isinstance(exc, RobocorpApiError):
            if exc.retry_after is not None and exc.retry_after > self.max_retry_after:
                return False
            if exc.status in (429, 503):
                return True
            return request.idempotent and exc.status in (500, 502, 504)
        if isinstance(exc, RobocorpRequestMayHaveBeenAppliedError | RobocorpTLSError):
            return False
        if isinstance(exc, RobocorpTransportError):
            return exc.reached_server is False or request.idempotent
        return False

    def wait_seconds(self, attempt: int, exc: BaseException | None) -> float:
        if isinstance(exc, RobocorpApiError) and exc.retry_after is not None:
            return exc.retry_after
        backoff = tenacity.wait_exponential_jitter(
            initial=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
        )
        return float(backoff(_AttemptState(attempt)))  # type: ignore[arg-type]

    def log_retry(self, request: ApiRequest, exc: BaseException | None, attempt: int, delay: float) -> None:
        log.warning(
            "Control Room request %s %s failed (%s); retry %d of %d in %.1f s",
            request.method,
            request.path,
            _short(exc),
            attempt,
            self.max_retries,
            delay,
        )

    def first_retry(self, request: ApiRequest, exc: BaseException) -> float | None:
        """After a first attempt failed with ``exc``: the wait before retry 1 (logged), or ``None``
        when the failure is not to be retried. The transports make the first attempt without
        tenacity (the common, successful case then costs no retry machinery) and hand the rest
        to :meth:`tenacity_kwargs` with ``done=1``."""
        if self.max_retries < 1 or not self.should_retry(request, exc):
            return None
        delay = self.wait_seconds(1, exc)
        self.log_retry(request, exc, 1, delay)
        return delay

    def tenacity_kwargs(self, request: ApiRequest, *, done: int = 0) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` implementing this policy
        (``done``: attempts already made and failed before tenacity takes over)."""

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(state.attempt_number + done, exc)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            self.log_retry(request, exc, state.attempt_number + done, delay)

        return {
            "stop": tenacity.stop_after_attempt(self.max_retries + 1 - done),
            "retry": tenacity.retry_if_exception(lambda exc: self.should_retry(request, exc)),
            "wait": wait,
            "before_sleep": before_sleep,
            "reraise": True,
        }


@dataclass
class _AttemptState:
    attempt_number: int


def _short(exc: BaseException | None) -> str:
    if isinstance(exc, RobocorpApiError):
        return f"HTTP {exc.status}"
    return type(exc).__name__ if exc else "unknown error"


# --- pagination -------------------------------------------------------------------------------


def page_data(request: ApiRequest, page: Any) -> list[Any]:
    """The ``data`` list of a paginated response, checked."""
    if not isinstance(page, dict) or not isinstance(page.get("data"), list):
        raise RobocorpError(f"{request.method} {request.path}: expected a paginated response with a 'data' list.")
    return page["data"]


def next_page(request: ApiRequest, page: dict[str, Any], settings: ConnectionSettings) -> ApiRequest | None:
    """The request for the page after ``page``, or ``None`` at the end.

    ``next`` is a full URL; it must point at the configured Control Room origin, so the API key is
    never sent elsewhere.
    """
    if not page.get("has_more"):
        return None
    next_url = page.get("next")
    if not isinstance(next_url, str) or not next_url:
        raise RobocorpError(
            f"{request.method} {request.path}: the response says has_more=true but gives no 'next' URL."
        )
    if not next_url.startswith(settings.origin + "/"):
        raise RobocorpError(
            f"{request.method} {request.path}: refusing to follow a 'next' URL outside {settings.origin}."
        )
    return request.with_url(next_url)
