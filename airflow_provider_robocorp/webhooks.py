"""Control Room webhooks and run callbacks: the signature check and the event they carry (no I/O).

A delivery is a POST whose header ``x-rc-signature`` is the hex HMAC-SHA256 of the raw body keyed
with the webhook's secret; the body is ``{"id", "event", "timestamp", "data": {"process_run",
"process", "workspace"}}``. Delivery is at least once, so receivers dedupe on ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "x-rc-signature"
#: Events that end a run, and so become an asset event on ``robocorp://<ws>/processes/<id>``.
ENDING_EVENTS = ("process_run.completed", "process_run.unresolved")
KNOWN_EVENTS = ("process_run.started", *ENDING_EVENTS)


class WebhookError(ValueError):
    """A delivery that is signed but not a Control Room process run event."""


def sign(body: bytes, secret: str) -> str:
    """The ``x-rc-signature`` Control Room sends for ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """True when ``signature`` is the HMAC-SHA256 of ``body`` with ``secret`` (constant-time compare).

    A missing signature, an empty secret, or anything but hex digits is simply False."""
    if not signature or not secret or not isinstance(body, bytes | bytearray):
        return False
    candidate = signature.strip().lower()
    if candidate.startswith("sha256="):
        candidate = candidate[len("sha256="):]
    return hmac.compare_digest(candidate.encode("ascii", "replace"), sign(bytes(body), secret).encode())


@dataclass(frozen=True)
class RunEvent:
    """What a delivery says: which run of which process did what."""

    event_id: str
    event: str
    timestamp: str | None
    workspace_id: str
    process_id: str
    process_run_id: str
    state: str | None

    @property
    def ends_run(self) -> bool:
        return self.event in ENDING_EVENTS

    def extra(self) -> dict[str, Any]:
        """The asset event's ``extra``."""
        return {"process_run_id": self.process_run_id, "process_id": self.process_id, "state": self.state,
                "event": self.event, "event_id": self.event_id, "timestamp": self.timestamp,
                "workspace_id": self.workspace_id, "source": "webhook"}


def parse_event(body: bytes) -> RunEvent:
    """The event of a (verified) delivery, or a ``WebhookError`` saying what is missing."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise WebhookError(f"the body is not JSON ({err})") from None
    if not isinstance(doc, dict):
        raise WebhookError("the body is not a JSON object")
    data = _object(doc.get("data"))
    run = _object(data.get("process_run"))
    process = _object(data.get("process")) or _object(run.get("process"))
    workspace = _object(data.get("workspace"))
    fields = {"id": doc.get("id"), "event": doc.get("event"), "data.process_run.id": run.get("id"),
              "data.process.id": process.get("id"), "data.workspace.id": workspace.get("id")}
    missing = [name for name, value in fields.items() if not isinstance(value, str) or not value]
    if missing:
        raise WebhookError(f"the event has no {', '.join(missing)}")
    if doc["event"] not in KNOWN_EVENTS:
        raise WebhookError(f"unknown event {doc['event']!r} (expected one of {', '.join(KNOWN_EVENTS)})")
    timestamp = doc.get("timestamp") if isinstance(doc.get("timestamp"), str) else None
    state = run.get("state") if isinstance(run.get("state"), str) else None
    return RunEvent(doc["id"], doc["event"], timestamp, workspace["id"], process["id"], run["id"], state)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
