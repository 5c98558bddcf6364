"""materialize: the published rows of the run's span -> Feast's online store (SQLite or Redis).

The window runs from the span's first as-of (late-data repairs included) to the newest as-of ever published, so backfilling an
old range re-sends each user's newest row and never moves the online store back in time.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, feast_store
    from featurepipe.dates import midnight, range_from_args, range_parser
    from featurepipe.reports import read_span, write_step_report
    from featurepipe.settings import get_settings
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-materialize-{as_of.label}")
    span = read_span(as_of)  # includes as-of dates repaired for late data
    latest = bookkeeping.latest_published(spark)
    start, end = midnight(span.start), midnight(max(span.end, latest) if latest else span.end)
    print(f"[materialize] {start.isoformat()} .. {end.isoformat()} into {get_settings().online_store}")
    feast_store.materialize(start, end)
    write_step_report(
        "materialize",
        as_of,
        {"online_store": get_settings().online_store, "window_start": start.isoformat(), "window_end": end.isoformat()},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
