"""e2e: a 90-day backfill through `featurepipe backfill`, exactly as a user runs it, vs DuckDB
computing the same features from the same Parquet in the same run (goal: ratio <= 10 at 2M
transactions with --quick, <= 6 at 20M).

One year of valid transactions (skewed users: a few heavy buyers, a long tail) lands as daily
files; the backfill builds as-of 2025-10-01 .. 2025-12-29 with every gate (both GX suites,
quarantine, publish, materialize into the SQLite online store, parity). Its time is the command's
wall time, JVM and Airflow start included; each task's seconds come from Airflow's own metadata
database. DuckDB computes every feature group the backfill computes (`featurepipe.spec.GROUPS`:
user and product purchases, product and user ratings) over the same landing files
(`bench.e2e_reference`: `bench.compute`'s daily-tile query for the user group, a query built from
the spec for each other group), and each published Delta table must equal its result row for row.

The backfill runs with the product's defaults, not the in-process benchmarks' session settings
(`bench.harness.user_environ`): its driver heap is `FEATUREPIPE_SPARK_DRIVER_MEMORY`'s default
unless the user set one, and the heap each step used comes from the shared driver's log.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.e2e_reference import compare_all, duckdb_all
from bench.harness import environ, user_environ, workspace

START = dt.date(2025, 1, 1)
DAYS = 365
FIRST = dt.date(2025, 10, 1)
LAST = dt.date(2025, 12, 29)
# the generator's mean rate: ~0.485 events per user per day (bench.compute's calibration)
EVENTS_PER_USER_DAY = 0.485


def step_seconds(data_dir: Path) -> dict[str, float]:
    """Each task's seconds in the newest run of the backfill DAG, from Airflow's metadata DB."""
    with sqlite3.connect(data_dir / "airflow" / "airflow.db") as db:
        run_id = db.execute("SELECT run_id FROM dag_run WHERE dag_id = 'featurepipe_backfill' "
                            "ORDER BY start_date DESC LIMIT 1").fetchone()[0]
        rows = db.execute("SELECT task_id, duration FROM task_instance WHERE dag_id = 'featurepipe_backfill' "
                          "AND run_id = ? ORDER BY start_date", (run_id,)).fetchall()
    return {task: round(seconds or 0.0, 2) for task, seconds in rows}


_SERVER_STEP = re.compile(r"\[spark-server\] (\w+) exit \d+ after [\d.]+ s; (.*)")


def driver_memory(data_dir: Path) -> dict:
    """The shared driver's heap as the run used it (each step's line in its log:
    `featurepipe.jvm_memory`), in GiB: the heap's limit, the largest in use and live (after a full
    collection) of any step, each step's, and the JVM's resident high-water mark."""
    from featurepipe.jvm_memory import DriverMemory
    from featurepipe.shared_driver import folder

    with environ(FEATUREPIPE_DATA_DIR=str(data_dir)):
        log = folder() / "server.log"
    steps: dict[str, dict] = {}
    limit, resident = None, None
    for step, rest in _SERVER_STEP.findall(log.read_text(errors="replace") if log.exists() else ""):
        memory = DriverMemory.parse(rest)
        if memory is None:
            continue
        seen = steps.setdefault(step, {"in_use_gib": 0.0, "live_gib": None})
        seen["in_use_gib"] = max(seen["in_use_gib"], _gib(memory.in_use_peak))
        if memory.live_peak is not None:
            seen["live_gib"] = max(seen["live_gib"] or 0.0, _gib(memory.live_peak))
        limit, resident = memory.limit, _gib(memory.resident_peak) if memory.resident_peak else resident
    if not steps:
        raise RuntimeError(f"no step's heap in the shared driver's log {log}: did the run use the shared driver?")
    lives = [s["live_gib"] for s in steps.values() if s["live_gib"] is not None]
    return {"heap": limit, "in_use_peak_gib": max(s["in_use_gib"] for s in steps.values()),
            "live_peak_gib": max(lives) if lives else None, "resident_peak_gib": resident, "steps": steps}


def _gib(size: int) -> float:
    return round(size / 2**30, 2)  # the log's precision


def _heap_figures(memory: dict) -> str:
    live = memory["live_peak_gib"]
    return (f"{memory['in_use_peak_gib']:.2f} GiB in use, "
            + (f"{live:.2f} GiB live after a full collection" if live is not None else "no full collection")
            + (f", JVM resident {memory['resident_peak_gib']:.2f} GiB" if memory["resident_peak_gib"] else ""))


def backfill(data_dir: Path) -> float:
    """Wall seconds of `featurepipe backfill` for FIRST..LAST, as a user starts it; its progress
    lines are echoed."""
    featurepipe = str(Path(sys.executable).parent / "featurepipe")
    env = {**user_environ(), "FEATUREPIPE_DATA_DIR": str(data_dir)}
    began = time.perf_counter()
    try:
        proc = subprocess.Popen([featurepipe, "backfill", "--start", str(FIRST), "--end", str(LAST)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail = []
        for line in proc.stdout:
            print(f"    {line.rstrip()}", flush=True)
            tail = (tail + [line])[-30:]
        if proc.wait() != 0:
            raise RuntimeError(f"featurepipe backfill failed:\n{''.join(tail)}")
        return time.perf_counter() - began
    finally:
        subprocess.run([featurepipe, "spark-server", "--stop"], env=env, capture_output=True)


def run(quick: bool) -> dict:
    from featurepipe.generate import generate

    target = 2_000_000 if quick else 20_000_000
    users = round(target / (DAYS * EVENTS_PER_USER_DAY))
    with workspace("e2e") as root:
        print(f"[e2e] generating ~{target:,} transactions of {users:,} users over {DAYS} days", flush=True)
        summary = generate(str(root / "raw"), users=users, start=START, days=DAYS, seed=12, progress=lambda _: None)
        print(f"[e2e] featurepipe backfill --start {FIRST} --end {LAST} over {summary.rows:,} transactions", flush=True)
        ours = backfill(root)
        steps = step_seconds(root)
        memory = driver_memory(root)
        print(f"[e2e] driver heap {memory['heap']} (FEATUREPIPE_SPARK_DRIVER_MEMORY="
              f"{user_environ().get('FEATUREPIPE_SPARK_DRIVER_MEMORY', 'auto')}): {_heap_figures(memory)}", flush=True)
        print("[e2e] DuckDB, every feature group from the same Parquet", flush=True)
        duck = duckdb_all(root / "raw", root / "duck", FIRST, LAST)
        rows_per_group = compare_all(root / "duck", FIRST, LAST)
    rows = sum(rows_per_group.values())
    return {
        "goal": 6.0 if not quick else 10.0,
        "ratio": round(ours / duck, 3),
        "transactions": summary.rows,
        "users": users,
        "feature_rows": rows,
        "rows_per_group": rows_per_group,
        "seconds": round(ours, 2),
        "duckdb_seconds": round(duck, 2),
        "steps": steps,
        "driver_memory": memory,
        "table": [
            ("raw transactions", summary.rows),
            (f"feature rows ({FIRST}..{LAST}), equal to DuckDB's", rows),
            *((f"  {group}", n) for group, n in rows_per_group.items()),
            ("featurepipe backfill, wall (s)", f"{ours:.2f}"),
            *((f"  {task} (s)", f"{seconds:.2f}") for task, seconds in steps.items()),
            (f"driver heap {memory['heap']}: peaks", _heap_figures(memory)),
            (f"DuckDB, same Parquet, {len(rows_per_group)} groups (s)", f"{duck:.2f}"),
        ],
    }
