"""publish: copy the validated staged partitions of the run's span into the feature table (replacing them)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.publishing import publish
    from featurepipe.reports import write_step_report
    from featurepipe.steps import begin

    step = begin("publish", __doc__, argv)
    with step.lease():
        step.fit_to(lake.table_bytes(step.spark, lake.staged_table(step.run_id)))
        recorded = bookkeeping.run_span(step.spark, step.run_id, step.as_of)
        report = publish(step.spark, recorded.span, step.run_id, recorded.tiles_version)
    write_step_report(step.name, step.as_of, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
