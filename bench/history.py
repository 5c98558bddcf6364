"""history: one daily run with 2 years of history vs with 3 months (goal: ratio <= 1.2).

Both lakes hold exactly the same last months of events (the 3-month lake is the tail of the
2-year landing zone), so the daily run computes identical features; only the history differs.
Each lake is built by one run; then the next days land and run as a schedule would, alternating
between the two lakes (so neither profits more from the JVM warming up). The first round is
discarded as a warm-up; the figure is the mean of the other rounds.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from bench.harness import move_landings, pipeline_run, spark, using, workspace

START = dt.date(2023, 1, 1)
LONG, SHORT = 730, 92  # days of history before the timed runs


def _build(generated: Path, root: Path, history_days: int, total_days: int, rounds: int) -> Path:
    """A lake with `history_days` of landings, built by one run; returns its private copy of the rest."""
    copy = root / "generated"
    shutil.copytree(generated, copy)
    last_history = START + dt.timedelta(days=total_days - rounds - 1)
    move_landings(copy, root / "raw", last_history - dt.timedelta(days=history_days - 1), last_history)
    with using(root):
        pipeline_run(spark(), last_history + dt.timedelta(days=1), last_history + dt.timedelta(days=1))
    return copy


def _daily(root: Path, copy: Path, landed: dt.date) -> float:
    """Day `landed`'s landing arrives, then the run for as-of `landed` + 1."""
    move_landings(copy, root / "raw", landed, landed)
    with using(root):
        return pipeline_run(spark(), landed + dt.timedelta(days=1), landed + dt.timedelta(days=1))


def run(quick: bool) -> dict:
    from featurepipe.generate import generate

    users = 150 if quick else 3000
    rounds = 2 if quick else 4  # daily runs per lake; the first is a warm-up
    total = LONG + rounds + 1
    spark()
    costs: dict[int, list[float]] = {LONG: [], SHORT: []}
    with workspace("history-source") as source, workspace("history-long") as long_root, \
            workspace("history-short") as short_root:
        summary = generate(str(source / "generated"), users=users, start=START, days=total, seed=17,
                           progress=lambda _: None)
        lakes = {
            LONG: (long_root, _build(source / "generated", long_root, LONG, total, rounds)),
            SHORT: (short_root, _build(source / "generated", short_root, SHORT, total, rounds)),
        }
        for k in range(rounds):
            landed = START + dt.timedelta(days=total - rounds + k)
            for history, (root, copy) in lakes.items():
                costs[history].append(_daily(root, copy, landed))
    long_cost = sum(costs[LONG][1:]) / (rounds - 1)
    short_cost = sum(costs[SHORT][1:]) / (rounds - 1)
    return {
        "goal": 1.2,
        "ratio": round(long_cost / short_cost, 3),
        "users": users,
        "rows": summary.rows,
        "daily_run_seconds_2y": round(long_cost, 2),
        "daily_run_seconds_3m": round(short_cost, 2),
        "all_runs_seconds": {"2y": [round(c, 2) for c in costs[LONG]], "3m": [round(c, 2) for c in costs[SHORT]]},
        "table": [
            ("raw transactions (2 years)", summary.rows),
            ("daily run, 2 years of history (s)", f"{long_cost:.2f}"),
            ("daily run, 3 months of history (s)", f"{short_cost:.2f}"),
        ],
    }
