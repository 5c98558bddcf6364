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
           "Rank", "SpecError", "Source", "GROUPS", "ON_DEMAND_GROUPS", "PRODUCT_PURCHASE", "PRODUCT_RATING",
           "RATINGS", "SOURCES", "TRANSACTIONS", "USER_PURCHASE", "USER_RATING", "group_named", "groups_of",
           "CATEGORY_EMBEDDINGS", "REFERENCE_VIEWS", "ReferenceView",
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
        if self.op is Op.RANK:
            raise SpecError(f"{where}: Op.RANK ranks another feature: declare it as Rank(name, by=feature) in the group's ranks")
        if not self.window_suffix and len(self.windows) != 1:
            raise SpecError(f"{where}: a name without window suffix needs exactly one window, got {self.windows}")

    def features(self) -> list[Feature]:
        return [
            Feature(f"{self.name}_{w}d" if self.window_suffix else self.name, self.op, self.column, w)
            for w in self.windows
        ]


@dataclass(frozen=True)
class Rank:
    """`name` = 1 for the entity with the largest `by` among the entities with a row at T, then
    2, ...: ties broken by the join key ascending, so the ranks of one T are 1..n without gaps."""

    name: str
    by: str  # a numeric feature of the same group

    def feature(self, by: Feature) -> Feature:
        return Feature(self.name, Op.RANK, by.name, by.window_days)


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
    # doubles: smaller values are quarantined (`<name>_too_small`); without it a required double must be > 0
    min_value: float | None = None
    integral: bool = False  # doubles: a value with a fraction is quarantined (`<name>_not_integer`)


@dataclass(frozen=True)
class Source:
    """A raw event source in the landing zone (SPEC §2): `$FEATUREPIPE_RAW_URI/<name>/`.

    Copies of one event (same `id_column`) are one event: the earliest timestamp wins, then the
    smallest value of each double column in declaration order (SPEC §2: the smallest amount)."""

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
            if c.min_value is not None and (c.kind != "double" or (c.max_value is not None and c.min_value > c.max_value)):
                raise SpecError(f"Source {self.name!r}: min_value of {c.name!r} needs a double column and a value "
                                "<= its max_value")
            if c.integral and c.kind != "double":
                raise SpecError(f"Source {self.name!r}: integral {c.name!r} needs a double column")
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
    ranks: tuple[Rank, ...] = ()
    description: str = ""
    # the catalog (`featurepipe catalog`), Feast tags and the GX suite's meta carry these
    owner: str = ""  # the team to page: who answers for the values
    # the newest published as-of may trail the newest landed event by at most this (monitoring's
    # freshness check reads it; a day lands before its as-of runs, so ~48 h is normal between runs)
    freshness_sla: dt.timedelta = dt.timedelta(hours=48)
    # bumped with every change of what the group computes (CHANGELOG.md; featurepipe/versions.py
    # fails the tests when the definition changes under the same version)
    version: int = 1

    def __post_init__(self) -> None:
        where = f"FeatureGroup {self.name!r}"
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise SpecError(f"{where}: version must be a whole number >= 1, got {self.version!r}")
        if not self.aggregations:
            raise SpecError(f"{where}: declares no aggregation")
        if not _NAME.match(self.name) or not _NAME.match(self.entity):
            raise SpecError(f"{where}: the group and entity names must be snake_case (a-z, 0-9, _)")
        if not isinstance(self.owner, str) or not self.owner.strip():
            raise SpecError(f"{where}: declares no owner (the team that answers for its values, e.g. owner=\"growth-data\")")
        if not isinstance(self.description, str) or not self.description.strip():
            raise SpecError(f"{where}: declares no description")
        if not isinstance(self.freshness_sla, dt.timedelta) or self.freshness_sla <= dt.timedelta(0):
            raise SpecError(f"{where}: freshness_sla must be a positive datetime.timedelta, got {self.freshness_sla!r}")
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
        if not isinstance(self.ranks, tuple):
            raise SpecError(f"{where}: ranks must be a tuple of Rank, got {self.ranks!r}")
        aggregated = {f.name: f for a in self.aggregations for f in a.features()}
        for rank in self.ranks:
            if not isinstance(rank, Rank) or not _NAME.match(rank.name):
                raise SpecError(f"{where}: ranks must be Rank(name, by=feature) with a snake_case name, got {rank!r}")
            ranked = aggregated.get(rank.by)
            if ranked is None or not operation(ranked.op).numeric:
                raise SpecError(f"{where}: rank {rank.name!r} orders by {rank.by!r}, which is not a numeric "
                                f"aggregated feature of the group ({', '.join(aggregated)})")
        seen: set[str] = set()
        for name in [*(f.name for a in self.aggregations for f in a.features()), *(r.name for r in self.ranks)]:
            if name in seen or name in (self.join_key, self.source.timestamp_column):
                raise SpecError(f"{where}: feature name {name!r} is declared twice (or clashes with a key column)")
            seen.add(name)

    @property
    def features(self) -> list[Feature]:
        aggregated = [f for a in self.aggregations for f in a.features()]
        by_name = {f.name: f for f in aggregated}
        return aggregated + [r.feature(by_name[r.by]) for r in self.ranks]

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

RATINGS = Source(
    name="ratings",
    columns=(
        Column("rating_id", "string", required=True, max_length=MAX_TEXT_LENGTH),
        Column("user_id", "string", required=True, max_length=MAX_TEXT_LENGTH),
        Column("product_id", "string", required=True, max_length=MAX_TEXT_LENGTH),
        Column("stars", "double", required=True, min_value=1, max_value=5, integral=True),
        Column("event_timestamp", "timestamp", required=True),
    ),
    id_column="rating_id",
    timestamp_column="event_timestamp",
)

# every raw source, in the order validate_raw ingests them; the first must land every day (the
# daily DAG waits for it), the others may be absent (a product with no ratings yet)
SOURCES = (TRANSACTIONS, RATINGS)

USER_PURCHASE = FeatureGroup(
    name="user_purchase_features",
    entity="user",
    join_key="user_id",
    source=TRANSACTIONS,
    description="Purchase activity per user over trailing 7/30/90-day windows, as of each UTC midnight.",
    owner="growth-data",
    freshness_sla=dt.timedelta(hours=48),
    aggregations=(
        Aggregation("transactions", Op.COUNT, windows=(7, 30, 90)),
        Aggregation("total_spent", Op.SUM, windows=(7, 30, 90), column="amount"),
        Aggregation("avg_basket_size", Op.AVG, windows=(30,), column="amount"),
        Aggregation("max_purchase", Op.MAX, windows=(90,), column="amount"),
        Aggregation("favorite_category", Op.MODE, windows=(90,), column="category", window_suffix=False),
    ),
    version=1,
)

PRODUCT_PURCHASE = FeatureGroup(
    name="product_purchase_features",
    entity="product",
    join_key="product_id",  # optional in the source: a transaction without one counts for no product
    source=TRANSACTIONS,
    description="Purchases, distinct buyers and revenue per product over trailing 7/30-day windows, and "
                "its popularity rank among the products with a row, as of each UTC midnight.",
    owner="catalog-data",
    freshness_sla=dt.timedelta(hours=48),
    aggregations=(
        Aggregation("purchases", Op.COUNT, windows=(7, 30)),
        Aggregation("buyers", Op.COUNT_DISTINCT, windows=(30,), column="user_id"),
        Aggregation("revenue", Op.SUM, windows=(30,), column="amount"),
        # the product's category as its recent purchases name it (the key of its category embedding)
        Aggregation("main_category", Op.MODE, windows=(30,), column="category", window_suffix=False),
    ),
    ranks=(Rank("popularity_rank_30d", by="purchases_30d"),),
    version=1,
)

PRODUCT_RATING = FeatureGroup(
    name="product_rating_features",
    entity="product",
    join_key="product_id",
    source=RATINGS,
    description="Average stars and number of ratings per product over the trailing 90 days, as of each UTC midnight.",
    owner="catalog-data",
    freshness_sla=dt.timedelta(hours=48),
    aggregations=(
        Aggregation("avg_rating", Op.MEAN, windows=(90,), column="stars"),
        Aggregation("ratings", Op.COUNT, windows=(90,)),
    ),
    version=1,
)

USER_RATING = FeatureGroup(
    name="user_rating_features",
    entity="user",
    join_key="user_id",
    source=RATINGS,
    description="Ratings a user gave over the trailing 90 days, as of each UTC midnight.",
    owner="growth-data",
    freshness_sla=dt.timedelta(hours=48),
    aggregations=(Aggregation("ratings_given", Op.COUNT, windows=(90,)),),
    version=1,
)

# every feature group, in the order the pipeline computes them
GROUPS = (USER_PURCHASE, PRODUCT_PURCHASE, PRODUCT_RATING, USER_RATING)


def groups_of(source: Source) -> tuple[FeatureGroup, ...]:
    return tuple(g for g in GROUPS if g.source.name == source.name)


def group_named(name: str) -> FeatureGroup:
    for group in GROUPS:
        if group.name == name:
            return group
    raise KeyError(f"no feature group {name!r}; the spec declares {', '.join(g.name for g in GROUPS)}")


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


@dataclass(frozen=True)
class ReferenceView:
    """Reference data (not aggregated from events) served as a feature view keyed by `join_key`,
    reached from another group's entity through one of its features (`via`): a product's
    `main_category` picks its category embedding. Its rows hold from the epoch on (no as-of)."""

    name: str
    entity: str
    join_key: str
    feature: str  # one array<double> feature
    via: tuple[FeatureGroup, str]  # (group, feature whose value is this view's key)
    description: str
    owner: str
    version: int

    def __post_init__(self) -> None:
        group, feature = self.via
        if feature not in group.feature_names or group.feature(feature).dtype is not Dtype.STRING:
            raise SpecError(f"ReferenceView {self.name!r}: via {group.name}.{feature}, which is not a string feature")

    @property
    def feature_names(self) -> list[str]:
        return [self.feature]


CATEGORY_EMBEDDINGS = ReferenceView(
    name="category_embeddings",
    entity="category",
    join_key="category",
    feature="category_embedding",
    via=(PRODUCT_PURCHASE, "main_category"),
    description="A 16-dimensional vector per product category (featurepipe/embeddings.py says how it is made), "
                "joined to a product through its main_category.",
    owner="catalog-data",
    version=1,  # featurepipe.embeddings.VERSION: the vectors' method and parameters
)
REFERENCE_VIEWS = (CATEGORY_EMBEDDINGS,)


def check_feature_names_unique(groups: tuple) -> None:
    """A feature name means one thing: bare names in training sets, online reads and Feast's
    result columns are unique across every group."""
    declared: dict[str, str] = {}
    for group in groups:
        for name in group.feature_names:
            if name in declared:
                raise SpecError(f"feature {name!r} is declared by both {declared[name]} and {group.name}: "
                                "feature names must be unique across groups")
            declared[name] = group.name


check_feature_names_unique((*GROUPS, *ON_DEMAND_GROUPS, *REFERENCE_VIEWS))
