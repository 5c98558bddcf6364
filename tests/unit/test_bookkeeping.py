"""Run state in the lake: the span compute_features staged for a DAG run, read back by the later steps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from featurepipe.dates import AsOfRange

DAY = dt.timedelta(days=1)


@pytest.fixture()
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", str(tmp_path / "lake"))
    return tmp_path / "lake"


def test_a_run_reads_back_the_span_it_recorded_and_the_newest_record_wins(spark, lake: Path) -> None:
    from featurepipe import bookkeeping

    day = dt.date(2025, 3, 10)
    run = AsOfRange(day, day)
    bookkeeping.record_run_span(spark, "scheduled__2025-03-10", run, AsOfRange(day - 4 * DAY, day))
    bookkeeping.record_run_span(spark, "scheduled__2025-03-11", AsOfRange(day + DAY, day + DAY), AsOfRange(day + DAY, day + DAY))
    assert bookkeeping.run_span(spark, "scheduled__2025-03-10", run) == bookkeeping.RunSpan(AsOfRange(day - 4 * DAY, day), None)
    # compute_features rerun for the same run (a cleared task): its newer span is the one used
    bookkeeping.record_run_span(spark, "scheduled__2025-03-10", run, AsOfRange(day - 6 * DAY, day), tiles_version=7)
    assert bookkeeping.run_span(spark, "scheduled__2025-03-10", run) == bookkeeping.RunSpan(AsOfRange(day - 6 * DAY, day), 7)
    assert (lake / "bookkeeping" / "run_spans" / "_delta_log").is_dir()


def test_a_missing_span_fails_loudly_naming_the_run(spark, lake: Path) -> None:
    from featurepipe import bookkeeping

    day = dt.date(2025, 3, 10)
    with pytest.raises(bookkeeping.MissingRunSpan, match="no span recorded for run 'manual__2025-03-10'"):
        bookkeeping.run_span(spark, "manual__2025-03-10", AsOfRange(day, day))
    bookkeeping.record_run_span(spark, "other", AsOfRange(day, day), AsOfRange(day, day))
    # another run's span, or the same run id for another range, is never borrowed
    with pytest.raises(bookkeeping.MissingRunSpan, match="compute_features has not finished"):
        bookkeeping.run_span(spark, "manual__2025-03-10", AsOfRange(day, day))
    with pytest.raises(bookkeeping.MissingRunSpan):
        bookkeeping.run_span(spark, "other", AsOfRange(day, day + DAY))


def test_the_step_runner_is_inline_on_local_masters_and_spark_submit_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from featurepipe_operators import step_runner

    monkeypatch.delenv("FEATUREPIPE_STEP_RUNNER", raising=False)
    monkeypatch.delenv("FEATUREPIPE_SPARK_SERVER", raising=False)
    assert step_runner("local[2]") == "inline"
    assert step_runner("spark://spark-master:7077") == "spark-submit"
    with pytest.raises(ValueError, match="needs FEATUREPIPE_SPARK_SERVER"):
        monkeypatch.setenv("FEATUREPIPE_STEP_RUNNER", "server")
        step_runner("local[2]")
    monkeypatch.delenv("FEATUREPIPE_STEP_RUNNER")
    monkeypatch.setenv("FEATUREPIPE_SPARK_SERVER", "http://127.0.0.1:7078")
    assert step_runner("local[2]") == "server"
    monkeypatch.setenv("FEATUREPIPE_STEP_RUNNER", "spark-submit")
    assert step_runner("local[*]") == "spark-submit"
    monkeypatch.setenv("FEATUREPIPE_STEP_RUNNER", "livy")
    with pytest.raises(ValueError, match="FEATUREPIPE_STEP_RUNNER must be one of inline, server, spark-submit, got 'livy'"):
        step_runner("local[*]")
