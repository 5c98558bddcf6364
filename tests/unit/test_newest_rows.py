"""Materialize's read of a feature table (`feast_store._newest_rows_only`): Feast's Spark source gets
each entity's newest row of the window only, whether the newest timestamps are broadcast (few
entities) or joined by sorting (many)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from featurepipe import feast_store, lake

DAY = dt.date(2025, 5, 1)
TABLE = "features/newest"


@pytest.mark.parametrize("broadcast_entities", [2_000_000, 0])
def test_feast_reads_each_entitys_newest_row_of_the_window(lake_env: Path, spark, monkeypatch: pytest.MonkeyPatch,
                                                           broadcast_entities: int) -> None:
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
    from feast.table_format import DeltaFormat

    monkeypatch.setattr(feast_store, "BROADCAST_ENTITIES", broadcast_entities)
    # user i has a row at each as-of date DAY + d for d <= i % 6 (none past DAY + 5), valued 10 * i + d
    rows = spark.range(12 * 6).selectExpr(
        "concat('u', cast(id DIV 6 AS string)) AS user_id", "id DIV 6 AS i", "id % 6 AS d",
    ).where("d <= i % 6").selectExpr(
        "user_id", f"to_timestamp(date_add(DATE'{DAY}', cast(d AS int))) AS event_timestamp",
        "cast(10 * i + d AS double) AS value", f"date_add(DATE'{DAY}', cast(d AS int)) AS as_of_date")
    lake.overwrite(rows, TABLE, partition_by=lake.AS_OF_DATE)
    source = SparkSource(name="newest", path=lake.table_path(TABLE), table_format=DeltaFormat(), timestamp_field="event_timestamp")
    start = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(DAY + dt.timedelta(days=3), dt.time(), dt.timezone.utc)

    threshold = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    if not broadcast_entities:  # as with many entities: Spark would broadcast these few by itself
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        with feast_store._newest_rows_only(source.path, "user_id", start, end):
            frame = SparkSource._load_dataframe_from_path(source, spark)
            plan = frame._jdf.queryExecution().executedPlan().toString()
            got = {r["user_id"]: (r["value"], r["as_of_date"]) for r in frame.collect()}
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", threshold)

    # rows of DAY + 1 .. DAY + 3 only; a user whose rows all lie before the window has none
    want = {f"u{i}": (10.0 * i + min(i % 6, 3), DAY + dt.timedelta(days=min(i % 6, 3))) for i in range(12) if i % 6 >= 1}
    assert got == want
    assert ("BroadcastHashJoin" in plan) == (broadcast_entities > 0), plan
    assert SparkSource._load_dataframe_from_path(source, spark).count() == rows.count()  # Feast's own read is back
