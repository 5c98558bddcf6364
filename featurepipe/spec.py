"""The feature spec, declared once (SPEC §3).

The Spark job builds its columns from `USER_PURCHASE`, the Feast feature view its schema,
the Great Expectations suite its expectations and the tests their reference. Adding a
window is a one-line change to an `Aggregation` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Op(str, Enum):
    COUNT = "count"  # events in the window
    SUM = "sum"  # sum of the input column, 0.0 if none
    AVG = "avg"  # sum / count, 0.0 if none
    MAX = "max"  # max of the input column, 0.0 if none
    MODE = "mode"  # most frequent non-null value; ties -> smallest; null if none


class Dtype(str, Enum):
    INT64 = "Int64"
    FLOAT64 = "Float64"
    STRING = "String"


_OP_DTYPE = {Op.COUNT: Dtype.INT64, Op.SUM: Dtype.FLOAT64, Op.AVG: Dtype.FLOAT64, Op.MAX: Dtype.FLOAT64, Op.MODE: Dtype.STRING}


@dataclass(frozen=True)
class Feature:
    name: str
    op: Op
    column: str | None
    window_days: int

    @property
    def dtype(self) -> Dtype:
        return _OP_DTYPE[self.op]


@dataclass(frozen=True)
class Aggregation:
    """One aggregation over a column for several trailing windows of whole days."""

    name: str
    op: Op
    windows: tuple[int, ...]
    column: str | None = None
    # `favorite_category` carries no window suffix in the contract
    window_suffix: bool = True

    def features(self) -> list[Feature]:
        if not self.window_suffix and len(self.windows) != 1:
            raise ValueError(f"{self.name}: a name without window suffix needs exactly one window")
        return [
            Feature(f"{self.name}_{w}d" if self.window_suffix else self.name, self.op, self.column, w)
            for w in self.windows
        ]


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "string" | "double" | "timestamp"
    required: bool


@dataclass(frozen=True)
class Source:
    """A raw event source in the landing zone (SPEC §2)."""

    name: str
    columns: tuple[Column, ...]
    id_column: str
    timestamp_column: str

    @property
    def required(self) -> list[Column]:
        return [c for c in self.columns if c.required]


@dataclass(frozen=True)
class FeatureGroup:
    """Windowed aggregations of one source per entity, as of UTC midnights."""

    name: str
    entity: str
    join_key: str
    source: Source
    aggregations: tuple[Aggregation, ...]
    description: str = ""

    @property
    def features(self) -> list[Feature]:
        return [f for a in self.aggregations for f in a.features()]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def max_window_days(self) -> int:
        return max(w for a in self.aggregations for w in a.windows)

    @property
    def row_horizon_days(self) -> int:
        """A row for (entity, T) exists iff the entity has an event in [T - horizon, T).

        One day longer than the longest window: on the first day the longest window is
        empty the entity still gets a row, of zeros, so nothing keeps serving a stale
        non-zero value after activity stops.
        """
        return self.max_window_days + 1

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no feature {name!r}; it has {', '.join(self.feature_names)}")


TRANSACTIONS = Source(
    name="transactions",
    columns=(
        Column("transaction_id", "string", required=True),
        Column("user_id", "string", required=True),
        Column("product_id", "string", required=False),
        Column("category", "string", required=False),
        Column("amount", "double", required=True),
        Column("event_timestamp", "timestamp", required=True),
    ),
    id_column="transaction_id",
    timestamp_column="event_timestamp",
)

USER_PURCHASE = FeatureGroup(
    name="user_purchase_features",
    entity="user",
    join_key="user_id",
    source=TRANSACTIONS,
    description="Purchase activity per user over trailing 7/30/90-day windows, as of each UTC midnight.",
    aggregations=(
        Aggregation("transactions", Op.COUNT, windows=(7, 30, 90)),
        Aggregation("total_spent", Op.SUM, windows=(7, 30, 90), column="amount"),
        Aggregation("avg_basket_size", Op.AVG, windows=(30,), column="amount"),
        Aggregation("max_purchase", Op.MAX, windows=(90,), column="amount"),
        Aggregation("favorite_category", Op.MODE, windows=(90,), column="category", window_suffix=False),
    ),
)

FEATURE_GROUPS = {USER_PURCHASE.name: USER_PURCHASE}
