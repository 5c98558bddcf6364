"""Daily tiles: the partial aggregates (one tile per entity per UTC event day), rebuilt for every changed day.

Windows of whole UTC days are sums (or maxima, or merged counts) of daily tiles, so features
never rescan raw events. Which tile columns exist is derived from the spec through
`featurepipe.aggregations.OPERATIONS`. `compute_features` rebuilds the changed tiles first, then
computes every as-of date of its range from them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from featurepipe.aggregations import EVENT_COUNT, Op, counts_column, operation
from featurepipe.lake import EVENT_DATE
from featurepipe.spec import FeatureGroup

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_GROUP_COUNT = f"_{EVENT_COUNT}"  # events of one (entity, day, MODE values) group: the MODE maps count these


def mode_columns(group: FeatureGroup) -> list[str]:
    """Source columns with per-value counts in the tiles (one per MODE column, in declaration order)."""
    return list(dict.fromkeys(agg.column for agg in group.aggregations if agg.op is Op.MODE))


def build_tiles(events: DataFrame, group: FeatureGroup) -> DataFrame:
    """Valid, deduplicated events -> one row per (entity, event_date) with the spec's tile columns.

    One pass: partials per (entity, day, value of each MODE column), then merged per (entity, day),
    where each MODE column's per-value counts become a map (null when the day has no value).
    """
    from pyspark.sql import functions as F

    key = group.join_key
    dated = events.withColumn(EVENT_DATE, F.to_date(F.col(group.source.timestamp_column)))  # UTC session: the UTC day
    modes = mode_columns(group)
    # partial columns are named apart from the final ones (`_` prefix): no lateral alias ambiguity
    partials: dict[str, Column] = {}
    merges: dict[str, Column] = {}
    for agg in (*group.aggregations, None):  # None: the event count every tile keeps
        tiles = operation(Op.COUNT if agg is None else agg.op).tiles(None if agg is None else agg.column)
        for name, (partial, merge) in tiles.items():
            if partial is not None:
                partials[f"_{name}"], merges[name] = partial, merge(f"_{name}")
    for column in modes:
        merges[counts_column(column)] = _value_counts(column, len(modes) > 1)
    partial_rows = dated.groupBy(key, EVENT_DATE, *modes).agg(*[e.alias(n) for n, e in partials.items()])
    return partial_rows.groupBy(key, EVENT_DATE).agg(*[e.alias(n) for n, e in merges.items()])


def _value_counts(column: str, merge: bool) -> Column:
    """map value -> events of the day, from the (entity, day, values) partial rows; null if none.

    With several MODE columns one value spans several partial rows, whose counts are merged."""
    from pyspark.sql import functions as F

    entries = F.collect_list(F.when(F.col(column).isNotNull(), F.struct(F.col(column).alias("v"), F.col(_GROUP_COUNT).alias("n"))))
    if merge:
        entries = F.transform(
            F.array_distinct(F.transform(entries, lambda e: e["v"])),
            lambda v: F.struct(v.alias("v"), F.aggregate(F.filter(entries, lambda e: e["v"] == v), F.lit(0).cast("long"),
                                                          lambda acc, e: acc + e["n"]).alias("n")),
        )
    counts = F.map_from_entries(entries)
    return F.when(F.size(counts) > 0, counts)


def tile_dates(first_as_of: dt.date, last_as_of: dt.date, group: FeatureGroup) -> tuple[dt.date, dt.date]:
    """Event days whose tiles the as-of range reads: [first - horizon, last - 1]."""
    return first_as_of - dt.timedelta(days=group.row_horizon_days), last_as_of - dt.timedelta(days=1)


def affected_as_of(days: list[dt.date], group: FeatureGroup) -> list[dt.date]:
    """As-of dates whose rows read a tile of one of `days`: T with 1 <= T - d <= horizon."""
    return sorted({d + dt.timedelta(days=k) for d in days for k in range(1, group.row_horizon_days + 1)})


def rebuild_tiles(spark: SparkSession, label: str, group: FeatureGroup | None = None) -> dict:
    """Rebuild the tiles of every dirty event day (whatever run marked it); returns the report.

    Published as-of dates that read a rebuilt tile are marked pending, for `stage_features` to
    repair. Only days that changed are read: the cost follows the landing, not the history.
    """
    from pyspark.sql import functions as F

    from featurepipe import bookkeeping, lake
    from featurepipe.spec import USER_PURCHASE

    group = group or USER_PURCHASE
    marks = bookkeeping.dirty_days(spark)
    days = sorted({d for d, _ in marks})
    if not days:
        return {"rebuilt_days": 0, "tiles": 0, "pending_as_of_marked": 0}
    events = lake.read_table(spark, lake.CLEAN_TRANSACTIONS).where(F.col(EVENT_DATE).isin(days)).drop(EVENT_DATE)
    tiles = build_tiles(events, group).cache()
    lake.replace_dates(tiles, lake.TILES, EVENT_DATE, days)
    # dates that exist or should exist (gap repair fills between the first and newest published);
    # never dates before the first publish, which no run would ever repair
    first, covered = bookkeeping.published_dates(spark)
    stale = [t for t in affected_as_of(days, group) if first is not None and first <= t <= max(covered)]
    bookkeeping.mark_pending_as_of(spark, stale, label)
    bookkeeping.clear_dirty_days(spark, marks)
    return {
        "rebuilt_days": len(days),
        "rebuilt_day_range": f"{days[0]}..{days[-1]}",
        "tiles": tiles.count(),
        "pending_as_of_marked": len(stale),
    }
