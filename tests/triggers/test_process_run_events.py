"""ProcessRunEventTrigger over the emulator (clock frozen, moved by the test): no replay, one event
per run, restarts that repeat none and miss none, filters, transient errors, the shared stream."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from airflow_provider_robocorp.exceptions import RobocorpConfigError, RobocorpError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.triggers.process_run_events import ProcessRunEventTrigger, RunPoller

pytestmark = pytest.mark.usefixtures("robocorp_conn_env")


class Store:
    """An asset state store accessor as the triggerer injects it (values must survive JSON)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)
        self.writes += 1


class Watcher:
    """One trigger's filter fed batch by batch; ``feed`` returns once the batch is fully handled."""

    def __init__(self, trigger: ProcessRunEventTrigger, store: Store | None) -> None:
        trigger.asset_state_store = store
        self.trigger, self.events = trigger, []  # type: ignore[var-annotated]
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.asked = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _stream(self) -> AsyncIterator[Any]:
        while True:
            self.asked.set()
            item = await self.queue.get()
            self.asked.clear()
            yield item

    async def _run(self) -> None:
        async for event in self.trigger.filter_shared_stream(self._stream()):
            self.events.append(event.payload)

    async def feed(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        before = len(self.events)
        await asyncio.wait_for(self.asked.wait(), 30)
        self.asked.clear()
        await self.queue.put(batch)
        await asyncio.wait_for(self.asked.wait(), 30)  # the filter asks for the next batch
        if self.task.done():
            self.task.result()
        return self.events[before:]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def start(process_id: str = "proc-invoices", **kwargs: Any) -> str:
    return RobocorpHook().start_process_run(process_id, **kwargs)["id"]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


@pytest.fixture
def emu(robocorp_emulator: Any) -> Any:
    robocorp_emulator.set_speed(0)
    return robocorp_emulator


def test_history_is_not_replayed_and_each_run_fires_once(emu: Any) -> None:
    old = start(payloads=[{"n": 1}])
    emu.advance(600)  # ended before the watcher looks: history

    async def scenario() -> None:
        poller = RunPoller(RobocorpHook(), page_size=100, skew=60)
        watcher = Watcher(ProcessRunEventTrigger(process_id="proc-invoices"), Store())
        assert await watcher.feed(await poller.poll()) == []  # baseline
        fresh = start(payloads=[{"n": 2}])
        assert await watcher.feed(await poller.poll()) == []  # still running
        emu.advance(600)
        fired = await watcher.feed(await poller.poll())
        assert [e["process_run_id"] for e in fired] == [fresh] and fresh != old
        assert fired[0]["state"] == "completed" and fired[0]["process_id"] == "proc-invoices"
        assert fired[0]["workspace_id"] == emu.workspace_id and fired[0]["ended_at"]
        assert await watcher.feed(await poller.poll()) == []  # no duplicate
        await watcher.stop()
        await poller.hook.aclose()

    run(scenario())


def test_restart_repeats_none_and_misses_none(emu: Any) -> None:
    store = Store()

    async def scenario() -> None:
        poller = RunPoller(RobocorpHook(), page_size=100, skew=60)
        first = Watcher(ProcessRunEventTrigger(process_id="proc-invoices"), store)
        await first.feed(await poller.poll())
        before_down = start(payloads=[{"n": 1}])
        running_at_restart = start(payloads=[{"n": 2}])
        assert await first.feed(await poller.poll()) == []  # the clock has not moved: both are new
        emu.advance(600)
        assert sorted(e["process_run_id"] for e in await first.feed(await poller.poll())) == sorted(
            [before_down, running_at_restart])
        await first.stop()  # the triggerer goes down ...
        ended_while_down = start(payloads=[{"n": 3}])
        emu.advance(600)
        again = Watcher(ProcessRunEventTrigger(process_id="proc-invoices"), store)  # ... and comes back
        fresh = RunPoller(RobocorpHook(), page_size=100, skew=60)
        assert [e["process_run_id"] for e in await again.feed(await fresh.poll())] == [ended_while_down]
        assert await again.feed(await fresh.poll()) == []
        await again.stop()
        await poller.hook.aclose()
        await fresh.hook.aclose()

    run(scenario())


def test_a_late_joiner_catches_up_beyond_the_shared_page(emu: Any) -> None:
    """A restarted watcher whose watermark is older than the shared listing fetches the rest itself."""
    store = Store()

    async def scenario() -> None:
        poller = RunPoller(RobocorpHook(), page_size=2, skew=0)
        watcher = Watcher(ProcessRunEventTrigger(process_id="proc-report", page_size=2, skew_seconds=0), store)
        await watcher.feed(await poller.poll())
        await watcher.stop()
        ids = []
        for _ in range(4):
            ids.append(start("proc-report"))
            emu.advance(1)
        emu.advance(600)
        again = Watcher(ProcessRunEventTrigger(process_id="proc-report", page_size=2, skew_seconds=0), store)
        fresh = RunPoller(RobocorpHook(), page_size=2, skew=0)
        batch = await fresh.poll()
        assert len(batch["runs"]) == 2 and batch["covers_from"]  # one page: the two newest runs
        assert sorted(e["process_run_id"] for e in await again.feed(batch)) == sorted(ids)
        await again.stop()
        for hook in (poller.hook, fresh.hook):
            await hook.aclose()

    run(scenario())


def test_states_and_process_filters(emu: Any) -> None:
    async def scenario() -> None:
        poller = RunPoller(RobocorpHook(), page_size=100, skew=60)
        completed = Watcher(ProcessRunEventTrigger(process_id="proc-invoices"), Store())
        unresolved = Watcher(ProcessRunEventTrigger(process_id="proc-invoices", states=["unresolved"]), Store())
        both = Watcher(ProcessRunEventTrigger(states=("completed", "unresolved")), Store())
        batch = await poller.poll()
        for w in (completed, unresolved, both):
            await w.feed(batch)
        good, bad, other = start(payloads=[{"ok": 1}]), start(payloads=[{"fail": True}]), start("proc-report")
        emu.advance(900)
        batch = await poller.poll()
        assert [e["process_run_id"] for e in await completed.feed(batch)] == [good]
        assert [(e["process_run_id"], e["state"]) for e in await unresolved.feed(batch)] == [(bad, "unresolved")]
        assert {e["process_run_id"] for e in await both.feed(batch)} == {good, bad, other}
        for w in (completed, unresolved, both):
            await w.stop()
        await poller.hook.aclose()

    run(scenario())


def test_transient_errors_are_waited_out(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(emu.connection_json())
    conn["extra"] = {"max_retries": 0}  # only the watcher's own loop can survive them
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps(conn))
    emu.add_fault(kind="status", status=429, retry_after="0", path="/process-runs", times=2)
    emu.add_fault(kind="status", status=503, path="/process-runs", times=1)
    emu.add_fault(kind="drop", path="/process-runs", times=1)

    async def scenario() -> dict[str, Any]:
        poller = RunPoller(RobocorpHook(), page_size=100, skew=60)
        try:
            return await poller.poll_through_errors(0.01)
        finally:
            await poller.hook.aclose()

    batch = run(scenario())
    assert isinstance(batch["runs"], list)
    statuses = [r.get("status") for r in emu.requests_log() if "/process-runs" in r.get("path", "")]
    assert statuses.count(429) == 2 and 503 in statuses


def test_an_error_retrying_cannot_fix_fails_the_watcher(emu: Any) -> None:
    emu.add_fault(kind="status", status=403, path="/process-runs", times=1)

    async def scenario() -> None:
        poller = RunPoller(RobocorpHook(), page_size=100, skew=60)
        try:
            await poller.poll_through_errors(0.01)
        finally:
            await poller.hook.aclose()

    with pytest.raises(RobocorpError, match="403"):
        run(scenario())


def test_serialises_to_json_only_kwargs_and_validates_locally() -> None:
    trigger = ProcessRunEventTrigger(process_id="p-1", states="unresolved", poll_interval=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_robocorp.triggers.process_run_events.ProcessRunEventTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs and kwargs["states"] == ["unresolved"]
    assert ProcessRunEventTrigger(**kwargs).serialize() == (classpath, kwargs)
    for bad, says in [({"states": ["failed"]}, "use one or both of completed, unresolved"),
                      ({"states": []}, "states=[] is not valid"),
                      ({"process_id": "../x"}, "process_id"),
                      ({"poll_interval": float("nan")}, "poll_interval"),
                      ({"page_size": 0}, "page_size must be a whole number from 1 to 1000")]:
        with pytest.raises(RobocorpConfigError, match=re.escape(says)):
            ProcessRunEventTrigger(**bad)  # type: ignore[arg-type]


def test_without_a_state_store_the_watermark_lives_in_memory(emu: Any) -> None:
    async def scenario() -> None:
        poller = RunPoller(RobocorpHook(), page_size=100, skew=60)
        watcher = Watcher(ProcessRunEventTrigger(process_id="proc-report"), None)  # Airflow 3.1/3.2
        await watcher.feed(await poller.poll())
        run_id = start("proc-report")
        emu.advance(600)
        assert [e["process_run_id"] for e in await watcher.feed(await poller.poll())] == [run_id]
        assert await watcher.feed(await poller.poll()) == []
        await watcher.stop()
        await poller.hook.aclose()

    run(scenario())


def main_listings(emu: Any) -> int:
    """List process runs calls without a state filter (the watchers' poll; not the first look's)."""
    return sum(1 for r in emu.requests_log() if r["method"] == "GET" and r["path"].endswith("/process-runs")
               and "state" not in r["query_keys"])


def test_watchers_of_one_workspace_share_one_poll(emu: Any) -> None:
    """Airflow 3.3's SharedStreamManager (as the triggerer runs it): 20 watchers, one listing a poll."""
    shared_stream = pytest.importorskip("airflow.triggers.shared_stream", reason="shared streams are Airflow 3.3+")
    processes = ["proc-invoices", "proc-report", None]

    async def scenario() -> None:
        manager = shared_stream.SharedStreamManager()
        triggers = [ProcessRunEventTrigger(process_id=processes[i % 3], poll_interval=0.05) for i in range(20)]
        stores = [Store() for _ in triggers]
        events: list[list[dict[str, Any]]] = [[] for _ in triggers]
        batches = [0]

        async def consume(i: int) -> None:
            trigger = triggers[i]
            trigger.asset_state_store = stores[i]
            stream = manager.subscribe(trigger_id=i, trigger=trigger, key=trigger.shared_stream_key())

            async def counted() -> AsyncIterator[Any]:
                async for batch in stream:
                    if i == 0:
                        batches[0] += 1
                    yield batch

            async for event in trigger.filter_shared_stream(counted()):
                events[i].append(event.payload)

        assert len({t.shared_stream_key() for t in triggers}) == 1
        tasks = [asyncio.get_running_loop().create_task(consume(i)) for i in range(len(triggers))]
        while not all(s.writes for s in stores):  # every watcher took its first look
            await asyncio.sleep(0.01)
        calls_before, batches_before = main_listings(emu), batches[0]
        run_id = start("proc-report")
        emu.advance(600)
        while not all(events[i] for i in range(len(triggers)) if processes[i % 3] != "proc-invoices"):
            await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.stop_all()
        polls = batches[0] - batches_before
        calls = main_listings(emu) - calls_before
        assert polls >= 1 and polls <= calls <= polls + 1, (polls, calls)  # one listing per poll, not 20
        for i, fired in enumerate(events):
            expected = [] if processes[i % 3] == "proc-invoices" else [run_id]
            assert [e["process_run_id"] for e in fired] == expected

    run(scenario())
