"""validate_features: the feature suite (GX) on the staged rows of the run's span; failure blocks publishing."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.quality import FEATURE_SUITE, validate_dataframe
    from featurepipe.reports import write_step_report
    from featurepipe.steps import begin

    step = begin("validate_features", __doc__, argv)
    table = lake.staged_table(step.run_id)  # this run's rows only: another run's staging cannot slip in
    step.fit_to(lake.table_bytes(step.spark, table))
    span = bookkeeping.run_span(step.spark, step.run_id, step.as_of).span  # the range plus late-data repairs
    staged = lake.read_range(step.spark, table, lake.AS_OF_DATE, span.start, span.end).drop(lake.AS_OF_DATE)
    outcome = validate_dataframe(staged, FEATURE_SUITE, f"features-{step.as_of.label}")
    write_step_report(
        step.name,
        step.as_of,
        {"span": str(span), "success": outcome.success, "evaluated": outcome.evaluated, "failed": outcome.failed, "data_docs": outcome.data_docs},
    )
    print(outcome.summary())
    if not outcome.success:
        print(
            f"validate_features: feature suite failed for {step.as_of}; nothing published or materialized: "
            + "; ".join(outcome.failed),
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
