"""check_parity: after materialize, each group's sampled online rows equal their newest published rows in Delta; a mismatch, or a group whose suite blocked it this run, fails the run."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping
    from featurepipe.parity import SHOWN, check_parity, mismatch_lines
    from featurepipe.reports import write_step_report
    from featurepipe.spec import GROUPS
    from featurepipe.steps import begin

    step = begin("check_parity", __doc__, argv)
    results, blocked = [], []
    with step.lease():  # no materialize changes the online store while it is read
        for group in GROUPS:
            if bookkeeping.validated(step.spark, step.run_id, None, group) is False:
                blocked.append(group.name)
                continue
            if bookkeeping.last_materialized(step.spark, group) is None:
                print(f"[check_parity] {group.name}: nothing published yet (its source has not landed), nothing to compare")
                continue
            results.append(check_parity(step.spark, group=group))
    write_step_report(step.name, step.as_of, {
        "blocked": blocked,
        "groups": {r.group.name: {"features_version": r.features_version, "newest_as_of": str(r.newest_as_of),
                                  "entities": r.users, "mismatches": len(r.mismatches),
                                  "first_mismatches": [str(m) for m in r.mismatches[:SHOWN]]} for r in results},
    })
    failed = 0
    for result in results:
        print(result.summary())
        if not result.ok:
            for line in mismatch_lines(result):
                print(line, file=sys.stderr)
            print(f"check_parity: the online store differs from {result.group.name} for "
                  f"{len({m.entity for m in result.mismatches})} of {result.users} sampled {result.group.entity}s, "
                  f"e.g. {result.mismatches[0]}", file=sys.stderr)
            failed = 4
    if blocked and not failed:
        print(f"check_parity: the online store matches what was published, but {', '.join(blocked)} was not "
              f"published this run: its feature suite failed (validate_features' log and Data Docs say why)",
              file=sys.stderr)
        failed = 3
    return failed


if __name__ == "__main__":
    sys.exit(main())
