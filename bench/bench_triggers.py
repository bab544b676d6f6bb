"""The triggerer at scale: N ProcessRunTriggers in one event loop vs a bare httpx polling loop.

Side by side in one run, against the emulator (its own process, on loopback), each variant in a
fresh child process (so its memory is its own), in alternating rounds:

- ``bare``: N coroutines polling Get process run through one ``httpx.AsyncClient`` (the floor);
- ``product``: N ``ProcessRunTrigger``s as the provider ships them (per-trigger client, shared
  TLS context and connection settings);
- ``own-tls``: the same triggers, but every client builds its own TLS context (the old behaviour);
- ``one-client``: the same triggers, but all share one ``httpx.AsyncClient`` (the alternative
  design the issue asked the benchmark to decide on).

For each it prints CPU per poll (process CPU time / status requests, in a steady window), memory
per waiting trigger (RSS growth / N), the event-loop time to start one trigger (time spent
building its client, mean and max), and the worst event-loop lag while the N start. Runs stay
``in_progress`` (the emulator's ``proc-slow``). Not a test: it prints, it does not assert.

    python bench/bench_triggers.py [--triggers 1000] [--rounds 3] [--poll 2] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_emulator import REPO, start_emulator  # noqa: E402

KEY = "emulator-api-key"
WS = "ws-emulator"
VARIANTS = ("bare", "product", "own-tls", "one-client")


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class LagMonitor:
    """Worst lateness of a 5 ms sleep: how long the event loop was blocked."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - before - 0.005)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    def reset(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


async def child(variant: str, api_url: str, run_ids: list[str], poll: float, window: float) -> dict[str, Any]:
    import httpx

    from airflow_provider_robocorp.hooks import _transport
    from airflow_provider_robocorp.hooks.robocorp import RobocorpHook
    from airflow_provider_robocorp.triggers.process_run import ProcessRunTrigger

    polls = 0
    # Warm up imports and code paths with one request, so the baseline holds them.
    async with httpx.AsyncClient() as warm:
        (await warm.get(f"{api_url}workspaces/{WS}/process-runs/{run_ids[0]}",
                        headers={"Authorization": f"RC-WSKEY {KEY}"})).raise_for_status()

    if variant != "bare":
        original_send = _transport.AsyncTransport._send_once

        async def counting_send(self: Any, request: Any) -> Any:
            nonlocal polls
            polls += 1
            return await original_send(self, request)

        _transport.AsyncTransport._send_once = counting_send  # type: ignore[method-assign]
    if variant == "own-tls":
        original_init = _transport.AsyncTransport.__init__

        def own_tls(self: Any, settings: Any, policy: Any = None, tls_context: Any = None) -> None:
            original_init(self, settings, policy, None)

        _transport.AsyncTransport.__init__ = own_tls  # type: ignore[method-assign]
    if variant == "one-client":
        shared: list[httpx.AsyncClient] = []
        real_client = httpx.AsyncClient

        class OneClient:
            def __new__(cls, *args: Any, **kwargs: Any) -> Any:
                if not shared:
                    kwargs["limits"] = httpx.Limits(max_connections=None, max_keepalive_connections=None)
                    shared.append(real_client(*args, **kwargs))
                return shared[0]

        httpx.AsyncClient = OneClient  # type: ignore[misc,assignment]

        async def keep_open(self: Any) -> None:
            return None

        real_client.aclose = keep_open  # type: ignore[method-assign]

    monitor = LagMonitor()
    monitor.start()
    if variant != "bare":
        warm_hook = RobocorpHook()
        await warm_hook.aget_process_run(run_ids[0])
        await warm_hook.aclose()
        polls = 0
    # Start cost of one client, one at a time: the first is cold (shared resources are made), the
    # rest warm. Wall time of a start that never awaits is event-loop time; the cold one's TLS
    # context is built in a thread, so its loop blocking is what the lag monitor saw.
    import ssl

    bare_tls = ssl.create_default_context()
    probes: list[Any] = []
    times: list[float] = []
    await asyncio.sleep(0.05)
    monitor.reset()
    for _ in range(21):
        began = time.perf_counter()
        if variant == "bare":
            probes.append(httpx.AsyncClient(verify=bare_tls))
        else:
            probes.append(RobocorpHook())
            await probes[-1]._async_transport()
        times.append(time.perf_counter() - began)
        if len(times) == 1:
            await asyncio.sleep(0.05)
            cold_lag = monitor.reset()
    for probe in probes:
        await probe.aclose()
    await asyncio.sleep(0.2)
    monitor.reset()
    base_rss = rss_kib()

    tasks: list[asyncio.Task[Any]] = []
    if variant == "bare":
        async def bare_poll(run_id: str) -> None:
            nonlocal polls
            url = f"{api_url}workspaces/{WS}/process-runs/{run_id}"
            async with httpx.AsyncClient(headers={"Authorization": f"RC-WSKEY {KEY}"}, verify=bare_tls) as client:
                while True:
                    response = await client.get(url)
                    polls += 1
                    response.raise_for_status()
                    if response.json()["state"] in ("completed", "unresolved"):
                        return
                    await asyncio.sleep(poll)

        for run_id in run_ids:
            tasks.append(asyncio.get_running_loop().create_task(bare_poll(run_id)))
    else:
        async def drive(trigger: ProcessRunTrigger) -> None:
            async for _event in trigger.run():
                return

        for run_id in run_ids:
            trigger = ProcessRunTrigger(run_id, poll_interval=poll)
            tasks.append(asyncio.get_running_loop().create_task(drive(trigger)))
    await asyncio.sleep(poll * 2 + 1)  # all started and polled at least once
    start_lag = monitor.reset()
    rss = rss_kib() - base_rss
    cpu0, polls0, t0 = time.process_time(), polls, time.monotonic()
    await asyncio.sleep(window)
    cpu, done, elapsed = time.process_time() - cpu0, polls - polls0, time.monotonic() - t0
    steady_lag = monitor.reset()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "variant": variant,
        "cpu_ms_per_poll": 1000 * cpu / max(done, 1),
        "polls_per_s": done / elapsed,
        "rss_kib_per_trigger": rss / len(run_ids),
        "start_cold_ms": 1000 * times[0],
        "start_cold_loop_block_ms": 1000 * cold_lag,
        "start_warm_ms": 1000 * statistics.median(times[1:]),
        "all_start_loop_lag_ms": 1000 * start_lag,
        "steady_loop_lag_ms": 1000 * steady_lag,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--runs-file", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        run_ids = json.loads(Path(args.runs_file).read_text())
        result = asyncio.run(child(args.child, args.api_url, run_ids, args.poll, args.window))
        print(json.dumps(result))
        return

    home = tempfile.mkdtemp(prefix="bench-airflow-")
    proc, api_url = start_emulator()
    try:
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"RC-WSKEY {KEY}"
        start_url = f"{api_url}workspaces/{WS}/processes/proc-slow/process-runs"
        run_ids = [session.post(start_url, json={}, timeout=30).json()["id"] for _ in range(args.triggers)]
        runs_file = Path(home) / "runs.json"
        runs_file.write_text(json.dumps(run_ids))
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "AIRFLOW_CONN_ROBOCORP_DEFAULT": json.dumps(
                {"conn_type": "robocorp", "login": WS, "password": KEY, "host": api_url}
            ),
        }
        variants = [v for v in args.variants.split(",") if v]
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", variant, "--api-url", api_url, "--runs-file",
                     str(runs_file), "--poll", str(args.poll), "--window", str(args.window)],
                    env=env, capture_output=True, text=True,
                )
                if out.returncode:
                    raise SystemExit(f"variant {variant} failed:\n{out.stderr[-3000:]}")
                results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{args.triggers} concurrent waits, poll every {args.poll:g} s, {args.window:g} s window, "
              f"{args.rounds} alternating rounds (medians); emulator in its own process")
        columns = ("cpu_ms_per_poll", "polls_per_s", "rss_kib_per_trigger", "start_cold_ms",
                   "start_cold_loop_block_ms", "start_warm_ms", "all_start_loop_lag_ms", "steady_loop_lag_ms")
        print(f"  {'variant':11s} " + " ".join(f"{c:>24s}" for c in columns))
        med = {v: {c: statistics.median(r[c] for r in results[v]) for c in columns} for v in variants}
        for variant in variants:
            print(f"  {variant:11s} " + " ".join(f"{med[variant][c]:24.2f}" for c in columns))
        if "bare" in med and "product" in med:
            print(f"  CPU per poll, product / bare: {med['product']['cpu_ms_per_poll'] / med['bare']['cpu_ms_per_poll']:.2f}x"
                  f" (goal <= 1.5x); memory per trigger: {med['product']['rss_kib_per_trigger']:.0f} KiB (goal <= 100)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
