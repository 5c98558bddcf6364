"""The tiles table's month layout (`featurepipe.tiles.write_tiles`): a rebuild replaces exactly its
days, a table of the older day layout is rewritten once in the month layout with the same rows,
and readers never see the partition column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from featurepipe import lake
from featurepipe.lake import EVENT_DATE, EVENT_MONTH
from featurepipe.spec import USER_PURCHASE
from featurepipe.tiles import read_tiles, tiles_written, write_tiles

DAYS = [dt.date(2025, 1, 30), dt.date(2025, 1, 31), dt.date(2025, 2, 1)]


def _tiles(spark, days: list[dt.date], count: int):
    rows = [(user, day, count, 10.0 * count, 5.0, {"books": count}) for day in days for user in ("u1", "u2")]
    return spark.createDataFrame(
        rows, f"user_id string, {EVENT_DATE} date, event_count long, sum_amount double, max_amount double, "
              "counts_category map<string,bigint>")


def _stored(spark) -> list[tuple]:
    frame = read_tiles(spark, USER_PURCHASE, dt.date(2025, 1, 1), dt.date(2025, 3, 1))
    assert EVENT_MONTH not in frame.columns
    return sorted((r["user_id"], r[EVENT_DATE], r["event_count"]) for r in frame.collect())


def test_a_rebuild_replaces_exactly_its_days_in_month_partitions(lake_env: Path, spark) -> None:
    table = lake.tiles_table(USER_PURCHASE)
    write_tiles(spark, _tiles(spark, DAYS, 1), USER_PURCHASE, DAYS)
    assert lake.partition_columns(spark, table) == [EVENT_MONTH]
    # a late event on Jan 31: that day's tiles only; Jan 30 (same month) and Feb 1 keep theirs
    write_tiles(spark, _tiles(spark, DAYS[1:2], 7), USER_PURCHASE, DAYS[1:2])
    assert tiles_written(spark, USER_PURCHASE) == 2  # the new day's, not the copied Jan 30 rows
    assert _stored(spark) == sorted((u, d, 7 if d == DAYS[1] else 1) for u in ("u1", "u2") for d in DAYS)
    months = {r[EVENT_MONTH] for r in lake.read_table(spark, table).select(EVENT_MONTH).distinct().collect()}
    assert months == {dt.date(2025, 1, 1), dt.date(2025, 2, 1)}


def test_a_table_of_the_day_layout_is_rewritten_in_the_month_layout_with_its_rows(lake_env: Path, spark) -> None:
    table = lake.tiles_table(USER_PURCHASE)
    # as releases before the month layout wrote it
    lake.overwrite(_tiles(spark, DAYS, 1), table, partition_by=EVENT_DATE)
    assert lake.partition_columns(spark, table) == [EVENT_DATE]
    assert _stored(spark) == sorted((u, d, 1) for u in ("u1", "u2") for d in DAYS)  # still readable as it is
    write_tiles(spark, _tiles(spark, DAYS[2:], 3), USER_PURCHASE, DAYS[2:])
    assert lake.partition_columns(spark, table) == [EVENT_MONTH]
    assert _stored(spark) == sorted((u, d, 3 if d == DAYS[2] else 1) for u in ("u1", "u2") for d in DAYS)
