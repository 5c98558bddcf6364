"""materialize: the published rows of the run's span (late-data repairs included) -> Feast's online store (SQLite or Redis)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping
    from featurepipe.dates import range_from_args, range_parser, run_id
    from featurepipe.publishing import materialize_span
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    as_of = range_from_args(parser, args)
    spark = get_spark(f"featurepipe-materialize-{as_of.label}")
    write_step_report("materialize", as_of, materialize_span(spark, bookkeeping.run_span(spark, run_id(args, as_of), as_of)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
