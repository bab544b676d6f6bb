"""AssetWatchers at scale: N ProcessRunEventTriggers on one workspace, shared stream vs own polls.

Side by side in one run, against the emulator (its own process, on loopback, 100 ended runs in
the workspace), each variant in a fresh child process (so its memory is its own), alternating:

- ``shared``: N watchers through Airflow 3.3's ``SharedStreamManager``, as the triggerer runs them;
- ``own-poll``: the same N watchers each running its own ``run()`` loop (Airflow 3.1/3.2).

Prints, for a steady window after every watcher took its first look: List process runs calls per
poll interval, CPU per poll interval (the child's process time / intervals), and memory per
watcher (RSS growth / N). Not a test: it prints, it does not assert.

    python bench/bench_watchers.py [--watchers 200] [--rounds 3] [--poll 1] [--window 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_emulator import REPO, start_emulator  # noqa: E402

KEY = {"Authorization": "RC-WSKEY emulator-api-key"}
WS = "ws-emulator"
VARIANTS = ("shared", "own-poll")


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def listings(origin: str) -> int:
    log = requests.get(f"{origin}/_emulator/requests", timeout=30).json()["requests"]
    return sum(1 for r in log if r["method"] == "GET" and r["path"].endswith("/process-runs"))


class Store:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


async def child(variant: str, api_url: str, n: int, poll: float, window: float) -> dict[str, Any]:
    os.environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"] = json.dumps(
        {"conn_type": "robocorp", "host": api_url, "login": WS, "password": KEY["Authorization"]})
    from airflow.triggers.shared_stream import SharedStreamManager

    from airflow_provider_robocorp.triggers.process_run_events import ProcessRunEventTrigger

    origin = api_url.split("/api/")[0]
    rss0 = rss_kib()
    manager = SharedStreamManager()
    triggers = [ProcessRunEventTrigger(process_id=("proc-invoices", "proc-report", None)[i % 3], poll_interval=poll)
                for i in range(n)]
    stores = [Store() for _ in triggers]

    async def watch(i: int) -> None:
        trigger = triggers[i]
        trigger.asset_state_store = stores[i]
        if variant == "shared":
            events = trigger.filter_shared_stream(manager.subscribe(trigger_id=i, trigger=trigger,
                                                                    key=trigger.shared_stream_key()))
        else:
            events = trigger.run()
        async for _ in events:
            pass

    tasks = [asyncio.get_running_loop().create_task(watch(i)) for i in range(n)]
    while not all(s.values for s in stores):
        await asyncio.sleep(0.05)
    await asyncio.sleep(poll)  # past the first looks
    calls0, cpu0, t0 = listings(origin), time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    calls1, cpu1, t1 = listings(origin), time.process_time(), time.monotonic()
    rss1 = rss_kib()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await manager.stop_all()
    intervals = (t1 - t0) / poll
    return {"calls_per_interval": (calls1 - calls0) / intervals, "cpu_ms_per_interval": (cpu1 - cpu0) * 1000 / intervals,
            "kib_per_watcher": (rss1 - rss0) / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.url, args.watchers, args.poll, args.window))))
        return

    emulator, api_url = start_emulator()
    try:
        for _ in range(100):  # a workspace with history: ended runs on the first page
            answer = requests.post(f"{api_url}workspaces/{WS}/processes/proc-report/process-runs", headers=KEY,
                                   json={"type": "with_payloads", "payloads": [{}]}, timeout=30)
            answer.raise_for_status()
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        for round_no in range(args.rounds):
            for variant in VARIANTS if round_no % 2 == 0 else VARIANTS[::-1]:
                out = subprocess.run([sys.executable, __file__, "--child", variant, "--url", api_url,
                                      "--watchers", str(args.watchers), "--poll", str(args.poll),
                                      "--window", str(args.window)], env=env, capture_output=True, text=True,
                                     timeout=600)
                if out.returncode:
                    raise RuntimeError(out.stderr[-3000:])
                results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{args.watchers} watchers on one workspace, poll interval {args.poll:g} s, "
              f"{args.rounds} rounds (medians):")
        print(f"{'variant':<10} {'list calls / interval':>22} {'CPU ms / interval':>18} {'KiB / watcher':>14}")
        med = {v: {k: statistics.median(r[k] for r in results[v]) for k in results[v][0]} for v in VARIANTS}
        for variant in VARIANTS:
            m = med[variant]
            print(f"{variant:<10} {m['calls_per_interval']:>22.2f} {m['cpu_ms_per_interval']:>18.1f} "
                  f"{m['kib_per_watcher']:>14.1f}")
        shared, own = med["shared"], med["own-poll"]
        print(f"shared / own-poll: list calls {shared['calls_per_interval'] / own['calls_per_interval']:.3f}x, "
              f"CPU {shared['cpu_ms_per_interval'] / own['cpu_ms_per_interval']:.3f}x")
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


if __name__ == "__main__":
    main()
