"""materialize: each published group's rows of the run's span (late-data repairs included) -> Feast's online store (SQLite or Redis), and the category embeddings when they changed."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, embeddings, lake
    from featurepipe.publishing import materialize_span
    from featurepipe.reports import write_step_report
    from featurepipe.spec import GROUPS
    from featurepipe.steps import begin

    step = begin("materialize", __doc__, argv)
    reports = {}
    # the newest published row is read and sent while no run can publish a newer one; every group's
    # record of what it sent in one commit (each group reads only its own)
    with step.lease(), bookkeeping.batched_records(step.spark):
        step.fit_to(sum(lake.table_bytes(step.spark, lake.features_table(g)) for g in GROUPS))
        reports["category_embeddings"] = embeddings.serve(step.spark)  # reference data: written and sent when changed
        for group in GROUPS:
            span = bookkeeping.run_span(step.spark, step.run_id, step.as_of, group).span
            if bookkeeping.validated(step.spark, step.run_id, span, group) is False:
                print(f"[materialize] {group.name}: skipped, its feature suite failed for this run")
                continue
            reports[group.name] = materialize_span(step.spark, span, group)
    write_step_report(step.name, step.as_of, {"groups": reports})
    return 0


if __name__ == "__main__":
    sys.exit(main())
