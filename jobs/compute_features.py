"""compute_features: daily tiles -> one feature row per (entity, as-of T) for T in the run's range (SPEC §3).

A tile of event day d counts for as-of dates T with 1 <= T - d <= horizon (91 days); window Nd
takes the tiles with T - d <= N, i.e. events in [T - N days, T). Rows are staged, not published:
the feature suite checks them first.
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
AGE = "_age_days"
_SPARK_TYPES = {Dtype.INT64: "long", Dtype.FLOAT64: "double", Dtype.STRING: "string"}


def _scalar(feature: Feature) -> Column:
    """The aggregate over the exploded (entity, T, tile) rows for a non-MODE feature."""
    from pyspark.sql import functions as F

    in_window = F.col(AGE) <= F.lit(feature.window_days)
    if feature.op is Op.COUNT:
        return F.sum(F.when(in_window, F.col(EVENT_COUNT)).otherwise(F.lit(0)))
    if feature.op is Op.SUM:
        (stat,) = tile_stat(Op.SUM, feature.column)
        return F.sum(F.when(in_window, F.col(stat)).otherwise(F.lit(0.0)))
    if feature.op is Op.MAX:
        (stat,) = tile_stat(Op.MAX, feature.column)
        return F.coalesce(F.max(F.when(in_window, F.col(stat))), F.lit(0.0))
    if feature.op is Op.AVG:
        total, count = tile_stat(Op.AVG, feature.column)
        n = F.sum(F.when(in_window, F.col(count)).otherwise(F.lit(0)))
        s = F.sum(F.when(in_window, F.col(total)).otherwise(F.lit(0.0)))
        return F.when(n > 0, s / n).otherwise(F.lit(0.0))
    raise ValueError(f"{feature.name}: {feature.op} is not a scalar aggregation")


def _mode(spread: DataFrame, feature: Feature, key: str) -> DataFrame:
    """(key, as_of_date, feature): most frequent value in the window, ties -> smallest, null if none."""
    from pyspark.sql import functions as F

    (stat,) = tile_stat(Op.MODE, feature.column)
    counts = (
        spread.where((F.col(AGE) <= feature.window_days) & F.col(stat).isNotNull())
        .select(key, AS_OF_DATE, F.explode(F.col(stat)).alias("_value", "_n"))
        .groupBy(key, AS_OF_DATE, "_value")
        .agg(F.sum("_n").alias("_n"))
    )
    # the smallest (-count, value) is the most frequent value, ties broken by the smallest value
    return counts.groupBy(key, AS_OF_DATE).agg(
        F.min_by(F.col("_value"), F.struct(-F.col("_n"), F.col("_value"))).alias(feature.name)
    )


def spread_tiles(tiles: DataFrame, first: dt.date, last: dt.date, group: FeatureGroup) -> DataFrame:
    """Each tile once per as-of date in [first, last] whose row horizon covers it, with its age in days."""
    from pyspark.sql import functions as F

    horizon = group.row_horizon_days
    d = F.col(EVENT_DATE)
    lo = F.greatest(F.date_add(d, 1), F.lit(first))
    hi = F.least(F.date_add(d, horizon), F.lit(last))
    return (
        tiles.where((F.date_add(d, 1) <= F.lit(last)) & (F.date_add(d, horizon) >= F.lit(first)))
        .withColumn(AS_OF_DATE, F.explode(F.sequence(lo, hi)))
        .withColumn(AGE, F.datediff(F.col(AS_OF_DATE), d))
    )


def features_from_tiles(tiles: DataFrame, first: dt.date, last: dt.date, group: FeatureGroup) -> DataFrame:
    """Feature rows for every as-of date in [first, last]: key, event_timestamp (= T), features, as_of_date."""
    from pyspark.sql import functions as F

    key = group.join_key
    spread = spread_tiles(tiles, first, last, group)
    scalars = [f for f in group.features if f.op is not Op.MODE]
    rows = spread.groupBy(key, AS_OF_DATE).agg(*[_scalar(f).alias(f.name) for f in scalars])
    for feature in group.features:
        if feature.op is Op.MODE:
            rows = rows.join(_mode(spread, feature, key), [key, AS_OF_DATE], "left")
    return rows.select(
        F.col(key),
        F.to_timestamp(F.col(AS_OF_DATE)).alias("event_timestamp"),  # UTC midnight in the UTC session
        *[F.col(f.name).cast(_SPARK_TYPES[f.dtype]).alias(f.name) for f in group.features],
        F.col(AS_OF_DATE),
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

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-compute-features-{as_of.label}")
    span, report = stage_features(spark, as_of, get_settings().late_lookback_days)
    write_span(as_of, span)
    write_step_report("compute_features", as_of, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
