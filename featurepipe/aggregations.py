"""What each aggregation operation is, in one table: its type, the column it takes, its daily tile
columns (one aggregate over an entity's events of a day each), its window expression and its empty value.

The spec checks declarations against it, `featurepipe.tiles` builds tiles from it, `featurepipe.features`
builds windows from it and the GX feature suite reads its flags. A new operation is one entry
in `OPERATIONS` plus its tests. Importing this module imports no Spark: expressions are built
when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pyspark.sql import Column, WindowSpec

    from featurepipe.spec import Feature

EVENT_COUNT = "event_count"  # the tile column every group has: events of the (entity, day)
DAY = "_day"  # days since 1970-01-01: the order of the per-entity range windows


class Op(str, Enum):
    COUNT = "count"  # events in the window
    SUM = "sum"  # sum of the input column, 0.0 if none
    AVG = "avg"  # sum / count, 0.0 if none
    MEAN = "mean"  # sum / count, null if none (an average rating of no ratings is unknown, not 0)
    MAX = "max"  # max of the input column, 0.0 if none
    MODE = "mode"  # most frequent non-null value; ties -> smallest; null if none
    COUNT_DISTINCT = "count_distinct"  # distinct non-null values of the input column in the window (exact)
    RANK = "rank"  # 1 = largest value of another feature among the entities with a row at T (spec.Rank)


class Dtype(str, Enum):
    INT64 = "Int64"
    FLOAT64 = "Float64"
    STRING = "String"
    BOOL = "Bool"  # on-demand features only (spec.OnDemandFeature); no aggregation yields it


@dataclass(frozen=True)
class Operation:
    """One operation: what it takes and how tiles and windows compute it.

    `tiles(column)` maps each tile column to its aggregate over the events of one (entity, day)
    (None for a per-value map, built by `featurepipe.tiles`). `window(feature, frame)` is the
    feature at an as-of row, over the tile rows of the window; None for per-value operations
    (MODE), which `featurepipe.features` computes on a frame of their own.
    """

    dtype: Dtype
    column_kinds: tuple[str, ...]  # source column kinds it aggregates; () = it takes no column
    tiles: Callable[[str | None], dict[str, Column | None]]
    window: Callable[[Feature, WindowFrame], Column] | None
    empty: Any  # the value for an empty window (SPEC §3)
    monotone: bool = False  # a longer window never gives a smaller value (7d <= 30d <= 90d)

    @property
    def takes_column(self) -> bool:
        return bool(self.column_kinds)

    @property
    def numeric(self) -> bool:
        return self.dtype in (Dtype.INT64, Dtype.FLOAT64)


class WindowFrame:
    """Window specs over one entity's day-ordered frame of tile rows and as-of rows (`DAY` column)."""

    def __init__(self, *keys: str) -> None:
        self.keys = keys

    def sliding(self, days: int) -> WindowSpec:
        """Tile rows of the `days` whole days before the row's day: events in [T - days, T)."""
        from pyspark.sql import Window

        return Window.partitionBy(*self.keys).orderBy(DAY).rangeBetween(-days, -1)

    def count_in_window(self, column: str, days: int) -> Column:
        """Sum of an integer column over [day - days, day - 1], 0 if none, as a difference of running
        totals: exact for integers, and linear in the rows where a sliding frame re-adds its whole
        frame at every row. (Float sums keep sliding frames: a difference of large running totals
        would lose the precision SPEC §3 requires.)"""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        by_day = Window.partitionBy(*self.keys).orderBy(DAY)
        upto = F.sum(column).over(by_day.rangeBetween(Window.unboundedPreceding, -1))
        before = F.sum(column).over(by_day.rangeBetween(Window.unboundedPreceding, -days - 1))
        return F.coalesce(upto, F.lit(0)) - F.coalesce(before, F.lit(0))


def sum_column(column: str | None) -> str:
    return f"sum_{column}"


def max_column(column: str | None) -> str:
    return f"max_{column}"


def counts_column(column: str | None) -> str:
    return f"counts_{column}"


def distinct_column(column: str | None) -> str:
    return f"distinct_{column}"


def _count_tiles(_: str | None) -> dict:
    from pyspark.sql import functions as F

    return {EVENT_COUNT: F.count(F.lit(1)).cast("long")}


def _sum_tiles(column: str | None) -> dict:
    from pyspark.sql import functions as F

    return {sum_column(column): F.sum(F.col(column).cast("double"))}


def _max_tiles(column: str | None) -> dict:
    from pyspark.sql import functions as F

    return {max_column(column): F.max(F.col(column).cast("double"))}


def _distinct_tiles(column: str | None) -> dict:
    from pyspark.sql import functions as F

    # the day's distinct values, sorted (an exact set: windows union them, never add their sizes)
    return {distinct_column(column): F.array_sort(F.collect_set(F.col(column)))}


def _count_window(feature: Feature, frame: WindowFrame) -> Column:
    return frame.count_in_window(EVENT_COUNT, feature.window_days)


def _sum_window(feature: Feature, frame: WindowFrame) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.sum(sum_column(feature.column)).over(frame.sliding(feature.window_days)), F.lit(0.0))


def _avg_window(feature: Feature, frame: WindowFrame) -> Column:
    from pyspark.sql import functions as F

    n = frame.count_in_window(EVENT_COUNT, feature.window_days)
    total = F.sum(sum_column(feature.column)).over(frame.sliding(feature.window_days))
    return F.when(n > 0, total / n).otherwise(F.lit(0.0))


def _mean_window(feature: Feature, frame: WindowFrame) -> Column:
    from pyspark.sql import functions as F

    n = frame.count_in_window(EVENT_COUNT, feature.window_days)
    return F.when(n > 0, F.sum(sum_column(feature.column)).over(frame.sliding(feature.window_days)) / n)


def _max_window(feature: Feature, frame: WindowFrame) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.max(max_column(feature.column)).over(frame.sliding(feature.window_days)), F.lit(0.0))


OPERATIONS: dict[Op, Operation] = {
    Op.COUNT: Operation(Dtype.INT64, (), _count_tiles, _count_window, empty=0, monotone=True),
    Op.SUM: Operation(Dtype.FLOAT64, ("double",), _sum_tiles, _sum_window, empty=0.0, monotone=True),
    Op.AVG: Operation(Dtype.FLOAT64, ("double",), lambda c: {**_sum_tiles(c), **_count_tiles(c)}, _avg_window, empty=0.0),
    Op.MEAN: Operation(Dtype.FLOAT64, ("double",), lambda c: {**_sum_tiles(c), **_count_tiles(c)}, _mean_window,
                       empty=None),
    Op.MAX: Operation(Dtype.FLOAT64, ("double",), _max_tiles, _max_window, empty=0.0, monotone=True),
    # per-value counts per day (a map); the window is computed per value by featurepipe.features
    Op.MODE: Operation(Dtype.STRING, ("string",), lambda c: {counts_column(c): None}, None, empty=None),
    # per-day value sets; the window is computed per value by featurepipe.features
    Op.COUNT_DISTINCT: Operation(Dtype.INT64, ("string",), _distinct_tiles, None, empty=0, monotone=True),
    # no tiles, no window: computed across entities from the ranked feature (featurepipe.features);
    # an entity without a row has no rank
    Op.RANK: Operation(Dtype.INT64, (), lambda c: {}, None, empty=None),
}


def operation(op: Op) -> Operation:
    try:
        return OPERATIONS[op]
    except KeyError:
        raise ValueError(f"operation {op!r} has no entry in featurepipe.aggregations.OPERATIONS") from None
