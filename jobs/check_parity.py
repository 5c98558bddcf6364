"""check_parity: after materialize, sampled users' online rows equal their newest published rows in Delta; a mismatch fails the run."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe.parity import SHOWN, check_parity, mismatch_lines
    from featurepipe.reports import write_step_report
    from featurepipe.steps import begin

    step = begin("check_parity", __doc__, argv)
    with step.lease():  # no materialize changes the online store while it is read
        result = check_parity(step.spark)
    write_step_report(step.name, step.as_of, {
        "features_version": result.features_version, "newest_as_of": str(result.newest_as_of),
        "users": result.users, "mismatches": len(result.mismatches),
        "first_mismatches": [str(m) for m in result.mismatches[:SHOWN]],
    })
    print(result.summary())
    if not result.ok:
        for line in mismatch_lines(result):
            print(line, file=sys.stderr)
        first = result.mismatches[0]
        print(f"check_parity: the online store differs from the feature table for "
              f"{len({m.user_id for m in result.mismatches})} of {result.users} sampled users, e.g. {first}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
