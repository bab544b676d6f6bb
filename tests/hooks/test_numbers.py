"""NaN and infinity are refused for every interval, timeout and deadline, before anything starts."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from airflow_provider_robocorp.exceptions import RobocorpConfigError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .support import KEY, WS

NOT_FINITE = [math.nan, math.inf, -math.inf, float("nan"), timedelta.max * 0 + timedelta(seconds=-1), 0, -1, "5", True]


@pytest.mark.parametrize("bad", NOT_FINITE, ids=repr)
def test_operator_and_sensor_intervals_and_timeouts(bad) -> None:
    from airflow_provider_robocorp.operators import AssetUploadOperator, StartProcessRunOperator
    from airflow_provider_robocorp.sensors import ProcessRunSensor

    for build in (
        lambda: StartProcessRunOperator(task_id="t", process_id="p", poll_interval=bad),
        lambda: StartProcessRunOperator(task_id="t", process_id="p", timeout=bad),
        lambda: AssetUploadOperator(task_id="t", asset_name="a", data="x", poll_interval=bad),
        lambda: AssetUploadOperator(task_id="t", asset_name="a", data="x", timeout=bad),
        lambda: ProcessRunSensor(task_id="s", process_run_id="r", timeout=bad),
    ):
        with pytest.raises((RobocorpConfigError, TypeError, ValueError), match="finite|poke_interval|timeout|must"):
            build()


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=repr)
def test_a_nan_sensor_poke_interval_is_refused(bad) -> None:
    from airflow_provider_robocorp.sensors import ProcessRunSensor

    with pytest.raises((RobocorpConfigError, ValueError, TypeError)):
        ProcessRunSensor(task_id="s", process_run_id="r", poke_interval=bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0, -2], ids=repr)
def test_hook_waits_refuse_them_before_any_request(hook: RobocorpHook, requests_mock, bad) -> None:
    with pytest.raises(RobocorpConfigError, match="poll_interval must be a finite, positive number"):
        hook.wait_for_process_run("run-1", poll_interval=bad)
    with pytest.raises(RobocorpConfigError, match="timeout must be a finite, positive number"):
        hook.wait_for_process_run("run-1", timeout=bad)
    with pytest.raises(RobocorpConfigError, match="poll_interval must be a finite, positive number"):
        hook.upload_asset("report", data=b"x", poll_interval=bad)
    assert requests_mock.call_count == 0


def test_a_nan_deadline_is_refused(hook: RobocorpHook, requests_mock) -> None:
    with pytest.raises(RobocorpConfigError, match="deadline must be a finite"):
        hook.wait_for_process_run("run-1", deadline=math.nan)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "Infinity"])
def test_connection_timeout_extra(monkeypatch, requests_mock, bad) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT",
                       json.dumps({"conn_type": "robocorp", "login": WS, "password": KEY, "extra": {"timeout": bad}}))
    with pytest.raises(RobocorpConfigError, match="extra 'timeout' must be a finite, positive number"):
        RobocorpHook().get_workspace()
    with pytest.raises(RobocorpConfigError, match="'timeout' must be a finite, positive number"):
        RobocorpHook(timeout=math.nan).settings  # noqa: B018
    assert requests_mock.call_count == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=repr)
def test_trigger_refuses_them(bad) -> None:
    from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

    with pytest.raises(RobocorpConfigError, match="poll_interval"):
        ProcessRunTrigger("run-1", poll_interval=bad)
    with pytest.raises(RobocorpConfigError, match="deadline"):
        ProcessRunTrigger("run-1", deadline=bad)
