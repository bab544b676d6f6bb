"""``robocorp-emulator``: run a local Control Room until Ctrl-C."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .config import ConfigError, default_config_path, load_config
from .faults import FAULT_SPEC_HELP, FaultError, FaultRule, parse_fault_spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robocorp-emulator",
        description="Run a local, stateful Robocorp Control Room API (v1) for Airflow DAGs and tests.",
        epilog=FAULT_SPEC_HELP
        + "\n\nControl endpoints (no auth): GET /_emulator/state, POST /_emulator/reset,"
        ' POST /_emulator/time/advance {"seconds": N}, POST /_emulator/time/speed {"speed": X},'
        " GET|POST|DELETE /_emulator/faults, GET /_emulator/requests, GET /_emulator/webhook-deliveries.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8123, help="port to listen on, 0 = any free (default: %(default)s)"
    )
    parser.add_argument("--config", metavar="PATH", help="seed configuration JSON (default: the shipped one)")
    parser.add_argument(
        "--speed", type=float, help="emulated seconds per real second (default: the config's, 1.0)"
    )
    parser.add_argument(
        "--fault", metavar="SPEC", action="append", default=[], help="inject faults (repeatable; see below)"
    )
    parser.add_argument("--fault-seed", type=int, help="seed the random choice of probabilistic faults")
    parser.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    parser.add_argument(
        "--print-default-config",
        action="store_true",
        help="print the shipped configuration (to copy and edit) and exit",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_default_config:
        sys.stdout.write(default_config_path().read_text(encoding="utf-8"))
        return 0
    try:
        config = load_config(args.config)
        rules: list[FaultRule] = [parse_fault_spec(spec) for spec in args.fault]
    except (ConfigError, FaultError, ValueError) as exc:
        print(f"robocorp-emulator: error: {exc}", file=sys.stderr)
        return 2

    from .server import EmulatorServer

    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.host.startswith("127."):
        print(f"robocorp-emulator: warning: listening on {args.host} makes the emulator reachable from other "
              "machines; it has no real authentication and its /_emulator control routes none at all. Use it "
              "only on a network you trust.", file=sys.stderr, flush=True)

    server = EmulatorServer(
        config, host=args.host, port=args.port, speed=args.speed, log_level=args.log_level
    )
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        print(f"robocorp-emulator: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if args.fault_seed is not None:
        server.backend.faults.seed(args.fault_seed)
    for rule in rules:
        server.backend.faults.add(rule)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    conn = shlex.quote(server.connection_json())
    print(f"Robocorp Control Room emulator on {server.url} (workspace {server.workspace_id})", flush=True)
    print(f"API base URL: {server.api_url}", flush=True)
    for key in config.api_keys:
        print(f"API key {key.key!r}: {key.name} ({len(key.permissions)} permissions)", flush=True)
    for rule in rules:
        print(f"Fault rule: {rule.to_json()}", flush=True)
    print("Paste into your shell:", flush=True)
    print(f"AIRFLOW_CONN_ROBOCORP_DEFAULT={conn}", flush=True)
    print(f"export AIRFLOW_CONN_ROBOCORP_DEFAULT={conn}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5) and server.running:
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
