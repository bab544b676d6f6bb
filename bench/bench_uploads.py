"""Upload throughput: the hook's streamed uploads vs curl, to the same local sink, side by side.

- multipart: ``RobocorpHook.upload_work_item_file`` (form fields + ``file`` part, with
  ``Content-Length``) vs ``curl -F``;
- PUT: ``RobocorpHook.put_presigned`` (a pre-signed asset upload URL) vs ``curl -T``.

The sink (``bench/sink.py``) runs in its own process and discards what it reads. Rounds alternate
curl and the hook; medians are printed with the ratio hook/curl in throughput (1.00 = as fast as
curl) and the hook's extra peak RSS during an upload (sampled every 5 ms). Not a test.

    python bench/bench_uploads.py [--size-mib 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FORM_DATA = {"key": "ws/wi/file.bin", "policy": "eyJleHBpcmF0aW9uIjoi", "x-amz-signature": "0" * 64}


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def peak_extra_rss(fn: Any) -> tuple[float, int]:
    """(seconds, peak RSS growth in KiB) of ``fn()``."""
    base, peak, done = rss_kib(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib() - base)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    try:
        fn()
    finally:
        elapsed = time.perf_counter() - began
        done.set()
        sampler.join()
    return elapsed, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    os.environ.setdefault("AIRFLOW_HOME", str(work / "airflow"))
    os.environ["AIRFLOW_CONN_ROBOCORP_DEFAULT"] = json.dumps(
        {"conn_type": "robocorp", "login": "ws-bench", "password": "bench-key", "host": "http://127.0.0.1:9/"}
    )
    data = work / "file.bin"
    with data.open("wb") as out:  # incompressible content, written once; read from the page cache
        chunk = os.urandom(1 << 20)
        for _ in range(args.size_mib):
            out.write(chunk)
    sink = subprocess.Popen([sys.executable, str(HERE / "sink.py")], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        port = int(sink.stdout.readline().split()[-1])
        url = f"http://127.0.0.1:{port}/upload"

        from airflow_provider_robocorp.hooks.robocorp import RobocorpHook

        hook = RobocorpHook()
        hook.create_work_item_file = lambda *a, **k: {"upload": {"url": url, "form_data": FORM_DATA}}  # type: ignore[method-assign]
        form = [arg for k, v in FORM_DATA.items() for arg in ("-F", f"{k}={v}")]
        cases = {
            "multipart curl": lambda: subprocess.run(["curl", "-sS", "-o", "/dev/null", "--fail", *form,
                                                      "-F", f"file=@{data}", url], check=True),
            "multipart hook": lambda: hook.upload_work_item_file("wi-1", data),
            "put curl": lambda: subprocess.run(["curl", "-sS", "-o", "/dev/null", "--fail", "-T", str(data),
                                                "-H", "Content-Type: application/octet-stream", url], check=True),
            "put hook": lambda: hook.put_presigned(url, data, "application/octet-stream"),
        }
        for fn in cases.values():  # warm up: page cache, connections, code paths
            fn()
        seconds: dict[str, list[float]] = {name: [] for name in cases}
        extra: dict[str, list[int]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, fn in cases.items():
                elapsed, grown = peak_extra_rss(fn)
                seconds[name].append(elapsed)
                extra[name].append(grown)
        size = args.size_mib / 1024
        print(f"{args.size_mib} MiB file, {args.rounds} alternating rounds (medians), sink in its own process")
        for kind in ("multipart", "put"):
            curl, ours = statistics.median(seconds[f"{kind} curl"]), statistics.median(seconds[f"{kind} hook"])
            print(f"  {kind:9s} curl {size / curl:6.2f} GiB/s   hook {size / ours:6.2f} GiB/s   "
                  f"ratio hook/curl {curl / ours:.2f}   hook extra peak RSS "
                  f"{statistics.median(extra[f'{kind} hook']) / 1024:.1f} MiB")
    finally:
        sink.terminate()
        sink.wait(timeout=10)
        data.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
