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


def stage(spark, start: dt.date, end: dt.date, run_id: str | None = None) -> tuple[AsOfRange, dict]:
    """A run for as-of start..end up to its publish: ingest, tiles, features staged; (its span, the
    merged step reports). With `run_id`, the span is recorded as compute_features records it (with
    the tiles version), for a step job after it."""
    from featurepipe import bookkeeping, lake
    from featurepipe.features import stage_features
    from featurepipe.ingest import ingest
    from featurepipe.tiles import rebuild_tiles

    as_of = AsOfRange(start, end)
    report = ingest(spark, as_of)
    rebuild_tiles(spark, as_of.label)
    span, staged = stage_features(spark, as_of, LOOKBACK, run_id=run_id or "in-process")
    if run_id is not None:
        bookkeeping.record_run_span(spark, run_id, as_of, span, lake.table_version(spark, lake.TILES))
    return span, {**report, **staged}


def run(spark, start: dt.date, end: dt.date, run_id: str | None = None) -> dict:
    """One pipeline run for as-of start..end: `stage`, then publish; the merged step reports."""
    from featurepipe.publishing import publish

    span, report = stage(spark, start, end, run_id)
    publish(spark, span, run_id=run_id or "in-process")
    return report


def online_rows(users: list[str]) -> dict[str, dict]:
    """The online store's rows of `users`, read in-process by the call `featurepipe online` makes: {user_id: row}."""
    from featurepipe.feast_store import online_features

    return {row["user_id"]: row for row in online_features(users)}


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
