"""No silent no-op: any date's history can be computed, and a run in which Airflow ran no task fails."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cli_helpers import cli_env, generated_data_dir, run_cli
from compare import assert_features_equal, published
from reference import reference_features

pytestmark = pytest.mark.integration

FIRST, LAST = dt.date(2024, 11, 1), dt.date(2024, 11, 10)


@pytest.fixture(scope="module")
def old_data(tmp_path_factory: pytest.TempPathFactory, spark_server: str) -> Path:
    """Raw data of Aug..Nov 2024; runs go to the shared test Spark server (tests/conftest.py)."""
    return generated_data_dir(tmp_path_factory.mktemp("history-2024"), 12, "2024-08-15", 90, seed=21, dirty=True)


def test_a_backfill_of_2024_computes_every_as_of_date(old_data: Path, spark, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_cli(old_data, "backfill", "--start", str(FIRST), "--end", str(LAST))
    assert f"done: as-of {FIRST}..{LAST}" in out.stdout
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(old_data))
    table = published(spark)
    assert_features_equal(table, reference_features(old_data / "raw" / "transactions", FIRST, LAST), "2024 backfill")
    assert sorted(table["event_timestamp"].dt.date.unique()) == [FIRST + dt.timedelta(days=k) for k in range(10)]


def test_a_run_in_which_airflow_runs_no_task_fails_naming_them(old_data: Path) -> None:
    """Before the DAG's start date (now 1970) Airflow creates no task and calls the run a success."""
    from featurepipe.orchestrator import PipelineFailed, run_dag

    saved = dict(os.environ)
    os.environ.update(cli_env(old_data))
    try:
        with pytest.raises(PipelineFailed, match="ran no check_range, validate_raw, compute_features"):
            run_dag("featurepipe_backfill", "1969-12-31", conf={"start": "1969-12-31", "end": "1969-12-31"})
    finally:
        os.environ.clear()
        os.environ.update(saved)
