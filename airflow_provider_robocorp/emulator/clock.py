"""The emulator's clock: real time, sped up or slowed down, plus a manual offset."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone


class Clock:
    """``now = start + real_elapsed * speed + offset`` (seconds since the epoch).

    ``advance()`` moves time forward without waiting; ``set_speed()`` changes the rate
    from now on without a jump. Time never goes backwards.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._base_epoch = time.time()
        self._base_mono = time.monotonic()
        self._speed = speed
        self._offset = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def offset(self) -> float:
        """Seconds added by ``advance()`` so far (since the last speed change)."""
        return self._offset

    def now(self) -> float:
        """Emulated time, seconds since the epoch."""
        return self._base_epoch + (time.monotonic() - self._base_mono) * self._speed + self._offset

    def advance(self, seconds: float) -> float:
        """Jump forward by ``seconds`` (>= 0); returns the new now."""
        if seconds < 0:
            raise ValueError("time can only be advanced forwards")
        with self._lock:
            self._offset += seconds
        return self.now()

    def set_speed(self, speed: float) -> None:
        """Change the rate of emulated time relative to real time (0 freezes it)."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            current = self.now()
            self._base_epoch = current
            self._base_mono = time.monotonic()
            self._offset = 0.0
            self._speed = speed


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC timestamp with millisecond precision and a ``Z`` suffix."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(value: str) -> float:
    """Parse an ISO 8601 timestamp (``Z`` or offset) to seconds since the epoch."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
