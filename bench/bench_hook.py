"""What the hook's request pipeline costs over a bare HTTP client, measured side by side.

Against the emulator (its own process, on loopback), in one run, alternating rounds:
- Get process: a bare keep-alive ``requests.Session`` vs ``RobocorpHook.get_process`` (validation,
  retry wrapper, error checks, JSON decoding);
- async Get process run: a bare ``httpx.AsyncClient`` vs ``RobocorpHook.aget_process_run``;
- paging: ``list_work_items`` over N items with page size 50 vs the same pages fetched by hand.
Prints requests/second for each and the ratio hook / bare (1.00 = no overhead). Not a test.

    python bench/bench_hook.py [--requests 2000] [--rounds 3] [--items 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_emulator import start_emulator  # noqa: E402

KEY = "emulator-api-key"
WS = "ws-emulator"


def timed(fn: Callable[[], int]) -> float:
    """Operations per second of ``fn`` (which returns how many operations it did)."""
    start = time.perf_counter()
    count = fn()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    proc, api_url = start_emulator()
    try:
        os.environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"] = json.dumps(
            {"conn_type": "robocorp", "login": WS, "password": KEY, "host": api_url}
        )
        import httpx

        from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

        hook = RobocorpHook()
        url = f"{api_url}workspaces/{WS}/processes/proc-invoices"
        session = requests.Session()
        session.headers["Authorization"] = f"RC-WSKEY {KEY}"

        run_id = hook.start_process_run("proc-invoices", payloads=[{"i": i} for i in range(args.items)])["id"]
        list_url = f"{api_url}workspaces/{WS}/work-items"

        def bare_get() -> int:
            for _ in range(args.requests):
                response = session.get(url, timeout=30)
                response.raise_for_status()
                response.json()
            return args.requests

        def hook_get() -> int:
            for _ in range(args.requests):
                hook.get_process("proc-invoices")
            return args.requests

        def bare_pages() -> int:
            count, next_url, params = 0, list_url, {"process_run_id": run_id, "limit": 50}
            while next_url:
                page = session.get(next_url, params=params, timeout=30).json()
                count += len(page["data"])
                next_url, params = (page["next"] if page["has_more"] else None), None
            return count

        def hook_pages() -> int:
            return sum(1 for _ in hook.list_work_items(process_run_id=run_id, limit=50))

        async def bare_async() -> int:
            async with httpx.AsyncClient(headers={"Authorization": f"RC-WSKEY {KEY}"}) as client:
                for _ in range(args.requests):
                    response = await client.get(f"{api_url}workspaces/{WS}/process-runs/{run_id}")
                    response.raise_for_status()
                    response.json()
            return args.requests

        async def hook_async() -> int:
            async_hook = RobocorpHook()
            try:
                for _ in range(args.requests):
                    await async_hook.aget_process_run(run_id)
            finally:
                await async_hook.aclose()
            return args.requests

        results: dict[str, list[float]] = {name: [] for name in
                                           ("bare get", "hook get", "bare async", "hook async",
                                            "bare paging", "hook paging")}
        bare_get(), hook_get()  # warm up connections and code paths
        for _ in range(args.rounds):
            results["bare get"].append(timed(bare_get))
            results["hook get"].append(timed(hook_get))
            results["bare async"].append(timed(lambda: asyncio.run(bare_async())))
            results["hook async"].append(timed(lambda: asyncio.run(hook_async())))
            results["bare paging"].append(timed(bare_pages))
            results["hook paging"].append(timed(hook_pages))

        med = {name: statistics.median(values) for name, values in results.items()}
        print(f"{args.rounds} alternating rounds, medians; emulator in its own process at {api_url}")
        for kind, unit in (("get", "requests/s"), ("async", "requests/s"), ("paging", "items/s")):
            bare, ours = med[f"bare {kind}"], med[f"hook {kind}"]
            print(f"  {kind:7s} bare {bare:9.0f} {unit:11s} hook {ours:9.0f} {unit:11s} ratio hook/bare {ours / bare:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
