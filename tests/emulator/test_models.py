"""The state layer without HTTP: configuration, clock, deterministic catch-up, reset."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_robocorp.emulator.clock import Clock, iso, parse_iso
from airflow_provider_robocorp.emulator.config import (
    ALL_PERMISSIONS,
    ConfigError,
    default_config_path,
    load_config,
)
from airflow_provider_robocorp.emulator.errors import Conflict, NotFound
from airflow_provider_robocorp.emulator.models import EmulatorBackend

BASE = "http://127.0.0.1:1"


@pytest.fixture
def raw_config() -> dict[str, Any]:
    return json.loads(default_config_path().read_text())


@pytest.fixture
def backend() -> Iterator[EmulatorBackend]:
    made = EmulatorBackend(speed=0)
    yield made
    made.close()


def test_default_config_matches_the_contract() -> None:
    config = load_config()
    assert config.workspace_id == "ws-emulator" and config.organization["id"] == "org-emulator"
    keys = {k.key: k.permissions for k in config.api_keys}
    assert keys["emulator-api-key"] == ALL_PERMISSIONS
    assert keys["emulator-readonly-key"] and all(".read_" in p for p in keys["emulator-readonly-key"])
    assert keys["emulator-no-permissions-key"] == frozenset()
    assert config.default_api_key == "emulator-api-key"
    processes = {p.id: p for p in config.processes}
    assert [s.name for s in processes["proc-invoices"].steps] == ["Read invoice", "Book invoice"]
    assert processes["proc-slow"].steps[0].item_duration_seconds == 3600
    assert processes["proc-invoices"].failure_for(0, {"fail": True, "reason": "r"}) == {
        "code": "INVALID_INVOICE",
        "type": "business",
        "message": "r",
    }
    assert processes["proc-invoices"].failure_for(1, {"fail": True}) is None
    assert len(config.workers) == 2 and len(config.worker_groups) == 1


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda c: c.update(surprise=1), "Additional properties"),
        (lambda c: c["api_keys"][0].update(permissions=["Processes.fly"]), "api_keys/0/permissions/0"),
        (lambda c: c["processes"][0]["outcome_rules"][0].update(step="nope"), "unknown step"),
        (lambda c: c["processes"].append(copy.deepcopy(c["processes"][0])), "duplicate process id"),
        (lambda c: c["processes"][0].update(item_duration_seconds=-1), "minimum"),
        (lambda c: c["worker_groups"][0]["workers"].append("ghost"), "unknown workers"),
        (lambda c: c["processes"][0]["outcome_rules"][0]["exception"].update(type="fatal"), "exception/type"),
        (lambda c: c.pop("workspace"), "'workspace' is a required property"),
    ],
)
def test_invalid_configs_are_rejected(raw_config: dict[str, Any], mutate: Any, message: str) -> None:
    mutate(raw_config)
    with pytest.raises(ConfigError, match=message):
        load_config(raw_config)


def test_config_loads_from_a_path(tmp_path: Any, raw_config: dict[str, Any]) -> None:
    raw_config["workspace"]["name"] = "From file"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(raw_config))
    assert load_config(str(path)).workspace["name"] == "From file"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_clock_advances_freezes_and_changes_speed() -> None:
    clock = Clock(speed=0)
    start = clock.now()
    assert clock.now() == start
    assert clock.advance(10) == pytest.approx(start + 10)
    clock.set_speed(1000)
    assert clock.now() >= start + 10
    clock.set_speed(0)
    frozen = clock.now()
    assert clock.now() == frozen
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set_speed(-2)


def test_timestamps_are_iso_8601_with_z() -> None:
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert iso(None) is None
    assert parse_iso("2024-01-15T09:00:00Z") == parse_iso("2024-01-15T10:00:00+01:00")


def timeline(backend: EmulatorBackend, run_id: str) -> list[tuple[Any, ...]]:
    """The run's observable history relative to its start, ids left out."""
    run = backend.state.runs[run_id]
    assert run.started_at is not None and run.ended_at is not None
    items = [backend.state.items[i] for i in run.item_ids]
    steps = [backend.state.step_runs[i] for i in run.step_run_ids]
    return [
        (run.state, run.started_at - run.created_at, run.ended_at - run.created_at),
        *[
            (i.state, i.step_index, round((i.state_updated_at or 0) - run.created_at, 6), i.exception)
            for i in items
        ],
        *[
            (
                s.step_id,
                s.state,
                round((s.started_at or 0) - run.created_at, 6),
                round((s.ended_at or 0) - run.created_at, 6),
                [m.message.split(" ")[0] for m in s.console],
                [e.event_type for e in s.events],
            )
            for s in steps
        ],
    ]


def test_catch_up_is_deterministic_however_often_it_runs() -> None:
    payloads = [{"n": 1}, {"fail": True}, {"n": 3}, {"crash": True}, {"n": 5}]
    results = []
    for step in (100.0, 0.05, 0.37):
        backend = EmulatorBackend(speed=0)
        try:
            run_id = backend.start_process_run(
                "proc-invoices", {"type": "with_payloads", "payloads": payloads}
            )["id"]
            for _ in range(int(10 / step) + 1):
                backend.advance(step)
            results.append(timeline(backend, run_id))
        finally:
            backend.close()
    assert results[0] == results[1] == results[2]
    assert results[0][0][0] == "unresolved"


def test_items_pipeline_through_steps(backend: EmulatorBackend) -> None:
    run_id = backend.start_process_run("proc-invoices", {"type": "with_payloads", "payloads": [1, 2, 3]})[
        "id"
    ]
    backend.advance(10)
    run = backend.state.runs[run_id]
    assert run.state == "completed"
    assert run.duration == pytest.approx(0.3 * 4)  # 3 items, 2 steps, pipelined
    assert [o.payload for o in backend.state.outputs.values()] == [
        {"processed": True, "input": 1},
        {"processed": True, "input": 2},
        {"processed": True, "input": 3},
    ]


def test_reset_returns_to_the_seed(backend: EmulatorBackend) -> None:
    backend.create_asset("extra", BASE)
    backend.start_process_run("proc-report", None)
    backend.delete_worker("worker-emulator-1")
    backend.reset()
    snapshot = backend.snapshot()
    assert [a["name"] for a in snapshot["assets"]] == ["emulator-settings"]
    assert snapshot["process_runs"] == [] and len(snapshot["workers"]) == 2


def test_backend_errors_are_typed(backend: EmulatorBackend) -> None:
    with pytest.raises(NotFound):
        backend.get_process("missing")
    backend.create_asset("a", BASE)
    with pytest.raises(Conflict):
        backend.create_asset("a", BASE)
