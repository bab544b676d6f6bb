"""The async (httpx) transport the triggers use, against the emulator, under ``asyncio.run``:
same requests, paging and retry policy as the sync one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_robocorp.exceptions import (
    RobocorpNotFoundError,
    RobocorpRequestMayHaveBeenAppliedError,
    RobocorpServerError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import endpoint_regex, fast_hook, hits, log_mark, raises, settled_log, state_of


@pytest.fixture
def runs(frozen: Any) -> dict[str, str]:
    """A run of 5 invoices in progress (two step runs open) and a slow run in progress."""
    hook = fast_hook()
    invoices = hook.start_process_run("proc-invoices", payloads=[{"invoice": n} for n in range(5)])["id"]
    slow = hook.start_process_run("proc-slow")["id"]
    frozen.advance(0.8)  # item 1 done (both steps), item 2 in step 2, item 3 in step 1
    assert {s["state"] for s in hook.list_step_runs(invoices)} == {"in_progress"}
    hook.close()
    return {"invoices": invoices, "slow": slow}


def _statuses(emulator: Any, name: str, since: int = 0) -> list[int | None]:
    method = "POST" if name == "stop_process_run" else "GET"
    return [e["status"] for e in hits(settled_log(emulator, since), method, endpoint_regex(name))]


def test_aget_process_run_retries_a_503(frozen: Any, runs: dict[str, str]) -> None:
    frozen.add_fault(kind="status", status=503, method="GET", path="/process-runs/", times=1)

    async def main() -> dict[str, Any]:
        hook = fast_hook()
        try:
            return await hook.aget_process_run(runs["invoices"])
        finally:
            await hook.aclose()

    run = asyncio.run(main())
    assert run["id"] == runs["invoices"] and run["state"] == "in_progress"
    assert _statuses(frozen, "get_process_run") == [503, 200]


def test_alist_work_items_pages_lazily_and_retries_a_503_mid_way(frozen: Any, runs: dict[str, str]) -> None:
    mark = log_mark(frozen)

    async def main() -> list[dict[str, Any]]:
        hook = fast_hook()
        items: list[dict[str, Any]] = []
        try:
            async for item in hook.alist_work_items(process_run_id=runs["invoices"], limit=2):
                items.append(item)
                if len(items) == 2:
                    # only the first page was fetched so far; the next one meets a 503 first
                    assert len(hits(settled_log(frozen, mark), "GET", endpoint_regex("list_work_items"))) == 1
                    frozen.add_fault(kind="status", status=503, method="GET", path="/work-items$", times=1)
        finally:
            await hook.aclose()
        return items

    items = asyncio.run(main())
    assert len(items) == 5 and len({i["id"] for i in items}) == 5
    assert [i["state"] for i in items] == ["done", "in_progress", "in_progress", "pending", "pending"]
    assert _statuses(frozen, "list_work_items", mark) == [200, 503, 200, 200]
    # pages 2 and 3 (and the retry of page 2) came from the `next` URLs
    log = hits(settled_log(frozen, mark), "GET", endpoint_regex("list_work_items"))
    assert ["cursor" in e["query_keys"] for e in log] == [False, True, True, True]


def test_alist_step_runs_pages(frozen: Any, runs: dict[str, str]) -> None:
    frozen.add_fault(kind="status", status=503, method="GET", path="/step-runs$", times=1)
    mark = log_mark(frozen)

    async def main() -> list[dict[str, Any]]:
        hook = fast_hook()
        try:
            return [s async for s in hook.alist_step_runs(runs["invoices"], limit=1)]
        finally:
            await hook.aclose()

    step_runs = asyncio.run(main())
    assert [s["step"]["id"] for s in step_runs] == ["step-read-invoice", "step-book-invoice"]
    assert _statuses(frozen, "list_step_runs", mark) == [503, 200, 200]


def test_astop_process_run_retries_a_503(frozen: Any, runs: dict[str, str]) -> None:
    frozen.add_fault(kind="status", status=503, method="POST", path="/stop$", times=1)

    async def main() -> dict[str, Any]:
        hook = fast_hook()
        try:
            return await hook.astop_process_run(runs["slow"], reason="trigger on_kill")
        finally:
            await hook.aclose()

    assert asyncio.run(main()) == {"accepted": True}
    assert _statuses(frozen, "stop_process_run") == [503, 200]
    hook = fast_hook()
    assert hook.get_process_run(runs["slow"])["state"] == "unresolved"
    [item] = hook.list_work_items(process_run_id=runs["slow"])
    assert item["exception"]["message"] == "trigger on_kill"
    hook.close()


def test_async_hook_resolves_its_connection_itself(frozen: Any, runs: dict[str, str]) -> None:
    """No sync call first: the async path loads the connection with ``aget_connection``; with the
    default back-off, a 503 with ``Retry-After: 0`` is retried at once."""
    frozen.add_fault(kind="status", status=503, retry_after=0, method="GET", times=1)

    async def main() -> tuple[dict[str, Any], dict[str, int]]:
        hook = RobocorpHook()
        try:
            workspace = await hook.aget_workspace()
            return workspace, await hook.awork_item_counts(runs["invoices"])
        finally:
            await hook.aclose()

    workspace, counts = asyncio.run(main())
    assert workspace["id"] == "ws-emulator"
    assert counts == {"total": 5, "done": 1, "failed": 0, "in_progress": 2, "pending": 2}
    assert _statuses(frozen, "get_workspace") == [503, 200]


def test_async_errors_match_the_sync_ones(frozen: Any, runs: dict[str, str]) -> None:
    frozen.add_fault(kind="status", status=500, method="POST", path="/stop$", times=1)
    frozen.add_fault(kind="drop", method="POST", path="/stop$", times=1)

    async def main() -> None:
        hook = fast_hook()
        try:
            with raises(RobocorpNotFoundError, match="Check the ids"):
                await hook.aget_process_run("no-such-run")
            # stop is idempotent: a 500 and then a lost answer are both retried
            assert await hook.astop_process_run(runs["slow"]) == {"accepted": True}
        finally:
            await hook.aclose()

    asyncio.run(main())
    assert _statuses(frozen, "stop_process_run") == [500, None, 200]


def test_async_transport_does_not_retry_a_creating_call(frozen: Any) -> None:
    """The async path has no creating method of its own; drive one through its transport to show
    it classifies a lost answer like the sync one."""
    frozen.add_fault(kind="drop", method="POST", path="/work-items$", times=1)
    frozen.add_fault(kind="status", status=500, method="POST", path="/work-items$", times=1)

    async def main() -> None:
        hook = fast_hook()
        transport = await hook._async_transport()
        request = hook.settings.build("create_work_item", json_body={"process": {"id": "proc-invoices"},
                                                                     "payload": {"a": 1}})
        try:
            with raises(RobocorpRequestMayHaveBeenAppliedError):
                await transport.send(request)
            with raises(RobocorpServerError):
                await transport.send(request)
        finally:
            await hook.aclose()

    asyncio.run(main())
    assert [e["fault"] for e in hits(settled_log(frozen), "POST", endpoint_regex("create_work_item"))] == [
        "drop", "status"]
    assert state_of(frozen, "work_items") == []  # neither attempt created anything, and none was repeated
