"""Assets, their uploads, task packages and the files behind pre-signed URLs."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

from . import serializers as ser
from .core import INLINE_DATA_LIMIT, JSON, BackendCore, Page, paginate
from .entities import (
    Asset,
    AssetUpload,
    StoredFile,
    TaskPackage,
)
from .errors import BadRequest, Conflict, NotFound
from .runs import new_id

_CONTENT_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;[\x20-\x7e]*)?")


class AssetsMixin(BackendCore):
    """Asset storage and task packages."""

    def list_assets(self, offset: int, limit: int) -> Page:
        with self._synced():
            return paginate(list(self.state.assets.values()), offset, limit, ser.asset_summary)

    def get_asset(self, asset_ref: str, base_url: str) -> JSON:
        with self._synced():
            return ser.asset(self._asset(asset_ref), self.links(base_url))

    def create_asset(self, name: str, base_url: str) -> JSON:
        with self._synced() as now:
            name = name.strip()
            if not name:
                raise BadRequest("name must not be empty")
            if any(a.name == name for a in self.state.assets.values()):
                raise Conflict(f"An asset named {name!r} already exists")
            asset = Asset(new_id(), name, now)
            self.state.assets[asset.id] = asset
            return ser.asset(asset, self.links(base_url))

    def delete_asset(self, asset_ref: str) -> JSON:
        with self._synced():
            asset = self._asset(asset_ref)
            del self.state.assets[asset.id]
            if asset.payload is not None:
                self.blobs.delete(asset.payload.blob_id)
            for upload in [u for u in self.state.asset_uploads.values() if u.asset_id == asset.id]:
                del self.state.asset_uploads[upload.id]
                self._pending_uploads.discard(upload.id)
                if upload.blob is not None and upload.status != "completed":
                    self.blobs.delete(upload.blob.blob_id)
            return {"id": asset.id, "deleted": True}

    def create_asset_upload(self, asset_ref: str, content_type: str, data: str | None, base_url: str) -> JSON:
        with self._synced() as now:
            asset = self._asset(asset_ref)
            if not content_type.strip():
                raise BadRequest("content_type must not be empty")
            if not _CONTENT_TYPE.fullmatch(content_type):
                raise BadRequest("content_type must be a media type like 'text/csv' (printable ASCII, no line breaks)")
            upload = AssetUpload(new_id(), asset.id, content_type, now)
            if data is None:
                self.state.asset_uploads[upload.id] = upload
                return ser.asset_upload(upload, self.links(base_url).asset_upload(upload.id))
            if len(data) >= INLINE_DATA_LIMIT:
                raise BadRequest(
                    "data must be under 5 MB; create the upload without data and PUT to upload_url"
                )
            try:
                content = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadRequest(f"data must be base64-encoded: {exc}") from exc
            reason = self._upload_rejection(content_type)
            if reason is not None:
                raise BadRequest(reason)
            blob_id, size = self.blobs.put_bytes(content)
            upload.blob = StoredFile(new_id(), upload.id, size, blob_id, content_type)
            self.state.asset_uploads[upload.id] = upload
            self._complete_upload(upload)
            return ser.asset_upload(upload)

    def get_asset_upload(self, asset_ref: str, upload_id: str) -> JSON:
        with self._synced():
            asset = self._asset(asset_ref)
            upload = self.state.asset_uploads.get(upload_id)
            if upload is None or upload.asset_id != asset.id:
                raise NotFound(f"Upload {upload_id} not found")
            return ser.asset_upload(upload)

    def asset_upload_target(self, upload_id: str) -> None:
        """404/409 unless ``upload_id`` is a pending upload waiting for its bytes."""
        with self._synced():
            upload = self.state.asset_uploads.get(upload_id)
            if upload is None:
                raise NotFound("NoSuchUpload")
            if upload.status != "pending" or upload.blob is not None:
                raise Conflict("The upload already received its content")

    def receive_asset_upload(self, upload_id: str, blob_id: str, size: int) -> None:
        """Attach streamed bytes to a pending asset upload; it completes after processing."""
        with self._synced() as now:
            upload = self.state.asset_uploads.get(upload_id)
            if upload is None or upload.status != "pending" or upload.blob is not None:
                self.blobs.delete(blob_id)
                raise Conflict("The upload is not waiting for content")
            upload.blob = StoredFile(new_id(), upload.id, size, blob_id, upload.content_type)
            upload.completes_at = now + self.config.asset_processing_seconds
            self._pending_uploads.add(upload.id)
            self._catch_up(now)

    def post_upload_form(self, key: str) -> dict[str, str]:
        """The form fields issued for an S3-style POST upload of ``key`` (404 if unknown)."""
        with self._lock:
            upload = self.state.post_uploads.get(key)
            if upload is None:
                raise NotFound("NoSuchKey")
            return dict(upload.form_data)

    def receive_post_upload(self, key: str, source: BinaryIO, size: int) -> None:
        """Store the file of a multipart POST upload (already verified) under its target."""
        with self._synced():
            upload = self.state.post_uploads.get(key)
            if upload is None:
                raise NotFound("NoSuchKey")
            if upload.file_size is not None and size != upload.file_size:
                raise BadRequest(f"File size {size} does not match the declared file_size {upload.file_size}")
        blob_id, written = self.blobs.copy_from(source)
        with self._synced():
            upload = self.state.post_uploads.pop(key, None)
            if upload is None or written != size:
                self.blobs.delete(blob_id)
                raise Conflict("The upload was replaced or the file changed while storing it")
            stored = StoredFile(new_id(), upload.file_name, size, blob_id)
            if upload.kind == "work_item_file":
                item = self.state.items.get(upload.target_id)
                if item is None:
                    self.blobs.delete(blob_id)
                    raise NotFound("The work item no longer exists")
                item.files.append(stored)
            else:
                package = self.state.packages.get(upload.target_id)
                if package is None:
                    self.blobs.delete(blob_id)
                    raise NotFound("The task package no longer exists")
                if package.bundle is not None:
                    self.blobs.delete(package.bundle.blob_id)
                stored.content_type = "application/zip"
                package.bundle = stored
                package.tasks = _robot_tasks(self.blobs.path(blob_id))

    def blob_for_download(self, blob_id: str, name: str) -> tuple[str, str]:
        """``(filesystem path, content type)`` of a stored blob (404 once it is gone)."""
        path = self.blobs.path(blob_id)
        if not blob_id.isalnum() or not path.is_file():
            raise NotFound("NoSuchKey")
        with self._lock:
            for asset in self.state.assets.values():
                if asset.payload is not None and asset.payload.blob_id == blob_id:
                    return str(path), asset.payload.content_type
        return str(path), mimetypes.guess_type(name)[0] or "application/octet-stream"

    def get_task_package(self, package_id: str, base_url: str) -> JSON:
        with self._synced() as now:
            package = self._package(package_id)
            return self._package_json(package, base_url, now)

    def create_task_package(self, name: str, base_url: str) -> JSON:
        with self._synced() as now:
            name = name.strip()
            if not name:
                raise BadRequest("name must not be empty")
            if any(p.name == name for p in self.state.packages.values()):
                raise Conflict(f"A task package named {name!r} already exists")
            package = TaskPackage(new_id(), name, now)
            self.state.packages[package.id] = package
            return self._package_json(package, base_url, now)

    def delete_task_package(self, package_id: str) -> JSON:
        with self._synced():
            package = self._package(package_id)
            del self.state.packages[package.id]
            if package.bundle is not None:
                self.blobs.delete(package.bundle.blob_id)
            for key in [k for k, u in self.state.post_uploads.items() if u.target_id == package.id]:
                del self.state.post_uploads[key]
            return {"id": package.id, "deleted": True}

    def _package_json(self, package: TaskPackage, base_url: str, now: float) -> JSON:
        upload = next(
            (
                u
                for u in self.state.post_uploads.values()
                if u.target_id == package.id and u.expires > now + 60
            ),
            None,
        )
        if upload is None:
            upload = self._post_upload("task_package", package.id, "package.zip", None, now)
        return ser.task_package(package, self.links(base_url), dict(upload.form_data))


def _robot_tasks(bundle: Path) -> list[str]:
    """Task names from a zip bundle's ``robot.yaml`` (empty when it has none or is no zip)."""
    import yaml

    try:
        with zipfile.ZipFile(bundle) as archive:
            document = yaml.safe_load(archive.read("robot.yaml"))
    except (zipfile.BadZipFile, KeyError, yaml.YAMLError):
        return []
    tasks = document.get("tasks") if isinstance(document, dict) else None
    return [str(name) for name in tasks] if isinstance(tasks, dict) else []
