"""compute_tiles: rebuild the daily partial aggregates (one tile per user per event day) of every changed day.

Windows of whole UTC days are sums (or maxima, or merged counts) of daily tiles, so features
never rescan raw events. Which statistics a tile keeps is derived from the feature spec.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

from featurepipe.spec import FeatureGroup, Op

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

EVENT_DATE = "event_date"
EVENT_COUNT = "event_count"


def tile_stat(op: Op, column: str | None) -> list[str]:
    """The tile columns an aggregation is built from."""
    if op is Op.COUNT:
        return [EVENT_COUNT]
    if op is Op.SUM:
        return [f"sum_{column}"]
    if op is Op.AVG:
        return [f"sum_{column}", EVENT_COUNT]
    if op is Op.MAX:
        return [f"max_{column}"]
    if op is Op.MODE:
        return [f"counts_{column}"]
    raise ValueError(f"no tile statistic for {op}")


def build_tiles(events: DataFrame, group: FeatureGroup) -> DataFrame:
    """Valid, deduplicated events -> one row per (entity, event_date) with the spec's statistics."""
    from pyspark.sql import functions as F

    key = group.join_key
    ts = group.source.timestamp_column
    dated = events.withColumn(EVENT_DATE, F.to_date(F.col(ts)))  # UTC session: the event's UTC day

    scalar: dict[str, object] = {EVENT_COUNT: F.count(F.lit(1)).cast("long")}
    modes: list[str] = []
    for agg in group.aggregations:
        if agg.op is Op.MODE:
            modes.append(agg.column)
            continue
        if agg.op in (Op.SUM, Op.AVG):
            scalar[f"sum_{agg.column}"] = F.sum(F.col(agg.column).cast("double"))
        if agg.op is Op.MAX:
            scalar[f"max_{agg.column}"] = F.max(F.col(agg.column).cast("double"))
    tiles = dated.groupBy(key, EVENT_DATE).agg(*[expr.alias(name) for name, expr in scalar.items()])

    for column in dict.fromkeys(modes):
        counts = (
            dated.where(F.col(column).isNotNull())
            .groupBy(key, EVENT_DATE, column)
            .agg(F.count(F.lit(1)).cast("long").alias("n"))
            .groupBy(key, EVENT_DATE)
            .agg(F.map_from_entries(F.collect_list(F.struct(F.col(column), F.col("n")))).alias(f"counts_{column}"))
        )
        tiles = tiles.join(counts, [key, EVENT_DATE], "left")
    return tiles


def tile_dates(first_as_of: dt.date, last_as_of: dt.date, group: FeatureGroup) -> tuple[dt.date, dt.date]:
    """Event days whose tiles the as-of range reads: [first - horizon, last - 1]."""
    return first_as_of - dt.timedelta(days=group.row_horizon_days), last_as_of - dt.timedelta(days=1)


def affected_as_of(days: list[dt.date], group: FeatureGroup) -> list[dt.date]:
    """As-of dates whose rows read a tile of one of `days`: T with 1 <= T - d <= horizon."""
    return sorted({d + dt.timedelta(days=k) for d in days for k in range(1, group.row_horizon_days + 1)})


def rebuild_tiles(spark, label: str) -> dict:
    """Rebuild the tiles of every dirty event day (whatever run marked it); returns the step report.

    Published as-of dates that read a rebuilt tile are marked pending, for compute_features to
    repair. Only days that changed are read: the cost follows the landing, not the history.
    """
    from pyspark.sql import functions as F

    from featurepipe import bookkeeping, lake
    from featurepipe.spec import USER_PURCHASE

    marks = bookkeeping.dirty_days(spark)
    days = sorted({d for d, _ in marks})
    if not days:
        return {"rebuilt_days": 0, "tiles": 0, "pending_as_of_marked": 0}
    events = lake.read_table(spark, lake.CLEAN_TRANSACTIONS).where(F.col(EVENT_DATE).isin(days)).drop(EVENT_DATE)
    tiles = build_tiles(events, USER_PURCHASE).cache()
    lake.replace_dates(tiles, lake.TILES, EVENT_DATE, days)
    latest = bookkeeping.latest_published(spark)
    stale = [t for t in affected_as_of(days, USER_PURCHASE) if latest is not None and t <= latest]
    bookkeeping.mark_pending_as_of(spark, stale, label)
    bookkeeping.clear_dirty_days(spark, marks)
    return {
        "rebuilt_days": len(days),
        "rebuilt_day_range": f"{days[0]}..{days[-1]}",
        "tiles": tiles.count(),
        "pending_as_of_marked": len(stale),
    }


def main(argv: list[str] | None = None) -> int:
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-compute-tiles-{as_of.label}")
    write_step_report("compute_tiles", as_of, rebuild_tiles(spark, as_of.label))
    return 0


if __name__ == "__main__":
    sys.exit(main())
