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

    # the table as a release before the month layout created it: partitioned by day
    old = lake.read_table(spark, lake.CLEAN_TRANSACTIONS).drop(EVENT_MONTH).localCheckpoint()
    lake.drop_table(lake.CLEAN_TRANSACTIONS)
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


def test_new_tables_keep_statistics_only_for_the_columns_reads_filter_on(lake_env: Path, spark) -> None:
    import json

    from featurepipe import delta_log
    from featurepipe.settings import get_settings

    assert lake.skipping_columns(["transaction_id", "user_id", "amount", "event_timestamp", "event_date"]) == [
        "transaction_id", "event_timestamp", "event_date"]
    assert lake.skipping_columns(["user_id", "event_date", "n"], partition_by="event_date") == []
    raw = str(lake_env / "raw")
    generate(raw, users=20, start=START, days=2, seed=7, progress=lambda _: None)
    ingest(spark, AsOfRange(START + dt.timedelta(days=2), START + dt.timedelta(days=2)))
    log = Path(get_settings().table_uri(lake.CLEAN_TRANSACTIONS)) / "_delta_log"
    actions = [json.loads(line) for line in (log / "00000000000000000000.json").read_text().splitlines()]
    [metadata] = [a["metaData"] for a in actions if "metaData" in a]
    assert metadata["configuration"] == {"delta.dataSkippingStatsColumns": "transaction_id,event_timestamp,event_date"}
    stats = [json.loads(a["add"]["stats"]) for a in actions if "add" in a]
    assert stats and all(set(s["minValues"]) == {"transaction_id", "event_timestamp", "event_date"} for s in stats)
    assert sum(s["numRecords"] for s in stats) == lake.read_table(spark, lake.CLEAN_TRANSACTIONS).count()
    assert delta_log.table_size(str(log.parent))  # the log replay reads such a table
