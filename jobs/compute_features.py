"""compute_features: rebuild the changed daily tiles, then one feature row per (entity, as-of T) for the run's span, staged."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.features import stage_features
    from featurepipe.reports import write_step_report
    from featurepipe.settings import get_settings
    from featurepipe.steps import begin
    from featurepipe.tiles import rebuild_tiles

    # one Spark application for the whole range: the changed tiles, then every as-of date from them
    step = begin("compute_features", __doc__, argv)
    with step.lease():
        step.fit_to(lake.table_bytes(step.spark, lake.CLEAN_TRANSACTIONS))  # tiles and rows grow with the events
        tiles = rebuild_tiles(step.spark, step.as_of.label)
        span, report = stage_features(step.spark, step.as_of, get_settings().late_lookback_days, step.run_id)
        bookkeeping.record_run_span(step.spark, step.run_id, step.as_of, span, lake.table_version(step.spark, lake.TILES))
    write_step_report(step.name, step.as_of, {**report, "tiles": tiles})
    return 0


if __name__ == "__main__":
    sys.exit(main())
