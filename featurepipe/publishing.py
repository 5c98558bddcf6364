"""Publishing: the validated staged partitions of a span replace the same partitions of the feature table."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from featurepipe.dates import AsOfRange
from featurepipe.lake import AS_OF_DATE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def publish(spark: SparkSession, span: AsOfRange, run_id: str, tiles_version: int | None = None) -> dict:
    """Replace the span's partitions of the feature table with the run's staged rows (those its
    validate_features checked); clear their pending marks; drop the run's staging.

    `tiles_version`: the tiles table version the rows were computed from. If another run rebuilt
    tiles since (a late landing ingested between this run's compute_features and publish), the
    rows may miss those events: they are published, and their dates marked pending instead of
    cleared, so the next run recomputes them.
    """
    from featurepipe import bookkeeping, lake

    table = lake.staged_table(run_id)
    # one pass: the staged rows are read once, as they are written (no count first: the commit counts them)
    staged = lake.read_range(spark, table, AS_OF_DATE, span.start, span.end)
    lake.replace_partitions(staged, lake.FEATURES, AS_OF_DATE, span.start, span.end)
    published_version, metrics = lake.last_commit(spark, lake.FEATURES)  # under the lease: this publish's commit
    rows = int(metrics.get("numOutputRows", 0))
    current = lake.table_version(spark, lake.TILES)
    fresh = tiles_version is None or current == tiles_version
    if fresh:
        bookkeeping.clear_pending_as_of(spark, span.start, span.end)
    else:
        dates = [span.start + dt.timedelta(days=i) for i in range(span.days)]
        bookkeeping.mark_pending_as_of(spark, dates, f"publish {run_id}: tiles changed since compute")
        print(f"[publish] tiles changed since this run computed its rows (version {tiles_version} -> {current}): "
              f"as-of {span} published and marked pending for the next run")
    bookkeeping.record_published(spark, span, published_version)
    lake.drop_table(table)  # after the records: a crash before it leaves only a folder to delete
    return {
        "span": str(span),
        "rows": rows,
        "table": lake.FEATURES,
        "recomputed_next_run": not fresh,
    }


def materialize_span(spark: SparkSession, span: AsOfRange) -> dict:
    """Send the published rows of [first owed as-of, newest published as-of] to Feast's online store.

    Ending at the newest as-of ever published, not the span's end, makes a backfill of an old
    range re-send each user's newest row, so the online store never moves back in time. Starting
    at the first as-of published since the last successful materialize (if that is before the
    span) redoes what a failed or partial materialize left out: the online store converges.
    """
    from featurepipe import bookkeeping, feast_store, lake
    from featurepipe.dates import midnight
    from featurepipe.settings import get_settings

    version = lake.table_version(spark, lake.FEATURES)  # under the lease: no publish moves it meanwhile
    latest = bookkeeping.latest_published(spark)
    owed = bookkeeping.owed_online(spark)
    first = min(span.start, owed) if owed else span.start
    window = AsOfRange(first, max(span.end, latest) if latest else span.end)
    store = get_settings().online_store
    if first < span.start:
        print(f"[materialize] the online store is owed rows from {owed} (a materialize failed or never ran): "
              "sending them too")
    print(f"[materialize] {midnight(window.start).isoformat()} .. {midnight(window.end).isoformat()} into {store}")
    feast_store.materialize(midnight(window.start), midnight(window.end))
    bookkeeping.record_materialized(spark, window, version)
    return {"span": str(span), "online_store": store, "window_start": midnight(window.start).isoformat(),
            "window_end": midnight(window.end).isoformat(), "healed_from": str(owed) if first < span.start else None}
