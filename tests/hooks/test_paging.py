"""``list_*``: lazy iterators that follow ``next`` page by page, and never leave the Control Room origin."""

from __future__ import annotations

import pytest

from airflow_provider_robocorp.exceptions import RobocorpError, RobocorpServerError
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .endpoint_cases import CASES, ROWS, WireCase, expected_path
from .support import KEY, WS, WS_URL

RUNS_URL = f"{WS_URL}process-runs"
PAGE_2 = f"{RUNS_URL}?process_id=p-1&limit=2&cursor=eyJvZmZzZXQiOjJ9"
PAGE_3 = f"{RUNS_URL}?process_id=p-1&limit=2&cursor=eyJvZmZzZXQiOjR9"


def _page(ids: list[str], next_url: str | None, has_more: bool | None = None) -> dict:
    return {"data": [{"id": i} for i in ids], "has_more": bool(next_url) if has_more is None else has_more,
            "next": next_url}


def _register_three_pages(requests_mock) -> None:
    requests_mock.get(RUNS_URL, [
        {"json": _page(["r1", "r2"], PAGE_2)},
        {"json": _page(["r3", "r4"], PAGE_3)},
        {"json": _page(["r5"], None)},
    ])


def test_creating_the_iterator_sends_nothing(hook: RobocorpHook, requests_mock) -> None:
    _register_three_pages(requests_mock)
    runs = hook.list_process_runs(process_id="p-1", limit=2)
    assert requests_mock.call_count == 0
    assert next(runs) == {"id": "r1"}
    assert requests_mock.call_count == 1
    assert next(runs) == {"id": "r2"}
    assert requests_mock.call_count == 1  # the page is used up before the next one is fetched
    assert next(runs) == {"id": "r3"}
    assert requests_mock.call_count == 2


def test_follows_next_until_has_more_is_false(hook: RobocorpHook, requests_mock) -> None:
    _register_three_pages(requests_mock)
    assert [r["id"] for r in hook.list_process_runs(process_id="p-1", limit=2)] == ["r1", "r2", "r3", "r4", "r5"]
    urls = [r.url for r in requests_mock.request_history]
    assert urls == [f"{RUNS_URL}?process_id=p-1&limit=2", PAGE_2, PAGE_3]  # next is used verbatim
    for request in requests_mock.request_history:
        assert request.headers["Authorization"] == f"RC-WSKEY {KEY}"


def test_stops_when_has_more_is_false_even_with_a_next_url(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(RUNS_URL, json=_page(["r1"], PAGE_2, has_more=False))
    assert list(hook.list_process_runs()) == [{"id": "r1"}]
    assert requests_mock.call_count == 1


def test_empty_page_in_the_middle_is_skipped(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(RUNS_URL, [{"json": _page([], PAGE_2)}, {"json": _page(["r9"], None)}])
    assert list(hook.list_process_runs()) == [{"id": "r9"}]
    assert requests_mock.call_count == 2


def test_has_more_without_next_is_an_error(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(RUNS_URL, json=_page(["r1"], None, has_more=True))
    runs = hook.list_process_runs()
    assert next(runs) == {"id": "r1"}
    with pytest.raises(RobocorpError, match="has_more=true but gives no 'next' URL"):
        next(runs)
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example.com/api/v1/workspaces/ws-123/process-runs?cursor=2",
        "https://cloud.robocorp.com.evil.example.com/api/v1/workspaces/ws-123/process-runs",
        "https://cloud.robocorp.com@evil.example.com/api/v1/workspaces/ws-123/process-runs",
        "http://cloud.robocorp.com/api/v1/workspaces/ws-123/process-runs?cursor=2",
        "https://cloud.robocorp.com:8443/api/v1/workspaces/ws-123/process-runs?cursor=2",
        "/api/v1/workspaces/ws-123/process-runs?cursor=2",
    ],
)
def test_next_outside_the_origin_is_refused(hook: RobocorpHook, requests_mock, sleeps, foreign: str) -> None:
    requests_mock.get(RUNS_URL, json=_page(["r1"], foreign))
    trap = requests_mock.get("https://evil.example.com/api/v1/workspaces/ws-123/process-runs", json=_page([], None))
    runs = hook.list_process_runs()
    assert next(runs) == {"id": "r1"}
    with pytest.raises(RobocorpError) as err:
        next(runs)
    assert "refusing to follow a 'next' URL outside https://cloud.robocorp.com" in str(err.value)
    assert KEY not in str(err.value)
    assert requests_mock.call_count == 1
    assert not trap.called


def test_response_without_data_is_an_error(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(RUNS_URL, json={"items": [], "has_more": False})
    with pytest.raises(RobocorpError, match="expected a paginated response with a 'data' list"):
        list(hook.list_process_runs())


def test_error_on_a_later_page_surfaces_after_the_earlier_items(conn, requests_mock, sleeps) -> None:
    requests_mock.get(RUNS_URL, [{"json": _page(["r1"], PAGE_2)}, {"status_code": 500}])
    runs = RobocorpHook(max_retries=1).list_process_runs()
    assert next(runs) == {"id": "r1"}
    with pytest.raises(RobocorpServerError):
        next(runs)
    assert requests_mock.call_count == 3  # page 1, page 2, one retry of page 2


def test_next_page_requests_are_retried_like_the_first(hook, requests_mock, sleeps) -> None:
    requests_mock.get(RUNS_URL, [
        {"json": _page(["r1"], PAGE_2)},
        {"status_code": 429, "headers": {"Retry-After": "4"}},
        {"json": _page(["r2"], None)},
    ])
    assert [r["id"] for r in hook.list_process_runs()] == ["r1", "r2"]
    assert sleeps == [4.0]
    assert requests_mock.request_history[2].url == PAGE_2


LIST_CASES = [c for c in CASES if c.paginated]


@pytest.mark.parametrize("case", LIST_CASES, ids=[c.id for c in LIST_CASES])
def test_every_list_method_is_lazy_and_follows_next(hook: RobocorpHook, requests_mock, case: WireCase) -> None:
    url = "https://cloud.robocorp.com" + expected_path(case, WS)
    next_url = f"{url}?cursor=abc"
    requests_mock.register_uri(ROWS[case.endpoint].method, url, [
        {"json": _page(["a"], next_url)}, {"json": _page(["b"], None)},
    ])
    items = getattr(hook, case.endpoint)(*case.args, **case.kwargs)
    assert requests_mock.call_count == 0
    assert [i["id"] for i in items] == ["a", "b"]
    assert [r.url for r in requests_mock.request_history][1] == next_url


class _TrackedList(list):
    """A page's ``data`` list that can be watched with a weak reference."""


@pytest.mark.parametrize("use_async", [False, True])
def test_a_list_iterator_never_holds_two_pages(hook: RobocorpHook, requests_mock, monkeypatch, use_async) -> None:
    """When page N+1 is fetched, nothing of page N (its dict, its data list) is alive any more."""
    import asyncio
    import gc
    import json
    import weakref

    from airflow_provider_robocorp.hooks import _pipeline

    _register_three_pages(requests_mock)
    alive: list[weakref.ref] = []
    at_fetch: list[int] = []

    def json_of(self: _pipeline.ApiResponse):
        gc.collect()
        at_fetch.append(sum(1 for ref in alive if ref() is not None))  # pages alive while this one parses
        page = json.loads(self.content)
        page["data"] = _TrackedList(page["data"])
        alive.append(weakref.ref(page["data"]))
        return page

    monkeypatch.setattr(_pipeline.ApiResponse, "json", json_of)
    if use_async:
        async def consume() -> list[str]:
            transport = await hook._async_transport()
            try:
                return [i["id"] async for i in transport.paginate(hook._request("list_process_runs"))]
            finally:
                await hook.aclose()

        import httpx
        routes = {RUNS_URL: _page(["r1", "r2"], PAGE_2), PAGE_2: _page(["r3", "r4"], PAGE_3), PAGE_3: _page(["r5"], None)}
        monkeypatch.setattr(httpx.AsyncClient, "request", _fake_async_request(routes))
        ids = asyncio.run(consume())
    else:
        ids = [item["id"] for item in hook.list_process_runs()]
    assert ids == ["r1", "r2", "r3", "r4", "r5"]
    assert at_fetch == [0, 0, 0]


def _fake_async_request(routes: dict):
    import json

    import httpx

    async def request(self, method, url, params=None, content=None, headers=None):
        return httpx.Response(200, content=json.dumps(routes[url]).encode(),
                              headers={"Content-Type": "application/json"})

    return request


def test_page_size_comes_from_the_call_the_hook_or_the_connection(requests_mock, monkeypatch) -> None:
    """No limit is sent unless one is chosen: per call (limit=), per hook (page_size=) or per
    connection (extra page_size); the call's own limit wins."""
    import json

    from airflow_provider_robocorp.exceptions import RobocorpConfigError

    requests_mock.get(RUNS_URL, json=_page(["r1"], None))
    conn = {"conn_type": "robocorp", "login": WS, "password": KEY}
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps(conn))
    list(RobocorpHook().list_process_runs())
    list(RobocorpHook(page_size=250).list_process_runs())
    list(RobocorpHook(page_size=250).list_process_runs(limit=10))
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps({**conn, "extra": {"page_size": 500}}))
    list(RobocorpHook().list_process_runs())
    assert [r.qs.get("limit") for r in requests_mock.request_history] == [None, ["250"], ["10"], ["500"]]
    monkeypatch.setenv("AIRFLOW_CONN_ROBOCORP_DEFAULT", json.dumps({**conn, "extra": {"page_size": 0}}))
    with pytest.raises(RobocorpConfigError, match="extra 'page_size' must be a whole number ≥ 1"):
        list(RobocorpHook().list_process_runs())
    with pytest.raises(RobocorpConfigError, match="limit must be a positive whole number"):
        RobocorpHook(page_size=-1)
