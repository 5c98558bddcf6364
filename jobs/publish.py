"""publish: copy each group's validated staged partitions of the run's span into its feature table (replacing them); a group whose suite failed is skipped."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.publishing import publish
    from featurepipe.reports import write_step_report
    from featurepipe.spec import GROUPS
    from featurepipe.steps import begin

    step = begin("publish", __doc__, argv)
    reports, blocked = {}, {}
    with step.lease():
        step.fit_to(sum(lake.table_bytes(step.spark, lake.staged_table(step.run_id, g)) for g in GROUPS))
        for group in GROUPS:
            recorded = bookkeeping.run_span(step.spark, step.run_id, step.as_of, group)
            passed = bookkeeping.validated(step.spark, step.run_id, recorded.span, group)
            if not passed:
                blocked[group.name] = ("its feature suite failed" if passed is False else
                                       "no feature-suite outcome recorded (validate_features failed or did not run)")
                print(f"[publish] {group.name}: NOT published: {blocked[group.name]}; its staged rows stay in "
                      f"{lake.staged_table(step.run_id, group)} for inspection")
                continue
            reports[group.name] = publish(step.spark, recorded.span, step.run_id, recorded.tiles_version, group)
    write_step_report(step.name, step.as_of, {"groups": reports, "blocked": blocked})
    if not reports:
        print(f"publish: nothing published for run {step.run_id}: " +
              "; ".join(f"{name}: {why}" for name, why in blocked.items()), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
