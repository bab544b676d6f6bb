"""Response validation against ``openapi-2023-10.json`` where it agrees with the API document.

The spec is OpenAPI 3.0: ``nullable`` becomes a JSON-schema type union, the non-standard deep
``$ref``s (``#/components/schemas/paginationDetails/properties/next``) are resolved by
inlining, and the unknown ``format: url`` is dropped, so a strict validator accepts it.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

REFERENCE_DIR = Path(
    os.environ.get("ROBOCORP_API_REFERENCE", Path(__file__).resolve().parents[1] / "reference")
)
SPEC_PATH = REFERENCE_DIR / "openapi-2023-10.json"

# Where the 2023 spec has another method or path but the same response (reference/README.md).
ALIASES = {
    ("POST", "/workspaces/{workspace_id}/work-items/{work_item_id}/payload"): (
        "PUT",
        "/workspaces/{workspace_id}/work-items/{work_item_id}/payload",
    ),
    ("GET", "/workspaces/{workspace_id}/outputs"): (
        "GET",
        "/workspaces/{workspace_id}/process-runs/{process_run_id}/outputs",
    ),
    ("POST", "/workspaces/{workspace_id}/workers/{worker_id}"): (
        "PUT",
        "/workspaces/{workspace_id}/workers/{worker_id}",
    ),
    ("POST", "/workspaces/{workspace_id}/worker-groups/{worker_group_id}"): (
        "PUT",
        "/workspaces/{workspace_id}/worker-groups/{worker_group_id}",
    ),
    ("POST", "/workspaces/{workspace_id}/worker-groups/{worker_group_id}/workers"): (
        "PUT",
        "/workspaces/{workspace_id}/worker-groups/{worker_group_id}/workers",
    ),
}
# Where the spec's answer differs from the text (or the spec lacks the operation): not compared.
DIFFERS = {
    ("POST", "/workspaces/{workspace_id}/work-items/{work_item_id}/files"),
    ("GET", "/workspaces/{workspace_id}/task-packages/{task_package_id}"),
}


def available() -> bool:
    return SPEC_PATH.is_file()


@cache
def _spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _resolve_pointer(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _convert(node: Any, document: dict[str, Any], depth: int = 0) -> Any:
    """Inline ``$ref``s and translate OpenAPI 3.0 keywords to JSON Schema 2020-12."""
    if depth > 50:
        raise RecursionError("reference cycle in the spec")
    if isinstance(node, list):
        return [_convert(item, document, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _convert(_resolve_pointer(document, node["$ref"]), document, depth + 1)
        siblings = {k: v for k, v in node.items() if k not in ("$ref", "type")}
        if siblings.get("nullable"):
            return {"anyOf": [target, {"type": "null"}]}
        return target
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("nullable", "description", "example") or (key == "format" and value == "url"):
            continue
        out[key] = _convert(value, document, depth + 1)
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "oneOf" in out or "allOf" in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def response_validator(method: str, path: str, status: str = "200") -> Any | None:
    """A validator for the spec's response of ``method path``; ``None`` when not comparable."""
    if (method, path) in DIFFERS:
        return None
    method, path = ALIASES.get((method, path), (method, path))
    operation = _spec()["paths"].get(path, {}).get(method.lower())
    if operation is None:
        return None
    response = operation["responses"].get(status)
    if response is None or "content" not in response:
        return None
    schema = _convert(response["content"]["application/json"]["schema"], _spec())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check(method: str, path: str, body: Any, status: int = 200) -> bool:
    """Validate ``body`` if the spec has a comparable schema; returns whether it did."""
    found = response_validator(method, path, str(status))
    if found is None:
        return False
    found.validate(body)
    return True
