"""Every endpoint over HTTP: documented shapes, auth (401/403), 404, 400, 409, pagination."""

from __future__ import annotations

import base64
import csv
from typing import Any

import jsonschema
import pytest
import requests

from airflow_provider_robocorp.emulator.responses import ENDPOINTS as EMULATOR_ENDPOINTS

from . import openapi, schemas
from .conftest import NO_PERMISSIONS_KEY, READONLY_KEY, Api, run_to_end, start_run, upload_work_item_file

ENDPOINTS_TSV = openapi.REFERENCE_DIR / "endpoints.tsv"

# A valid body for every operation that takes one (so 404/403 tests are not answered 400).
BODIES: dict[str, Any] = {
    "create_asset": {"name": "an-asset"},
    "create_asset_upload": {"content_type": "text/plain", "data": base64.b64encode(b"hi").decode()},
    "create_assistant": {
        "name": "assistant",
        "task": {"name": "Process invoices", "package_id": "pkg-emulator"},
    },
    "start_process_run": {"type": "with_payloads", "payloads": [{}]},
    "start_process_run_for_integration": {"hello": "world"},
    "stop_process_run": {"set_remaining_work_items_as_done": False, "terminate_ongoing_activity_runs": True},
    "create_task_package": {"name": "pkg", "type": "zip"},
    "create_webhook": {
        "endpoint": "http://127.0.0.1:9/hook",
        "enabled_events": ["process_run.completed"],
        "process": {"id": "proc-invoices"},
    },
    "create_work_item": {"process": {"id": "proc-invoices"}, "payload": {"a": 1}},
    "create_work_item_file": {"file_name": "a.txt", "file_size": 3},
    "update_work_item_payload": {"payload": {"a": 2}},
    "batch_work_items": {"batch_operation": "retry", "work_item_ids": ["unknown"]},
    "update_worker": {"name": "renamed"},
    "create_worker_group": {"name": "group"},
    "update_worker_group": {"name": "group"},
    "add_worker_to_group": {"worker": {"id": "worker-emulator-1"}},
}
DUMMY_IDS = {
    "asset_id": "missing",
    "upload_id": "missing",
    "assistant_id": "missing",
    "assistant_run_id": "missing",
    "process_id": "missing",
    "process_run_id": "missing",
    "step_run_id": "missing",
    "artifact_id": "missing",
    "task_package_id": "missing",
    "webhook_id": "missing",
    "work_item_id": "missing",
    "worker_id": "missing",
    "worker_group_id": "missing",
}


def _path_args(name: str) -> dict[str, str]:
    template = next(path for _, path, _, op in schemas.ENDPOINTS if op == name)
    return {k: v for k, v in DUMMY_IDS.items() if "{" + k + "}" in template}


def _send(api: Api, name: str, key: str | None, **extra: Any) -> requests.Response:
    kwargs: dict[str, Any] = {**_path_args(name), **extra}
    if name in BODIES:
        kwargs.setdefault("json", BODIES[name])
    if name == "start_process_run_for_integration":
        if key is not None:
            kwargs.setdefault("params", {"token": key})
        return api.raw(name, key=None, **kwargs)
    return api.raw(name, key=key, **kwargs)


def test_route_table_matches_endpoints_tsv() -> None:
    emulator = {(e.method, e.path.removeprefix("/api/v1"), e.permission, e.name) for e in EMULATOR_ENDPOINTS}
    assert len(EMULATOR_ENDPOINTS) == 51
    assert emulator == set(schemas.ENDPOINTS)
    with ENDPOINTS_TSV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    reference = {
        (
            r["method"],
            r["path"],
            None if r["permission"] == "-" else r["permission"],
            r["hook method"].split("(")[0],
        )
        for r in rows
    }
    assert reference == emulator


def test_every_endpoint_answers_its_documented_shape(api: Api, emu: Any) -> None:
    """One scenario that calls all 51 operations and validates every answer."""
    seen: set[str] = set()
    real_call = api.call

    def call(name: str, **kwargs: Any) -> Any:
        body = real_call(name, **kwargs)
        seen.add(name)
        return body

    api.call = call  # type: ignore[method-assign]

    workspace = call("get_workspace")
    assert workspace == {
        "id": "ws-emulator",
        "name": "Emulator Workspace",
        "organization": {"id": "org-emulator", "name": "Emulator Org"},
    }
    assert [p["id"] for p in call("list_processes")["data"]] == ["proc-invoices", "proc-report", "proc-slow"]
    process = call("get_process", process_id="proc-invoices")
    assert [s["name"] for s in process["steps"]] == ["Read invoice", "Book invoice"]

    item = call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": {"invoice": 1}})
    assert item["state"] == "new" and item["process_run"] is None and item["payload"] == {"invoice": 1}
    assert upload_work_item_file(api, item["id"], "invoice.txt", b"12345").status_code == 204
    seen.add("create_work_item_file")
    assert call("update_work_item_payload", work_item_id=item["id"], json={"payload": {"invoice": 2}}) == {
        "payload": {"invoice": 2}
    }
    full = call("get_work_item", work_item_id=item["id"], params={"include_data": "true"})
    assert full["payload"] == {"invoice": 2} and [f["name"] for f in full["files"]] == ["invoice.txt"]
    assert len(call("list_work_items", params={"process_id": "proc-invoices"})["data"]) == 1

    run_id = start_run(api, "proc-invoices", {"type": "with_work_item_ids", "work_item_ids": [item["id"]]})
    seen.add("start_process_run")
    integration = call(
        "start_process_run_for_integration",
        key=None,
        process_id="proc-report",
        params={"token": "emulator-api-key"},
        json={"from": "integration"},
    )
    assert integration["started"] is True
    assert call("get_process_run", process_run_id=run_id)["state"] == "new"
    assert {r["id"] for r in call("list_process_runs")["data"]} == {run_id, integration["id"]}

    run = run_to_end(api, emu, run_id)
    assert run["state"] == "completed"
    step_runs = call("list_step_runs", params={"process_run_id": run_id})["data"]
    assert [s["step"]["name"] for s in step_runs] == ["Read invoice", "Book invoice"]
    step_run = call("get_step_run", step_run_id=step_runs[1]["id"])
    artifacts = call("list_step_run_artifacts", step_run_id=step_run["id"])["data"]
    assert {a["name"] for a in artifacts} == {"output.log", "bookings.csv"}
    artifact = call("get_step_run_artifact", step_run_id=step_run["id"], artifact_id=artifacts[0]["id"])
    assert len(requests.get(artifact["url"], timeout=10).content) == artifact["size"]
    assert call("list_step_run_console_messages", step_run_id=step_run["id"])["data"]
    assert call("list_step_run_events", step_run_id=step_run["id"])["data"]
    outputs = call("list_process_run_outputs", params={"process_run_id": run_id})["data"]
    assert outputs[0]["payload"] == {"processed": True, "invoice": 2}

    failing = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [{"fail": True}]})
    run_to_end(api, emu, failing)
    failed = call("list_work_items", params={"process_run_id": failing})["data"]
    assert call(
        "batch_work_items", json={"batch_operation": "mark_as_done", "work_item_ids": [failed[0]["id"]]}
    ) == {"accepted": True}
    slow = start_run(api, "proc-slow")
    emu.advance(1)
    assert call(
        "stop_process_run",
        process_run_id=slow,
        json={"set_remaining_work_items_as_done": False, "terminate_ongoing_activity_runs": True},
    ) == {"accepted": True}
    assert call("delete_process_run", process_run_id=slow) == {"id": slow, "deleted": True}

    assert [a["name"] for a in call("list_assets")["data"]] == ["emulator-settings"]
    asset = call("create_asset", json={"name": "report"})
    upload = call(
        "create_asset_upload",
        asset_id=asset["id"],
        json={"content_type": "text/csv", "data": base64.b64encode(b"a,b\n").decode()},
    )
    assert upload["status"] == "completed"
    assert call("get_asset_upload", asset_id=asset["id"], upload_id=upload["id"])["status"] == "completed"
    assert call("get_asset", asset_id="name:report")["payload"]["type"] == "url"
    assert call("delete_asset", asset_id=asset["id"]) == {"id": asset["id"], "deleted": True}

    assert [a["id"] for a in call("list_assistants")["data"]] == ["assistant-emulator"]
    assert call("get_assistant", assistant_id="assistant-emulator")["task"]["package_id"] == "pkg-emulator"
    created = call("create_assistant", json=BODIES["create_assistant"])
    assert created["name"] == "assistant"
    runs = call("list_assistant_runs", params={"assistant_id": "assistant-emulator"})["data"]
    assert [r["state"] for r in runs] == ["completed", "failed"]
    assert call("get_assistant_run", assistant_run_id="assistant-run-2")["error"] == {
        "code": "USER_CANCELLED"
    }

    package = call("create_task_package", json={"name": "robot", "type": "zip"})
    assert package["download"] is None and package["tasks"] == []
    assert call("get_task_package", task_package_id="pkg-emulator")["download"] is not None
    assert call("delete_task_package", task_package_id=package["id"]) == {
        "id": package["id"],
        "deleted": True,
    }

    hook = call("create_webhook", json=BODIES["create_webhook"])
    assert hook["secret"] and hook["process"] == {"id": "proc-invoices"}
    assert [h["id"] for h in call("list_webhooks")["data"]] == [hook["id"]]
    assert call("get_webhook", webhook_id=hook["id"])["secret"] == hook["secret"]
    assert call("delete_webhook", webhook_id=hook["id"]) == {"id": hook["id"], "deleted": True}

    assert len(call("list_workers")["data"]) == 2
    assert call("get_worker", worker_id="worker-emulator-1")["state"] in ("idle", "busy")
    assert call("update_worker", worker_id="worker-emulator-1", json={"name": "W1"})["name"] == "W1"
    assert len(call("list_worker_groups")["data"]) == 1
    assert call("get_worker_group", worker_group_id="wg-emulator")["name"] == "Emulator Workers"
    group = call("create_worker_group", json={"name": "Night shift"})
    assert call("update_worker_group", worker_group_id=group["id"], json={"name": "Day"})["name"] == "Day"
    links = call(
        "add_worker_to_group", worker_group_id=group["id"], json={"worker": {"id": "worker-emulator-1"}}
    )
    assert {g["id"] for g in links["worker_groups"]} == {"wg-emulator", group["id"]}
    links = call("remove_worker_from_group", worker_group_id=group["id"], worker_id="worker-emulator-1")
    assert [g["id"] for g in links["worker_groups"]] == ["wg-emulator"]
    assert call("delete_worker_group", worker_group_id=group["id"])["deleted"] is True
    assert call("delete_worker", worker_id="worker-emulator-2")["deleted"] is True

    assert seen == {name for *_, name in schemas.ENDPOINTS}


@pytest.mark.parametrize("name", [op for *_, op in schemas.ENDPOINTS])
def test_missing_key_is_401(api: Api, name: str) -> None:
    response = _send(api, name, key=None)
    assert response.status_code == 401, response.text
    flat = name == "start_process_run_for_integration"
    schemas.check_error(response.json(), "unauthorized", flat=flat)


@pytest.mark.parametrize(
    "header", ["RC-WSKEY wrong-key", "Bearer emulator-api-key", "emulator-api-key", "RC-WSKEY "]
)
def test_invalid_authorization_is_401(api: Api, header: str) -> None:
    response = api.raw("get_workspace", key=None, headers={"Authorization": header})
    assert response.status_code == 401
    schemas.check_error(response.json(), "unauthorized")
    assert "emulator-api-key" not in response.text


@pytest.mark.parametrize("method,path,permission,name", [e for e in schemas.ENDPOINTS if e[2]])
def test_key_without_permission_is_403(api: Api, method: str, path: str, permission: str, name: str) -> None:
    response = _send(api, name, key=NO_PERMISSIONS_KEY)
    assert response.status_code == 403, response.text
    body = response.json()
    schemas.check_error(body, "forbidden", flat=name == "start_process_run_for_integration")
    message = body["message"] if name == "start_process_run_for_integration" else body["error"]["message"]
    assert message == f"API key lacks permission {permission}"


@pytest.mark.parametrize("method,path,permission,name", schemas.ENDPOINTS)
def test_readonly_key_reads_but_cannot_write(
    api: Api, method: str, path: str, permission: str | None, name: str
) -> None:
    response = _send(api, name, key=READONLY_KEY)
    writes = permission is not None and (
        ".write_" in permission or permission == "Processes.trigger_processes"
    )
    assert (response.status_code == 403) == writes, (name, response.status_code, response.text)


def test_any_valid_key_reads_the_workspace(api: Api) -> None:
    assert api.call("get_workspace", key=NO_PERMISSIONS_KEY)["id"] == "ws-emulator"


@pytest.mark.parametrize("name", [op for *_, op in schemas.ENDPOINTS])
def test_unknown_workspace_is_404(api: Api, name: str) -> None:
    response = _send(api, name, key="emulator-api-key", workspace_id="ws-other")
    assert response.status_code == 404, response.text
    schemas.check_error(response.json(), "not_found", flat=name == "start_process_run_for_integration")


@pytest.mark.parametrize(
    "name",
    [op for _, path, _, op in schemas.ENDPOINTS if path.count("{") > 1 and op != "add_worker_to_group"],
)
def test_unknown_ids_are_404(api: Api, name: str) -> None:
    response = _send(api, name, key="emulator-api-key")
    assert response.status_code == 404, (name, response.text)
    schemas.check_error(response.json(), "not_found", flat=name == "start_process_run_for_integration")


def test_unknown_ids_in_query_or_body_are_404(api: Api) -> None:
    api.call(
        "add_worker_to_group", worker_group_id="wg-emulator", json={"worker": {"id": "nope"}}, expect=404
    )
    api.call("create_work_item", json={"process": {"id": "nope"}, "payload": None}, expect=404)
    api.call("list_step_runs", params={"process_run_id": "nope"}, expect=404)
    api.call("list_process_run_outputs", params={"process_run_id": "nope"}, expect=404)
    api.call("batch_work_items", json={"batch_operation": "delete", "work_item_ids": ["nope"]}, expect=404)
    api.call("create_webhook", json={**BODIES["create_webhook"], "process": {"id": "nope"}}, expect=404)
    api.call("create_assistant", json={"name": "x", "task": {"name": "t", "package_id": "nope"}}, expect=404)
    api.call("list_assistant_runs", params={"assistant_id": "nope"}, expect=404)
    api.call("get_asset", asset_id="name:nope", expect=404)
    api.call(
        "start_process_run",
        process_id="proc-invoices",
        json={"type": "with_work_item_ids", "work_item_ids": ["nope"]},
        expect=404,
    )


def test_unknown_paths_are_404_with_an_error_body(api: Api, emu: Any) -> None:
    for url in (f"{emu.api_url}workspaces/ws-emulator/robots", f"{emu.url}/api/v2/workspaces", f"{emu.url}/"):
        response = api.get_url(url)
        assert response.status_code == 404
        schemas.check_error(response.json(), "not_found")
    response = api.session.put(
        f"{emu.api_url}workspaces/ws-emulator", headers={"Authorization": "RC-WSKEY x"}
    )
    assert response.status_code == 405


@pytest.mark.parametrize(
    "name,body",
    [
        ("create_asset", {}),
        ("create_asset", {"name": 5}),
        ("create_asset", {"name": "  "}),
        ("create_asset_upload", {"data": "aGk="}),
        ("create_asset_upload", {"content_type": "text/plain", "data": "not base64!"}),
        ("create_assistant", {"name": "x"}),
        ("start_process_run", {"type": "with_payloads"}),
        ("start_process_run", {"type": "with_payloads", "payloads": []}),
        ("start_process_run", {"type": "with_work_item_ids", "work_item_ids": []}),
        ("start_process_run", {"type": "sometimes"}),
        ("start_process_run", {"payloads": [{}]}),
        ("start_process_run", {"callback": {"url": "http://x"}}),
        ("start_process_run", [1, 2]),
        ("stop_process_run", {"set_remaining_work_items_as_done": True}),
        ("create_task_package", {"name": "x", "type": "tar"}),
        (
            "create_webhook",
            {"endpoint": "http://x", "enabled_events": ["process_run.deleted"], "process": {"id": "p"}},
        ),
        (
            "create_webhook",
            {
                "endpoint": "ftp://x",
                "enabled_events": ["process_run.started"],
                "process": {"id": "proc-invoices"},
            },
        ),
        ("create_work_item", {"payload": {}}),
        ("create_work_item_file", {"file_name": "a.txt", "file_size": -1}),
        ("create_work_item_file", {"file_name": "", "file_size": 1}),
        ("update_work_item_payload", {}),
        ("batch_work_items", {"batch_operation": "explode", "work_item_ids": ["x"]}),
        ("batch_work_items", {"batch_operation": "retry", "work_item_ids": []}),
        ("update_worker", {"name": None}),
        ("create_worker_group", {}),
        ("add_worker_to_group", {"worker": {}}),
    ],
)
def test_invalid_bodies_are_400(api: Api, name: str, body: Any) -> None:
    path = {
        k: v
        for k, v in {
            "asset_id": "name:emulator-settings",
            "process_id": "proc-invoices",
            "process_run_id": "x",
            "work_item_id": "x",
            "worker_id": "worker-emulator-1",
            "worker_group_id": "wg-emulator",
        }.items()
        if k in _path_args(name)
    }
    error = api.call(name, json=body, expect=400, **path)
    assert error["error"]["code"] == "invalid_request"


def test_non_json_bodies_are_400(api: Api) -> None:
    response = api.raw(
        "create_asset", data=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    schemas.check_error(response.json(), "invalid_request")
    response = api.raw("create_asset")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "-3"},
        {"limit": "abc"},
        {"limit": "2.5"},
        {"cursor": "%%%"},
        {"state": "odd"},
    ],
)
def test_invalid_query_parameters_are_400(api: Api, params: dict[str, str]) -> None:
    api.call("list_process_runs", params=params, expect=400)


def test_required_query_parameters_are_400_when_missing(api: Api) -> None:
    api.call("list_step_runs", expect=400)
    api.call("list_process_run_outputs", expect=400)
    api.call("list_work_items", params={"state": "bogus"}, expect=400)


def test_conflicts_are_409(api: Api, emu: Any) -> None:
    api.call("create_asset", json={"name": "dup"})
    api.call("create_asset", json={"name": "dup"}, expect=409)
    api.call("create_task_package", json={"name": "Emulator robot", "type": "zip"}, expect=409)
    api.call(
        "create_assistant",
        json={"name": "Invoice helper", "task": {"name": "Process invoices", "package_id": "pkg-emulator"}},
        expect=409,
    )
    run_id = start_run(api, "proc-slow")
    assert api.call("delete_process_run", process_run_id=run_id, expect=409)["error"]["code"] == "conflict"
    items = api.call("list_work_items", params={"process_run_id": run_id})["data"]
    api.call(
        "batch_work_items", json={"batch_operation": "retry", "work_item_ids": [items[0]["id"]]}, expect=409
    )
    api.call(
        "start_process_run",
        process_id="proc-slow",
        json={"type": "with_work_item_ids", "work_item_ids": [items[0]["id"]]},
        expect=409,
    )
    emu.advance(1)
    api.call("update_work_item_payload", work_item_id=items[0]["id"], json={"payload": 1}, expect=409)


def test_work_item_ids_of_another_process_are_400(api: Api) -> None:
    item = api.call("create_work_item", json={"process": {"id": "proc-report"}, "payload": None})
    api.call(
        "start_process_run",
        process_id="proc-invoices",
        json={"type": "with_work_item_ids", "work_item_ids": [item["id"]]},
        expect=400,
    )


def test_pagination_follows_full_next_urls(api: Api, emu: Any) -> None:
    created = [
        api.call("create_work_item", json={"process": {"id": "proc-report"}, "payload": {"n": n}})["id"]
        for n in range(7)
    ]
    api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": None})
    page = api.call("list_work_items", params={"process_id": "proc-report", "limit": 3})
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen.extend(i["id"] for i in page["data"])
        assert len(page["data"]) <= 3
        if not page["has_more"]:
            assert page["next"] is None
            break
        assert page["next"].startswith(f"{emu.api_url}workspaces/ws-emulator/work-items?")
        assert (
            "limit=3" in page["next"]
            and "process_id=proc-report" in page["next"]
            and "cursor=" in page["next"]
        )
        response = api.get_url(page["next"])
        assert response.status_code == 200
        page = schemas.check("list_work_items", response.json())
    assert pages == 3 and seen == created


def test_default_page_size_is_100_and_limit_is_capped(api: Api) -> None:
    for n in range(105):
        api.call("create_work_item", json={"process": {"id": "proc-report"}, "payload": n})
    first = api.call("list_work_items")
    assert len(first["data"]) == 100 and first["has_more"] is True
    assert len(api.call("list_work_items", params={"limit": 5000})["data"]) == 105


def test_assets_are_addressable_by_name(api: Api) -> None:
    asset = api.call("create_asset", json={"name": "config.json"})
    assert api.call("get_asset", asset_id="name:config.json")["id"] == asset["id"]
    upload = api.call(
        "create_asset_upload",
        asset_id="name:config.json",
        json={"content_type": "application/json", "data": base64.b64encode(b"{}").decode()},
    )
    assert (
        api.call("get_asset_upload", asset_id="name:config.json", upload_id=upload["id"])["status"]
        == "completed"
    )
    api.call("get_asset_upload", asset_id="name:emulator-settings", upload_id=upload["id"], expect=404)
    assert api.call("delete_asset", asset_id="name:config.json") == {"id": asset["id"], "deleted": True}
    api.call("get_asset", asset_id=asset["id"], expect=404)


def test_work_item_data_only_with_include_data(api: Api) -> None:
    item = api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": {"secret": 1}})
    assert upload_work_item_file(api, item["id"], "a.bin", b"\x00\x01").status_code == 204
    plain = api.call("get_work_item", work_item_id=item["id"])
    assert plain["payload"] is None and plain["files"] == []
    full = api.call("get_work_item", work_item_id=item["id"], params={"include_data": "true"})
    assert full["payload"] == {"secret": 1} and full["files"][0]["size"] == 2


def test_webhook_list_hides_secrets(api: Api) -> None:
    api.call("create_webhook", json=BODIES["create_webhook"])
    assert "secret" not in api.call("list_webhooks")["data"][0]


def test_openapi_spec_loads_after_patching() -> None:
    assert openapi.available(), f"{openapi.SPEC_PATH} is missing"
    compared = [(m, p) for m, p, _, _ in schemas.ENDPOINTS if openapi.response_validator(m, p) is not None]
    assert len(compared) == 48  # all but Get process (not in the spec), work item files, get task package
    run_validator = openapi.response_validator(
        "GET", "/workspaces/{workspace_id}/process-runs/{process_run_id}"
    )
    good = {
        "id": "r",
        "state": "new",
        "created_at": "2024-01-01T00:00:00Z",
        "started_at": None,
        "ended_at": None,
        "process": {"id": "p", "name": "n"},
        "started_by": {"type": "api", "details": None},
        "duration": None,
    }
    assert run_validator is not None
    run_validator.validate(good)
    with pytest.raises(jsonschema.ValidationError):
        run_validator.validate({**good, "state": "exploded"})
    with pytest.raises(jsonschema.ValidationError):
        run_validator.validate({k: v for k, v in good.items() if k != "duration"})
    pages = openapi.response_validator("GET", "/workspaces/{workspace_id}/process-runs")
    assert pages is not None
    pages.validate({"next": None, "has_more": False, "data": [good]})
    with pytest.raises(jsonschema.ValidationError):
        pages.validate({"next": 5, "has_more": False, "data": []})
