"""validate_features: the feature suite (GX) on the staged rows of the run's span; failure blocks publishing."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.dates import range_from_args, range_parser, run_id
    from featurepipe.quality import FEATURE_SUITE, validate_dataframe
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    as_of = range_from_args(parser, args)
    spark = get_spark(f"featurepipe-validate-features-{as_of.label}")
    span = bookkeeping.run_span(spark, run_id(args, as_of), as_of)  # the range plus late-data repairs
    staged = lake.read_range(spark, lake.STAGED_FEATURES, lake.AS_OF_DATE, span.start, span.end).drop(lake.AS_OF_DATE)
    outcome = validate_dataframe(staged, FEATURE_SUITE, f"features-{as_of.label}")
    write_step_report(
        "validate_features",
        as_of,
        {"span": str(span), "success": outcome.success, "evaluated": outcome.evaluated, "failed": outcome.failed, "data_docs": outcome.data_docs},
    )
    print(outcome.summary())
    if not outcome.success:
        print(
            f"validate_features: feature suite failed for {as_of}; nothing published or materialized: "
            + "; ".join(outcome.failed),
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
