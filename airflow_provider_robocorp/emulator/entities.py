"""The emulator's resources as plain dataclasses (state only; behaviour lives in models/runs)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StoredFile:
    """A file kept in the blob store (work item file, artifact, asset payload, package)."""

    id: str
    name: str
    size: int
    blob_id: str
    content_type: str = "application/octet-stream"


@dataclass
class WorkItem:
    id: str
    process_id: str
    created_at: float
    payload: Any
    state: str = "new"
    state_updated_at: float | None = None
    process_run_id: str | None = None
    step_index: int | None = None
    step_run_id: str | None = None
    exception: dict[str, str] | None = None
    files: list[StoredFile] = field(default_factory=list)
    retries: int = 0  # how many times a batch retry sent it back


@dataclass
class OutputItem:
    id: str
    created_at: float
    process_id: str
    process_run_id: str
    payload: Any
    files: list[StoredFile] = field(default_factory=list)


@dataclass
class ConsoleMessage:
    timestamp: float
    message: str


@dataclass
class StepEvent:
    timestamp: float
    event_type: str
    work_item_id: str | None = None


@dataclass
class StepRun:
    id: str
    process_run_id: str
    step_index: int
    step_id: str
    step_name: str
    created_at: float
    state: str = "new"
    state_updated_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    error_code: str | None = None
    worker_id: str | None = None
    console: list[ConsoleMessage] = field(default_factory=list)
    events: list[StepEvent] = field(default_factory=list)
    artifacts: list[StoredFile] = field(default_factory=list)

    def log(self, timestamp: float, message: str) -> None:
        self.console.append(ConsoleMessage(timestamp, message))

    def event(self, timestamp: float, event_type: str, work_item_id: str | None = None) -> None:
        self.events.append(StepEvent(timestamp, event_type, work_item_id))


@dataclass
class Callback:
    url: str
    secret: str
    events: tuple[str, ...]


@dataclass
class StopRequest:
    set_remaining_work_items_as_done: bool
    terminate_ongoing_activity_runs: bool
    reason: str | None


@dataclass
class Running:
    """The work item a step is processing right now."""

    item_id: str
    started_at: float
    finishes_at: float


@dataclass
class ProcessRun:
    id: str
    process_id: str
    process_name: str
    created_at: float
    step_count: int
    started_by: str = "api"
    callback: Callback | None = None
    state: str = "new"
    started_at: float | None = None
    ended_at: float | None = None
    item_ids: list[str] = field(default_factory=list)
    step_run_ids: list[str] = field(default_factory=list)
    stop: StopRequest | None = None
    last_event_at: float = 0.0
    queues: list[deque[str]] = field(default_factory=list)
    running: list[Running | None] = field(default_factory=list)
    open_step_runs: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.queues:
            self.queues = [deque() for _ in range(self.step_count)]
            self.running = [None] * self.step_count
            self.open_step_runs = [None] * self.step_count

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "unresolved")

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round(self.ended_at - self.started_at, 3)


@dataclass
class Asset:
    id: str
    name: str
    created_at: float
    payload: StoredFile | None = None


@dataclass
class AssetUpload:
    id: str
    asset_id: str
    content_type: str
    created_at: float
    status: str = "pending"
    reason: str | None = None
    blob: StoredFile | None = None
    completes_at: float | None = None


@dataclass
class PostUpload:
    """A pending S3-style multipart POST upload (work item file or task package)."""

    key: str
    kind: str
    target_id: str
    file_name: str
    file_size: int | None
    form_data: dict[str, str]
    expires: float


@dataclass
class TaskPackage:
    id: str
    name: str
    created_at: float
    tasks: list[str] = field(default_factory=list)
    bundle: StoredFile | None = None


@dataclass
class Assistant:
    id: str
    name: str
    task_name: str
    package_id: str
    created_at: float


@dataclass
class AssistantRun:
    id: str
    assistant_id: str
    state: str
    error_code: str | None
    started_at: float
    ended_at: float | None


@dataclass
class Webhook:
    id: str
    process_id: str | None
    enabled_events: list[str]
    secret: str
    endpoint: str


@dataclass
class Worker:
    id: str
    name: str
    state: str = "idle"


@dataclass
class WorkerGroup:
    id: str
    name: str
    worker_ids: list[str] = field(default_factory=list)


@dataclass
class State:
    """Everything the emulator holds; ``reset`` simply builds a fresh one from the seed."""

    runs: dict[str, ProcessRun] = field(default_factory=dict)
    active_runs: set[str] = field(default_factory=set)
    items: dict[str, WorkItem] = field(default_factory=dict)
    step_runs: dict[str, StepRun] = field(default_factory=dict)
    outputs: dict[str, OutputItem] = field(default_factory=dict)
    assets: dict[str, Asset] = field(default_factory=dict)
    asset_uploads: dict[str, AssetUpload] = field(default_factory=dict)
    post_uploads: dict[str, PostUpload] = field(default_factory=dict)
    packages: dict[str, TaskPackage] = field(default_factory=dict)
    assistants: dict[str, Assistant] = field(default_factory=dict)
    assistant_runs: dict[str, AssistantRun] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    workers: dict[str, Worker] = field(default_factory=dict)
    worker_groups: dict[str, WorkerGroup] = field(default_factory=dict)
