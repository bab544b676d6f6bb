"""Show the provider's own lines and the outcome of .ci/demo.py; the full log is kept in a file.

Reads the demo's combined output on stdin. Prints the "==>" steps, every log line of a
``airflow_provider_robocorp`` logger (time and message only), errors, and everything from the
outcome block on. Airflow's own structured logs stay in the file.
"""

from __future__ import annotations

import re
import sys

LINE = re.compile(r"^(?P<time>\d{4}-\d\d-\d\dT(?P<clock>\d\d:\d\d:\d\d))\S*\s+\[(?P<level>\w+)\s*\]\s+(?P<message>.*?)"
                  r"\s+\[(?P<logger>[\w.]+)\](?:\s+\S+=\S+)*\s*$")


def main() -> None:
    outcome = False
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if outcome or line.startswith("==>"):
            print(line, flush=True)
            continue
        if "==== outcome ====" in line:
            outcome = True
            print(line, flush=True)
            continue
        match = LINE.match(line)
        if match and (match["logger"].startswith("airflow.task.operators.airflow_provider_robocorp")
                      or match["logger"].startswith("airflow_provider_robocorp")
                      or match["level"] in ("error", "critical")):
            print(f"  {match['clock']} {match['level']:7s} {match['message']}", flush=True)
        elif line.startswith("Traceback") or line.startswith("DAG import errors"):
            print(line, flush=True)


if __name__ == "__main__":
    main()
