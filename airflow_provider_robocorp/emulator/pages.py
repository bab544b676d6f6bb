"""A small read-only HTML page at the run URL the emulator hands out (the "Control Room" link).

``/organizations/{org}/workspaces/{ws}/processes/{process}/runs/{run}`` shows the run's state
and times, its step runs with their console messages, and its work items with their exceptions,
so a developer who clicks the link of a run on the local emulator sees the run. No auth (like the
pre-signed file routes it is for a local browser); everything shown is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .errors import ApiError

_PAGE = 1000
_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;width:100%}"
    "td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}"
    ".completed,.done{color:#176c2c}.unresolved,.failed{color:#a11}pre{white-space:pre-wrap;margin:0}"
)


def _cell(value: Any) -> str:
    return f"<td>{escape('' if value is None else str(value))}</td>"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}"
            "<p><small>Robocorp Control Room emulator: a read-only view of emulated state.</small></p>"
            "</body></html>")
    return HTMLResponse(html, status_code=status)


async def run_page(request: Request) -> Response:
    backend = request.app.state.backend
    params = request.path_params
    if params["workspace_id"] != backend.config.workspace_id:
        return _page("Not found", f"<h1>No workspace {escape(params['workspace_id'])}</h1>", 404)
    try:
        run = backend.get_process_run(params["process_run_id"])
        step_runs, _ = backend.list_step_runs(run["id"], 0, _PAGE)
        items, _ = backend.list_work_items(None, run["id"], None, 0, _PAGE)
        consoles = {s["id"]: backend.list_step_run_console_messages(s["id"], 0, _PAGE)[0] for s in step_runs}
    except ApiError as err:
        return _page("Not found", f"<h1>{escape(str(err))}</h1>", 404)
    state = str(run.get("state"))
    rows = "".join(
        f"<tr>{_cell(i.get('id'))}<td class='{escape(str(i.get('state')))}'>{escape(str(i.get('state')))}</td>"
        f"{_cell((i.get('exception') or {}).get('type'))}{_cell((i.get('exception') or {}).get('code'))}"
        f"{_cell((i.get('exception') or {}).get('message'))}</tr>"
        for i in items
    )
    steps = "".join(
        f"<h3>{escape(str((s.get('step') or {}).get('name') or s.get('id')))} "
        f"<small>({escape(str(s.get('id')))}, {escape(str(s.get('state')))})</small></h3>"
        + ("<pre>" + "\n".join(escape(f"{m.get('timestamp')}  {m.get('message')}") for m in consoles[s["id"]])
           + "</pre>" if consoles[s["id"]] else "<p>No console messages.</p>")
        for s in step_runs
    )
    body = (
        f"<h1>Process run {escape(str(run.get('id')))}</h1>"
        f"<p>Process <b>{escape(str((run.get('process') or {}).get('name') or params['process_id']))}</b> · "
        f"state <b class='{escape(state)}'>{escape(state)}</b> · started {escape(str(run.get('started_at')))}"
        f" · ended {escape(str(run.get('ended_at') or '—'))}</p>"
        f"<h2>Work items ({len(items)})</h2><table><tr><th>id</th><th>state</th><th>exception type</th>"
        f"<th>code</th><th>message</th></tr>{rows}</table>"
        f"<h2>Step runs ({len(step_runs)})</h2>{steps or '<p>None yet.</p>'}"
    )
    return _page(f"Process run {run.get('id')}", body)


def page_routes() -> list[Route]:
    return [Route(
        "/organizations/{organization_id}/workspaces/{workspace_id}/processes/{process_id}/runs/{process_run_id}",
        run_page, methods=["GET"],
    )]
