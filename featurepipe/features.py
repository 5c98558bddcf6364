"""Feature rows from daily tiles: one row per (entity, as-of T) for every T of a span (SPEC §3).

A tile of event day d counts for as-of dates T with 1 <= T - d <= horizon (91 days); window Nd
takes the tiles with T - d <= N, i.e. events in [T - N days, T), computed as range windows over
each entity's day-ordered tiles (`featurepipe.aggregations` says how each operation reads them).
Rows are staged, not published: the feature suite checks them first.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from featurepipe.aggregations import DAY, Op, WindowFrame, counts_column, distinct_column, operation
from featurepipe.dates import AsOfRange
from featurepipe.lake import AS_OF_DATE, EVENT_DATE
from featurepipe.spec import Dtype, Feature, FeatureGroup

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_IS_AS_OF = "_is_as_of"
_EPOCH = dt.date(1970, 1, 1)
_SPARK_TYPES = {Dtype.INT64: "long", Dtype.FLOAT64: "double", Dtype.STRING: "string"}
# a MODE column with at most this many distinct values in the tiles read is computed in the
# entity's frame of scalar windows, one running count per value (`_pivoted_mode`); beyond it, per
# value in a frame of its own (`_mode`)
MODE_PIVOT_MAX = 32


def epoch_day(column: str) -> Column:
    from pyspark.sql import functions as F

    return F.datediff(F.col(column), F.lit(_EPOCH)).cast("long")


def covered_days(days: DataFrame, keys: list[str], reach: int, first: dt.date, last: dt.date) -> DataFrame:
    """(keys, DAY) for every day in [first, last] within `reach` days after one of the keys' days.

    `days` has the keys and a `DAY` column (days since the epoch). Consecutive days closer than
    `reach` form one island of activity, which covers days [first day + 1, last day + reach]: rows
    are generated once per output row, not once per (input day, covered day) pair.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_day = Window.partitionBy(*keys).orderBy(DAY)
    starts = F.coalesce(F.col(DAY) - F.lag(DAY).over(by_day) > reach, F.lit(True))
    islands = (
        days.select(*keys, DAY)
        .withColumn("_island", F.sum(F.when(starts, 1).otherwise(0)).over(by_day.rowsBetween(Window.unboundedPreceding, 0)))
        .groupBy(*keys, "_island")
        .agg(F.min(DAY).alias("_from"), F.max(DAY).alias("_to"))
    )
    lo = F.greatest(F.col("_from") + 1, F.lit(_epoch(first)))
    hi = F.least(F.col("_to") + reach, F.lit(_epoch(last)))
    return islands.where(lo <= hi).select(*keys, F.explode(F.sequence(lo, hi)).alias(DAY))


def activity_grid(tiles: DataFrame, first: dt.date, last: dt.date, group: FeatureGroup) -> DataFrame:
    """(key, DAY) for every as-of date in [first, last] with a tile in [T - horizon, T)."""
    days = tiles.select(group.join_key, epoch_day(EVENT_DATE).alias(DAY))
    return covered_days(days, [group.join_key], group.row_horizon_days, first, last)


def _mode(tiles: DataFrame, first: dt.date, last: dt.date, feature: Feature, group: FeatureGroup) -> DataFrame:
    """(key, DAY, feature) for as-of dates in [first, last]: the most frequent value in the
    window, ties -> smallest; rows only where the window has a value (null otherwise). For a MODE
    column with more than `MODE_PIVOT_MAX` values (fewer: `_pivoted_mode`).

    Per (entity, value): as-of rows only where the value's window is non-empty (`covered_days` of
    its days), and the window count as a difference of two running totals.
    """
    from pyspark.sql import functions as F

    key, n_days = group.join_key, feature.window_days
    stat = counts_column(feature.column)
    counts = tiles.where(F.col(stat).isNotNull()).select(
        key, epoch_day(EVENT_DATE).alias(DAY), F.explode(F.col(stat)).alias("_value", "_n")
    )
    as_of_rows = covered_days(counts, [key, "_value"], n_days, first, last).withColumn("_n", F.lit(None).cast("long"))
    windowed = (
        counts.withColumn(_IS_AS_OF, F.lit(False))
        .unionByName(as_of_rows.withColumn(_IS_AS_OF, F.lit(True)))
        .withColumn("_in_window", WindowFrame(key, "_value").count_in_window("_n", n_days))
        .where(F.col(_IS_AS_OF))
    )
    # the smallest (-count, value) is the most frequent value, ties broken by the smallest value
    return windowed.groupBy(key, DAY).agg(
        F.min_by(F.col("_value"), F.struct(-F.col("_in_window"), F.col("_value"))).alias(feature.name)
    )


def mode_values(tiles: DataFrame, group: FeatureGroup) -> dict[str, list[str]]:
    """The distinct values of each MODE column in `tiles`, sorted, for the columns that have at most
    `MODE_PIVOT_MAX` of them (one Spark job per column)."""
    from pyspark.sql import functions as F

    from featurepipe.tiles import mode_columns

    few = {}
    for column in mode_columns(group):
        found = (tiles.select(F.explode(F.map_keys(F.col(counts_column(column)))).alias("_value"))
                 .distinct().limit(MODE_PIVOT_MAX + 1).collect())
        if len(found) <= MODE_PIVOT_MAX:
            few[column] = sorted(r["_value"] for r in found)
    return few


def _value_count(column: str, index: int) -> str:
    return f"_n_{column}_{index}"


def _pivoted_mode(feature: Feature, values: list[str], frame: WindowFrame) -> Column:
    """The most frequent value in the window (ties -> smallest; null if none) at an as-of row of the
    scalar frame, from one running count per value (`_value_count` columns of the tile rows)."""
    from pyspark.sql import functions as F

    counts = [F.struct((-frame.count_in_window(_value_count(feature.column, i), feature.window_days)).alias("c"),
                       F.lit(value).alias("v"))
              for i, value in enumerate(values)]
    # the smallest (-count, value) among the values present: the most frequent, ties by the smallest value
    return F.array_min(F.filter(F.array(*counts), lambda e: e["c"] < 0))["v"]


def _distinct(tiles: DataFrame, first: dt.date, last: dt.date, feature: Feature, group: FeatureGroup) -> DataFrame:
    """(key, DAY, feature) for as-of dates in [first, last]: the distinct values in the window, exact.

    Per (entity, value): the as-of rows its window covers (`covered_days` of the value's days), then
    counted per (entity, as-of); as-of rows with no value in the window get no row here (0 after the join).
    """
    from pyspark.sql import functions as F

    key = group.join_key
    values = tiles.select(key, epoch_day(EVENT_DATE).alias(DAY), F.explode(F.col(distinct_column(feature.column))).alias("_value"))
    covered = covered_days(values, [key, "_value"], feature.window_days, first, last)
    return covered.groupBy(key, DAY).agg(F.count(F.lit(1)).alias(feature.name))


def _ranked(rows: DataFrame, feature: Feature, group: FeatureGroup) -> DataFrame:
    """Rows plus the rank of each entity by `feature.column` among the rows of its as-of date:
    1 = largest, ties by key ascending (1..n, no gaps)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(DAY).orderBy(F.col(feature.column).desc(), F.col(group.join_key).asc())
    return rows.withColumn(feature.name, F.row_number().over(order))


def _epoch(day: dt.date) -> int:
    return (day - _EPOCH).days


def features_from_tiles(tiles: DataFrame, first: dt.date, last: dt.date, group: FeatureGroup) -> DataFrame:
    """Feature rows for every as-of date in [first, last]: key, event_timestamp (= T), features, as_of_date.

    Tile rows and as-of rows share one day-ordered frame per entity; window N at an as-of row is
    the range frame [day - N, day - 1], exactly the events in [T - N days, T).
    """
    from pyspark.sql import functions as F

    key = group.join_key
    # one shuffle by entity: every window and aggregate below is per entity and reuses it; cached,
    # as four branches read it (the as-of grid, the scalar frame and the per-value counts and islands)
    tiles = tiles.where(
        F.col(EVENT_DATE).between(F.lit(first - dt.timedelta(days=group.row_horizon_days)), F.lit(last))
    ).repartition(key).cache()
    grid = activity_grid(tiles, first, last, group)
    stats = [c for c in tiles.columns
             if c not in (key, EVENT_DATE) and tiles.schema[c].dataType.typeName() not in ("map", "array")]
    pivoted = mode_values(tiles, group)
    value_counts = {_value_count(column, i): F.coalesce(F.col(counts_column(column))[value], F.lit(0).cast("long"))
                    for column, values in pivoted.items() for i, value in enumerate(values)}
    tile_rows = tiles.select(key, epoch_day(EVENT_DATE).alias(DAY), *stats,
                             *[count.alias(name) for name, count in value_counts.items()], F.lit(False).alias(_IS_AS_OF))
    as_of_rows = grid.select(
        key, DAY, *[F.lit(None).cast(tiles.schema[c].dataType).alias(c) for c in stats],
        *[F.lit(None).cast("long").alias(name) for name in value_counts], F.lit(True).alias(_IS_AS_OF),
    )
    frame = WindowFrame(key)
    scalars = [f for f in group.features if operation(f.op).window is not None]
    modes = [f for f in group.features if f.op is Op.MODE and f.column in pivoted]
    rows = (
        tile_rows.unionByName(as_of_rows)
        .select(key, DAY, _IS_AS_OF, *[operation(f.op).window(f, frame).alias(f.name) for f in scalars],
                *[_pivoted_mode(f, pivoted[f.column], frame).alias(f.name) for f in modes])
        .where(F.col(_IS_AS_OF))
        .drop(_IS_AS_OF)
    )
    for feature in group.features:  # per-value operations with many values: a frame of their own
        if feature.op is Op.MODE and feature.column not in pivoted:
            rows = rows.join(_mode(tiles, first, last, feature, group), [key, DAY], "left")
        elif feature.op is Op.COUNT_DISTINCT:
            rows = (rows.join(_distinct(tiles, first, last, feature, group), [key, DAY], "left")
                    .fillna(0, subset=[feature.name]))
    for feature in group.features:  # across entities, from the finished rows of each as-of date
        if feature.op is Op.RANK:
            rows = _ranked(rows, feature, group)
    as_of = F.date_add(F.lit(_EPOCH), F.col(DAY).cast("int"))
    return rows.select(
        F.col(key),
        F.to_timestamp(as_of).alias("event_timestamp"),  # UTC midnight in the UTC session
        *[F.col(f.name).cast(_SPARK_TYPES[f.dtype]).alias(f.name) for f in group.features],
        as_of.alias(AS_OF_DATE),
    )


def plan_span(as_of: AsOfRange, pending: list[dt.date], lookback_days: int, first_published: dt.date | None = None,
              covered: set[dt.date] | frozenset[dt.date] = frozenset()) -> tuple[AsOfRange, list[dt.date], list[dt.date]]:
    """(dates to compute, stale dates left for a backfill, gaps filled).

    The run's range, extended back within `lookback_days` before its end to every pending (stale,
    published) as-of date and to every gap: a date after the first published one (`first_published`)
    that no published span `covered` (its run failed or never ran). Pending dates after the range
    wait for a later run.
    """
    horizon = as_of.end - dt.timedelta(days=lookback_days)
    repair = [d for d in pending if horizon <= d < as_of.start]
    too_old = [d for d in pending if d < horizon and d < as_of.start]
    gaps: list[dt.date] = []
    if first_published is not None:
        day = max(horizon, first_published)
        while day < as_of.start:
            if day not in covered:
                gaps.append(day)
            day += dt.timedelta(days=1)
    return AsOfRange(min([as_of.start, *repair, *gaps]), as_of.end), too_old, gaps


def stage_features(spark: SparkSession, as_of: AsOfRange, lookback_days: int, run_id: str,
                   group: FeatureGroup | None = None) -> tuple[AsOfRange, dict]:
    """Compute and stage the rows of the run's span (its range plus late-data repairs) in the run's own
    staging table (`lake.staged_table`); returns (span, report)."""
    from pyspark.sql import functions as F

    from featurepipe import bookkeeping, lake
    from featurepipe.spec import USER_PURCHASE
    from featurepipe.tiles import read_tiles, tile_dates

    group = group or USER_PURCHASE
    first_published, covered = bookkeeping.published_dates(spark, group)
    span, too_old, gaps = plan_span(as_of, bookkeeping.pending_as_of(spark, group), lookback_days, first_published, covered)
    first, last = tile_dates(span.start, span.end, group)
    tiles = read_tiles(spark, group, first, last)
    features = features_from_tiles(tiles, span.start, span.end, group).cache()
    staged = lake.staged_table(run_id, group)
    lake.overwrite(features, staged, partition_by=AS_OF_DATE)
    longest = group.max_window_days
    count = next((f for f in group.features if f.dtype is Dtype.INT64 and f.window_days == longest), None)
    stats = features.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(group.join_key).alias("users"),
        (F.sum(F.when(F.col(count.name) == 0, 1).otherwise(0)) if count else F.lit(None)).alias("expiry_rows"),
    ).first()
    report = {
        "group": group.name,
        "span": str(span),
        "rows": stats["rows"],
        "entities": stats["users"],
        "expiry_rows": stats["expiry_rows"] or 0,
        "repaired_as_of_days": (as_of.start - span.start).days,
        "gaps_filled": len(gaps),
        "staged": staged,
    }
    features.unpersist()
    if gaps:
        print(f"[compute_features] {group.name}: filling {len(gaps)} as-of dates no run published ({gaps[0]}..{gaps[-1]})")
    if too_old:
        # late data older than the lookback: reported with the command that repairs it
        report["stale_as_of_not_repaired"] = len(too_old)
        report["repair_with"] = f"featurepipe backfill --start {too_old[0]} --end {too_old[-1]}"
        print(f"[compute_features] WARNING: {group.name}: {len(too_old)} published as-of dates ({too_old[0]}..{too_old[-1]}) "
              f"are stale from late data older than the {lookback_days}-day lookback; run: {report['repair_with']}")
    return span, report
