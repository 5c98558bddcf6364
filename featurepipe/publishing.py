"""Publishing: the validated staged partitions of a span replace the same partitions of the feature table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurepipe.dates import AsOfRange
from featurepipe.lake import AS_OF_DATE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def publish(spark: SparkSession, span: AsOfRange) -> dict:
    """Replace the span's partitions of the feature table with the staged rows; clear their pending marks."""
    from featurepipe import bookkeeping, lake

    staged = lake.read_range(spark, lake.STAGED_FEATURES, AS_OF_DATE, span.start, span.end).cache()
    lake.replace_partitions(staged, lake.FEATURES, AS_OF_DATE, span.start, span.end)
    bookkeeping.clear_pending_as_of(spark, span.start, span.end)
    bookkeeping.record_published(spark, span)
    return {
        "span": str(span),
        "rows": staged.count(),
        "table": lake.FEATURES,
        "latest_as_of": str(bookkeeping.latest_published(spark)),
    }


def materialize_span(spark: SparkSession, span: AsOfRange) -> dict:
    """Send the published rows of [span start, newest published as-of] to Feast's online store.

    Ending at the newest as-of ever published, not the span's end, makes a backfill of an old
    range re-send each user's newest row, so the online store never moves back in time.
    """
    from featurepipe import bookkeeping, feast_store
    from featurepipe.dates import midnight
    from featurepipe.settings import get_settings

    latest = bookkeeping.latest_published(spark)
    start, end = midnight(span.start), midnight(max(span.end, latest) if latest else span.end)
    store = get_settings().online_store
    print(f"[materialize] {start.isoformat()} .. {end.isoformat()} into {store}")
    feast_store.materialize(start, end)
    return {"span": str(span), "online_store": store, "window_start": start.isoformat(), "window_end": end.isoformat()}
