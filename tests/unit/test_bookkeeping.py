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


def test_records_read_from_the_log_equal_sparks_read_through_schema_merges_deletes_and_checkpoints(
        spark, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The records are read without Spark (featurepipe.delta_log.read_rows): the same rows and values as
    Spark's read of the table, through a column added later, a delete and a checkpoint; a log the
    replay refuses is read with Spark, with the same values; sizes and the newest commit agree too."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from featurepipe import bookkeeping, delta_log
    from featurepipe import lake as lake_mod
    from featurepipe.settings import get_settings

    table = "bookkeeping/test_records"
    old = spark.createDataFrame([("a", 1, dt.date(2025, 1, 1))], "run_id string, n long, day date")
    lake_mod.append(old.withColumn("at", F.current_timestamp()), table)
    for k in range(11):  # past Delta's checkpoint interval (10): the replay starts from a checkpoint
        new = spark.createDataFrame([(f"r{k}", k, dt.date(2025, 1, 2 + k), "g")], "run_id string, n long, day date, g string")
        lake_mod.append(new.withColumn("at", F.current_timestamp()), table, merge_schema=True)
    lake_mod.delete_where(spark, table, F.col("n") == 3)
    uri = get_settings().table_uri(table)
    assert any(p.name.endswith(".checkpoint.parquet") for p in (lake / table / "_delta_log").iterdir())

    def key(row: dict) -> str:
        return row["run_id"]

    spark_rows = [r.asDict() for r in lake_mod.read_table(spark, table).collect()]
    logged = delta_log.read_rows(uri)
    assert sorted(logged, key=key) == sorted(lake_mod.small_table_rows(spark, table), key=key)
    assert len(logged) == 11 and {r["run_id"] for r in logged} == {r["run_id"] for r in spark_rows}
    by_id = {r["run_id"]: r for r in spark_rows}
    for row in logged:
        wanted = by_id[row["run_id"]]
        assert {k: v for k, v in row.items() if k != "at"} == {k: v for k, v in wanted.items() if k != "at"}
        # Spark gives naive local times; the log read naive UTC (the machine's zone may be either)
        assert row["at"] == wanted["at"].astimezone(dt.timezone.utc).replace(tzinfo=None)
    assert [r["run_id"] for r in logged if r["g"] is None] == ["a"]  # written before the column was

    detail = DeltaTable.forPath(spark, lake_mod.table_path(table)).detail().first()
    history = DeltaTable.forPath(spark, lake_mod.table_path(table)).history(1).first()
    assert lake_mod.table_bytes(spark, table) == detail["sizeInBytes"]
    assert lake_mod.last_commit(spark, table) == (history["version"], dict(history["operationMetrics"]))

    # a log the replay refuses: Spark reads it, with the same values
    def refuse(uri: str):
        raise delta_log.Unsupported("a reader feature it has not met")

    monkeypatch.setattr(delta_log, "read_rows", refuse)
    assert sorted(lake_mod.small_table_rows(spark, table), key=key) == sorted(logged, key=key)
    assert lake_mod.small_table_rows(spark, "bookkeeping/none_yet") == []
    assert bookkeeping.pending_as_of(spark) == []


def test_batched_records_are_one_commit_per_table_written_also_when_the_block_raises(spark, lake: Path) -> None:
    from featurepipe import bookkeeping
    from featurepipe import lake as lake_mod
    from featurepipe.spec import GROUPS

    day = dt.date(2025, 3, 10)
    with bookkeeping.batched_records(spark):
        for k, group in enumerate(GROUPS):
            bookkeeping.record_run_span(spark, "r", AsOfRange(day, day), AsOfRange(day - k * DAY, day), k, group)
        assert not lake_mod.table_exists(spark, lake_mod.RUN_SPANS)  # held back until the block ends
    assert lake_mod.table_version(spark, lake_mod.RUN_SPANS) == 0  # one commit
    for k, group in enumerate(GROUPS):
        assert bookkeeping.run_span(spark, "r", AsOfRange(day, day), group) == bookkeeping.RunSpan(
            AsOfRange(day - k * DAY, day), k)
    with pytest.raises(RuntimeError, match="the second group failed"):
        with bookkeeping.batched_records(spark):
            bookkeeping.record_materialized(spark, AsOfRange(day, day), 3, GROUPS[0])
            raise RuntimeError("the second group failed")
    assert bookkeeping.last_materialized(spark, GROUPS[0]) == bookkeeping.Materialized(day, 3)
    assert bookkeeping.last_materialized(spark, GROUPS[1]) is None


@pytest.mark.parametrize("n", [1, 3, 40])
def test_literal_rows_hold_the_rows_in_the_schemas_types_literals_or_shipped(spark, n: int) -> None:
    from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

    from featurepipe import lake as lake_mod

    schema = StructType([StructField("file", StringType()), StructField("size", LongType()),
                         StructField("day", DateType())])
    rows = [(f"f'{k}\"", 2**40 + k, dt.date(2025, 1, 1) + k * DAY) for k in range(n)]
    frame = lake_mod.literal_rows(spark, rows, schema)
    assert [f.dataType for f in frame.schema.fields] == [f.dataType for f in schema.fields]
    assert [tuple(r) for r in frame.collect()] == rows
