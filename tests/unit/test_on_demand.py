"""On-demand features (SPEC §7): the pure functions, their declaration and the request values of an online read."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from featurepipe import on_demand
from featurepipe.feast_store import FeatureRefError, request_fields, request_values
from featurepipe.spec import USER_PURCHASE, USER_PURCHASE_ON_DEMAND, Column, Dtype, OnDemandFeature, OnDemandGroup, SpecError

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2025, 3, 8, 23, 30, tzinfo=UTC),
        dt.datetime(2025, 3, 8, 23, 30),  # naive: UTC
        pd.Timestamp("2025-03-08T23:30:00Z"),
        dt.datetime(2025, 3, 9, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # Sunday locally, Saturday in UTC
        "2025-03-08T23:30:00Z",
        "2025-03-08T18:30:00-05:00",
        1741476600,  # epoch seconds, as Feast's online protos and JSON numbers carry it
        1741476600.0,
    ],
)
def test_time_features_read_the_request_instant_in_utc(value) -> None:
    assert on_demand.utc_instant(value) == dt.datetime(2025, 3, 8, 23, 30, tzinfo=UTC)
    assert (on_demand.hour_of_day(value), on_demand.day_of_week(value), on_demand.is_weekend(value)) == (23, 5, True)


def test_monday_is_zero_and_a_missing_instant_gives_nulls() -> None:
    monday = dt.datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
    assert (on_demand.hour_of_day(monday), on_demand.day_of_week(monday), on_demand.is_weekend(monday)) == (0, 0, False)
    sunday_end = dt.datetime(2025, 3, 9, 23, 59, 59, 999999, tzinfo=UTC)
    assert (on_demand.day_of_week(sunday_end), on_demand.is_weekend(sunday_end)) == (6, True)
    for missing in (None, float("nan"), pd.NaT):
        assert (on_demand.hour_of_day(missing), on_demand.day_of_week(missing), on_demand.is_weekend(missing)) == (None,) * 3


def test_amount_vs_average_basket_is_null_when_the_average_is_zero_or_unknown() -> None:
    ratio = on_demand.amount_vs_avg_basket
    assert ratio(42.0, 21.0) == 2.0
    assert ratio("42", 21) == 2.0  # a JSON or command-line value
    assert ratio(np.float64(3.0), np.float64(1.5)) == 2.0
    for amount, average in [(42.0, 0.0), (42.0, None), (42.0, float("nan")), (None, 21.0), (float("nan"), 21.0)]:
        assert ratio(amount, average) is None, (amount, average)
    assert ratio(0.0, 21.0) == 0.0


@pytest.mark.parametrize("value, message", [("yesterday", "not an ISO 8601 timestamp"), (True, "is not a timestamp"),
                                            ([1], "is not a timestamp")])
def test_an_unreadable_timestamp_is_named(value, message: str) -> None:
    with pytest.raises(on_demand.RequestValueError, match=message):
        on_demand.utc_instant(value)


def test_an_unreadable_amount_is_named() -> None:
    with pytest.raises(on_demand.RequestValueError, match="request value amount='lots' is not a number"):
        on_demand.amount_vs_avg_basket("lots", 2.0)


def test_transform_computes_every_feature_per_row_and_missing_columns_are_nulls() -> None:
    out = on_demand.transform(USER_PURCHASE_ON_DEMAND, {
        "amount": [10.0, 5.0], "avg_basket_size_30d": [4.0, 0.0],
        "event_timestamp": [dt.datetime(2025, 3, 3, 7, tzinfo=UTC), "2025-03-08T12:00:00Z"],
    })
    assert out == {"hour_of_day": [7, 12], "day_of_week": [0, 5], "is_weekend": [False, True],
                   "amount_vs_avg_basket_30d": [2.5, None]}
    # Feast's type inference leaves out a column it has no sample value for: nulls, not a failure
    assert on_demand.transform(USER_PURCHASE_ON_DEMAND, {"amount": [1.0], "avg_basket_size_30d": None,
                                                         "event_timestamp": None})["hour_of_day"] == [None]


def _ratio(amount, avg_basket_size_30d):
    return None


@pytest.mark.parametrize(
    "feature, message",
    [
        (OnDemandFeature("x", Dtype.FLOAT64, _ratio, ("amount", "avg_basket")), "reads 'avg_basket', which is neither"),
        (OnDemandFeature("x", Dtype.FLOAT64, _ratio, ("avg_basket_size_30d", "amount")), "compute takes (amount, avg_basket_size_30d)"),
        (OnDemandFeature("transactions_7d", Dtype.FLOAT64, _ratio, ("amount", "avg_basket_size_30d")), "declared twice"),
        (OnDemandFeature("Ratio", Dtype.FLOAT64, _ratio, ("amount", "avg_basket_size_30d")), "snake_case"),
    ],
)
def test_an_on_demand_feature_that_cannot_work_fails_where_it_is_declared(feature: OnDemandFeature, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        dataclasses.replace(USER_PURCHASE_ON_DEMAND, features=(feature,))


def test_a_request_field_is_a_double_or_a_timestamp_and_the_group_has_a_version() -> None:
    with pytest.raises(SpecError, match="request field 'user' has kind 'string'"):
        dataclasses.replace(USER_PURCHASE_ON_DEMAND, request=(Column("user", "string", required=False),))
    with pytest.raises(SpecError, match="version must be a whole number >= 1"):
        dataclasses.replace(USER_PURCHASE_ON_DEMAND, version=0)
    assert isinstance(USER_PURCHASE_ON_DEMAND, OnDemandGroup) and USER_PURCHASE_ON_DEMAND.base is USER_PURCHASE
    assert USER_PURCHASE_ON_DEMAND.stored_inputs == ["avg_basket_size_30d"]


def test_request_values_of_an_online_read_are_typed_and_missing_ones_named() -> None:
    now = dt.datetime(2025, 3, 8, 12, tzinfo=UTC)
    assert request_fields(["transactions_7d", "amount_vs_avg_basket_30d"]) == ["amount"]
    assert request_fields(["transactions_7d"]) == []
    assert request_values(["hour_of_day"], {}, now) == {"event_timestamp": now}
    assert request_values(["hour_of_day"], {"event_timestamp": "2025-03-09T01:00:00+02:00"}, now) == {
        "event_timestamp": dt.datetime(2025, 3, 8, 23, tzinfo=UTC)}
    assert request_values(["amount_vs_avg_basket_30d"], {"amount": "42.5"}) == {"amount": 42.5}
    for names, given, message in [
        (["amount_vs_avg_basket_30d"], {}, "the on-demand feature amount_vs_avg_basket_30d needs a request value 'amount': pass --request amount=VALUE"),
        (["amount_vs_avg_basket_30d"], {"amount": "lots"}, "--request amount='lots' is not a number"),
        (["hour_of_day"], {"amount": "1"}, "--request amount: no selected feature reads it (they read event_timestamp)"),
        (["transactions_7d"], {"amout": "1"}, "--request amout: no selected feature reads it (no on-demand feature selected)"),
        (["hour_of_day"], {"event_timestamp": "noon"}, "--request event_timestamp='noon' is not an ISO 8601 timestamp"),
    ]:
        with pytest.raises(FeatureRefError) as error:
            request_values(names, given, now)
        assert str(error.value) == message
