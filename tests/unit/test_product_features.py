"""Product features (issue 13): the same tile machinery, keyed by product_id, with an exact distinct
count and a popularity rank across products. Hand-computed window edges, then the independent
pandas reference (tests/reference.py) on generated dirty data."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import pytest

import reference
from featurepipe.features import features_from_tiles
from featurepipe.spec import PRODUCT_PURCHASE, TRANSACTIONS
from featurepipe.tiles import build_tiles
from featurepipe.validation import deduplicate, split_valid

UTC = timezone.utc
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
T_DATE = date(2025, 6, 1)
T = datetime(2025, 6, 1, tzinfo=UTC)


def _rows(spark, events: list[tuple], first: date, last: date) -> dict[tuple[str, date], dict]:
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

    schema = StructType([StructField(n, t) for n, t in [
        ("transaction_id", StringType()), ("user_id", StringType()), ("product_id", StringType()),
        ("category", StringType()), ("amount", DoubleType()), ("event_timestamp", TimestampType())]])
    rows = [(f"t{i}", user, product, "c", amount, ts) for i, (product, user, ts, amount) in enumerate(events)]
    tiles = build_tiles(spark.createDataFrame(rows, schema), PRODUCT_PURCHASE)
    out = features_from_tiles(tiles, first, last, PRODUCT_PURCHASE).drop("event_timestamp").collect()
    got = {(r["product_id"], r["as_of_date"]): r.asDict() for r in out}
    assert len(got) == len(out), "one row per (product_id, T)"
    return got


def test_product_features_at_every_window_edge(spark) -> None:
    events = [
        # (product, user, event_timestamp, amount)
        ("p_at_T", "u1", T, 100.0),  # exactly at T: the next day's
        ("p_at_T", "u1", T - US, 1.0),
        ("p_7d", "u1", T - 7 * DAY, 2.0),  # exactly T - 7d: in 7d
        ("p_7d", "u2", T - 7 * DAY - US, 4.0),  # 1 us earlier: only in 30d
        ("p_7d", "u2", T - 8 * DAY, 8.0),  # u2 again: one buyer however many purchases
        ("p_30d", "u3", T - 30 * DAY, 16.0),  # exactly T - 30d: in 30d
        ("p_30d", "u4", T - 30 * DAY - US, 32.0),  # in no window, keeps the row alive
        ("p_31d", "u5", T - 31 * DAY, 1.0),  # only event in [T-31d, T-30d): the zero row
        ("p_31d_early", "u5", T - 31 * DAY - US, 1.0),  # before the row horizon: no row
        (None, "u6", T - DAY, 64.0),  # no product: counts for none
        ("", "u6", T - DAY, 64.0),
        (" \t", "u6", T - DAY, 64.0),
        # three products tie on purchases_30d = 3: ranked by product_id
        ("p_tie_b", "u1", T - DAY, 1.0), ("p_tie_b", "u1", T - 2 * DAY, 1.0), ("p_tie_b", "u2", T - 3 * DAY, 1.0),
        ("p_tie_a", "u7", T - DAY, 1.0), ("p_tie_a", "u8", T - DAY, 1.0), ("p_tie_a", "u9", T - DAY, 1.0),
    ]
    got = _rows(spark, events, T_DATE, T_DATE)
    want = {
        # product: purchases_7d, purchases_30d, buyers_30d, revenue_30d, main_category, popularity_rank_30d
        "p_7d": (1, 3, 2, 14.0, "c", 1),  # ties p_tie_* on purchases_30d: "p_7d" < "p_tie_a" < "p_tie_b"
        "p_tie_a": (3, 3, 3, 3.0, "c", 2),
        "p_tie_b": (3, 3, 2, 3.0, "c", 3),
        "p_30d": (0, 1, 1, 16.0, "c", 4),
        "p_at_T": (1, 1, 1, 1.0, "c", 5),
        "p_31d": (0, 0, 0, 0.0, None, 6),  # the zero row: no purchase in 30 days, no main category
    }
    assert set(got) == {(p, T_DATE) for p in want}
    for product, values in want.items():
        row = got[(product, T_DATE)]
        assert tuple(row[c] for c in reference.PRODUCT_FEATURE_COLUMNS) == values, product


@pytest.mark.parametrize("seed,first_offset", [(11, 20), (29, 85)])  # inside the data; past its end (zero rows)
def test_product_features_equal_the_reference_on_generated_dirty_data(spark, tmp_path, seed, first_offset) -> None:
    from featurepipe.generate import generate
    from featurepipe.raw import read_source

    start, n_days = date(2025, 1, 1), 100
    generate(str(tmp_path), 12, start, n_days, seed, dirty=True, progress=lambda _: None)
    first, last = start + first_offset * DAY, start + (first_offset + 29) * DAY
    raw_dir = str(tmp_path / "transactions")
    raw, _ = read_source(spark, raw_dir, TRANSACTIONS)
    valid, _invalid = split_valid(raw, TRANSACTIONS)
    tiles = build_tiles(deduplicate(valid, TRANSACTIONS), PRODUCT_PURCHASE)
    out = features_from_tiles(tiles, first, last, PRODUCT_PURCHASE).drop("event_timestamp").collect()
    got = {(r["product_id"], r["as_of_date"]): r for r in out}

    ref = reference.reference_product_features(raw_dir, first, last)
    want = {(r["product_id"], r["event_timestamp"].date()): r for r in ref.to_dict("records")}
    assert len(want) > 300
    assert any(r["buyers_30d"] < r["purchases_30d"] for r in want.values())  # repeat buyers
    assert set(got) == set(want)
    mismatches = []
    for key, w in sorted(want.items()):
        g = got[key]
        mismatches += [(key, c, g[c], w[c]) for c in (*reference.PRODUCT_COUNT_FEATURES, "main_category") if g[c] != w[c]]
        if not math.isclose(g["revenue_30d"], w["revenue_30d"], rel_tol=1e-9, abs_tol=0.0):
            mismatches.append((key, "revenue_30d", g["revenue_30d"], w["revenue_30d"]))
    assert not mismatches, mismatches[:20]
