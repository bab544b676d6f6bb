"""Ids can never change which URL is called: refused locally, before any request, naming the argument."""

from __future__ import annotations

import json

import pytest

from airflow_provider_robocorp.exceptions import RobocorpConfigError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import KEY, WS

BAD_IDS = [".", "..", "a/b", "../x", "a?b", "a#b", "a\\b", "a\nb", "a\x00b", "a\x7fb", "", "  ", None, 7, ["x"]]


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.parametrize(("method", "argument"), [
    ("delete_asset", "asset_id"), ("get_process_run", "process_run_id"), ("stop_process_run", "process_run_id"),
    ("delete_process_run", "process_run_id"), ("get_work_item", "work_item_id"), ("delete_webhook", "webhook_id"),
])
def test_bad_path_ids_are_refused_before_any_request(hook: RobocorpHook, requests_mock, method, argument, bad) -> None:
    with pytest.raises(RobocorpConfigError) as err:
        getattr(hook, method)(bad)
    assert argument in str(err.value) and f"{method}()" in str(err.value)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("bad", [None, "..", "a/b", ""], ids=repr)
def test_a_bad_id_inside_a_list_is_named_by_position(hook: RobocorpHook, requests_mock, bad) -> None:
    with pytest.raises(RobocorpConfigError, match=r"work_item_ids\[1\]"):
        hook.start_process_run("proc-1", work_item_ids=["wi-1", bad])
    with pytest.raises(RobocorpConfigError, match=r"work_item_ids\[1\]"):
        hook.batch_work_items("retry", ["wi-1", bad])
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("workspace", ["..", ".", "ws/x", "ws?x", "ws#x", "ws\\x"])
def test_a_workspace_id_that_would_change_the_url_is_refused(monkeypatch, requests_mock, workspace) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT",
                       json.dumps({"conn_type": "robocorp", "login": workspace, "password": KEY}))
    with pytest.raises(RobocorpConfigError, match="Workspace ID"):
        RobocorpHook().delete_asset("asset-1")
    assert requests_mock.call_count == 0


def test_good_ids_still_work(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.delete(f"https://cloud.robocorp.com/api/v1/workspaces/{WS}/assets/name:report%202024.csv", json={})
    hook.delete_asset("name:report 2024.csv")
    assert requests_mock.call_count == 1


def test_the_batch_operator_never_turns_none_into_an_id(robocorp_conn_env, robocorp_emulator) -> None:
    from airflow_provider_robocorp.operators import WorkItemBatchOperator
    from tests.operators.helpers import context

    op = WorkItemBatchOperator(task_id="b", operation="retry", work_item_ids=["wi-1", None])
    with pytest.raises(RobocorpConfigError, match=r"work_item_ids\[1\]' must be a non-empty string, got None"):
        op.execute(context())
    assert not [r for r in robocorp_emulator.requests_log() if r.get("method") == "POST"]
