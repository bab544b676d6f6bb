"""The run page behind the "Control Room" link of a run on the emulator: read-only HTML."""

from __future__ import annotations

from typing import Any

import requests

from .conftest import Api, run_to_end, start_run


def test_the_run_url_shows_state_work_items_with_exceptions_and_console(api: Api, emu: Any) -> None:
    run_id = start_run(api, "proc-invoices", {"type": "with_payloads", "payloads": [
        {"invoice": "ok"}, {"fail": True, "reason": "<script>alert(1)</script> bad total"}]})
    run_to_end(api, emu, run_id)
    url = f"{emu.url}/organizations/org-emulator/workspaces/{emu.workspace_id}/processes/proc-invoices/runs/{run_id}"

    page = requests.get(url, timeout=10)

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert f"Process run {run_id}" in html and "unresolved" in html and "Process invoices" in html
    assert "INVALID_INVOICE" in html and "business" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; bad total" in html and "<script>" not in html
    assert "Read invoice" in html and "Book invoice" in html


def test_an_unknown_run_is_an_html_404(emu: Any) -> None:
    page = requests.get(f"{emu.url}/organizations/o/workspaces/{emu.workspace_id}/processes/p/runs/nope", timeout=10)
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    other = requests.get(f"{emu.url}/organizations/o/workspaces/other-ws/processes/p/runs/x", timeout=10)
    assert other.status_code == 404
