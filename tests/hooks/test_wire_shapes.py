"""Every endpoint's wire shape: method, full URL, query string, JSON body and headers."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from airflow_provider_robocorp import __version__
from airflow_provider_robocorp.hooks._endpoints import ENDPOINTS
from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

from .endpoint_cases import CASES, NO_BODY, ROWS, WireCase, call, expected_path
from .support import CLOUD, KEY, WS, WS_URL

LIST_PAGE = {"data": [{"id": "item-1"}, {"id": "item-2"}], "has_more": False, "next": None}
ANSWER = {"id": "answer-1", "state": "completed"}


def _assert_common_headers(request, case: WireCase) -> None:
    headers = request.headers
    if case.auth:
        assert headers["Authorization"] == f"RC-WSKEY {KEY}"
    else:
        assert "Authorization" not in headers
    assert headers["User-Agent"].startswith(f"airflow-provider-robocorp/{__version__} ")
    assert headers["Accept"] == "application/json"
    for name, value in case.headers.items():
        assert headers[name] == value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_wire_shape(case: WireCase, hook: RobocorpHook, requests_mock) -> None:
    row = ROWS[case.endpoint]
    url = "https://cloud.robocorp.com" + expected_path(case, WS)
    answer = LIST_PAGE if case.paginated else ANSWER
    requests_mock.register_uri(row.method, url, json=answer)

    result = call(hook, case)

    assert result == (LIST_PAGE["data"] if case.paginated else ANSWER)
    assert requests_mock.call_count == 1
    request = requests_mock.last_request
    assert request.method == row.method
    sent = urlsplit(request.url)
    assert f"{sent.scheme}://{sent.netloc}{sent.path}" == url
    query = parse_qsl(sent.query, keep_blank_values=True)
    assert len(query) == len(dict(query)), "a query parameter was sent twice"
    assert dict(query) == case.query
    _assert_common_headers(request, case)
    if case.body is NO_BODY:
        assert request.body in (None, b"")
        assert "Content-Type" not in request.headers
    else:
        assert request.headers["Content-Type"] == "application/json"
        assert isinstance(request.body, bytes)
        assert json.loads(request.body) == case.body


def test_cases_cover_every_endpoint_of_the_reference() -> None:
    assert len(ROWS) == 51
    assert {case.endpoint for case in CASES} == set(ROWS)


def test_every_reference_method_exists_on_the_hook() -> None:
    missing = [name for name in ROWS if not callable(getattr(RobocorpHook, name, None))]
    assert missing == []


def test_hook_signatures_match_the_reference() -> None:
    """Argument names (and the literal defaults) written in the tsv's hook-method column."""
    problems = []
    for name, row in ROWS.items():
        params = inspect.signature(getattr(RobocorpHook, name)).parameters
        for part in filter(None, (p.strip() for p in row.signature.split(","))):
            if part == "...":
                continue
            arg, _, default = part.partition("=")
            if arg not in params:
                problems.append(f"{name}: no argument {arg!r}")
            elif default and default != "...":
                if params[arg].default != eval(default):  # None / False literals from the tsv
                    problems.append(f"{name}: {arg} defaults to {params[arg].default!r}, tsv says {default}")
            elif not default and params[arg].default is not inspect.Parameter.empty:
                problems.append(f"{name}: {arg} should be required")
    assert problems == []


def test_provider_endpoint_table_matches_the_reference() -> None:
    """Method, path, permission and title in ``_endpoints.ENDPOINTS`` equal the tsv (403 hints use them)."""
    assert set(ENDPOINTS) == set(ROWS)
    for name, row in ROWS.items():
        ep = ENDPOINTS[name]
        assert (ep.method, "/" + ep.path, ep.permission, ep.title) == (row.method, row.path, row.permission, row.title)


def test_user_agent_carries_the_distribution_version(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(WS_URL.rstrip("/"), json={"id": WS})
    hook.get_workspace()
    assert __version__ == importlib.metadata.version("airflow-provider-robocorp")
    assert f"airflow-provider-robocorp/{__version__}" in requests_mock.last_request.headers["User-Agent"]


def test_list_methods_return_iterators(hook: RobocorpHook, requests_mock) -> None:
    result = hook.list_processes()
    assert isinstance(result, Iterator)
    assert not isinstance(result, list)
    assert requests_mock.call_count == 0


def test_ids_are_percent_encoded_but_name_colon_is_kept(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(f"{WS_URL}assets/name:Q1%20report%2Ffinal%3F", json=ANSWER)
    hook.get_asset("name:Q1 report/final?")
    sent = urlsplit(requests_mock.last_request.url)
    assert f"{sent.scheme}://{sent.netloc}" + sent.path == f"{CLOUD}workspaces/{WS}/assets/name:Q1%20report%2Ffinal%3F"
    assert sent.query == ""


def test_path_traversal_in_an_id_is_refused_and_an_asset_name_stays_inside_its_segment(
    hook: RobocorpHook, requests_mock
) -> None:
    from airflow_provider_robocorp.exceptions import RobocorpConfigError

    with pytest.raises(RobocorpConfigError, match="would change which URL is called"):
        hook.get_process("../../workspaces/other")
    assert requests_mock.call_count == 0
    requests_mock.get(f"{WS_URL}assets/name:..%2F..%2Fother", json=ANSWER)
    hook.get_asset("name:../../other")  # an asset's name may hold anything: percent-encoded
    assert urlsplit(requests_mock.last_request.url).path == f"/api/v1/workspaces/{WS}/assets/name:..%2F..%2Fother"


def test_one_session_is_reused_across_calls(hook: RobocorpHook, requests_mock) -> None:
    requests_mock.get(f"{WS_URL}processes/p-1", json=ANSWER)
    hook.get_process("p-1")
    session = hook._transport.session
    hook.get_process("p-1")
    assert hook._transport.session is session
    assert requests_mock.call_count == 2
