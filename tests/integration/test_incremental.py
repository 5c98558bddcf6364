"""Incremental runs (tiles, late data, redeliveries, out-of-order backfills) equal the direct definition.

The steps run in-process (the same functions the Spark jobs' `main`s call, without the GX gate
and Feast), landing the generator's folders day by day as a landing zone would receive them.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from compare import assert_features_equal, published
from inprocess import expect, generated_landings, land, run

pytestmark = pytest.mark.integration
DATA_START = dt.date(2025, 1, 1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_landings(tmp_path_factory.mktemp("generated"), DATA_START, days=70, seed=3)


def test_daily_runs_with_late_landings_and_redeliveries_equal_the_definition(generated, lake_env, spark) -> None:
    raw = lake_env / "raw"
    first = DATA_START + dt.timedelta(days=40)
    land(generated, raw, first - dt.timedelta(days=1))
    run(spark, first - dt.timedelta(days=10), first - dt.timedelta(days=1))  # an initial backfill

    repaired = 0
    for offset in range(2, 9, 3):  # runs of three as-of days each, landing as it goes: late rows arrive late
        day = first + dt.timedelta(days=offset)
        land(generated, raw, day - dt.timedelta(days=1))
        report = run(spark, day - dt.timedelta(days=2), day)
        repaired += report["repaired_as_of_days"]
        expect(lake_env, spark, first - dt.timedelta(days=10), day, f"after the run for {day}")
    assert repaired > 0, "no late landing reached a published as-of: the test proves nothing"

    # redeliveries: the same file again under another name, and a corrected copy of another
    # landing whose events move one hour earlier (the earliest copy wins, SPEC §2)
    day = first + dt.timedelta(days=9)
    sources = sorted((raw / "transactions").glob("landing_date=*/part-*.parquet"))
    again = sources[-5]
    shutil.copy(again, again.with_name("redelivered.parquet"))
    corrected = pq.read_table(sources[-8]).to_pandas()
    corrected["event_timestamp"] = corrected["event_timestamp"] - dt.timedelta(hours=1)
    corrected["amount"] = corrected["amount"] + 1.0
    corrected.to_parquet(sources[-8].with_name("corrected.parquet"), index=False)
    report = run(spark, day, day)
    assert report["new_files"] == 2 and report["new_or_corrected_events"] > 0
    expect(lake_env, spark, first - dt.timedelta(days=10), day, "after redeliveries")
    # the corrections went through a MERGE narrowed by event day, whose commit holds no id list
    merge = _last_commit(spark, "MERGE")
    assert "event_date" in merge and len(merge) < 500, merge

    # a rerun with nothing new changes nothing
    before = published(spark)
    report = run(spark, day, day)
    assert report["new_files"] == 0
    assert_features_equal(published(spark), before, "rerun")


def test_out_of_order_backfills_equal_one_sequential_run(generated, lake_env, spark) -> None:
    raw = lake_env / "raw"
    land(generated, raw, DATA_START + dt.timedelta(days=69))
    first, last = DATA_START + dt.timedelta(days=20), DATA_START + dt.timedelta(days=59)
    chunks = [(first + dt.timedelta(days=i), min(last, first + dt.timedelta(days=i + 9))) for i in range(0, 40, 10)]
    random.Random(4).shuffle(chunks)
    for start, end in chunks:
        run(spark, start, end)
    expect(lake_env, spark, first, last, f"backfills in order {chunks}")
    table = published(spark)
    assert not table.duplicated(["user_id", "event_timestamp"]).any()


def _last_commit(spark, operation: str) -> str:
    """The predicate the newest `operation` commit of the clean table recorded."""
    from delta.tables import DeltaTable

    from featurepipe import lake

    history = DeltaTable.forPath(spark, lake.table_path(lake.CLEAN_TRANSACTIONS)).history(20)
    row = history.where(history.operation == operation).orderBy(history.version.desc()).first()
    assert row is not None, f"no {operation} in the clean table's history"
    return row["operationParameters"]["predicate"]
