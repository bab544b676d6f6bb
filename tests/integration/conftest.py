"""Integration tests: the real ``RobocorpHook`` over real HTTP against the bundled emulator.

Every test here gets the emulator (reset, no faults), ``robocorp_default`` pointing at it, no proxy
variables, and a guard: at the end of the test no log record of the provider's loggers (captured
at DEBUG) and no exception registered through ``support.raises`` may contain an API key.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from . import support

SECRETS = (support.API_KEY, support.READONLY_KEY)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests and httpx both honour proxy variables; they would reroute the loopback traffic.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator(robocorp_emulator: Any, robocorp_conn_env: str) -> Any:
    """The emulator, reset, with ``AIRFLOW_CONN_ROBOCORP_DEFAULT`` set to it."""
    return robocorp_emulator


@pytest.fixture
def frozen(emulator: Any) -> Any:
    """The emulator with its clock stopped: runs move only through ``advance()``."""
    emulator.set_speed(0)
    return emulator


def _exception_texts(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts.extend(repr(arg) for arg in exc.args)
    return texts


@pytest.fixture(autouse=True)
def _no_key_leaks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="airflow_provider_robocorp")
    support.RAISED.clear()
    yield
    # in a fixture's teardown, caplog.records holds the teardown phase only
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    for record in records:
        if not record.name.startswith("airflow_provider_robocorp"):
            continue
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        for secret in SECRETS:
            assert secret not in text, f"API key in log record {record.name}: {text[:300]}"
    for exc in support.RAISED:
        for text in _exception_texts(exc):
            for secret in SECRETS:
                assert secret not in text, f"API key in {type(exc).__name__}: {text[:300]}"
    support.RAISED.clear()
