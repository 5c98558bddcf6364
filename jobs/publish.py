"""publish: copy the validated staged partitions of the run's range into the feature table (replacing them)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import functions as F

    from featurepipe import lake
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark
    from jobs.compute_features import AS_OF_DATE

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-publish-{as_of.label}")
    staged = lake.read_range(spark, lake.STAGED_FEATURES, AS_OF_DATE, as_of.start, as_of.end)
    lake.replace_partitions(staged, lake.FEATURES, AS_OF_DATE, as_of.start, as_of.end)
    published = lake.read_range(spark, lake.FEATURES, AS_OF_DATE, as_of.start, as_of.end)
    days = published.select(AS_OF_DATE).distinct().count()
    write_step_report(
        "publish",
        as_of,
        {"rows": published.count(), "as_of_days_with_rows": days, "table": lake.FEATURES,
         "latest_as_of": str(lake.read_table(spark, lake.FEATURES).agg(F.max(AS_OF_DATE)).first()[0])},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
