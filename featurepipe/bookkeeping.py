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

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from featurepipe import lake
from featurepipe.dates import AsOfRange
from featurepipe.storage import FileInfo

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

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


def _records(spark: SparkSession, table: str, group: FeatureGroup | None) -> DataFrame:
    rows = lake.read_table(spark, table)
    return rows.where(_is_group(rows.columns, group))


def ingested_files(spark: SparkSession) -> set[tuple[str, int, int]]:
    if not lake.table_exists(spark, lake.INGESTED_FILES):
        return set()
    rows = lake.read_table(spark, lake.INGESTED_FILES).select("file", "size", "modified_us").collect()
    return {(r["file"], r["size"], r["modified_us"]) for r in rows}


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
    lake.append(spark.createDataFrame(rows, schema), lake.INGESTED_FILES)


def _date_rows(spark: SparkSession, column: str, dates: list[dt.date], label: str):
    from pyspark.sql.types import DateType, StringType, StructField, StructType

    schema = StructType([StructField(column, DateType(), False), StructField("marked_by", StringType(), False)])
    return spark.createDataFrame([(d, label) for d in sorted(set(dates))], schema)


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
    if not lake.table_exists(spark, lake.DIRTY_DAYS):
        return []
    marks = lake.read_table(spark, lake.DIRTY_DAYS)
    rows = marks.where(_is_source(marks.columns, source)).collect()
    return sorted({(r[lake.EVENT_DATE], r["marked_by"]) for r in rows})


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
    if not lake.table_exists(spark, lake.PENDING_AS_OF):
        return []
    rows = _records(spark, lake.PENDING_AS_OF, group).select(lake.AS_OF_DATE).collect()
    return sorted({r[lake.AS_OF_DATE] for r in rows})


def clear_pending_as_of(spark: SparkSession, first: dt.date, last: dt.date, group: FeatureGroup | None = None) -> None:
    from pyspark.sql import functions as F

    if not lake.table_exists(spark, lake.PENDING_AS_OF):
        return
    columns = lake.read_table(spark, lake.PENDING_AS_OF).columns
    condition = F.col(lake.AS_OF_DATE).between(F.lit(first), F.lit(last)) & _is_group(columns, group)
    lake.delete_where(spark, lake.PENDING_AS_OF, condition)


def latest_published(spark: SparkSession, group: FeatureGroup | None = None) -> dt.date | None:
    from pyspark.sql import functions as F

    table = lake.features_table(_group(group))
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
    from pyspark.sql import functions as F

    found = None
    if lake.table_exists(spark, lake.RUN_SPANS):
        found = (
            _records(spark, lake.RUN_SPANS, group)
            .where((F.col("run_id") == run_id) & (F.col("start") == as_of.start) & (F.col("end") == as_of.end))
            .orderBy(F.col("recorded_at").desc())
            .first()
        )
    if found is None:
        raise MissingRunSpan(
            f"no span recorded for run {run_id!r} (as-of {as_of}, {_group(group).name}) in {lake.RUN_SPANS}: compute_features has not "
            f"finished for this run; rerun it before this step"
        )
    version = found.asDict().get("tiles_version")  # None in records from before it was kept
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
    from pyspark.sql import functions as F

    if not lake.table_exists(spark, lake.VALIDATIONS):
        return None
    found = _records(spark, lake.VALIDATIONS, group).where(F.col("run_id") == run_id)
    if span is not None:
        found = found.where((F.col("span_start") == span.start) & (F.col("span_end") == span.end))
    found = found.orderBy(F.col("validated_at").desc()).first()
    return None if found is None else bool(found["success"])


@dataclass(frozen=True)
class Materialized:
    window_end: dt.date  # the newest as-of date the online store was sent
    features_version: int  # the feature table's version it was sent from


def last_materialized(spark: SparkSession, group: FeatureGroup | None = None) -> Materialized | None:
    """The newest successful materialize (highest feature table version), None if none succeeded yet."""
    if not lake.table_exists(spark, lake.MATERIALIZED):
        return None
    row = _records(spark, lake.MATERIALIZED, group).orderBy("features_version", "materialized_at", ascending=False).first()
    return None if row is None else Materialized(row["window_end"], row["features_version"])


def first_published_at(spark: SparkSession, first: dt.date, last: dt.date,
                       group: FeatureGroup | None = None) -> dict[dt.date, dt.datetime]:
    """For each as-of date in first..last that a span covers: when it was first published (UTC)."""
    if not lake.table_exists(spark, lake.PUBLISHED_SPANS):
        return {}
    from pyspark.sql import functions as F

    rows = (_records(spark, lake.PUBLISHED_SPANS, group)
            .where((F.col("span_end") >= F.lit(first)) & (F.col("span_start") <= F.lit(last)))
            .select("span_start", "span_end", F.date_format("published_at", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS").alias("at"))
            .collect())
    found: dict[dt.date, dt.datetime] = {}
    for r in rows:
        at = dt.datetime.fromisoformat(r["at"]).replace(tzinfo=dt.timezone.utc)  # the session's zone is UTC
        day = max(r["span_start"], first)
        while day <= min(r["span_end"], last):
            found[day] = min(found.get(day, at), at)
            day += dt.timedelta(days=1)
    return found


def owed_online(spark: SparkSession, group: FeatureGroup | None = None) -> dt.date | None:
    """The first as-of date whose rows the online store may lack: the earliest span published after
    the feature table version of the last successful materialize (every span, if none succeeded
    yet). None when nothing is owed. Read from the records: no scan of the feature table."""

    if not lake.table_exists(spark, lake.PUBLISHED_SPANS):
        return None
    from pyspark.sql import functions as F

    last = -1
    if lake.table_exists(spark, lake.MATERIALIZED):
        last = _records(spark, lake.MATERIALIZED, group).agg(F.max("features_version")).first()[0]
        last = -1 if last is None else last
    # one small row per publish, read whole (spans recorded before versions were have none: -1)
    spans = [r.asDict() for r in _records(spark, lake.PUBLISHED_SPANS, group).collect()]
    owed = [s["span_start"] for s in spans if last < 0 or (s.get("features_version") or -1) > last]
    return min(owed, default=None)


def _append_record(spark: SparkSession, table: str, values: dict[str, str | int | dt.date], stamp: str) -> None:
    """Append one row of non-null strings, integers and dates, plus the time of the append in column `stamp`."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

    kinds = {str: StringType(), int: LongType(), dt.date: DateType()}
    schema = StructType([StructField(k, kinds[type(v)], False) for k, v in values.items()])
    row = spark.createDataFrame([tuple(values.values())], schema)
    lake.append(row.withColumn(stamp, F.current_timestamp()), table, merge_schema=True)  # a new column: older lakes


def published_dates(spark: SparkSession, group: FeatureGroup | None = None) -> tuple[dt.date | None, set[dt.date]]:
    """(the first as-of date ever published or None, every as-of date some published span covers)."""
    table = lake.features_table(_group(group))
    if not lake.table_exists(spark, lake.PUBLISHED_SPANS):
        if not lake.table_exists(spark, table):
            return None, set()
        # a lake published before spans were recorded: its partitions are what was published
        covered = {r[0] for r in lake.read_table(spark, table).select(lake.AS_OF_DATE).distinct().collect()}
        return min(covered, default=None), covered
    spans = [(r["span_start"], r["span_end"]) for r in _records(spark, lake.PUBLISHED_SPANS, group).collect()]
    covered = {start + dt.timedelta(days=k) for start, end in spans for k in range((end - start).days + 1)}
    return min(covered, default=None), covered
