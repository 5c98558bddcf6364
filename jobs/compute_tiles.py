"""Daily tiles: the partial aggregates (one tile per user per event day), rebuilt for every changed day.

The first half of the `compute_features` Spark application (tiles, then every as-of date of the
range from them, in one application).

Windows of whole UTC days are sums (or maxima, or merged counts) of daily tiles, so features
never rescan raw events. Which statistics a tile keeps is derived from the feature spec.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from featurepipe.spec import FeatureGroup, Op

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

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
    """Valid, deduplicated events -> one row per (entity, event_date) with the spec's statistics.

    One pass: statistics per (entity, day, value of each MODE column), then per (entity, day),
    where each MODE column's per-value counts become a map (null when the day has no value).
    """
    from pyspark.sql import functions as F

    key = group.join_key
    dated = events.withColumn(EVENT_DATE, F.to_date(F.col(group.source.timestamp_column)))  # UTC session: the UTC day

    modes = list(dict.fromkeys(agg.column for agg in group.aggregations if agg.op is Op.MODE))
    # partial columns are named apart from the final ones (`_` prefix): no lateral alias ambiguity
    first: dict[str, Column] = {"_count": F.count(F.lit(1)).cast("long")}
    then: dict[str, Column] = {EVENT_COUNT: F.sum("_count").cast("long")}
    for agg in group.aggregations:
        if agg.op in (Op.SUM, Op.AVG):
            name = f"sum_{agg.column}"
            first[f"_{name}"], then[name] = F.sum(F.col(agg.column).cast("double")), F.sum(f"_{name}")
        if agg.op is Op.MAX:
            name = f"max_{agg.column}"
            first[f"_{name}"], then[name] = F.max(F.col(agg.column).cast("double")), F.max(f"_{name}")
    for column in modes:
        then[f"counts_{column}"] = _value_counts(column, len(modes) > 1)
    partial = dated.groupBy(key, EVENT_DATE, *modes).agg(*[e.alias(n) for n, e in first.items()])
    return partial.groupBy(key, EVENT_DATE).agg(*[e.alias(n) for n, e in then.items()])


def _value_counts(column: str, merge: bool) -> Column:
    """map value -> events of the day, from the (entity, day, values) partial rows; null if none.

    With several MODE columns one value spans several partial rows, whose counts are merged."""
    from pyspark.sql import functions as F

    entries = F.collect_list(F.when(F.col(column).isNotNull(), F.struct(F.col(column).alias("v"), F.col("_count").alias("n"))))
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
