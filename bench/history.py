"""history: one daily run with 2 years of history vs with 3 months (goal: ratio <= 1.2).

Both lakes hold exactly the same last months of events (the 3-month lake is the tail of the
2-year landing zone), so the daily run computes identical features; only the history differs.
Each lake is built by one run, then the next two days land and run as a schedule would; the
timed figure is the mean of those two daily runs. A discarded warm-up round runs first.
"""

from __future__ import annotations

import datetime as dt
import shutil

from bench.harness import move_landings, pipeline_run, spark, workspace

START = dt.date(2023, 1, 1)
LONG, SHORT = 730, 92  # days of history before the timed runs


def _daily_cost(session, generated, history_days: int, total_days: int) -> float:
    with workspace(f"history-{history_days}") as root:
        copy = root / "generated"
        shutil.copytree(generated, copy)
        first_day = START + dt.timedelta(days=total_days - 2 - history_days)
        last_history = START + dt.timedelta(days=total_days - 3)
        move_landings(copy, root / "raw", first_day, last_history)
        pipeline_run(session, last_history - dt.timedelta(days=6), last_history + dt.timedelta(days=1))  # build the lake
        costs = []
        for k in (1, 2):  # day D's landing arrives, then the run for as-of D + 1
            landed = last_history + dt.timedelta(days=k)
            move_landings(copy, root / "raw", landed, landed)
            costs.append(pipeline_run(session, landed + dt.timedelta(days=1), landed + dt.timedelta(days=1)))
        return sum(costs) / len(costs)


def run(quick: bool) -> dict:
    from featurepipe.generate import generate

    users = 150 if quick else 3000
    total = LONG + 2 + 1
    session = spark()
    with workspace("history-source") as root:
        summary = generate(str(root / "source"), users=users, start=START, days=total, seed=17, progress=lambda _: None)
        # a discarded warm-up run first: the JVM's JIT would otherwise favour whichever case runs second
        _daily_cost(session, root / "source", SHORT, total)
        long_cost = _daily_cost(session, root / "source", LONG, total)
        short_cost = _daily_cost(session, root / "source", SHORT, total)
    return {
        "goal": 1.2,
        "ratio": round(long_cost / short_cost, 3),
        "users": users,
        "rows": summary.rows,
        "daily_run_seconds_2y": round(long_cost, 2),
        "daily_run_seconds_3m": round(short_cost, 2),
        "table": [
            ("raw transactions (2 years)", summary.rows),
            ("daily run, 2 years of history (s)", f"{long_cost:.2f}"),
            ("daily run, 3 months of history (s)", f"{short_cost:.2f}"),
        ],
    }
