"""Seed configuration of the emulator: load a JSON file, validate it, build typed specs.

The file describes the organization and workspace, API keys and their permissions, workers
and worker groups, processes (steps, run timing, outcome rules, outputs), task packages,
assistants, seeded assets and webhook delivery settings. ``default_config.json`` next to this
module is the configuration used when none is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

ALL_PERMISSIONS: frozenset[str] = frozenset(
    {
        "Assets.read_asset_storage_assets",
        "Assets.write_asset_storage_assets",
        "Assistants.read_assistants",
        "Assistants.write_assistants",
        "Processes.read_processes",
        "Processes.read_runs",
        "Processes.read_run_outputs",
        "Processes.read_work_items",
        "Processes.trigger_processes",
        "Processes.write_work_items",
        "Tasks.read_task_packages",
        "Tasks.write_task_packages",
        "Webhooks.read_webhooks",
        "Webhooks.write_webhooks",
        "Workers.read_workers",
        "Workers.write_workers",
    }
)
"""Every permission an endpoint of the API can require; ``"*"`` in a key grants them all."""

EXCEPTION_TYPES = ("application", "business", "orchestrator", "unspecified")

ConfigSource = Mapping[str, Any] | str | Path | None

_NAMED_PROPERTIES: dict[str, Any] = {"id": {"type": "string", "minLength": 1}, "name": {"type": "string"}}
_NAMED: dict[str, Any] = {"type": "object", "required": ["id", "name"], "properties": _NAMED_PROPERTIES}
_SECONDS: dict[str, Any] = {"type": "number", "minimum": 0}
_TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}

CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["organization", "workspace", "api_keys", "processes"],
    "additionalProperties": False,
    "properties": {
        "$comment": {"type": "string"},
        "organization": _NAMED,
        "workspace": _NAMED,
        "speed": {"type": "number", "minimum": 0},
        "api_keys": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["key", "permissions"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "name": {"type": "string"},
                    "permissions": {
                        "type": "array",
                        "items": {"enum": ["*", *sorted(ALL_PERMISSIONS)]},
                    },
                },
            },
        },
        "workers": {
            "type": "array",
            "items": {
                **_NAMED,
                "additionalProperties": False,
                "properties": {**_NAMED_PROPERTIES, "state": {"enum": ["offline", "idle", "busy"]}},
            },
        },
        "worker_groups": {
            "type": "array",
            "items": {
                **_NAMED,
                "additionalProperties": False,
                "properties": {
                    **_NAMED_PROPERTIES,
                    "workers": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "processes": {
            "type": "array",
            "items": {
                **_NAMED,
                "additionalProperties": False,
                "properties": {
                    **_NAMED_PROPERTIES,
                    "created_at": _TIMESTAMP,
                    "start_delay_seconds": _SECONDS,
                    "item_duration_seconds": _SECONDS,
                    "default_payload": {},
                    "steps": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            **_NAMED,
                            "additionalProperties": False,
                            "properties": {
                                **_NAMED_PROPERTIES,
                                "item_duration_seconds": _SECONDS,
                                "artifacts": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["name", "content"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "name": {"type": "string", "minLength": 1},
                                            "content": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                    "outcome_rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["match", "exception"],
                            "additionalProperties": False,
                            "properties": {
                                "step": {"type": "string"},
                                "match": {"type": "object"},
                                "failed_attempts": {"type": "integer", "minimum": 1},
                                "exception": {
                                    "type": "object",
                                    "required": ["type", "code", "message"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {"enum": list(EXCEPTION_TYPES)},
                                        "code": {"type": "string"},
                                        "message": {"type": "string"},
                                        "message_from_payload": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                    "outputs": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "enabled": {"type": "boolean"},
                            "payload": {"type": "object"},
                            "merge_input": {"type": "boolean"},
                            "copy_files": {"type": "boolean"},
                        },
                    },
                },
            },
        },
        "task_packages": {
            "type": "array",
            "items": {
                **_NAMED,
                "additionalProperties": False,
                "properties": {
                    **_NAMED_PROPERTIES,
                    "tasks": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "assistants": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "task"],
                "additionalProperties": False,
                "properties": {
                    **_NAMED_PROPERTIES,
                    "created_at": _TIMESTAMP,
                    "task": {
                        "type": "object",
                        "required": ["name", "package_id"],
                        "properties": {"name": {"type": "string"}, "package_id": {"type": "string"}},
                    },
                    "runs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "state", "started_at"],
                            "additionalProperties": False,
                            "properties": {
                                "id": {"type": "string"},
                                "state": {"enum": ["in_progress", "completed", "failed"]},
                                "error_code": {"type": ["string", "null"]},
                                "started_at": _TIMESTAMP,
                                "ended_at": {"type": ["string", "null"], "format": "date-time"},
                            },
                        },
                    },
                },
            },
        },
        "assets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "content_type": {"type": "string"},
                    "text": {"type": "string"},
                },
            },
        },
        "asset_upload_rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["content_type", "reason"],
                "additionalProperties": False,
                "properties": {"content_type": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "timing": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "start_delay_seconds": _SECONDS,
                "item_duration_seconds": _SECONDS,
                "asset_processing_seconds": _SECONDS,
                "file_url_ttl_seconds": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "webhooks": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_attempts": {"type": "integer", "minimum": 1},
                "initial_backoff_seconds": _SECONDS,
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    },
}


class ConfigError(ValueError):
    """The seed configuration is invalid."""


@dataclass(frozen=True)
class ApiKeySpec:
    """An API key and the permissions granted to it."""

    key: str
    name: str
    permissions: frozenset[str]


@dataclass(frozen=True)
class ArtifactSpec:
    """A static artifact every step run of a step produces (besides ``output.log``)."""

    name: str
    content: str


@dataclass(frozen=True)
class StepSpec:
    """One step of a process."""

    id: str
    name: str
    item_duration_seconds: float
    artifacts: tuple[ArtifactSpec, ...] = ()


@dataclass(frozen=True)
class ExceptionSpec:
    """The exception a failing work item gets."""

    type: str
    code: str
    message: str
    message_from_payload: str | None = None

    def render(self, payload: Any) -> dict[str, str]:
        """The work item ``exception`` object; the message may come from the payload."""
        message = self.message
        if self.message_from_payload and isinstance(payload, dict):
            value = payload.get(self.message_from_payload)
            if isinstance(value, str) and value:
                message = value
        return {"code": self.code, "type": self.type, "message": message}


@dataclass(frozen=True)
class OutcomeRule:
    """A work item whose payload contains every ``match`` key/value fails in ``step``."""

    step_id: str
    match: Mapping[str, Any]
    exception: ExceptionSpec
    #: fail only this many attempts (then a retried item succeeds: a transient fault); None: always
    failed_attempts: int | None = None

    def matches(self, payload: Any, retries: int = 0) -> bool:
        if not isinstance(payload, dict):
            return False
        if self.failed_attempts is not None and retries >= self.failed_attempts:
            return False
        return all(key in payload and payload[key] == value for key, value in self.match.items())


@dataclass(frozen=True)
class OutputSpec:
    """What output work item a successfully processed input produces."""

    enabled: bool = True
    payload: Mapping[str, Any] = field(default_factory=lambda: {"processed": True})
    merge_input: bool = True
    copy_files: bool = True


@dataclass(frozen=True)
class ProcessSpec:
    """A process: its steps, timing and outcome rules."""

    id: str
    name: str
    created_at: str | None
    steps: tuple[StepSpec, ...]
    start_delay_seconds: float
    default_payload: Any
    rules: tuple[OutcomeRule, ...]
    outputs: OutputSpec

    def step_index(self, step_id: str) -> int:
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise KeyError(step_id)

    def failure_for(self, step_index: int, payload: Any, retries: int = 0) -> dict[str, str] | None:
        """The exception of the first rule that fails ``payload`` (retried ``retries`` times) in this step."""
        step_id = self.steps[step_index].id
        for rule in self.rules:
            if rule.step_id == step_id and rule.matches(payload, retries):
                return rule.exception.render(payload)
        return None


@dataclass(frozen=True)
class AssistantRunSpec:
    id: str
    state: str
    error_code: str | None
    started_at: str
    ended_at: str | None


@dataclass(frozen=True)
class AssistantSpec:
    id: str
    name: str
    task_name: str
    package_id: str
    created_at: str | None
    runs: tuple[AssistantRunSpec, ...]


@dataclass(frozen=True)
class EmulatorConfig:
    """The validated seed configuration."""

    organization: Mapping[str, str]
    workspace: Mapping[str, str]
    api_keys: tuple[ApiKeySpec, ...]
    workers: tuple[Mapping[str, str], ...]
    worker_groups: tuple[Mapping[str, Any], ...]
    processes: tuple[ProcessSpec, ...]
    task_packages: tuple[Mapping[str, Any], ...]
    assistants: tuple[AssistantSpec, ...]
    assets: tuple[Mapping[str, str], ...]
    asset_upload_rules: tuple[Mapping[str, str], ...]
    speed: float = 1.0
    asset_processing_seconds: float = 0.1
    file_url_ttl_seconds: float = 3600.0
    webhook_max_attempts: int = 8
    webhook_initial_backoff_seconds: float = 0.2
    webhook_timeout_seconds: float = 5.0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def workspace_id(self) -> str:
        return self.workspace["id"]

    @property
    def default_api_key(self) -> str:
        """The first key holding every permission (else simply the first key)."""
        for spec in self.api_keys:
            if spec.permissions == ALL_PERMISSIONS:
                return spec.key
        return self.api_keys[0].key


def default_config_path() -> Path:
    """Path of the configuration shipped with the package."""
    return Path(str(resources.files(__package__).joinpath("default_config.json")))


def load_config(source: ConfigSource = None) -> EmulatorConfig:
    """Load and validate a configuration from a mapping, a JSON file path, or the default."""
    if source is None:
        source = default_config_path()
    if isinstance(source, (str, Path)):
        try:
            raw = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read emulator config {source}: {exc}") from exc
    else:
        raw = json.loads(json.dumps(source))
    return parse_config(raw)


def parse_config(raw: Any) -> EmulatorConfig:
    """Validate a decoded configuration document and build the typed specs."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(CONFIG_SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "<root>"
        raise ConfigError(f"invalid emulator config at {where}: {errors[0].message}")

    timing = raw.get("timing", {})
    default_start_delay = float(timing.get("start_delay_seconds", 0.1))
    default_duration = float(timing.get("item_duration_seconds", 0.3))
    processes = tuple(_process(p, default_start_delay, default_duration) for p in raw["processes"])
    _check_unique("process", [p.id for p in processes])
    _check_unique("API key", [k["key"] for k in raw["api_keys"]])
    workers = tuple(
        {"id": w["id"], "name": w["name"], "state": w.get("state", "idle")} for w in raw.get("workers", [])
    )
    worker_ids = {w["id"] for w in workers}
    for group in raw.get("worker_groups", []):
        unknown = set(group.get("workers", [])) - worker_ids
        if unknown:
            raise ConfigError(f"worker group {group['id']} names unknown workers {sorted(unknown)}")
    packages = tuple(raw.get("task_packages", []))
    package_ids = {p["id"] for p in packages}
    assistants = []
    for item in raw.get("assistants", []):
        if item["task"]["package_id"] not in package_ids:
            raise ConfigError(f"assistant {item['id']} names unknown task package")
        runs = tuple(
            AssistantRunSpec(
                id=r["id"],
                state=r["state"],
                error_code=r.get("error_code"),
                started_at=r["started_at"],
                ended_at=r.get("ended_at"),
            )
            for r in item.get("runs", [])
        )
        assistants.append(
            AssistantSpec(
                id=item["id"],
                name=item["name"],
                task_name=item["task"]["name"],
                package_id=item["task"]["package_id"],
                created_at=item.get("created_at"),
                runs=runs,
            )
        )
    hooks = raw.get("webhooks", {})
    return EmulatorConfig(
        organization=dict(raw["organization"]),
        workspace=dict(raw["workspace"]),
        api_keys=tuple(
            ApiKeySpec(
                key=k["key"],
                name=k.get("name", k["key"]),
                permissions=ALL_PERMISSIONS if "*" in k["permissions"] else frozenset(k["permissions"]),
            )
            for k in raw["api_keys"]
        ),
        workers=workers,
        worker_groups=tuple(raw.get("worker_groups", [])),
        processes=processes,
        task_packages=packages,
        assistants=tuple(assistants),
        assets=tuple(raw.get("assets", [])),
        asset_upload_rules=tuple(raw.get("asset_upload_rules", [])),
        speed=float(raw.get("speed", 1.0)),
        asset_processing_seconds=float(timing.get("asset_processing_seconds", 0.1)),
        file_url_ttl_seconds=float(timing.get("file_url_ttl_seconds", 3600.0)),
        webhook_max_attempts=int(hooks.get("max_attempts", 8)),
        webhook_initial_backoff_seconds=float(hooks.get("initial_backoff_seconds", 0.2)),
        webhook_timeout_seconds=float(hooks.get("timeout_seconds", 5.0)),
        raw=raw,
    )


def _process(raw: Mapping[str, Any], start_delay: float, duration: float) -> ProcessSpec:
    item_duration = float(raw.get("item_duration_seconds", duration))
    steps = tuple(
        StepSpec(
            id=s["id"],
            name=s["name"],
            item_duration_seconds=float(s.get("item_duration_seconds", item_duration)),
            artifacts=tuple(ArtifactSpec(a["name"], a["content"]) for a in s.get("artifacts", [])),
        )
        for s in raw["steps"]
    )
    _check_unique(f"step of process {raw['id']}", [s.id for s in steps])
    step_ids = {s.id for s in steps}
    rules = []
    for rule in raw.get("outcome_rules", []):
        step_id = rule.get("step", steps[0].id)
        if step_id not in step_ids:
            raise ConfigError(f"outcome rule of process {raw['id']} names unknown step {step_id}")
        exc = rule["exception"]
        rules.append(
            OutcomeRule(
                step_id=step_id,
                match=dict(rule["match"]),
                failed_attempts=rule.get("failed_attempts"),
                exception=ExceptionSpec(
                    type=exc["type"],
                    code=exc["code"],
                    message=exc["message"],
                    message_from_payload=exc.get("message_from_payload"),
                ),
            )
        )
    outputs = raw.get("outputs", {})
    return ProcessSpec(
        id=raw["id"],
        name=raw["name"],
        created_at=raw.get("created_at"),
        steps=steps,
        start_delay_seconds=float(raw.get("start_delay_seconds", start_delay)),
        default_payload=raw.get("default_payload"),
        rules=tuple(rules),
        outputs=OutputSpec(
            enabled=outputs.get("enabled", True),
            payload=dict(outputs.get("payload", {"processed": True})),
            merge_input=outputs.get("merge_input", True),
            copy_files=outputs.get("copy_files", True),
        ),
    )


def _check_unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ConfigError(f"duplicate {what} id {ident!r}")
        seen.add(ident)
