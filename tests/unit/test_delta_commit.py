"""Publishing staged files by one Delta commit (`featurepipe.delta_commit`): the table reads the staged
rows in the replaced partitions and its own elsewhere, from the staged files' second names, with
the history a rewrite would leave; where it does not apply, nothing is done."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from featurepipe import delta_commit, delta_log, lake
from featurepipe.settings import get_settings

DAY = dt.date(2025, 3, 1)
TABLE, STAGED = "features/t", "staging/t/run=1"


def _rows(spark, value: int, days: range, extra: str | None = None):
    columns = ["cast(id as string) AS user_id", f"{value} AS x", f"date_add(DATE'{DAY}', cast(id % 5 AS int)) AS as_of_date"]
    frame = spark.range(50).selectExpr(*columns, *([extra] if extra else []))
    return frame.where(f"as_of_date BETWEEN DATE'{DAY + dt.timedelta(days=days.start)}' "
                       f"AND DATE'{DAY + dt.timedelta(days=days.stop - 1)}'")


def _read(spark) -> dict[tuple[str, str], int]:
    return {(r["user_id"], str(r["as_of_date"])): r["x"] for r in lake.read_table(spark, TABLE).collect()}


def _path(table: str) -> Path:
    return Path(get_settings().table_uri(table))


def test_the_staged_files_replace_the_range_in_one_commit_without_a_rewrite(lake_env: Path, spark) -> None:
    lake.overwrite(_rows(spark, 1, range(5)), TABLE, partition_by=lake.AS_OF_DATE)
    lake.overwrite(_rows(spark, 2, range(1, 3)), STAGED, partition_by=lake.AS_OF_DATE)
    before = lake.table_version(spark, TABLE)

    version, rows = delta_commit.replace_partitions(spark, STAGED, TABLE, lake.AS_OF_DATE, DAY + dt.timedelta(days=1),
                                                    DAY + dt.timedelta(days=2))
    assert version == before + 1 == lake.table_version(spark, TABLE)
    assert rows == 20
    staged = delta_log.read_snapshot(str(_path(STAGED)))
    for add in staged.files.values():  # the staged file itself, under a second name: no byte rewritten
        assert os.path.samefile(_path(STAGED) / add["path"], _path(TABLE) / add["path"])

    lake.drop_table(STAGED)  # as publish does after its records: the table keeps its files
    got, replaced = _read(spark), {str(DAY + dt.timedelta(days=1)), str(DAY + dt.timedelta(days=2))}
    assert len(got) == 50 and got == {k: 2 if k[1] in replaced else 1 for k in got}

    history = lake.read_version(spark, TABLE, before)  # time travel still reads the replaced files
    assert history.where("x = 1").count() == 50
    from delta.tables import DeltaTable

    newest = DeltaTable.forPath(spark, lake.table_path(TABLE)).history(1).first()
    assert newest["operation"] == "WRITE"
    assert newest["operationParameters"]["predicate"] == (f"as_of_date >= '{DAY + dt.timedelta(days=1)}' AND "
                                                          f"as_of_date <= '{DAY + dt.timedelta(days=2)}'")


def test_a_rerun_after_a_crash_between_linking_and_committing_publishes_once(lake_env: Path, spark) -> None:
    lake.overwrite(_rows(spark, 1, range(5)), TABLE, partition_by=lake.AS_OF_DATE)
    lake.overwrite(_rows(spark, 2, range(0, 1)), STAGED, partition_by=lake.AS_OF_DATE)
    for add in delta_log.read_snapshot(str(_path(STAGED))).files.values():  # linked, never committed
        delta_commit._link(str(_path(STAGED) / add["path"]), str(_path(TABLE) / add["path"]))
    assert _read(spark)[("0", str(DAY))] == 1  # unreferenced files change nothing

    version, rows = delta_commit.replace_partitions(spark, STAGED, TABLE, lake.AS_OF_DATE, DAY, DAY)
    assert rows == 10 and version == lake.table_version(spark, TABLE)
    assert sum(v == 2 for v in _read(spark).values()) == 10


def test_a_first_publish_creates_the_table_with_the_staged_layout(lake_env: Path, spark) -> None:
    lake.overwrite(_rows(spark, 2, range(0, 3), "current_timestamp() AS event_timestamp"), STAGED,
                   partition_by=lake.AS_OF_DATE)
    staged = delta_log.read_snapshot(str(_path(STAGED))).metadata
    assert delta_commit.replace_partitions(spark, STAGED, TABLE, lake.AS_OF_DATE, DAY, DAY + dt.timedelta(days=2)) == (0, 30)
    lake.drop_table(STAGED)
    assert _read(spark) == {(str(i), str(DAY + dt.timedelta(days=i % 5))): 2 for i in range(50) if i % 5 < 3}
    created = delta_log.read_snapshot(str(_path(TABLE))).metadata
    for key in ("schemaString", "partitionColumns", "configuration"):
        assert created[key] == staged[key], key
    assert created["configuration"] == {"delta.dataSkippingStatsColumns": "event_timestamp"}
    assert created["id"] != staged["id"]


@pytest.mark.parametrize("case", ["another schema", "rows outside the range"])
def test_where_it_does_not_apply_nothing_is_done(lake_env: Path, spark, case: str) -> None:
    lake.overwrite(_rows(spark, 1, range(5)), TABLE, partition_by=lake.AS_OF_DATE)
    extra = "1.5 AS y" if case == "another schema" else None
    lake.overwrite(_rows(spark, 2, range(0, 3), extra), STAGED, partition_by=lake.AS_OF_DATE)
    version = lake.table_version(spark, TABLE)
    last = DAY + dt.timedelta(days=1 if case == "rows outside the range" else 2)

    assert delta_commit.replace_partitions(spark, STAGED, TABLE, lake.AS_OF_DATE, DAY, last) is None
    assert lake.table_version(spark, TABLE) == version
    live = {Path(a["path"]).name for a in delta_log.read_snapshot(str(_path(TABLE))).files.values()}
    assert {p.name for p in _path(TABLE).glob("as_of_date=*/*.parquet")} == live  # nor a file linked into its folder
