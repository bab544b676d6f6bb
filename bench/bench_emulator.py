"""Throughput of the Control Room emulator for a simple GET (Get process).

The emulator runs as its own process (``python -m airflow_provider_robocorp.emulator``);
the load comes from separate client processes, each with several threads holding a
keep-alive ``requests.Session``. Prints requests/second and latency percentiles.

    python bench/bench_emulator.py [--seconds 10] [--processes 2] [--threads 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_robocorp.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"API base URL: (\S+)", line)
        if match:
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, match.group(1)
    raise RuntimeError("the emulator did not start")


def client(url: str, seconds: float, threads: int, start_at: float, out: multiprocessing.Queue) -> None:
    """One client process: ``threads`` keep-alive sessions hammering ``url`` until the deadline."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal errors
        session = requests.Session()
        session.headers["Authorization"] = "RC-WSKEY emulator-api-key"
        session.get(url).raise_for_status()
        while time.time() < start_at:
            time.sleep(0.001)
        mine: list[float] = []
        failed = 0
        deadline = start_at + seconds
        while (now := time.perf_counter()) and time.time() < deadline:
            response = session.get(url)
            mine.append(time.perf_counter() - now)
            if response.status_code != 200:
                failed += 1
        with lock:
            latencies.extend(mine)
            errors += failed

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put((latencies, errors))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    server, api_url = start_emulator()
    url = f"{api_url}workspaces/ws-emulator/processes/proc-invoices"
    try:
        ctx = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue = ctx.Queue()
        start_at = time.time() + 3.0
        clients = [
            ctx.Process(target=client, args=(url, args.seconds, args.threads, start_at, queue))
            for _ in range(args.processes)
        ]
        for proc in clients:
            proc.start()
        results = [queue.get(timeout=args.seconds + 60) for _ in clients]
        for proc in clients:
            proc.join()
    finally:
        server.terminate()
        server.wait(timeout=10)

    latencies = sorted(lat for lats, _ in results for lat in lats)
    errors = sum(err for _, err in results)
    total = len(latencies)
    rate = total / args.seconds
    print(f"GET {url}")
    print(f"clients: {args.processes} processes x {args.threads} threads, keep-alive requests.Session")
    print(f"requests: {total} in {args.seconds:.1f}s, non-200: {errors}")
    print(f"throughput: {rate:,.0f} requests/second")
    if latencies:
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(total - 1, int(total * 0.99))] * 1000
        print(f"latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
