"""Pipeline runs in-process, as the DAG's steps do them (minus the GX gates and Feast), and a landing
zone filled day by day from generated folders: for tests of incremental and faulty runs."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from compare import assert_features_equal, published
from reference import reference_features

from featurepipe.dates import AsOfRange

LOOKBACK = 30


def generated_landings(folder: Path, start: dt.date, days: int, seed: int) -> Path:
    """`generate --dirty` output for 12 users (the landing folders a test copies in day by day)."""
    from featurepipe.generate import generate

    generate(str(folder), users=12, start=start, days=days, seed=seed, dirty=True, progress=lambda _: None)
    return folder / "transactions"


def run(spark, start: dt.date, end: dt.date, run_id: str = "in-process") -> dict:
    """One pipeline run for as-of start..end: ingest, tiles, features, publish; the merged step reports.
    The run's span is recorded under `run_id`, as compute_features records it, for a step job after it."""
    from featurepipe import bookkeeping
    from featurepipe.features import stage_features
    from featurepipe.ingest import ingest
    from featurepipe.publishing import publish
    from featurepipe.tiles import rebuild_tiles

    as_of = AsOfRange(start, end)
    report = ingest(spark, as_of)
    rebuild_tiles(spark, as_of.label)
    span, staged = stage_features(spark, as_of, LOOKBACK, run_id=run_id)
    if run_id != "in-process":
        bookkeeping.record_run_span(spark, run_id, as_of, span)
    publish(spark, span, run_id=run_id)
    return {**report, **staged}


def land(generated: Path, raw: Path, through: dt.date) -> None:
    """Copy every landing folder up to `through` into the landing zone (idempotent)."""
    for folder in sorted(generated.iterdir()):
        day = dt.date.fromisoformat(folder.name.split("=")[1])
        if day <= through and not (raw / "transactions" / folder.name).exists():
            shutil.copytree(folder, raw / "transactions" / folder.name)


def expect(lake_env: Path, spark, first: dt.date, last: dt.date, what: str) -> None:
    """The published rows of as-of first..last equal the reference on the landed raw files."""
    wanted = reference_features(lake_env / "raw" / "transactions", first, last)
    table = published(spark)
    table = table[table["event_timestamp"].dt.date.between(first, last)]
    assert_features_equal(table, wanted, what)
