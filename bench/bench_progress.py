"""What progress lines cost while a ProcessRunTrigger waits, and whether they delay the outcome.

Against the emulator (its own process), in one run:

1. requests per status poll while a run of ``--items`` work items is in progress (floor: 1.0,
   the status poll alone), with the default counting cadence and with the time floor off
   (``count_every=0``: only the request budget limits counting, the worst case);
2. how long after a run ends its completion is seen, for a run of ``--big-items`` work items with
   ``--rtt`` seconds added to every answer (the emulator's latency fault) and a poll every
   ``--poll`` seconds: the trigger (which counts work items beside its polls) and a bare httpx
   loop watch the same run; the emulator's clock is moved on to end it at a random moment of the
   poll cycle. The floor is ``poll + RTT``. Not a test: it prints, it does not assert.

    python bench/bench_progress.py [--items 1000] [--window 30] [--big-items 5000] [--rtt 0.05] [--trials 5]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_emulator import start_emulator  # noqa: E402

KEY = "emulator-api-key"
WS = "ws-emulator"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--progress-poll", type=float, default=0.25)
    parser.add_argument("--big-items", type=int, default=5000)
    parser.add_argument("--rtt", type=float, default=0.05)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    proc, api_url = start_emulator()
    control = api_url.split("/api/v1/")[0] + "/_emulator"
    try:
        os.environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"] = json.dumps(
            {"conn_type": "robocorp", "login": WS, "password": KEY, "host": api_url}
        )
        import httpx

        from airflow_provider_robocorp.hooks import _runs, _transport
        from airflow_provider_robocorp.triggers import process_run as trigger_module
        from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

        session = requests.Session()
        session.headers["Authorization"] = f"RC-WSKEY {KEY}"
        sent: Counter[str] = Counter()
        original = _transport.AsyncTransport._send_once

        async def counting(self: Any, request: Any) -> Any:
            sent["list" if request.path.endswith("/work-items") else "status"] += 1
            return await original(self, request)

        _transport.AsyncTransport._send_once = counting  # type: ignore[method-assign]

        def start(process: str, items: int) -> str:
            url = f"{api_url}workspaces/{WS}/processes/{process}/process-runs"
            body = {"type": "with_payloads", "payloads": [{"n": i} for i in range(items)]}
            return str(session.post(url, json=body, timeout=120).json()["id"])

        async def drive(trigger: ProcessRunTrigger) -> dict[str, Any]:
            async for event in trigger.run():
                return dict(event.payload)
            raise RuntimeError("no event")

        # 1. requests per poll while a big run is in progress
        print(f"1. requests per status poll, one trigger, run of {args.items} work items in progress, "
              f"poll every {args.progress_poll:g} s for {args.window:g} s")
        for label, count_every in (("default cadence (count_every 60 s)", None), ("time floor off (count_every 0)", 0.0)):
            run_id = start("proc-slow", args.items)
            trigger_module.ProgressTracker = (  # type: ignore[attr-defined]
                _runs.ProgressTracker if count_every is None
                else functools.partial(_runs.ProgressTracker, count_every=count_every)
            )
            sent.clear()

            async def watch(run_id: str = run_id) -> None:
                task = asyncio.ensure_future(drive(ProcessRunTrigger(run_id, poll_interval=args.progress_poll)))
                await asyncio.sleep(args.window)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

            asyncio.run(watch())
            trigger_module.ProgressTracker = _runs.ProgressTracker  # type: ignore[attr-defined]
            total = sent["status"] + sent["list"]
            print(f"   {label:36s} {sent['status']:4d} polls, {sent['list']:3d} list calls: "
                  f"{total / sent['status']:.2f} requests per poll (floor 1.00, goal <= 1.2)")

        # 2. completion seen after the run ends
        session.post(f"{control}/faults", json={"kind": "latency", "delay_seconds": args.rtt}, timeout=30)
        seen: dict[str, list[float]] = {"trigger": [], "bare loop": []}
        rng = random.Random(7)
        for _ in range(args.trials):
            run_id = start("proc-invoices", args.big_items)

            async def trial(run_id: str = run_id) -> None:
                ended: list[float] = []

                async def bare() -> float:
                    async with httpx.AsyncClient(headers={"Authorization": f"RC-WSKEY {KEY}"}) as client:
                        while True:
                            state = (await client.get(f"{api_url}workspaces/{WS}/process-runs/{run_id}")).json()["state"]
                            if state in ("completed", "unresolved"):
                                return time.monotonic()
                            await asyncio.sleep(args.poll)

                async def ours() -> float:
                    await drive(ProcessRunTrigger(run_id, poll_interval=args.poll))
                    return time.monotonic()

                tasks = [asyncio.ensure_future(ours()), asyncio.ensure_future(bare())]
                await asyncio.sleep(3 * args.poll + rng.random() * args.poll)  # in progress, counting
                async with httpx.AsyncClient() as client:
                    await client.post(f"{control}/time/advance", json={"seconds": 10 * args.big_items})
                ended.append(time.monotonic())
                trigger_at, bare_at = await asyncio.gather(*tasks)
                seen["trigger"].append(trigger_at - ended[0])
                seen["bare loop"].append(bare_at - ended[0])

            asyncio.run(trial())
        session.delete(f"{control}/faults", timeout=30)
        print(f"2. completion seen after the run ended: {args.big_items} work items, {args.rtt * 1000:g} ms added "
              f"to every answer, poll every {args.poll:g} s, {args.trials} trials (floor poll + RTT = "
              f"{args.poll + args.rtt:.2f} s, goal <= poll + 1 s)")
        for name, values in seen.items():
            print(f"   {name:10s} median {statistics.median(values):.2f} s, max {max(values):.2f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
