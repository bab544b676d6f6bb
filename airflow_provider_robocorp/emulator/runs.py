"""The process run state machine, driven by the emulator clock.

A run is ``new`` for the process's start delay, then ``in_progress``: its work items flow
through the steps, each step working one item at a time (steps pipeline, so item 2 can be in
step 1 while item 1 is in step 2). Finishing an item either fails it (by the process's outcome
rules), passes it to the next step, or completes it (producing an output). A step run is opened
when items reach a step and closed when no more items can reach it. When no item is left
running or waiting, the run ends ``completed`` (all items done) or ``unresolved``.

``catch_up(run, now)`` replays every event due up to ``now`` at its exact emulated time, so the
outcome does not depend on how often it is called.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from .clock import iso
from .config import ProcessSpec
from .entities import OutputItem, ProcessRun, Running, State, StepRun, StopRequest, StoredFile, WorkItem
from .storage import BlobStore

Notify = Callable[[ProcessRun, str, float], None]
"""Called with (run, "started" | "completed" | "unresolved", time) on run state changes."""

TERMINATED = "TERMINATED"


def new_id() -> str:
    return str(uuid.uuid4())


class RunEngine:
    """Moves process runs, step runs and work items forward in emulated time."""

    def __init__(
        self, state: State, processes: dict[str, ProcessSpec], blobs: BlobStore, notify: Notify
    ) -> None:
        self.state = state
        self.processes = processes
        self.blobs = blobs
        self.notify = notify
        self._worker_cursor = 0

    # -- driving ----------------------------------------------------------------------------

    def catch_up(self, run: ProcessRun, now: float) -> None:
        """Apply every transition of ``run`` due at or before ``now``."""
        spec = self.processes[run.process_id]
        if run.state == "new":
            begins_at = run.created_at + spec.start_delay_seconds
            if begins_at > now:
                return
            self._begin(run, spec, begins_at)
        while run.state in ("in_progress", "stopping"):
            due = [(r.finishes_at, index) for index, r in enumerate(run.running) if r is not None]
            if not due:
                self._settle(run, spec, run.last_event_at)
                if not any(r is not None for r in run.running):
                    break
                continue
            finishes_at, index = min(due)
            if finishes_at > now:
                break
            self._complete(run, spec, index, finishes_at)
            self._settle(run, spec, finishes_at)

    def stop(self, run: ProcessRun, request: StopRequest, now: float) -> bool:
        """Stop a run that has not ended; returns whether the stop was accepted."""
        if run.finished or run.state == "stopping":
            return False
        spec = self.processes[run.process_id]
        run.stop = request
        run.last_event_at = max(run.last_event_at, now)
        if run.state == "new":
            for item_id in run.item_ids:
                self._remaining(run, self.state.items[item_id], now)
            self._finish(run, now)
            return True
        for queue in run.queues:
            while queue:
                self._remaining(run, self.state.items[queue.popleft()], now)
        if request.terminate_ongoing_activity_runs:
            for index, running in enumerate(run.running):
                if running is None:
                    continue
                run.running[index] = None
                step_run = self._open_step_run(run, spec, index, now)
                step_run.error_code = step_run.error_code or TERMINATED
                step_run.log(now, f"Work item {running.item_id} terminated: process run stopped")
                step_run.event(now, "work_item_terminated", running.item_id)
                self._remaining(run, self.state.items[running.item_id], now)
        run.state = "stopping"
        self._settle(run, spec, now)
        return True

    def retry(self, run: ProcessRun, item: WorkItem, now: float) -> None:
        """Send a failed item back to the step it failed in; a finished run resumes."""
        item.state = "pending"
        item.retries += 1
        item.exception = None
        item.step_run_id = None
        item.state_updated_at = now
        step_index = item.step_index or 0
        item.step_index = step_index
        run.queues[step_index].append(item.id)
        if run.finished:
            run.state = "in_progress"
            run.ended_at = None
            run.stop = None
            self.state.active_runs.add(run.id)
        run.last_event_at = max(run.last_event_at, now)
        self._settle(run, self.processes[run.process_id], now)

    def recheck_outcome(self, run: ProcessRun, now: float) -> None:
        """After items of an ended run changed (done / deleted), its state may change."""
        if not run.finished:
            return
        state = self._final_state(run)
        if state != run.state:
            run.state = state
            self.notify(run, state, now)

    # -- transitions ------------------------------------------------------------------------

    def _begin(self, run: ProcessRun, spec: ProcessSpec, at: float) -> None:
        run.state = "in_progress"
        run.started_at = at
        run.last_event_at = at
        for item_id in run.item_ids:
            item = self.state.items[item_id]
            item.step_index = 0
            run.queues[0].append(item_id)
        self.notify(run, "started", at)
        self._settle(run, spec, at)

    def _settle(self, run: ProcessRun, spec: ProcessSpec, at: float) -> None:
        """Start idle steps, close step runs no item can reach, end the run when idle."""
        if run.state == "in_progress":
            for index, queue in enumerate(run.queues):
                if queue and run.running[index] is None:
                    self._start(run, spec, index, at)
        upstream_busy = False
        for index in range(run.step_count):
            busy = run.running[index] is not None or bool(run.queues[index])
            if not busy and not upstream_busy and run.open_step_runs[index] is not None:
                self._close_step_run(run, spec, index, at)
            upstream_busy = upstream_busy or busy
        if not upstream_busy:
            self._finish(run, at)

    def _start(self, run: ProcessRun, spec: ProcessSpec, index: int, at: float) -> None:
        item = self.state.items[run.queues[index].popleft()]
        step_run = self._open_step_run(run, spec, index, at)
        item.state = "in_progress"
        item.state_updated_at = at
        item.step_index = index
        item.step_run_id = step_run.id
        step_run.log(at, f"Processing work item {item.id}")
        step_run.event(at, "work_item_started", item.id)
        duration = spec.steps[index].item_duration_seconds
        run.running[index] = Running(item.id, at, at + duration)

    def _complete(self, run: ProcessRun, spec: ProcessSpec, index: int, at: float) -> None:
        running = run.running[index]
        assert running is not None
        run.running[index] = None
        run.last_event_at = at
        item = self.state.items[running.item_id]
        step_run = self._open_step_run(run, spec, index, at)
        item.state_updated_at = at
        failure = spec.failure_for(index, item.payload, item.retries)
        if failure is not None:
            item.state = "failed"
            item.exception = failure
            step_run.error_code = step_run.error_code or failure["code"]
            step_run.log(at, f"ERROR {failure['code']}: {failure['message']}")
            step_run.log(at, f"Work item {item.id} failed ({failure['type']} exception)")
            step_run.event(at, "work_item_failed", item.id)
            return
        step_run.log(at, f"Work item {item.id} done")
        step_run.event(at, "work_item_completed", item.id)
        if index == run.step_count - 1:
            item.state = "done"
            self._output(run, spec, item, at)
        elif run.state == "stopping":
            self._remaining(run, item, at)
        else:
            item.state = "pending"
            item.step_index = index + 1
            item.step_run_id = None
            run.queues[index + 1].append(item.id)

    def _remaining(self, run: ProcessRun, item: WorkItem, at: float) -> None:
        """An item a stop leaves unprocessed: done or failed, as the stop request says."""
        assert run.stop is not None
        item.state_updated_at = at
        if run.stop.set_remaining_work_items_as_done:
            item.state = "done"
            item.exception = None
        else:
            item.state = "failed"
            item.exception = {
                "code": "PROCESS_RUN_STOPPED",
                "type": "orchestrator",
                "message": run.stop.reason or "The process run was stopped",
            }

    def _finish(self, run: ProcessRun, at: float) -> None:
        run.state = self._final_state(run)
        run.ended_at = at
        run.last_event_at = at
        self.state.active_runs.discard(run.id)
        self.notify(run, run.state, at)

    def _final_state(self, run: ProcessRun) -> str:
        items = (self.state.items[i] for i in run.item_ids)
        return "completed" if all(item.state == "done" for item in items) else "unresolved"

    # -- step runs and outputs ----------------------------------------------------------------

    def _open_step_run(self, run: ProcessRun, spec: ProcessSpec, index: int, at: float) -> StepRun:
        step_run_id = run.open_step_runs[index]
        if step_run_id is not None:
            return self.state.step_runs[step_run_id]
        step = spec.steps[index]
        step_run = StepRun(
            id=new_id(),
            process_run_id=run.id,
            step_index=index,
            step_id=step.id,
            step_name=step.name,
            created_at=at,
            state="in_progress",
            state_updated_at=at,
            started_at=at,
            worker_id=self._pick_worker(),
        )
        self.state.step_runs[step_run.id] = step_run
        run.step_run_ids.append(step_run.id)
        run.open_step_runs[index] = step_run.id
        where = f" on worker {self.state.workers[step_run.worker_id].name}" if step_run.worker_id else ""
        step_run.log(at, f"Step run started: {step.name}{where}")
        step_run.event(at, "step_run_started")
        return step_run

    def _close_step_run(self, run: ProcessRun, spec: ProcessSpec, index: int, at: float) -> None:
        step_run_id = run.open_step_runs[index]
        assert step_run_id is not None
        run.open_step_runs[index] = None
        step_run = self.state.step_runs[step_run_id]
        step_run.state = "failed" if step_run.error_code else "completed"
        step_run.state_updated_at = at
        step_run.ended_at = at
        step_run.log(at, f"Step run {step_run.state}: {step_run.step_name}")
        step_run.event(at, f"step_run_{step_run.state}")
        log_text = "".join(f"{iso(m.timestamp)} {m.message}\n" for m in step_run.console).encode()
        self._artifact(step_run, "output.log", log_text, "text/plain")
        for extra in spec.steps[index].artifacts:
            self._artifact(step_run, extra.name, extra.content.encode(), "application/octet-stream")

    def _artifact(self, step_run: StepRun, name: str, data: bytes, content_type: str) -> None:
        blob_id, size = self.blobs.put_bytes(data)
        step_run.artifacts.append(StoredFile(new_id(), name, size, blob_id, content_type))

    def _output(self, run: ProcessRun, spec: ProcessSpec, item: WorkItem, at: float) -> None:
        if not spec.outputs.enabled:
            return
        payload: Any = dict(spec.outputs.payload)
        if spec.outputs.merge_input and isinstance(item.payload, dict):
            payload.update(item.payload)
        elif spec.outputs.merge_input and item.payload is not None:
            payload["input"] = item.payload
        files = []
        if spec.outputs.copy_files:
            files = [
                StoredFile(new_id(), f.name, f.size, self.blobs.duplicate(f.blob_id), f.content_type)
                for f in item.files
            ]
        output = OutputItem(new_id(), at, run.process_id, run.id, payload, files)
        self.state.outputs[output.id] = output

    def _pick_worker(self) -> str | None:
        online = [w.id for w in self.state.workers.values() if w.state != "offline"]
        if not online:
            return None
        self._worker_cursor += 1
        return online[self._worker_cursor % len(online)]
