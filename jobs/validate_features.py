"""validate_features: each group's feature suite (GX) on its staged rows of the run's span; a failed suite blocks that group's publish (all failed: the step fails)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.quality import validate_dataframes
    from featurepipe.reports import write_step_report
    from featurepipe.spec import GROUPS
    from featurepipe.steps import begin

    step = begin("validate_features", __doc__, argv)
    # this run's rows only: another run's staging cannot slip in
    step.fit_to(sum(lake.table_bytes(step.spark, lake.staged_table(step.run_id, g)) for g in GROUPS))
    spans, batches = [], []
    for group in GROUPS:
        span = bookkeeping.run_span(step.spark, step.run_id, step.as_of, group).span  # the range plus late-data repairs
        table = lake.staged_table(step.run_id, group)
        staged = lake.read_range(step.spark, table, lake.AS_OF_DATE, span.start, span.end).drop(lake.AS_OF_DATE)
        spans.append(span)
        batches.append((staged, group.name, f"features-{group.name}-{step.as_of.label}"))
    # all groups in one call: one GX context and one Data Docs build, both fixed costs per call
    outcomes, blocked = {}, []
    with bookkeeping.batched_records(step.spark):  # every group's outcome in one commit
        for group, span, outcome in zip(GROUPS, spans, validate_dataframes(batches), strict=True):
            bookkeeping.record_validated(step.spark, step.run_id, span, outcome.success, group)
            print(outcome.summary())
            outcomes[group.name] = {"span": str(span), "success": outcome.success, "evaluated": outcome.evaluated,
                                    "failed": outcome.failed, "data_docs": outcome.data_docs}
            if not outcome.success:
                blocked.append(f"{group.name}: " + "; ".join(outcome.failed))
    write_step_report(step.name, step.as_of, {"success": not blocked, "groups": outcomes})
    if blocked:
        passed = [g.name for g in GROUPS if outcomes[g.name]["success"]]
        print(f"validate_features: feature suite failed for {step.as_of}; nothing of "
              f"{', '.join(b.split(':')[0] for b in blocked)} is published or materialized"
              + (f" ({', '.join(passed)} still publish; check_parity fails the run)" if passed else "")
              + ": " + " | ".join(blocked), file=sys.stderr)
        # the step fails when no group can publish; otherwise the healthy groups go on, publish
        # skips the blocked ones (their outcome is in the lake) and check_parity fails the run
        return 0 if passed else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
