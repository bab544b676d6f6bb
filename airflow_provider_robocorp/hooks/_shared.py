"""What the triggers of one process (a triggerer) share: resolved connections and TLS contexts.

A triggerer runs thousands of triggers in one event loop. Each used to build its own
``httpx.AsyncClient`` and with it a TLS context, loading the CA bundle on the event loop (tens of
milliseconds of blocked loop per trigger, ~0.8 MiB each), and to look its connection up again.
Here both are created once per distinct value, off the event loop, handed out as a
:class:`Lease`, and dropped when the last lease is released. Concurrent first users wait for one
creation instead of starting their own. Each trigger keeps its own small client and connection
(the benchmark in ``bench/bench_triggers.py`` measured that faster than one client shared by all).

Resolved connection settings are reused for at most :data:`SETTINGS_TTL` seconds: a trigger that
starts later than that after the first one looks the connection up again (so an edited
connection is picked up), while triggers already running keep what they started with.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_robocorp.hooks._pipeline import ConnectionSettings

#: Seconds for which resolved connection settings are handed to newly started triggers.
SETTINGS_TTL = 300.0


def create_tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS context httpx would build for ``verify`` (CA bundle loading: run it off the loop)."""
    import httpx

    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=True)


@dataclass(eq=False)
class _Entry:
    value: Any
    created: float
    users: int = 0


@dataclass(eq=False)
class Lease:
    """One user's hold on shared settings and a TLS context; :meth:`release` exactly once."""

    settings: ConnectionSettings
    tls_context: ssl.SSLContext
    _entries: list[tuple[dict[Hashable, _Entry], Hashable, _Entry]] = field(default_factory=list, repr=False)

    def release(self) -> None:
        entries, self._entries = self._entries, []
        for table, key, entry in entries:
            entry.users -= 1
            if entry.users <= 0 and table.get(key) is entry:
                del table[key]


class SharedResources:
    """The registry (one per process: :data:`SHARED`); used only from event-loop coroutines."""

    def __init__(self) -> None:
        self.settings: dict[Hashable, _Entry] = {}
        self.tls: dict[Hashable, _Entry] = {}
        self._pending: dict[tuple[int, str, Hashable], asyncio.Task[Any]] = {}

    async def _acquire(
        self, table: dict[Hashable, _Entry], kind: str, key: Hashable,
        create: Callable[[], Awaitable[Any]], ttl: float | None,
    ) -> _Entry:
        entry = table.get(key)
        if entry is None or (ttl is not None and time.monotonic() - entry.created >= ttl):
            loop = asyncio.get_running_loop()
            pending_key = (id(loop), kind, key)
            task = self._pending.get(pending_key)
            if task is None:
                task = loop.create_task(_run(create))
                self._pending[pending_key] = task
                task.add_done_callback(lambda done: _forget(self._pending, pending_key, done))
            value = await asyncio.shield(task)  # a cancelled waiter leaves the creation to the others
            entry = table.get(key)
            if entry is None or entry.value is not value:
                entry = _Entry(value, time.monotonic())
                table[key] = entry
        entry.users += 1
        return entry

    async def lease(
        self, key: Hashable, resolve: Callable[[], Awaitable[ConnectionSettings]],
        settings: ConnectionSettings | None = None,
    ) -> Lease:
        """Settings for ``key`` (``resolve`` runs once for concurrent first users, unless the caller
        already has ``settings``) and the TLS context for their ``verify`` value."""
        lease_entries: list[tuple[dict[Hashable, _Entry], Hashable, _Entry]] = []
        if settings is None:
            entry = await self._acquire(self.settings, "settings", key, resolve, SETTINGS_TTL)
            lease_entries.append((self.settings, key, entry))
            settings = entry.value
        assert settings is not None
        verify = settings.verify
        loop = asyncio.get_running_loop()
        try:
            tls = await self._acquire(
                self.tls, "tls", verify, lambda: loop.run_in_executor(None, create_tls_context, verify), None
            )
        except BaseException:
            Lease(settings, None, lease_entries).release()  # type: ignore[arg-type]
            raise
        lease_entries.append((self.tls, verify, tls))
        return Lease(settings, tls.value, lease_entries)


async def _run(create: Callable[[], Awaitable[Any]]) -> Any:
    return await create()


def _forget(pending: dict[Any, asyncio.Task[Any]], key: Any, task: asyncio.Task[Any]) -> None:
    if pending.get(key) is task:
        del pending[key]
    if not task.cancelled():
        task.exception()  # retrieved here, so a failure no waiter saw is not reported as "never retrieved"


#: The process-wide registry the hook's async path uses.
SHARED = SharedResources()
