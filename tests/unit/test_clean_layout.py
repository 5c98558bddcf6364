"""The clean tables' month layout (`lake.EVENT_MONTH`): ingest writes it, and a clean table of the
older day layout is rewritten once in it, keeping every event, before the next batch merges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from featurepipe import lake
from featurepipe.dates import AsOfRange
from featurepipe.generate import generate
from featurepipe.ingest import ingest
from featurepipe.lake import EVENT_DATE, EVENT_MONTH

START = dt.date(2025, 1, 30)  # the landings span a month boundary


def _events(spark) -> list[tuple]:
    return sorted((r["transaction_id"], r[EVENT_DATE]) for r in
                  lake.read_table(spark, lake.CLEAN_TRANSACTIONS).select("transaction_id", EVENT_DATE).collect())


def test_ingest_writes_months_and_rewrites_a_day_layout_table_once_with_its_events(lake_env: Path, spark) -> None:
    raw = str(lake_env / "raw")
    generate(raw, users=40, start=START, days=3, seed=5, progress=lambda _: None)
    ingest(spark, AsOfRange(START + dt.timedelta(days=3), START + dt.timedelta(days=3)))
    assert lake.partition_columns(spark, lake.CLEAN_TRANSACTIONS) == [EVENT_MONTH]
    months = {r[0] for r in lake.read_table(spark, lake.CLEAN_TRANSACTIONS).select(EVENT_MONTH).distinct().collect()}
    assert months == {dt.date(2025, 1, 1), dt.date(2025, 2, 1)}
    first = _events(spark)
    assert first

    # the table as a release before the month layout wrote it: partitioned by day
    old = lake.read_table(spark, lake.CLEAN_TRANSACTIONS).drop(EVENT_MONTH).localCheckpoint()
    lake.overwrite(old, lake.CLEAN_TRANSACTIONS, partition_by=EVENT_DATE)
    assert lake.partition_columns(spark, lake.CLEAN_TRANSACTIONS) == [EVENT_DATE]

    later = START + dt.timedelta(days=3)
    generate(raw, users=40, start=later, days=2, seed=6, progress=lambda _: None)
    report = ingest(spark, AsOfRange(later + dt.timedelta(days=2), later + dt.timedelta(days=2)))
    assert report["new_files"] == 2 and report["new_or_corrected_events"] > 0
    assert lake.partition_columns(spark, lake.CLEAN_TRANSACTIONS) == [EVENT_MONTH]
    now = _events(spark)
    assert set(first) <= set(now) and len(now) == len(first) + report["new_or_corrected_events"]
    assert len({t for t, _ in now}) == len(now)  # still one row per event
