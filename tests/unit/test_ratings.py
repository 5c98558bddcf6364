"""The second source (issue 13): ratings' own rules, quarantine reasons and dedup, and the rating
features of products and users, against the independent pandas reference (tests/reference.py)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import pytest

import reference
from featurepipe.features import features_from_tiles
from featurepipe.spec import PRODUCT_RATING, RATINGS, USER_RATING
from featurepipe.tiles import build_tiles
from featurepipe.validation import REASON, deduplicate, split_valid, with_reasons

UTC = timezone.utc
DAY = timedelta(days=1)
T = datetime(2025, 6, 1, tzinfo=UTC)


def _ratings(spark, rows: list[tuple]):
    schema = "rating_id string, user_id string, product_id string, stars double, event_timestamp timestamp"
    return spark.createDataFrame(rows, schema)


def test_every_rule_of_a_rating_gives_its_reason_and_the_reference_agrees(spark) -> None:
    import pandas as pd

    rows = [
        ("r1", "u1", "p1", 4.0, T),  # valid
        ("r2", "u1", "p1", 1.0, T),  # the bounds are stars
        ("r3", "u1", "p1", 5.0, T),
        ("r4", "u1", "p1", 0.0, T),
        ("r5", "u1", "p1", 0.5, T),  # below 1: the bound, not the fraction
        ("r6", "u1", "p1", 6.0, T),
        ("r7", "u1", "p1", 3.5, T),
        ("r8", "u1", "p1", None, T),
        ("r9", "u1", "p1", float("nan"), T),
        ("r10", "u1", "p1", float("inf"), T),
        (None, "u1", "p1", 3.0, T),
        (" ", "u1", "p1", 3.0, T),
        ("r13", None, "p1", 3.0, T),
        ("r14", "u1", "\t", 3.0, T),  # product_id is required in ratings
        ("r15", "u1", None, 3.0, T),
        ("r16", "u1", "p1", 3.0, None),
    ]
    got = {r["rating_id"]: r[REASON] for r in with_reasons(_ratings(spark, rows), RATINGS).collect()}
    assert got == {
        "r1": None, "r2": None, "r3": None, "r4": "stars_too_small", "r5": "stars_too_small", "r6": "stars_too_large",
        "r7": "stars_not_integer", "r8": "stars_missing", "r9": "stars_missing", "r10": "stars_not_finite",
        None: "rating_id_missing", " ": "rating_id_empty", "r13": "user_id_missing", "r14": "product_id_empty",
        "r15": "product_id_missing", "r16": "event_timestamp_missing",
    }
    frame = pd.DataFrame(rows, columns=reference.RATING_COLUMNS)
    assert {r["rating_id"]: (",".join(reference.rating_reasons(r)) or None) for _, r in frame.iterrows()} == got


def test_copies_of_a_rating_keep_the_earliest_then_the_fewest_stars(spark) -> None:
    rows = [
        ("r1", "u1", "p1", 5.0, T), ("r1", "u1", "p1", 2.0, T), ("r1", "u1", "p1", 1.0, T + DAY),  # same instant: 2 stars
        ("r2", "u2", "p2", 4.0, T + DAY), ("r2", "u2", "p2", 5.0, T),  # the earlier copy, whatever its stars
    ]
    valid, _ = split_valid(_ratings(spark, rows).withColumn("source_file", _lit("f")), RATINGS)
    got = {r["rating_id"]: (r["stars"], r["event_timestamp"]) for r in deduplicate(valid, RATINGS).collect()}
    assert got == {"r1": (2.0, T.replace(tzinfo=None)), "r2": (5.0, T.replace(tzinfo=None))}


def _lit(value):
    from pyspark.sql import functions as F

    return F.lit(value)


def test_an_average_of_no_ratings_is_null_and_its_count_zero(spark) -> None:
    rows = [("r1", "u1", "p1", 4.0, T - 90 * DAY), ("r2", "u1", "p1", 1.0, T - 91 * DAY), ("r3", "u2", "p2", 3.0, T - DAY),
            ("r4", "u2", "p2", 4.0, T - 2 * DAY)]
    tiles = build_tiles(_ratings(spark, rows), PRODUCT_RATING)
    got = {r["product_id"]: (r["avg_rating_90d"], r["ratings_90d"])
           for r in features_from_tiles(tiles, T.date(), T.date(), PRODUCT_RATING).collect()}
    assert got == {"p1": (4.0, 1), "p2": (3.5, 2)}
    got = {r["product_id"]: (r["avg_rating_90d"], r["ratings_90d"])
           for r in features_from_tiles(tiles, T.date() + DAY, T.date() + DAY, PRODUCT_RATING).collect()}
    assert got == {"p1": (None, 0), "p2": (3.5, 2)}  # p1's window emptied: its zero row, a null average


@pytest.mark.parametrize("seed", [3, 17])
def test_rating_features_equal_the_reference_on_generated_dirty_data(spark, tmp_path, seed) -> None:
    from featurepipe.generate import generate
    from featurepipe.raw import read_source

    start = date(2025, 1, 1)
    generate(str(tmp_path), 15, start, 100, seed, dirty=True, progress=lambda _: None)
    raw_dir = str(tmp_path / "ratings")
    raw, _ = read_source(spark, raw_dir, RATINGS)
    valid, invalid = split_valid(raw, RATINGS)
    _, want_invalid = reference.split_valid_ratings(reference.load_ratings(raw_dir))
    assert sorted(r[REASON] for r in invalid.select(REASON).collect()) == sorted(want_invalid["reason"])
    events = deduplicate(valid, RATINGS).cache()
    first, last = start + 30 * DAY, start + 110 * DAY  # past the last landing: windows empty out
    for group, entity in ((PRODUCT_RATING, "product"), (USER_RATING, "user")):
        key = group.join_key
        got = {(r[key], r["as_of_date"]): r for r in features_from_tiles(build_tiles(events, group), first, last, group).collect()}
        want = {(r[key], r["event_timestamp"].date()): r
                for r in reference.reference_rating_features(raw_dir, first, last, entity).to_dict("records")}
        assert len(want) > 200 and set(got) == set(want), group.name
        for k, w in want.items():
            for name in group.feature_names:
                g, e = got[k][name], w[name]
                assert (g is None and e is None) or math.isclose(g, e, rel_tol=1e-9), (group.name, k, name, g, e)
        if entity == "product":
            assert any(w["avg_rating_90d"] is None for w in want.values())  # zero rows
