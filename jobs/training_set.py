"""training_set: `featurepipe training-set`, on the Spark server or in the command's process: a point-in-time correct training set at a pinned Delta version, with its manifest (SPEC §4, §7)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe.cli import training_set_arguments
    from featurepipe.training_sets import ManifestError, VersionError, make_training_set

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    training_set_arguments(parser)
    args = parser.parse_args(argv)
    try:
        make_training_set(args, ["training-set", *(sys.argv[1:] if argv is None else argv)])
    except (ManifestError, VersionError, ValueError, FileNotFoundError) as exc:  # the user's input: one line
        print(f"featurepipe training-set: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
