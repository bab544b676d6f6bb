"""An api-server endpoint for Control Room webhooks and run callbacks: push instead of poll.

``POST <api-server>/robocorp/webhooks/<conn_id>`` takes a delivery, checks ``x-rc-signature``
against the ``webhook_secret`` extra of the ``robocorp`` connection ``<conn_id>`` (the secret is
never in code), and for a run that ended records an asset event on
``robocorp://<workspace_id>/processes/<process_id>`` (run id in ``extra``), so DAGs scheduled on
that asset run within seconds. Answers: 200 (recorded, duplicate, or nothing to record), 400 (signed
but not a process run event), 401 (signature missing or wrong, or no such secret), 413 (body over
``ROBOCORP_WEBHOOK_MAX_BODY_BYTES``, default 256 KiB). Deliveries are at least once: an event id
already recorded for the asset is answered 200 without a second event.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from airflow_provider_robocorp.assets import process_uri
from airflow_provider_robocorp.webhooks import (
    SIGNATURE_HEADER,
    RunEvent,
    WebhookError,
    parse_event,
    verify_signature,
)

log = logging.getLogger(__name__)
URL_PREFIX = "/robocorp"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
#: How many recent asset events of the asset are searched for the delivery's event id.
DEDUPE_WINDOW = 1000
_record_lock = threading.Lock()  # one api-server worker records one delivery at a time


def max_body_bytes() -> int:
    raw = os.environ.get("ROBOCORP_WEBHOOK_MAX_BODY_BYTES", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BODY_BYTES


def _answer(status: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def webhook_secret(conn_id: str) -> str | None:
    """The ``webhook_secret`` extra of the ``robocorp`` connection ``conn_id`` (None if there is none)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    if conn.conn_type != "robocorp":
        return None
    secret = conn.extra_dejson.get("webhook_secret")
    return secret if isinstance(secret, str) and secret else None


def record(event: RunEvent) -> dict[str, Any]:
    """Record the asset event of a run that ended, once per event id; what happened, as JSON."""
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    uri = process_uri(event.workspace_id, event.process_id)
    with _record_lock, create_session() as session:
        assets = session.scalars(select(AssetModel).where(AssetModel.uri == uri)).all()
        assets = [a for a in assets if getattr(a, "active", True) is not None]
        if not assets:
            return {"recorded": False, "uri": uri, "reason": "no DAG is scheduled on this asset"}
        recorded, duplicate = [], []
        for asset in assets:
            recent = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)
                                     .order_by(AssetEvent.id.desc()).limit(DEDUPE_WINDOW)).all()
            if any(isinstance(e.extra, dict) and e.extra.get("event_id") == event.event_id for e in recent):
                duplicate.append(asset.name)
                continue
            asset_manager.register_asset_change(asset=asset, extra=event.extra(), session=session)
            recorded.append(asset.name)
        return {"recorded": bool(recorded), "duplicate": bool(duplicate) and not recorded, "uri": uri,
                "process_run_id": event.process_run_id}


def create_app() -> FastAPI:
    app = FastAPI(title="Robocorp Control Room webhooks", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/webhooks/{conn_id}")
    async def receive(conn_id: str, request: Request) -> JSONResponse:
        limit = max_body_bytes()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _answer(413, error=f"the body is larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _answer(413, error=f"the body is larger than {limit} bytes")
        secret = await run_in_threadpool(webhook_secret, conn_id)
        if secret is None or not verify_signature(bytes(body), request.headers.get(SIGNATURE_HEADER), secret):
            log.warning("Refused a Control Room delivery for connection %r: %s.", conn_id,
                        "no robocorp connection with a webhook_secret extra" if secret is None
                        else "x-rc-signature missing or wrong")
            return _answer(401, error=f"{SIGNATURE_HEADER} is missing or does not match the webhook secret")
        try:
            event = parse_event(bytes(body))
            if not event.ends_run:
                return _answer(200, recorded=False, reason=f"{event.event} does not end a run")
            outcome = await run_in_threadpool(record, event)
        except (WebhookError, ValueError) as err:
            return _answer(400, error=f"not a Control Room process run event: {err}")
        log.info("Control Room delivery %s (%s of run %s): %s", event.event_id, event.event,
                 event.process_run_id, outcome)
        return _answer(200, **outcome)

    return app


class RobocorpWebhookPlugin(AirflowPlugin):
    """Mounts the webhook endpoint on the api-server under ``/robocorp``."""

    name = "robocorp_webhooks"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Robocorp Control Room webhooks"}]
