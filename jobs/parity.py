"""parity: `featurepipe parity`, on the Spark server or in the command's process: sampled users' online rows vs their newest published rows; exit 1 on a mismatch."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping
    from featurepipe.parity import DEFAULT_SAMPLE, NothingMaterialized, check_parity, mismatch_lines
    from featurepipe.spark import get_spark
    from featurepipe.spec import GROUPS

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="users compared (default %(default)s)")
    args = parser.parse_args(argv)
    spark = get_spark("featurepipe-parity")
    # every group the pipeline has materialized (a lake from before a group existed has none of it yet)
    groups = [g for g in GROUPS if bookkeeping.last_materialized(spark, g) is not None]
    if not groups:
        raise NothingMaterialized("nothing was materialized yet: run `featurepipe run` or `featurepipe backfill` first")
    status = 0
    for group in groups:
        result = check_parity(spark, sample=args.sample, group=group)
        print(result.summary(), flush=True)
        if not result.ok:
            for line in mismatch_lines(result):
                print(line, file=sys.stderr, flush=True)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
