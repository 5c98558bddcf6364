"""Drift and completeness checks of `featurepipe report` on generated data with injected shifts.

The feature rows are SPEC §3's, computed from the generated (and shifted) raw events by the
independent pandas reference (tests/reference.py, which the pipeline tests hold the Spark job
equal to) and written to the test's own Delta feature table; the report itself runs in-process
on the session's Spark, as `featurepipe report` and the monitoring DAG run it. 1,000 users,
as-of dates T-34..T, fixed seeds: the checks are deterministic, not flaky.

Calibration (README "Monitoring"): over 26 consecutive as-of dates of unshifted data, the largest
mean change of any feature against its reference was 8.3 % and the largest PSI 0.018. The shifts
below move total_spent_7d's mean by 16 % and favorite_category's PSI to 0.15.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from reference import features_as_of, load_raw, midnights

pytestmark = pytest.mark.integration

T = dt.date(2025, 6, 25)
USERS = 1000
VANISHED = "electronics"


def generated_events(raw: Path, seed: int) -> pd.DataFrame:
    """`featurepipe generate` (clean) of 160 days before T into `raw`, read back as events."""
    from featurepipe.generate import generate

    generate(str(raw), users=USERS, start=T - dt.timedelta(days=160), days=160, seed=seed, dirty=False,
             progress=lambda _: None)
    return load_raw(raw / "transactions")


def shift(events: pd.DataFrame) -> pd.DataFrame:
    """Amounts x1.5 from T - 7 days on for 10 % of users (the top decile by spend before it: a premium
    segment's price change), and one category vanishing from the data in the 91 days before T."""
    ts = events["event_timestamp"]
    since = pd.Timestamp(T - dt.timedelta(days=7), tz="UTC")
    spend = events[ts < since].groupby("user_id")["amount"].sum().sort_values(ascending=False)
    segment = set(spend.index[: events["user_id"].nunique() // 10])
    out = events.copy()
    out.loc[out["user_id"].isin(segment) & (ts >= since), "amount"] *= 1.5
    out.loc[(out["category"] == VANISHED) & (ts >= pd.Timestamp(T - dt.timedelta(days=91), tz="UTC")), "category"] = None
    return out


def publish_features(spark, events: pd.DataFrame) -> None:
    """SPEC §3 rows of as-of T-34..T into the test lake's feature table (partitioned as the pipeline's)."""
    from pyspark.sql import functions as F

    from featurepipe import lake

    rows = features_as_of(events, midnights(T - dt.timedelta(days=34), T))
    frame = spark.createDataFrame(rows).withColumn(lake.AS_OF_DATE, F.to_date("event_timestamp"))
    lake.overwrite(frame, lake.FEATURES, partition_by=lake.AS_OF_DATE)


def report(spark, lake_env: Path, events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch):
    from featurepipe.monitor_config import load_config
    from featurepipe.monitoring import build_report

    # a data dir of the test's own: no online store of another test's lake (nothing materialized here)
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(lake_env / "data"))
    publish_features(spark, events)
    return build_report(spark, T, load_config(), say=lambda _: None)


def test_an_injected_amount_shift_and_a_vanished_category_are_flagged_and_named(spark, lake_env: Path, monkeypatch) -> None:
    result = report(spark, lake_env, shift(generated_events(lake_env / "raw", seed=11)), monkeypatch)
    drift = {(b["feature"], b["statistic"]) for b in result.breaches if b["check"] == "drift"}
    assert ("total_spent_7d", "mean_change") in drift, result.breaches
    assert ("favorite_category", "psi") in drift, result.breaches
    # the vanished category is gone from T's distribution and was there in the reference
    histogram = result.details["histograms"]["favorite_category"]
    where = histogram["categories"].index(VANISHED)
    assert histogram["current"][where] == 0 < histogram["reference"][where]
    # nothing else moved: counts are untouched by a price change
    assert not any(b["feature"].startswith("transactions_") for b in result.breaches), result.breaches
    assert {b["check"] for b in result.breaches} == {"drift"}


def test_the_same_generator_with_another_seed_and_no_shift_flags_nothing(spark, lake_env: Path, monkeypatch) -> None:
    result = report(spark, lake_env, generated_events(lake_env / "raw", seed=22), monkeypatch)
    assert result.breaches == []
    assert result.summary["reference"]["dates"] == 28
    worst = max(abs(s["mean_change"] or 0) for s in result.summary["features"].values())
    assert worst < 0.12 and max(s["psi"] for s in result.summary["features"].values()) < 0.1
