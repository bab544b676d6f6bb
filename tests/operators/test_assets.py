"""AssetUploadOperator and AssetDownloadOperator against the emulator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_provider_robocorp.exceptions import RobocorpConfigError, RobocorpError, RobocorpNotFoundError
from airflow_provider_robocorp.operators import AssetDownloadOperator, AssetUploadOperator
from tests.operators.helpers import context, posts

pytestmark = pytest.mark.usefixtures("robocorp_conn_env")


def upload(**kwargs: object) -> AssetUploadOperator:
    kwargs.setdefault("poll_interval", 0.05)
    return AssetUploadOperator(task_id="upload", **kwargs)  # type: ignore[arg-type]


def download(**kwargs: object) -> AssetDownloadOperator:
    return AssetDownloadOperator(task_id="download", **kwargs)  # type: ignore[arg-type]


def test_inline_json_upload_creates_the_asset_and_reads_back(robocorp_emulator):
    settings = {"threshold": 250, "currency": "EUR"}

    asset_id = upload(asset_name="invoice-settings", data=settings).execute(context())

    (created,) = [a for a in robocorp_emulator.state()["assets"] if a["name"] == "invoice-settings"]
    assert created["id"] == asset_id and created["payload"]["content_type"] == "application/json"
    assert json.loads(download(asset_name="invoice-settings").execute(context())) == settings
    assert download(asset_id=asset_id).execute(context()) == json.dumps(settings)
    assert not [r for r in robocorp_emulator.requests_log() if r["method"] == "PUT"]


def test_existing_asset_is_updated_not_recreated(robocorp_emulator):
    upload(asset_name="emulator-settings", data="plain text").execute(context())

    assert len(posts(robocorp_emulator, "/assets")) == 1  # the upload only, no "create asset"
    assert download(asset_name="emulator-settings").execute(context()) == "plain text"


def test_large_file_is_streamed_with_put(robocorp_emulator, tmp_path):
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(4 * 1024 * 1024))  # base64 of 4 MiB is over the 5 MB inline limit

    upload(asset_name="model", file_path=str(big)).execute(context())

    (put,) = [r for r in robocorp_emulator.requests_log() if r["method"] == "PUT"]
    assert put["status"] in (200, 204)
    target = tmp_path / "out" / "model.bin"
    assert download(asset_name="model", dest_path=str(target)).execute(context()) == str(target)
    assert target.read_bytes() == big.read_bytes()


def test_failed_upload_fails_with_the_reason(robocorp_emulator):
    with pytest.raises(RobocorpError, match="could not be processed"):
        upload(asset_name="broken", data=b"\x00", content_type="application/x-emulator-corrupt").execute(context())


def test_missing_asset_is_not_created_when_asked(robocorp_emulator):
    with pytest.raises(RobocorpNotFoundError):
        upload(asset_name="nope", data="x", create_if_missing=False).execute(context())
    assert [a["name"] for a in robocorp_emulator.state()["assets"]] == ["emulator-settings"]


def test_bad_inputs_fail_before_any_request(robocorp_emulator, tmp_path: Path):
    with pytest.raises(RobocorpConfigError, match="exactly one of file_path or data"):
        upload(asset_name="a", data="x", file_path="y")
    with pytest.raises(RobocorpConfigError, match="exactly one of asset_name or asset_id"):
        download()
    with pytest.raises(RobocorpConfigError, match="does not exist"):
        upload(asset_name="a", file_path=str(tmp_path / "missing.csv")).execute(context())
    assert robocorp_emulator.requests_log() == []


def test_binary_content_needs_a_destination(robocorp_emulator):
    upload(asset_name="blob", data=b"\xff\xfe\x00").execute(context())
    with pytest.raises(RobocorpError, match="not UTF-8 text; set dest_path"):
        download(asset_name="blob").execute(context())
