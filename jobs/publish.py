"""publish: copy the validated staged partitions of the run's span into the feature table (replacing them)."""

from __future__ import annotations

import sys


def publish(spark, span) -> dict:
    """Replace the span's partitions of the feature table with the staged rows; clear their pending marks."""
    from featurepipe import bookkeeping, lake
    from jobs.compute_features import AS_OF_DATE

    staged = lake.read_range(spark, lake.STAGED_FEATURES, AS_OF_DATE, span.start, span.end).cache()
    lake.replace_partitions(staged, lake.FEATURES, AS_OF_DATE, span.start, span.end)
    bookkeeping.clear_pending_as_of(spark, span.start, span.end)
    return {
        "span": str(span),
        "rows": staged.count(),
        "table": lake.FEATURES,
        "latest_as_of": str(bookkeeping.latest_published(spark)),
    }


def main(argv: list[str] | None = None) -> int:
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.reports import read_span, write_step_report
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-publish-{as_of.label}")
    write_step_report("publish", as_of, publish(spark, read_span(as_of)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
