"""The ``robocorp://`` asset URIs: builders, the normaliser Airflow calls, the factory."""

from __future__ import annotations

import urllib.parse

import pytest

from airflow_provider_robocorp import assets

WS = "ws-1"


def test_builders_give_the_canonical_forms() -> None:
    assert assets.process_uri(WS, "proc-invoices") == "robocorp://ws-1/processes/proc-invoices"
    assert assets.work_item_queue_uri(WS, "p") == "robocorp://ws-1/processes/p/work-items"
    assert assets.robocorp_asset_uri(WS, "daily report/eu") == "robocorp://ws-1/assets/daily%20report%2Feu"
    assert assets.parse_uri("robocorp://ws-1/assets/daily%20report%2Feu") == {
        "kind": "asset", "workspace_id": WS, "asset_name": "daily report/eu"}


@pytest.mark.parametrize(("uri", "says"), [
    ("robocorp:///processes/p", "workspace id (the URI's host part) is missing"),
    ("robocorp://ws-1/process/p", "names no process, work item queue or asset"),
    ("robocorp://ws-1/processes/p/runs", "names no process"),
    ("robocorp://ws-1/processes/..", "not a Control Room id"),
    ("robocorp://ws 1/processes/p", "not a Control Room id"),
    ("robocorp://ws-1:80/processes/p", "must not have a query, a fragment, user info or a port"),
    ("robocorp://ws-1/processes/p?x=1", "must not have a query"),
    ("robocorp://ws-1/assets/", "names no process"),
    ("robocorp://ws-1/assets/%01", "control characters"),
])
def test_malformed_uris_are_refused_naming_the_valid_forms(uri: str, says: str) -> None:
    with pytest.raises(ValueError, match="is not a valid robocorp asset URI") as err:
        assets.normalize_uri(urllib.parse.urlsplit(uri))
    assert says in str(err.value) and "robocorp://<workspace_id>/assets/<asset_name>" in str(err.value)


@pytest.mark.parametrize(("given", "canonical"), [
    ("ROBOCORP://ws-1/processes/p/", "robocorp://ws-1/processes/p"),
    ("robocorp://ws-1/assets/a b", "robocorp://ws-1/assets/a%20b"),
    ("robocorp://ws-1/assets/a%20b", "robocorp://ws-1/assets/a%20b"),
    ("robocorp://ws-1/processes/p/work-items", "robocorp://ws-1/processes/p/work-items"),
])
def test_airflow_normalises_through_the_provider(given: str, canonical: str) -> None:
    from airflow.sdk import Asset

    assert Asset(uri=given).uri == canonical


def test_airflow_refuses_a_malformed_uri_through_the_provider() -> None:
    from airflow.sdk import Asset

    with pytest.raises(ValueError, match="is not a valid robocorp asset URI"):
        Asset(uri="robocorp://ws-1/nothing/here")


def test_the_factory_and_the_asset_helpers() -> None:
    assert assets.create_asset(workspace_id=WS, process_id="p").uri == "robocorp://ws-1/processes/p"
    assert assets.create_asset(workspace_id=WS, process_id="p", work_items=True).uri.endswith("/p/work-items")
    assert assets.create_asset(workspace_id=WS, asset_name="rates").uri == "robocorp://ws-1/assets/rates"
    assert assets.process_asset(WS, "p").uri == assets.control_room_asset(WS, "x").uri.replace("assets/x", "processes/p")
    with pytest.raises(ValueError, match="exactly one of process_id= or asset_name="):
        assets.create_asset(workspace_id=WS)
    with pytest.raises(ValueError, match="workspace_id='a/b' is not a Control Room id"):
        assets.process_uri("a/b", "p")


def test_the_helpers_do_no_io(monkeypatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", "not-a-uri::")  # a lookup would fail loudly
    assert assets.process_asset(WS, "p").uri == "robocorp://ws-1/processes/p"
