"""Infrastructure of the emulator's state layer: lock, clock, seed, catch-up, auth, lookups.

``BackendCore`` holds every resource of one workspace behind a single lock. Every public
operation first catches the state machine up to the clock's ``now`` (runs progress, pending
uploads complete), so what a client sees only depends on emulated time. A ticker thread also
catches up every 50 ms so webhooks and callbacks go out without anyone polling.
"""

from __future__ import annotations

import io
import logging
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from . import serializers as ser
from .clock import Clock, iso, parse_iso
from .config import ApiKeySpec, ConfigSource, EmulatorConfig, ProcessSpec, load_config
from .entities import (
    Asset,
    AssetUpload,
    Assistant,
    AssistantRun,
    PostUpload,
    ProcessRun,
    State,
    StepRun,
    StoredFile,
    TaskPackage,
    Webhook,
    Worker,
    WorkerGroup,
    WorkItem,
)
from .errors import Forbidden, NotFound, Unauthorized
from .faults import FaultSet
from .runs import RunEngine, new_id
from .storage import BlobStore, Signer
from .webhooks import WebhookDispatcher

JSON = dict[str, Any]
Page = tuple[list[JSON], bool]
T = TypeVar("T")

INLINE_DATA_LIMIT = 5 * 1024 * 1024
"""Asset upload ``data`` (base64) must be smaller than this; larger payloads use ``upload_url``."""
MAX_UPLOAD_SIZE = 5 * 1024**3
log = logging.getLogger(__name__)
TICK_SECONDS = 0.05
REQUEST_LOG_SIZE = 10_000


class BackendCore:
    """Shared state and plumbing of ``EmulatorBackend`` (see ``models``)."""

    def __init__(self, config: EmulatorConfig | ConfigSource = None, *, speed: float | None = None) -> None:
        self.config = config if isinstance(config, EmulatorConfig) else load_config(config)
        self.processes: dict[str, ProcessSpec] = {p.id: p for p in self.config.processes}
        self.api_keys: dict[str, ApiKeySpec] = {k.key: k for k in self.config.api_keys}
        self.clock = Clock(self.config.speed if speed is None else speed)
        self.blobs = BlobStore()
        self.signer = Signer()
        self.faults = FaultSet()
        self.dispatcher = WebhookDispatcher(
            max_attempts=self.config.webhook_max_attempts,
            initial_backoff=self.config.webhook_initial_backoff_seconds,
            timeout=self.config.webhook_timeout_seconds,
        )
        self.request_log: deque[JSON] = deque(maxlen=REQUEST_LOG_SIZE)
        self._lock = threading.RLock()
        self._process_created: dict[str, float] = {}
        self.state = State()
        self.engine = RunEngine(self.state, self.processes, self.blobs, self._notify)
        self._pending_uploads: set[str] = set()
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        self.reset()

    def start(self) -> None:
        """Start the background ticker (idempotent)."""
        if self._ticker is None:
            self._stopping.clear()
            self._ticker = threading.Thread(target=self._tick, name="robocorp-emulator-ticker", daemon=True)
            self._ticker.start()

    def close(self) -> None:
        """Stop background threads and remove stored files."""
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        self.dispatcher.close()
        self.blobs.close()

    def reset(self) -> None:
        """Back to the seed: every resource as configured, no runs, empty logs."""
        with self._lock:
            self.dispatcher.clear()
            self.request_log.clear()
            self.blobs.clear()
            self.blobs.largest_write = 0
            self._pending_uploads.clear()
            self.state = State()
            self.engine = RunEngine(self.state, self.processes, self.blobs, self._notify)
            self._seed()
        self.dispatcher.ensure_running()
        if self._ticker is not None and not self._ticker.is_alive():  # a reset restores a working emulator
            self._ticker = None
            self.start()

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> float:
        """Move emulated time forward and apply everything that became due."""
        with self._lock:
            now = self.clock.advance(seconds)
            self._catch_up(now)
            return now

    def set_speed(self, speed: float) -> None:
        with self._lock:
            self._catch_up(self.clock.now())
            self.clock.set_speed(speed)

    def log_request(self, entry: JSON) -> None:
        self.request_log.append(entry)

    def requests(self) -> list[JSON]:
        return list(self.request_log)

    def webhook_deliveries(self) -> list[JSON]:
        return self.dispatcher.deliveries()

    def links(self, base_url: str) -> ser.Links:
        """URL builder for a request that came in on ``base_url`` (``scheme://host:port``)."""
        return ser.Links(
            base_url.rstrip("/"), self.signer, self.clock.now(), self.config.file_url_ttl_seconds
        )

    def authenticate(self, header: str | None) -> ApiKeySpec:
        """The key named by an ``Authorization: RC-WSKEY <key>`` header, else 401."""
        if not header:
            raise Unauthorized("Missing Authorization header; expected 'RC-WSKEY <API key>'")
        scheme, _, key = header.partition(" ")
        if scheme != "RC-WSKEY" or not key.strip():
            raise Unauthorized("Authorization header must be 'RC-WSKEY <API key>'")
        if key.strip().upper().startswith("RC-WSKEY"):  # a client bug must not hide behind leniency
            raise Unauthorized("Authorization header has the 'RC-WSKEY' prefix twice; send 'RC-WSKEY <API key>'")
        return self.key_for_token(key.strip())

    def key_for_token(self, token: str | None) -> ApiKeySpec:
        """The key for a bare token (the integration endpoint's ``token`` query), else 401."""
        if token and token.startswith("RC-WSKEY "):
            token = token[len("RC-WSKEY ") :]
        spec = self.api_keys.get(token or "")
        if spec is None:
            raise Unauthorized("Invalid API key")
        return spec

    def authorize(self, key: ApiKeySpec, workspace_id: str, permission: str | None) -> None:
        """404 for another workspace, 403 when the key lacks ``permission``."""
        if workspace_id != self.config.workspace_id:
            raise NotFound(f"Workspace {workspace_id} not found")
        if permission is not None and permission not in key.permissions:
            raise Forbidden(f"API key lacks permission {permission}")

    @contextmanager
    def _synced(self) -> Iterator[float]:
        """Hold the lock with the state caught up to now; yields now."""
        with self._lock:
            now = self.clock.now()
            self._catch_up(now)
            yield now

    def _catch_up(self, now: float) -> None:
        for run_id in list(self.state.active_runs):
            run = self.state.runs.get(run_id)
            if run is None:
                self.state.active_runs.discard(run_id)
            else:
                self.engine.catch_up(run, now)
        for upload_id in list(self._pending_uploads):
            upload = self.state.asset_uploads.get(upload_id)
            if upload is None:
                self._pending_uploads.discard(upload_id)
            elif upload.completes_at is not None and upload.completes_at <= now:
                self._pending_uploads.discard(upload_id)
                reason = self._upload_rejection(upload.content_type)
                if reason is not None:
                    upload.status, upload.reason = "failed", reason
                    if upload.blob is not None:
                        self.blobs.delete(upload.blob.blob_id)
                else:
                    self._complete_upload(upload)

    def _tick(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            try:
                with self._lock:
                    if self.state.active_runs or self._pending_uploads:
                        self._catch_up(self.clock.now())
            except Exception:  # one bad run or delivery must not stop time for every other one
                log.exception("Emulator ticker: moving runs on failed; carrying on")

    def _seed(self) -> None:
        now = self.clock.now()
        cfg = self.config
        self._process_created = {
            p.id: parse_iso(p.created_at) if p.created_at else now for p in cfg.processes
        }
        for w in cfg.workers:
            self.state.workers[w["id"]] = Worker(w["id"], w["name"], w["state"])
        for g in cfg.worker_groups:
            self.state.worker_groups[g["id"]] = WorkerGroup(g["id"], g["name"], list(g.get("workers", [])))
        for p in cfg.task_packages:
            package = TaskPackage(p["id"], p["name"], now, list(p.get("tasks", [])))
            blob_id, size = self.blobs.put_bytes(_robot_zip(package.name, package.tasks))
            package.bundle = StoredFile(new_id(), f"{package.name}.zip", size, blob_id, "application/zip")
            self.state.packages[package.id] = package
        for a in cfg.assistants:
            created = parse_iso(a.created_at) if a.created_at else now
            self.state.assistants[a.id] = Assistant(a.id, a.name, a.task_name, a.package_id, created)
            for r in a.runs:
                ended = parse_iso(r.ended_at) if r.ended_at else None
                self.state.assistant_runs[r.id] = AssistantRun(
                    r.id, a.id, r.state, r.error_code, parse_iso(r.started_at), ended
                )
        for seeded in cfg.assets:
            asset = Asset(new_id(), seeded["name"], now)
            if "text" in seeded:
                blob_id, size = self.blobs.put_bytes(seeded["text"].encode())
                content_type = seeded.get("content_type", "text/plain")
                asset.payload = StoredFile(new_id(), asset.name, size, blob_id, content_type)
            self.state.assets[asset.id] = asset

    def _notify(self, run: ProcessRun, event: str, at: float) -> None:
        """Queue webhook and callback deliveries for a run state change."""
        envelope_event = f"process_run.{event}"
        targets: list[tuple[str, str, str, str]] = [
            ("webhook", hook.id, hook.endpoint, hook.secret)
            for hook in self.state.webhooks.values()
            if hook.process_id in (None, run.process_id) and envelope_event in hook.enabled_events
        ]
        if run.callback is not None and event in run.callback.events:
            targets.append(("callback", run.id, run.callback.url, run.callback.secret))
        for kind, source_id, url, secret in targets:
            payload = {
                "id": new_id(),
                "event": envelope_event,
                "timestamp": iso(at),
                "data": {
                    "process_run": ser.process_run(run),
                    "process": {"id": run.process_id, "name": run.process_name},
                    "workspace": {"id": self.config.workspace_id},
                },
            }
            self.dispatcher.submit(
                kind=kind, source_id=source_id, url=url, secret=secret, event=envelope_event, payload=payload
            )

    def _process(self, process_id: str) -> ProcessSpec:
        spec = self.processes.get(process_id)
        if spec is None:
            raise NotFound(f"Process {process_id} not found")
        return spec

    def _run(self, process_run_id: str) -> ProcessRun:
        return get_or_404(self.state.runs, process_run_id, "Process run")

    def _step_run(self, step_run_id: str) -> StepRun:
        return get_or_404(self.state.step_runs, step_run_id, "Step run")

    def _item(self, work_item_id: str) -> WorkItem:
        return get_or_404(self.state.items, work_item_id, "Work item")

    def _asset(self, asset_ref: str) -> Asset:
        if asset_ref.startswith("name:"):
            name = asset_ref[len("name:") :]
            for asset in self.state.assets.values():
                if asset.name == name:
                    return asset
            raise NotFound(f"Asset named {name!r} not found")
        return get_or_404(self.state.assets, asset_ref, "Asset")

    def _package(self, package_id: str) -> TaskPackage:
        return get_or_404(self.state.packages, package_id, "Task package")

    def _assistant(self, assistant_id: str) -> Assistant:
        return get_or_404(self.state.assistants, assistant_id, "Assistant")

    def _webhook(self, webhook_id: str) -> Webhook:
        return get_or_404(self.state.webhooks, webhook_id, "Webhook")

    def _worker(self, worker_id: str) -> Worker:
        return get_or_404(self.state.workers, worker_id, "Worker")

    def _group(self, group_id: str) -> WorkerGroup:
        return get_or_404(self.state.worker_groups, group_id, "Worker group")

    def _worker_json(self, worker: Worker) -> JSON:
        busy = any(
            s.worker_id == worker.id and s.state == "in_progress"
            for run_id in self.state.active_runs
            for s in (self.state.step_runs[i] for i in self.state.runs[run_id].open_step_runs if i)
        )
        return ser.worker(worker, busy)

    def _worker_groups_json(self, worker_id: str) -> JSON:
        groups = [ser.worker_group(g) for g in self.state.worker_groups.values() if worker_id in g.worker_ids]
        return {"worker": {"id": worker_id}, "worker_groups": groups}

    def _assistant_run_json(self, run: AssistantRun) -> JSON:
        assistant = self.state.assistants.get(run.assistant_id)
        return ser.assistant_run(run, assistant.name if assistant else "")

    def _complete_upload(self, upload: AssetUpload) -> None:
        assert upload.blob is not None
        upload.status = "completed"
        asset = self.state.assets.get(upload.asset_id)
        if asset is None:
            self.blobs.delete(upload.blob.blob_id)
            return
        if asset.payload is not None:
            self.blobs.delete(asset.payload.blob_id)
        asset.payload = StoredFile(
            new_id(), asset.name, upload.blob.size, upload.blob.blob_id, upload.content_type
        )

    def _upload_rejection(self, content_type: str) -> str | None:
        for rule in self.config.asset_upload_rules:
            if rule["content_type"] == content_type:
                return rule["reason"]
        return None

    def _drop_item(self, item_id: str) -> None:
        item = self.state.items.pop(item_id, None)
        if item is not None:
            self.blobs.delete_many(f.blob_id for f in item.files)
            for key in [k for k, u in self.state.post_uploads.items() if u.target_id == item_id]:
                del self.state.post_uploads[key]

    def _post_upload(
        self, kind: str, target_id: str, file_name: str, size: int | None, now: float
    ) -> PostUpload:
        key = f"{kind.replace('_', '-')}s/{target_id}/{new_id()}/{file_name}"
        expires = now + self.config.file_url_ttl_seconds
        low, high = (size, size) if size is not None else (1, MAX_UPLOAD_SIZE)
        form = {**self.signer.post_form(key, expires, low, high), "Content-Type": "application/octet-stream"}
        upload = PostUpload(key, kind, target_id, file_name, size, form, expires)
        self.state.post_uploads[key] = upload
        return upload


def get_or_404(table: dict[str, T], key: str, what: str) -> T:
    value = table.get(key)
    if value is None:
        raise NotFound(f"{what} {key} not found")
    return value


def paginate(items: Sequence[T], offset: int, limit: int, render: Callable[[T], JSON]) -> Page:
    return [render(item) for item in items[offset : offset + limit]], offset + limit < len(items)


def file_info(stored: StoredFile) -> JSON:
    return {"id": stored.id, "name": stored.name, "size": stored.size, "content_type": stored.content_type}


def _robot_zip(name: str, tasks: Sequence[str]) -> bytes:
    """A small robot bundle whose ``robot.yaml`` lists ``tasks``."""
    lines = ["tasks:"] + [f"  {task}:\n    shell: python -m robot" for task in tasks]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("robot.yaml", "\n".join(lines) + "\n")
        bundle.writestr("README.md", f"# {name}\n\nTask package seeded by the Control Room emulator.\n")
    return buffer.getvalue()
