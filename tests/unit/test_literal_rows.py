"""Small driver-side row sets (bookkeeping records, empty tables) become DataFrames in the JVM: no
task ships them through a Python worker, whose daemon's start cost a cold 2M backfill 7.5 s."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql.types import (ArrayType, BooleanType, DateType, DoubleType, LongType, StringType, StructField,
                               StructType, TimestampType)

SCHEMA = StructType([
    StructField("file", StringType(), False),
    StructField("size", LongType(), False),
    StructField("modified", TimestampType(), True),
    StructField("day", DateType(), False),
    StructField("value", DoubleType(), True),
    StructField("breached", BooleanType(), False),
    StructField("vector", ArrayType(DoubleType(), False), True),
])


def _rows(n: int) -> list[tuple]:
    return [(f"file:///landing/day {i}%20.parquet", 2**40 + i, dt.datetime(2025, 1, 1, 23, 59, 59, 999_999 - i),
             dt.date(2025, 1, 1) + dt.timedelta(days=i), None if i % 7 == 3 else 0.1 * i + 1e-12, i % 2 == 0,
             [0.1 * i, -1.5, 1e300]) for i in range(n)]


def _plan(df) -> str:
    return df._jdf.queryExecution().executedPlan().toString()


def test_rows_of_every_type_come_back_exactly_from_a_local_relation(spark) -> None:
    from featurepipe import lake

    rows = _rows(365)
    df = lake.literal_rows(spark, rows, SCHEMA)
    assert [tuple(r) for r in df.collect()] == rows  # microseconds, 2^40, 1e300, nulls, dates in UTC
    assert [f.name for f in df.schema.fields] == SCHEMA.names
    assert [f.dataType for f in df.schema.fields] == [f.dataType for f in SCHEMA.fields]
    assert "LocalTableScan" in _plan(df) and "ExistingRDD" not in _plan(df)
    assert df.rdd.getNumPartitions() == 1  # one file per bookkeeping append


def test_no_rows_writes_an_empty_table_with_the_schema_and_runs_no_task(spark, tmp_path: Path) -> None:
    from featurepipe import lake

    df = lake.no_rows(spark, SCHEMA)
    assert df.rdd.getNumPartitions() == 0 and _plan(df).startswith("LocalTableScan <empty>")
    df.write.format("delta").save(str(tmp_path / "empty"))
    back = spark.read.format("delta").load(str(tmp_path / "empty"))
    assert back.count() == 0 and back.schema.names == SCHEMA.names


def test_a_ddl_schema_gives_the_same_types(spark) -> None:
    from featurepipe import lake

    df = lake.literal_rows(spark, [("u1", 3, dt.date(2025, 2, 1))], "user_id string, n bigint, day date")
    assert df.dtypes == [("user_id", "string"), ("n", "bigint"), ("day", "date")]
    assert [tuple(r) for r in df.collect()] == [("u1", 3, dt.date(2025, 2, 1))]
    assert lake.no_rows(spark, "user_id string").dtypes == [("user_id", "string")]


def test_a_value_of_the_wrong_type_fails_naming_it(spark) -> None:
    import pyarrow as pa
    import pytest

    from featurepipe import lake

    rows = _rows(2)
    rows[1] = ("f", "not a number", *rows[1][2:])
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError), match="not a number|int"):
        lake.literal_rows(spark, rows, SCHEMA)
