"""The webhook signature check, event parsing, and the api-server endpoint (real Airflow DB, SQLite)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_robocorp.webhooks import WebhookError, parse_event, sign, verify_signature

SECRET = "s3cret-from-control-room"


def delivery(event: str = "process_run.completed", event_id: str = "ev-1", process_id: str = "proc-report",
             workspace_id: str = "ws-emulator") -> bytes:
    return json.dumps({"id": event_id, "event": event, "timestamp": "2026-01-01T00:00:00Z", "data": {
        "process_run": {"id": "run-1", "state": "completed"}, "process": {"id": process_id, "name": "Report"},
        "workspace": {"id": workspace_id}}}).encode()


def test_verify_signature_good_bad_missing() -> None:
    body = delivery()
    good = sign(body, SECRET)
    assert verify_signature(body, good, SECRET) and verify_signature(body, good.upper(), SECRET)
    assert not verify_signature(body, good, "another-secret")
    assert not verify_signature(body + b" ", good, SECRET)  # the raw body, byte for byte
    assert not verify_signature(body, None, SECRET) and not verify_signature(body, "", SECRET)
    assert not verify_signature(body, good, "")
    assert not verify_signature(body, "zz-not-hex-\u00e9", SECRET)


def test_parse_event_names_what_is_missing() -> None:
    event = parse_event(delivery())
    assert (event.event_id, event.process_id, event.process_run_id, event.ends_run) == ("ev-1", "proc-report",
                                                                                       "run-1", True)
    assert event.extra()["process_run_id"] == "run-1" and event.extra()["event_id"] == "ev-1"
    assert not parse_event(delivery("process_run.started")).ends_run
    with pytest.raises(WebhookError, match="no data.process.id"):
        parse_event(json.dumps({"id": "x", "event": "process_run.completed", "data": {
            "process_run": {"id": "r"}, "workspace": {"id": "w"}}}).encode())
    with pytest.raises(WebhookError, match="not JSON"):
        parse_event(b"\xff")
    with pytest.raises(WebhookError, match="unknown event 'process_run.deleted'"):
        parse_event(delivery("process_run.deleted"))


@pytest.fixture
def client(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    from fastapi.testclient import TestClient

    from airflow_provider_robocorp.plugins.webhooks import create_app

    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_HOOKS", json.dumps(
        {"conn_type": "robocorp", "login": "ws-emulator", "password": "key", "extra": {"webhook_secret": SECRET}}))
    monkeypatch.setenv("AIRFLOW_CONN_NOT_ROBOCORP", json.dumps(
        {"conn_type": "http", "password": SECRET, "extra": {"webhook_secret": SECRET}}))
    return TestClient(create_app())


@pytest.fixture
def watched_asset(airflow_db: None) -> Any:
    """An active asset row for proc-report, as a DAG scheduled on it would leave."""
    from airflow.models.asset import AssetActive, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    uri = "robocorp://ws-emulator/processes/proc-report"
    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == uri))
        if asset is None:
            asset = AssetModel(uri=uri, name=uri, group="asset")
            session.add(asset)
            session.flush()
            session.add(AssetActive.for_asset(asset))
        session.execute(delete(AssetEvent).where(AssetEvent.asset_id == asset.id))

    def events() -> list[dict[str, Any]]:
        with create_session() as session:
            return [e.extra for e in session.scalars(
                select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.uri == uri))]

    return events


def post(client: Any, body: bytes, signature: str | None, conn_id: str = "robocorp_hooks") -> Any:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-rc-signature"] = signature
    return client.post(f"/webhooks/{conn_id}", content=body, headers=headers)


def test_a_signed_delivery_records_one_asset_event_and_a_replay_none(client: Any, watched_asset: Any) -> None:
    body = delivery()
    first = post(client, body, sign(body, SECRET))
    assert first.status_code == 200 and first.json()["recorded"] is True, first.text
    replay = post(client, body, sign(body, SECRET))
    assert replay.status_code == 200 and replay.json() == {**first.json(), "recorded": False, "duplicate": True}
    (extra,) = watched_asset()
    assert extra["process_run_id"] == "run-1" and extra["event_id"] == "ev-1" and extra["source"] == "webhook"


@pytest.mark.parametrize(("signature", "conn_id"), [
    (None, "robocorp_hooks"), ("0" * 64, "robocorp_hooks"), ("sign-with-wrong", "robocorp_hooks"),
    ("good", "not_robocorp"), ("good", "no_such_connection"),
])
def test_forged_missing_or_unknown_is_401_and_records_nothing(client: Any, watched_asset: Any,
                                                              signature: str | None, conn_id: str) -> None:
    body = delivery(event_id="ev-forged")
    value = {"good": sign(body, SECRET), "sign-with-wrong": sign(body, "wrong")}.get(signature or "", signature)
    answer = post(client, body, value, conn_id)
    assert answer.status_code == 401 and "x-rc-signature" in answer.json()["error"]
    assert watched_asset() == []


def test_oversize_is_413_and_bad_events_400(client: Any, watched_asset: Any, monkeypatch) -> None:
    monkeypatch.setenv("ROBOCORP_WEBHOOK_MAX_BODY_BYTES", "100")
    big = delivery() + b" " * 200
    assert post(client, big, sign(big, SECRET)).status_code == 413
    monkeypatch.delenv("ROBOCORP_WEBHOOK_MAX_BODY_BYTES")
    junk = b'{"id": "x"}'
    assert post(client, junk, sign(junk, SECRET)).status_code == 400
    bad_id = delivery(process_id="../x")
    assert post(client, bad_id, sign(bad_id, SECRET)).status_code == 400
    started = delivery("process_run.started", event_id="ev-started")
    assert post(client, started, sign(started, SECRET)).json()["recorded"] is False
    assert watched_asset() == []


def test_a_delivery_for_an_asset_no_dag_uses_is_answered_without_an_event(client: Any, airflow_db: None) -> None:
    body = delivery(process_id="proc-nobody-watches", event_id="ev-9")
    answer = post(client, body, sign(body, SECRET))
    assert answer.status_code == 200 and answer.json()["reason"] == "no DAG is scheduled on this asset"
