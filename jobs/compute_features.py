"""compute_features: rebuild the changed daily tiles, then one feature row per (entity, as-of T) for the run's span, staged."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping
    from featurepipe.dates import range_from_args, range_parser, run_id
    from featurepipe.features import stage_features
    from featurepipe.reports import write_step_report
    from featurepipe.settings import get_settings
    from featurepipe.spark import get_spark
    from featurepipe.tiles import rebuild_tiles

    parser = range_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    as_of = range_from_args(parser, args)
    # one Spark application for the whole range: the changed tiles, then every as-of date from them
    spark = get_spark(f"featurepipe-compute-features-{as_of.label}")
    tiles = rebuild_tiles(spark, as_of.label)
    span, report = stage_features(spark, as_of, get_settings().late_lookback_days)
    bookkeeping.record_run_span(spark, run_id(args, as_of), as_of, span)
    write_step_report("compute_features", as_of, {**report, "tiles": tiles})
    return 0


if __name__ == "__main__":
    sys.exit(main())
