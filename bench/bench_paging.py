"""Peak memory of listing many work items: the hook's lazy iterator vs a raw paging loop.

Against the emulator (its own process), a run of ``--items`` work items is listed page by page
with each ``--page-sizes``: by ``RobocorpHook.list_work_items(limit=...)`` and by a raw
``requests`` loop that drops a page before fetching the next (the floor). Peak Python memory is
measured with ``tracemalloc`` and shown relative to one page's parsed JSON (1.0 = one page held,
parsing included), with the ratio hook / raw. Rounds alternate. Not a test.

    python bench/bench_paging.py [--items 50000] [--page-sizes 100,1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_emulator import start_emulator  # noqa: E402

KEY = "emulator-api-key"
WS = "ws-emulator"


def peak_bytes(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--page-sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    proc, api_url = start_emulator()
    try:
        os.environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"] = json.dumps(
            {"conn_type": "robocorp", "login": WS, "password": KEY, "host": api_url}
        )
        from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

        hook = RobocorpHook()
        session = requests.Session()
        session.headers["Authorization"] = f"RC-WSKEY {KEY}"
        payloads = [{"invoice": f"INV-{i:06d}", "amount": i * 1.25, "customer": f"customer {i % 977}",
                     "lines": [{"sku": f"SKU-{i % 50}", "qty": i % 7 + 1}]} for i in range(args.items)]
        run_id = hook.start_process_run("proc-slow", payloads=payloads)["id"]
        list_url = f"{api_url}workspaces/{WS}/work-items"
        print(f"{args.items} work items, {args.rounds} alternating rounds (medians of tracemalloc peaks)")
        for page_size in (int(p) for p in args.page_sizes.split(",")):
            params = {"process_run_id": run_id, "limit": page_size}

            def one_page(params: dict[str, object] = params) -> object:
                return session.get(list_url, params=params, timeout=60).json()

            def raw(params: dict[str, object] = params) -> int:
                count, next_url, query = 0, list_url, dict(params)
                while next_url:
                    page = session.get(next_url, params=query, timeout=60).json()
                    count += len(page["data"])
                    next_url, query = (page["next"] if page["has_more"] else None), None
                    del page  # drop it before the next one is fetched
                return count

            def ours(page_size: int = page_size) -> int:
                return sum(1 for _ in hook.list_work_items(process_run_id=run_id, limit=page_size))

            assert raw() == ours() == args.items
            pages, raws, hooks = [], [], []
            for _ in range(args.rounds):
                pages.append(peak_bytes(one_page))
                raws.append(peak_bytes(raw))
                hooks.append(peak_bytes(ours))
            page, r, h = statistics.median(pages), statistics.median(raws), statistics.median(hooks)
            print(f"  page size {page_size:5d}: one page {page / 1024:8.0f} KiB   raw loop {r / page:4.2f}x   "
                  f"hook {h / page:4.2f}x   ratio hook/raw {h / r:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
