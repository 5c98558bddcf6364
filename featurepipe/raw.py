"""Reading the raw landing zone (SPEC §2): per-file schema check first, then one Spark DataFrame.

Files may differ in how they store the same column (timestamp unit and zone, int or float
amounts, dictionary strings); each group of alike files is read on its own and converted to the
contract's types before the union, so a nanosecond landing never crashes a run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from featurepipe.lake import ARRIVED_AT, SOURCE_FILE
from featurepipe.spec import Source
from featurepipe.storage import filesystem, list_parquet_files, spark_uri

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession


class RawSchemaError(ValueError):
    """A raw file lacks a required column or holds one of the wrong type."""


@dataclass(frozen=True)
class ColumnRead:
    name: str
    how: str  # "cast" | "nanos" | "null"
    # the stored type: Spark reads a group of files with one file's schema, so only files that
    # store every column alike may share a read (an INT64 amount beside a DOUBLE one fails)
    stored: str = ""


def _string_ok(t: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def plan_column(kind: str, arrow_type: pa.DataType) -> str | None:
    """How to read a column of contract `kind` stored as `arrow_type`; None if that type is wrong."""
    import pyarrow as pa

    if pa.types.is_null(arrow_type):
        return "null"  # an all-null column: its rows fail (or pass) the null rules like any other
    if kind == "string":
        return "cast" if _string_ok(arrow_type) else None
    if kind == "double":
        if pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type) or pa.types.is_decimal(arrow_type):
            return "cast"
        return None
    if kind == "timestamp":
        if pa.types.is_timestamp(arrow_type):
            return "nanos" if arrow_type.unit == "ns" else "cast"
        return None
    raise ValueError(f"unknown column kind {kind!r}")


def plan_file(path: str, schema: pa.Schema, source: Source) -> tuple[ColumnRead, ...]:
    """The read plan of one file, or RawSchemaError naming the file and the column."""
    plan = []
    for column in source.columns:
        index = schema.get_field_index(column.name)
        if index < 0:
            if column.required:
                raise RawSchemaError(f"raw file {path}: required column '{column.name}' is missing")
            plan.append(ColumnRead(column.name, "null"))
            continue
        arrow_type = schema.field(index).type
        how = plan_column(column.kind, arrow_type)
        if how is None:
            raise RawSchemaError(
                f"raw file {path}: column '{column.name}' has type {arrow_type}, expected {column.kind}"
            )
        plan.append(ColumnRead(column.name, how, str(arrow_type)))
    return tuple(plan)


def plan_files(files: list[str], source: Source) -> dict[tuple[ColumnRead, ...], list[str]]:
    """Parquet files checked and grouped by read plan (nothing is read yet)."""
    import pyarrow.parquet as pq

    groups: dict[tuple[ColumnRead, ...], list[str]] = {}
    for path in files:
        fs, inner = filesystem(path)
        try:
            schema = pq.read_schema(inner, filesystem=fs)
        except Exception as exc:  # a corrupt or non-Parquet file: name it, do not guess
            raise RawSchemaError(f"raw file {path}: cannot read Parquet schema: {exc}") from exc
        groups.setdefault(plan_file(path, schema, source), []).append(path)
    return groups


def _listed_path(spark_path, uri: str):
    """Spark's `file:/a%20b/x.parquet` or `s3a://…` back to the path as listed (and named in errors)."""
    from pyspark.sql import functions as F

    decoded = F.url_decode(spark_path)
    if uri.startswith("s3://"):
        return F.regexp_replace(decoded, r"^s3a://", "s3://")
    if "://" in uri:
        return decoded
    return F.regexp_replace(decoded, r"^file:(//)?", "")


_SPARK_TYPES = {"string": "string", "double": "double", "timestamp": "timestamp"}


def source_schema(source: Source) -> str:
    """The source's columns in the contract's Spark types, as a DDL string."""
    return ", ".join(f"{c.name} {_SPARK_TYPES[c.kind]}" for c in source.columns)


def read_source(
    spark: SparkSession, uri: str, source: Source, files: list[str] | None = None
) -> tuple[DataFrame | None, int]:
    """Raw rows (of `files`, default every file under `uri`) in the contract's types plus `source_file`
    and the file's arrival time (`ARRIVED_AT`, for the future-event rule; `with_reasons` drops it).

    Every file's schema is checked before anything is read; (None, 0) if there are no files.
    """
    from functools import reduce

    from pyspark.sql import functions as F

    groups = plan_files(list_parquet_files(uri) if files is None else files, source)
    kinds = {c.name: c.kind for c in source.columns}
    frames = []
    for plan, files in groups.items():
        df = spark.read.parquet(*[spark_uri(f) for f in files])
        columns = []
        for read in plan:
            spark_type = _SPARK_TYPES[kinds[read.name]]
            if read.how == "null":
                column = F.lit(None).cast(spark_type)
            elif read.how == "nanos":
                # read as INT64 nanoseconds (spark.sql.legacy.parquet.nanosAsLong): floor to microseconds
                # in integer arithmetic (a double cannot hold ns since 1970 to the nanosecond)
                ns = f"`{read.name}`"
                column = F.expr(f"timestamp_micros(({ns} - pmod({ns}, 1000)) div 1000)")
            else:
                # TIMESTAMP_NTZ (tz-naive) casts in the UTC session zone: naive means UTC
                column = F.col(read.name).cast(spark_type)
            columns.append(column.alias(read.name))
        columns.append(_listed_path(F.col("_metadata.file_path"), uri).alias(SOURCE_FILE))
        columns.append(F.col("_metadata.file_modification_time").alias(ARRIVED_AT))
        frames.append(df.select(*columns))
    if not frames:
        return None, 0
    n_files = sum(len(f) for f in groups.values())
    return reduce(lambda a, b: a.unionByName(b), frames), n_files


def _utc_instant(value) -> dt.datetime:
    if isinstance(value, int):  # nanoseconds surface as int
        value = dt.datetime.fromtimestamp(value / 1e9, tz=dt.timezone.utc)
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _newest_in_footer(metadata, index: int) -> dt.datetime | None:
    latest = None
    for g in range(metadata.num_row_groups):
        stats = metadata.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max:
            continue
        value = _utc_instant(stats.max)
        latest = value if latest is None or value > latest else latest
    return latest


def _newest_before(fs, inner: str, column: str, limit: dt.datetime) -> dt.datetime | None:
    """The newest value of one timestamp column not after `limit` (reads that column only)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    values = pq.read_table(inner, filesystem=fs, columns=[column]).column(column)
    if values.type.tz is None:
        values = pc.assume_timezone(values, "UTC")
    kept = pc.filter(values, pc.less_equal(values, pa.scalar(limit, type=values.type)))
    newest = pc.max(kept).as_py()
    return None if newest is None else _utc_instant(newest)


def latest_event_date(uri: str, source: Source, since: dt.date | None = None) -> dt.date | None:
    """The day of `latest_event` (None when it is None)."""
    latest = latest_event(uri, source, since)
    return latest.date() if latest else None


def latest_event(uri: str, source: Source, since: dt.date | None = None) -> dt.datetime | None:
    """The newest event instant (UTC) in the landing zone, from Parquet footer statistics.

    An event stamped later than its file's arrival plus the source's tolerance is quarantined by
    `validate_raw` (`event_timestamp_in_future`), so it must not make a day look landed either: a
    file whose footer shows one is read (its timestamp column only) for its newest event that is
    not in the future. None when no file carries statistics for the timestamp column.

    `since`: only whether a day from `since` on has landed matters (the sensor's question), so
    only files that arrived late enough to hold such an event are opened: a poke reads the newest
    files' footers, not every footer ever landed. None then means no event of `since` or later.
    """
    import pyarrow.parquet as pq

    from featurepipe.storage import list_parquet_file_info

    from concurrent.futures import ThreadPoolExecutor

    cutoff = dt.datetime.combine(since, dt.time(), dt.timezone.utc) - source.future_tolerance if since else None

    def newest_of(info) -> dt.datetime | None:
        fs, inner = filesystem(info.path)
        metadata = pq.ParquetFile(inner, filesystem=fs).metadata
        index = metadata.schema.to_arrow_schema().get_field_index(source.timestamp_column)
        if index < 0:
            return None
        newest = _newest_in_footer(metadata, index)
        if newest is not None and info.modified is not None and newest > info.modified + source.future_tolerance:
            newest = _newest_before(fs, inner, source.timestamp_column, info.modified + source.future_tolerance)
        return newest

    # files that arrived too early to hold a valid event of `since` or later are not opened
    files = [f for f in list_parquet_file_info(uri) if cutoff is None or f.modified is None or f.modified >= cutoff]
    # a year of daily files is 365 footers: read 8 at a time (I/O, and S3 round trips, release the GIL)
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = [t for t in pool.map(newest_of, files) if t is not None]
    return max(found, default=None)
