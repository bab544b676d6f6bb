"""Delivery of webhooks and per-run callbacks: signed HTTP POSTs from a background thread.

Each delivery is retried with exponential back-off until the receiver answers 2xx or the
attempts run out (at-least-once: a receiver that times out after processing sees it again).
The header ``x-rc-signature`` is the hex HMAC-SHA256 of the raw body keyed with the secret.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

SIGNATURE_HEADER = "x-rc-signature"
MAX_BACKOFF_SECONDS = 30.0


log = logging.getLogger(__name__)

def sign(secret: str, body: bytes) -> str:
    """``x-rc-signature`` of ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(eq=False)
class Delivery:
    """One event to one receiver, with its delivery history."""

    id: str
    kind: str
    source_id: str
    event_id: str
    event: str
    url: str
    body: bytes
    signature: str
    attempts: int = 0
    delivered: bool = False
    gave_up: bool = False
    cancelled: bool = False
    last_status: int | None = None
    last_error: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "source_id": self.source_id,
            "event_id": self.event_id,
            "event": self.event,
            "url": self.url,
            "signature": self.signature,
            "body": json.loads(self.body),
            "attempts": self.attempts,
            "delivered": self.delivered,
            "gave_up": self.gave_up,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "history": list(self.history),
        }


class WebhookDispatcher:
    """A queue of deliveries worked by one daemon thread."""

    def __init__(self, max_attempts: int = 8, initial_backoff: float = 0.2, timeout: float = 5.0) -> None:
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self.timeout = timeout
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = itertools.count()
        self._records: list[Delivery] = []
        self._in_flight = 0
        self._closed = False
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._thread = threading.Thread(target=self._work, name="robocorp-emulator-webhooks", daemon=True)
        self._thread.start()

    def submit(
        self, *, kind: str, source_id: str, url: str, secret: str, event: str, payload: dict[str, Any]
    ) -> None:
        """Queue ``payload`` (an event envelope with an ``id``) for delivery to ``url``."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery = Delivery(
            id=str(uuid.uuid4()),
            kind=kind,
            source_id=source_id,
            event_id=payload["id"],
            event=event,
            url=url,
            body=body,
            signature=sign(secret, body),
        )
        with self._cond:
            self._records.append(delivery)
            heapq.heappush(self._heap, (time.monotonic(), next(self._seq), delivery))
            self._cond.notify()

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return [d.to_json() for d in self._records]

    def clear(self) -> None:
        """Forget pending deliveries and the delivery log."""
        with self._cond:
            for delivery in self._records:
                delivery.cancelled = True
            self._heap.clear()
            self._records.clear()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is queued or in flight (pending retries count as queued)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.05))
        return True

    def ensure_running(self) -> None:
        """Start the delivery thread again if it ever ended (``reset`` calls this)."""
        with self._cond:
            if self._closed or self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._work, name="robocorp-emulator-webhooks", daemon=True)
            self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap and self._heap[0][0] <= time.monotonic():
                        break
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, _, delivery = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                self._attempt(delivery)
            except Exception as exc:  # never let one delivery end the dispatcher for the process's life
                log.exception("Emulator webhook delivery to %s failed unexpectedly", delivery.url)
                with self._cond:
                    delivery.attempts += 1
                    delivery.gave_up = True
                    delivery.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _attempt(self, delivery: Delivery) -> None:
        request = urllib.request.Request(
            delivery.url,
            data=delivery.body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "robocorp-control-room-emulator",
                SIGNATURE_HEADER: delivery.signature,
            },
        )
        status: int | None = None
        error: str | None = None
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._cond:
            delivery.attempts += 1
            delivery.last_status = status
            delivery.last_error = error
            delivery.history.append({"attempt": delivery.attempts, "status": status, "error": error})
            if status is not None and 200 <= status < 300:
                delivery.delivered = True
                delivery.last_error = None
            elif delivery.attempts >= self.max_attempts:
                delivery.gave_up = True
            elif not delivery.cancelled:
                backoff = min(self.initial_backoff * 2 ** (delivery.attempts - 1), MAX_BACKOFF_SECONDS)
                heapq.heappush(self._heap, (time.monotonic() + backoff, next(self._seq), delivery))
