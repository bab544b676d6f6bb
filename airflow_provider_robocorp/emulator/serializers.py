"""Resource objects as the API documents them (dicts ready for JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .clock import iso
from .config import ProcessSpec
from .entities import (
    Asset,
    AssetUpload,
    Assistant,
    AssistantRun,
    OutputItem,
    ProcessRun,
    StepRun,
    StoredFile,
    TaskPackage,
    Webhook,
    Worker,
    WorkerGroup,
    WorkItem,
)
from .storage import Signer

JSON = dict[str, Any]

FILES_PREFIX = "/_files"
POST_UPLOAD_PATH = f"{FILES_PREFIX}/uploads"


@dataclass(frozen=True)
class Links:
    """Builds the emulator's own pre-signed URLs for one request (its base URL and time)."""

    base_url: str
    signer: Signer
    now: float
    ttl: float

    def download(self, stored: StoredFile) -> str:
        path = f"{FILES_PREFIX}/blobs/{stored.blob_id}/{quote(stored.name)}"
        return self.signer.presign(self.base_url, "GET", path, self.now + self.ttl)

    def asset_upload(self, upload_id: str) -> str:
        path = f"{FILES_PREFIX}/asset-uploads/{upload_id}"
        return self.signer.presign(self.base_url, "PUT", path, self.now + self.ttl)

    def post_upload(self) -> str:
        return f"{self.base_url}{POST_UPLOAD_PATH}"


def ref(ident: str | None) -> JSON | None:
    return None if ident is None else {"id": ident}


def process_summary(spec: ProcessSpec, created_at: float) -> JSON:
    return {"id": spec.id, "name": spec.name, "created_at": iso(created_at)}


def process(spec: ProcessSpec, created_at: float) -> JSON:
    return {
        **process_summary(spec, created_at),
        "steps": [{"id": step.id, "name": step.name} for step in spec.steps],
    }


def process_run(run: ProcessRun) -> JSON:
    return {
        "id": run.id,
        "state": run.state,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "process": {"id": run.process_id, "name": run.process_name},
        "started_by": {"type": run.started_by, "details": None},
        "duration": run.duration,
    }


def step_run(run: StepRun) -> JSON:
    duration = None
    if run.started_at is not None and run.ended_at is not None:
        duration = round(run.ended_at - run.started_at, 3)
    return {
        "id": run.id,
        "state": run.state,
        "state_updated_at": iso(run.state_updated_at),
        "error": None if run.error_code is None else {"code": run.error_code},
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration": duration,
        "step": {"id": run.step_id, "name": run.step_name},
    }


def file(stored: StoredFile, links: Links) -> JSON:
    return {
        "id": stored.id,
        "size": stored.size,
        "name": stored.name,
        "download": {"url": links.download(stored)},
    }


def work_item_listing(item: WorkItem, spec: ProcessSpec) -> JSON:
    step_id = None if item.step_index is None else spec.steps[item.step_index].id
    return {
        "id": item.id,
        "created_at": iso(item.created_at),
        "state": item.state,
        "state_updated_at": iso(item.state_updated_at),
        "process": {"id": item.process_id},
        "process_run": ref(item.process_run_id),
        "step": ref(step_id),
        "step_run": ref(item.step_run_id),
        "exception": item.exception,
    }


def work_item(item: WorkItem, spec: ProcessSpec, links: Links, include_data: bool = True) -> JSON:
    body = work_item_listing(item, spec)
    body["payload"] = item.payload if include_data else None
    body["files"] = [file(f, links) for f in item.files] if include_data else []
    return body


def output(item: OutputItem, links: Links) -> JSON:
    return {
        "id": item.id,
        "created_at": iso(item.created_at),
        "process": {"id": item.process_id},
        "process_run": {"id": item.process_run_id},
        "payload": item.payload,
        "files": [file(f, links) for f in item.files],
    }


def artifact_summary(stored: StoredFile) -> JSON:
    return {"id": stored.id, "name": stored.name, "size": stored.size}


def artifact(stored: StoredFile, links: Links) -> JSON:
    return {**artifact_summary(stored), "url": links.download(stored)}


def asset_summary(asset: Asset) -> JSON:
    return {"id": asset.id, "name": asset.name}


def asset(asset: Asset, links: Links) -> JSON:
    payload: JSON = {"type": "empty"}
    if asset.payload is not None:
        payload = {
            "type": "url",
            "content_type": asset.payload.content_type,
            "url": links.download(asset.payload),
        }
    return {"id": asset.id, "name": asset.name, "payload": payload}


def asset_upload(upload: AssetUpload, upload_url: str | None = None) -> JSON:
    body: JSON = {"id": upload.id, "status": upload.status, "content_type": upload.content_type}
    if upload.status == "failed":
        body["reason"] = upload.reason or "Upload failed"
    if upload_url is not None:
        body["upload_url"] = upload_url
    return body


def task_package(package: TaskPackage, links: Links, upload_form: dict[str, str]) -> JSON:
    return {
        "id": package.id,
        "name": package.name,
        "type": "zip",
        "tasks": [{"name": name} for name in package.tasks],
        "download": None if package.bundle is None else {"url": links.download(package.bundle)},
        "upload": {"url": links.post_upload(), "form_data": upload_form},
    }


def assistant(item: Assistant) -> JSON:
    return {
        "id": item.id,
        "name": item.name,
        "task": {"name": item.task_name, "package_id": item.package_id},
        "created_at": iso(item.created_at),
    }


def assistant_run(run: AssistantRun, assistant_name: str) -> JSON:
    duration = None if run.ended_at is None else round(run.ended_at - run.started_at, 3)
    return {
        "id": run.id,
        "state": run.state,
        "error": None if run.error_code is None else {"code": run.error_code},
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration": duration,
        "assistant": {"id": run.assistant_id, "name": assistant_name},
    }


def webhook(hook: Webhook, with_secret: bool = True) -> JSON:
    body: JSON = {
        "id": hook.id,
        "process": ref(hook.process_id),
        "enabled_events": list(hook.enabled_events),
        "endpoint": hook.endpoint,
    }
    if with_secret:
        body["secret"] = hook.secret
    return body


def worker(item: Worker, busy: bool) -> JSON:
    state = "busy" if busy and item.state != "offline" else item.state
    return {"id": item.id, "name": item.name, "state": state}


def worker_group(group: WorkerGroup) -> JSON:
    return {"id": group.id, "name": group.name}
