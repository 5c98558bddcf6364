"""publish: copy the validated staged partitions of the run's span into the feature table (replacing them)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.publishing import publish
    from featurepipe.reports import write_step_report
    from featurepipe.steps import begin

    step = begin("publish", __doc__, argv)
    step.fit_to(lake.table_bytes(step.spark, lake.STAGED_FEATURES))
    write_step_report(step.name, step.as_of, publish(step.spark, bookkeeping.run_span(step.spark, step.run_id, step.as_of)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
