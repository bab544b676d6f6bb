"""The two transports of the request pipeline: ``requests`` (sync) and ``httpx`` (async).

Both take an :class:`ApiRequest`, apply the same :class:`RetryPolicy` through tenacity, and
return the decoded JSON via :func:`raise_for_response`. They differ only in how bytes move and in
how their network errors map onto "never connected" versus "the answer was lost".
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests
import requests.adapters
import tenacity
import urllib3.exceptions
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.poolmanager import PoolKey

from airflow_provider_robocorp.exceptions import RobocorpError, RobocorpTransportError
from airflow_provider_robocorp.hooks._pipeline import (
    ApiRequest,
    ApiResponse,
    ConnectionSettings,
    RetryPolicy,
    api_error,
    next_page,
    page_data,
    raise_for_response,
    tls_error,
    transport_error,
)


class _RedactTokenFilter(logging.Filter):
    """Hide ``token=`` query values (the integration endpoint's API key) in urllib3's DEBUG lines."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = self._TOKEN.sub(r"\1***", message), ()
        return True


# urllib3 logs every request line, query included, at DEBUG: keep the key out of it.
logging.getLogger("urllib3.connectionpool").addFilter(_RedactTokenFilter())


def _policy(settings: ConnectionSettings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries,
        backoff_initial=settings.backoff_initial,
        backoff_max=settings.backoff_max,
    )


def _exception_text(exc: BaseException) -> str:
    """The exception's text and its causes' (to spot a TLS failure; never shown as is)."""
    parts, seen = [], 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        parts.append(f"{type(current).__name__} {current}")
        current, seen = current.__cause__ or current.__context__, seen + 1
    return " | ".join(parts)


def _is_tls_failure(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(5):
        if current is None:
            return False
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return True
        current = current.__cause__ or current.__context__
    text = _exception_text(exc).lower()
    return "certificate" in text or "[ssl" in text


def _never_connected(exc: requests.RequestException) -> bool:
    """True when requests failed before the request left this machine (safe to repeat anything)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ProxyError | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError | ConnectTimeoutError)
    return False


def _split_page(
    request: ApiRequest, page: Any, settings: ConnectionSettings
) -> tuple[list[Any], ApiRequest | None, RobocorpError | None]:
    """A page's items, the request for the next page, and why there cannot be one (if so)."""
    data = page_data(request, page)
    try:
        return data, next_page(request, page, settings), None
    except RobocorpError as err:
        return data, None, err


#: Bytes per write of a streamed download.
DOWNLOAD_BLOCK_SIZE = 1 << 20
#: Bytes read from a file body and sent per socket write (http.client's default is 8-16 KiB,
#: which caps a streamed 1 GiB upload at about half of curl's speed on loopback).
UPLOAD_BLOCK_SIZE = 1 << 20


class _Adapter(requests.adapters.HTTPAdapter):
    """The default adapter with large send blocks for streamed bodies (urllib3 >= 2)."""

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        if "key_blocksize" in PoolKey._fields:
            pool_kwargs.setdefault("blocksize", UPLOAD_BLOCK_SIZE)
        super().init_poolmanager(*args, **pool_kwargs)


class SyncTransport:
    """``requests``-based transport: one ``Session`` (connection pool) per hook."""

    def __init__(self, settings: ConnectionSettings, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or _policy(settings)
        self.session = requests.Session()
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, _Adapter())
        self.session.headers.update(settings.headers(auth=False))
        if settings.proxies:
            self.session.proxies.update(settings.proxies)
        self.session.verify = settings.verify

    def close(self) -> None:
        self.session.close()

    def _send_once(self, request: ApiRequest) -> ApiResponse | requests.Response:
        headers = self.settings.request_headers(request)
        body = request.body() if callable(request.body) else request.body
        # Errors are raised outside the ``except`` blocks so that no exception context (whose text
        # may hold the integration endpoint's token) is attached to them.
        failure: RobocorpTransportError | None = None
        try:
            response = self.session.request(
                request.method,
                request.url,
                params=request.params,
                data=body,
                headers=headers,
                timeout=(min(10.0, self.settings.timeout), self.settings.timeout),
                # Per request: requests lets REQUESTS_CA_BUNDLE / *_PROXY override the session's values.
                verify=self.settings.verify,
                proxies=self.settings.proxies,
                stream=request.stream,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            failure = tls_error(request, str(exc), conn_id=self.settings.conn_id)
        except requests.exceptions.ReadTimeout:
            failure = transport_error(
                request, f"no answer within {self.settings.timeout:g} s (read timeout)", reached_server=True
            )
        except requests.RequestException as exc:
            never = _never_connected(exc)
            failure = transport_error(request, type(exc).__name__, reached_server=False if never else None)
        finally:
            if body is not None and hasattr(body, "close"):
                body.close()
        if failure is not None:
            raise failure
        if request.stream and 200 <= response.status_code < 300:
            return response
        try:
            content = response.content
        except requests.RequestException as exc:
            failure = transport_error(request, f"answer cut off ({type(exc).__name__})", reached_server=True)
        finally:
            response.close()
        if failure is not None:
            raise failure
        result = ApiResponse(response.status_code, response.headers, content)
        if not 200 <= result.status < 300:
            raise api_error(request, result, conn_id=self.settings.conn_id)
        return result

    def _send_retrying(self, request: ApiRequest) -> ApiResponse | requests.Response:
        """One attempt; only if it fails in a retryable way, tenacity makes the rest."""
        failure: RobocorpError | None = None
        try:
            return self._send_once(request)
        except RobocorpError as exc:
            failure = exc
        delay = self.policy.first_retry(request, failure)
        if delay is None:
            raise failure
        time.sleep(delay)
        for attempt in tenacity.Retrying(**self.policy.tenacity_kwargs(request, done=1)):
            with attempt:
                response = self._send_once(request)
        return response

    def send(self, request: ApiRequest) -> Any:
        """Send with retries; return the decoded JSON body."""
        response = self._send_retrying(request)
        assert isinstance(response, ApiResponse)
        return raise_for_response(request, response, conn_id=self.settings.conn_id)

    def open_stream(self, request: ApiRequest) -> requests.Response:
        """Send with retries and return the still-open streaming response (caller closes it)."""
        response = self._send_retrying(replace(request, stream=True))
        assert isinstance(response, requests.Response)
        return response

    def download(self, request: ApiRequest, target: Path | None) -> bytes | str:
        """GET a body whole (``target`` None: return the bytes) or into ``target`` via a ``.part``
        file renamed at the end. A body cut off mid-way is fetched again from the start, within
        the retry policy; no ``.part`` file is ever left behind."""
        partial = None if target is None else target.with_name(target.name + ".part")
        failure = ""
        for attempt in range(self.policy.max_retries + 1):
            if attempt:
                delay = self.policy.wait_seconds(attempt, None)
                self.policy.log_retry(request, None, attempt, delay)
                time.sleep(delay)
            response = self.open_stream(request)
            try:
                if partial is None:
                    return response.content
                with partial.open("wb") as out:
                    for chunk in response.iter_content(DOWNLOAD_BLOCK_SIZE):
                        out.write(chunk)
                partial.replace(target)  # type: ignore[arg-type]
                return str(target)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                failure = type(exc).__name__
            finally:
                response.close()
                if partial is not None:
                    partial.unlink(missing_ok=True)
        raise RobocorpTransportError(
            f"the download was cut off before its end {self.policy.max_retries + 1} time(s) ({failure}); "
            "nothing was written", method=request.method, path=request.path, reached_server=True,
        )

    def pages(self, request: ApiRequest) -> Iterator[list[Any]]:
        """Yield each page's ``data`` list; nothing of a page is kept once the next is requested."""
        current: ApiRequest | None = request
        while current is not None:
            page = self.send(current)
            data, current, failure = _split_page(current, page, self.settings)
            del page
            yield data
            del data
            if failure is not None:  # a bad ``next``: the items before it were still handed out
                raise failure

    def paginate(self, request: ApiRequest) -> Iterator[Any]:
        """Yield items lazily; a page is fetched only when the one before is used up and let go."""
        pages = self.pages(request)
        while True:
            items = next(pages, None)
            if items is None:
                return
            items.reverse()  # hand items out by popping, so the page empties as it is used
            while items:
                yield items.pop()
            del items  # not even the emptied list is kept while the next page is fetched


class AsyncTransport:
    """``httpx``-based transport for triggers; same requests, policy and errors as the sync one."""

    def __init__(
        self, settings: ConnectionSettings, policy: RetryPolicy | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        import httpx

        self.settings = settings
        self.policy = policy or _policy(settings)
        # A shared context (see ``_shared``) spares every client its own CA bundle load.
        verify: ssl.SSLContext | bool = tls_context if tls_context is not None else (
            ssl.create_default_context(cafile=settings.verify) if isinstance(settings.verify, str) else settings.verify
        )
        mounts = None
        if settings.proxies:
            mounts = {
                f"{scheme}://": httpx.AsyncHTTPTransport(proxy=url, verify=verify)
                for scheme, url in settings.proxies.items()
                if scheme in ("http", "https")
            }
        self.client = httpx.AsyncClient(
            headers=settings.headers(auth=False),
            verify=verify,
            mounts=mounts,
            timeout=httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout)),
            follow_redirects=False,
            trust_env=True,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _send_once(self, request: ApiRequest) -> ApiResponse:
        import httpx

        headers = self.settings.request_headers(request)
        if callable(request.body):
            raise TypeError("the async transport sends only in-memory bodies")
        failure: RobocorpTransportError | None = None
        try:
            response = await self.client.request(
                request.method, request.url, params=request.params, content=request.body, headers=headers
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:
            if _is_tls_failure(exc):
                failure = tls_error(request, _exception_text(exc), conn_id=self.settings.conn_id)
            else:
                failure = transport_error(request, type(exc).__name__, reached_server=False)
        except httpx.ReadTimeout:
            failure = transport_error(
                request, f"no answer within {self.settings.timeout:g} s (read timeout)", reached_server=True
            )
        except httpx.TransportError as exc:
            failure = transport_error(request, type(exc).__name__, reached_server=None)
        if failure is not None:
            raise failure
        result = ApiResponse(response.status_code, response.headers, response.content)
        if not 200 <= result.status < 300:
            raise api_error(request, result, conn_id=self.settings.conn_id)
        return result

    async def send(self, request: ApiRequest) -> Any:
        """Send with retries (tenacity only after a retryable first failure); return the JSON."""
        failure: RobocorpError | None = None
        try:
            response = await self._send_once(request)
        except RobocorpError as exc:
            failure = exc
        if failure is not None:
            delay = self.policy.first_retry(request, failure)
            if delay is None:
                raise failure
            await asyncio.sleep(delay)
            async for attempt in tenacity.AsyncRetrying(**self.policy.tenacity_kwargs(request, done=1)):
                with attempt:
                    response = await self._send_once(request)
        return raise_for_response(request, response, conn_id=self.settings.conn_id)

    async def pages(self, request: ApiRequest) -> AsyncGenerator[list[Any], None]:
        """Yield each page's ``data`` list; nothing of a page is kept once the next is requested."""
        current: ApiRequest | None = request
        while current is not None:
            page = await self.send(current)
            data, current, failure = _split_page(current, page, self.settings)
            del page
            yield data
            del data
            if failure is not None:  # a bad ``next``: the items before it were still handed out
                raise failure

    async def paginate(self, request: ApiRequest) -> AsyncIterator[Any]:
        """Yield items lazily, one page in memory at a time (as the sync :meth:`SyncTransport.paginate`)."""
        pages = self.pages(request)
        try:
            while True:
                items = await anext(pages, None)
                if items is None:
                    return
                items.reverse()
                while items:
                    yield items.pop()
                del items
        finally:
            await pages.aclose()

