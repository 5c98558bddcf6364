"""The pure Spark transforms: validation, deduplication, tiles and features (SPEC §2–§3).

Hand-built frames with hand-computed expectations at every window edge, then a property-style
comparison with the independent pandas reference (tests/reference.py) on generated dirty data.
Each test collects once.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import pytest

import reference
from featurepipe.spec import TRANSACTIONS, USER_PURCHASE
from featurepipe import validation
from featurepipe.features import features_from_tiles
from featurepipe.tiles import build_tiles
from featurepipe.validation import deduplicate, split_valid

UTC = timezone.utc
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAN, INF = float("nan"), float("inf")


def micros(d: datetime) -> int:
    return (d - EPOCH) // US


def raw_schema(with_source_file: bool = False):
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

    fields = [
        StructField("transaction_id", StringType()),
        StructField("user_id", StringType()),
        StructField("product_id", StringType()),
        StructField("category", StringType()),
        StructField("amount", DoubleType()),
        StructField("event_timestamp", TimestampType()),
    ]
    if with_source_file:
        fields.append(StructField("source_file", StringType()))
    return StructType(fields)


def feature_schema():
    from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType, TimestampType

    return StructType(
        [
            StructField("user_id", StringType()),
            StructField("event_timestamp", TimestampType()),
            StructField("transactions_7d", LongType()),
            StructField("transactions_30d", LongType()),
            StructField("transactions_90d", LongType()),
            StructField("total_spent_7d", DoubleType()),
            StructField("total_spent_30d", DoubleType()),
            StructField("total_spent_90d", DoubleType()),
            StructField("avg_basket_size_30d", DoubleType()),
            StructField("max_purchase_90d", DoubleType()),
            StructField("favorite_category", StringType()),
            StructField("as_of_date", DateType()),
        ]
    )


# --- validation ---------------------------------------------------------------------------


def test_reason_codes_are_the_contracts() -> None:
    assert [
        validation.TRANSACTION_ID_MISSING,
        validation.TRANSACTION_ID_EMPTY,
        validation.USER_ID_MISSING,
        validation.USER_ID_EMPTY,
        validation.AMOUNT_MISSING,
        validation.AMOUNT_NOT_FINITE,
        validation.AMOUNT_NOT_POSITIVE,
        validation.AMOUNT_TOO_LARGE,
        validation.EVENT_TIMESTAMP_MISSING,
        validation.EVENT_TIMESTAMP_IN_FUTURE,
    ] == [
        reference.R_TXN_MISSING,
        reference.R_TXN_EMPTY,
        reference.R_USER_MISSING,
        reference.R_USER_EMPTY,
        reference.R_AMOUNT_MISSING,
        reference.R_AMOUNT_NOT_FINITE,
        reference.R_AMOUNT_NOT_POSITIVE,
        reference.R_AMOUNT_TOO_LARGE,
        reference.R_TS_MISSING,
        reference.R_TS_IN_FUTURE,
    ] == [
        "transaction_id_missing",
        "transaction_id_empty",
        "user_id_missing",
        "user_id_empty",
        "amount_missing",
        "amount_not_finite",
        "amount_not_positive",
        "amount_too_large",
        "event_timestamp_missing",
        "event_timestamp_in_future",
    ]
    assert (TRANSACTIONS.column("amount").max_value, TRANSACTIONS.column("category").max_length) == (
        reference.MAX_AMOUNT, reference.MAX_TEXT)


def _split_collect(spark, rows: list[tuple]) -> dict[str, tuple]:
    """split_valid on rows labelled by product_id -> {label: (side, reason, columns...)}, one collect."""
    from pyspark.sql import functions as F

    raw = spark.createDataFrame(rows, raw_schema())
    valid, invalid = split_valid(raw, TRANSACTIONS)
    assert valid.columns == raw.columns
    both = valid.withColumn("reason", F.lit(None).cast("string")).withColumn("_side", F.lit("valid")).unionByName(
        invalid.withColumn("_side", F.lit("invalid"))
    )
    out = both.select(
        "product_id", "_side", "reason", "transaction_id", "user_id", "category", "amount",
        F.unix_micros("event_timestamp").alias("_us"),
    ).collect()
    labels = [r["product_id"] for r in out]
    assert sorted(labels) == sorted(r[2] for r in rows), "every row lands on exactly one side"
    return {r["product_id"]: tuple(r)[1:] for r in out}


T_VALID = datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)


def test_split_valid_flags_every_rule_in_rule_order(spark) -> None:
    t = T_VALID
    rows = [
        # (transaction_id, user_id, product_id = row label, category, amount, event_timestamp)
        ("t1", "u1", "ok", "books", 12.5, t),
        ("t2", "u1", "ok_null_category", None, 0.01, t),
        ("t3", " u2 ", "ok_tiny_amount", "", 1e-300, t),
        (None, "u1", "tid_null", "books", 1.0, t),
        ("", "u1", "tid_empty", "books", 1.0, t),
        ("   ", "u1", "tid_spaces", "books", 1.0, t),
        ("t4", None, "user_null", "books", 1.0, t),
        ("t5", "", "user_empty", "books", 1.0, t),
        ("t6", "u1", "amount_null", "books", None, t),
        ("t7", "u1", "amount_nan", "books", NAN, t),
        ("t8", "u1", "amount_pinf", "books", INF, t),
        ("t9", "u1", "amount_ninf", "books", -INF, t),
        ("t10", "u1", "amount_zero", "books", 0.0, t),
        ("t11", "u1", "amount_negative_zero", "books", -0.0, t),
        ("t12", "u1", "amount_negative", "books", -3.5, t),
        ("t13", "u1", "ts_null", "books", 1.0, None),
        (None, "", "many_1", "books", NAN, None),
        (" ", None, "many_2", None, -INF, t),
        ("", "  ", "many_3", "books", -1.0, None),
        ("t14", "u1", "amount_huge", "books", 1e308, t),
        ("t15", "u1", "ok_amount_at_limit", "books", 1e9, t),
        ("t16", "u1", "category_long", "x" * 257, 1.0, t),
        ("t17", "u1", "ok_category_at_limit", "é" * 256, 1.0, t),  # characters, not bytes
        ("t" * 257, "u" * 300, "ids_long", "books", 2e9, t),
    ]
    got = _split_collect(spark, rows)
    reasons = {label: v[1] for label, v in got.items() if v[0] == "invalid"}
    assert reasons == {
        "tid_null": "transaction_id_missing",
        "tid_empty": "transaction_id_empty",
        "tid_spaces": "transaction_id_empty",
        "user_null": "user_id_missing",
        "user_empty": "user_id_empty",
        "amount_null": "amount_missing",
        "amount_nan": "amount_missing",
        "amount_pinf": "amount_not_finite",
        "amount_ninf": "amount_not_finite",
        "amount_zero": "amount_not_positive",
        "amount_negative_zero": "amount_not_positive",
        "amount_negative": "amount_not_positive",
        "ts_null": "event_timestamp_missing",
        "many_1": "transaction_id_missing,user_id_empty,amount_missing,event_timestamp_missing",
        "many_2": "transaction_id_empty,user_id_missing,amount_not_finite",
        "many_3": "transaction_id_empty,user_id_empty,amount_not_positive,event_timestamp_missing",
        "amount_huge": "amount_too_large",
        "category_long": "category_too_long",
        "ids_long": "transaction_id_too_long,user_id_too_long,amount_too_large",
    }
    # valid rows come through untouched (ids not trimmed, "" category kept, exact amount and instant)
    valid = {label: v[2:] for label, v in got.items() if v[0] == "valid"}
    assert valid == {
        "ok": ("t1", "u1", "books", 12.5, micros(t)),
        "ok_null_category": ("t2", "u1", None, 0.01, micros(t)),
        "ok_tiny_amount": ("t3", " u2 ", "", 1e-300, micros(t)),
        "ok_amount_at_limit": ("t15", "u1", "books", 1e9, micros(t)),
        "ok_category_at_limit": ("t17", "u1", "é" * 256, 1.0, micros(t)),
    }


def test_an_event_stamped_after_its_files_arrival_plus_the_tolerance_is_in_the_future(spark, tmp_path) -> None:
    import os

    import pandas as pd

    from featurepipe.raw import read_source

    arrived = datetime(2025, 3, 2, 6, 0, tzinfo=UTC)
    rows = [
        ("t1", "u1", "ok_before", "books", 1.0, arrived - timedelta(days=1)),
        ("t2", "u1", "ok_within_tolerance", "books", 1.0, arrived + timedelta(minutes=59)),
        ("t3", "u1", "future", "books", 1.0, arrived + timedelta(minutes=61)),
    ]
    folder = tmp_path / "transactions" / "landing_date=2025-03-01"
    folder.mkdir(parents=True)
    frame = pd.DataFrame(rows, columns=["transaction_id", "user_id", "product_id", "category", "amount",
                                        "event_timestamp"])
    frame.to_parquet(folder / "part-0.parquet", index=False)
    os.utime(folder / "part-0.parquet", (arrived.timestamp(), arrived.timestamp()))
    raw, _ = read_source(spark, str(tmp_path / "transactions"), TRANSACTIONS)
    valid, invalid = split_valid(raw, TRANSACTIONS)
    assert sorted(r["product_id"] for r in valid.collect()) == ["ok_before", "ok_within_tolerance"]
    assert [(r["product_id"], r["reason"]) for r in invalid.collect()] == [("future", "event_timestamp_in_future")]
    assert reference.split_valid(reference.load_raw(tmp_path / "transactions"))[1]["reason"].tolist() == [
        "event_timestamp_in_future"]


def test_split_valid_treats_any_whitespace_only_id_as_empty(spark) -> None:
    # tests/reference.py and the comment in featurepipe/validation.py: whitespace-only ids are empty
    t = T_VALID
    rows = [
        ("\t", "u1", "tid_tab", "books", 1.0, t),
        ("\n", "u1", "tid_newline", "books", 1.0, t),
        (" \t\r\n ", "u1", "tid_mixed", "books", 1.0, t),
        ("t1", "\t", "user_tab", "books", 1.0, t),
        ("t2", " \n", "user_newline", "books", 1.0, t),
        ("t3", "u1", "ok", "books", 1.0, t),
    ]
    got = _split_collect(spark, rows)
    assert {label: (v[0], v[1]) for label, v in got.items()} == {
        "tid_tab": ("invalid", "transaction_id_empty"),
        "tid_newline": ("invalid", "transaction_id_empty"),
        "tid_mixed": ("invalid", "transaction_id_empty"),
        "user_tab": ("invalid", "user_id_empty"),
        "user_newline": ("invalid", "user_id_empty"),
        "ok": ("valid", None),
    }


# --- deduplication --------------------------------------------------------------------------


def test_validation_then_deduplication_keeps_one_valid_row_per_event(spark) -> None:
    from pyspark.sql import functions as F

    day = datetime(2025, 3, 1, tzinfo=UTC)

    def at(h: int, us: int = 0) -> datetime:
        return day + h * HOUR + us * US

    rows = [
        # identical copies, from three landings: one event
        ("d1", "u1", "p1", "books", 10.0, at(10), "f1"),
        ("d1", "u1", "p1", "books", 10.0, at(10), "f3"),
        ("d1", "u1", "p1", "books", 10.0, at(10), "f2"),
        # conflicting: the earliest event_timestamp wins even with the larger amount
        ("c1", "u1", "p1", "books", 50.0, at(10), "f1"),
        ("c1", "u1", "p1", "books", 80.0, at(9), "f2"),
        # conflicting with the same timestamp: the smallest amount wins
        ("c2", "u1", "p1", "books", 30.0, at(11), "f1"),
        ("c2", "u1", "p1", "books", 20.0, at(11), "f2"),
        ("c2", "u1", "p1", "books", 25.0, at(11), "f3"),
        # one microsecond earlier beats a much smaller amount
        ("c3", "u1", "p1", "books", 5.0, at(12, 1), "f1"),
        ("c3", "u1", "p1", "books", 500.0, at(12), "f2"),
        # payload differs in user and category: still the earliest copy
        ("c4", "u2", "p2", "toys", 10.0, at(14), "f1"),
        ("c4", "u1", "p1", "books", 10.0, at(13), "f2"),
        # an invalid copy that would win on timestamp or amount must not: validation first
        ("inv1", "u1", "p1", "books", -5.0, at(8), "f1"),
        ("inv1", "u1", "p1", "books", 10.0, at(12), "f2"),
        ("inv2", "", "p1", "books", 1.0, at(8), "f1"),
        ("inv2", "u1", "p1", "books", 25.0, at(12), "f2"),
        ("inv3", "u1", "p1", "books", NAN, at(8), "f1"),
        ("inv3", "u1", "p1", "books", 0.0, at(9), "f2"),
        ("inv4", "u1", "p1", "books", 3.0, None, "f1"),  # a null timestamp sorts first
        ("inv4", "u1", "p1", "books", 7.0, at(12), "f2"),
        ("solo", "u3", "p9", None, 1.25, at(23, 3_599_999_999), "f1"),
    ]
    raw = spark.createDataFrame(rows, raw_schema(with_source_file=True))
    valid, invalid = split_valid(raw, TRANSACTIONS)
    clean = deduplicate(valid, TRANSACTIONS)
    assert clean.columns == raw.columns
    out = (
        clean.withColumn("_side", F.lit("clean"))
        .withColumn("reason", F.lit(None).cast("string"))
        .unionByName(invalid.withColumn("_side", F.lit("quarantine")))
        .select("_side", "transaction_id", "user_id", "category", "amount", F.unix_micros("event_timestamp").alias("_us"), "reason")
        .collect()
    )
    clean_rows = sorted(tuple(r)[1:6] for r in out if r["_side"] == "clean")
    assert clean_rows == [
        ("c1", "u1", "books", 80.0, micros(at(9))),
        ("c2", "u1", "books", 20.0, micros(at(11))),
        ("c3", "u1", "books", 500.0, micros(at(12))),
        ("c4", "u1", "books", 10.0, micros(at(13))),
        ("d1", "u1", "books", 10.0, micros(at(10))),
        ("inv1", "u1", "books", 10.0, micros(at(12))),
        ("inv2", "u1", "books", 25.0, micros(at(12))),
        ("inv4", "u1", "books", 7.0, micros(at(12))),
        ("solo", "u3", None, 1.25, micros(datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=UTC))),
    ]
    quarantined = sorted((r["transaction_id"], r["reason"]) for r in out if r["_side"] == "quarantine")
    assert quarantined == [
        ("inv1", "amount_not_positive"),
        ("inv2", "user_id_empty"),
        ("inv3", "amount_missing"),
        ("inv3", "amount_not_positive"),
        ("inv4", "event_timestamp_missing"),
    ]


# --- tiles -> features, hand-computed at every window edge ---------------------------------------


def _features(spark, events: list[tuple], first: date, last: date):
    """Hand-built valid events (user_id, event_timestamp, amount, category) -> feature rows."""
    rows = [(f"t{i}", u, "p1", c, a, ts) for i, (u, ts, a, c) in enumerate(events)]
    tiles = build_tiles(spark.createDataFrame(rows, raw_schema()), USER_PURCHASE)
    return features_from_tiles(tiles, first, last, USER_PURCHASE)


T_DATE = date(2025, 6, 1)
T = datetime(2025, 6, 1, tzinfo=UTC)


def test_features_at_every_window_edge(spark) -> None:
    from pyspark.testing import assertDataFrameEqual

    events = [
        # (user, event_timestamp, amount, category)
        ("u_at_T", T, 1000.0, "z"),  # exactly at T: belongs to the next day
        ("u_at_T", T - US, 1.0, "a"),
        ("u_7d", T - 7 * DAY, 7.0, "b"),  # exactly T - 7d: in 7d
        ("u_7d", T - 7 * DAY - US, 70.0, "c"),  # 1 us earlier: only in 30d and 90d
        ("u_30d", T - 30 * DAY, 30.0, "y"),
        ("u_30d", T - 30 * DAY - US, 300.0, "x"),
        ("u_90d", T - 90 * DAY, 90.0, "m"),
        ("u_90d", T - 90 * DAY - US, 900.0, "a"),  # in no window, but keeps the row alive
        ("u_91d", T - 91 * DAY, 5.0, "k"),  # only event in [T-91d, T-90d): the zero row
        ("u_91d_early", T - 91 * DAY - US, 5.0, "k"),  # before the row horizon: no row
        ("u_future", T + US, 3.0, "q"),  # only after T: no row
        ("u_future", T + 2 * DAY, 3.0, "q"),
        # favourite: nulls ignored even when most frequent, ties across tiles -> smallest
        ("u_fav_tie", T - 1 * DAY, 1.0, "toys"),
        ("u_fav_tie", T - 40 * DAY, 2.0, "toys"),
        ("u_fav_tie", T - 50 * DAY, 4.0, "beauty"),
        ("u_fav_tie", T - 3 * DAY, 8.0, "beauty"),
        ("u_fav_tie", T - 2 * DAY, 16.0, None),
        ("u_fav_tie", T - 2 * DAY + HOUR, 32.0, None),
        ("u_fav_tie", T - 60 * DAY, 64.0, None),
        ("u_fav_tie", T - 5 * DAY, 128.0, "zeta"),
        # the more frequent category wins over the lexicographically smaller one
        ("u_fav_count", T - 1 * DAY, 0.5, "zz"),
        ("u_fav_count", T - 2 * DAY, 0.5, "zz"),
        ("u_fav_count", T - 3 * DAY, 0.5, "aa"),
        ("u_fav_count", T - 3 * DAY + HOUR, 0.25, None),
        # only null categories: null favourite
        ("u_fav_null", T - 1 * DAY, 2.5, None),
        ("u_fav_null", T - 20 * DAY, 2.5, None),
        # "" is a (non-null) category, smaller than any other
        ("u_fav_empty", T - 1 * DAY, 1.0, ""),
        ("u_fav_empty", T - 2 * DAY, 1.0, "a"),
    ]
    actual = _features(spark, events, T_DATE, T_DATE)

    # output types (no Spark job needed)
    assert {f.name: f.dataType for f in actual.schema.fields} == {f.name: f.dataType for f in feature_schema().fields}

    expected = [
        # user, T, t7, t30, t90, s7, s30, s90, avg30, max90, favourite, as_of_date
        ("u_at_T", T, 1, 1, 1, 1.0, 1.0, 1.0, 1.0, 1.0, "a", T_DATE),
        ("u_7d", T, 1, 2, 2, 7.0, 77.0, 77.0, 38.5, 70.0, "b", T_DATE),
        ("u_30d", T, 0, 1, 2, 0.0, 30.0, 330.0, 30.0, 300.0, "x", T_DATE),
        ("u_90d", T, 0, 0, 1, 0.0, 0.0, 90.0, 0.0, 90.0, "m", T_DATE),
        ("u_91d", T, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, None, T_DATE),
        ("u_fav_tie", T, 5, 5, 8, 185.0, 185.0, 255.0, 37.0, 128.0, "beauty", T_DATE),
        ("u_fav_count", T, 4, 4, 4, 1.75, 1.75, 1.75, 0.4375, 0.5, "zz", T_DATE),
        ("u_fav_null", T, 1, 2, 2, 2.5, 5.0, 5.0, 2.5, 2.5, None, T_DATE),
        ("u_fav_empty", T, 2, 2, 2, 2.0, 2.0, 2.0, 1.0, 1.0, "", T_DATE),
    ]
    # the amounts are exact binary fractions: demand exact equality
    assertDataFrameEqual(actual, spark.createDataFrame(expected, feature_schema()), rtol=0.0, atol=0.0)


def test_rows_from_first_day_after_an_event_to_the_zero_row_and_none_after(spark) -> None:
    from pyspark.sql import functions as F

    events = [
        ("mid", datetime(2025, 3, 1, 12, tzinfo=UTC), 10.0, "a"),
        ("edge", datetime(2025, 3, 1, tzinfo=UTC), 20.0, "b"),  # exactly a midnight
        ("pre", datetime(2025, 2, 28, 23, 59, 59, 999999, tzinfo=UTC), 40.0, None),  # 1 us before it
    ]
    first, last = date(2025, 2, 26), date(2025, 6, 2)
    out = (
        _features(spark, events, first, last)
        .select("*", F.unix_micros("event_timestamp").alias("_us"))
        .drop("event_timestamp")
        .collect()
    )
    got = {(r["user_id"], r["as_of_date"]): r for r in out}

    # hand-computed (2025: Feb 28, Mar 31, Apr 30, May 31 days) from T - N days <= e < T:
    # e = 03-01T00:00 or 03-01T12:00: rows 03-02..05-31; 7d through 03-08, 30d through 03-31,
    # 90d through 05-30; 05-31 is the zero row (03-01 = 05-31 - 91d). e = 02-28T23:59:59.999999:
    # rows 03-01..05-30; 7d through 03-07, 30d through 03-30, 90d through 05-29; zero row 05-30.
    def days(a: date, b: date) -> list[date]:
        return [a + i * DAY for i in range((b - a).days + 1)]

    spans = {
        # user: (amount, category, rows, last 7d day, last 30d day, last 90d day)
        "mid": (10.0, "a", days(date(2025, 3, 2), date(2025, 5, 31)), date(2025, 3, 8), date(2025, 3, 31), date(2025, 5, 30)),
        "edge": (20.0, "b", days(date(2025, 3, 2), date(2025, 5, 31)), date(2025, 3, 8), date(2025, 3, 31), date(2025, 5, 30)),
        "pre": (40.0, None, days(date(2025, 3, 1), date(2025, 5, 30)), date(2025, 3, 7), date(2025, 3, 30), date(2025, 5, 29)),
    }
    expected = {}
    for user, (amount, category, dates, last7, last30, last90) in spans.items():
        for d in dates:
            n7, n30, n90 = int(d <= last7), int(d <= last30), int(d <= last90)
            expected[(user, d)] = (
                n7, n30, n90, amount * n7, amount * n30, amount * n90, amount * n30, amount * n90,
                category if n90 else None,
                micros(datetime(d.year, d.month, d.day, tzinfo=UTC)),
            )
    cols = [*USER_PURCHASE.feature_names, "_us"]
    assert {k: tuple(r[c] for c in cols) for k, r in got.items()} == expected
    # spot checks of the expiry rows, written out in full
    assert tuple(got[("edge", date(2025, 5, 31))][c] for c in cols[:-1]) == (0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, None)
    assert tuple(got[("edge", date(2025, 5, 30))][c] for c in cols[:-1]) == (0, 0, 1, 0.0, 0.0, 20.0, 0.0, 20.0, "b")
    assert ("edge", date(2025, 6, 1)) not in got and ("pre", date(2025, 5, 31)) not in got


# --- property: equal to the independent reference on generated dirty data ----------------------


@pytest.mark.parametrize(
    "seed,first_offset,has_zero_rows,pivot_max",
    [
        (7, 40, False, None),  # as-of dates inside the data: events after T must be ignored
        (23, 80, True, None),  # running past the last landing: windows empty out, zero rows appear
        (7, 40, False, 0),  # favorite_category per value in a frame of its own, as for a column of many values
    ],
)
def test_features_equal_the_reference_on_generated_dirty_data(spark, tmp_path, monkeypatch, seed, first_offset,
                                                              has_zero_rows, pivot_max) -> None:
    from pyspark.sql import functions as F

    from featurepipe import features

    if pivot_max is not None:
        monkeypatch.setattr(features, "MODE_PIVOT_MAX", pivot_max)

    from featurepipe.generate import generate
    from featurepipe.raw import read_source

    start, n_days = date(2025, 1, 1), 100
    summary = generate(str(tmp_path), 12, start, n_days, seed, dirty=True, progress=lambda _: None)
    first, last = start + first_offset * DAY, start + (first_offset + 39) * DAY
    raw_dir = str(tmp_path / "transactions")

    raw, _ = read_source(spark, raw_dir, TRANSACTIONS)
    valid, _invalid = split_valid(raw, TRANSACTIONS)
    tiles = build_tiles(deduplicate(valid, TRANSACTIONS), USER_PURCHASE)
    out = (
        features_from_tiles(tiles, first, last, USER_PURCHASE)
        .select("*", F.unix_micros("event_timestamp").alias("_us"))
        .drop("event_timestamp")
        .collect()
    )
    got = {(r["user_id"], r["as_of_date"]): r for r in out}
    assert len(got) == len(out), "one row per (user_id, T)"

    ref = reference.reference_features(raw_dir, first, last)
    want = {(r["user_id"], r["event_timestamp"].date()): r for r in ref.to_dict("records")}
    # the data exercises what it should (checked for these fixed seeds)
    assert len(want) > 500
    assert any(r["favorite_category"] is None for r in want.values())
    assert any(r["transactions_30d"] == 0 < r["transactions_90d"] for r in want.values())
    assert any(r["transactions_90d"] == 0 for r in want.values()) == has_zero_rows
    assert {u for u, _ in want} & set(summary.tie_users)

    assert set(got) == set(want)
    mismatches = []
    for key, w in sorted(want.items()):
        g = got[key]
        if g["_us"] != micros(datetime(key[1].year, key[1].month, key[1].day, tzinfo=UTC)):
            mismatches.append((key, "event_timestamp", g["_us"]))
        for c in reference.COUNT_FEATURES:
            if g[c] != w[c]:
                mismatches.append((key, c, g[c], w[c]))
        for c in reference.FLOAT_FEATURES:
            if not math.isclose(g[c], w[c], rel_tol=1e-9, abs_tol=0.0):
                mismatches.append((key, c, g[c], w[c]))
        if g["favorite_category"] != w["favorite_category"]:
            mismatches.append((key, "favorite_category", g["favorite_category"], w["favorite_category"]))
    assert not mismatches, mismatches[:20]


def test_tiles_with_two_mode_columns_count_each_column_separately(spark) -> None:
    """A second MODE aggregation (declared in the spec, nothing else) gets its own per-value counts,
    each column's from its own values of the day."""
    import dataclasses

    from featurepipe.spec import Aggregation, Op

    group = dataclasses.replace(
        USER_PURCHASE,
        aggregations=(*USER_PURCHASE.aggregations,
                      Aggregation("favorite_product", Op.MODE, windows=(90,), column="product_id", window_suffix=False)),
    )
    rows = [  # (transaction_id, user_id, product_id, category, amount, event_timestamp)
        ("t1", "u1", "p1", "a", 1.0, T), ("t2", "u1", "p1", "b", 2.0, T + HOUR),
        ("t3", "u1", "p2", "a", 3.0, T + 2 * HOUR), ("t4", "u1", None, None, 4.0, T + 3 * HOUR),
        ("t5", "u2", None, None, 5.0, T),
    ]
    built = build_tiles(spark.createDataFrame(rows, raw_schema()), group)
    tiles = {r["user_id"]: r for r in built.collect()}
    assert tiles["u1"]["event_count"] == 4 and tiles["u1"]["sum_amount"] == 10.0 and tiles["u1"]["max_amount"] == 4.0
    assert tiles["u1"]["counts_category"] == {"a": 2, "b": 1}
    assert tiles["u1"]["counts_product_id"] == {"p1": 2, "p2": 1}
    assert tiles["u2"]["counts_category"] is None and tiles["u2"]["counts_product_id"] is None
    features = {r["user_id"]: r for r in features_from_tiles(built, T_DATE + DAY, T_DATE + DAY, group).collect()}
    assert features["u1"]["favorite_category"] == "a" and features["u1"]["favorite_product"] == "p1"
    assert features["u2"]["favorite_category"] is None and features["u2"]["favorite_product"] is None
    assert features["u2"]["transactions_7d"] == 1


def test_plan_span_fills_gaps_after_the_first_published_date_within_the_lookback() -> None:
    from featurepipe.dates import AsOfRange
    from featurepipe.features import plan_span

    d = date(2025, 3, 20)
    run = AsOfRange(d, d)
    covered = {d - timedelta(days=k) for k in (1, 2, 4, 5)}  # d-3 failed; d-6.. before the first publish
    span, too_old, gaps = plan_span(run, [], 30, first_published=d - timedelta(days=5), covered=covered)
    assert gaps == [d - timedelta(days=3)] and span == AsOfRange(d - timedelta(days=3), d) and too_old == []
    # nothing published yet: no gap (history before the first backfill is not missing)
    assert plan_span(run, [], 30)[2] == []
    # a gap older than the look-back is left alone; a pending date inside it is repaired
    old = {d - timedelta(days=k) for k in range(1, 40) if k != 35}
    span, _, gaps = plan_span(run, [d - timedelta(days=10)], 30, first_published=d - timedelta(days=39), covered=old)
    assert gaps == [] and span.start == d - timedelta(days=10)
