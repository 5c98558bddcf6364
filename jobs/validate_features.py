"""validate_features: the feature suite (GX) on the staged rows of the run's range; failure blocks publishing."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import lake
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.quality import validate_dataframe
    from featurepipe.reports import read_span, write_step_report
    from featurepipe.spark import get_spark
    from featurepipe.spec import USER_PURCHASE
    from jobs.compute_features import AS_OF_DATE

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-validate-features-{as_of.label}")
    span = read_span(as_of)  # the range plus late-data repairs, as compute_features staged it
    staged = lake.read_range(spark, lake.STAGED_FEATURES, AS_OF_DATE, span.start, span.end).drop(AS_OF_DATE)
    outcome = validate_dataframe(staged, USER_PURCHASE.name, f"features-{as_of.label}")
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
