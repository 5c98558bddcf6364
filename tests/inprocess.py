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


def stage(spark, start: dt.date, end: dt.date, run_id: str | None = None,
          groups: tuple | None = None) -> tuple[AsOfRange, dict]:
    """A run for as-of start..end up to its publish: ingest, tiles, features staged for `groups`;
    (the user group's span, the merged step reports of the user group plus `spans`: each group's).

    `groups` defaults to every group when `run_id` is given: each group's span is then recorded as
    compute_features records it (with the tiles version), and its rows as validated (these runs
    skip the GX gates), for a DAG step job after it, which covers every group. Without `run_id`
    the default is the user group alone, the one these tests check: its source's other group
    (products) costs as much again to compute and is checked by tests/integration/test_pipeline.py.
    A test that mixes both kinds of run on one lake passes `GROUPS` to the first, so no group's
    tiles miss a day another group's run rebuilt."""
    from featurepipe import bookkeeping, lake
    from featurepipe.features import stage_features
    from featurepipe.ingest import ingest
    from featurepipe.spec import GROUPS, SOURCES, USER_PURCHASE
    from featurepipe.tiles import rebuild_tiles

    groups = groups or (GROUPS if run_id is not None else (USER_PURCHASE,))
    as_of = AsOfRange(start, end)
    assert USER_PURCHASE in groups, "the report and the returned span are the user group's"
    report = ingest(spark, as_of)  # the transactions' report (the user group's source)
    sources = [s for s in SOURCES if any(g.source is s for g in groups)]
    for source in sources[1:]:
        ingest(spark, as_of, source=source)
    for source in sources:
        rebuild_tiles(spark, as_of.label, tuple(g for g in groups if g.source is source))
    spans = {}
    for group in groups:
        spans[group.name], staged = stage_features(spark, as_of, LOOKBACK, run_id or "in-process", group)
        if group is USER_PURCHASE:
            report = {**report, **staged}
        if run_id is not None:
            bookkeeping.record_run_span(spark, run_id, as_of, spans[group.name],
                                        lake.table_version(spark, lake.tiles_table(group)), group)
            bookkeeping.record_validated(spark, run_id, spans[group.name], True, group)
    return spans[USER_PURCHASE.name], {**report, "spans": spans}


def run(spark, start: dt.date, end: dt.date, run_id: str | None = None, groups: tuple | None = None) -> dict:
    """One pipeline run for as-of start..end: `stage`, then publish each staged group; the user group's merged step reports."""
    from featurepipe.publishing import publish
    from featurepipe.spec import GROUPS

    _, report = stage(spark, start, end, run_id, groups)
    for group in GROUPS:
        if group.name in report["spans"]:
            publish(spark, report["spans"][group.name], run_id or "in-process", group=group)
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
