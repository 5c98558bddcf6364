"""State of the incremental pipeline, in small Delta tables beside the data (README: "Incremental runs").

- `ingested_files`: every raw file already read (path, size, modification time). A file is read
  once; a re-delivered file (new size or time) is read again and deduplicated like any landing.
- `dirty_tile_days`: event days whose tiles must be rebuilt because a landing changed their events.
- `pending_as_of`: published as-of dates whose rows are stale because a tile under them changed.
- `run_spans`: the as-of span each DAG run's compute_features staged, which its later steps
  validate, publish and materialize (tasks may run on different workers: state lives in the lake).
- `published_spans`: every span a publish completed. An as-of date after the first one published
  and covered by none (its run failed, or never ran) is a gap, which later runs fill.
- `validations`: each run's feature-suite outcome per group: publish copies only groups that passed.

Dirty days belong to a source (every group of it rebuilds its tiles from them); pending dates, spans,
validations and materializations belong to a feature group (column `feature_group`; rows written
before there were several groups have none and are the user group's).

Each step consumes what it finished and leaves the rest, so a failed run is repaired by the next.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from featurepipe import lake
from featurepipe.dates import AsOfRange
from featurepipe.storage import FileInfo

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

    from featurepipe.spec import FeatureGroup, Source

GROUP = "feature_group"


def _group(group: FeatureGroup | None) -> FeatureGroup:
    from featurepipe.spec import USER_PURCHASE

    return group or USER_PURCHASE


def _rows_of(columns: list[str], column: str, name: str, legacy: str) -> Column:
    """The rows (of a table with `columns`) whose `column` is `name`; rows written before the column
    existed (null, or a table without it) belong to `legacy`."""
    from pyspark.sql import functions as F

    old = F.lit(name == legacy)
    if column not in columns:
        return old
    return F.when(F.col(column).isNull(), old).otherwise(F.col(column) == F.lit(name))


def _is_group(columns: list[str], group: FeatureGroup | None) -> Column:
    """The rows (of a table with `columns`) that belong to `group` (rows without a group are the user group's)."""
    from featurepipe.spec import USER_PURCHASE

    return _rows_of(columns, GROUP, _group(group).name, USER_PURCHASE.name)


def _belongs(row: dict, column: str, name: str, legacy: str) -> bool:
    """`_rows_of` for one record read as a dict."""
    value = row.get(column)
    return name == legacy if value is None else value == name


def _records(spark: SparkSession, table: str, group: FeatureGroup | None) -> list[dict]:
    """The records of `group` in a bookkeeping table, as dicts ([] if the table does not exist yet).

    The tables hold one small row per record: they are read in this process from their Delta log
    and files (`lake.small_table_rows`), not by Spark jobs, which cost more than the read itself."""
    from featurepipe.spec import USER_PURCHASE

    name = _group(group).name
    return [r for r in lake.small_table_rows(spark, table) if _belongs(r, GROUP, name, USER_PURCHASE.name)]


def _newest(records: list[dict], *keys: str) -> dict | None:
    """The record with the largest `keys` (e.g. its time of recording); None if there is none."""
    return max(records, key=lambda r: tuple(r[k] for k in keys), default=None)


def ingested_files(spark: SparkSession) -> set[tuple[str, int, int]]:
    return {(r["file"], r["size"], r["modified_us"]) for r in lake.small_table_rows(spark, lake.INGESTED_FILES)}


def _identity(f: FileInfo) -> tuple[str, int, int]:
    # epoch microseconds, not a timestamp: Python datetimes from Spark are in the local zone
    modified = round(f.modified.timestamp() * 1_000_000) if f.modified else -1
    return (f.path, f.size, modified)


def new_files(spark: SparkSession, listed: list[FileInfo]) -> list[FileInfo]:
    """Files not yet ingested (or changed since: other size or modification time)."""
    seen = ingested_files(spark)
    return [f for f in listed if _identity(f) not in seen]


def record_ingested(spark: SparkSession, files: list[FileInfo], as_of: dt.date) -> None:
    if not files:
        return
    from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

    schema = StructType([
        StructField("file", StringType(), False),
        StructField("size", LongType(), False),
        StructField("modified_us", LongType(), False),
        StructField("ingested_as_of", DateType(), False),
    ])
    rows = [(*_identity(f), as_of) for f in files]
    lake.append(lake.literal_rows(spark, rows, schema), lake.INGESTED_FILES)


def _date_rows(spark: SparkSession, column: str, dates: list[dt.date], label: str):
    from pyspark.sql.types import DateType, StringType, StructField, StructType

    schema = StructType([StructField(column, DateType(), False), StructField("marked_by", StringType(), False)])
    return lake.literal_rows(spark, [(d, label) for d in sorted(set(dates))], schema)


SOURCE = "source"


def _is_source(columns: list[str], source: Source | None) -> Column:
    """Dirty marks (of a table with `columns`) of `source` (marks without a source are the transactions')."""
    from featurepipe.spec import TRANSACTIONS

    return _rows_of(columns, SOURCE, (source or TRANSACTIONS).name, TRANSACTIONS.name)


def mark_dirty_days(spark: SparkSession, days: list[dt.date], label: str, source: Source | None = None) -> None:
    from pyspark.sql import functions as F

    from featurepipe.spec import TRANSACTIONS

    if days:
        rows = _date_rows(spark, lake.EVENT_DATE, days, label).withColumn(SOURCE, F.lit((source or TRANSACTIONS).name))
        lake.append(rows, lake.DIRTY_DAYS, merge_schema=True)


def dirty_days(spark: SparkSession, source: Source | None = None) -> list[tuple[dt.date, str]]:
    from featurepipe.spec import TRANSACTIONS

    name = (source or TRANSACTIONS).name
    return sorted({(r[lake.EVENT_DATE], r["marked_by"]) for r in lake.small_table_rows(spark, lake.DIRTY_DAYS)
                   if _belongs(r, SOURCE, name, TRANSACTIONS.name)})


def clear_dirty_days(spark: SparkSession, done: list[tuple[dt.date, str]], source: Source | None = None) -> None:
    """Forget exactly the marks that were rebuilt (a mark added meanwhile by another run stays)."""
    from pyspark.sql import functions as F

    if not done:
        return
    by_label: dict[str, list[dt.date]] = {}
    for day, label in done:
        by_label.setdefault(label, []).append(day)
    # one IN list per marking run (usually one or two), not one clause per day: years of days
    # as a chain of ORs overflow the JVM stack
    condition = F.lit(False)
    for label, days in by_label.items():
        condition = condition | ((F.col("marked_by") == F.lit(label)) & F.col(lake.EVENT_DATE).isin(days))
    columns = lake.read_table(spark, lake.DIRTY_DAYS).columns
    lake.delete_where(spark, lake.DIRTY_DAYS, condition & _is_source(columns, source))


def mark_pending_as_of(spark: SparkSession, dates: list[dt.date], label: str, group: FeatureGroup | None = None) -> None:
    from pyspark.sql import functions as F

    if dates:
        rows = _date_rows(spark, lake.AS_OF_DATE, dates, label).withColumn(GROUP, F.lit(_group(group).name))
        lake.append(rows, lake.PENDING_AS_OF, merge_schema=True)


def pending_as_of(spark: SparkSession, group: FeatureGroup | None = None) -> list[dt.date]:
    return sorted({r[lake.AS_OF_DATE] for r in _records(spark, lake.PENDING_AS_OF, group)})


def clear_pending_as_of(spark: SparkSession, first: dt.date, last: dt.date, group: FeatureGroup | None = None) -> None:
    from pyspark.sql import functions as F

    if not any(first <= d <= last for d in pending_as_of(spark, group)):
        return  # nothing to clear: no Delta DELETE (a scan and a transaction for nothing)
    columns = lake.read_table(spark, lake.PENDING_AS_OF).columns
    condition = F.col(lake.AS_OF_DATE).between(F.lit(first), F.lit(last)) & _is_group(columns, group)
    lake.delete_where(spark, lake.PENDING_AS_OF, condition)


def latest_published(spark: SparkSession, group: FeatureGroup | None = None) -> dt.date | None:
    """The newest as-of date the group's feature table holds rows of (from its log: the newest partition)."""
    from pyspark.sql import functions as F

    from featurepipe import delta_log
    from featurepipe.settings import get_settings

    table = lake.features_table(_group(group))
    try:
        return delta_log.newest_date(get_settings().table_uri(table), lake.AS_OF_DATE)
    except delta_log.Unsupported:
        pass
    if not lake.table_exists(spark, table):
        return None
    return lake.read_table(spark, table).agg(F.max(lake.AS_OF_DATE)).first()[0]


class MissingRunSpan(RuntimeError):
    """A step after compute_features found no span for its run: compute_features did not finish for it."""


@dataclass(frozen=True)
class RunSpan:
    span: AsOfRange  # the run's range plus the late-data repairs and gaps it staged
    tiles_version: int | None  # the tiles table's Delta version its rows were computed from


def record_run_span(spark: SparkSession, run_id: str, as_of: AsOfRange, span: AsOfRange,
                    tiles_version: int | None = None, group: FeatureGroup | None = None) -> None:
    """What compute_features staged for a run (its range plus repaired late dates), for the later steps.

    An append, never an update: appends never conflict with another run's, and a rerun of the
    same run's compute_features simply adds a newer record.
    """
    _append_record(spark, lake.RUN_SPANS, {"run_id": run_id, "start": as_of.start, "end": as_of.end,
                                           "span_start": span.start, "span_end": span.end,
                                           "tiles_version": -1 if tiles_version is None else tiles_version,
                                           GROUP: _group(group).name},
                   "recorded_at")


def run_span(spark: SparkSession, run_id: str, as_of: AsOfRange, group: FeatureGroup | None = None) -> RunSpan:
    """The span compute_features recorded for `run_id` (the newest record); MissingRunSpan if none."""
    found = _newest([r for r in _records(spark, lake.RUN_SPANS, group)
                     if r["run_id"] == run_id and r["start"] == as_of.start and r["end"] == as_of.end], "recorded_at")
    if found is None:
        raise MissingRunSpan(
            f"no span recorded for run {run_id!r} (as-of {as_of}, {_group(group).name}) in {lake.RUN_SPANS}: compute_features has not "
            f"finished for this run; rerun it before this step"
        )
    version = found.get("tiles_version")  # None in records from before it was kept
    version = None if version is None or version < 0 else version
    return RunSpan(AsOfRange(found["span_start"], found["span_end"]), version)


def record_published(spark: SparkSession, span: AsOfRange, features_version: int | None = None,
                     group: FeatureGroup | None = None) -> None:
    """A span is published (appended after the feature table's commit: a crash between leaves a gap to refill),
    with the feature table's version that commit made."""
    _append_record(spark, lake.PUBLISHED_SPANS, {"span_start": span.start, "span_end": span.end,
                                                 "features_version": -1 if features_version is None else features_version,
                                                 GROUP: _group(group).name},
                   "published_at")


def record_materialized(spark: SparkSession, window: AsOfRange, features_version: int,
                        group: FeatureGroup | None = None) -> None:
    """The online store holds every entity's newest row of the group's feature table at `features_version`
    (appended only after a materialize succeeded: a failed one leaves its rows owed)."""
    _append_record(spark, lake.MATERIALIZED, {"window_start": window.start, "window_end": window.end,
                                              "features_version": features_version, GROUP: _group(group).name},
                   "materialized_at")


def record_validated(spark: SparkSession, run_id: str, span: AsOfRange, success: bool, group: FeatureGroup) -> None:
    """The feature suite's outcome on a run's staged rows of `group` (what publish checks first)."""
    _append_record(spark, lake.VALIDATIONS, {"run_id": run_id, "span_start": span.start, "span_end": span.end,
                                             "success": int(success), GROUP: group.name}, "validated_at")


def validated(spark: SparkSession, run_id: str, span: AsOfRange | None, group: FeatureGroup) -> bool | None:
    """Did the newest validation of the run's staged `span` (None: any span) of `group` pass? None if none ran."""
    found = _newest([r for r in _records(spark, lake.VALIDATIONS, group) if r["run_id"] == run_id and (
        span is None or (r["span_start"] == span.start and r["span_end"] == span.end))], "validated_at")
    return None if found is None else bool(found["success"])


@dataclass(frozen=True)
class Materialized:
    window_end: dt.date  # the newest as-of date the online store was sent
    features_version: int  # the feature table's version it was sent from


def last_materialized(spark: SparkSession, group: FeatureGroup | None = None) -> Materialized | None:
    """The newest successful materialize (highest feature table version), None if none succeeded yet."""
    row = _newest(_records(spark, lake.MATERIALIZED, group), "features_version", "materialized_at")
    return None if row is None else Materialized(row["window_end"], row["features_version"])


def first_published_at(spark: SparkSession, first: dt.date, last: dt.date,
                       group: FeatureGroup | None = None) -> dict[dt.date, dt.datetime]:
    """For each as-of date in first..last that a span covers: when it was first published (UTC)."""
    found: dict[dt.date, dt.datetime] = {}
    for r in _records(spark, lake.PUBLISHED_SPANS, group):
        if r["span_end"] < first or r["span_start"] > last:
            continue
        at = r["published_at"].replace(tzinfo=dt.timezone.utc)  # records' times are naive UTC
        day = max(r["span_start"], first)
        while day <= min(r["span_end"], last):
            found[day] = min(found.get(day, at), at)
            day += dt.timedelta(days=1)
    return found


def owed_online(spark: SparkSession, group: FeatureGroup | None = None) -> dt.date | None:
    """The first as-of date whose rows the online store may lack: the earliest span published after
    the feature table version of the last successful materialize (every span, if none succeeded
    yet). None when nothing is owed. Read from the records: no scan of the feature table."""
    last = max((r["features_version"] for r in _records(spark, lake.MATERIALIZED, group)
                if r["features_version"] is not None), default=-1)
    # one small row per publish (spans recorded before versions were have none: -1)
    spans = _records(spark, lake.PUBLISHED_SPANS, group)
    owed = [s["span_start"] for s in spans if last < 0 or (s.get("features_version") or -1) > last]
    return min(owed, default=None)


# the records a `batched_records` block holds back, by (table, stamp column, columns); None outside one
_BATCH: contextvars.ContextVar[dict | None] = contextvars.ContextVar("featurepipe_bookkeeping_batch", default=None)


@contextlib.contextmanager
def batched_records(spark: SparkSession) -> Iterator[None]:
    """Records appended inside are written when the block ends, in one commit per table instead of one
    per record (a step records each group: a Delta commit costs ~0.3 s even for one row). They are
    written also when the block raises: they describe work done before. Reads inside do not see them,
    so a step uses it only around records it does not read back (each group reads its own)."""
    pending: dict = {}
    token = _BATCH.set(pending)
    try:
        yield
    finally:
        _BATCH.reset(token)
        for (table, stamp, _), records in pending.items():
            _append_records(spark, table, records, stamp)


def _append_record(spark: SparkSession, table: str, values: dict[str, str | int | dt.date], stamp: str) -> None:
    """Append one record now, or at the end of the `batched_records` block around it."""
    pending = _BATCH.get()
    if pending is not None:
        pending.setdefault((table, stamp, tuple(values)), []).append(values)
        return
    _append_records(spark, table, [values], stamp)


def _append_records(spark: SparkSession, table: str, records: list[dict[str, str | int | dt.date]], stamp: str) -> None:
    """Append records (alike dicts of non-null strings, integers and dates) in one commit, plus the time
    of the append in column `stamp`."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

    if not records:
        return
    kinds = {str: StringType(), int: LongType(), dt.date: DateType()}
    schema = StructType([StructField(k, kinds[type(v)], False) for k, v in records[0].items()])
    rows = lake.literal_rows(spark, [tuple(r[f.name] for f in schema.fields) for r in records], schema)
    lake.append(rows.withColumn(stamp, F.current_timestamp()), table, merge_schema=True)  # a new column: older lakes


def published_records(spark: SparkSession, group: FeatureGroup | None = None) -> list[dict]:
    """Every `published_spans` record of `group` (span, `features_version`, `published_at`), as dicts."""
    return _records(spark, lake.PUBLISHED_SPANS, group)


def published_dates(spark: SparkSession, group: FeatureGroup | None = None) -> tuple[dt.date | None, set[dt.date]]:
    """(the first as-of date ever published or None, every as-of date some published span covers)."""
    table = lake.features_table(_group(group))
    if not lake.table_exists(spark, lake.PUBLISHED_SPANS):
        if not lake.table_exists(spark, table):
            return None, set()
        # a lake published before spans were recorded: its partitions are what was published
        covered = {r[0] for r in lake.read_table(spark, table).select(lake.AS_OF_DATE).distinct().collect()}
        return min(covered, default=None), covered
    spans = [(r["span_start"], r["span_end"]) for r in _records(spark, lake.PUBLISHED_SPANS, group)]
    covered = {start + dt.timedelta(days=k) for start, end in spans for k in range((end - start).days + 1)}
    return min(covered, default=None), covered
