"""ProcessRunEventTrigger: schedule DAGs when Control Room process runs end (an ``AssetWatcher``).

::

    from airflow.sdk import Asset, AssetWatcher, DAG
    from airflow_provider_robocorp.assets import process_uri
    from airflow_provider_robocorp.triggers.process_run_events import ProcessRunEventTrigger

    invoices_done = Asset(
        uri=process_uri("<workspace_id>", "<process_id>"),
        watchers=[AssetWatcher(name="invoice_runs", trigger=ProcessRunEventTrigger(process_id="<process_id>"))],
    )
    with DAG("after_invoices", schedule=[invoices_done]): ...

One event per run that *newly* ended in ``states``: history is not replayed on the first start,
and the watermark (see ``_watermark.py``) is kept in Airflow 3.3's asset state store, so a
triggerer restart neither repeats a run nor misses one that ended while it was down. On Airflow
3.1/3.2 there is no such store: the watermark lives in memory, and a restarted triggerer takes a
fresh look (runs that ended while it was down do not fire; none fires twice).

On Airflow 3.3 all watchers of one workspace (same connection, poll interval and page size)
share one poll: **one** List process runs call per interval (plus a page more while an old run is
still open), however many watchers there are. Transient errors (429 with ``Retry-After``, 5xx,
network) are logged and polled through; an error retrying cannot fix (401, 403, 404) fails the
watcher with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_robocorp.exceptions import RobocorpConfigError, RobocorpError
from airflow_provider_robocorp.hooks._pipeline import check_id, positive_seconds
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
from airflow_provider_robocorp.triggers._events import is_transient
from airflow_provider_robocorp.triggers._watermark import (
    EPOCH,
    FINAL_STATES,
    OPEN_STATES,
    Watermark,
    compact_run,
    parse_time,
)

log = logging.getLogger(__name__)
STORE_KEY_PREFIX = "robocorp_process_runs"
MAX_PAGE_SIZE = 1000


class ProcessRunEventTrigger(BaseEventTrigger):
    """Fires ``{"process_run_id", "process_id", "process_name", "state", "workspace_id", ...}`` once
    per process run that ended in one of ``states`` after the watcher started.

    :param process_id: the process to watch; ``None`` watches every process of the workspace.
    :param states: which endings fire: ``("completed",)`` (default), ``("unresolved",)`` or both.
    :param robocorp_conn_id: Airflow connection of type ``robocorp``.
    :param workspace_id: overrides the connection's Workspace ID.
    :param poll_interval: seconds between two looks at the workspace's runs.
    :param page_size: runs per List process runs page (one page per poll when nothing old is open).
    :param skew_seconds: tolerance for a run that becomes visible with a ``created_at`` older
        than runs seen before it (server-side clocks; this machine's clock is never used).
    """

    def __init__(
        self,
        *,
        process_id: str | None = None,
        states: Sequence[str] = ("completed",),
        robocorp_conn_id: str = RobocorpHook.default_conn_name,
        workspace_id: str | None = None,
        poll_interval: float = 60.0,
        page_size: int = 100,
        skew_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        self.process_id = None if process_id is None else check_id(process_id, "process_id", "ProcessRunEventTrigger")
        if isinstance(states, str):
            states = (states,)
        chosen = tuple(dict.fromkeys(states))
        if not chosen or any(s not in FINAL_STATES for s in chosen):
            raise RobocorpConfigError(
                f"ProcessRunEventTrigger: states={list(states)!r} is not valid; use one or both of "
                f"{', '.join(FINAL_STATES)} (the states a process run ends in)."
            )
        self.states = tuple(sorted(chosen))
        self.robocorp_conn_id = robocorp_conn_id
        self.workspace_id = None if workspace_id is None else check_id(workspace_id, "workspace_id", "ProcessRunEventTrigger")
        self.poll_interval = positive_seconds(poll_interval, "ProcessRunEventTrigger poll_interval")
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise RobocorpConfigError(f"ProcessRunEventTrigger: page_size must be a whole number from 1 to "
                                      f"{MAX_PAGE_SIZE}, got {page_size!r}.")
        self.page_size = page_size
        if skew_seconds != 0:
            skew_seconds = positive_seconds(skew_seconds, "ProcessRunEventTrigger skew_seconds")
        self.skew_seconds = float(skew_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "process_id": self.process_id,
                "states": list(self.states),
                "robocorp_conn_id": self.robocorp_conn_id,
                "workspace_id": self.workspace_id,
                "poll_interval": self.poll_interval,
                "page_size": self.page_size,
                "skew_seconds": self.skew_seconds,
            },
        )

    # --- Airflow 3.3 shared streams: one poll per workspace ----------------------------------

    def shared_stream_key(self) -> Hashable | None:
        return ("robocorp.process_runs", self.robocorp_conn_id, self.workspace_id, self.poll_interval,
                self.page_size, self.skew_seconds)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Every ``poll_interval``: the workspace's runs created since the oldest open one."""
        poller = RunPoller(
            RobocorpHook(kwargs.get("robocorp_conn_id") or RobocorpHook.default_conn_name,
                         workspace_id=kwargs.get("workspace_id")),
            page_size=int(kwargs.get("page_size") or 100),
            skew=float(kwargs.get("skew_seconds") or 0.0),
        )
        try:
            while True:
                yield await poller.poll_through_errors(float(kwargs.get("poll_interval") or 60.0))
                await asyncio.sleep(float(kwargs.get("poll_interval") or 60.0))
        finally:
            await poller.hook.aclose()

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        store = WatermarkStore(self.asset_state_store, self.store_key, self.log)
        mark = Watermark.from_json(await store.load())
        catch_up: RunPoller | None = None
        last_digest: str | None = None
        try:
            async for batch in shared_stream:
                if not isinstance(batch, dict) or not isinstance(batch.get("runs"), list):
                    raise RobocorpError(f"Malformed shared-stream batch, failing rather than guessing: {str(batch)[:200]}")
                if batch.get("digest") and batch["digest"] == last_digest:
                    continue  # the same runs in the same states as the batch just handled: nothing can fire
                last_digest = batch.get("digest")
                runs, covers_from = batch["runs"], batch.get("covers_from")
                if mark is None:
                    mark = Watermark.baseline(runs, self.skew_seconds, self.process_id)
                    self.log.info("Watching %s from now on (%d open run(s) followed; earlier runs are not replayed).",
                                  self._what(), len(mark.open))
                    await store.save(mark.to_json())
                    continue
                if not mark.covered_by(covers_from):  # a restart, or a late joiner: fetch what it missed
                    catch_up = catch_up or RunPoller(self._hook(), page_size=self.page_size, skew=self.skew_seconds)
                    earlier = await catch_up.list_back_to(mark.oldest_needed(), process_id=self.process_id)
                    runs, covers_from = _merge(runs, earlier), None if earlier.complete else earlier.covers_from
                for run in mark.apply(runs, covers_from=covers_from, skew=self.skew_seconds, states=self.states,
                                      process_id=self.process_id):
                    yield TriggerEvent(self._payload(run, batch.get("workspace_id")))
                    await store.save(mark.to_json())  # after each event: a restart repeats none
                await store.save(mark.to_json())
        finally:
            if catch_up is not None:
                await catch_up.hook.aclose()

    # --- Airflow 3.1/3.2 (and a trigger outside a shared stream): its own poll ---------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self.filter_shared_stream(self._own_stream()):
            yield event

    async def _own_stream(self) -> AsyncIterator[dict[str, Any]]:
        poller = RunPoller(self._hook(), page_size=self.page_size, skew=self.skew_seconds, process_id=self.process_id)
        try:
            while True:
                yield await poller.poll_through_errors(self.poll_interval)
                await asyncio.sleep(self.poll_interval)
        finally:
            await poller.hook.aclose()

    # --- helpers ----------------------------------------------------------------------------

    @property
    def store_key(self) -> str:
        return f"{STORE_KEY_PREFIX}:{self.process_id or '*'}:{','.join(self.states)}"

    def _hook(self) -> RobocorpHook:
        return RobocorpHook(self.robocorp_conn_id, workspace_id=self.workspace_id)

    def _what(self) -> str:
        return f"process {self.process_id}" if self.process_id else "every process of the workspace"

    def _payload(self, run: dict[str, Any], workspace_id: Any) -> dict[str, Any]:
        payload = {"process_run_id": run["id"], **{k: v for k, v in run.items() if k != "id"}}
        payload["workspace_id"] = workspace_id
        self.log.info("Process run %s of %s ended %s: firing.", run["id"], run.get("process_id"), run.get("state"))
        return payload


class _Listing(list):  # type: ignore[type-arg]
    """Runs from one listing, with how far back it is complete."""

    complete: bool = True
    covers_from: str | None = None


def _merge(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {r.get("id") for r in first}
    return [*first, *(r for r in second if r.get("id") not in seen)]


class RunPoller:
    """Lists a workspace's runs newest first down to a horizon: the oldest run still open, or the
    newest run of the previous poll (less ``skew``). So a quiet workspace costs one page a poll."""

    def __init__(self, hook: RobocorpHook, *, page_size: int, skew: float, process_id: str | None = None) -> None:
        self.hook, self.page_size, self.skew, self.process_id = hook, page_size, skew, process_id
        self.horizon: str | None = None
        self.polls = 0

    async def poll(self) -> dict[str, Any]:
        if self.polls == 0:  # first look: reach back to the oldest run still open
            opened = [compact_run(r) for s in OPEN_STATES
                      async for r in self.hook.alist_process_runs(process_id=self.process_id, state=s,
                                                                  limit=self.page_size)]
            self.horizon = _oldest([r.get("created_at") for r in opened])
        listing = await self.list_back_to(self.horizon, process_id=self.process_id)
        self.polls += 1
        created = [r.get("created_at") for r in listing]
        open_times = [r.get("created_at") for r in listing if r.get("state") in OPEN_STATES]
        newest = _newest(created)
        trailing = None if newest is None else (parse_time(newest) - _skew(self.skew)).isoformat()  # type: ignore[operator]
        self.horizon = _oldest([*open_times, trailing] if trailing else open_times) or self.horizon
        covers_from = None if listing.complete else listing.covers_from
        digest = hashlib.sha1(json.dumps([[r.get("id"), r.get("state"), r.get("created_at")] for r in listing]
                                         + [covers_from]).encode()).hexdigest()
        return {"workspace_id": self.hook.workspace_id, "runs": list(listing), "covers_from": covers_from,
                "digest": digest}

    async def list_back_to(self, horizon: str | None, *, process_id: str | None) -> _Listing:
        """Runs newest first until one created before ``horizon`` (None: the first page only)."""
        bound = parse_time(horizon)
        listing = _Listing()
        listing.complete = False
        async for run in self.hook.alist_process_runs(process_id=process_id, limit=self.page_size):
            item = compact_run(run)
            created = parse_time(item.get("created_at"))
            if bound is not None and created is not None and created < bound:
                listing.covers_from = horizon  # newest first: every run created at or after it was listed
                return listing
            listing.append(item)
            if bound is None and len(listing) >= self.page_size:  # one page, without fetching the next
                oldest = parse_time(_oldest([r.get("created_at") for r in listing]))
                # runs created at the same instant as the oldest listed one may be on the next page
                listing.covers_from = None if oldest is None else (oldest + _skew(1e-6)).isoformat()
                return listing
        listing.complete = True
        return listing

    async def poll_through_errors(self, pause: float) -> dict[str, Any]:
        """:meth:`poll`, waiting out transient errors (``Retry-After`` when the server sends one)."""
        while True:
            try:
                return await self.poll()
            except RobocorpError as err:
                if not is_transient(err):
                    raise
                wait = max(pause, float(getattr(err, "retry_after", None) or 0.0))
                log.warning("Listing process runs failed (%s); trying again in %g s.", err, wait)
                await asyncio.sleep(wait)


def _skew(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def _oldest(times: list[Any]) -> str | None:
    parsed = [(parse_time(t), t) for t in times if parse_time(t) is not None]
    return min(parsed)[1] if parsed else None


def _newest(times: list[Any]) -> str | None:
    parsed = [(parse_time(t), t) for t in times if parse_time(t) is not None]
    return max(parsed)[1] if parsed else None


class WatermarkStore:
    """The watermark in Airflow 3.3's asset state store (every asset the watcher feeds), else in memory."""

    def __init__(self, accessors: Any, key: str, logger: Any) -> None:
        self.key, self.log = key, logger
        self.targets = _accessors(accessors)
        self.memory: Any = None
        if not self.targets:
            logger.info("No asset state store here (Airflow < 3.3, or not run by an AssetWatcher): the watermark "
                        "is kept in memory, so a triggerer restart starts watching afresh.")

    async def load(self) -> Any:
        if not self.targets:
            return self.memory
        values = [await target.aget(self.key) for target in self.targets]
        marks = [v for v in values if Watermark.from_json(v) is not None]
        if not marks:
            return None
        # several assets fed by one watcher: the oldest view misses nothing (a repeat beats a miss)
        return min(marks, key=lambda v: parse_time(v.get("since")) or EPOCH)

    async def save(self, value: dict[str, Any]) -> None:
        if not self.targets:
            self.memory = value
            return
        for target in self.targets:
            await target.aset(self.key, value)


def _accessors(store: Any) -> list[Any]:
    if store is None:
        return []
    found = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
    if found:
        return found
    return [store] if hasattr(store, "aget") and hasattr(store, "aset") else []
