"""The async (httpx) transport used by triggers: same URLs, auth, bodies, errors, retries and paging
as the sync one, shown against a real HTTP server on loopback (requests_mock cannot see httpx)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from airflow_provider_robocorp import __version__
from airflow_provider_robocorp.exceptions import (
    RobocorpConfigError,
    RobocorpError,
    RobocorpNotFoundError,
    RobocorpPermissionError,
    RobocorpRateLimitError,
    RobocorpServerError,
    RobocorpTransportError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import KEY, WS, Reply, ScriptedServer, closed_port, set_json_conn

RUN_PATH = f"/api/v1/workspaces/{WS}/process-runs/pr-1"


def run(action: Callable[[RobocorpHook], Awaitable[Any]], **hook_kwargs: Any) -> Any:
    async def main() -> Any:
        hook = RobocorpHook(**hook_kwargs)
        try:
            return await action(hook)
        finally:
            await hook.aclose()

    return asyncio.run(main())


async def _collect(iterator) -> list:
    return [item async for item in iterator]


def test_aget_process_run(loopback_conn: ScriptedServer) -> None:
    loopback_conn.script(Reply(200, {"id": "pr-1", "state": "in_progress"}))
    assert run(lambda h: h.aget_process_run("pr-1")) == {"id": "pr-1", "state": "in_progress"}
    (request,) = loopback_conn.requests
    assert (request.method, request.target) == ("GET", RUN_PATH)
    assert request.headers["authorization"] == f"RC-WSKEY {KEY}"
    assert request.headers["user-agent"].startswith(f"airflow-provider-robocorp/{__version__} ")
    assert request.headers["accept"] == "application/json"
    assert "content-type" not in request.headers
    assert request.body == b""


def test_async_and_sync_send_the_same_request(loopback_conn: ScriptedServer) -> None:
    loopback_conn.script(Reply(200, {"accepted": True}), Reply(200, {"accepted": True}))
    hook = RobocorpHook()
    hook.stop_process_run("pr-1", reason="task killed")
    hook.close()
    run(lambda h: h.astop_process_run("pr-1", reason="task killed"))
    sync, async_ = loopback_conn.requests
    assert (sync.method, sync.target, sync.body) == (async_.method, async_.target, async_.body)
    for header in ("authorization", "user-agent", "accept", "content-type"):
        assert sync.headers[header] == async_.headers[header]


def test_astop_process_run_body(loopback_conn: ScriptedServer) -> None:
    loopback_conn.script(Reply(200, {"accepted": True}))
    result = run(lambda h: h.astop_process_run("pr-1", set_remaining_work_items_as_done=True))
    assert result == {"accepted": True}
    (request,) = loopback_conn.requests
    assert (request.method, request.path) == ("POST", f"{RUN_PATH}/stop")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"set_remaining_work_items_as_done": True, "terminate_ongoing_activity_runs": True}


def test_alist_work_items_follows_next(loopback_conn: ScriptedServer) -> None:
    server = loopback_conn
    next_url = f"{server.ws_url}work-items?process_run_id=pr-1&state=failed&limit=2&cursor=Mg"
    server.script(
        Reply(200, {"data": [{"id": "wi-1"}, {"id": "wi-2"}], "has_more": True, "next": next_url}),
        Reply(200, {"data": [{"id": "wi-3"}], "has_more": False, "next": None}),
    )
    items = run(lambda h: _collect(h.alist_work_items(process_run_id="pr-1", state="failed", limit=2)))
    assert [i["id"] for i in items] == ["wi-1", "wi-2", "wi-3"]
    first, second = server.requests
    assert first.path == f"/api/v1/workspaces/{WS}/work-items"
    assert dict(first.query) == {"process_run_id": "pr-1", "state": "failed", "limit": "2"}
    assert server.origin + second.target == next_url
    assert second.headers["authorization"] == f"RC-WSKEY {KEY}"


def test_alist_is_lazy(loopback_conn: ScriptedServer) -> None:
    server = loopback_conn
    server.script(Reply(200, {"data": [{"id": "a"}, {"id": "b"}], "has_more": True,
                              "next": f"{server.ws_url}step-runs?cursor=2"}))

    async def first_item(hook: RobocorpHook) -> Any:
        iterator = hook.alist_step_runs("pr-1", limit=5)
        assert server.requests == []
        return await iterator.__anext__()

    assert run(first_item) == {"id": "a"}
    (request,) = server.requests
    assert (request.path, dict(request.query)) == (f"/api/v1/workspaces/{WS}/step-runs",
                                                   {"process_run_id": "pr-1", "limit": "5"})


def test_alist_refuses_a_foreign_next(loopback_conn: ScriptedServer) -> None:
    loopback_conn.script(Reply(200, {"data": [], "has_more": True, "next": "https://evil.example.com/api/v1/x"}))
    with pytest.raises(RobocorpError, match="refusing to follow a 'next' URL outside http://127.0.0.1:"):
        run(lambda h: _collect(h.alist_step_runs("pr-1")))
    assert len(loopback_conn.requests) == 1


def test_async_429_is_retried_after_retry_after(loopback_conn: ScriptedServer, async_sleeps) -> None:
    loopback_conn.script(
        Reply(429, {"code": "rate_limited", "message": "slow"}, headers={"Retry-After": "2"}),
        Reply(200, {"id": "pr-1", "state": "completed"}),
    )
    assert run(lambda h: h.aget_process_run("pr-1"))["state"] == "completed"
    assert async_sleeps == [2.0]
    assert len(loopback_conn.requests) == 2


def test_async_503_is_retried(loopback_conn: ScriptedServer, async_sleeps) -> None:
    loopback_conn.script(Reply(503, body=b"<html><title>503 Service Unavailable</title></html>"),
                         Reply(200, {"data": [{"id": "wi-1"}], "has_more": False, "next": None}))
    assert run(lambda h: _collect(h.alist_work_items())) == [{"id": "wi-1"}]
    assert len(async_sleeps) == 1 and 1.0 <= async_sleeps[0] <= 2.0
    assert len(loopback_conn.requests) == 2


def test_async_retries_are_bounded(loopback_conn: ScriptedServer, async_sleeps) -> None:
    loopback_conn.script(*[Reply(502, body=b"<title>502 Bad Gateway</title>", headers={"Content-Type": "text/html"})] * 3)
    with pytest.raises(RobocorpServerError) as err:
        run(lambda h: h.aget_process_run("pr-1"), max_retries=2)
    assert err.value.message == "502 Bad Gateway"
    assert len(loopback_conn.requests) == 3
    assert len(async_sleeps) == 2


def test_async_retry_after_over_300_seconds_is_not_waited(loopback_conn: ScriptedServer, async_sleeps) -> None:
    loopback_conn.script(Reply(429, {"code": "rate_limited", "message": "later"}, headers={"Retry-After": "900"}))
    with pytest.raises(RobocorpRateLimitError) as err:
        run(lambda h: h.aget_process_run("pr-1"))
    assert err.value.retry_after == 900.0
    assert async_sleeps == []


def test_async_403_names_the_permission(loopback_conn: ScriptedServer, async_sleeps) -> None:
    loopback_conn.script(Reply(403, {"error": {"code": "forbidden", "message": "Permission denied"}}))
    with pytest.raises(RobocorpPermissionError) as err:
        run(lambda h: h.aget_process_run("pr-1"))
    e = err.value
    assert (e.status, e.code, e.message, e.method, e.path) == (403, "forbidden", "Permission denied", "GET", RUN_PATH)
    assert "'Get process run' needs the API key permission 'Processes.read_processes'" in str(e)
    assert KEY not in str(e)
    assert len(loopback_conn.requests) == 1
    assert async_sleeps == []


def test_async_404_flat_body(loopback_conn: ScriptedServer) -> None:
    loopback_conn.script(Reply(404, {"code": "not_found", "message": "No such run"}))
    with pytest.raises(RobocorpNotFoundError) as err:
        run(lambda h: h.aget_process_run("pr-1"))
    assert (err.value.code, err.value.message) == ("not_found", "No such run")


def test_async_500_on_stop_is_retried_like_sync(loopback_conn: ScriptedServer, async_sleeps) -> None:
    loopback_conn.script(Reply(500), Reply(200, {"accepted": True}))
    assert run(lambda h: h.astop_process_run("pr-1")) == {"accepted": True}
    assert len(loopback_conn.requests) == 2


def test_async_read_timeout_on_get_is_retried(loopback_conn: ScriptedServer, async_sleeps) -> None:
    loopback_conn.script(Reply(action="hang"), Reply(200, {"id": "pr-1", "state": "new"}))
    assert run(lambda h: h.aget_process_run("pr-1"), timeout=0.3)["state"] == "new"
    assert len(loopback_conn.requests) == 2
    assert len(async_sleeps) == 1


def test_async_connection_refused(monkeypatch, async_sleeps) -> None:
    set_json_conn(monkeypatch, login=WS, password=KEY, host=f"http://127.0.0.1:{closed_port()}/api/v1/")
    with pytest.raises(RobocorpTransportError) as err:
        run(lambda h: h.aget_process_run("pr-1"), max_retries=2)
    assert err.value.reached_server is False
    assert len(async_sleeps) == 2


def test_async_validation_before_any_request(loopback_conn: ScriptedServer) -> None:
    with pytest.raises(RobocorpConfigError, match="'process_run_id' must be a non-empty string"):
        run(lambda h: h.aget_process_run(""))
    with pytest.raises(RobocorpConfigError, match="reason must be a non-empty string"):
        run(lambda h: h.astop_process_run("pr-1", reason=""))
    with pytest.raises(RobocorpConfigError, match="limit must be a positive whole number"):
        run(lambda h: _collect(h.alist_step_runs("pr-1", limit=0)))
    assert loopback_conn.requests == []


def test_async_missing_key_names_the_connection(monkeypatch, server: ScriptedServer) -> None:
    set_json_conn(monkeypatch, login=WS, host=server.base_url)
    with pytest.raises(RobocorpConfigError, match="Connection 'robocorp_default' has no API key"):
        run(lambda h: h.aget_workspace())
    assert server.requests == []


@pytest.mark.anyio
async def test_with_anyio_runner(loopback_conn: ScriptedServer) -> None:
    loopback_conn.script(Reply(200, {"id": WS, "name": "Finance"}))
    hook = RobocorpHook()
    try:
        assert await hook.aget_workspace() == {"id": WS, "name": "Finance"}
    finally:
        await hook.aclose()
    assert loopback_conn.requests[0].path == f"/api/v1/workspaces/{WS}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
