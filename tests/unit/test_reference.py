"""Hand-computed checks of the independent reference (tests/reference.py).

Every expected value below is worked out by hand from SPEC §2–§4, not by calling the code.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reference import (
    FEATURE_COLUMNS,
    SchemaError,
    deduplicate,
    features_as_of,
    load_raw,
    point_in_time,
    reference_features,
    split_valid,
)

UTC = timezone.utc
US = timedelta(microseconds=1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(path, rows, ts_type=pa.timestamp("us", tz="UTC"), amount_type=pa.float64(), drop=(), extra=None):
    """Write rows (dicts with the raw columns) to a Parquet file with an explicit schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [
        ("transaction_id", pa.string()),
        ("user_id", pa.string()),
        ("product_id", pa.string()),
        ("category", pa.string()),
        ("amount", amount_type),
        ("event_timestamp", ts_type),
    ]
    fields = [(n, t) for n, t in fields if n not in drop]
    arrays = [pa.array([r.get(n) for r in rows], type=t) for n, t in fields]
    names = [n for n, _ in fields]
    if extra:
        for n, values in extra.items():
            arrays.append(pa.array(values))
            names.append(n)
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
    return path


def ev(tid, user, amount, ts, category=None, product="p1"):
    return {
        "transaction_id": tid,
        "user_id": user,
        "product_id": product,
        "category": category,
        "amount": amount,
        "event_timestamp": ts,
    }


def events_frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["transaction_id", "user_id", "product_id", "category", "amount", "event_timestamp"])
    df["event_timestamp"] = pd.to_datetime(df["event_timestamp"], utc=True)
    df["amount"] = df["amount"].astype("float64")
    df["category"] = df["category"].astype(object)
    return df


def one(features: pd.DataFrame, user: str, T: datetime) -> dict:
    hit = features[(features["user_id"] == user) & (features["event_timestamp"] == pd.Timestamp(T))]
    assert len(hit) == 1, f"expected exactly one row for ({user}, {T}), got {len(hit)}"
    return hit.iloc[0].to_dict()


# --- load_raw ----------------------------------------------------------------------------


def test_load_raw_units_timezones_and_layout(tmp_path):
    root = tmp_path / "transactions"
    # ns, tz-aware in New York: 2025-03-01 19:00 EST == 2025-03-02 00:00 UTC
    write(
        root / "ny.parquet",
        [ev("t1", "u1", 1.0, datetime(2025, 3, 1, 19, 0, tzinfo=ZoneInfo("America/New_York")))],
        ts_type=pa.timestamp("ns", tz="America/New_York"),
    )
    # tz-naive ms: means UTC
    write(
        root / "naive.parquet",
        [ev("t2", "u1", 2.0, datetime(2025, 3, 2, 0, 0))],
        ts_type=pa.timestamp("ms"),
    )
    # Hive-style partition folder, us, no product_id/category columns, one extra column
    write(
        root / "date=2025-03-01" / "part-0.parquet",
        [ev("t3", "u2", 3.0, utc(2025, 3, 1, 12, 30))],
        drop=("product_id", "category"),
        extra={"ingest_note": ["x"]},
    )
    # skipped: files / folders starting with _ or .
    write(root / "_tmp" / "junk.parquet", [ev("x1", "u9", 9.0, utc(2025, 3, 1))])
    write(root / ".staging" / "junk.parquet", [ev("x2", "u9", 9.0, utc(2025, 3, 1))])
    write(root / "_partial.parquet", [ev("x3", "u9", 9.0, utc(2025, 3, 1))])
    write(root / ".hidden.parquet", [ev("x4", "u9", 9.0, utc(2025, 3, 1))])
    (root / "_SUCCESS").write_text("")

    raw = load_raw(root).sort_values("transaction_id").reset_index(drop=True)

    assert list(raw["transaction_id"]) == ["t1", "t2", "t3"]
    assert str(raw["event_timestamp"].dtype) == "datetime64[ns, UTC]"
    assert list(raw["event_timestamp"]) == [
        pd.Timestamp("2025-03-02T00:00:00Z"),
        pd.Timestamp("2025-03-02T00:00:00Z"),
        pd.Timestamp("2025-03-01T12:30:00Z"),
    ]
    assert raw.loc[2, "product_id"] is None and raw.loc[2, "category"] is None
    assert "ingest_note" not in raw.columns
    assert raw.loc[2, "source_file"].endswith("date=2025-03-01/part-0.parquet")
    assert list(raw["amount"]) == [1.0, 2.0, 3.0]


def test_load_raw_keeps_nanosecond_precision_at_the_window_edge(tmp_path):
    root = tmp_path / "transactions"
    # 1 ns before midnight belongs to the day before; exactly midnight belongs to the next day
    one_ns_before = pd.Timestamp("2025-03-02T00:00:00Z") - pd.Timedelta(1, "ns")
    table = pa.table(
        {
            "transaction_id": ["a", "b"],
            "user_id": ["u", "u"],
            "amount": [1.0, 10.0],
            "event_timestamp": pa.array(
                [one_ns_before.value, pd.Timestamp("2025-03-02T00:00:00Z").value], type=pa.timestamp("ns", tz="UTC")
            ),
        }
    )
    root.mkdir()
    pq.write_table(table, root / "ns.parquet")
    raw = load_raw(root)
    assert raw["event_timestamp"].min() == one_ns_before
    feats = reference_features(root, date(2025, 3, 2), date(2025, 3, 2))
    row = one(feats, "u", utc(2025, 3, 2))
    assert row["transactions_7d"] == 1
    assert row["total_spent_7d"] == 1.0


def test_load_raw_pandas_written_file(tmp_path):
    """pandas writes ns timestamps and converts NaN amounts to null."""
    root = tmp_path / "transactions"
    root.mkdir()
    df = pd.DataFrame(
        {
            "transaction_id": ["a", "b"],
            "user_id": ["u", "u"],
            "amount": [5.5, float("nan")],
            "event_timestamp": pd.to_datetime(["2025-03-01 10:00", "2025-03-01 11:00"]).tz_localize("Europe/Paris"),
        }
    )
    df.to_parquet(root / "pandas.parquet")
    raw = load_raw(root).sort_values("transaction_id").reset_index(drop=True)
    assert list(raw["event_timestamp"]) == [
        pd.Timestamp("2025-03-01T09:00:00Z"),
        pd.Timestamp("2025-03-01T10:00:00Z"),
    ]
    valid, invalid = split_valid(raw)
    assert list(valid["transaction_id"]) == ["a"]
    assert list(invalid["reason"]) == ["amount_missing"]


def test_load_raw_schema_errors_name_file_and_column(tmp_path):
    root = tmp_path / "a"
    write(root / "no_amount.parquet", [ev("t", "u", 1.0, utc(2025, 3, 1))], drop=("amount",))
    with pytest.raises(SchemaError, match=r"no_amount\.parquet.*'amount'"):
        load_raw(root)

    root = tmp_path / "b"
    write(root / "str_amount.parquet", [ev("t", "u", "1.0", utc(2025, 3, 1))], amount_type=pa.string())
    with pytest.raises(SchemaError, match=r"str_amount\.parquet.*'amount'"):
        load_raw(root)

    root = tmp_path / "c"
    write(root / "str_ts.parquet", [ev("t", "u", 1.0, "2025-03-01")], ts_type=pa.string())
    with pytest.raises(SchemaError, match=r"str_ts\.parquet.*'event_timestamp'"):
        load_raw(root)


def test_load_raw_empty_folder(tmp_path):
    raw = load_raw(tmp_path)
    assert raw.empty
    assert str(raw["event_timestamp"].dtype) == "datetime64[ns, UTC]"


# --- split_valid -------------------------------------------------------------------------


def test_every_invalid_reason(tmp_path):
    root = tmp_path / "transactions"
    ts = utc(2025, 3, 1, 8)
    rows = [
        ev("ok", "u", 1.5, ts),
        ev(None, "u", 1.0, ts),  # transaction_id_missing
        ev("", "u", 1.0, ts),  # transaction_id_empty
        ev("   ", "u", 1.0, ts),  # transaction_id_empty (whitespace only)
        ev("t4", None, 1.0, ts),  # user_id_missing
        ev("t5", "", 1.0, ts),  # user_id_empty
        ev("t6", "u", None, ts),  # amount_missing
        ev("t7", "u", float("nan"), ts),  # amount_missing (NaN)
        ev("t8", "u", float("inf"), ts),  # amount_not_finite
        ev("t9", "u", float("-inf"), ts),  # amount_not_finite
        ev("t10", "u", 0.0, ts),  # amount_not_positive
        ev("t11", "u", -3.0, ts),  # amount_not_positive
        ev("t12", "u", 1.0, None),  # event_timestamp_missing
        ev("", None, -1.0, None),  # everything at once
        ev("ok2", "u", 1e-300, ts),  # tiny but > 0: valid
    ]
    write(root / "f.parquet", rows)
    valid, invalid = split_valid(load_raw(root))

    assert list(valid["transaction_id"]) == ["ok", "ok2"]
    assert list(invalid["reason"]) == [
        "transaction_id_missing",
        "transaction_id_empty",
        "transaction_id_empty",
        "user_id_missing",
        "user_id_empty",
        "amount_missing",
        "amount_missing",
        "amount_not_finite",
        "amount_not_finite",
        "amount_not_positive",
        "amount_not_positive",
        "event_timestamp_missing",
        "transaction_id_empty,user_id_missing,amount_not_positive,event_timestamp_missing",
    ]
    assert len(valid) + len(invalid) == len(rows)


# --- deduplicate -------------------------------------------------------------------------


def test_dedup_identical_rows_across_files_counted_once(tmp_path):
    root = tmp_path / "transactions"
    row = ev("t1", "u", 7.0, utc(2025, 3, 1, 9), category="books")
    write(root / "day1.parquet", [row])
    write(root / "late" / "day3.parquet", [row, row])  # re-landed twice later
    valid, _ = split_valid(load_raw(root))
    assert len(valid) == 3
    deduped = deduplicate(valid)
    assert len(deduped) == 1
    feats = reference_features(root, date(2025, 3, 2), date(2025, 3, 2))
    r = one(feats, "u", utc(2025, 3, 2))
    assert r["transactions_7d"] == 1 and r["total_spent_7d"] == 7.0


def test_dedup_conflicting_payloads_earliest_then_smallest(tmp_path):
    root = tmp_path / "transactions"
    write(
        root / "a.parquet",
        [
            # t1: the later one is cheaper, but the earliest timestamp wins
            ev("t1", "u", 5.0, utc(2025, 3, 1, 10)),
            # t2: same timestamp; the smallest amount wins
            ev("t2", "u", 9.0, utc(2025, 3, 1, 12)),
        ],
    )
    write(
        root / "b.parquet",
        [
            ev("t1", "u", 1.0, utc(2025, 3, 1, 11)),
            ev("t2", "u", 4.0, utc(2025, 3, 1, 12)),
        ],
    )
    valid, _ = split_valid(load_raw(root))
    d = deduplicate(valid).set_index("transaction_id")
    assert d.loc["t1", "amount"] == 5.0
    assert d.loc["t1", "event_timestamp"] == pd.Timestamp("2025-03-01T10:00Z")
    assert d.loc["t2", "amount"] == 4.0
    feats = reference_features(root, date(2025, 3, 2), date(2025, 3, 2))
    assert one(feats, "u", utc(2025, 3, 2))["total_spent_7d"] == 9.0  # 5 + 4


def test_dedup_invalid_duplicate_never_wins(tmp_path):
    root = tmp_path / "transactions"
    write(
        root / "good.parquet",
        [
            ev("t1", "u", 6.0, utc(2025, 3, 1, 10)),
            ev("t2", "u", 8.0, utc(2025, 3, 1, 10)),
            ev("t3", "u", 2.0, utc(2025, 3, 1, 10)),
        ],
    )
    write(
        root / "bad.parquet",
        [
            ev("t1", "u", -1.0, utc(2025, 3, 1, 9)),  # earlier but invalid amount
            ev("t2", "u", 0.0, utc(2025, 3, 1, 10)),  # same ts, "smaller" but invalid
            ev("t3", "", 1.0, utc(2025, 3, 1, 8)),  # earlier and smaller but empty user
        ],
    )
    valid, invalid = split_valid(load_raw(root))
    assert len(invalid) == 3
    d = deduplicate(valid).set_index("transaction_id")
    assert d["amount"].to_dict() == {"t1": 6.0, "t2": 8.0, "t3": 2.0}
    feats = reference_features(root, date(2025, 3, 2), date(2025, 3, 2))
    r = one(feats, "u", utc(2025, 3, 2))
    assert r["transactions_7d"] == 3 and r["total_spent_7d"] == 16.0


# --- features: window edges --------------------------------------------------------------

T = utc(2025, 3, 10)


def test_every_window_edge():
    e = events_frame(
        [
            ev("at_T", "u", 1000.0, T),  # exactly T: excluded (belongs to the next day)
            ev("a", "u", 1.0, T - US),
            ev("b", "u", 2.0, T - timedelta(days=7)),  # exactly T-7d: in 7d
            ev("c", "u", 4.0, T - timedelta(days=7) - US),  # just outside 7d
            ev("d", "u", 8.0, T - timedelta(days=30)),  # exactly T-30d: in 30d
            ev("e", "u", 16.0, T - timedelta(days=30) - US),  # just outside 30d
            ev("f", "u", 32.0, T - timedelta(days=90)),  # exactly T-90d: in 90d
            ev("g", "u", 64.0, T - timedelta(days=90) - US),  # just outside 90d
        ]
    )
    r = one(features_as_of(e, [T.date()]), "u", T)
    assert r["transactions_7d"] == 2 and r["total_spent_7d"] == 3.0
    assert r["transactions_30d"] == 4 and r["total_spent_30d"] == 15.0
    assert r["avg_basket_size_30d"] == 3.75
    assert r["transactions_90d"] == 6 and r["total_spent_90d"] == 63.0
    assert r["max_purchase_90d"] == 32.0

    # the next day, the event at T counts and everything shifts by a day
    T2 = T + timedelta(days=1)
    r2 = one(features_as_of(e, [T2.date()]), "u", T2)
    assert r2["transactions_7d"] == 2 and r2["total_spent_7d"] == 1001.0  # at_T + a (b is now T2 - 8d)
    # 90d as of T2 = [T - 89d, T + 1d): f (T - 90d) drops out, at_T comes in
    assert r2["transactions_90d"] == 6 and r2["total_spent_90d"] == 1000.0 + 1 + 2 + 4 + 8 + 16
    assert r2["max_purchase_90d"] == 1000.0


def test_row_existence_zero_row_and_no_row_after():
    e = events_frame([ev("t", "u", 12.5, utc(2025, 1, 1), category="toys")])  # exactly midnight
    days = [date(2025, 1, 1), date(2025, 1, 2), date(2025, 4, 1), date(2025, 4, 2), date(2025, 4, 3)]
    f = features_as_of(e, days)
    assert list(f["event_timestamp"]) == [
        pd.Timestamp("2025-01-02T00:00Z"),
        pd.Timestamp("2025-04-01T00:00Z"),
        pd.Timestamp("2025-04-02T00:00Z"),
    ]
    # 2025-01-01: the event is at T itself -> no row
    first = one(f, "u", utc(2025, 1, 2))
    assert first["transactions_7d"] == 1 and first["favorite_category"] == "toys"
    # 2025-04-01 = 2025-01-01 + 90 days: still in the 90-day window (T-90d <= ts)
    last = one(f, "u", utc(2025, 4, 1))
    assert last["transactions_7d"] == 0 and last["transactions_30d"] == 0
    assert last["transactions_90d"] == 1 and last["max_purchase_90d"] == 12.5
    assert last["favorite_category"] == "toys"
    # 2025-04-02: 90-day window empty, event exactly at T-91d -> the zero row
    zero = one(f, "u", utc(2025, 4, 2))
    assert {k: zero[k] for k in FEATURE_COLUMNS} == {
        "transactions_7d": 0,
        "transactions_30d": 0,
        "transactions_90d": 0,
        "total_spent_7d": 0.0,
        "total_spent_30d": 0.0,
        "total_spent_90d": 0.0,
        "avg_basket_size_30d": 0.0,
        "max_purchase_90d": 0.0,
        "favorite_category": None,
    }
    # 2025-04-03: nothing in [T-91d, T) -> no row at all


def test_row_existence_boundary_to_the_microsecond():
    T0 = utc(2025, 6, 1)
    e = events_frame(
        [
            ev("in", "inside", 1.0, T0 - timedelta(days=91)),  # exactly T-91d: row exists (zeros)
            ev("out", "outside", 1.0, T0 - timedelta(days=91) - US),  # just before: no row
        ]
    )
    f = features_as_of(e, [T0.date()])
    assert list(f["user_id"]) == ["inside"]
    assert f.loc[0, "transactions_90d"] == 0


def test_avg_zero_when_no_events_in_30d_but_some_in_90d():
    e = events_frame([ev("t", "u", 40.0, T - timedelta(days=40))])
    r = one(features_as_of(e, [T.date()]), "u", T)
    assert r["transactions_30d"] == 0 and r["total_spent_30d"] == 0.0
    assert r["avg_basket_size_30d"] == 0.0
    assert r["transactions_90d"] == 1 and r["max_purchase_90d"] == 40.0


def test_sums_are_exact():
    # naive left-to-right float sum of ten 0.1s is 0.9999999999999999; the exact sum rounds to 1.0
    assert sum([0.1] * 10) != 1.0
    e = events_frame([ev(f"t{i}", "u", 0.1, T - timedelta(hours=i + 1)) for i in range(10)])
    r = one(features_as_of(e, [T.date()]), "u", T)
    assert r["total_spent_7d"] == 1.0
    assert r["avg_basket_size_30d"] == 0.1
    assert math.isclose(r["total_spent_90d"], 1.0, rel_tol=0, abs_tol=0)


# --- favorite_category -------------------------------------------------------------------


def test_favorite_category_ties_nulls_and_window():
    h = lambda n: T - timedelta(hours=n)  # noqa: E731
    e = events_frame(
        [
            # tie a=2, b=2, c=1 -> "a"
            ev("1", "tie", 1.0, h(1), "b"),
            ev("2", "tie", 1.0, h(2), "a"),
            ev("3", "tie", 1.0, h(3), "b"),
            ev("4", "tie", 1.0, h(4), "a"),
            ev("5", "tie", 1.0, h(5), "c"),
            # nulls never count: 3 nulls, one "z" -> "z"
            ev("6", "nulls", 1.0, h(1), None),
            ev("7", "nulls", 1.0, h(2), None),
            ev("8", "nulls", 1.0, h(3), None),
            ev("9", "nulls", 1.0, h(4), "z"),
            # all null -> None
            ev("10", "allnull", 1.0, h(1), None),
            # outside 90d does not count: q x3 at T-95d, p x1 inside -> "p"
            ev("11", "window", 1.0, T - timedelta(days=95), "q"),
            ev("12", "window", 1.0, T - timedelta(days=95), "q"),
            ev("13", "window", 1.0, T - timedelta(days=95), "q"),
            ev("14", "window", 1.0, T - timedelta(days=60), "p"),
            # lexicographic = code point order: "B" < "a"
            ev("15", "case", 1.0, h(1), "a"),
            ev("16", "case", 1.0, h(2), "B"),
            # a strict majority beats the lexicographically smaller one
            ev("17", "major", 1.0, h(1), "zz"),
            ev("18", "major", 1.0, h(2), "zz"),
            ev("19", "major", 1.0, h(3), "aa"),
        ]
    )
    f = features_as_of(e, [T.date()])
    fav = dict(zip(f["user_id"], f["favorite_category"]))
    assert fav == {"tie": "a", "nulls": "z", "allnull": None, "window": "p", "case": "B", "major": "zz"}


# --- output shape ------------------------------------------------------------------------


def test_output_columns_dtypes_and_order():
    e = events_frame(
        [
            ev("1", "u2", 3.0, utc(2025, 3, 1, 5), "x"),
            ev("2", "u1", 4.0, utc(2025, 3, 2, 5), "y"),
        ]
    )
    f = features_as_of(e, [date(2025, 3, 3), date(2025, 3, 2)])
    assert list(f.columns) == ["user_id", "event_timestamp", *FEATURE_COLUMNS]
    assert [(u, t.day) for u, t in zip(f["user_id"], f["event_timestamp"])] == [("u1", 3), ("u2", 2), ("u2", 3)]
    assert str(f["event_timestamp"].dtype) == "datetime64[ns, UTC]"
    for c in ["transactions_7d", "transactions_30d", "transactions_90d"]:
        assert f[c].dtype == np.int64
    for c in ["total_spent_7d", "total_spent_30d", "total_spent_90d", "avg_basket_size_30d", "max_purchase_90d"]:
        assert f[c].dtype == np.float64
    assert f["favorite_category"].dtype == object
    assert features_as_of(e, []).empty


def test_reference_features_range_inclusive(tmp_path):
    root = tmp_path / "transactions"
    write(root / "f.parquet", [ev("t", "u", 2.0, utc(2025, 3, 1, 12))])
    f = reference_features(root, date(2025, 3, 1), date(2025, 3, 5))
    assert [t.day for t in f["event_timestamp"]] == [2, 3, 4, 5]
    assert list(f["transactions_7d"]) == [1, 1, 1, 1]


# --- point_in_time -----------------------------------------------------------------------


def _features_for_pit() -> pd.DataFrame:
    e = events_frame(
        [
            ev("1", "u", 10.0, utc(2025, 2, 28, 12), "a"),  # seen from T = 03-01
            ev("2", "u", 5.0, utc(2025, 3, 1, 12), "b"),  # seen from T = 03-02
        ]
    )
    return features_as_of(e, [date(2025, 3, 1), date(2025, 3, 2)])


def test_point_in_time_midnight_and_one_microsecond_before():
    feats = _features_for_pit()
    entities = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "ghost", "u", "u"],
            "event_timestamp": pd.to_datetime(
                [
                    "2025-03-02T00:00:00Z",  # exactly midnight -> T = 03-02 (2 events)
                    "2025-03-01T23:59:59.999999Z",  # 1 us before -> T = 03-01 (1 event)
                    "2025-02-28T23:00:00Z",  # before any feature row -> nulls
                    "2025-03-02T06:00:00Z",  # unknown user -> nulls
                    "2026-01-01T00:00:00Z",  # far later: latest row, no TTL
                    "2025-03-01T00:00:00Z",  # exactly the first T
                ],
                format="ISO8601",
            ),
            "label": [1, 0, 1, 0, 1, 0],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    original = entities.copy()
    out = point_in_time(feats, entities)

    pd.testing.assert_frame_equal(out[list(original.columns)], original)
    assert list(out.columns) == [*original.columns, *FEATURE_COLUMNS]
    assert list(out["transactions_7d"].astype("object").where(out["transactions_7d"].notna(), None)) == [
        2,
        1,
        None,
        None,
        2,
        1,
    ]
    assert out["total_spent_7d"].tolist()[:2] == [15.0, 10.0]
    assert np.isnan(out.loc[12, "total_spent_7d"]) and np.isnan(out.loc[13, "max_purchase_90d"])
    assert out.loc[12, "favorite_category"] is None
    assert out.loc[10, "favorite_category"] == "a"  # tie a/b -> a
    assert out.loc[14, "max_purchase_90d"] == 10.0
    assert out.loc[15, "avg_basket_size_30d"] == 10.0
    assert str(out["transactions_7d"].dtype) == "Int64"


def test_point_in_time_naive_and_other_timezones():
    feats = _features_for_pit()
    entities = pd.DataFrame(
        {
            "user_id": ["u", "u"],
            # naive = UTC: one microsecond before midnight -> T = 03-01
            "event_timestamp": [datetime(2025, 3, 1, 23, 59, 59, 999999), datetime(2025, 3, 2, 0, 0)],
        }
    )
    out = point_in_time(feats, entities)
    assert list(out["transactions_7d"]) == [1, 2]
    assert out["event_timestamp"].dt.tz is None  # entity columns unchanged

    # 2025-03-01 19:00 in New York is 2025-03-02 00:00 UTC -> T = 03-02;
    # 2025-03-02 00:30 in Paris is 2025-03-01 23:30 UTC -> T = 03-01
    entities = pd.DataFrame(
        {
            "user_id": ["u", "u"],
            "event_timestamp": [
                pd.Timestamp("2025-03-01 19:00", tz="America/New_York"),
                pd.Timestamp("2025-03-02 00:30", tz="Europe/Paris"),
            ],
        }
    )
    out = point_in_time(feats, entities)
    assert list(out["transactions_7d"]) == [2, 1]


def test_point_in_time_with_no_history_gives_the_empty_window_values():
    feats = _features_for_pit()  # user u, rows from T = 2025-03-01
    entities = pd.DataFrame({"user_id": ["u", "u", "ghost"],
                             "event_timestamp": pd.to_datetime(["2025-02-28T12:00:00Z", "2025-03-02T06:00:00Z",
                                                                "2025-03-02T06:00:00Z"], format="ISO8601")})
    plain = point_in_time(feats, entities)
    assert plain["transactions_7d"].isna().tolist() == [True, False, True]
    filled = point_in_time(feats, entities, no_history=True)
    assert filled["transactions_7d"].tolist() == [0, 2, 0]
    assert filled["total_spent_90d"].tolist()[::2] == [0.0, 0.0] and filled["avg_basket_size_30d"].tolist()[::2] == [0.0, 0.0]
    assert filled["favorite_category"].tolist()[::2] == [None, None]
