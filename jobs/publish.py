"""publish: copy the validated staged partitions of the run's span into the feature table (replacing them)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping
    from featurepipe.dates import range_from_args, range_parser, run_id
    from featurepipe.publishing import publish
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    as_of = range_from_args(parser, args)
    spark = get_spark(f"featurepipe-publish-{as_of.label}")
    write_step_report("publish", as_of, publish(spark, bookkeeping.run_span(spark, run_id(args, as_of), as_of)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
