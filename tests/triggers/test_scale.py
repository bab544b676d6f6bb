"""What lets one triggerer wait on thousands of runs: shared connection settings and TLS context,
created off the event loop and released with the last user; progress that never delays an event."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from airflow_provider_robocorp.hooks import _shared
from airflow_provider_robocorp.hooks._shared import SHARED
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger
from tests.operators.helpers import run_trigger


@pytest.fixture
def clean_registry():
    assert not SHARED.settings and not SHARED.tls, "an earlier test leaked a lease"
    yield SHARED
    assert not SHARED.settings and not SHARED.tls, "a lease was not released"


@pytest.mark.usefixtures("robocorp_conn_env", "clean_registry")
def test_triggers_in_one_loop_share_settings_and_tls_context_made_once_off_the_loop(monkeypatch, robocorp_emulator):
    lookups: list[str] = []
    tls_threads: list[int] = []
    real_lookup = RobocorpHook.aget_connection
    real_tls = _shared.create_tls_context

    async def counting_lookup(conn_id: str) -> Any:
        lookups.append(conn_id)
        await asyncio.sleep(0.01)  # concurrent first users must wait for this one lookup
        return await real_lookup(conn_id)

    def recording_tls(verify: bool | str) -> Any:
        tls_threads.append(threading.get_ident())
        return real_tls(verify)

    monkeypatch.setattr(RobocorpHook, "aget_connection", staticmethod(counting_lookup))
    monkeypatch.setattr(_shared, "create_tls_context", recording_tls)

    async def scenario() -> tuple[list[Any], int]:
        hooks = [RobocorpHook() for _ in range(5)]
        transports = await asyncio.gather(*(hook._async_transport() for hook in hooks))
        runs = await asyncio.gather(*(hook.aget_workspace() for hook in hooks))
        assert all(run["id"] == robocorp_emulator.workspace_id for run in runs)
        contexts = {id(hook._lease.tls_context) for hook in hooks if hook._lease}
        settings = {id(hook.settings) for hook in hooks}
        clients = {id(t.client) for t in transports}
        assert len(contexts) == 1 and len(settings) == 1  # shared
        assert len(clients) == 5  # each trigger keeps its own small client (measured faster)
        assert len(SHARED.tls) == 1 and next(iter(SHARED.tls.values())).users == 5
        for hook in hooks:
            await hook.aclose()
        return hooks, threading.get_ident()

    _, loop_thread = asyncio.run(scenario())
    assert lookups == ["robocorp_default"]  # one connection lookup for five concurrent starts
    assert len(tls_threads) == 1 and tls_threads[0] != loop_thread  # one CA load, not on the event loop


@pytest.mark.usefixtures("robocorp_conn_env", "clean_registry")
def test_a_failed_lookup_is_not_cached_and_releases_nothing(monkeypatch):
    calls = []

    async def failing(conn_id: str) -> Any:
        calls.append(conn_id)
        raise RuntimeError("secrets backend down")

    monkeypatch.setattr(RobocorpHook, "aget_connection", staticmethod(failing))

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(RuntimeError, match="secrets backend down"):
                await RobocorpHook().aget_workspace()

    asyncio.run(scenario())
    assert len(calls) == 2  # the failure was not remembered


@pytest.mark.usefixtures("clean_registry")
def test_settings_are_looked_up_again_after_the_ttl(monkeypatch, robocorp_conn_env):
    now = [1000.0]
    monkeypatch.setattr(_shared.time, "monotonic", lambda: now[0])
    lookups = []
    real_lookup = RobocorpHook.aget_connection

    async def counting(conn_id: str) -> Any:
        lookups.append(conn_id)
        return await real_lookup(conn_id)

    monkeypatch.setattr(RobocorpHook, "aget_connection", staticmethod(counting))

    async def scenario() -> None:
        first = RobocorpHook()
        await first._async_transport()
        second = RobocorpHook()
        await second._async_transport()
        now[0] += _shared.SETTINGS_TTL + 1
        third = RobocorpHook()
        await third._async_transport()  # an edited connection reaches triggers started later
        for hook in (first, second, third):
            await hook.aclose()

    asyncio.run(scenario())
    assert len(lookups) == 2


@pytest.mark.usefixtures("robocorp_conn_env", "clean_registry")
def test_completion_is_not_delayed_by_a_slow_work_item_count(robocorp_emulator):
    """The listing behind progress lines answers after 120 s; the run's end must not wait for it."""
    hook = RobocorpHook()
    run_id = hook.start_process_run("proc-slow", payloads=[{"n": 1}, {"n": 2}])["id"]
    hook.close()
    slow = robocorp_emulator.add_fault(kind="latency", delay_seconds=120, path="/work-items$", method="GET")

    async def scenario() -> Any:
        trigger = ProcessRunTrigger(run_id, poll_interval=0.05)
        events = trigger.run()
        waiter = asyncio.ensure_future(events.__anext__())
        while not _fired(robocorp_emulator, slow["id"]):  # the count has started and hangs
            await asyncio.sleep(0.05)
        robocorp_emulator.advance(3 * 3600)  # the robot finishes every item
        event = await asyncio.wait_for(waiter, 60)  # far below the listing's 120 s
        await events.aclose()
        return event

    event = asyncio.run(scenario())
    assert event.payload["status"] == "success" and event.payload["state"] == "completed"


def _fired(emulator: Any, rule_id: str) -> bool:
    return any(rule["id"] == rule_id and rule["fired"] for rule in emulator.backend.faults.rules())


@pytest.mark.usefixtures("robocorp_conn_env", "clean_registry")
def test_a_trigger_releases_what_it_shared_when_it_ends(robocorp_emulator):
    hook = RobocorpHook()
    run_id = hook.start_process_run("proc-invoices", payloads=[{"n": 1}])["id"]
    hook.close()
    robocorp_emulator.advance(60)
    assert run_trigger(ProcessRunTrigger(run_id, poll_interval=0.05)).payload["status"] == "success"
