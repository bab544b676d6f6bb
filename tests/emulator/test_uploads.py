"""Uploads and downloads through the emulator's pre-signed URLs, byte-exact and streamed."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import requests

from .conftest import Api

MB = 1024 * 1024


class MultipartStream:
    """A multipart/form-data body read from disk piece by piece, with a known length."""

    def __init__(self, fields: dict[str, str], file_name: str, path: Path) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._parts: list[BinaryIO] = [
            io.BytesIO(head),
            path.open("rb"),
            io.BytesIO(f"\r\n--{self.boundary}--\r\n".encode()),
        ]
        self._length = len(head) + path.stat().st_size + len(self._parts[2].getvalue())  # type: ignore[attr-defined]

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        out = b""
        while self._parts and (size < 0 or len(out) < size):
            chunk = self._parts[0].read(-1 if size < 0 else size - len(out))
            if not chunk:
                self._parts.pop(0).close()
                continue
            out += chunk
        return out


def write_file(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes in 1 MB blocks; returns their sha256."""
    digest = hashlib.sha256()
    block = os.urandom(MB)
    with path.open("wb") as handle:
        for index in range(0, size, MB):
            chunk = (index.to_bytes(8, "big") + block)[: min(MB, size - index)]
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def download_sha256(url: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with requests.get(url, stream=True, timeout=60) as response:
        assert response.status_code == 200, response.text
        for chunk in response.iter_content(MB):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def reset_peak_rss() -> int:
    """Reset this process's peak RSS (Linux ``clear_refs``); returns the current RSS in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kb("VmHWM") * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.fixture
def asset(api: Api) -> dict[str, Any]:
    return api.call("create_asset", json={"name": "data.bin"})


def pending_upload(api: Api, asset_id: str, content_type: str = "application/octet-stream") -> dict[str, Any]:
    upload = api.call("create_asset_upload", asset_id=asset_id, json={"content_type": content_type})
    assert upload["status"] == "pending" and upload["upload_url"].startswith("http://127.0.0.1:")
    return upload


def test_inline_base64_upload_round_trips(api: Api, asset: dict[str, Any]) -> None:
    data = bytes(range(256)) * 10
    upload = api.call(
        "create_asset_upload",
        asset_id=asset["id"],
        json={"content_type": "application/x-thing", "data": base64.b64encode(data).decode()},
    )
    assert upload["status"] == "completed" and "upload_url" not in upload
    payload = api.call("get_asset", asset_id=asset["id"])["payload"]
    assert payload["type"] == "url" and payload["content_type"] == "application/x-thing"
    response = requests.get(payload["url"], timeout=10)
    assert response.content == data and response.headers["content-type"] == "application/x-thing"


def test_inline_data_must_be_under_5_mb(api: Api, asset: dict[str, Any]) -> None:
    data = base64.b64encode(b"x" * (4 * MB)).decode()
    api.call(
        "create_asset_upload",
        asset_id=asset["id"],
        json={"content_type": "text/plain", "data": data},
        expect=400,
    )


def test_seeded_asset_serves_its_content(api: Api) -> None:
    payload = api.call("get_asset", asset_id="name:emulator-settings")["payload"]
    assert requests.get(payload["url"], timeout=10).json() == {"greeting": "hello from the emulator"}


def test_upload_url_put_then_pending_then_completed(api: Api, emu: Any, asset: dict[str, Any]) -> None:
    emu.set_speed(0)
    upload = pending_upload(api, asset["id"], "text/csv")
    assert api.call("get_asset_upload", asset_id=asset["id"], upload_id=upload["id"])["status"] == "pending"
    response = requests.put(upload["upload_url"], data=b"a,b\n1,2\n", timeout=10)
    assert response.status_code == 200, response.text
    assert api.call("get_asset_upload", asset_id=asset["id"], upload_id=upload["id"])["status"] == "pending"
    assert api.call("get_asset", asset_id=asset["id"])["payload"] == {"type": "empty"}
    emu.advance(0.2)
    assert api.call("get_asset_upload", asset_id=asset["id"], upload_id=upload["id"])["status"] == "completed"
    payload = api.call("get_asset", asset_id=asset["id"])["payload"]
    assert payload["content_type"] == "text/csv"
    assert requests.get(payload["url"], timeout=10).content == b"a,b\n1,2\n"
    again = requests.put(upload["upload_url"], data=b"other", timeout=10)
    assert again.status_code == 409


def test_upload_url_refuses_chunked_bodies(api: Api, emu: Any, asset: dict[str, Any]) -> None:
    upload = pending_upload(api, asset["id"])

    def chunks() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    response = requests.put(upload["upload_url"], data=chunks(), timeout=10)
    assert response.status_code == 411 and b"MissingContentLength" in response.content
    emu.advance(1)
    assert api.call("get_asset_upload", asset_id=asset["id"], upload_id=upload["id"])["status"] == "pending"


def test_pre_signed_urls_are_checked(api: Api, emu: Any, asset: dict[str, Any]) -> None:
    upload = pending_upload(api, asset["id"])
    url = upload["upload_url"]
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    assert requests.put(tampered, data=b"x", timeout=10).status_code == 403
    assert requests.put(url.split("?")[0], data=b"x", timeout=10).status_code == 403
    other = url.replace(upload["id"], str(uuid.uuid4()))
    assert requests.put(other, data=b"x", timeout=10).status_code == 403
    with_key = requests.put(
        url, data=b"x", headers={"Authorization": "RC-WSKEY emulator-api-key"}, timeout=10
    )
    assert with_key.status_code == 400 and b"InvalidArgument" in with_key.content
    assert requests.get(url, timeout=10).status_code == 405
    emu.advance(3601)
    expired = requests.put(url, data=b"x", timeout=10)
    assert expired.status_code == 403 and b"ExpiredToken" in expired.content


def test_rejected_content_fails_the_upload_with_a_reason(api: Api, emu: Any, asset: dict[str, Any]) -> None:
    upload = pending_upload(api, asset["id"], "application/x-emulator-corrupt")
    assert requests.put(upload["upload_url"], data=b"junk", timeout=10).status_code == 200
    emu.advance(1)
    failed = api.call("get_asset_upload", asset_id=asset["id"], upload_id=upload["id"])
    assert failed["status"] == "failed" and failed["reason"] == "The uploaded content could not be processed"
    assert api.call("get_asset", asset_id=asset["id"])["payload"] == {"type": "empty"}
    api.call(
        "create_asset_upload",
        asset_id=asset["id"],
        expect=400,
        json={"content_type": "application/x-emulator-corrupt", "data": "AAAA"},
    )


def test_100_mb_asset_streams_both_ways_in_bounded_memory(
    api: Api, emu: Any, asset: dict[str, Any], tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    size = 100 * MB
    expected = write_file(source, size)
    upload = pending_upload(api, asset["id"])
    emu.backend.blobs.largest_write = 0
    baseline = reset_peak_rss()
    with source.open("rb") as handle:
        response = requests.put(upload["upload_url"], data=handle, timeout=120)
    assert response.status_code == 200, response.text
    emu.advance(1)
    assert api.call("get_asset_upload", asset_id=asset["id"], upload_id=upload["id"])["status"] == "completed"
    url = api.call("get_asset", asset_id=asset["id"])["payload"]["url"]
    assert download_sha256(url) == (expected, size)
    growth = peak_rss() - baseline
    assert growth < 40 * MB, f"peak RSS grew by {growth / MB:.1f} MB for a 100 MB round trip"
    assert 0 < emu.backend.blobs.largest_write <= MB


def test_work_item_file_multipart_upload_round_trips(api: Api) -> None:
    work_item = api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": None})
    data = os.urandom(50_000)
    upload = api.call(
        "create_work_item_file",
        work_item_id=work_item["id"],
        json={"file_name": "invoice 1.pdf", "file_size": len(data)},
    )["upload"]
    fields = upload["form_data"]
    assert {
        "key",
        "policy",
        "x-amz-signature",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "Content-Type",
    } <= set(fields)
    assert upload["url"].endswith("/_files/uploads")
    response = requests.post(upload["url"], data=fields, files={"file": ("invoice 1.pdf", data)}, timeout=30)
    assert response.status_code == 204, response.text
    [stored] = api.call("get_work_item", work_item_id=work_item["id"], params={"include_data": "true"})[
        "files"
    ]
    assert (stored["name"], stored["size"]) == ("invoice 1.pdf", len(data))
    download = requests.get(stored["download"]["url"], timeout=10)
    assert download.content == data
    assert "invoice%201.pdf" in download.headers["content-disposition"]
    replay = requests.post(upload["url"], data=fields, files={"file": ("invoice 1.pdf", data)}, timeout=30)
    assert replay.status_code == 404


@pytest.mark.parametrize(
    "change,status,code",
    [
        (lambda f: f.pop("x-amz-date"), 403, b"AccessDenied"),
        (lambda f: f.pop("Content-Type"), 403, b"AccessDenied"),
        (lambda f: f.update({"x-amz-credential": "someone-else"}), 403, b"AccessDenied"),
        (lambda f: f.update({"x-amz-signature": "0" * 64}), 403, b"AccessDenied"),
        (lambda f: f.update({"key": f["key"] + "x"}), 404, b"NoSuchKey"),
    ],
)
def test_work_item_file_upload_checks_every_field(api: Api, change: Any, status: int, code: bytes) -> None:
    work_item = api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": None})
    upload = api.call(
        "create_work_item_file", work_item_id=work_item["id"], json={"file_name": "a.txt", "file_size": 3}
    )["upload"]
    fields = dict(upload["form_data"])
    change(fields)
    response = requests.post(upload["url"], data=fields, files={"file": ("a.txt", b"abc")}, timeout=10)
    assert response.status_code == status and code in response.content, response.text
    assert (
        api.call("get_work_item", work_item_id=work_item["id"], params={"include_data": "true"})["files"]
        == []
    )


def test_work_item_file_upload_checks_signature_size_and_parts(api: Api, emu: Any) -> None:
    work_item = api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": None})
    upload = api.call(
        "create_work_item_file", work_item_id=work_item["id"], json={"file_name": "a.txt", "file_size": 10}
    )["upload"]
    fields = upload["form_data"]
    short = requests.post(upload["url"], data=fields, files={"file": ("a.txt", b"12345")}, timeout=10)
    assert short.status_code == 400 and b"EntityTooSmall" in short.content
    long = requests.post(upload["url"], data=fields, files={"file": ("a.txt", b"x" * 11)}, timeout=10)
    assert long.status_code == 400 and b"EntityTooLarge" in long.content
    policy = base64.b64decode(fields["policy"]).replace(
        b'"content-length-range",10,10', b'"content-length-range",1,99'
    )
    forged = {**fields, "policy": base64.b64encode(policy).decode()}
    assert (
        requests.post(upload["url"], data=forged, files={"file": ("a.txt", b"x" * 5)}, timeout=10).status_code
        == 403
    )
    no_file = requests.post(upload["url"], data=fields, files={"other": ("a.txt", b"x" * 10)}, timeout=10)
    assert no_file.status_code == 400
    chunked = requests.post(upload["url"], data=iter([b"--x\r\n"]), timeout=10)
    assert chunked.status_code == 411
    emu.advance(3601)
    expired = requests.post(upload["url"], data=fields, files={"file": ("a.txt", b"x" * 10)}, timeout=10)
    assert expired.status_code == 403 and b"expired" in expired.content


def test_large_multipart_upload_is_spooled_not_held(api: Api, emu: Any, tmp_path: Path) -> None:
    source = tmp_path / "scan.bin"
    size = 40 * MB
    expected = write_file(source, size)
    work_item = api.call("create_work_item", json={"process": {"id": "proc-invoices"}, "payload": None})
    upload = api.call(
        "create_work_item_file",
        work_item_id=work_item["id"],
        json={"file_name": "scan.bin", "file_size": size},
    )["upload"]
    body = MultipartStream(upload["form_data"], "scan.bin", source)
    baseline = reset_peak_rss()
    response = requests.post(
        upload["url"], data=body, headers={"Content-Type": body.content_type}, timeout=120
    )
    assert response.status_code == 204, response.text
    [stored] = api.call("get_work_item", work_item_id=work_item["id"], params={"include_data": "true"})[
        "files"
    ]
    assert download_sha256(stored["download"]["url"]) == (expected, size)
    growth = peak_rss() - baseline
    assert growth < 40 * MB, f"peak RSS grew by {growth / MB:.1f} MB for a 40 MB multipart upload"


def robot_zip(tasks: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr(
            "robot.yaml", "tasks:\n" + "".join(f"  {t}:\n    shell: python task.py\n" for t in tasks)
        )
        bundle.writestr("task.py", "print('hi')\n")
    return buffer.getvalue()


def test_task_package_upload_and_download(api: Api) -> None:
    package = api.call("create_task_package", json={"name": "Invoice robot", "type": "zip"})
    assert package["download"] is None and package["tasks"] == []
    fetched = api.call("get_task_package", task_package_id=package["id"])
    bundle = robot_zip(["Read invoices", "Book invoices"])
    upload = fetched["upload"]
    response = requests.post(
        upload["url"], data=upload["form_data"], files={"file": ("robot.zip", bundle)}, timeout=10
    )
    assert response.status_code == 204, response.text
    fetched = api.call("get_task_package", task_package_id=package["id"])
    assert fetched["tasks"] == [{"name": "Read invoices"}, {"name": "Book invoices"}]
    assert requests.get(fetched["download"]["url"], timeout=10).content == bundle
    seeded = api.call("get_task_package", task_package_id="pkg-emulator")
    with zipfile.ZipFile(io.BytesIO(requests.get(seeded["download"]["url"], timeout=10).content)) as archive:
        assert "robot.yaml" in archive.namelist()
    assert [t["name"] for t in seeded["tasks"]] == ["Process invoices", "Nightly report"]


def test_downloads_support_head_and_refuse_bad_signatures(api: Api) -> None:
    url = api.call("get_asset", asset_id="name:emulator-settings")["payload"]["url"]
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and int(head.headers["content-length"]) > 0
    assert requests.get(url.replace("signature=", "signature=0"), timeout=10).status_code == 403
    assert (
        requests.get(url, headers={"Authorization": "RC-WSKEY emulator-api-key"}, timeout=10).status_code
        == 400
    )
