"""Small stand-ins for the Airflow runtime pieces an operator touches in ``execute(context)``."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class FakeTI:
    """Records XCom pushes like a running task instance."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}
        self.stats_tags: dict[str, str] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


class FakeStateStore:
    """``context["task_state_store"]`` of Airflow 3.3 (what ResumableJobMixin reads and writes)."""

    def __init__(self, **values: Any) -> None:
        self.values = dict(values)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, **_: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def context(**extra: Any) -> Any:
    """A task context holding a FakeTI (typed loosely: it stands in for ``Context``)."""
    return {"ti": FakeTI(), **extra}


def run_trigger(trigger: BaseTrigger, timeout: float = 30.0) -> TriggerEvent:
    """Run a trigger until its first event (as the triggerer would)."""

    async def first_event() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout))


def posts(emulator: Any, path_part: str = "") -> list[dict[str, Any]]:
    """The POST requests the emulator received (optionally only those whose path contains ``path_part``)."""
    return [r for r in emulator.requests_log() if r.get("method") == "POST" and path_part in r.get("path", "")]
