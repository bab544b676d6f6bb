"""No input may produce a 500, a hang or a poisoned state: each is a 4xx JSON error and the
emulator keeps serving (found by fuzzing the emulator from the official OpenAPI spec)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from .conftest import Api

KEY = {"Authorization": "RC-WSKEY emulator-api-key", "Content-Type": "application/json"}


def _post(emu: Any, path: str, raw: bytes | str) -> requests.Response:
    return requests.post(f"{emu.api_url}workspaces/{emu.workspace_id}/{path}", data=raw, headers=KEY, timeout=10)


@pytest.mark.parametrize(("raw", "says"), [
    ('{"name": "\\ud800 lone"}', "lone UTF-16 surrogate"),
    ('{"name": "ok", "x": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper"),
    ('{"name": "ok", "n": ' + "9" * 5000 + "}", "not valid JSON"),
    ('{"name": "ok", "n": NaN}', "not valid JSON"),
    ('{"name": "ok", "n": Infinity}', "not valid JSON"),
    ('{"name": "ok", "n": -Infinity}', "not valid JSON"),
])
def test_hostile_json_bodies_are_400s_and_nothing_is_stored(api: Api, emu: Any, raw: str, says: str) -> None:
    before = [a["name"] for a in emu.state()["assets"]]
    answer = _post(emu, "assets", raw)
    assert answer.status_code == 400 and says in answer.json()["error"]["message"]
    assert [a["name"] for a in emu.state()["assets"]] == before
    assert api.call("list_assets")["data"]  # still serving, every answer still encodable


@pytest.mark.parametrize("cursor", [
    base64.urlsafe_b64encode(b'{"offset": 1e999}').decode(),
    base64.urlsafe_b64encode(b'{"offset": ' + b"[" * 3000 + b"]" * 3000 + b"}").decode(),
    base64.urlsafe_b64encode(b'{"offset": "x"}').decode(),
    "%%%not-base64",
])
def test_hostile_cursors_are_400s(emu: Any, cursor: str) -> None:
    answer = requests.get(f"{emu.api_url}workspaces/{emu.workspace_id}/assets", params={"cursor": cursor},
                          headers=KEY, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["message"] == "Invalid pagination cursor"


@pytest.mark.parametrize("content_type", ["text/csv\r\nX-Injected: 1", "text/csvé", "csv", "text/ csv", ""])
def test_a_content_type_that_cannot_be_a_header_is_refused(api: Api, emu: Any, content_type: str) -> None:
    asset = api.call("create_asset", json={"name": "report"})
    answer = _post(emu, f"assets/{asset['id']}/uploads", f'{{"content_type": {json_str(content_type)}}}')
    assert answer.status_code == 400
    assert api.call("get_asset", asset_id=asset["id"])["payload"]["type"] == "empty"


def json_str(value: str) -> str:
    import json

    return json.dumps(value)


def test_a_doubled_key_prefix_is_refused(emu: Any) -> None:
    url = f"{emu.api_url}workspaces/{emu.workspace_id}"
    doubled = requests.get(url, headers={"Authorization": "RC-WSKEY RC-WSKEY emulator-api-key"}, timeout=10)
    assert doubled.status_code == 401 and "prefix twice" in doubled.json()["error"]["message"]
    assert requests.get(url, headers={"Authorization": "RC-WSKEY emulator-api-key"}, timeout=10).ok


def test_unknown_fields_are_ignored_on_start_process_run(api: Api, emu: Any) -> None:
    answer = _post(emu, "processes/proc-report/process-runs", '{"priority": "high", "type": "with_inputs"}')
    assert answer.status_code == 200, answer.text


def test_a_json_body_over_the_limit_is_a_413(api: Api, emu: Any, monkeypatch) -> None:
    from airflow_provider_robocorp.emulator import responses

    monkeypatch.setattr(responses, "MAX_JSON_BODY_BYTES", 1000)
    big = '{"name": "' + "x" * 2000 + '"}'
    answer = _post(emu, "assets", big)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"
    chunked = requests.post(f"{emu.api_url}workspaces/{emu.workspace_id}/assets", headers=KEY, timeout=10,
                            data=iter([big[:1000].encode(), big[1000:].encode()]))
    assert chunked.status_code == 413
    assert "x" * 2000 not in str(emu.state()["assets"]) and api.call("list_assets")["data"]


def test_a_405_lists_every_allowed_method(emu: Any) -> None:
    url = f"{emu.api_url}workspaces/{emu.workspace_id}/assets"  # GET (list) and POST (create)
    answer = requests.put(url, headers=KEY, timeout=10)
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert answer.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(("path", "raw", "says"), [
    ("task-packages", '{"name": "pkg"}', "'type' is a required property"),
    ("work-items", '{"process": {"id": "proc-invoices"}}', "'payload' is a required property"),
])
def test_required_fields_of_the_document_are_enforced(emu: Any, path: str, raw: str, says: str) -> None:
    before = emu.state()
    answer = _post(emu, path, raw)
    assert answer.status_code == 400 and says in answer.json()["error"]["message"]
    assert emu.state() == before


def test_a_null_payload_is_refused_where_the_document_says_json(api: Api, emu: Any) -> None:
    item = api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": None})  # JSON | null
    answer = _post(emu, f"work-items/{item['id']}/payload", '{"payload": null}')
    assert answer.status_code == 400 and "payload" in answer.json()["error"]["message"]
    assert _post(emu, f"work-items/{item['id']}/payload", '{"payload": {"a": 1}}').json() == {"payload": {"a": 1}}
