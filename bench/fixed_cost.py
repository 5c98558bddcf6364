"""fixed_cost: one daily `featurepipe run` on small data vs one trivial `spark-submit` (goal: ratio <= 5).

Both are timed as a user starts them, end to end, as subprocesses. The trivial application starts
a session, counts `spark.range(1000)` and stops. The daily run is the one after a backfill (Airflow's
metadata DB and Feast's registry already exist, as on every day but the first), for the next as-of
date after a new landing, so it ingests, tiles, computes, validates, publishes and materializes.

Every run is the plain `featurepipe` command with the user's defaults: on a local master its steps
go to the data dir's shared driver (`featurepipe.shared_driver`), which the backfill starts (its
time, driver start included, is reported). The ratio is the next daily run, on that driver; the
day after's run with its steps inline (one cold JVM, `FEATUREPIPE_STEP_RUNNER=inline`) is
measured and reported beside it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import move_landings, workspace

START = dt.date(2025, 1, 1)
TRIVIAL = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("trivial").getOrCreate()
print("rows", spark.range(1000).count())
spark.stop()
"""


def _timed(args: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - began
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {out.stderr[-2000:]}")
    return seconds


def run(quick: bool) -> dict:
    from featurepipe.generate import generate

    users, days = (30, 60) if quick else (60, 100)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "FEATUREPIPE_SPARK_MASTER": os.environ.get("FEATUREPIPE_SPARK_MASTER", "local[2]")}
    with workspace("fixed-cost") as root:
        staged = root / "staged"
        summary = generate(str(staged), users=users, start=START, days=days, seed=9, progress=lambda _: None)
        last_event = START + dt.timedelta(days=days - 1)
        move_landings(staged, root / "raw", START, last_event - dt.timedelta(days=2))
        env["FEATUREPIPE_DATA_DIR"] = str(root)
        as_of = last_event - dt.timedelta(days=1)  # complete once day as_of - 1 has landed
        featurepipe = str(bin_dir / "featurepipe")
        try:
            first = _timed([featurepipe, "backfill", "--start", str(as_of - dt.timedelta(days=7)),
                            "--end", str(as_of - dt.timedelta(days=1))], env)
            move_landings(staged, root / "raw", as_of, as_of)
            daily = _timed([featurepipe, "run", "--date", str(as_of + dt.timedelta(days=1))], env)
        finally:
            subprocess.run([featurepipe, "spark-server", "--stop"], env=env, capture_output=True)
        move_landings(staged, root / "raw", last_event, last_event)
        inline = _timed([str(bin_dir / "featurepipe"), "run", "--date", str(last_event + dt.timedelta(days=1))],
                        {**env, "FEATUREPIPE_STEP_RUNNER": "inline"})
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "trivial.py"
            script.write_text(TRIVIAL)
            trivial = _timed([str(bin_dir / "spark-submit"), "--master", env["FEATUREPIPE_SPARK_MASTER"], str(script)],
                             {**env, "PYSPARK_PYTHON": sys.executable})
    return {
        "goal": 5.0,
        "ratio": round(daily / trivial, 3),
        "rows": summary.rows,
        "daily_run_seconds": round(daily, 2),
        "first_backfill_seconds": round(first, 2),
        "inline_daily_run_seconds": round(inline, 2),
        "inline_ratio": round(inline / trivial, 3),
        "trivial_submit_seconds": round(trivial, 2),
        "table": [
            ("raw transactions", summary.rows),
            ("featurepipe backfill, 7 days, shared driver started (s)", f"{first:.2f}"),
            ("featurepipe run, one day, shared driver (s)", f"{daily:.2f}"),
            ("featurepipe run, next day, steps inline (s)", f"{inline:.2f}"),
            ("trivial spark-submit (s)", f"{trivial:.2f}"),
            ("inline / trivial", f"{inline / trivial:.2f}"),
        ],
    }
