"""materialize: the published rows of the run's span (late-data repairs included) -> Feast's online store (SQLite or Redis)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.publishing import materialize_span
    from featurepipe.reports import write_step_report
    from featurepipe.steps import begin

    step = begin("materialize", __doc__, argv)
    with step.lease():  # the newest published row is read and sent while no run can publish a newer one
        step.fit_to(lake.table_bytes(step.spark, lake.FEATURES))
        span = bookkeeping.run_span(step.spark, step.run_id, step.as_of).span
        report = materialize_span(step.spark, span)
    write_step_report(step.name, step.as_of, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
