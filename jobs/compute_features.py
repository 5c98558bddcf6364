"""compute_features: rebuild changed daily tiles, then one feature row per (entity, as-of T) for T in the run's range (SPEC §3).

A tile of event day d counts for as-of dates T with 1 <= T - d <= horizon (91 days); window Nd
takes the tiles with T - d <= N, i.e. events in [T - N days, T), computed as range windows over
each entity's day-ordered tiles. Rows are staged, not published: the feature suite checks them first.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING

from featurepipe.spec import Dtype, Feature, FeatureGroup, Op
from jobs.compute_tiles import EVENT_COUNT, EVENT_DATE, tile_stat

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

AS_OF_DATE = "as_of_date"
_DAY = "_day"  # days since 1970-01-01: the ordering of the range windows
_IS_AS_OF = "_is_as_of"
_SPARK_TYPES = {Dtype.INT64: "long", Dtype.FLOAT64: "double", Dtype.STRING: "string"}


def activity_grid(tiles: DataFrame, first: dt.date, last: dt.date, group: FeatureGroup) -> DataFrame:
    """(key, as_of_date) for every as-of date in [first, last] with a tile in [T - horizon, T).

    Consecutive tiles closer than the horizon form one island of activity, which covers as-of
    dates [first tile + 1, last tile + horizon]: rows are generated once per output row, not once
    per (tile, as-of date) pair.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key, horizon = group.join_key, group.row_horizon_days
    by_day = Window.partitionBy(key).orderBy(EVENT_DATE)
    starts = F.coalesce(F.datediff(F.col(EVENT_DATE), F.lag(EVENT_DATE).over(by_day)) > horizon, F.lit(True))
    islands = (
        tiles.select(key, EVENT_DATE)
        .withColumn("_island", F.sum(F.when(starts, 1).otherwise(0)).over(by_day.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy(key, "_island")
        .agg(F.min(EVENT_DATE).alias("_from"), F.max(EVENT_DATE).alias("_to"))
    )
    lo = F.greatest(F.date_add(F.col("_from"), 1), F.lit(first))
    hi = F.least(F.date_add(F.col("_to"), horizon), F.lit(last))
    return islands.where(lo <= hi).select(key, F.explode(F.sequence(lo, hi)).alias(AS_OF_DATE))


def _window(group: FeatureGroup, days: int):
    """Tiles of the `days` whole days before the row's day: events in [T - days, T)."""
    from pyspark.sql import Window

    return Window.partitionBy(group.join_key).orderBy(_DAY).rangeBetween(-days, -1)


def _scalar(feature: Feature, group: FeatureGroup) -> Column:
    """A non-MODE feature as a window aggregate over the tile rows before the as-of row."""
    from pyspark.sql import functions as F

    w = _window(group, feature.window_days)
    if feature.op is Op.COUNT:
        return _count_in_window(EVENT_COUNT, feature.window_days, group.join_key)
    if feature.op is Op.SUM:
        (stat,) = tile_stat(Op.SUM, feature.column)
        return F.coalesce(F.sum(stat).over(w), F.lit(0.0))
    if feature.op is Op.MAX:
        (stat,) = tile_stat(Op.MAX, feature.column)
        return F.coalesce(F.max(stat).over(w), F.lit(0.0))
    if feature.op is Op.AVG:
        total, count = tile_stat(Op.AVG, feature.column)
        n, s = _count_in_window(count, feature.window_days, group.join_key), F.sum(total).over(w)
        return F.when(n > 0, s / n).otherwise(F.lit(0.0))
    raise ValueError(f"{feature.name}: {feature.op} is not a scalar aggregation")


def _count_in_window(column: str, days: int, *keys: str) -> Column:
    """Sum of an integer column over the rows of [day - days, day - 1], 0 if none, as a difference
    of running totals: exact for integers, and linear in the rows where a sliding frame re-adds
    its whole frame at every row. (Float sums keep sliding frames: a difference of large running
    totals would lose the precision SPEC §3 requires.)"""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_day = Window.partitionBy(*keys).orderBy(_DAY)
    upto = F.sum(column).over(by_day.rangeBetween(Window.unboundedPreceding, -1))
    before = F.sum(column).over(by_day.rangeBetween(Window.unboundedPreceding, -days - 1))
    return F.coalesce(upto, F.lit(0)) - F.coalesce(before, F.lit(0))


def _day(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.datediff(F.col(column), F.lit(dt.date(1970, 1, 1))).cast("long")


def _mode(tiles: DataFrame, first: dt.date, last: dt.date, feature: Feature, group: FeatureGroup) -> DataFrame:
    """(key, _day, feature) for as-of dates in [first, last]: the most frequent value in the
    window, ties -> smallest; rows only where the window has a value (null otherwise).

    Per (entity, value): as-of rows only where the value's window is non-empty (islands of its
    days, as in `activity_grid`), and the window count as a difference of two running totals,
    `_count_in_window`.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key, n_days = group.join_key, feature.window_days
    (stat,) = tile_stat(Op.MODE, feature.column)
    counts = tiles.where(F.col(stat).isNotNull()).select(
        key, _day(EVENT_DATE).alias(_DAY), F.explode(F.col(stat)).alias("_value", "_n")
    )
    by_day = Window.partitionBy(key, "_value").orderBy(_DAY)
    starts = F.coalesce(F.col(_DAY) - F.lag(_DAY).over(by_day) > n_days, F.lit(True))
    islands = (
        counts.select(key, "_value", _DAY)
        .withColumn("_island", F.sum(F.when(starts, 1).otherwise(0)).over(by_day.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy(key, "_value", "_island")
        .agg(F.min(_DAY).alias("_from"), F.max(_DAY).alias("_to"))
    )
    lo = F.greatest(F.col("_from") + 1, F.lit(_epoch_day(first)))
    hi = F.least(F.col("_to") + n_days, F.lit(_epoch_day(last)))
    as_of_rows = islands.where(lo <= hi).select(
        key, "_value", F.explode(F.sequence(lo, hi)).alias(_DAY), F.lit(None).cast("long").alias("_n")
    )
    windowed = (
        counts.withColumn(_IS_AS_OF, F.lit(False))
        .unionByName(as_of_rows.withColumn(_IS_AS_OF, F.lit(True)))
        .withColumn("_in_window", _count_in_window("_n", n_days, key, "_value"))
        .where(F.col(_IS_AS_OF))
    )
    # the smallest (-count, value) is the most frequent value, ties broken by the smallest value
    return windowed.groupBy(key, _DAY).agg(
        F.min_by(F.col("_value"), F.struct(-F.col("_in_window"), F.col("_value"))).alias(feature.name)
    )


def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def features_from_tiles(tiles: DataFrame, first: dt.date, last: dt.date, group: FeatureGroup) -> DataFrame:
    """Feature rows for every as-of date in [first, last]: key, event_timestamp (= T), features, as_of_date.

    Tile rows and as-of rows share one day-ordered frame per entity; window N at an as-of row is
    the range frame [day - N, day - 1], exactly the events in [T - N days, T).
    """
    from pyspark.sql import functions as F

    key = group.join_key
    # one shuffle by entity: every window and aggregate below is per entity and reuses it; cached,
    # as four branches read it (the as-of grid, the scalar frame and the MODE counts and islands)
    tiles = tiles.where(
        F.col(EVENT_DATE).between(F.lit(first - dt.timedelta(days=group.row_horizon_days)), F.lit(last))
    ).repartition(key).cache()
    grid = activity_grid(tiles, first, last, group)
    stats = [c for c in tiles.columns if c not in (key, EVENT_DATE) and not c.startswith("counts_")]
    tile_rows = tiles.select(key, _day(EVENT_DATE).alias(_DAY), *stats, F.lit(False).alias(_IS_AS_OF))
    as_of_rows = grid.select(
        key, _day(AS_OF_DATE).alias(_DAY),
        *[F.lit(None).cast(tiles.schema[c].dataType).alias(c) for c in stats], F.lit(True).alias(_IS_AS_OF),
    )
    scalars = [f for f in group.features if f.op is not Op.MODE]
    rows = (
        tile_rows.unionByName(as_of_rows)
        .select(key, _DAY, _IS_AS_OF, *[_scalar(f, group).alias(f.name) for f in scalars])
        .where(F.col(_IS_AS_OF))
        .drop(_IS_AS_OF)
    )
    for feature in group.features:
        if feature.op is Op.MODE:
            rows = rows.join(_mode(tiles, first, last, feature, group), [key, _DAY], "left")
    as_of = F.date_add(F.lit(dt.date(1970, 1, 1)), F.col(_DAY).cast("int"))
    return rows.select(
        F.col(key),
        F.to_timestamp(as_of).alias("event_timestamp"),  # UTC midnight in the UTC session
        *[F.col(f.name).cast(_SPARK_TYPES[f.dtype]).alias(f.name) for f in group.features],
        as_of.alias(AS_OF_DATE),
    )


def plan_span(as_of, pending: list[dt.date], lookback_days: int) -> tuple:
    """(dates to compute, stale dates left for a backfill).

    The run's range, extended back to every pending (stale, published) as-of date within
    `lookback_days` before its end. Pending dates after the range wait for a later run.
    """
    from featurepipe.dates import AsOfRange

    horizon = as_of.end - dt.timedelta(days=lookback_days)
    repair = [d for d in pending if horizon <= d < as_of.start]
    too_old = [d for d in pending if d < horizon and d < as_of.start]
    return AsOfRange(min([as_of.start, *repair]), as_of.end), too_old


def stage_features(spark, as_of, lookback_days: int) -> tuple:
    """Compute and stage the rows of the run's span; returns (span, step report)."""
    from pyspark.sql import functions as F

    from featurepipe import bookkeeping, lake
    from featurepipe.spec import USER_PURCHASE
    from jobs.compute_tiles import tile_dates

    span, too_old = plan_span(as_of, bookkeeping.pending_as_of(spark), lookback_days)
    first, last = tile_dates(span.start, span.end, USER_PURCHASE)
    tiles = lake.read_range(spark, lake.TILES, EVENT_DATE, first, last)
    features = features_from_tiles(tiles, span.start, span.end, USER_PURCHASE).cache()
    lake.replace_partitions(features, lake.STAGED_FEATURES, AS_OF_DATE, span.start, span.end)
    count = next(f for f in USER_PURCHASE.features if f.op is Op.COUNT and f.window_days == USER_PURCHASE.max_window_days)
    stats = features.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(USER_PURCHASE.join_key).alias("users"),
        F.sum(F.when(F.col(count.name) == 0, 1).otherwise(0)).alias("expiry_rows"),
    ).first()
    report = {
        "span": str(span),
        "rows": stats["rows"],
        "users": stats["users"],
        "expiry_rows": stats["expiry_rows"] or 0,
        "repaired_as_of_days": (as_of.start - span.start).days,
        "staged": lake.STAGED_FEATURES,
    }
    if too_old:
        # late data older than the lookback: reported with the command that repairs it
        report["stale_as_of_not_repaired"] = len(too_old)
        report["repair_with"] = f"featurepipe backfill --start {too_old[0]} --end {too_old[-1]}"
        print(f"[compute_features] WARNING: {len(too_old)} published as-of dates ({too_old[0]}..{too_old[-1]}) "
              f"are stale from late data older than the {lookback_days}-day lookback; run: {report['repair_with']}")
    return span, report


def main(argv: list[str] | None = None) -> int:
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.reports import write_span, write_step_report
    from featurepipe.settings import get_settings
    from featurepipe.spark import get_spark
    from jobs.compute_tiles import rebuild_tiles

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    # one Spark application for the whole range: the changed tiles, then every as-of date from them
    spark = get_spark(f"featurepipe-compute-features-{as_of.label}")
    write_step_report("compute_tiles", as_of, rebuild_tiles(spark, as_of.label))
    span, report = stage_features(spark, as_of, get_settings().late_lookback_days)
    write_span(as_of, span)
    write_step_report("compute_features", as_of, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
