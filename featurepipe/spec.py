"""The feature spec, declared once (SPEC §3).

The Spark job builds its columns from `USER_PURCHASE`, the Feast feature view its schema,
the Great Expectations suite its expectations and the tests their reference. Adding a
window is a one-line change to an `Aggregation` below.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
from dataclasses import dataclass
from typing import Callable

from featurepipe import on_demand
from featurepipe.aggregations import Dtype, Op, operation

__all__ = ["Aggregation", "Column", "Dtype", "Feature", "FeatureGroup", "OnDemandFeature", "OnDemandGroup", "Op",
           "SpecError", "Source", "GROUPS", "ON_DEMAND_GROUPS", "TRANSACTIONS", "USER_PURCHASE",
           "USER_PURCHASE_ON_DEMAND"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # snake_case: feature, column and table names


class SpecError(ValueError):
    """A declaration that cannot work, named where it is declared."""


@dataclass(frozen=True)
class Feature:
    name: str
    op: Op
    column: str | None
    window_days: int

    @property
    def dtype(self) -> Dtype:
        return operation(self.op).dtype


@dataclass(frozen=True)
class Aggregation:
    """One aggregation over a column for several trailing windows of whole days."""

    name: str
    op: Op
    windows: tuple[int, ...]
    column: str | None = None
    # `favorite_category` carries no window suffix in the contract
    window_suffix: bool = True

    def __post_init__(self) -> None:
        where = f"Aggregation {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise SpecError(f"{where}: the name must be snake_case (a-z, 0-9, _)")
        if not isinstance(self.op, Op):
            raise SpecError(f"{where}: op must be one of {', '.join('Op.' + o.name for o in Op)}, got {self.op!r}")
        op = operation(self.op)
        if op.takes_column and not self.column:
            raise SpecError(f"{where}: Op.{self.op.name} needs a column (e.g. column=\"amount\")")
        if not op.takes_column and self.column is not None:
            raise SpecError(f"{where}: Op.{self.op.name} takes no column, got column={self.column!r}")
        if not isinstance(self.windows, tuple) or not self.windows:
            raise SpecError(f"{where}: windows must be a non-empty tuple of days, e.g. (7, 30), got {self.windows!r}")
        for w in self.windows:
            if not isinstance(w, int) or isinstance(w, bool) or w <= 0:
                raise SpecError(f"{where}: every window must be a whole number of days > 0, got {w!r}")
        if len(set(self.windows)) != len(self.windows):
            raise SpecError(f"{where}: a window is listed twice in {self.windows}")
        if not self.window_suffix and len(self.windows) != 1:
            raise SpecError(f"{where}: a name without window suffix needs exactly one window, got {self.windows}")

    def features(self) -> list[Feature]:
        return [
            Feature(f"{self.name}_{w}d" if self.window_suffix else self.name, self.op, self.column, w)
            for w in self.windows
        ]


# limits every raw row must respect (SPEC §2 plus the bounds that keep sums finite and rows small);
# a row past one is quarantined with its reason, like any other broken rule
MAX_TEXT_LENGTH = 256  # characters, any string column (ids, categories)
MAX_AMOUNT = 1e9  # a double column's upper bound: 91 days of such amounts stay far from overflow
FUTURE_TOLERANCE = dt.timedelta(hours=1)  # clock skew allowed between a producer and the landing zone


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "string" | "double" | "timestamp"
    required: bool
    max_length: int | None = None  # strings: longer values are quarantined (`<name>_too_long`)
    max_value: float | None = None  # doubles: larger values are quarantined (`<name>_too_large`)


@dataclass(frozen=True)
class Source:
    """A raw event source in the landing zone (SPEC §2)."""

    name: str
    columns: tuple[Column, ...]
    id_column: str
    timestamp_column: str
    # an event stamped later than its file's arrival plus this is quarantined (`<timestamp>_in_future`)
    future_tolerance: dt.timedelta = FUTURE_TOLERANCE

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise SpecError(f"Source {self.name!r}: a column is declared twice in {names}")
        for column, kind in ((self.id_column, "string"), (self.timestamp_column, "timestamp")):
            found = next((c for c in self.columns if c.name == column), None)
            if found is None or found.kind != kind or not found.required:
                raise SpecError(f"Source {self.name!r}: {column!r} must be a required {kind} column")
        for c in self.columns:
            if c.kind not in ("string", "double", "timestamp"):
                raise SpecError(f"Source {self.name!r}: column {c.name!r} has unknown kind {c.kind!r}")
            if c.max_length is not None and (c.kind != "string" or c.max_length < 1):
                raise SpecError(f"Source {self.name!r}: max_length of {c.name!r} needs a string column and a value >= 1")
            if c.max_value is not None and (c.kind != "double" or not c.max_value > 0):
                raise SpecError(f"Source {self.name!r}: max_value of {c.name!r} needs a double column and a value > 0")
        if self.future_tolerance < dt.timedelta(0):
            raise SpecError(f"Source {self.name!r}: future_tolerance must be >= 0, got {self.future_tolerance}")

    @property
    def required(self) -> list[Column]:
        return [c for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"source {self.name!r} has no column {name!r}")


@dataclass(frozen=True)
class FeatureGroup:
    """Windowed aggregations of one source per entity, as of UTC midnights."""

    name: str
    entity: str
    join_key: str
    source: Source
    aggregations: tuple[Aggregation, ...]
    description: str = ""
    # bumped with every change of what the group computes (CHANGELOG.md; featurepipe/versions.py
    # fails the tests when the definition changes under the same version)
    version: int = 1

    def __post_init__(self) -> None:
        where = f"FeatureGroup {self.name!r}"
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise SpecError(f"{where}: version must be a whole number >= 1, got {self.version!r}")
        if not self.aggregations:
            raise SpecError(f"{where}: declares no aggregation")
        columns = {c.name: c for c in self.source.columns}
        if self.join_key not in columns:
            raise SpecError(f"{where}: join key {self.join_key!r} is not a column of source {self.source.name!r}")
        for agg in self.aggregations:
            if agg.column is None:
                continue
            column = columns.get(agg.column)
            if column is None:
                raise SpecError(f"{where}: aggregation {agg.name!r} reads {agg.column!r}, which source "
                                f"{self.source.name!r} does not have (it has {', '.join(columns)})")
            kinds = operation(agg.op).column_kinds
            if column.kind not in kinds:
                raise SpecError(f"{where}: aggregation {agg.name!r}: Op.{agg.op.name} needs a {' or '.join(kinds)} "
                                f"column, {agg.column!r} is {column.kind}")
        seen: set[str] = set()
        for name in [f.name for a in self.aggregations for f in a.features()]:
            if name in seen or name in (self.join_key, self.source.timestamp_column):
                raise SpecError(f"{where}: feature name {name!r} is declared twice (or clashes with a key column)")
            seen.add(name)

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
        Column("transaction_id", "string", required=True, max_length=MAX_TEXT_LENGTH),
        Column("user_id", "string", required=True, max_length=MAX_TEXT_LENGTH),
        Column("product_id", "string", required=False, max_length=MAX_TEXT_LENGTH),
        Column("category", "string", required=False, max_length=MAX_TEXT_LENGTH),
        Column("amount", "double", required=True, max_value=MAX_AMOUNT),
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
    version=1,
)

# every feature group, in the order the pipeline computes them
GROUPS = (USER_PURCHASE,)


@dataclass(frozen=True)
class OnDemandFeature:
    """A feature computed at request time by `compute`, a pure function of `inputs` (request
    fields and stored features, in the order of its parameters), one value at a time."""

    name: str
    dtype: Dtype
    compute: Callable
    inputs: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class OnDemandGroup:
    """On-demand features over a stored feature group plus request fields (SPEC §7): Feast's
    on-demand feature view of the same name, identical in training sets and online reads."""

    name: str
    base: FeatureGroup
    request: tuple[Column, ...]
    features: tuple[OnDemandFeature, ...]
    description: str = ""
    version: int = 1

    def __post_init__(self) -> None:
        where = f"OnDemandGroup {self.name!r}"
        if not _NAME.match(self.name):
            raise SpecError(f"{where}: the name must be snake_case (a-z, 0-9, _)")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise SpecError(f"{where}: version must be a whole number >= 1, got {self.version!r}")
        if not self.features:
            raise SpecError(f"{where}: declares no feature")
        request = [c.name for c in self.request]
        for c in self.request:
            if c.kind not in ("double", "timestamp"):
                raise SpecError(f"{where}: request field {c.name!r} has kind {c.kind!r}; use double or timestamp")
        taken = set(self.base.feature_names) | set(request) | {self.base.join_key}
        for f in self.features:
            if not _NAME.match(f.name) or f.name in taken:
                raise SpecError(f"{where}: feature name {f.name!r} is not snake_case or is declared twice "
                                f"(or clashes with a stored feature, request field or key)")
            taken.add(f.name)
            if not f.inputs:
                raise SpecError(f"{where}: feature {f.name!r} reads no input")
            for name in f.inputs:
                if name not in request and name not in self.base.feature_names:
                    raise SpecError(f"{where}: feature {f.name!r} reads {name!r}, which is neither a request field "
                                    f"({', '.join(request)}) nor a feature of {self.base.name}")
            parameters = list(inspect.signature(f.compute).parameters)
            if parameters != list(f.inputs):
                raise SpecError(f"{where}: feature {f.name!r}: compute takes ({', '.join(parameters)}), "
                                f"inputs are ({', '.join(f.inputs)})")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def stored_inputs(self) -> list[str]:
        """The base group's features the transformation reads, in the base group's order."""
        read = {i for f in self.features for i in f.inputs}
        return [n for n in self.base.feature_names if n in read]

    def feature(self, name: str) -> OnDemandFeature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no feature {name!r}; it has {', '.join(self.feature_names)}")

    def request_fields(self, names: list[str]) -> list[str]:
        """The request fields the features `names` read, in declaration order."""
        read = {i for n in names for i in self.feature(n).inputs}
        return [c.name for c in self.request if c.name in read]


USER_PURCHASE_ON_DEMAND = OnDemandGroup(
    name="user_purchase_on_demand",
    base=USER_PURCHASE,
    request=(
        Column("amount", "double", required=False),
        Column("event_timestamp", "timestamp", required=False),
    ),
    description="Request-time features of a purchase: its UTC hour and weekday, its amount against the user's average.",
    features=(
        OnDemandFeature("hour_of_day", Dtype.INT64, on_demand.hour_of_day, ("event_timestamp",),
                        "0..23, UTC hour of the request"),
        OnDemandFeature("day_of_week", Dtype.INT64, on_demand.day_of_week, ("event_timestamp",),
                        "0 = Monday .. 6 = Sunday, UTC"),
        OnDemandFeature("is_weekend", Dtype.BOOL, on_demand.is_weekend, ("event_timestamp",),
                        "Saturday or Sunday, UTC"),
        OnDemandFeature("amount_vs_avg_basket_30d", Dtype.FLOAT64, on_demand.amount_vs_avg_basket,
                        ("amount", "avg_basket_size_30d"), "request amount / avg_basket_size_30d, null when that is 0"),
    ),
    version=1,
)

ON_DEMAND_GROUPS = (USER_PURCHASE_ON_DEMAND,)
