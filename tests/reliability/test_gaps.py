"""Gaps are repaired: an as-of date whose run failed (or never ran) is published by a later run."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from inprocess import expect, generated_landings, land, run

pytestmark = pytest.mark.integration
DATA_START = dt.date(2025, 1, 1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_landings(tmp_path_factory.mktemp("generated"), DATA_START, days=50, seed=8)


def test_a_day_whose_run_failed_at_validate_raw_is_published_by_the_next_days_run(generated, lake_env, spark) -> None:
    from featurepipe.raw import RawSchemaError

    raw = lake_env / "raw"
    t = DATA_START + dt.timedelta(days=40)
    land(generated, raw, t - dt.timedelta(days=2))
    run(spark, t - dt.timedelta(days=10), t - dt.timedelta(days=1))

    # the landing for day t - 1 arrives with `amount` as text: the run for as-of t fails at validate_raw
    land(generated, raw, t - dt.timedelta(days=1))
    folder = raw / "transactions" / f"landing_date={t - dt.timedelta(days=1)}"
    bad = sorted(folder.glob("*.parquet"))[0]
    frame = pd.read_parquet(bad)
    frame.assign(amount=frame["amount"].astype(str)).to_parquet(bad, index=False)
    with pytest.raises(RawSchemaError, match="amount"):
        run(spark, t, t)

    # the producer re-delivers the day correctly; the next day's run publishes t and t + 1
    shutil.copy(generated / folder.name / bad.name, bad)
    land(generated, raw, t)
    report = run(spark, t + dt.timedelta(days=1), t + dt.timedelta(days=1))
    assert report["gaps_filled"] == 1 and report["span"] == f"{t}..{t + dt.timedelta(days=1)}", report
    expect(lake_env, spark, t - dt.timedelta(days=10), t + dt.timedelta(days=1), "after the failed day")
