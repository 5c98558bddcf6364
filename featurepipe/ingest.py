"""Ingesting new landings: raw files -> quarantine (bad rows, with reasons) + clean, deduplicated events.

`ingest` runs the named steps below in an order that matters for crashes: the event days a
batch changes are marked dirty *before* the clean MERGE, and the files are recorded as read
*after* it. A crash between any two steps therefore leaves either a harmless extra dirty mark
or files that are read again (and deduplicated again) by the next run; never a change that no
tile rebuild will see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from featurepipe.dates import AsOfRange
from featurepipe.lake import EVENT_DATE, EVENT_MONTH
from featurepipe.spec import Source
from featurepipe.storage import FileInfo
from featurepipe.validation import REASON, changed_days, deduplicate, rank_key, winners, with_reasons, with_row_key

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Observation, SparkSession

# up to this many distinct ids per landing batch, the clean table is read through an IN list
MAX_PUSHED_IDS = 50_000


class RawSuiteFailed(RuntimeError):
    """The raw suite failed on rows that passed the quarantine rules: a bug there; nothing merged."""


@dataclass
class Batch:
    """One landing batch, split by the rules: the valid deduplicated events (cached), the quarantine
    rows, and the raw rows' counts, observed while the events are first computed."""

    events: DataFrame  # one row per event id, with `event_date`
    invalid: DataFrame  # quarantine rows: raw columns, reason, row_key, as_of (not cached: read if any)
    counted: Observation  # `rows` and `invalid` of the raw rows, once a job has computed `events`

    def count(self) -> tuple[int, int, int]:
        """(raw rows, invalid rows, events): computes and caches the events, counting the raw rows
        on the way. Call it before any other job reads the events: an observation keeps what the
        first job over its rows saw, and only a job over all of them (this count) sees them all."""
        events = self.events.count()
        if not self.counted._jo.future().isCompleted():
            raise RuntimeError(f"the raw rows' counts ({self.counted._name}) were not observed by the job that computed the events")
        counts = self.counted.get
        return counts["rows"], counts["invalid"], events


def list_new_files(spark: SparkSession, uri: str) -> tuple[list[FileInfo], list[FileInfo]]:
    """(every raw file under `uri`, those not ingested yet); no files at all is an error."""
    from featurepipe import bookkeeping
    from featurepipe.storage import list_parquet_file_info

    listed = list_parquet_file_info(uri)
    if not listed:
        raise FileNotFoundError(f"no Parquet files under {uri}")
    return listed, bookkeeping.new_files(spark, listed)


def split_batch(raw: DataFrame, source: Source, as_of: AsOfRange) -> Batch:
    """Apply the row rules and deduplicate within the batch (SPEC §2).

    Only the events are cached. The raw rows are counted (all, invalid) by an observation on the
    way into the deduplication, in the job that first computes the events: caching every raw row
    with its reason as well cost a 20M-row landing 21-29 s more of that job and ~0.6 GiB more live heap
    (measured, README "End to end"). The invalid rows are read again from the landing only when
    there are some.
    """
    import uuid

    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from featurepipe.dates import midnight

    flagged = with_reasons(raw, source)
    counted = Observation(f"raw_rows_{source.name}_{uuid.uuid4().hex[:8]}")
    observed = flagged.observe(counted, F.count(F.lit(1)).alias("rows"), F.count(F.col(REASON)).alias("invalid"))
    valid = observed.where(F.col(REASON).isNull()).drop(REASON)
    invalid = with_row_key(flagged.where(F.col(REASON).isNotNull()), source).withColumn(
        "as_of", F.lit(midnight(as_of.end)).cast("timestamp")
    )
    events = deduplicate(valid, source).withColumn(EVENT_DATE, F.to_date(source.timestamp_column)).cache()
    return Batch(events, invalid, counted)


def quarantine(spark: SparkSession, invalid: DataFrame, rows: int, source: Source) -> None:
    """Insert quarantine rows never seen before; a row keeps the as-of of the run that first saw it."""
    from delta.tables import DeltaTable

    from featurepipe import lake

    table = lake.quarantine_table(source)
    exists = lake.table_exists(spark, table)
    if rows == 0:  # nothing to add: no MERGE (a clean landing is the usual day), and no read of the landing
        if not exists:
            lake.overwrite(lake.no_rows(spark, invalid.schema), table)
        return
    if exists:
        (
            DeltaTable.forPath(spark, lake.table_path(table)).alias("q")
            .merge(invalid.alias("n"), "q.row_key = n.row_key")
            .whenNotMatchedInsertAll()
            .execute()
        )
    else:
        lake.overwrite(invalid, table)


def stored_copies(spark: SparkSession, events: DataFrame, source: Source) -> DataFrame | None:
    """The clean table narrowed to the batch's ids where possible, or None before the first run.

    A literal IN list lets Delta skip every file whose id range cannot hold a batch id (per-file
    min/max statistics), so a daily landing does not read the whole history. (A read: the list is
    in no commit.)
    """
    from pyspark.sql import functions as F

    from featurepipe import lake

    if not lake.table_exists(spark, lake.clean_table(source)):
        return None
    current = lake.read_table(spark, lake.clean_table(source)).drop(EVENT_MONTH)
    ids = events.select(source.id_column).limit(MAX_PUSHED_IDS + 1).collect()
    if len(ids) > MAX_PUSHED_IDS:
        return current
    return current.where(F.col(source.id_column).isin([r[0] for r in ids]))


def merge_clean(spark: SparkSession, winning: DataFrame, source: Source, first_run: bool, days: list,
                replacing: int) -> None:
    """Upsert the winning copies into `clean/<source>` (a stored copy is replaced only by a better one).

    `replacing`: how many winners replace a stored copy. With none (the usual landing: new events
    only), an append does what the MERGE would, without the MERGE's scan of the target.
    `days`: the batch's changed event days (`changed_days`), which hold every stored copy a winner
    replaces; the MERGE reads only the files of their months that hold one of them. (Not the
    batch's ids: Delta records the condition in each commit, and an IN list of 50,000 ids would
    bloat every commit of the log.)
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from featurepipe import lake

    rows, table = lake.with_month(winning.drop("_previous_date", "_replaces")), lake.clean_table(source)
    if first_run:
        lake.overwrite(rows, table, partition_by=EVENT_MONTH)
        return
    lake.to_month_layout(spark, table)
    if replacing == 0:
        lake.append(rows.repartition(EVENT_DATE), table)  # one file per day and month partition
        return
    condition = ((F.col(f"c.{source.id_column}") == F.col(f"n.{source.id_column}"))
                 & F.col(f"c.{EVENT_MONTH}").isin(lake.months_of(days)) & F.col(f"c.{EVENT_DATE}").isin(days))
    (
        DeltaTable.forPath(spark, lake.table_path(table)).alias("c")
        .merge(rows.alias("n"), condition)
        .whenMatchedUpdateAll(condition=rank_key(source, "n") < rank_key(source, "c"))
        .whenNotMatchedInsertAll()
        .execute()
    )


def ingest(spark: SparkSession, as_of: AsOfRange, gate: Callable[[DataFrame], None] | None = None,
           sized: Callable[[int], None] | None = None, source: Source | None = None) -> dict:
    """Read the landings of `source` (default: the transactions) not yet ingested, quarantine bad
    rows, merge valid events into the source's clean table.

    `sized(bytes)` hears the new files' size before they are read (the step fits Spark to it);
    `gate(events)` may veto the batch before anything is written (the raw GX suite). Returns the
    step report. The order of the writes is the crash-safety rule of the module docstring. The
    first source of `spec.SOURCES` must have landings; another may have none yet (nothing to do).
    """

    from pyspark.sql import functions as F

    from featurepipe import bookkeeping
    from featurepipe.raw import read_source
    from featurepipe.settings import get_settings
    from featurepipe.spec import SOURCES

    source = source or SOURCES[0]
    uri = get_settings().source_uri(source.name)
    nothing = {"raw_rows": 0, "quarantined_rows": 0, "quarantine_reasons": {}, "duplicate_rows_dropped": 0,
               "new_or_corrected_events": 0, "dirty_days": 0}
    try:
        listed, fresh = list_new_files(spark, uri)
    except FileNotFoundError:
        if source.name == SOURCES[0].name:
            raise
        print(f"[validate_raw] {source.name}: no landings under {uri} yet")
        return {"files": 0, "new_files": 0, **nothing}
    report = {"files": len(listed), "new_files": len(fresh)}
    if not fresh:
        print(f"[validate_raw] {len(listed)} raw files under {uri}, none new")
        return {**report, **nothing}
    print(f"[validate_raw] reading {len(fresh)} new of {len(listed)} raw files under {uri}")
    if sized is not None:
        sized(sum(f.size for f in fresh))
    raw, _ = read_source(spark, uri, source, files=[f.path for f in fresh])
    batch = split_batch(raw, source, as_of)
    n_raw, n_invalid, n_events = batch.count()  # the first job over the batch: it reads the landing
    if gate is not None:
        gate(batch.events)  # the cached frame itself: a projection of it would be cached a second time

    n_valid, by_reason = n_raw - n_invalid, {}
    invalid = batch.invalid.cache() if n_invalid else batch.invalid  # read from the landing only if any
    if n_invalid:
        by_reason = {r[REASON]: r["count"] for r in invalid.groupBy(REASON).count().collect()}
    quarantine(spark, invalid, rows=n_invalid, source=source)
    invalid.unpersist()
    current = stored_copies(spark, batch.events, source)
    winning = winners(batch.events, current, source)
    if current is not None:  # read again by the stats and the merge: the join with the stored copies once
        winning = winning.cache()
    # one job for what the report and the merge need; counted before the merge, which invalidates
    # every cache built on the clean table
    won = winning.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("_replaces").cast("int")).alias("replacing"),
        F.collect_set(F.to_date(source.timestamp_column)).alias("days"),
        F.collect_set("_previous_date").alias("previous_days"),
    ).first()
    n_won, replacing = won["n"], won["replacing"] or 0
    days = changed_days(won["days"], won["previous_days"])
    bookkeeping.mark_dirty_days(spark, days, as_of.label, source)  # before the merge: see the module docstring
    merge_clean(spark, winning, source, first_run=current is None, days=days, replacing=replacing)
    bookkeeping.record_ingested(spark, fresh, as_of.end)  # after it: an unrecorded file is read again
    return {
        **report,
        "raw_rows": n_raw,
        "quarantined_rows": n_raw - n_valid,
        "quarantine_reasons": by_reason,
        "duplicate_rows_dropped": n_valid - n_won,
        "new_or_corrected_events": n_won,
        "dirty_days": len(days),
        "dirty_day_range": f"{days[0]}..{days[-1]}" if days else "",
        "batch_events": n_events,
    }
