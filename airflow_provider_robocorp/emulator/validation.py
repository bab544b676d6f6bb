"""JSON schemas of the request bodies, written from the API document; failures are 400s."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .errors import BadRequest

_STRING = {"type": "string"}
_NAME = {"type": "object", "required": ["name"], "properties": {"name": _STRING}}
_REF = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "minLength": 1}}}
_CALLBACK = {
    "type": "object",
    "required": ["url", "secret", "callback_events"],
    "additionalProperties": False,
    "properties": {
        "url": {"type": "string", "pattern": "^https?://"},
        "secret": _STRING,
        "callback_events": {"type": "array", "items": {"enum": ["started", "completed", "unresolved"]}},
    },
}

REQUEST_SCHEMAS: dict[str, dict[str, Any]] = {
    "create_asset": _NAME,
    "create_asset_upload": {
        "type": "object",
        "required": ["content_type"],
        "properties": {"content_type": _STRING, "data": _STRING},
    },
    "create_assistant": {
        "type": "object",
        "required": ["name", "task"],
        "properties": {
            "name": _STRING,
            "task": {
                "type": "object",
                "required": ["name", "package_id"],
                "properties": {"name": _STRING, "package_id": _STRING},
            },
        },
    },
    "start_process_run": {  # unknown fields are ignored, as on every other endpoint
        "type": ["object", "null"],
        "properties": {
            "type": {"enum": ["with_payloads", "with_work_item_ids", "with_inputs"]},
            "payloads": {"type": "array"},
            "work_item_ids": {"type": "array", "items": _STRING},
            "callback": _CALLBACK,
        },
        "allOf": [
            {
                "if": {"properties": {"type": {"const": "with_payloads"}}, "required": ["type"]},
                "then": {"required": ["payloads"]},
            },
            {
                "if": {"properties": {"type": {"const": "with_work_item_ids"}}, "required": ["type"]},
                "then": {"required": ["work_item_ids"]},
            },
            {
                "if": {"required": ["payloads"]},
                "then": {"required": ["type"], "properties": {"type": {"const": "with_payloads"}}},
            },
            {
                "if": {"required": ["work_item_ids"]},
                "then": {"required": ["type"], "properties": {"type": {"const": "with_work_item_ids"}}},
            },
        ],
    },
    "stop_process_run": {
        "type": "object",
        "required": ["set_remaining_work_items_as_done", "terminate_ongoing_activity_runs"],
        "properties": {
            "set_remaining_work_items_as_done": {"type": "boolean"},
            "terminate_ongoing_activity_runs": {"type": "boolean"},
            "reason": _STRING,
        },
    },
    "create_work_item": {
        "type": "object",
        "required": ["process", "payload"],  # the document: ``payload: JSON | null``
        "properties": {"process": _REF, "payload": {}},
    },
    "create_work_item_file": {
        "type": "object",
        "required": ["file_name", "file_size"],
        "properties": {
            "file_name": {"type": "string", "minLength": 1},
            "file_size": {"type": "integer", "minimum": 0},
        },
    },
    "update_work_item_payload": {  # the document: ``payload: JSON`` (no null)
        "type": "object",
        "required": ["payload"],
        "properties": {"payload": {"not": {"type": "null"}}},
    },
    "batch_work_items": {
        "type": "object",
        "required": ["batch_operation", "work_item_ids"],
        "properties": {
            "batch_operation": {"enum": ["retry", "delete", "mark_as_done"]},
            "work_item_ids": {"type": "array", "minItems": 1, "items": _STRING},
        },
    },
    "create_task_package": {
        "type": "object",
        "required": ["name", "type"],
        "properties": {"name": _STRING, "type": {"const": "zip"}},
    },
    "create_webhook": {
        "type": "object",
        "required": ["endpoint", "enabled_events", "process"],
        "properties": {
            "endpoint": _STRING,
            "enabled_events": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": ["process_run.started", "process_run.completed", "process_run.unresolved"]},
            },
            "process": _REF,
        },
    },
    "update_worker": _NAME,
    "create_worker_group": _NAME,
    "update_worker_group": _NAME,
    "add_worker_to_group": {"type": "object", "required": ["worker"], "properties": {"worker": _REF}},
}


@cache
def _validator(name: str) -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(REQUEST_SCHEMAS[name])


def parse_json(raw: bytes, *, allow_empty: bool = False) -> Any:
    """Decode a JSON request body (400 when it is not JSON)."""
    if not raw.strip():
        if allow_empty:
            return None
        raise BadRequest("A JSON request body is required")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:  # also a 5,000-digit integer (Python's int limit)
        raise BadRequest(f"The request body is not valid JSON: {str(exc)[:200]}") from None
    _check_json_value(value)
    return value


#: Deepest nesting a request body may have (the API's documents are a few levels deep).
MAX_JSON_DEPTH = 64


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_json_value(value: Any) -> None:
    """No lone UTF-16 surrogates (they could be stored, but never sent back as UTF-8) and no
    nesting deeper than :data:`MAX_JSON_DEPTH`; iterative, so no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                raise BadRequest("The request body holds a lone UTF-16 surrogate (not valid Unicode text)")
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def validate(name: str, body: Any) -> Any:
    """Check ``body`` against the request schema ``name``; returns it."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator(name).iter_errors(body))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise BadRequest(f"Invalid request body{' at ' + where if where else ''}: {error.message}")
    return body
