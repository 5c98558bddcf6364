"""On-demand features: computed at request time from request values and stored features (SPEC §7).

Pure Python, one value at a time, so a training set (request values from the entity table's
columns) and an online read (request values passed with the entity) run the very same code:
Feast's `on_demand_feature_view` in feature_repo/ calls `transform` in both. Which features exist,
their types and inputs are declared in `featurepipe.spec` (`USER_PURCHASE_ON_DEMAND`).
"""

from __future__ import annotations

import datetime as dt
import math
from numbers import Real
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurepipe.spec import OnDemandGroup


class RequestValueError(ValueError):
    """A request value that cannot be read, named with the field it came in."""


def utc_instant(value: Any, field: str = "event_timestamp") -> dt.datetime | None:
    """A request timestamp as an aware UTC datetime; None for a missing value.

    Accepts what reaches a transformation from each path: a datetime or pandas Timestamp (naive
    means UTC), seconds since the epoch (Feast's online protos, a JSON number) or an ISO 8601
    string (a JSON request, `--now`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dt.datetime):
        if value != value:  # pandas NaT
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    if isinstance(value, Real) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RequestValueError(f"request value {field}={value!r} is not an ISO 8601 timestamp") from None
        return utc_instant(parsed, field)
    raise RequestValueError(f"request value {field}={value!r} is not a timestamp (ISO 8601 text or epoch seconds)")


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise RequestValueError(f"request value {field}={value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise RequestValueError(f"request value {field}={value!r} is not a number")
    number = float(value)
    return None if math.isnan(number) else number


def hour_of_day(event_timestamp: Any) -> int | None:
    """0..23, the UTC hour of the request's instant."""
    instant = utc_instant(event_timestamp)
    return None if instant is None else instant.hour


def day_of_week(event_timestamp: Any) -> int | None:
    """0 = Monday .. 6 = Sunday, in UTC."""
    instant = utc_instant(event_timestamp)
    return None if instant is None else instant.weekday()


def is_weekend(event_timestamp: Any) -> bool | None:
    """Saturday or Sunday, in UTC."""
    instant = utc_instant(event_timestamp)
    return None if instant is None else instant.weekday() >= 5


def amount_vs_avg_basket(amount: Any, avg_basket_size_30d: Any) -> float | None:
    """The request's amount over the user's 30-day average basket; null when that average is 0
    (or unknown), never an infinity."""
    numerator = _number(amount, "amount")
    denominator = _number(avg_basket_size_30d, "avg_basket_size_30d")
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def transform(group: OnDemandGroup, inputs: dict[str, list]) -> dict[str, list]:
    """Every feature of `group` for each row of `inputs` (column name -> values, Feast's Python
    mode). Columns Feast leaves out (a type it gives no sample of) count as nulls."""
    rows = max((len(v) for v in inputs.values() if isinstance(v, list)), default=0)

    def column(name: str) -> list:
        values = inputs.get(name)
        return values if isinstance(values, list) else [None] * rows

    return {f.name: [f.compute(*args) for args in zip(*(column(i) for i in f.inputs))] for f in group.features}
