"""backfill: a 365-day backfill vs a single daily run on the same data (goal: ratio <= 3).

Both start from an empty lake over the same landing zone (so both ingest everything); the
backfill then computes 365 as-of dates in one pass, the daily run one.
"""

from __future__ import annotations

import datetime as dt

from bench.harness import pipeline_run, spark, workspace

START = dt.date(2024, 1, 1)
RANGE_DAYS = 365


def run(quick: bool) -> dict:
    from featurepipe.generate import generate

    users = 60 if quick else 2000
    days = RANGE_DAYS + 91
    session = spark()
    first = START + dt.timedelta(days=91)
    last = first + dt.timedelta(days=RANGE_DAYS - 1)
    # the backfill runs first and so pays for the JVM warming up: the ratio errs against us
    with workspace("backfill-range") as root:
        summary = generate(str(root / "raw"), users=users, start=START, days=days, seed=5, progress=lambda _: None)
        backfill = pipeline_run(session, first, last)
    with workspace("backfill-daily") as root:
        generate(str(root / "raw"), users=users, start=START, days=days, seed=5, progress=lambda _: None)
        daily = pipeline_run(session, last, last)
    return {
        "goal": 3.0,
        "ratio": round(backfill / daily, 3),
        "users": users,
        "rows": summary.rows,
        "backfill_seconds": round(backfill, 2),
        "daily_seconds": round(daily, 2),
        "table": [
            ("raw transactions", summary.rows),
            (f"backfill {first}..{last} (s)", f"{backfill:.2f}"),
            (f"single daily run {last} (s)", f"{daily:.2f}"),
        ],
    }
