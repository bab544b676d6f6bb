"""Uploads and downloads through pre-signed URLs: inline and streamed (PUT) asset uploads,
byte-exact downloads to memory and to a file, and work item files (multipart POST)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_robocorp.exceptions import RobocorpBadRequestError, RobocorpError
from airflow_provider_robocorp.hooks.robocorp import INLINE_UPLOAD_LIMIT, RobocorpHook

from .support import API, fast_hook, hits, log_mark, raises, settled_log, state_of

#: Largest payload that base64-encodes to under 5 MB (sent inline), and the smallest that does not.
LARGEST_INLINE = 3 * (INLINE_UPLOAD_LIMIT // 4) - 3
SMALLEST_STREAMED = 3 * (INLINE_UPLOAD_LIMIT // 4)


@pytest.fixture
def hook(emulator: Any) -> Any:
    h = fast_hook()
    yield h
    h.close()


def _asset_puts(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return hits(log, "PUT", r"/_files/asset-uploads/[^/]+")


def _check_download(hook: RobocorpHook, ref: str, content: bytes, tmp_path: Path) -> None:
    assert hook.download_asset(ref) == content
    target = tmp_path / f"download-{hashlib.sha1(ref.encode()).hexdigest()}.bin"
    assert hook.download_asset(ref, target) == str(target)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(content).digest()
    assert not target.with_name(target.name + ".part").exists()


def test_small_asset_is_sent_inline(hook: RobocorpHook, emulator: Any, tmp_path: Path) -> None:
    content = os.urandom(10_000)
    mark = log_mark(emulator)
    result = hook.upload_asset("it-small", data=content, content_type="application/octet-stream",
                               poll_interval=0.05)
    assert result["upload"]["status"] == "completed"
    log = settled_log(emulator, mark)
    assert _asset_puts(log) == []
    assert len(hits(log, "POST", API + "/assets")) == 1  # created, since it was missing
    _check_download(hook, "name:it-small", content, tmp_path)
    _check_download(hook, result["asset"]["id"], content, tmp_path)


def test_large_file_is_put_streamed_then_downloaded(hook: RobocorpHook, emulator: Any, tmp_path: Path) -> None:
    content = os.urandom(4 * 1024 * 1024)  # base64: 5.6 MB, over the inline limit
    source = tmp_path / "large.bin"
    source.write_bytes(content)
    mark = log_mark(emulator)
    result = hook.upload_asset("it-large", file_path=source, poll_interval=0.05)
    assert result["upload"]["status"] == "completed"
    [put] = _asset_puts(settled_log(emulator, mark))
    assert put["status"] == 200  # the emulator answers 411 to a chunked body, 400 to an Authorization header
    [asset] = [a for a in state_of(emulator, "assets") if a["name"] == "it-large"]
    assert asset["payload"]["size"] == len(content)
    _check_download(hook, "name:it-large", content, tmp_path)


@pytest.mark.parametrize(("size", "streamed"), [(LARGEST_INLINE, False), (SMALLEST_STREAMED, True)])
def test_inline_limit_agrees_with_the_server(
    hook: RobocorpHook, emulator: Any, tmp_path: Path, size: int, streamed: bool
) -> None:
    content = os.urandom(size)
    mark = log_mark(emulator)
    hook.upload_asset("it-boundary", data=content, poll_interval=0.05)
    assert len(_asset_puts(settled_log(emulator, mark))) == (1 if streamed else 0)
    assert hook.download_asset("name:it-boundary") == content


def test_replacing_content_of_an_existing_asset(hook: RobocorpHook, emulator: Any) -> None:
    hook.upload_asset("emulator-settings", data='{"greeting": "replaced"}', content_type="application/json",
                      create_if_missing=False, poll_interval=0.05)
    assert hook.download_asset("name:emulator-settings") == b'{"greeting": "replaced"}'
    assert [a["name"] for a in hook.list_assets()] == ["emulator-settings"]


def test_failed_uploads_raise_with_the_reason(hook: RobocorpHook, emulator: Any) -> None:
    corrupt = "application/x-emulator-corrupt"
    with raises(RobocorpBadRequestError, match="could not be processed"):
        hook.upload_asset("it-corrupt", data=b"x", content_type=corrupt)
    with raises(RobocorpError, match="failed: The uploaded content could not be processed"):
        hook.upload_asset("it-corrupt", data=os.urandom(SMALLEST_STREAMED), content_type=corrupt,
                          poll_interval=0.05)
    assert hook.get_asset("name:it-corrupt")["payload"] == {"type": "empty"}


def test_work_item_file_upload_and_download(hook: RobocorpHook, emulator: Any, tmp_path: Path) -> None:
    content = os.urandom(2_500_000)  # more than one 1 MB chunk of the streamed multipart body
    source = tmp_path / "scan.pdf"
    source.write_bytes(content)
    item = hook.create_work_item("proc-invoices", {"invoice": 7})
    mark = log_mark(emulator)
    upload = hook.upload_work_item_file(item["id"], source)
    assert set(upload) == {"url", "form_data"}
    [post] = hits(settled_log(emulator, mark), "POST", "/_files/uploads")
    assert post["status"] == 204

    full = hook.get_work_item(item["id"], include_data=True)
    assert full["payload"] == {"invoice": 7}
    [file] = full["files"]
    assert file["name"] == "scan.pdf" and file["size"] == len(content)
    url = file["download"]["url"]
    assert hook.download_presigned(url) == content
    target = tmp_path / "copy.pdf"
    assert hook.download_presigned(url, target) == str(target)
    assert target.read_bytes() == content

    # a second file under another name
    hook.upload_work_item_file(item["id"], source, file_name="second.pdf")
    names = [f["name"] for f in hook.get_work_item(item["id"], include_data=True)["files"]]
    assert names == ["scan.pdf", "second.pdf"]


def test_presigned_urls_are_used_without_the_api_key(hook: RobocorpHook, emulator: Any, tmp_path: Path) -> None:
    """The hook's pre-signed requests succeed, and the emulator does refuse an Authorization header
    there, so they cannot have carried one."""
    hook.upload_asset("it-presigned", data=b"presigned", poll_interval=0.05)
    url = hook.get_asset("name:it-presigned")["payload"]["url"]
    assert hook.download_presigned(url) == b"presigned"
    refused = requests.get(url, headers={"Authorization": "RC-WSKEY some-key"}, timeout=10)
    assert refused.status_code == 400 and b"Only one auth mechanism" in refused.content
    assert requests.get(url, timeout=10).content == b"presigned"
