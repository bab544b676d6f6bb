"""Fault injection rules: which requests fail, and how.

A rule has a ``kind``:

* ``status`` — answer with ``status`` (429, 500, 502, 503, 504, ...) and an error body, with a
  ``Retry-After`` header when ``retry_after`` is set; the request is not performed.
* ``latency`` — wait ``delay_seconds`` and then handle the request normally.
* ``drop`` — close the connection without any answer, before doing anything.
* ``commit_then_drop`` — perform the request (state changes happen), then close the
  connection without sending the answer.

A rule matches requests by ``method`` (any when null) and ``path`` (a regular expression
searched in the URL path, any when null). ``times`` makes it scripted (it applies to the next
N matching requests, then expires); ``probability`` makes it random (seedable). Rules are
tried in the order they were added; the first that fires wins. Control endpoints under
``/_emulator/`` are never faulted.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

KINDS = ("status", "latency", "drop", "commit_then_drop")

ERROR_CODES = {
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

_KEY_ALIASES = {"p": "probability", "delay": "delay_seconds", "retry-after": "retry_after", "n": "times"}

FAULT_SPEC_HELP = """\
Fault SPEC (repeat --fault for several rules):
  STATUS[:P]            answer STATUS (429/500/502/503/504...) with probability P (default 1)
  drop[:P]              close the connection without answering, before acting
  commit_then_drop[:P]  perform the request, then close the connection without answering
  KEY=VALUE,...         full form; keys: kind (status|latency|drop|commit_then_drop),
                        status, retry_after (seconds or HTTP date), method, path (regex
                        searched in the URL path), times (next N matching requests),
                        probability (alias p), delay_seconds (alias delay)
Examples: --fault 503:0.1   --fault 'status=429,retry_after=1,probability=0.2,path=/process-runs'
          --fault 'kind=latency,delay=0.5'   --fault 'kind=commit_then_drop,method=POST,times=1'"""


class FaultError(ValueError):
    """A fault rule or spec is invalid."""


@dataclass
class FaultRule:
    """One fault injection rule (see the module docstring)."""

    kind: str
    status: int | None = None
    retry_after: str | None = None
    method: str | None = None
    path: str | None = None
    times: int | None = None
    probability: float | None = None
    delay_seconds: float = 0.0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    fired: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.kind == "status":
            self.status = 503 if self.status is None else int(self.status)
            if not 400 <= self.status <= 599:
                raise FaultError("a status fault needs a 4xx or 5xx status")
        if self.kind == "latency" and not self.delay_seconds:
            self.delay_seconds = 1.0
        if self.delay_seconds < 0:
            raise FaultError("delay_seconds must be >= 0")
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise FaultError("probability must be between 0 and 1")
        if self.times is not None and self.times < 0:
            raise FaultError("times must be >= 0")
        if self.method:
            self.method = self.method.upper()
        if self.retry_after is not None:
            self.retry_after = _retry_after(self.retry_after)
        if self.path:
            try:
                self._pattern = re.compile(self.path)
            except re.error as exc:
                raise FaultError(f"invalid path regex {self.path!r}: {exc}") from exc

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        """Build a rule from the control endpoint's JSON (unknown keys are an error)."""
        allowed = {"kind", "status", "retry_after", "method", "path", "times", "probability", "delay_seconds"}
        unknown = set(data) - allowed
        if unknown:
            raise FaultError(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
        kind = data.get("kind") or ("status" if data.get("status") is not None else None)
        if kind is None:
            raise FaultError("a fault rule needs a kind (or a status)")
        try:
            return cls(
                kind=kind,
                status=None if data.get("status") is None else int(data["status"]),
                retry_after=data.get("retry_after"),
                method=data.get("method"),
                path=data.get("path"),
                times=None if data.get("times") is None else int(data["times"]),
                probability=None if data.get("probability") is None else float(data["probability"]),
                delay_seconds=float(data.get("delay_seconds") or 0.0),
            )
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FaultError):
                raise
            raise FaultError(f"invalid fault rule: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "retry_after": self.retry_after,
            "method": self.method,
            "path": self.path,
            "times": self.times,
            "probability": self.probability,
            "delay_seconds": self.delay_seconds,
            "fired": self.fired,
        }

    def applies_to(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return self._pattern is None or self._pattern.search(path) is not None


def parse_fault_spec(spec: str) -> FaultRule:
    """Parse a ``--fault`` SPEC (see ``FAULT_SPEC_HELP``)."""
    spec = spec.strip()
    if not spec:
        raise FaultError("empty fault spec")
    if "=" not in spec:
        head, _, probability = spec.partition(":")
        data: dict[str, Any] = {"probability": float(probability)} if probability else {}
        if head.isdigit():
            data.update(kind="status", status=int(head))
        else:
            data["kind"] = head
        return FaultRule.from_json(data)
    data = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise FaultError(f"expected KEY=VALUE in fault spec, got {part!r}")
        key = _KEY_ALIASES.get(key.strip(), key.strip())
        data[key] = value.strip()
    if "kind" not in data and "status" not in data and "delay_seconds" in data:
        data["kind"] = "latency"
    return FaultRule.from_json(data)


class FaultSet:
    """The active fault rules; thread-safe; ``pick`` decides a request's fate."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def seed(self, seed: int | None) -> None:
        with self._lock:
            self._random.seed(seed)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (scripted counts are consumed)."""
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if not rule.applies_to(method, path):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.probability is not None and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
        return None


def _retry_after(value: Any) -> str:
    if isinstance(value, bool):
        raise FaultError("retry_after must be seconds or an HTTP date")
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value)
