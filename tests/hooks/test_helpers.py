"""The helpers operators share: file and asset transfers, waiting for a run, the run's web URL."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_robocorp.exceptions import (
    ProcessRunFailedError,
    ProcessRunTimeoutError,
    RobocorpConfigError,
    RobocorpError,
    RobocorpNotFoundError,
    RobocorpPermissionError,
)
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import KEY, WS, WS_URL, FakeClock, Reply, ScriptedServer

UPLOAD_URL = "https://robocorp-uploads.s3.amazonaws.com/"
FORM_DATA = {
    "key": "workitems/wi-1/report.csv",
    "Content-Type": "text/csv",
    "policy": "eyJleHBpcmF0aW9uIjoiMjAzMCJ9",
    "x-amz-signature": "0f1e2d3c",
}
ASSET = {"id": "as-1", "name": "monthly", "payload": {"type": "empty"}}
ASSET_BY_NAME = f"{WS_URL}assets/name:monthly"
UPLOADS = f"{WS_URL}assets/as-1/uploads"
INLINE_MAX_RAW = 3_749_997  # largest size whose base64 stays under 5,000,000 bytes
PUT_MIN_RAW = 3_750_000  # base64 is exactly 5,000,000 bytes: too big to inline


def _multipart_parts(content_type: str, body: bytes) -> list[tuple[Any, Any, Any]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart()
    return [
        (part.get_param("name", header="content-disposition"), part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


# --- work item files -------------------------------------------------------------------------


def test_upload_work_item_file_streams_a_sized_multipart_body(loopback_conn: ScriptedServer, tmp_path: Path) -> None:
    server = loopback_conn
    content = os.urandom(1_500_000) + b"\r\n--not-a-boundary--\r\n"  # more than one read chunk
    file = tmp_path / "report.csv"
    file.write_bytes(content)
    presigned = f"{server.origin}/bucket/?X-Amz-Credential=abc"
    server.script(Reply(200, {"upload": {"url": presigned, "form_data": FORM_DATA}}), Reply(204))

    upload = RobocorpHook().upload_work_item_file("wi-1", file)

    assert upload == {"url": presigned, "form_data": FORM_DATA}
    create, post = server.requests
    assert (create.method, create.path) == ("POST", f"/api/v1/workspaces/{WS}/work-items/wi-1/files")
    assert create.json() == {"file_name": "report.csv", "file_size": len(content)}
    assert create.headers["authorization"] == f"RC-WSKEY {KEY}"

    assert (post.method, post.target) == ("POST", "/bucket/?X-Amz-Credential=abc")
    assert "authorization" not in post.headers
    assert "transfer-encoding" not in post.headers
    assert post.headers["content-length"] == str(len(post.body))
    assert post.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = _multipart_parts(post.headers["content-type"], post.body)
    assert [name for name, _, _ in parts] == [*FORM_DATA, "file"]  # every field, and the file last
    assert {name: value.decode() for name, _, value in parts[:-1]} == FORM_DATA
    assert parts[-1][1] == "report.csv"
    assert parts[-1][2] == content


def test_upload_work_item_file_with_another_name(loopback_conn: ScriptedServer, tmp_path: Path) -> None:
    file = tmp_path / "local.bin"
    file.write_bytes(b"abc")
    loopback_conn.script(Reply(200, {"upload": {"url": f"{loopback_conn.origin}/up", "form_data": {}}}), Reply(204))
    RobocorpHook().upload_work_item_file("wi-1", file, file_name="invoice.pdf")
    create, post = loopback_conn.requests
    assert create.json() == {"file_name": "invoice.pdf", "file_size": 3}
    parts = _multipart_parts(post.headers["content-type"], post.body)
    assert [(n, f, v) for n, f, v in parts] == [("file", "invoice.pdf", b"abc")]


def test_upload_work_item_file_body_is_not_read_into_memory(hook: RobocorpHook, requests_mock, tmp_path) -> None:
    """The body handed to requests is a sized stream (so Content-Length, not chunked), not bytes."""
    file = tmp_path / "a.txt"
    file.write_bytes(b"x" * 10)
    seen: dict[str, Any] = {}

    def presigned(request, context):
        seen["type"] = type(request.body).__name__
        seen["length"] = request.headers.get("Content-Length")
        seen["chunked"] = request.headers.get("Transfer-Encoding")
        seen["auth"] = request.headers.get("Authorization")
        seen["body"] = b"".join(iter(request.body))
        context.status_code = 204
        return ""

    requests_mock.post(f"{WS_URL}work-items/wi-1/files", json={"upload": {"url": UPLOAD_URL, "form_data": {"k": "v"}}})
    requests_mock.post(UPLOAD_URL, text=presigned)
    hook.upload_work_item_file("wi-1", file)
    assert seen["type"] != "bytes"
    assert seen["length"] == str(len(seen["body"]))
    assert seen["chunked"] is None and seen["auth"] is None
    assert b'name="k"\r\n\r\nv\r\n' in seen["body"] and b"x" * 10 in seen["body"]


def test_upload_work_item_file_missing_file(hook: RobocorpHook, requests_mock, tmp_path) -> None:
    with pytest.raises(RobocorpConfigError, match="does not exist or is not a regular file"):
        hook.upload_work_item_file("wi-1", tmp_path / "nope.csv")
    with pytest.raises(RobocorpConfigError, match="does not exist or is not a regular file"):
        hook.upload_work_item_file("wi-1", tmp_path)
    assert requests_mock.call_count == 0


def test_upload_work_item_file_without_upload_url(hook: RobocorpHook, requests_mock, tmp_path) -> None:
    file = tmp_path / "a.txt"
    file.write_text("a")
    requests_mock.post(f"{WS_URL}work-items/wi-1/files", json={"upload": {}})
    with pytest.raises(RobocorpError, match="returned no upload URL"):
        hook.upload_work_item_file("wi-1", file)
    assert requests_mock.call_count == 1


def test_upload_work_item_file_storage_refusal_is_an_error(hook, requests_mock, tmp_path) -> None:
    file = tmp_path / "a.txt"
    file.write_text("a")
    requests_mock.post(f"{WS_URL}work-items/wi-1/files", json={"upload": {"url": UPLOAD_URL, "form_data": {}}})
    requests_mock.post(UPLOAD_URL, status_code=403, headers={"Content-Type": "application/xml"},
                       text="<Error><Code>AccessDenied</Code><Message>Policy expired</Message></Error>")
    with pytest.raises(RobocorpPermissionError) as err:
        hook.upload_work_item_file("wi-1", file)
    assert err.value.path == "/"


# --- assets ----------------------------------------------------------------------------------


def test_upload_asset_small_is_inlined(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "completed", "content_type": "text/csv"})
    result = hook.upload_asset("monthly", data="a,b\n1,2\n", content_type="text/csv")
    assert result == {"asset": ASSET, "upload": {"id": "up-1", "status": "completed", "content_type": "text/csv"}}
    assert [(r.method, r.path) for r in requests_mock.request_history] == [
        ("GET", f"/api/v1/workspaces/{WS}/assets/name:monthly"),
        ("POST", f"/api/v1/workspaces/{WS}/assets/as-1/uploads"),
    ]
    assert requests_mock.last_request.json() == {
        "content_type": "text/csv", "data": base64.b64encode(b"a,b\n1,2\n").decode()
    }


def test_upload_asset_largest_inline_size(hook: RobocorpHook, requests_mock, tmp_path) -> None:
    file = tmp_path / "blob.bin"
    file.write_bytes(b"\x07" * INLINE_MAX_RAW)
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "completed"})
    hook.upload_asset("monthly", file_path=file)
    body = requests_mock.last_request.json()
    assert base64.b64decode(body["data"]) == b"\x07" * INLINE_MAX_RAW
    assert body["content_type"] == "application/octet-stream"
    assert requests_mock.call_count == 2


def test_upload_asset_large_is_put_to_the_upload_url(hook: RobocorpHook, requests_mock, clock: FakeClock) -> None:
    data = b"\x01" * PUT_MIN_RAW
    upload_url = "https://robocorp-assets.s3.amazonaws.com/as-1/up-1?X-Amz-Signature=abc"
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "pending", "upload_url": upload_url})
    requests_mock.put(upload_url, status_code=200, text="")
    requests_mock.get(f"{UPLOADS}/up-1", [{"json": {"id": "up-1", "status": "pending"}},
                                          {"json": {"id": "up-1", "status": "completed"}}])

    result = hook.upload_asset("monthly", data=data, content_type="application/zip", poll_interval=2)

    assert result["upload"] == {"id": "up-1", "status": "completed"}
    methods = [(r.method, r.url) for r in requests_mock.request_history]
    assert methods == [
        ("GET", f"{WS_URL}assets/name:monthly"),
        ("POST", UPLOADS),
        ("PUT", upload_url),
        ("GET", f"{UPLOADS}/up-1"),
        ("GET", f"{UPLOADS}/up-1"),
    ]
    create, put = requests_mock.request_history[1:3]
    assert create.json() == {"content_type": "application/zip"}  # no inline data
    assert put.body == data
    assert put.headers["Content-Length"] == str(len(data))
    assert put.headers["Content-Type"] == "application/zip"
    assert "Authorization" not in put.headers
    assert clock.sleeps == [2, 2]


def test_upload_asset_large_file_is_streamed_with_content_length(loopback_conn: ScriptedServer, tmp_path, clock) -> None:
    server = loopback_conn
    content = os.urandom(PUT_MIN_RAW + 11)
    file = tmp_path / "big.zip"
    file.write_bytes(content)
    upload_url = f"{server.origin}/assets/up-7?signature=xyz"
    server.script(
        Reply(404, {"error": {"code": "not_found", "message": "Asset not found"}}),
        Reply(200, {"id": "as-7", "name": "big", "payload": {"type": "empty"}}),
        Reply(200, {"id": "up-7", "status": "pending", "upload_url": upload_url}),
        Reply(200),
        Reply(200, {"id": "up-7", "status": "completed"}),
    )
    result = RobocorpHook().upload_asset("big", file_path=file, content_type="application/zip")
    assert result["asset"]["id"] == "as-7"
    get, create_asset, create_upload, put, poll = server.requests
    assert (get.method, get.path) == ("GET", f"/api/v1/workspaces/{WS}/assets/name:big")
    assert (create_asset.method, create_asset.json()) == ("POST", {"name": "big"})
    assert create_upload.json() == {"content_type": "application/zip"}
    assert (put.method, put.target) == ("PUT", "/assets/up-7?signature=xyz")
    assert put.body == content
    assert put.headers["content-length"] == str(len(content))
    assert "transfer-encoding" not in put.headers
    assert "authorization" not in put.headers
    assert poll.path == f"/api/v1/workspaces/{WS}/assets/as-7/uploads/up-7"


def test_upload_asset_creates_the_missing_asset(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(ASSET_BY_NAME, status_code=404, json={"error": {"code": "not_found", "message": "no asset"}})
    requests_mock.post(f"{WS_URL}assets", json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "completed"})
    result = hook.upload_asset("monthly", data=b"x")
    assert result["asset"] == ASSET
    assert [(r.method, r.path) for r in requests_mock.request_history] == [
        ("GET", f"/api/v1/workspaces/{WS}/assets/name:monthly"),
        ("POST", f"/api/v1/workspaces/{WS}/assets"),
        ("POST", f"/api/v1/workspaces/{WS}/assets/as-1/uploads"),
    ]
    assert requests_mock.request_history[1].json() == {"name": "monthly"}


def test_upload_asset_created_concurrently(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(ASSET_BY_NAME, [{"status_code": 404}, {"json": ASSET}])
    requests_mock.post(f"{WS_URL}assets", status_code=409, json={"code": "conflict", "message": "exists"})
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "completed"})
    assert hook.upload_asset("monthly", data=b"x")["asset"] == ASSET


def test_upload_asset_without_create_if_missing(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(ASSET_BY_NAME, status_code=404, json={"code": "not_found", "message": "no asset"})
    with pytest.raises(RobocorpNotFoundError):
        hook.upload_asset("monthly", data=b"x", create_if_missing=False)
    assert requests_mock.call_count == 1


def test_upload_asset_failed_upload_reports_the_reason(hook: RobocorpHook, requests_mock, clock) -> None:
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "pending"})
    requests_mock.get(f"{UPLOADS}/up-1", json={"id": "up-1", "status": "failed", "reason": "content type mismatch"})
    with pytest.raises(RobocorpError) as err:
        hook.upload_asset("monthly", data=b"x")
    assert str(err.value) == "Asset upload up-1 failed: content type mismatch."


def test_upload_asset_pending_past_the_timeout(hook: RobocorpHook, requests_mock, clock: FakeClock) -> None:
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "pending"})
    requests_mock.get(f"{UPLOADS}/up-1", json={"id": "up-1", "status": "pending"})
    with pytest.raises(ProcessRunTimeoutError, match="still pending after 5 s"):
        hook.upload_asset("monthly", data=b"x", poll_interval=1, timeout=5)
    assert sum(clock.sleeps) <= 6


def test_upload_asset_without_wait(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "pending"})
    assert hook.upload_asset("monthly", data=b"x", wait=False)["upload"]["status"] == "pending"
    assert requests_mock.call_count == 2


def test_upload_asset_large_without_upload_url(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "pending"})
    with pytest.raises(RobocorpError, match="returned no upload_url"):
        hook.upload_asset("monthly", data=b"\0" * PUT_MIN_RAW)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "pass exactly one of file_path or data"),
        ({"data": b"x", "file_path": "/etc/hostname"}, "pass exactly one of file_path or data"),
        ({"file_path": "/nonexistent/file.bin"}, "does not exist"),
        ({"data": 12}, "data must be bytes or str"),
    ],
)
def test_upload_asset_bad_arguments(hook: RobocorpHook, requests_mock, kwargs, text) -> None:
    with pytest.raises(RobocorpConfigError, match=text):
        hook.upload_asset("monthly", **kwargs)
    assert requests_mock.call_count == 0


def _asset_with_content(url: str) -> dict:
    return {"id": "as-1", "name": "monthly", "payload": {"type": "url", "content_type": "text/csv", "url": url}}


def test_download_asset_to_bytes(hook: RobocorpHook, requests_mock) -> None:
    url = "https://robocorp-assets.s3.amazonaws.com/as-1?X-Amz-Signature=s1g"
    requests_mock.get(ASSET_BY_NAME, json=_asset_with_content(url))
    requests_mock.get(url, content=b"a,b\n1,2\n")
    assert hook.download_asset("name:monthly") == b"a,b\n1,2\n"
    download = requests_mock.last_request
    assert download.url == url
    assert "Authorization" not in download.headers


def test_download_asset_to_a_file(hook: RobocorpHook, requests_mock, tmp_path) -> None:
    url = "https://robocorp-assets.s3.amazonaws.com/as-1?X-Amz-Signature=s1g"
    content = os.urandom(3 * 1024 * 1024 + 5)
    requests_mock.get(f"{WS_URL}assets/as-1", json=_asset_with_content(url))
    requests_mock.get(url, content=content)
    target = tmp_path / "out.csv"
    assert hook.download_asset("as-1", target) == str(target)
    assert target.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_download_asset_failure_leaves_no_file(hook: RobocorpHook, requests_mock, tmp_path) -> None:
    url = "https://robocorp-assets.s3.amazonaws.com/as-1?X-Amz-Signature=old"
    requests_mock.get(f"{WS_URL}assets/as-1", json=_asset_with_content(url))
    requests_mock.get(url, status_code=403, text="<Error><Code>AccessDenied</Code></Error>")
    with pytest.raises(RobocorpPermissionError):
        hook.download_asset("as-1", tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_download_empty_asset(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(f"{WS_URL}assets/as-1", json=ASSET)
    with pytest.raises(RobocorpError, match="has no content yet"):
        hook.download_asset("as-1")
    assert requests_mock.call_count == 1


# --- waiting for a process run ---------------------------------------------------------------


RUN_URL = f"{WS_URL}process-runs/pr-1"


def _runs(*states: str) -> list[dict]:
    return [{"json": {"id": "pr-1", "state": s}} for s in states]


def test_wait_for_process_run_completed(hook: RobocorpHook, requests_mock, clock: FakeClock) -> None:
    requests_mock.get(RUN_URL, _runs("new", "in_progress", "completed"))
    polled = []
    run = hook.wait_for_process_run("pr-1", poll_interval=15, on_poll=lambda r: polled.append(r["state"]))
    assert run == {"id": "pr-1", "state": "completed"}
    assert polled == ["new", "in_progress", "completed"]
    assert clock.sleeps == [15, 15]
    assert requests_mock.call_count == 3


def test_wait_for_process_run_unresolved(hook: RobocorpHook, requests_mock, clock) -> None:
    requests_mock.get(RUN_URL, _runs("in_progress", "unresolved"))
    with pytest.raises(ProcessRunFailedError) as err:
        hook.wait_for_process_run("pr-1", poll_interval=1)
    assert str(err.value) == "Process run pr-1 ended unresolved."
    assert err.value.process_run == {"id": "pr-1", "state": "unresolved"}


def test_wait_for_process_run_accepting_unresolved(hook: RobocorpHook, requests_mock, clock) -> None:
    requests_mock.get(RUN_URL, _runs("stopping", "unresolved"))
    run = hook.wait_for_process_run("pr-1", poll_interval=1, accepted_states=("completed", "unresolved"))
    assert run["state"] == "unresolved"


@pytest.mark.parametrize("state", ["paused", None, "COMPLETED"])
def test_wait_for_process_run_fails_closed_on_unknown_states(hook, requests_mock, clock, state) -> None:
    requests_mock.get(RUN_URL, _runs("in_progress", state))
    with pytest.raises(ProcessRunFailedError, match="unknown state") as err:
        hook.wait_for_process_run("pr-1", poll_interval=1, timeout=60)
    assert (err.value.process_run or {}).get("state") == state
    assert requests_mock.call_count == 2


def _in_progress_then_completed_after(polls: int):
    """A run that completes on poll ``polls`` (so a broken deadline fails the test instead of hanging)."""
    seen = []

    def answer(request, context):
        seen.append(1)
        return {"id": "pr-1", "state": "completed" if len(seen) >= polls else "in_progress"}

    return answer


def test_wait_for_process_run_deadline(hook: RobocorpHook, requests_mock, clock: FakeClock) -> None:
    requests_mock.get(RUN_URL, json=_in_progress_then_completed_after(50))
    with pytest.raises(ProcessRunTimeoutError, match="did not finish before the deadline") as err:
        hook.wait_for_process_run("pr-1", poll_interval=10, timeout=25)
    assert "last state: in_progress" in str(err.value)
    assert clock.sleeps == [10, 10, 5]  # the last wait is cut to the deadline, then one last look
    assert requests_mock.call_count == 4


def test_wait_for_process_run_absolute_deadline(hook: RobocorpHook, requests_mock, clock: FakeClock) -> None:
    requests_mock.get(RUN_URL, json=_in_progress_then_completed_after(50))
    with pytest.raises(ProcessRunTimeoutError):
        hook.wait_for_process_run("pr-1", poll_interval=10, deadline=clock.now + 10)
    assert sum(clock.sleeps) == 10


def test_wait_for_process_run_bad_interval(hook: RobocorpHook, requests_mock) -> None:
    with pytest.raises(RobocorpConfigError, match="poll_interval must be a finite, positive number"):
        hook.wait_for_process_run("pr-1", poll_interval=0)
    assert requests_mock.call_count == 0


# --- web URL of a run ------------------------------------------------------------------------


def test_process_run_url_fetches_the_organization_once(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(WS_URL.rstrip("/"), json={"id": WS, "name": "F", "organization": {"id": "org-9", "name": "A"}})
    first = hook.process_run_url("p-1", "pr-1")
    second = hook.process_run_url("p-1", "pr-2", step_run_id="sr-3")
    assert first == f"https://cloud.robocorp.com/organizations/org-9/workspaces/{WS}/processes/p-1/runs/pr-1"
    assert second == (
        f"https://cloud.robocorp.com/organizations/org-9/workspaces/{WS}/processes/p-1/runs/pr-2/stepRuns/sr-3"
    )
    assert requests_mock.call_count == 1


def test_process_run_url_on_an_sso_host(monkeypatch, requests_mock) -> None:
    from .support import set_json_conn

    set_json_conn(monkeypatch, login=WS, password=KEY, host="https://acme.robocorp.com/api/v1/")
    requests_mock.get(f"https://acme.robocorp.com/api/v1/workspaces/{WS}", json={"organization": {"id": "o1"}})
    url = RobocorpHook().process_run_url("p-1", "pr-1")
    assert url == f"https://acme.robocorp.com/organizations/o1/workspaces/{WS}/processes/p-1/runs/pr-1"


def test_json_round_trip_of_helper_results(hook: RobocorpHook, requests_mock) -> None:
    """Helper results are plain JSON (they end up in XCom)."""
    requests_mock.get(ASSET_BY_NAME, json=ASSET)
    requests_mock.post(UPLOADS, json={"id": "up-1", "status": "completed"})
    result = hook.upload_asset("monthly", data=b"x")
    assert json.loads(json.dumps(result)) == result
