"""Publishing: the validated staged partitions of a span replace the same partitions of the feature table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurepipe.dates import AsOfRange
from featurepipe.lake import AS_OF_DATE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurepipe.spec import FeatureGroup


def publish(spark: SparkSession, span: AsOfRange, run_id: str, tiles_version: int | None = None,
            group: FeatureGroup | None = None) -> dict:
    """Replace the span's partitions of the group's feature table with the run's staged rows (those its
    validate_features checked); clear their pending marks; drop the run's staging.

    `tiles_version`: the tiles table version the rows were computed from. If another run rebuilt
    tiles since (a late landing ingested between this run's compute_features and publish), the
    rows may miss those events: they are published, and their dates marked pending instead of
    cleared, so the next run recomputes them.
    """
    from featurepipe import bookkeeping, delta_commit, lake
    from featurepipe.spec import USER_PURCHASE

    group = group or USER_PURCHASE
    table, features = lake.staged_table(run_id, group), lake.features_table(group)
    # the staged files themselves, committed to the feature table (featurepipe.delta_commit) ...
    committed = delta_commit.replace_partitions(spark, table, features, AS_OF_DATE, span.start, span.end)
    if committed is None:  # ... or, where that does not apply, the staged rows read once and written again
        staged = lake.read_range(spark, table, AS_OF_DATE, span.start, span.end)
        lake.replace_partitions(staged, features, AS_OF_DATE, span.start, span.end)
        version, metrics = lake.last_commit(spark, features)  # under the lease: this publish's commit
        committed = version, int(metrics.get("numOutputRows", 0))
    published_version, rows = committed
    current = lake.table_version(spark, lake.tiles_table(group))
    fresh = tiles_version is None or current == tiles_version
    if fresh:
        bookkeeping.clear_pending_as_of(spark, span.start, span.end, group)
    else:
        bookkeeping.mark_pending_as_of(spark, span.dates, f"publish {run_id}: tiles changed since compute", group)
        print(f"[publish] {group.name}: tiles changed since this run computed its rows (version {tiles_version} -> "
              f"{current}): as-of {span} published and marked pending for the next run")
    bookkeeping.record_published(spark, span, published_version, group)
    lake.drop_table(table)  # after the records: a crash before it leaves only a folder to delete
    return {
        "span": str(span),
        "rows": rows,
        "table": features,
        "recomputed_next_run": not fresh,
    }


def materialize_span(spark: SparkSession, span: AsOfRange, group: FeatureGroup | None = None) -> dict:
    """Send the published rows of [first owed as-of, newest published as-of] to Feast's online store.

    Ending at the newest as-of ever published, not the span's end, makes a backfill of an old
    range re-send each user's newest row, so the online store never moves back in time. Starting
    at the first as-of published since the last successful materialize (if that is before the
    span) redoes what a failed or partial materialize left out: the online store converges.
    """
    from featurepipe import bookkeeping, feast_store, lake
    from featurepipe.dates import midnight
    from featurepipe.settings import get_settings
    from featurepipe.spec import USER_PURCHASE

    group = group or USER_PURCHASE
    version = lake.table_version(spark, lake.features_table(group))  # under the lease: no publish moves it meanwhile
    latest = bookkeeping.latest_published(spark, group)
    if latest is None:  # no row yet (a source that has not landed): nothing to send, nothing owed
        print(f"[materialize] {group.name}: no published rows yet, nothing to send")
        return {"span": str(span), "online_store": get_settings().online_store, "skipped": "no published rows"}
    owed = bookkeeping.owed_online(spark, group)
    first = min(span.start, owed) if owed else span.start
    window = AsOfRange(first, max(span.end, latest) if latest else span.end)
    store = get_settings().online_store
    if first < span.start:
        print(f"[materialize] {group.name}: the online store is owed rows from {owed} (a materialize failed or "
              "never ran): sending them too")
    print(f"[materialize] {group.name}: {midnight(window.start).isoformat()} .. {midnight(window.end).isoformat()} "
          f"into {store}")
    feast_store.materialize(midnight(window.start), midnight(window.end), group)
    bookkeeping.record_materialized(spark, window, version, group)
    return {"span": str(span), "online_store": store, "window_start": midnight(window.start).isoformat(),
            "window_end": midnight(window.end).isoformat(), "healed_from": str(owed) if first < span.start else None}
