"""Reading the raw landing zone (SPEC §2): featurepipe.raw.read_source and plan_file.

Tiny Parquet files are written with pyarrow into `<tmp>/transactions/landing_date=.../part.parquet`.
Every expected instant is written out by hand as UTC microseconds since the epoch and compared
exactly (via `unix_micros`, so the Python process's zone plays no part).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurepipe.raw import RawSchemaError, plan_file, read_source
from featurepipe.spec import TRANSACTIONS

UTC = timezone.utc
US = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RAW_COLUMNS = ["transaction_id", "user_id", "product_id", "category", "amount", "event_timestamp"]

# hand-computed: 2025-03-02T00:00:00Z = 20149 days * 86_400 s = 1_740_873_600 s since the epoch
MIDNIGHT_US = 1_740_873_600_000_000
# instants with every microsecond digit in play, as (aware UTC datetime, exact UTC micros)
INSTANTS = [
    (datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=UTC), MIDNIGHT_US - 1),
    (datetime(2025, 3, 2, 0, 0, 0, 0, tzinfo=UTC), MIDNIGHT_US),
    (datetime(2025, 3, 2, 0, 0, 0, 1, tzinfo=UTC), MIDNIGHT_US + 1),
    (datetime(2025, 3, 1, 23, 59, 59, 16, tzinfo=UTC), MIDNIGHT_US - 999_984),
    (datetime(2025, 3, 1, 12, 34, 56, 789012, tzinfo=UTC), MIDNIGHT_US - 41_103_210_988),
]
# millisecond files can only hold whole milliseconds
INSTANTS_MS = [
    (datetime(2025, 3, 1, 23, 59, 59, 999000, tzinfo=UTC), MIDNIGHT_US - 1_000),
    (datetime(2025, 3, 2, 0, 0, 0, 0, tzinfo=UTC), MIDNIGHT_US),
    (datetime(2025, 3, 2, 0, 0, 0, 1000, tzinfo=UTC), MIDNIGHT_US + 1_000),
    (datetime(2025, 3, 1, 12, 34, 56, 789000, tzinfo=UTC), MIDNIGHT_US - 41_103_211_000),
]


def _landing(root: Path, landing: str) -> Path:
    path = root / "transactions" / f"landing_date={landing}" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, columns: dict[str, pa.Array]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def _base(n: int, prefix: str) -> dict[str, pa.Array]:
    """Valid string/amount columns for n rows (no event_timestamp)."""
    return {
        "transaction_id": pa.array([f"{prefix}{i}" for i in range(n)], pa.string()),
        "user_id": pa.array(["u1"] * n, pa.string()),
        "product_id": pa.array(["p1"] * n, pa.string()),
        "category": pa.array(["books"] * n, pa.string()),
        "amount": pa.array([float(i + 1) for i in range(n)], pa.float64()),
    }


def _ts_array(datetimes: list[datetime], encoding: str) -> pa.Array:
    """The same instants stored the way a producer might store them."""
    if encoding == "us_utc":
        return pa.array(datetimes, pa.timestamp("us", tz="UTC"))
    if encoding == "ns_utc":  # pandas' default
        return pa.array([(d - EPOCH) // US * 1000 for d in datetimes], pa.timestamp("ns", tz="UTC"))
    if encoding == "ns_naive":
        return pa.array([d.replace(tzinfo=None) for d in datetimes], pa.timestamp("ns"))
    if encoding == "us_naive":  # naive means UTC: the UTC wall time
        return pa.array([d.replace(tzinfo=None) for d in datetimes], pa.timestamp("us"))
    if encoding == "us_new_york":
        zone = ZoneInfo("America/New_York")
        return pa.array([d.astimezone(zone) for d in datetimes], pa.timestamp("us", tz="America/New_York"))
    if encoding == "us_kolkata":  # a half-hour offset
        zone = ZoneInfo("Asia/Kolkata")
        return pa.array([d.astimezone(zone) for d in datetimes], pa.timestamp("us", tz="Asia/Kolkata"))
    if encoding == "ms_utc":
        return pa.array(datetimes, pa.timestamp("ms", tz="UTC"))
    if encoding == "ms_naive":
        return pa.array([d.replace(tzinfo=None) for d in datetimes], pa.timestamp("ms"))
    if encoding == "ms_new_york":
        zone = ZoneInfo("America/New_York")
        return pa.array([d.astimezone(zone) for d in datetimes], pa.timestamp("ms", tz="America/New_York"))
    raise ValueError(encoding)


def _read(spark, root: Path) -> list:
    """read_source, collected once, with the instant as exact UTC micros."""
    from pyspark.sql import functions as F

    df, n_files = read_source(spark, str(root / "transactions"), TRANSACTIONS)
    assert df is not None and n_files >= 1
    rows = df.select(*df.columns, F.unix_micros("event_timestamp").alias("_us")).collect()
    return sorted(rows, key=lambda r: (r["source_file"], r["transaction_id"] or ""))


# --- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding,instants",
    [
        ("us_utc", INSTANTS),
        ("ns_utc", INSTANTS),
        ("ns_naive", INSTANTS),
        ("us_naive", INSTANTS),
        ("us_new_york", INSTANTS),
        ("us_kolkata", INSTANTS),
        ("ms_utc", INSTANTS_MS),
        ("ms_naive", INSTANTS_MS),
        ("ms_new_york", INSTANTS_MS),
    ],
)
def test_every_timestamp_encoding_reads_as_the_same_utc_instants(spark, tmp_path, encoding, instants) -> None:
    datetimes = [d for d, _ in instants]
    _write(_landing(tmp_path, "2025-03-02"), {**_base(len(instants), "t"), "event_timestamp": _ts_array(datetimes, encoding)})
    rows = _read(spark, tmp_path)
    assert [(r["transaction_id"], r["_us"]) for r in rows] == [(f"t{i}", us) for i, (_, us) in enumerate(instants)]


def test_nanosecond_timestamps_are_truncated_to_the_exact_microsecond(spark, tmp_path) -> None:
    # one nanosecond before midnight is before midnight: it must not move into the next day
    ns = [
        MIDNIGHT_US * 1000 - 1,  # 23:59:59.999999999 -> ...999999 us
        (MIDNIGHT_US - 999_984) * 1000,  # 23:59:59.000016000 -> ...000016 us
        (MIDNIGHT_US - 999_984) * 1000 + 999,  # 23:59:59.000016999 -> ...000016 us
        1_735_689_600_123_456_789,  # 2025-01-01T00:00:00.123456789 -> ...123456 us
    ]
    expected = [MIDNIGHT_US - 1, MIDNIGHT_US - 999_984, MIDNIGHT_US - 999_984, 1_735_689_600_123_456]
    _write(_landing(tmp_path, "2025-03-02"), {**_base(4, "t"), "event_timestamp": pa.array(ns, pa.timestamp("ns", tz="UTC"))})
    rows = _read(spark, tmp_path)
    assert [r["_us"] for r in rows] == expected


# --- amounts, strings, optional and extra columns ----------------------------------------------


def _one_ts(n: int) -> pa.Array:
    return pa.array([datetime(2025, 3, 1, 10, tzinfo=UTC)] * n, pa.timestamp("us", tz="UTC"))


@pytest.mark.parametrize(
    "arrow_type,values,expected",
    [
        (pa.int64(), [1, 250, 99999], [1.0, 250.0, 99999.0]),
        (pa.int32(), [3, 7, 11], [3.0, 7.0, 11.0]),
        (pa.float32(), [1.5, 0.25, 1024.125], [1.5, 0.25, 1024.125]),
        (pa.float64(), [0.1, 12.34, 1e-300], [0.1, 12.34, 1e-300]),
    ],
)
def test_numeric_amounts_are_read_as_double(spark, tmp_path, arrow_type, values, expected) -> None:
    from pyspark.sql.types import DoubleType

    cols = {**_base(3, "t"), "amount": pa.array(values, arrow_type), "event_timestamp": _one_ts(3)}
    _write(_landing(tmp_path, "2025-03-01"), cols)
    df, _ = read_source(spark, str(tmp_path / "transactions"), TRANSACTIONS)
    assert df.schema["amount"].dataType == DoubleType()
    assert [r["amount"] for r in df.orderBy("transaction_id").collect()] == expected


def test_dictionary_strings_extra_columns_and_missing_or_all_null_optionals(spark, tmp_path) -> None:
    from pyspark.sql.types import DoubleType, StringType, TimestampType

    # dictionary-encoded ids and categories, plus columns the contract does not know
    _write(
        _landing(tmp_path, "2025-03-01"),
        {
            "transaction_id": pa.array(["d1", "d2", "d3"]).dictionary_encode(),
            "user_id": pa.array(["u1", "u2", "u1"]).dictionary_encode(),
            "product_id": pa.array(["p1", "p2", "p1"], pa.large_string()),
            "category": pa.array(["books", None, "books"]).dictionary_encode(),
            "amount": pa.array([1.0, 2.0, 3.0]),
            "event_timestamp": _one_ts(3),
            "store_id": pa.array([7, 8, 9]),
            "note": pa.array(["x", "y", "z"]),
        },
    )
    # optional columns absent
    missing = _base(2, "m")
    del missing["product_id"], missing["category"]
    _write(_landing(tmp_path, "2025-03-02"), {**missing, "event_timestamp": _one_ts(2)})
    # optional columns present but all null: typed string, and arrow's untyped null
    _write(
        _landing(tmp_path, "2025-03-03"),
        {
            **_base(2, "n"),
            "product_id": pa.nulls(2, pa.string()),
            "category": pa.nulls(2),
            "event_timestamp": _one_ts(2),
        },
    )
    df, n_files = read_source(spark, str(tmp_path / "transactions"), TRANSACTIONS)
    assert n_files == 3
    assert df.columns == [*RAW_COLUMNS, "source_file", "_arrived_at"]
    types = {f.name: f.dataType for f in df.schema.fields}
    assert types == {
        "transaction_id": StringType(),
        "user_id": StringType(),
        "product_id": StringType(),
        "category": StringType(),
        "amount": DoubleType(),
        "event_timestamp": TimestampType(),
        "source_file": StringType(),
        "_arrived_at": TimestampType(),
    }
    got = {r["transaction_id"]: (r["user_id"], r["product_id"], r["category"], r["amount"]) for r in df.collect()}
    assert got == {
        "d1": ("u1", "p1", "books", 1.0),
        "d2": ("u2", "p2", None, 2.0),
        "d3": ("u1", "p1", "books", 3.0),
        "m0": ("u1", None, None, 1.0),
        "m1": ("u1", None, None, 2.0),
        "n0": ("u1", None, None, 1.0),
        "n1": ("u1", None, None, 2.0),
    }


def test_a_landing_zone_mixing_encodings_reads_every_file(spark, tmp_path) -> None:
    """Real landing zones mix producers: each file must come back in the contract's types."""
    t0 = datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
    t0_ms = datetime(2025, 3, 1, 23, 59, 59, 999000, tzinfo=UTC)
    files = {
        "2025-03-01": {**_base(1, "a"), "event_timestamp": _ts_array([t0], "us_utc")},
        "2025-03-02": {**_base(1, "b"), "amount": pa.array([5], pa.int64()), "event_timestamp": _ts_array([t0], "us_utc")},
        "2025-03-03": {**_base(1, "c"), "amount": pa.array([2.5], pa.float32()), "event_timestamp": _ts_array([t0], "us_naive")},
        "2025-03-04": {**_base(1, "d"), "event_timestamp": _ts_array([t0], "ns_utc")},
        "2025-03-05": {**_base(1, "e"), "event_timestamp": _ts_array([t0_ms], "ms_utc")},
        "2025-03-06": {**_base(1, "f"), "amount": pa.array([7], pa.int32()), "event_timestamp": _ts_array([t0], "us_new_york")},
    }
    for landing, cols in files.items():
        _write(_landing(tmp_path, landing), cols)
    rows = _read(spark, tmp_path)
    assert [(r["transaction_id"], r["amount"], r["_us"]) for r in rows] == [
        ("a0", 1.0, MIDNIGHT_US - 1),
        ("b0", 5.0, MIDNIGHT_US - 1),
        ("c0", 2.5, MIDNIGHT_US - 1),
        ("d0", 1.0, MIDNIGHT_US - 1),
        ("e0", 1.0, MIDNIGHT_US - 1_000),
        ("f0", 7.0, MIDNIGHT_US - 1),
    ]


def test_source_file_is_the_files_path(spark, tmp_path) -> None:
    root = tmp_path / "raw zone"  # a space: the path, not a URL-encoded URI
    first = _write(_landing(root, "2025-03-01"), {**_base(2, "a"), "event_timestamp": _one_ts(2)})
    second = _write(_landing(root, "2025-03-02"), {**_base(1, "b"), "event_timestamp": _one_ts(1)})
    df, _ = read_source(spark, str(root / "transactions"), TRANSACTIONS)
    got = sorted((r["transaction_id"], r["source_file"]) for r in df.collect())
    assert got == [("a0", str(first)), ("a1", str(first)), ("b0", str(second))]


def test_an_empty_landing_zone_reads_as_nothing(spark, tmp_path) -> None:
    (tmp_path / "transactions").mkdir()
    assert read_source(spark, str(tmp_path / "transactions"), TRANSACTIONS) == (None, 0)


# --- schema errors: fail before anything is read, naming file and column ------------------------


def _schema(**overrides: pa.DataType | None) -> pa.Schema:
    types = {
        "transaction_id": pa.string(),
        "user_id": pa.string(),
        "product_id": pa.string(),
        "category": pa.string(),
        "amount": pa.float64(),
        "event_timestamp": pa.timestamp("us", tz="UTC"),
    }
    types.update(overrides)
    return pa.schema([(name, t) for name, t in types.items() if t is not None])


@pytest.mark.parametrize("column", ["transaction_id", "user_id", "amount", "event_timestamp"])
def test_plan_file_rejects_a_missing_required_column(column) -> None:
    path = "/landing/transactions/landing_date=2025-03-01/part.parquet"
    with pytest.raises(RawSchemaError) as err:
        plan_file(path, _schema(**{column: None}), TRANSACTIONS)
    assert path in str(err.value) and column in str(err.value)


@pytest.mark.parametrize(
    "column,arrow_type",
    [
        ("amount", pa.string()),
        ("event_timestamp", pa.string()),
        ("user_id", pa.int64()),
        ("transaction_id", pa.int64()),
        ("event_timestamp", pa.int64()),
        ("event_timestamp", pa.date32()),
        ("amount", pa.bool_()),
    ],
)
def test_plan_file_rejects_a_required_column_of_the_wrong_type(column, arrow_type) -> None:
    path = "/landing/transactions/landing_date=2025-03-01/part.parquet"
    with pytest.raises(RawSchemaError) as err:
        plan_file(path, _schema(**{column: arrow_type}), TRANSACTIONS)
    assert path in str(err.value) and f"'{column}'" in str(err.value)


def test_plan_file_accepts_absent_optional_columns() -> None:
    plan = plan_file("f.parquet", _schema(product_id=None, category=None), TRANSACTIONS)
    assert [r.name for r in plan] == RAW_COLUMNS


@pytest.mark.parametrize(
    "column,array",
    [
        ("amount", None),
        ("user_id", None),
        ("amount", pa.array(["12.50"])),
        ("event_timestamp", pa.array(["2025-03-01T10:00:00Z"])),
        ("user_id", pa.array([42], pa.int64())),
    ],
)
def test_read_source_names_the_bad_file_and_column(spark, tmp_path, column, array) -> None:
    good = _write(_landing(tmp_path, "2025-03-01"), {**_base(1, "g"), "event_timestamp": _one_ts(1)})
    cols = {**_base(1, "b"), "event_timestamp": _one_ts(1)}
    if array is None:
        del cols[column]
    else:
        cols[column] = array
    bad = _write(_landing(tmp_path, "2025-03-02"), cols)
    with pytest.raises(RawSchemaError) as err:
        read_source(spark, str(tmp_path / "transactions"), TRANSACTIONS)
    message = str(err.value)
    assert str(bad) in message and f"'{column}'" in message
    assert str(good) not in message


def test_the_sensors_question_opens_only_files_that_arrived_late_enough(tmp_path) -> None:
    """`latest_event_date(since=D)` skips files whose arrival (+ the future tolerance) is before D's
    midnight: they cannot hold a valid event of D or later. An unreadable old file proves it is not opened."""
    import os

    from featurepipe.raw import latest_event_date

    day = datetime(2025, 3, 2, tzinfo=UTC)
    zone = tmp_path / "transactions"
    old = zone / "landing_date=2025-02-01" / "part.parquet"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"not parquet: opening this file would fail")
    arrived = (day - TRANSACTIONS.future_tolerance - timedelta(seconds=1)).timestamp()
    os.utime(old, (arrived, arrived))
    new = zone / "landing_date=2025-03-02" / "part.parquet"
    new.parent.mkdir(parents=True)
    pq.write_table(pa.table({"transaction_id": ["t1"], "user_id": ["u1"], "amount": [1.0],
                             "event_timestamp": pa.array([day + timedelta(hours=5)], pa.timestamp("us", "UTC"))}), new)

    assert latest_event_date(str(zone), TRANSACTIONS, since=day.date()) == day.date()
    new.unlink()
    assert latest_event_date(str(zone), TRANSACTIONS, since=day.date()) is None
    with pytest.raises(Exception):  # the whole zone: the old file is opened
        latest_event_date(str(zone), TRANSACTIONS)
