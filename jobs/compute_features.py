"""compute_features: rebuild the changed daily tiles of every group, then one feature row per (entity, as-of T) of each group for the run's span, staged."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe import bookkeeping, lake
    from featurepipe.features import stage_features
    from featurepipe.reports import write_step_report
    from featurepipe.settings import get_settings
    from featurepipe.spec import SOURCES, groups_of
    from featurepipe.steps import begin
    from featurepipe.tiles import rebuild_tiles

    # one Spark application for the whole range and every group: the changed tiles, then every as-of date from them
    step = begin("compute_features", __doc__, argv)
    reports, tiles = {}, {}
    with step.lease(), bookkeeping.batched_records(step.spark):  # every group's span in one commit
        # tiles and rows grow with the events
        step.fit_to(sum(lake.table_bytes(step.spark, lake.clean_table(s)) for s in SOURCES))
        for source in SOURCES:
            groups = groups_of(source)
            tiles[source.name] = rebuild_tiles(step.spark, step.as_of.label, groups)
            for group in groups:
                span, reports[group.name] = stage_features(step.spark, step.as_of, get_settings().late_lookback_days,
                                                           step.run_id, group)
                bookkeeping.record_run_span(step.spark, step.run_id, step.as_of, span,
                                            lake.table_version(step.spark, lake.tiles_table(group)), group)
    write_step_report(step.name, step.as_of, {"groups": reports, "tiles": tiles})
    return 0


if __name__ == "__main__":
    sys.exit(main())
