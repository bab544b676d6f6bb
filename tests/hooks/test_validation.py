"""Bad arguments are refused locally, with a clear message, before any request is sent."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_robocorp.exceptions import RobocorpConfigError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .endpoint_cases import CALLBACK

Call = Callable[[RobocorpHook], Any]

NOT_JSON: list[tuple[str, Call, str]] = [
    ("create_work_item-set", lambda h: h.create_work_item("p-1", {"tags": {"a", "b"}}), "create_work_item() request body"),
    ("create_work_item-datetime", lambda h: h.create_work_item("p-1", {"at": datetime.datetime(2024, 1, 1)}),
     "create_work_item() request body"),
    ("create_work_item-nan", lambda h: h.create_work_item("p-1", {"amount": float("nan")}),
     "create_work_item() request body"),
    ("create_work_item-decimal", lambda h: h.create_work_item("p-1", {"amount": decimal.Decimal("1.5")}),
     "create_work_item() request body"),
    ("update_work_item_payload-inf", lambda h: h.update_work_item_payload("wi-1", [float("inf")]),
     "update_work_item_payload() request body"),
    ("start_process_run-payloads", lambda h: h.start_process_run("p-1", payloads=[{"ok": 1}, {"when": datetime.date.today()}]),
     "start_process_run(): payloads"),
    ("integration-payload", lambda h: h.start_process_run_for_integration("p-1", {"raw": b"bytes"}),
     "start_process_run_for_integration() request body"),
]


@pytest.mark.parametrize(("call", "what"), [c[1:] for c in NOT_JSON], ids=[c[0] for c in NOT_JSON])
def test_non_json_payloads_are_refused(hook: RobocorpHook, requests_mock, call: Call, what: str) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        call(hook)
    message = str(err.value)
    assert message.startswith(f"{what} is not JSON-serialisable")
    assert "convert dates to ISO strings" in message
    assert requests_mock.call_count == 0


BAD_CHOICES: list[tuple[str, Call, str]] = [
    ("process-run-state", lambda h: h.list_process_runs(state="running"), "list_process_runs(): state='running'"),
    ("work-item-state", lambda h: h.list_work_items(state="open"), "list_work_items(): state='open'"),
    ("work-item-state-async", lambda h: h.alist_work_items(state="DONE"), "list_work_items(): state='DONE'"),
    ("batch-operation", lambda h: h.batch_work_items("purge", ["wi-1"]), "batch_work_items(): operation='purge'"),
    ("webhook-event", lambda h: h.create_webhook("https://x.example/h", ["process_run.failed"], "p-1"),
     "create_webhook(): enabled_events item='process_run.failed'"),
    ("callback-event", lambda h: h.start_process_run("p-1", callback={**CALLBACK, "callback_events": ["finished"]}),
     "start_process_run(): callback event='finished'"),
    ("handshake", lambda h: h.start_process_run_for_integration("p-1", {}, with_handshake="github"),
     "start_process_run_for_integration(): with_handshake='github'"),
]


@pytest.mark.parametrize(("call", "start"), [c[1:] for c in BAD_CHOICES], ids=[c[0] for c in BAD_CHOICES])
def test_bad_enum_values_are_refused(hook: RobocorpHook, requests_mock, call: Call, start: str) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        call(hook)
    message = str(err.value)
    assert message.startswith(start)
    assert "is not valid; use one of:" in message
    assert requests_mock.call_count == 0


def test_enum_messages_list_the_allowed_values(hook: RobocorpHook) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        hook.list_process_runs(state="running")
    assert str(err.value).endswith("use one of: new, in_progress, completed, unresolved, stopping.")
    with pytest.raises(RobocorpConfigError) as err:
        hook.batch_work_items("purge", ["wi-1"])
    assert str(err.value).endswith("use one of: retry, delete, mark_as_done.")


@pytest.mark.parametrize("limit", [0, -1, "10", 2.5, True])
@pytest.mark.parametrize("method", ["list_assets", "list_processes", "list_webhooks", "list_workers"])
def test_bad_limit_is_refused_when_the_iterator_is_created(hook: RobocorpHook, requests_mock, method: str, limit) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        getattr(hook, method)(limit=limit)  # not iterated: validation is eager
    assert str(err.value) == (
        f"{method}(): limit must be a positive whole number (the page size), got {limit!r}."
    )
    assert requests_mock.call_count == 0


EMPTY_IDS: list[tuple[str, Call, str]] = [
    ("get_process-empty", lambda h: h.get_process(""), "'process_id' must be a non-empty string"),
    ("get_process-blank", lambda h: h.get_process("   "), "'process_id' must be a non-empty string"),
    ("get_process-none", lambda h: h.get_process(None), "'process_id' must be a non-empty string, got None"),  # type: ignore[arg-type]
    ("get_process-int", lambda h: h.get_process(42), "'process_id' must be a non-empty string, got 42"),  # type: ignore[arg-type]
    ("get_asset_upload", lambda h: h.get_asset_upload("as-1", ""), "'upload_id' must be a non-empty string"),
    ("remove_worker_from_group", lambda h: h.remove_worker_from_group("g-1", ""), "'worker_id' must be a non-empty"),
    ("list_step_runs", lambda h: h.list_step_runs(""), "process_run_id must be a non-empty string"),
    ("list_step_run_events", lambda h: h.list_step_run_events(""), "'step_run_id' must be a non-empty string"),
    ("list_process_run_outputs", lambda h: h.list_process_run_outputs(None), "process_run_id must be a non-empty"),  # type: ignore[arg-type]
    ("list_work_items-process", lambda h: h.list_work_items(process_id=""), "process_id must be a non-empty string"),
    ("batch-no-ids", lambda h: h.batch_work_items("retry", []), "work_item_ids must be a non-empty list of ids"),
    ("batch-string-ids", lambda h: h.batch_work_items("retry", "wi-1"), "work_item_ids must be a non-empty list"),
    ("batch-blank-id", lambda h: h.batch_work_items("delete", ["wi-1", " "]), "every item of work_item_ids"),
    ("start-empty-ids", lambda h: h.start_process_run("p-1", work_item_ids=[]), "work_item_ids must be a non-empty list"),
    ("start-empty-payloads", lambda h: h.start_process_run("p-1", payloads=[]), "payloads must be a non-empty list"),
    ("start-dict-payloads", lambda h: h.start_process_run("p-1", payloads={"a": 1}), "payloads must be a non-empty list"),  # type: ignore[arg-type]
    ("start-no-process", lambda h: h.start_process_run(""), "'process_id' must be a non-empty string"),
    ("create_asset-name", lambda h: h.create_asset(""), "create_asset(): name must be a non-empty string"),
    ("create_assistant-package", lambda h: h.create_assistant("a", "t", ""), "package_id must be a non-empty"),
    ("create_work_item_file-size", lambda h: h.create_work_item_file("wi-1", "a.txt", -1), "file_size must be a whole"),
    ("create_work_item_file-bool", lambda h: h.create_work_item_file("wi-1", "a.txt", True), "file_size must be a whole"),
    ("create_webhook-url", lambda h: h.create_webhook("not a url", ["process_run.started"], "p-1"),
     "endpoint must be an absolute http(s) URL"),
    ("create_webhook-no-events", lambda h: h.create_webhook("https://x.example/h", [], "p-1"),
     "enabled_events must be a non-empty list"),
    ("stop-reason", lambda h: h.stop_process_run("pr-1", reason=""), "reason must be a non-empty string"),
    ("integration-secret", lambda h: h.start_process_run_for_integration("p-1", {}, hook_secret=""),
     "hook_secret must be a non-empty string"),
    ("asset-upload-data", lambda h: h.create_asset_upload("as-1", "text/plain", data=123), "data must be bytes or str"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("call", "text"), [c[1:] for c in EMPTY_IDS], ids=[c[0] for c in EMPTY_IDS])
def test_empty_ids_and_bad_arguments_are_refused(hook: RobocorpHook, requests_mock, call: Call, text: str) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        call(hook)
    assert text in str(err.value)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("modes", "named"),
    [
        ({"payloads": [{}], "work_item_ids": ["wi-1"]}, "payloads and work_item_ids"),
        ({"work_item_ids": ["wi-1"], "use_input_work_items": True}, "work_item_ids and use_input_work_items"),
        ({"payloads": [{}], "use_input_work_items": True}, "payloads and use_input_work_items"),
        ({"payloads": [{}], "work_item_ids": ["wi-1"], "use_input_work_items": True},
         "payloads and work_item_ids and use_input_work_items"),
    ],
)
def test_two_start_modes_at_once_are_refused(hook: RobocorpHook, requests_mock, modes: dict, named: str) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        hook.start_process_run("p-1", **modes)
    assert str(err.value).startswith(f"start_process_run(): choose one start mode, got {named};")
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("callback", "text"),
    [
        ("https://x.example/cb", "callback must be a dict"),
        ({**CALLBACK, "events": ["started"]}, "unknown callback keys ['events']"),
        ({"url": "ftp://x.example/cb", "secret": "s"}, "callback['url'] must be an absolute http(s) URL"),
        ({"url": "https://x.example/cb"}, "callback['secret'] must be a non-empty string"),
        ({**CALLBACK, "callback_events": []}, "callback['callback_events'] must be a non-empty list"),
        ({**CALLBACK, "callback_events": "completed"}, "callback['callback_events'] must be a non-empty list"),
    ],
)
def test_bad_callbacks_are_refused(hook: RobocorpHook, requests_mock, callback, text: str) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        hook.start_process_run("p-1", callback=callback)
    assert text in str(err.value)
    assert requests_mock.call_count == 0


def test_inline_asset_data_over_the_limit_is_refused(hook: RobocorpHook, requests_mock) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        hook.create_asset_upload("as-1", "application/octet-stream", data=b"\0" * 3_932_160)
    assert "over the API's 5 MB inline limit; use upload_asset()" in str(err.value)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("url", ["http://hooks.example.com/robocorp", "http://10.0.0.5:8080/cb", "http://[fe80::1]/x"])
def test_callback_and_webhook_urls_must_be_https_unless_loopback(hook: RobocorpHook, requests_mock, url) -> None:
    with pytest.raises(RobocorpConfigError, match="uses plain http://"):
        hook.start_process_run("p-1", callback={"url": url, "secret": "s3cret"})
    with pytest.raises(RobocorpConfigError, match="uses plain http://"):
        hook.create_webhook(url, ["process_run.completed"], "p-1")
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("url", ["https://hooks.example.com/robocorp", "http://127.0.0.1:8080/cb", "http://localhost/x",
                                 "http://[::1]:9/x"])
def test_https_and_loopback_callback_urls_are_accepted(url) -> None:
    from airflow_provider_robocorp.hooks.robocorp import build_callback

    assert build_callback({"url": url, "secret": "s3cret"})["url"] == url


@pytest.mark.parametrize(("call", "where"), [
    (lambda h: h.start_process_run("{{ params.proc }}"), "process_id"),
    (lambda h: h.start_process_run("p-1", payloads=[{"n": 1}, {"invoice": "{{ ti.xcom_pull('x') }}"}]),
     r"body.payloads\[1\].invoice"),
    (lambda h: h.start_process_run("p-1", work_item_ids=["{{ task_instance.xcom_pull() }}"]), r"work_item_ids\[0\]"),
    (lambda h: h.create_work_item("p-1", {"customer": {"name": "{% if x %}a{% endif %}"}}), "payload.customer.name"),
    (lambda h: h.create_asset("{{ ds }}-report"), "body.name"),
    (lambda h: h.create_webhook("https://x.example/{{ var.value.path }}", ["process_run.completed"], "p-1"),
     "body.endpoint"),
    (lambda h: h.start_process_run("p-1", callback={"url": "https://x.example/cb", "secret": "{{ conn.x.password }}"}),
     "callback.secret"),
])
def test_unrendered_templates_are_refused_in_creating_calls(hook: RobocorpHook, requests_mock, call, where) -> None:
    with pytest.raises(RobocorpConfigError, match=f"{where} was not rendered") as err:
        call(hook)
    assert "nothing was sent" in str(err.value)
    assert requests_mock.call_count == 0


def test_rendered_values_and_lone_braces_pass(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.post("https://cloud.robocorp.com/api/v1/workspaces/ws-123/processes/p-1/process-runs",
                       json={"id": "r-1"})
    hook.start_process_run("p-1", payloads=[{"text": "a { b } c", "json": "{\"k\": 1}", "braces": "{{"}])
    assert requests_mock.call_count == 1


def test_a_null_payload_update_is_refused_locally(hook: RobocorpHook, requests_mock) -> None:
    with pytest.raises(RobocorpConfigError, match=r"payload=None is not allowed .* pass \{\} for an empty payload"):
        hook.update_work_item_payload("wi-1", None)
    assert requests_mock.call_count == 0
