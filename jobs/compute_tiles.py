"""compute_tiles: clean transactions -> daily partial aggregates per entity (one tile per user per event day).

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


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import functions as F

    from featurepipe import lake
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark
    from featurepipe.spec import USER_PURCHASE

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-compute-tiles-{as_of.label}")
    first, last = tile_dates(as_of.start, as_of.end, USER_PURCHASE)
    events = lake.read_range(spark, lake.CLEAN_TRANSACTIONS, EVENT_DATE, first, last).drop(EVENT_DATE)
    tiles = build_tiles(events, USER_PURCHASE).cache()
    lake.replace_partitions(tiles, lake.TILES, EVENT_DATE, first, last)
    stats = tiles.agg(F.count(F.lit(1)).alias("tiles"), F.countDistinct(USER_PURCHASE.join_key).alias("users")).first()
    write_step_report(
        "compute_tiles",
        as_of,
        {"tile_days": f"{first}..{last}", "tiles": stats["tiles"], "users": stats["users"]},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
