"""Webhooks and per-run callbacks: delivered by POST, signed with x-rc-signature, at least once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from . import schemas
from .conftest import Api, start_run


class Receiver:
    """A small HTTP server recording POSTs; answers with scripted statuses, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                            "status": status,
                        }
                    )
                    receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"got {len(self.received)} deliveries, expected {count}"
                self._lock.wait(remaining)
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def verify(delivery: dict[str, Any], secret: str) -> dict[str, Any]:
    """Check the signature the way a receiver must, then decode the event."""
    expected = hmac.new(secret.encode(), delivery["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivery["headers"]["x-rc-signature"], expected)
    assert delivery["headers"]["content-type"] == "application/json"
    event = json.loads(delivery["body"])
    assert set(event) == {"id", "event", "timestamp", "data"}
    schemas.check("get_process_run", event["data"]["process_run"])
    schemas.check(
        "get_workspace", {**event["data"]["workspace"], "name": "x", "organization": {"id": "o", "name": "n"}}
    )
    return event


def create_hook(api: Api, url: str, events: list[str], process_id: str = "proc-invoices") -> dict[str, Any]:
    return api.call(
        "create_webhook", json={"endpoint": url, "enabled_events": events, "process": {"id": process_id}}
    )


def test_webhook_deliveries_are_signed_and_describe_the_run(api: Api, emu: Any, receiver: Receiver) -> None:
    hook = create_hook(api, receiver.url(), ["process_run.started", "process_run.completed"])
    create_hook(api, receiver.url("/other-process"), ["process_run.started"], process_id="proc-report")
    run_id = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [{"n": 1}]})
    emu.advance(1)  # the clock is frozen: started, then completed
    started, completed = receiver.wait_for(2)
    events = [verify(started, hook["secret"]), verify(completed, hook["secret"])]
    assert [e["event"] for e in events] == ["process_run.started", "process_run.completed"]
    assert [e["data"]["process_run"]["state"] for e in events] == ["in_progress", "completed"]
    assert events[1]["data"]["process_run"]["id"] == run_id
    assert events[1]["data"]["process"] == {"id": "proc-invoices", "name": "Process invoices"}
    assert events[1]["data"]["workspace"] == {"id": "ws-emulator"}
    assert events[0]["id"] != events[1]["id"]
    assert all(d["path"] == "/hook" for d in receiver.received)


def test_only_enabled_events_are_delivered(api: Api, emu: Any, receiver: Receiver) -> None:
    hook = create_hook(api, receiver.url(), ["process_run.unresolved"])
    start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [{"n": 1}]})
    failing = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [{"fail": True}]})
    emu.advance(10)
    [delivery] = receiver.wait_for(1)
    event = verify(delivery, hook["secret"])
    assert event["event"] == "process_run.unresolved" and event["data"]["process_run"]["id"] == failing
    assert emu.backend.dispatcher.wait_idle()
    assert len(receiver.received) == 1


def test_deleted_webhooks_stop_receiving(api: Api, emu: Any, receiver: Receiver) -> None:
    hook = create_hook(api, receiver.url(), ["process_run.completed"])
    api.call("delete_webhook", webhook_id=hook["id"])
    start_run(api, "proc-invoices")
    emu.advance(10)
    assert emu.backend.dispatcher.wait_idle()
    assert receiver.received == []


def test_run_callbacks_are_signed_with_their_own_secret(api: Api, emu: Any, receiver: Receiver) -> None:
    callback = {
        "url": receiver.url("/callback"),
        "secret": "callback-secret",
        "callback_events": ["completed"],
    }
    run_id = start_run(api, "proc-report", {"callback": callback})
    emu.advance(10)
    [delivery] = receiver.wait_for(1)
    event = verify(delivery, "callback-secret")
    assert delivery["path"] == "/callback"
    assert event["event"] == "process_run.completed" and event["data"]["process_run"]["id"] == run_id
    assert emu.backend.dispatcher.wait_idle()
    assert len(receiver.received) == 1


def test_failed_deliveries_are_retried_at_least_once(api: Api, emu: Any, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    hook = create_hook(api, receiver.url(), ["process_run.completed"])
    start_run(
        api,
        "proc-report",
        {"callback": {"url": receiver.url("/cb"), "secret": "s", "callback_events": ["started"]}},
    )
    start_run(api, "proc-invoices")
    emu.advance(10)
    deliveries = receiver.wait_for(4)
    hooks = [d for d in deliveries if d["path"] == "/hook"]
    assert [d["status"] for d in receiver.received][:2] == [500, 503]
    events = [verify(d, hook["secret"]) for d in hooks]
    assert len({e["id"] for e in events}) == 1, "a retried delivery carries the same event id"
    assert emu.backend.dispatcher.wait_idle()
    log = {d["url"]: d for d in emu.webhook_deliveries()}
    record = log[receiver.url()]
    assert record["delivered"] is True and record["kind"] == "webhook"
    assert record["attempts"] == len(hooks) and record["event"] == "process_run.completed"
    assert record["history"][-1]["status"] == 200


def test_unreachable_endpoints_are_given_up_after_max_attempts(
    api: Api, emu: Any, receiver: Receiver
) -> None:
    dispatcher = emu.backend.dispatcher
    saved = dispatcher.max_attempts, dispatcher.initial_backoff
    dispatcher.max_attempts, dispatcher.initial_backoff = 3, 0.01
    try:
        port = receiver.server.server_address[1]
        receiver.close()
        create_hook(api, f"http://127.0.0.1:{port}/gone", ["process_run.completed"], process_id="proc-report")
        start_run(api, "proc-report")
        emu.advance(10)
        assert dispatcher.wait_idle()
    finally:
        dispatcher.max_attempts, dispatcher.initial_backoff = saved
    [record] = emu.webhook_deliveries()
    assert record["delivered"] is False and record["gave_up"] is True and record["attempts"] == 3
    assert "ConnectionRefused" in record["last_error"] or "Errno" in record["last_error"]


def test_deliveries_are_listed_by_the_control_endpoint(api: Api, emu: Any, receiver: Receiver) -> None:
    import requests

    create_hook(api, receiver.url(), ["process_run.started"], process_id="proc-report")
    start_run(api, "proc-report")
    emu.advance(1)
    receiver.wait_for(1)
    assert emu.backend.dispatcher.wait_idle()
    deliveries = requests.get(f"{emu.url}/_emulator/webhook-deliveries", timeout=5).json()["deliveries"]
    assert deliveries[0]["event"] == "process_run.started" and deliveries[0]["delivered"] is True
    assert deliveries[0]["body"]["data"]["process"]["id"] == "proc-report"
