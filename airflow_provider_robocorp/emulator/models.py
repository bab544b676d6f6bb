"""The emulator's state and behaviour, independent of HTTP (the "backend", as in moto).

``EmulatorBackend`` is the one object the HTTP layer talks to. Its operations return
API-shaped dicts (see ``serializers``); list operations take an ``offset`` and ``limit`` and
return ``(page, has_more)`` for the HTTP layer to paginate. This module holds processes,
process runs, step runs and work items; ``assets`` and ``directory`` hold the other resource
families and ``core`` the shared plumbing (lock, clock, seed, catch-up, auth).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import serializers as ser
from .assets import AssetsMixin
from .clock import iso
from .config import ProcessSpec
from .core import JSON, MAX_UPLOAD_SIZE, Page, file_info, paginate
from .directory import DirectoryMixin
from .entities import (
    Callback,
    ProcessRun,
    StopRequest,
    WorkItem,
)
from .errors import BadRequest, Conflict, NotFound
from .runs import new_id

__all__ = ["EmulatorBackend", "JSON", "Page"]


class EmulatorBackend(AssetsMixin, DirectoryMixin):
    """State and behaviour of one emulated Control Room workspace."""

    def snapshot(self, with_secrets: bool = False) -> JSON:
        """Everything the emulator holds, for ``GET /_emulator/state`` (webhook signing secrets only
        when asked: ``?secrets=true``)."""
        with self._synced():
            st = self.state
            items = [
                {
                    **ser.work_item_listing(i, self.processes[i.process_id]),
                    "payload": i.payload,
                    "files": [file_info(f) for f in i.files],
                }
                for i in st.items.values()
            ]
            return {
                "now": iso(self.clock.now()),
                "speed": self.clock.speed,
                "workspace": self.get_workspace(),
                "process_runs": [
                    {
                        **ser.process_run(r),
                        "work_item_ids": list(r.item_ids),
                        "step_run_ids": list(r.step_run_ids),
                    }
                    for r in st.runs.values()
                ],
                "step_runs": [
                    {
                        **ser.step_run(s),
                        "process_run_id": s.process_run_id,
                        "worker_id": s.worker_id,
                        "console": [m.message for m in s.console],
                        "events": [e.event_type for e in s.events],
                        "artifacts": [file_info(a) for a in s.artifacts],
                    }
                    for s in st.step_runs.values()
                ],
                "work_items": items,
                "outputs": [
                    {
                        "id": o.id,
                        "process_run_id": o.process_run_id,
                        "payload": o.payload,
                        "files": [file_info(f) for f in o.files],
                    }
                    for o in st.outputs.values()
                ],
                "assets": [
                    {**ser.asset_summary(a), "payload": None if a.payload is None else file_info(a.payload)}
                    for a in st.assets.values()
                ],
                "asset_uploads": [
                    {**ser.asset_upload(u), "asset_id": u.asset_id} for u in st.asset_uploads.values()
                ],
                "task_packages": [
                    {
                        "id": p.id,
                        "name": p.name,
                        "tasks": list(p.tasks),
                        "bundle": None if p.bundle is None else file_info(p.bundle),
                    }
                    for p in st.packages.values()
                ],
                "assistants": [ser.assistant(a) for a in st.assistants.values()],
                "webhooks": [ser.webhook(w, with_secret=with_secrets) for w in st.webhooks.values()],
                "workers": [self._worker_json(w) for w in st.workers.values()],
                "worker_groups": [
                    {**ser.worker_group(g), "worker_ids": list(g.worker_ids)}
                    for g in st.worker_groups.values()
                ],
                "faults": self.faults.rules(),
            }

    def get_workspace(self) -> JSON:
        ws, org = self.config.workspace, self.config.organization
        return {"id": ws["id"], "name": ws["name"], "organization": {"id": org["id"], "name": org["name"]}}

    def list_processes(self, offset: int, limit: int) -> Page:
        with self._synced():
            specs = list(self.processes.values())
            return paginate(
                specs, offset, limit, lambda p: ser.process_summary(p, self._process_created[p.id])
            )

    def get_process(self, process_id: str) -> JSON:
        with self._synced():
            spec = self._process(process_id)
            return ser.process(spec, self._process_created[spec.id])

    def start_process_run(self, process_id: str, body: JSON | None) -> JSON:
        """Start a run; ``body`` is one of the documented start bodies (already validated)."""
        with self._synced() as now:
            spec = self._process(process_id)
            body = body or {}
            mode = body.get("type")
            callback = _callback(body.get("callback"))
            if mode == "with_payloads":
                payloads = body["payloads"]
                if not payloads:
                    raise BadRequest("payloads must contain at least one payload")
                items = [self._new_item(spec.id, payload, now) for payload in payloads]
            elif mode == "with_work_item_ids":
                items = self._input_items(spec, body["work_item_ids"])
            elif mode == "with_inputs":
                items = [i for i in self.state.items.values() if i.process_id == spec.id and i.state == "new"]
                if not items:
                    return {"started": False}
            else:
                items = [self._new_item(spec.id, spec.default_payload, now)]
            run = self._new_run(spec, items, now, callback)
            return {"started": True, "id": run.id}

    def start_process_run_for_integration(self, process_id: str, payload: Any) -> JSON:
        """Start a run whose single input work item carries ``payload``."""
        with self._synced() as now:
            spec = self._process(process_id)
            run = self._new_run(spec, [self._new_item(spec.id, payload, now)], now, None)
            return {"started": True, "id": run.id}

    def list_process_runs(self, process_id: str | None, state: str | None, offset: int, limit: int) -> Page:
        with self._synced():
            runs = [
                r
                for r in reversed(self.state.runs.values())
                if (process_id is None or r.process_id == process_id) and (state is None or r.state == state)
            ]
            return paginate(runs, offset, limit, ser.process_run)

    def get_process_run(self, process_run_id: str) -> JSON:
        with self._synced():
            return ser.process_run(self._run(process_run_id))

    def stop_process_run(
        self,
        process_run_id: str,
        set_remaining_work_items_as_done: bool,
        terminate_ongoing_activity_runs: bool,
        reason: str | None = None,
    ) -> JSON:
        with self._synced() as now:
            run = self._run(process_run_id)
            request = StopRequest(set_remaining_work_items_as_done, terminate_ongoing_activity_runs, reason)
            return {"accepted": self.engine.stop(run, request, now)}

    def delete_process_run(self, process_run_id: str) -> JSON:
        with self._synced():
            run = self._run(process_run_id)
            if not run.finished:
                raise Conflict(f"Process run {run.id} is {run.state}; stop it or wait for it to end first")
            for item_id in run.item_ids:
                self._drop_item(item_id)
            for step_run_id in run.step_run_ids:
                step_run = self.state.step_runs.pop(step_run_id)
                self.blobs.delete_many(a.blob_id for a in step_run.artifacts)
            for output_id in [o.id for o in self.state.outputs.values() if o.process_run_id == run.id]:
                output = self.state.outputs.pop(output_id)
                self.blobs.delete_many(f.blob_id for f in output.files)
            del self.state.runs[run.id]
            return {"id": run.id, "deleted": True}

    def list_process_run_outputs(self, process_run_id: str, base_url: str, offset: int, limit: int) -> Page:
        with self._synced():
            run = self._run(process_run_id)
            links = self.links(base_url)
            outputs = [o for o in self.state.outputs.values() if o.process_run_id == run.id]
            return paginate(outputs, offset, limit, lambda o: ser.output(o, links))

    def list_step_runs(self, process_run_id: str, offset: int, limit: int) -> Page:
        with self._synced():
            run = self._run(process_run_id)
            step_runs = [self.state.step_runs[i] for i in run.step_run_ids]
            return paginate(step_runs, offset, limit, ser.step_run)

    def get_step_run(self, step_run_id: str) -> JSON:
        with self._synced():
            return ser.step_run(self._step_run(step_run_id))

    def list_step_run_artifacts(self, step_run_id: str, offset: int, limit: int) -> Page:
        with self._synced():
            return paginate(self._step_run(step_run_id).artifacts, offset, limit, ser.artifact_summary)

    def get_step_run_artifact(self, step_run_id: str, artifact_id: str, base_url: str) -> JSON:
        with self._synced():
            for stored in self._step_run(step_run_id).artifacts:
                if stored.id == artifact_id:
                    return ser.artifact(stored, self.links(base_url))
            raise NotFound(f"Artifact {artifact_id} not found")

    def list_step_run_console_messages(self, step_run_id: str, offset: int, limit: int) -> Page:
        with self._synced():
            messages = self._step_run(step_run_id).console
            return paginate(
                messages, offset, limit, lambda m: {"timestamp": iso(m.timestamp), "message": m.message}
            )

    def list_step_run_events(self, step_run_id: str, offset: int, limit: int) -> Page:
        with self._synced():
            events = self._step_run(step_run_id).events
            return paginate(
                events, offset, limit, lambda e: {"timestamp": iso(e.timestamp), "event_type": e.event_type}
            )

    def list_work_items(
        self, process_id: str | None, process_run_id: str | None, state: str | None, offset: int, limit: int
    ) -> Page:
        with self._synced():
            items = [
                i
                for i in self.state.items.values()
                if (process_id is None or i.process_id == process_id)
                and (process_run_id is None or i.process_run_id == process_run_id)
                and (state is None or i.state == state)
            ]
            return paginate(
                items, offset, limit, lambda i: ser.work_item_listing(i, self.processes[i.process_id])
            )

    def get_work_item(self, work_item_id: str, include_data: bool, base_url: str) -> JSON:
        with self._synced():
            item = self._item(work_item_id)
            return ser.work_item(item, self.processes[item.process_id], self.links(base_url), include_data)

    def create_work_item(self, process_id: str, payload: Any, base_url: str) -> JSON:
        with self._synced() as now:
            spec = self._process(process_id)
            item = self._new_item(spec.id, payload, now, state="new")
            return ser.work_item(item, spec, self.links(base_url))

    def create_work_item_file(self, work_item_id: str, file_name: str, file_size: int, base_url: str) -> JSON:
        """Prepare an S3-style multipart POST upload of one file of a work item."""
        with self._synced() as now:
            item = self._item(work_item_id)
            if item.state == "in_progress":
                raise Conflict(f"Work item {item.id} is in progress; files cannot be added now")
            if not file_name or "/" in file_name:
                raise BadRequest("file_name must be a plain, non-empty file name")
            if file_size < 0 or file_size > MAX_UPLOAD_SIZE:
                raise BadRequest(f"file_size must be between 0 and {MAX_UPLOAD_SIZE}")
            upload = self._post_upload("work_item_file", item.id, file_name, file_size, now)
            return {
                "upload": {"url": self.links(base_url).post_upload(), "form_data": dict(upload.form_data)}
            }

    def update_work_item_payload(self, work_item_id: str, payload: Any) -> JSON:
        with self._synced():
            item = self._item(work_item_id)
            if item.state == "in_progress":
                raise Conflict(f"Work item {item.id} is in progress; its payload cannot change now")
            item.payload = payload
            return {"payload": item.payload}

    def batch_work_items(self, operation: str, work_item_ids: Sequence[str]) -> JSON:
        """Retry, delete or mark as done failed work items (all-or-nothing validation)."""
        with self._synced() as now:
            if not work_item_ids:
                raise BadRequest("work_item_ids must not be empty")
            items = [self._item(i) for i in dict.fromkeys(work_item_ids)]
            not_failed = [i.id for i in items if i.state != "failed"]
            if not_failed:
                raise Conflict(f"Work items are not failed: {', '.join(not_failed)}")
            runs = {i.process_run_id: self._run(i.process_run_id) for i in items if i.process_run_id}
            if operation == "retry":
                stopping = [r.id for r in runs.values() if r.state == "stopping"]
                if stopping:
                    raise Conflict(f"Process run {stopping[0]} is stopping; retry after it ends")
            for item in items:
                run = runs.get(item.process_run_id or "")
                if operation == "retry" and run is not None:
                    self.engine.retry(run, item, now)
                elif operation == "mark_as_done":
                    item.state, item.state_updated_at = "done", now
                elif operation == "delete":
                    self._drop_item(item.id)
                    if run is not None:
                        run.item_ids.remove(item.id)
            for run in runs.values():
                self.engine.recheck_outcome(run, now)
            return {"accepted": True}

    def _new_item(self, process_id: str, payload: Any, now: float, state: str = "pending") -> WorkItem:
        item = WorkItem(new_id(), process_id, now, payload, state=state, state_updated_at=now)
        self.state.items[item.id] = item
        return item

    def _input_items(self, spec: ProcessSpec, work_item_ids: Sequence[str]) -> list[WorkItem]:
        if not work_item_ids:
            raise BadRequest("work_item_ids must contain at least one id")
        items = [self._item(i) for i in dict.fromkeys(work_item_ids)]
        for item in items:
            if item.process_id != spec.id:
                raise BadRequest(f"Work item {item.id} belongs to process {item.process_id}, not {spec.id}")
            if item.state != "new":
                raise Conflict(f"Work item {item.id} is {item.state}; only new work items can start a run")
        return items

    def _new_run(
        self, spec: ProcessSpec, items: list[WorkItem], now: float, callback: Callback | None
    ) -> ProcessRun:
        run = ProcessRun(
            new_id(), spec.id, spec.name, now, len(spec.steps), callback=callback, last_event_at=now
        )
        for item in items:
            item.state, item.state_updated_at = "pending", now
            item.process_run_id = run.id
            item.step_index, item.step_run_id, item.exception = 0, None, None
            run.item_ids.append(item.id)
        self.state.runs[run.id] = run
        self.state.active_runs.add(run.id)
        self.engine.catch_up(run, now)
        return run


def _callback(raw: JSON | None) -> Callback | None:
    if raw is None:
        return None
    return Callback(raw["url"], raw["secret"], tuple(raw["callback_events"]))
