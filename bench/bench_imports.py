"""What importing the provider adds to DAG parsing, on top of what every DAG file imports anyway.

Each measurement is a fresh interpreter with bytecode caches written (as in a deployment): it imports ``airflow.sdk`` and ``DAG``/``BaseOperator``
(the baseline every DAG file pays), then times the import of one target, and lists the top-level
packages the target pulled in. Targets: the operators, the sensors, the example pipeline DAG, and
for comparison the HTTP provider's operator when it is installed. Medians of ``--rounds``. Not a test.

    python bench/bench_imports.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {
    "operators": "import airflow_provider_robocorp.operators",
    "sensors": "import airflow_provider_robocorp.sensors",
    "example pipeline DAG": "import example_robocorp_pipeline",
    "same DAG, stand-in operators": "import twin_robocorp_pipeline",
    "http provider operator": "import airflow.providers.http.operators.http",
}
PROBE = """
import json, sys, time
import airflow.sdk
from airflow.sdk import DAG, BaseOperator
before = set(sys.modules)
started = time.perf_counter()
exec(sys.argv[1])
elapsed = time.perf_counter() - started
new = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"ms": 1000 * elapsed, "new": new}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    env = {
        **os.environ,
        "AIRFLOW_HOME": tempfile.mkdtemp(prefix="bench-airflow-"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "example_dags"), os.environ.get("PYTHONPATH", "")]),
    }
    # The example DAG with the provider's operators swapped for plain BaseOperator stand-ins: what
    # the DAG file costs without the provider (Airflow's DAG, Param, @task and mapping machinery).
    twin_dir = Path(env["AIRFLOW_HOME"]) / "twin"
    twin_dir.mkdir()
    source = (REPO / "example_dags" / "example_robocorp_pipeline.py").read_text()
    stand_ins = (
        "from airflow.sdk import BaseOperator as _Base\n"
        "class CreateWorkItemOperator(_Base):\n"
        "    def __init__(self, *, process_id=None, payload=None, files=None, **kw): super().__init__(**kw)\n"
        "class StartProcessRunOperator(_Base):\n"
        "    def __init__(self, *, process_id=None, work_item_ids=None, deferrable=False, poll_interval=30,\n"
        "                 push_outputs=False, timeout=None, **kw): super().__init__(**kw)\n"
    )
    original = "from airflow_provider_robocorp.operators import CreateWorkItemOperator, StartProcessRunOperator\n"
    assert original in source, "the example DAG's import line changed: update bench_imports.py"
    (twin_dir / "twin_robocorp_pipeline.py").write_text(source.replace(original, stand_ins))
    env["PYTHONPATH"] = os.pathsep.join([str(twin_dir), env["PYTHONPATH"]])
    # Measure as a deployment runs: with bytecode caches (this machine sets PYTHONDONTWRITEBYTECODE,
    # which would make every import compile its source). One unrecorded round writes them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for statement in TARGETS.values():
        subprocess.run([sys.executable, "-c", PROBE, statement], env=env, capture_output=True, text=True)
    results: dict[str, list[dict[str, object]]] = {name: [] for name in TARGETS}
    for _ in range(args.rounds):
        for name, statement in TARGETS.items():
            out = subprocess.run([sys.executable, "-c", PROBE, statement], env=env, capture_output=True, text=True)
            if out.returncode == 0:
                results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"import time on top of airflow.sdk + DAG/BaseOperator, fresh interpreter each, median of {args.rounds}")
    for name, runs in results.items():
        if not runs:
            print(f"  {name:28s} (not installed)")
            continue
        ms = statistics.median(float(r["ms"]) for r in runs)  # type: ignore[arg-type]
        new = runs[-1]["new"]
        print(f"  {name:28s} +{ms:6.1f} ms   new top-level packages: {', '.join(new) or '-'}")  # type: ignore[arg-type]
    dag, twin = (results["example pipeline DAG"], results["same DAG, stand-in operators"])
    if dag and twin:
        share = statistics.median(float(r["ms"]) for r in dag) - statistics.median(float(r["ms"]) for r in twin)  # type: ignore[arg-type]
        print(f"  the provider's share of the example DAG: {share:+.1f} ms (goal <= 50 ms)")


if __name__ == "__main__":
    main()
