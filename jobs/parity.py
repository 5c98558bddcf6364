"""parity: `featurepipe parity`, on the Spark server or in the command's process: sampled users' online rows vs their newest published rows; exit 1 on a mismatch."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe.parity import DEFAULT_SAMPLE, check_parity, mismatch_lines
    from featurepipe.spark import get_spark

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="users compared (default %(default)s)")
    args = parser.parse_args(argv)
    result = check_parity(get_spark("featurepipe-parity"), sample=args.sample)
    print(result.summary(), flush=True)
    if result.ok:
        return 0
    for line in mismatch_lines(result):
        print(line, file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
