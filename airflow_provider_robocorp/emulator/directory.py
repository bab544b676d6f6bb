"""Assistants, webhooks, workers and worker groups: plain records with CRUD."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from . import serializers as ser
from .core import JSON, BackendCore, Page, paginate
from .entities import (
    Assistant,
    Webhook,
    WorkerGroup,
)
from .errors import BadRequest, Conflict, NotFound
from .runs import new_id


class DirectoryMixin(BackendCore):
    """Assistants, webhooks, workers and worker groups."""

    def list_assistants(self, offset: int, limit: int) -> Page:
        with self._synced():
            return paginate(list(self.state.assistants.values()), offset, limit, ser.assistant)

    def get_assistant(self, assistant_id: str) -> JSON:
        with self._synced():
            return ser.assistant(self._assistant(assistant_id))

    def create_assistant(self, name: str, task_name: str, package_id: str) -> JSON:
        with self._synced() as now:
            if not name.strip() or not task_name.strip():
                raise BadRequest("name and task.name must not be empty")
            package = self._package(package_id)
            if package.tasks and task_name not in package.tasks:
                raise BadRequest(f"Task package {package.id} has no task {task_name!r}")
            if any(a.name == name for a in self.state.assistants.values()):
                raise Conflict(f"An assistant named {name!r} already exists")
            assistant = Assistant(new_id(), name, task_name, package.id, now)
            self.state.assistants[assistant.id] = assistant
            return {"id": assistant.id, "name": assistant.name}

    def list_assistant_runs(self, assistant_id: str | None, offset: int, limit: int) -> Page:
        with self._synced():
            if assistant_id is not None:
                self._assistant(assistant_id)
            runs = [
                r
                for r in self.state.assistant_runs.values()
                if assistant_id is None or r.assistant_id == assistant_id
            ]
            return paginate(runs, offset, limit, self._assistant_run_json)

    def get_assistant_run(self, assistant_run_id: str) -> JSON:
        with self._synced():
            run = self.state.assistant_runs.get(assistant_run_id)
            if run is None:
                raise NotFound(f"Assistant run {assistant_run_id} not found")
            return self._assistant_run_json(run)

    def list_webhooks(self, offset: int, limit: int) -> Page:
        with self._synced():
            hooks = list(self.state.webhooks.values())
            return paginate(hooks, offset, limit, lambda h: ser.webhook(h, with_secret=False))

    def get_webhook(self, webhook_id: str) -> JSON:
        with self._synced():
            return ser.webhook(self._webhook(webhook_id))

    def create_webhook(self, endpoint: str, enabled_events: Sequence[str], process_id: str) -> JSON:
        with self._synced():
            if not endpoint.startswith(("http://", "https://")):
                raise BadRequest("endpoint must be an http(s) URL")
            spec = self._process(process_id)
            hook = Webhook(
                new_id(), spec.id, list(dict.fromkeys(enabled_events)), secrets.token_hex(24), endpoint
            )
            self.state.webhooks[hook.id] = hook
            return ser.webhook(hook)

    def delete_webhook(self, webhook_id: str) -> JSON:
        with self._synced():
            hook = self._webhook(webhook_id)
            del self.state.webhooks[hook.id]
            return {"id": hook.id, "deleted": True}

    def list_workers(self, offset: int, limit: int) -> Page:
        with self._synced():
            return paginate(list(self.state.workers.values()), offset, limit, self._worker_json)

    def get_worker(self, worker_id: str) -> JSON:
        with self._synced():
            return self._worker_json(self._worker(worker_id))

    def update_worker(self, worker_id: str, name: str) -> JSON:
        with self._synced():
            worker = self._worker(worker_id)
            if not name.strip():
                raise BadRequest("name must not be empty")
            worker.name = name
            return self._worker_json(worker)

    def delete_worker(self, worker_id: str) -> JSON:
        with self._synced():
            worker = self._worker(worker_id)
            del self.state.workers[worker.id]
            for group in self.state.worker_groups.values():
                if worker.id in group.worker_ids:
                    group.worker_ids.remove(worker.id)
            return {"id": worker.id, "deleted": True}

    def list_worker_groups(self, offset: int, limit: int) -> Page:
        with self._synced():
            return paginate(list(self.state.worker_groups.values()), offset, limit, ser.worker_group)

    def get_worker_group(self, group_id: str) -> JSON:
        with self._synced():
            return ser.worker_group(self._group(group_id))

    def create_worker_group(self, name: str) -> JSON:
        with self._synced():
            if not name.strip():
                raise BadRequest("name must not be empty")
            group = WorkerGroup(new_id(), name)
            self.state.worker_groups[group.id] = group
            return ser.worker_group(group)

    def update_worker_group(self, group_id: str, name: str) -> JSON:
        with self._synced():
            group = self._group(group_id)
            if not name.strip():
                raise BadRequest("name must not be empty")
            group.name = name
            return ser.worker_group(group)

    def delete_worker_group(self, group_id: str) -> JSON:
        with self._synced():
            group = self._group(group_id)
            del self.state.worker_groups[group.id]
            return {"id": group.id, "deleted": True}

    def add_worker_to_group(self, group_id: str, worker_id: str) -> JSON:
        with self._synced():
            group = self._group(group_id)
            worker = self._worker(worker_id)
            if worker.id not in group.worker_ids:
                group.worker_ids.append(worker.id)
            return self._worker_groups_json(worker.id)

    def remove_worker_from_group(self, group_id: str, worker_id: str) -> JSON:
        with self._synced():
            group = self._group(group_id)
            worker = self._worker(worker_id)
            if worker.id not in group.worker_ids:
                raise NotFound(f"Worker {worker.id} is not in worker group {group.id}")
            group.worker_ids.remove(worker.id)
            return self._worker_groups_json(worker.id)
