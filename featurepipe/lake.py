"""Delta tables under the lake root: where each lives and how partitions are replaced.

The root (`FEATUREPIPE_LAKE_URI`) is a local path or `s3://bucket/prefix`; Spark reaches S3 as
`s3a://` (hadoop-aws, `featurepipe.spark.s3a_conf`). Delta's log store for `s3a://` is
`S3SingleDriverLogStore`: S3 has no put-if-absent that Delta uses there, so two writers committing
to one table at once can overwrite each other's commit. Safe only with one writer per table at a
time: featurepipe keeps that with the lake's lease (`featurepipe.lease`, a conditional-write lock
object beside the tables) and Airflow's one-slot `featurepipe_spark` pool. Writers on several
clusters need Delta's DynamoDB log store instead (README "Delta on S3").
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from featurepipe.settings import get_settings
from featurepipe.storage import spark_uri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from featurepipe.spec import FeatureGroup, Source


# table names under FEATUREPIPE_LAKE_URI (SPEC §3a; the others are documented in the README):
# each source and each feature group has its own, named from the spec
def quarantine_table(source: Source) -> str:
    return f"quarantine/{source.name}"


def clean_table(source: Source) -> str:
    return f"clean/{source.name}"


def tiles_table(group: FeatureGroup) -> str:
    return f"tiles/{group.name.removesuffix('_features')}_daily"


def staging_root(group: FeatureGroup) -> str:
    return f"staging/{group.name}"  # one table per run below it: staged_table(run_id, group)


def features_table(group: FeatureGroup) -> str:
    return f"features/{group.name}"


def group_tables(group: FeatureGroup) -> list[str]:
    """The lake tables a group's rows flow through, upstream first (its lineage in the lake)."""
    return [clean_table(group.source), tiles_table(group), features_table(group)]


def _user_purchase() -> FeatureGroup:
    from featurepipe.spec import USER_PURCHASE

    return USER_PURCHASE


QUARANTINE = quarantine_table(_user_purchase().source)
CLEAN_TRANSACTIONS = clean_table(_user_purchase().source)
TILES = tiles_table(_user_purchase())
STAGED_FEATURES = staging_root(_user_purchase())
FEATURES = features_table(_user_purchase())
# bookkeeping of the incremental pipeline (README: "Incremental runs")
INGESTED_FILES = "bookkeeping/ingested_files"
DIRTY_DAYS = "bookkeeping/dirty_tile_days"
PENDING_AS_OF = "bookkeeping/pending_as_of"
RUN_SPANS = "bookkeeping/run_spans"
PUBLISHED_SPANS = "bookkeeping/published_spans"
MATERIALIZED = "bookkeeping/materialized"
VALIDATIONS = "bookkeeping/validations"
FEATURE_STATS = "monitoring/feature_stats"  # one row per (as-of, feature, statistic) of each monitoring report

# columns the tables share
EVENT_DATE = "event_date"  # UTC day of an event
# the first day of EVENT_DATE's month: partitions the clean and tiles tables. A year's backfill
# writes a dozen files per table, not 365 (each file costs ~10-25 ms to write and again to read,
# measured); a daily run adds its day's file and rewrites only a file holding an older day it changed
EVENT_MONTH = "event_month"
AS_OF_DATE = "as_of_date"  # the date of as-of T: partitions the staged and published feature rows
SOURCE_FILE = "source_file"  # the raw file a row was read from (clean and quarantined rows)
ARRIVED_AT = "_arrived_at"  # when that file arrived (its modification time): read for the rules, never stored


def table_path(table: str) -> str:
    """The path Spark uses for a lake table (`s3a://` on S3)."""
    return spark_uri(get_settings().table_uri(table))


def staged_table(run_id: str, group: FeatureGroup | None = None) -> str:
    """The staging table of one run: what its validate_features checks is exactly what its publish copies,
    whatever other runs stage meanwhile. The run id is made path-safe (Airflow's hold `:` and `+`),
    with a digest so that two ids never share a folder."""
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:80]
    root = staging_root(group) if group is not None else STAGED_FEATURES
    return f"{root}/run={safe}-{hashlib.sha1(run_id.encode()).hexdigest()[:8]}"


def drop_table(table: str) -> None:
    """Delete a table's folder (a run's staging after its publish); nothing if it is gone already."""
    from pyarrow import fs as pafs

    from featurepipe.storage import filesystem, is_s3, s3_delete_prefix

    uri = get_settings().table_uri(table)
    if is_s3(uri):
        s3_delete_prefix(uri)  # S3 has no folders: every object below it (none: nothing to do)
        return
    filesystem_, path = filesystem(uri)
    if filesystem_.get_file_info(path).type != pafs.FileType.NotFound:
        filesystem_.delete_dir(path)


def table_exists(spark: SparkSession, table: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, table_path(table))


def table_bytes(spark: SparkSession, table: str) -> int:
    """Size of the table's current files, from its log (no data read, no Spark job); 0 if it does not exist yet."""
    from featurepipe import delta_log

    try:
        return delta_log.table_size(get_settings().table_uri(table)) or 0
    except delta_log.Unsupported:
        pass
    from delta.tables import DeltaTable

    if not table_exists(spark, table):
        return 0
    return int(DeltaTable.forPath(spark, table_path(table)).detail().first()["sizeInBytes"])


def partition_columns(spark: SparkSession, table: str) -> list[str] | None:
    """The table's partition columns, from its log (no Spark job); None if it does not exist yet."""
    from featurepipe import delta_log

    try:
        return delta_log.partition_columns(get_settings().table_uri(table))
    except delta_log.Unsupported:
        pass
    from delta.tables import DeltaTable

    if not table_exists(spark, table):
        return None
    return list(DeltaTable.forPath(spark, table_path(table)).detail().first()["partitionColumns"])


def small_table_rows(spark: SparkSession, table: str) -> list[dict]:
    """Every row of a small table (the bookkeeping records) as dicts, read in this process from its log
    and files (`delta_log.read_rows`: no Spark job, which costs more than the read); [] if the table
    does not exist. A log the replay cannot read is read with Spark, with the same values."""
    from featurepipe import delta_log

    try:
        rows = delta_log.read_rows(get_settings().table_uri(table))
        return [] if rows is None else rows
    except delta_log.Unsupported:
        pass
    if not table_exists(spark, table):
        return []
    utc = dt.timezone.utc
    # Spark gives timestamps as naive local times: naive UTC, as the log read gives them
    return [{k: v.astimezone(utc).replace(tzinfo=None) if isinstance(v, dt.datetime) else v
             for k, v in row.asDict().items()} for row in read_table(spark, table).collect()]


def read_table(spark: SparkSession, table: str) -> DataFrame:
    return spark.read.format("delta").load(table_path(table))


def read_version(spark: SparkSession, table: str, version: int) -> DataFrame:
    """The table as it was at Delta `version` (time travel)."""
    return spark.read.format("delta").option("versionAsOf", version).load(table_path(table))


def read_range(spark: SparkSession, table: str, column: str, first: dt.date, last: dt.date) -> DataFrame:
    """Rows of a date-partitioned table with `first <= column <= last`; empty if the table does not exist yet."""
    from pyspark.sql import functions as F

    if not table_exists(spark, table):
        raise FileNotFoundError(f"Delta table {table} does not exist at {table_path(table)}: run the steps before this one")
    return read_table(spark, table).where(F.col(column).between(F.lit(first), F.lit(last)))


def replace_dates(df: DataFrame, table: str, column: str, dates: list[dt.date]) -> None:
    """Atomically replace the partitions of exactly `dates` (not necessarily contiguous) with `df`."""
    if dates:
        _replace_where(df, table, column, f"{column} IN ({_dates_sql(dates)})")


def replace_days(df: DataFrame, table: str, days: list[dt.date]) -> None:
    """Atomically replace the rows of exactly `days` (`EVENT_DATE`) of a month-layout table with `df`
    (its `EVENT_MONTH` added here): only the months holding them are touched, and in those only the
    files holding a replaced day are rewritten."""
    if days:
        _replace_where(with_month(df), table, EVENT_MONTH,
                       f"{EVENT_MONTH} IN ({_dates_sql(months_of(days))}) AND {EVENT_DATE} IN ({_dates_sql(days)})")


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def months_of(days: list[dt.date]) -> list[dt.date]:
    return sorted({month_of(d) for d in days})


def with_month(df: DataFrame) -> DataFrame:
    """`df` with its `EVENT_MONTH` (from `EVENT_DATE`), the month layout's partition column."""
    from pyspark.sql import functions as F

    return df.withColumn(EVENT_MONTH, F.trunc(EVENT_DATE, "month"))


def in_months(df: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """Rows of a month-layout table read as `df` in the months of first..last (partition pruning; the
    caller filters the days), without the partition column; a table of the older day layout as it is."""
    from pyspark.sql import functions as F

    if EVENT_MONTH not in df.columns:
        return df
    return df.where(F.col(EVENT_MONTH).between(F.lit(month_of(first)), F.lit(month_of(last)))).drop(EVENT_MONTH)


def to_month_layout(spark: SparkSession, table: str) -> None:
    """Rewrite a table partitioned by `EVENT_DATE` (releases before the month layout) in the month
    layout, once: the same rows, one atomic overwrite. Nothing for a new or month-layout table."""
    if partition_columns(spark, table) != [EVENT_DATE]:
        return
    print(f"[featurepipe] {table}: rewriting the table partitioned by day in the month layout (once; same rows)")
    # a Delta overwrite may read the table it replaces (the read's snapshot keeps its files), as
    # Delta's own file compaction does: no copy of the table is held meanwhile
    overwrite(with_month(read_table(spark, table)), table, partition_by=EVENT_MONTH)


def _dates_sql(dates: list[dt.date]) -> str:
    return ", ".join(f"'{d.isoformat()}'" for d in sorted(set(dates)))


def literal_rows(spark: SparkSession, rows: list[tuple], schema: StructType | str) -> DataFrame:
    """A DataFrame of `rows` (tuples in `schema`'s field order; a schema or a DDL string), in one
    partition (none when there are no rows), built in the JVM from one Arrow batch: no task runs a
    Python worker.

    `spark.createDataFrame(rows, schema)` ships the rows through a Python worker: ~0.3 s idle and
    ~1 s under load even for one row, and on a new driver the worker daemon's start, which imports
    Feast first (`featurepipe.worker_daemon`): a 2M backfill's empty quarantine waited 7.5 s for it
    (Spark event log). Literals planned column by column cost ~10 ms a value in py4j calls (365
    files' records took 44 s); 365 rows of five columns through Arrow take ~0.4 s, 8 rows ~0.35 s."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    if isinstance(schema, str):
        schema = StructType.fromDDL(schema)
    table = pa.Table.from_pylist([dict(zip(schema.names, row)) for row in rows],
                                 schema=to_arrow_schema(schema, timezone="UTC"))
    df = spark.createDataFrame(table, schema)
    return df.coalesce(1) if len(rows) > 1 else df  # one file per append (a local relation spans every core)


def no_rows(spark: SparkSession, schema: StructType | str) -> DataFrame:
    """An empty DataFrame of `schema`; writing it runs no task (`literal_rows`)."""
    return literal_rows(spark, [], schema)


def skipping_columns(columns: list[str], partition_by: str | None = None) -> list[str]:
    """Of a new table's `columns`, those Delta keeps min/max statistics for (data skipping).

    Reads filter on event ids (the ingest's IN list), event times and days (tile and Feast reads)
    and quarantine row keys; on partition columns (no statistics needed); never on an amount, a
    category, a source file, an entity key or a feature value. Delta would otherwise collect every
    one of a table's first 32 columns: at 20M events that cost the clean table's write ~8 s of
    ~40, and the staged feature rows' write ~3 s of ~17 (measured, README "End to end")."""
    from featurepipe.spec import SOURCES

    filtered = {EVENT_DATE, "event_timestamp", "row_key", *(s.id_column for s in SOURCES),
                *(s.timestamp_column for s in SOURCES)}
    return [c for c in columns if c in filtered and c != partition_by]


def _creating(df: DataFrame, partition_by: str | None = None) -> dict[str, str]:
    """Writer options a table's creation records as its properties (Delta ignores them when the table
    exists: a lake's older tables keep the statistics they were created with)."""
    columns = skipping_columns(df.columns, partition_by)
    return {"delta.dataSkippingStatsColumns": ",".join(columns)} if columns else {}


def append(df: DataFrame, table: str, merge_schema: bool = False) -> None:
    writer = df.write.format("delta").mode("append").options(**_creating(df))
    if merge_schema:  # a record that gained a column since the table was created
        writer = writer.option("mergeSchema", "true")
    writer.save(table_path(table))


def table_version(spark: SparkSession, table: str) -> int | None:
    """The table's current Delta version (from its log), None if it does not exist."""
    if not table_exists(spark, table):
        return None
    return last_commit(spark, table)[0]


def last_commit(spark: SparkSession, table: str) -> tuple[int, dict[str, str]]:
    """(version, operation metrics) of the table's newest commit, from its log (no data read, no Spark job)."""
    from featurepipe import delta_log

    try:
        newest = delta_log.newest_commit(get_settings().table_uri(table))
        if newest is not None:
            version, info = newest
            return version, {k: str(v) for k, v in (info.get("operationMetrics") or {}).items()}
    except delta_log.Unsupported:
        pass
    from delta.tables import DeltaTable

    newest = DeltaTable.forPath(spark, table_path(table)).history(1).select("version", "operationMetrics").first()
    return int(newest["version"]), dict(newest["operationMetrics"] or {})


def delete_where(spark: SparkSession, table: str, condition) -> None:
    from delta.tables import DeltaTable

    if table_exists(spark, table):
        DeltaTable.forPath(spark, table_path(table)).delete(condition)


def replace_partitions(df: DataFrame, table: str, column: str, first: dt.date, last: dt.date) -> None:
    """Atomically replace exactly the partitions `first..last` of `column` with `df` (idempotent rerun).

    Delta refuses the write if `df` holds a row outside the range, so a bug cannot spill into
    neighbouring dates.
    """
    _replace_where(df, table, column, range_predicate(column, first, last))


def range_predicate(column: str, first: dt.date, last: dt.date) -> str:
    """`first <= column <= last` in SQL: a range overwrite's predicate, as Delta's history records it."""
    return f"{column} >= '{first.isoformat()}' AND {column} <= '{last.isoformat()}'"


def _replace_where(df: DataFrame, table: str, column: str, predicate: str) -> None:
    from featurepipe.faults import hang_if_writing

    df = hang_if_writing(df, table)  # a fault for the kill test, off unless set (featurepipe.faults)
    (
        # each partition value written by one task: one file per date, not one per date per task
        df.repartition(column)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .options(**_creating(df, column))
        .partitionBy(column)
        .save(table_path(table))
    )


def overwrite(df: DataFrame, table: str, partition_by: str | None = None) -> None:
    if partition_by:
        df = df.repartition(partition_by)  # one file per partition value (see _replace_where)
    writer = (df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
              .options(**_creating(df, partition_by)))
    if partition_by:
        writer = writer.partitionBy(partition_by)
    writer.save(table_path(table))
