"""The inline runner (the default on a local master without a Spark server): a step's `main` runs in the
task's own process on its Spark session, and a step that fails fails the task with its reason.

Cheap on purpose: the operator is called directly on the test session's Spark (no Airflow, no new JVM);
full runs go through Airflow with the shared server, and one through `spark-submit` (test_pipeline).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture()
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FEATUREPIPE_RAW_URI", raising=False)
    monkeypatch.delenv("FEATUREPIPE_LAKE_URI", raising=False)
    return tmp_path


def operator(job: str):
    from featurepipe_operators import SparkJobOperator

    return SparkJobOperator(job=job, start="2025-03-01", end="2025-03-02")


def test_an_inline_step_that_exits_non_zero_fails_its_task_with_the_reason(spark, empty_data_dir: Path, capsys) -> None:
    from featurepipe_operators import StepFailed

    with pytest.raises(StepFailed, match=r"validate_raw failed \(exit 2\)"):
        operator("validate_raw")._run_inline(["--start", "2025-03-01", "--end", "2025-03-02", "--run-id", "r1"])
    assert f"no Parquet files under {empty_data_dir / 'raw' / 'transactions'}" in capsys.readouterr().err


def test_an_inline_step_reads_its_run_state_from_the_lake(spark, empty_data_dir: Path) -> None:
    from featurepipe import bookkeeping
    from featurepipe.dates import AsOfRange

    args = ["--start", "2025-03-01", "--end", "2025-03-02", "--run-id", "scheduled__2025-03-02"]
    # publish before compute_features recorded a span for this run: a loud failure, nothing published
    with pytest.raises(bookkeeping.MissingRunSpan, match="scheduled__2025-03-02"):
        operator("publish")._run_inline(args)
    from featurepipe.spec import GROUPS

    run = AsOfRange(dt.date(2025, 3, 1), dt.date(2025, 3, 2))
    for group in GROUPS:  # as compute_features and validate_features record them
        bookkeeping.record_run_span(spark, "scheduled__2025-03-02", run, run, group=group)
        bookkeeping.record_validated(spark, "scheduled__2025-03-02", run, True, group)
    # with the span, publish reads the run's staged table, which compute_features never wrote here
    with pytest.raises(FileNotFoundError, match="staging/user_purchase_features/run=scheduled__2025-03-02-.* does not exist"):
        operator("publish")._run_inline(args)
