"""Helpers of the integration tests: a fast-retrying hook, the emulator's request log, run driving,
and a register of every exception the tests provoke (checked for the API key by ``conftest``)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_robocorp.hooks._endpoints import ENDPOINTS
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

#: The emulator's default key (``default_config.json``) and the other seeded keys.
API_KEY = "emulator-api-key"
READONLY_KEY = "emulator-readonly-key"
WS = "ws-emulator"
API = "/api/v1/workspaces/ws-emulator"
CONN_ENV = "AIRFLOW_CONN_ROBOCORP_DEFAULT"

#: Every exception a test provoked through :func:`raises`; ``conftest`` checks them for the key.
RAISED: list[BaseException] = []


def fast_hook(**kwargs: Any) -> RobocorpHook:
    """A hook on ``robocorp_default`` whose back-off waits are a few milliseconds.

    ``settings`` is a ``cached_property`` and the transport (with its retry policy) is built from it
    on first use, so the replacement must happen before any call.
    """
    hook = RobocorpHook(**kwargs)
    assert "_transport" not in hook.__dict__
    hook.settings = dataclasses.replace(hook.settings, backoff_initial=0.01, backoff_max=0.05)
    assert hook._transport.policy.backoff_max == 0.05
    return hook


@contextlib.contextmanager
def raises(exc_type: type[BaseException] | tuple[type[BaseException], ...], match: str | None = None) -> Iterator[Any]:
    """``pytest.raises`` that also registers the exception for the API key check."""
    with pytest.raises(exc_type, match=match) as info:
        yield info
    RAISED.append(info.value)


# --- the emulator's request log ------------------------------------------------------------------


def settled_log(emulator: Any, since: int = 0, quiet: float = 0.05, timeout: float = 3.0) -> list[dict[str, Any]]:
    """The request log from index ``since`` once it stops growing.

    The emulator appends an entry after the response went out, so a client can be a moment ahead.
    """
    deadline = time.monotonic() + timeout
    last = -1
    while True:
        log = emulator.requests_log()
        if len(log) == last or time.monotonic() > deadline:
            return log[since:]
        last = len(log)
        time.sleep(quiet)


def log_mark(emulator: Any) -> int:
    return len(settled_log(emulator))


def hits(log: list[dict[str, Any]], method: str, path_regex: str) -> list[dict[str, Any]]:
    """Entries of ``log`` with ``method`` whose path fully matches ``path_regex``."""
    pattern = re.compile(path_regex)
    return [e for e in log if e["method"] == method and pattern.fullmatch(e["path"])]


def endpoint_regex(name: str) -> str:
    """The URL path regex of a hook endpoint (``{placeholders}`` match one path segment)."""
    path = ENDPOINTS[name].path
    return "/api/v1/" + "".join(
        "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", path)
    )


def pages_of(log: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The GETs of list endpoint ``name`` in ``log``, checking that every page after the first came
    from the ``next`` URL (a ``cursor``) and kept the page size."""
    entries = hits(log, "GET", endpoint_regex(name))
    assert entries, f"no request of {name}"
    assert "cursor" not in entries[0]["query_keys"]
    for entry in entries[1:]:
        assert "cursor" in entry["query_keys"], entry
    for entry in entries:
        assert entry["status"] == 200, entry
    return entries


# --- driving runs in emulated time ---------------------------------------------------------------


def driver(emulator: Any, step: float = 1.0) -> tuple[Callable[[dict[str, Any]], None], list[str]]:
    """An ``on_poll`` callback for ``wait_for_process_run`` that moves emulated time by ``step``
    after each poll (the emulator's clock is frozen by the tests), and the states it saw."""
    seen: list[str] = []

    def on_poll(run: dict[str, Any]) -> None:
        seen.append(run["state"])
        emulator.advance(step)

    return on_poll, seen


def state_of(emulator: Any, family: str) -> list[dict[str, Any]]:
    """One resource family of the emulator's full state (``GET /_emulator/state``)."""
    return emulator.state()[family]
