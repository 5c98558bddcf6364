"""materialize: the published rows of the run's range -> Feast's online store (SQLite or Redis).

The window runs from the range's first as-of to the newest as-of ever published, so backfilling an
old range re-sends each user's newest row and never moves the online store back in time.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import functions as F

    from featurepipe import feast_store, lake
    from featurepipe.dates import midnight, range_from_args, range_parser
    from featurepipe.reports import write_step_report
    from featurepipe.settings import get_settings
    from featurepipe.spark import get_spark
    from jobs.compute_features import AS_OF_DATE

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-materialize-{as_of.label}")
    latest = lake.read_table(spark, lake.FEATURES).agg(F.max(AS_OF_DATE)).first()[0]
    last = max(as_of.end, latest) if latest else as_of.end
    start, end = midnight(as_of.start), midnight(last)
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
