"""Comparing a feature table with the independent reference (tests/reference.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from reference import COUNT_FEATURES, FEATURE_COLUMNS, FLOAT_FEATURES

KEY = ["user_id", "event_timestamp"]


def published(spark, table: str | None = None) -> pd.DataFrame:
    """A feature table (default: the user group's) as pandas, event_timestamp in UTC."""
    from featurepipe import lake

    frame = lake.read_table(spark, table or lake.FEATURES).toPandas()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"]).dt.tz_localize("UTC")
    return frame


def assert_features_equal(actual: pd.DataFrame, wanted: pd.DataFrame, what: str) -> None:
    """Same (user, T) rows; counts equal, floats within 1e-9 relative, favourite equal."""
    _assert_rows_equal(actual, wanted, what, KEY, COUNT_FEATURES, FLOAT_FEATURES, ["favorite_category"])


def _assert_rows_equal(actual: pd.DataFrame, wanted: pd.DataFrame, what: str, key: list[str], counts: list[str],
                       floats: list[str], strings: list[str]) -> None:
    """Same `key` rows; `counts` equal, `floats` within 1e-9 relative, `strings` equal (null = null)."""
    merged = wanted.merge(actual, on=key, how="outer", suffixes=("_ref", ""), indicator=True)
    extra = merged[merged["_merge"] != "both"]
    assert extra.empty, f"{what}: rows only on one side:\n{extra[key + ['_merge']].head(20)}"
    for name in counts:
        bad = merged[merged[name].astype("int64") != merged[f"{name}_ref"].astype("int64")]
        assert bad.empty, f"{what}: {name} differs:\n{bad[key + [name, name + '_ref']].head()}"
    for name in floats:
        got, ref = merged[name].astype(float).to_numpy(), merged[f"{name}_ref"].astype(float).to_numpy()
        ok = np.isclose(got, ref, rtol=1e-9, atol=1e-12)
        assert ok.all(), f"{what}: {name} differs:\n{merged.loc[~ok, key + [name, name + '_ref']].head()}"
    for name in strings:
        got, ref = (merged[c].where(merged[c].notna(), None) for c in (name, f"{name}_ref"))
        bad = merged[[a != b for a, b in zip(got, ref)]]
        assert bad.empty, f"{what}: {name} differs:\n{bad[key + [name, name + '_ref']].head()}"


def latest_rows(features: pd.DataFrame) -> pd.DataFrame:
    return features.sort_values(KEY).groupby("user_id", as_index=False).tail(1).set_index("user_id")


def assert_online_is_latest(rows: dict[str, dict], wanted: pd.DataFrame) -> None:
    """Online rows (`featurepipe online` output by user) equal each user's newest row of `wanted`."""
    latest = latest_rows(wanted)
    for user, row in rows.items():
        ref = latest.loc[user]
        for name in FEATURE_COLUMNS:
            value, want = row[name], ref[name]
            if name == "favorite_category":
                assert value == (want if isinstance(want, str) else None), (user, name, value, want)
            else:
                assert math.isclose(float(value), float(want), rel_tol=1e-9, abs_tol=1e-12), (user, name, value, want)


def assert_product_features_equal(actual: pd.DataFrame, wanted: pd.DataFrame, what: str) -> None:
    """Same (product, T) rows; integer features equal, revenue within 1e-9 relative, main category equal."""
    from reference import PRODUCT_COUNT_FEATURES, PRODUCT_FLOAT_FEATURES

    _assert_rows_equal(actual, wanted, what, ["product_id", "event_timestamp"], PRODUCT_COUNT_FEATURES,
                       PRODUCT_FLOAT_FEATURES, ["main_category"])
