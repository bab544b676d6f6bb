"""What importing the provider adds to DAG parsing, on top of what every DAG file imports anyway.

Each measurement is a fresh interpreter: it imports ``airflow.sdk`` and ``DAG``/``BaseOperator``
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
    "same DAG, Airflow parts only": (  # the example DAG's Param/@task/mapping with a plain operator
        "from datetime import datetime\n"
        "from airflow.sdk import DAG, BaseOperator, Param, task\n"
        "with DAG(dag_id='twin', schedule=None, start_date=datetime(2024, 1, 1), catchup=False,\n"
        "         params={'invoices': Param([{'invoice': 'INV-001'}], type='array')}):\n"
        "    @task\n"
        "    def items(params):\n"
        "        return [{'task_id': 'x'}]\n"
        "    BaseOperator.partial(task_id='mapped').expand_kwargs(items())\n"
    ),
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
    dag, twin = (results["example pipeline DAG"], results["same DAG, Airflow parts only"])
    if dag and twin:
        share = statistics.median(float(r["ms"]) for r in dag) - statistics.median(float(r["ms"]) for r in twin)  # type: ignore[arg-type]
        print(f"  the provider's share of the example DAG: {share:+.1f} ms (goal <= 50 ms)")


if __name__ == "__main__":
    main()
