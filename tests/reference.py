"""Independent reference implementation of SPEC §2–§4, for the tests.

Plain pandas + pyarrow, written straight from /work/shared/SPEC.md. It deliberately
imports nothing from `featurepipe` or `jobs` (not even `featurepipe.spec`): a bug shared
with the production code must not be able to hide behind a shared definition.

Everything is done the slow, obvious way: one pass per as-of instant T with boolean masks,
exact sums with `math.fsum`. Good for test-sized data (tens of users x ~120 days x ~10k rows).

Choices where the SPEC is silent (keep in sync with the README):
- An id (`transaction_id`, `user_id`) that is empty *or only whitespace* is "empty". Ids are
  otherwise used verbatim (no trimming, no case folding).
- `amount` null and NaN are the same reason (`amount_missing`: pyarrow/pandas write NaN as
  null anyway); +-inf is `amount_not_finite`; <= 0 is `amount_not_positive`.
- A row breaking several rules gets all reasons, joined with "," in rule order.
- Limits beyond SPEC §2 (issue "no day lost"; README "Raw rules"): any string longer than 256
  characters is `<column>_too_long`; an amount above 1e9 is `amount_too_large`; an
  event_timestamp more than one hour after its file's modification time (its arrival) is
  `event_timestamp_in_future`.
- A `category` of "" is a non-null category (SPEC only excludes null).
- Dedup ties beyond (event_timestamp, amount) are broken by user_id, product_id, category
  (nulls last), then source file, so the result is deterministic.
- Schema check: required columns must exist; ids/strings must be string (or all-null),
  amount floating point (float32/float64, or all-null), event_timestamp a timestamp of any
  unit (or all-null); integer/decimal amounts are widened to double. Otherwise `SchemaError` naming file and column.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# --- the contract, hand-written from SPEC §2/§3 -------------------------------------------

RAW_COLUMNS = ["transaction_id", "user_id", "product_id", "category", "amount", "event_timestamp"]
REQUIRED = {"transaction_id", "user_id", "amount", "event_timestamp"}
SOURCE_FILE = "source_file"

COUNT_FEATURES = ["transactions_7d", "transactions_30d", "transactions_90d"]
FLOAT_FEATURES = [
    "total_spent_7d",
    "total_spent_30d",
    "total_spent_90d",
    "avg_basket_size_30d",
    "max_purchase_90d",
]
STRING_FEATURES = ["favorite_category"]
FEATURE_COLUMNS = [
    "transactions_7d",
    "transactions_30d",
    "transactions_90d",
    "total_spent_7d",
    "total_spent_30d",
    "total_spent_90d",
    "avg_basket_size_30d",
    "max_purchase_90d",
    "favorite_category",
]
ROW_EXISTS_DAYS = 91  # a row (u, T) exists iff u has a valid event in [T - 91d, T)

# reasons, in rule order
R_TXN_MISSING = "transaction_id_missing"
R_TXN_EMPTY = "transaction_id_empty"
R_USER_MISSING = "user_id_missing"
R_USER_EMPTY = "user_id_empty"
R_AMOUNT_MISSING = "amount_missing"
R_AMOUNT_NOT_FINITE = "amount_not_finite"
R_AMOUNT_NOT_POSITIVE = "amount_not_positive"
R_TS_MISSING = "event_timestamp_missing"
R_AMOUNT_TOO_LARGE = "amount_too_large"
R_TS_IN_FUTURE = "event_timestamp_in_future"
MAX_TEXT = 256
MAX_AMOUNT = 1e9
FUTURE_TOLERANCE = timedelta(hours=1)
ARRIVED_AT = "arrived_at"  # the file's modification time; used by the rules, dropped by split_valid


class SchemaError(ValueError):
    """A raw file lacks a required column or has one of the wrong type (SPEC §2)."""


# --- §2 raw input -----------------------------------------------------------------------


def _parquet_files(root: Path) -> list[Path]:
    files = []
    for p in sorted(root.rglob("*.parquet")):
        rel = p.relative_to(root)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if p.is_file():
            files.append(p)
    return files


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def _check_type(path: Path, name: str, t: pa.DataType) -> None:
    if name == "amount":
        # README: integer and decimal amounts are accepted and widened to double
        ok = pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_null(t)
    elif name == "event_timestamp":
        ok = pa.types.is_timestamp(t) or pa.types.is_null(t)
    else:
        ok = _is_string(t)
    if not ok:
        raise SchemaError(f"{path}: column {name!r} has type {t}, which is not allowed")


def _strings(col: pa.ChunkedArray | None, n: int) -> pd.Series:
    if col is None or pa.types.is_null(col.type):
        return pd.Series([None] * n, dtype=object)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    values = col.to_pylist()
    return pd.Series(values, dtype=object)


def _timestamps_utc(col: pa.ChunkedArray, n: int) -> pd.Series:
    """Any unit, tz-aware (an instant) or naive (means UTC) -> datetime64[ns, UTC]."""
    if pa.types.is_null(col.type):
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    # Arrow stores every timestamp as an integer count of `unit` since the Unix epoch in UTC;
    # the tz field is display metadata only. So the stored integers are UTC for both kinds
    # (an aware value is an instant; a naive value is read as UTC wall time = the same number).
    factor = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[col.type.unit]
    nulls = col.is_null().to_numpy(zero_copy_only=False)
    counts = col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).astype("int64")
    limit = np.iinfo("int64").max // factor
    if (np.abs(counts[~nulls]) > limit).any():
        raise ValueError("timestamp out of the datetime64[ns] range")
    ns = counts * factor
    out = pd.Series(pd.to_datetime(ns, unit="ns", utc=True))
    out[nulls] = pd.NaT
    return out.astype("datetime64[ns, UTC]")


def load_raw(raw_transactions_dir: str | Path) -> pd.DataFrame:
    """Every *.parquet below the folder (recursively; names starting with _ or . skipped).

    Returns the SPEC §2 columns (missing optional columns as null; extra columns dropped),
    `event_timestamp` as datetime64[ns, UTC], `amount` float64 (null -> NaN), strings as
    object (null -> None), plus `source_file` (the file's path). Raises `SchemaError` for a
    file missing a required column or holding one of the wrong type.
    """
    root = Path(raw_transactions_dir)
    frames = []
    for path in _parquet_files(root):
        table = pq.ParquetFile(path).read()
        names = set(table.column_names)
        for name in RAW_COLUMNS:
            if name not in names:
                if name in REQUIRED:
                    raise SchemaError(f"{path}: required column {name!r} is missing")
                continue
            _check_type(path, name, table.schema.field(name).type)
        n = table.num_rows
        get = lambda c: table.column(c) if c in names else None  # noqa: E731
        amount = get("amount")
        if pa.types.is_null(amount.type):
            amount_values = np.full(n, np.nan)
        else:
            amount_values = amount.cast(pa.float64()).to_numpy(zero_copy_only=False).astype("float64")
        frames.append(
            pd.DataFrame(
                {
                    "transaction_id": _strings(get("transaction_id"), n),
                    "user_id": _strings(get("user_id"), n),
                    "product_id": _strings(get("product_id"), n),
                    "category": _strings(get("category"), n),
                    "amount": pd.Series(amount_values, dtype="float64"),
                    "event_timestamp": _timestamps_utc(get("event_timestamp"), n),
                    SOURCE_FILE: pd.Series([str(path)] * n, dtype=object),
                    ARRIVED_AT: pd.Series([pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC")] * n,
                                          dtype="datetime64[ns, UTC]"),
                }
            )
        )
    if not frames:
        return _empty_raw()
    out = pd.concat(frames, ignore_index=True)
    out["event_timestamp"] = out["event_timestamp"].astype("datetime64[ns, UTC]")
    return out


def _empty_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": pd.Series([], dtype=object),
            "user_id": pd.Series([], dtype=object),
            "product_id": pd.Series([], dtype=object),
            "category": pd.Series([], dtype=object),
            "amount": pd.Series([], dtype="float64"),
            "event_timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            SOURCE_FILE: pd.Series([], dtype=object),
            ARRIVED_AT: pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )


def _id_reasons(value, missing: str, empty: str) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return [missing]
    if not isinstance(value, str) or value.strip() == "":
        return [empty]
    return []


def _too_long(row, column: str) -> list[str]:
    value = row[column]
    return [f"{column}_too_long"] if isinstance(value, str) and len(value) > MAX_TEXT else []


def row_reasons(row) -> list[str]:
    """Every rule the row breaks, in rule order (empty list = valid)."""
    reasons = []
    reasons += _id_reasons(row["transaction_id"], R_TXN_MISSING, R_TXN_EMPTY)
    reasons += _too_long(row, "transaction_id")
    reasons += _id_reasons(row["user_id"], R_USER_MISSING, R_USER_EMPTY)
    reasons += _too_long(row, "user_id")
    reasons += _too_long(row, "product_id")
    reasons += _too_long(row, "category")
    amount = row["amount"]
    if amount is None or pd.isna(amount):
        reasons.append(R_AMOUNT_MISSING)
    elif not math.isfinite(float(amount)):
        reasons.append(R_AMOUNT_NOT_FINITE)
    elif not float(amount) > 0:
        reasons.append(R_AMOUNT_NOT_POSITIVE)
    elif float(amount) > MAX_AMOUNT:
        reasons.append(R_AMOUNT_TOO_LARGE)
    ts = row["event_timestamp"]
    if ts is None or pd.isna(ts):
        reasons.append(R_TS_MISSING)
    elif ARRIVED_AT in row and ts > row[ARRIVED_AT] + FUTURE_TOLERANCE:
        reasons.append(R_TS_IN_FUTURE)
    return reasons


def split_valid(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(valid rows, invalid rows with a `reason` column); both keep raw's columns (but the arrival
    time, which only the rules use) and index."""
    reasons = [",".join(row_reasons(row)) for _, row in raw.iterrows()]
    bad = pd.Series([r != "" for r in reasons], index=raw.index, dtype=bool)
    raw = raw.drop(columns=[ARRIVED_AT], errors="ignore")
    valid = raw[~bad].copy()
    invalid = raw[bad].copy()
    invalid["reason"] = pd.Series([r for r in reasons if r], index=invalid.index, dtype=object)
    return valid, invalid


def deduplicate(valid: pd.DataFrame) -> pd.DataFrame:
    """One row per transaction_id: earliest event_timestamp, then smallest amount, wins.

    Call on *validated* rows only (validation comes first). Result sorted by transaction_id,
    with a fresh index.
    """
    keys = ["transaction_id", "event_timestamp", "amount", "user_id", "product_id", "category"]
    if SOURCE_FILE in valid.columns:
        keys.append(SOURCE_FILE)
    ordered = valid.sort_values(keys, na_position="last", kind="mergesort")
    return ordered.drop_duplicates("transaction_id", keep="first").reset_index(drop=True)


# --- §3 features -------------------------------------------------------------------------


def _as_of_instant(d) -> pd.Timestamp:
    """A date (or a UTC-midnight datetime/Timestamp/string) -> T as a tz-aware UTC Timestamp."""
    if isinstance(d, date) and not isinstance(d, datetime):
        return pd.Timestamp(datetime(d.year, d.month, d.day, tzinfo=timezone.utc))
    ts = pd.Timestamp(d)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if ts != ts.normalize():
        raise ValueError(f"as-of instant must be a UTC midnight, got {d!r}")
    return ts


def _favorite(categories: Iterable) -> str | None:
    counts = Counter(c for c in categories if c is not None and not (isinstance(c, float) and math.isnan(c)))
    if not counts:
        return None
    best = max(counts.values())
    return min(c for c, k in counts.items() if k == best)


def _empty_features() -> pd.DataFrame:
    cols = {"user_id": pd.Series([], dtype=object), "event_timestamp": pd.Series([], dtype="datetime64[ns, UTC]")}
    for c in COUNT_FEATURES:
        cols[c] = pd.Series([], dtype="int64")
    for c in FLOAT_FEATURES:
        cols[c] = pd.Series([], dtype="float64")
    cols["favorite_category"] = pd.Series([], dtype=object)
    return pd.DataFrame(cols)


def features_as_of(events: pd.DataFrame, as_of_dates: Iterable) -> pd.DataFrame:
    """SPEC §3 feature rows for every T in `as_of_dates`, from valid, deduplicated events.

    Window Nd as of T: T - N days <= event_timestamp < T. A row (u, T) exists iff u has an
    event in [T - 91 days, T). Sorted by (user_id, event_timestamp).
    """
    instants = pd.to_datetime(events["event_timestamp"], utc=True).astype("datetime64[ns, UTC]")
    with_ns = events.assign(_ns=instants.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64"))
    per_user = {}  # user -> (event instants as int ns since epoch UTC, amounts, categories)
    for user, g in with_ns.groupby("user_id", sort=True):
        cats = g["category"] if "category" in g.columns else pd.Series([None] * len(g))
        per_user[user] = (
            g["_ns"].to_numpy(dtype="int64"),
            g["amount"].to_numpy(dtype="float64"),
            cats.to_numpy(dtype=object),
        )
    day_ns = 86_400 * 1_000_000_000

    rows = []
    for T in sorted({_as_of_instant(d) for d in as_of_dates}):
        t = T.value  # ns since epoch, UTC
        for user, (ts, amounts, cats) in per_user.items():

            def window(n_days: int) -> np.ndarray:
                return (ts >= t - n_days * day_ns) & (ts < t)

            if not window(ROW_EXISTS_DAYS).any():
                continue
            w7, w30, w90 = window(7), window(30), window(90)
            n30 = int(w30.sum())
            sum30 = math.fsum(amounts[w30])
            rows.append(
                {
                    "user_id": user,
                    "event_timestamp": T,
                    "transactions_7d": int(w7.sum()),
                    "transactions_30d": n30,
                    "transactions_90d": int(w90.sum()),
                    "total_spent_7d": math.fsum(amounts[w7]),
                    "total_spent_30d": sum30,
                    "total_spent_90d": math.fsum(amounts[w90]),
                    "avg_basket_size_30d": sum30 / n30 if n30 else 0.0,
                    "max_purchase_90d": float(max(amounts[w90])) if w90.any() else 0.0,
                    "favorite_category": _favorite(cats[w90]),
                }
            )
    if not rows:
        return _empty_features()
    out = pd.DataFrame(rows, columns=["user_id", "event_timestamp", *FEATURE_COLUMNS])
    out["event_timestamp"] = out["event_timestamp"].astype("datetime64[ns, UTC]")
    for c in COUNT_FEATURES:
        out[c] = out[c].astype("int64")
    for c in FLOAT_FEATURES:
        out[c] = out[c].astype("float64")
    out["favorite_category"] = out["favorite_category"].astype(object)
    return out.sort_values(["user_id", "event_timestamp"], kind="mergesort").reset_index(drop=True)


# --- issue 13: product features, from the same valid, deduplicated transactions -------------

PRODUCT_COUNT_FEATURES = ["purchases_7d", "purchases_30d", "buyers_30d", "popularity_rank_30d"]
PRODUCT_FLOAT_FEATURES = ["revenue_30d"]
PRODUCT_FEATURE_COLUMNS = ["purchases_7d", "purchases_30d", "buyers_30d", "revenue_30d", "main_category",
                           "popularity_rank_30d"]
PRODUCT_ROW_EXISTS_DAYS = 31  # one day past the longest window (30d): the zero row


def product_features_as_of(events: pd.DataFrame, as_of_dates: Iterable) -> pd.DataFrame:
    """One row per (product_id, T) iff the product has a transaction in [T - 31 days, T).

    A transaction whose product_id is null, empty or whitespace belongs to no product.
    purchases_Nd = transactions in [T - N days, T); buyers_30d = distinct user_ids there;
    revenue_30d = exact sum of their amounts (0.0 if none); main_category = their most frequent
    non-null category, ties -> smallest, None if none; popularity_rank_30d = 1 for the most
    purchases_30d among the products with a row at T, ties by product_id ascending, 1..n.
    """
    day_ns = 86_400 * 1_000_000_000
    instants = pd.to_datetime(events["event_timestamp"], utc=True).astype("datetime64[ns, UTC]")
    ns = instants.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64")
    per_product: dict[str, list[tuple[int, float, str, str | None]]] = {}
    for t, amount, user, product, category in zip(ns, events["amount"], events["user_id"], events["product_id"],
                                                  events["category"]):
        if isinstance(product, str) and product.strip() != "":
            per_product.setdefault(product, []).append((int(t), float(amount), user, category))
    rows = []
    for T in sorted({_as_of_instant(d) for d in as_of_dates}):
        t = T.value
        at_t = []
        for product, txns in sorted(per_product.items()):
            def window(n_days: int) -> list[tuple[int, float, str, str | None]]:
                return [x for x in txns if t - n_days * day_ns <= x[0] < t]

            if not window(PRODUCT_ROW_EXISTS_DAYS):
                continue
            w7, w30 = window(7), window(30)
            at_t.append({
                "product_id": product,
                "event_timestamp": T,
                "purchases_7d": len(w7),
                "purchases_30d": len(w30),
                "buyers_30d": len({x[2] for x in w30}),
                "revenue_30d": math.fsum(x[1] for x in w30),
                "main_category": _favorite(x[3] for x in w30),
            })
        for rank, row in enumerate(sorted(at_t, key=lambda r: (-r["purchases_30d"], r["product_id"])), start=1):
            row["popularity_rank_30d"] = rank
        rows.extend(at_t)
    out = pd.DataFrame(rows, columns=["product_id", "event_timestamp", *PRODUCT_FEATURE_COLUMNS])
    out["event_timestamp"] = out["event_timestamp"].astype("datetime64[ns, UTC]")
    for c in PRODUCT_COUNT_FEATURES:
        out[c] = out[c].astype("int64")
    out["revenue_30d"] = out["revenue_30d"].astype("float64")
    return out.sort_values(["product_id", "event_timestamp"], kind="mergesort").reset_index(drop=True)


def reference_product_features(raw_transactions_dir: str | Path, start: date, end: date) -> pd.DataFrame:
    """load -> validate -> deduplicate -> product features for every midnight start..end inclusive."""
    valid, _invalid = split_valid(load_raw(raw_transactions_dir))
    return product_features_as_of(deduplicate(valid), midnights(start, end))


def midnights(start: date, end: date) -> list[date]:
    """Every date from start to end inclusive."""
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def reference_features(raw_transactions_dir: str | Path, start: date, end: date) -> pd.DataFrame:
    """load -> validate -> deduplicate -> features for every midnight start..end inclusive."""
    valid, _invalid = split_valid(load_raw(raw_transactions_dir))
    return features_as_of(deduplicate(valid), midnights(start, end))


# --- §4 point-in-time join ---------------------------------------------------------------


def point_in_time(features: pd.DataFrame, entities: pd.DataFrame, no_history: bool = False) -> pd.DataFrame:
    """For each entity row: the latest feature row of its user with T <= event_timestamp.

    Entity `event_timestamp` may be tz-aware (any zone) or naive (= UTC). No TTL limit.
    Output: the entity frame unchanged (same order, index, columns and dtypes) plus the
    feature columns; with no matching row counts are <NA> (Int64), floats NaN, category None,
    or with `no_history` what SPEC §4 gives such a row: counts 0, floats 0.0, category None.
    """
    clash = [c for c in FEATURE_COLUMNS if c in entities.columns]
    if clash:
        raise ValueError(f"entity columns clash with feature columns: {clash}")

    by_user: dict[str, tuple[list[pd.Timestamp], list[dict]]] = {}
    f = features.copy()
    f["event_timestamp"] = pd.to_datetime(f["event_timestamp"], utc=True)
    for user, group in f.sort_values("event_timestamp", kind="mergesort").groupby("user_id", sort=False):
        by_user[user] = (list(group["event_timestamp"]), group[FEATURE_COLUMNS].to_dict("records"))

    # naive -> UTC, aware (any zone) -> UTC; strings (a CSV entity file) parsed as ISO 8601
    when = pd.to_datetime(entities["event_timestamp"], utc=True, format="ISO8601")
    picked: list[dict | None] = []
    for user, t in zip(entities["user_id"], when):
        hit = None
        if user in by_user and not pd.isna(t):
            times, records = by_user[user]
            i = bisect.bisect_right(times, t)  # times[:i] <= t
            if i:
                hit = records[i - 1]
        if hit is None and no_history:
            hit = {**{c: 0 for c in COUNT_FEATURES}, **{c: 0.0 for c in FLOAT_FEATURES}, "favorite_category": None}
        picked.append(hit)

    out = entities.copy()
    for c in COUNT_FEATURES:
        out[c] = pd.array([None if r is None else int(r[c]) for r in picked], dtype="Int64")
    for c in FLOAT_FEATURES:
        out[c] = np.array([np.nan if r is None else float(r[c]) for r in picked], dtype="float64")
    out["favorite_category"] = pd.Series(
        [None if r is None else r["favorite_category"] for r in picked], index=out.index, dtype=object
    )
    return out


# --- issue 13: the ratings source and its features -----------------------------------------
# Hand-written from the issue: `$RAW/ratings/…` with rating_id, user_id, product_id, stars (1-5),
# event_timestamp, all required. Our choices (README "Ratings"): stars arrive as any integer or
# floating type; the rules for stars are exclusive, in order: missing (null/NaN), not finite,
# below 1 (`stars_too_small`), above 5 (`stars_too_large`), not a whole number
# (`stars_not_integer`). Ids follow the transaction rules (missing, empty/blank, longer than 256).
# Dedup by rating_id: earliest event_timestamp, then fewest stars, then user_id, product_id, file.

RATING_COLUMNS = ["rating_id", "user_id", "product_id", "stars", "event_timestamp"]
RATING_FEATURES = {"product": ["avg_rating_90d", "ratings_90d"], "user": ["ratings_given_90d"]}


def load_ratings(raw_ratings_dir: str | Path) -> pd.DataFrame:
    """Every *.parquet below the folder (names starting with _ or . skipped): the columns above,
    stars as float64, event_timestamp as datetime64[ns, UTC], plus source_file and arrived_at."""
    root = Path(raw_ratings_dir)
    frames = []
    for path in _parquet_files(root) if root.exists() else []:
        table = pq.ParquetFile(path).read()
        names = set(table.column_names)
        for name in RATING_COLUMNS:
            if name not in names:
                raise SchemaError(f"{path}: required column {name!r} is missing")
            t = table.schema.field(name).type
            ok = {"stars": pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t),
                  "event_timestamp": pa.types.is_timestamp(t) or pa.types.is_null(t)}.get(name, _is_string(t))
            if not ok:
                raise SchemaError(f"{path}: column {name!r} has type {t}, which is not allowed")
        n = table.num_rows
        stars = table.column("stars")
        frames.append(pd.DataFrame({
            "rating_id": _strings(table.column("rating_id"), n),
            "user_id": _strings(table.column("user_id"), n),
            "product_id": _strings(table.column("product_id"), n),
            "stars": pd.Series(np.full(n, np.nan) if pa.types.is_null(stars.type)
                               else stars.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype="float64"),
            "event_timestamp": _timestamps_utc(table.column("event_timestamp"), n),
            SOURCE_FILE: pd.Series([str(path)] * n, dtype=object),
            ARRIVED_AT: pd.Series([pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC")] * n,
                                  dtype="datetime64[ns, UTC]"),
        }))
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in RATING_COLUMNS + [SOURCE_FILE]}).assign(
            stars=pd.Series([], dtype="float64"), event_timestamp=pd.Series([], dtype="datetime64[ns, UTC]"))
    return pd.concat(frames, ignore_index=True)


def rating_reasons(row) -> list[str]:
    reasons = []
    for column in ("rating_id", "user_id", "product_id"):
        reasons += _id_reasons(row[column], f"{column}_missing", f"{column}_empty")
        reasons += _too_long(row, column)
    stars = row["stars"]
    if stars is None or pd.isna(stars):
        reasons.append("stars_missing")
    elif not math.isfinite(float(stars)):
        reasons.append("stars_not_finite")
    elif float(stars) < 1:
        reasons.append("stars_too_small")
    elif float(stars) > 5:
        reasons.append("stars_too_large")
    elif float(stars) != math.floor(float(stars)):
        reasons.append("stars_not_integer")
    ts = row["event_timestamp"]
    if ts is None or pd.isna(ts):
        reasons.append("event_timestamp_missing")
    elif ARRIVED_AT in row and ts > row[ARRIVED_AT] + FUTURE_TOLERANCE:
        reasons.append("event_timestamp_in_future")
    return reasons


def split_valid_ratings(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    reasons = [",".join(rating_reasons(row)) for _, row in raw.iterrows()]
    bad = pd.Series([r != "" for r in reasons], index=raw.index, dtype=bool)
    raw = raw.drop(columns=[ARRIVED_AT], errors="ignore")
    valid, invalid = raw[~bad].copy(), raw[bad].copy()
    invalid["reason"] = pd.Series([r for r in reasons if r], index=invalid.index, dtype=object)
    return valid, invalid


def deduplicate_ratings(valid: pd.DataFrame) -> pd.DataFrame:
    keys = ["rating_id", "event_timestamp", "stars", "user_id", "product_id"]
    if SOURCE_FILE in valid.columns:
        keys.append(SOURCE_FILE)
    ordered = valid.sort_values(keys, na_position="last", kind="mergesort")
    return ordered.drop_duplicates("rating_id", keep="first").reset_index(drop=True)


def rating_features_as_of(ratings: pd.DataFrame, as_of_dates: Iterable, entity: str) -> pd.DataFrame:
    """`entity` "product": avg_rating_90d (mean stars, None if none), ratings_90d per product_id;
    "user": ratings_given_90d per user_id. A row iff a rating in [T - 91 days, T)."""
    key = f"{entity}_id"
    day_ns = 86_400 * 1_000_000_000
    ns = pd.to_datetime(ratings["event_timestamp"], utc=True).dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view("int64")
    per_key: dict[str, list[tuple[int, float]]] = {}
    for t, stars, k in zip(ns, ratings["stars"], ratings[key]):
        per_key.setdefault(k, []).append((int(t), float(stars)))
    rows = []
    for T in sorted({_as_of_instant(d) for d in as_of_dates}):
        t = T.value
        for k, items in sorted(per_key.items()):
            if not any(t - ROW_EXISTS_DAYS * day_ns <= x < t for x, _ in items):
                continue
            window = [s for x, s in items if t - 90 * day_ns <= x < t]
            if entity == "product":
                rows.append({key: k, "event_timestamp": T, "ratings_90d": len(window),
                             "avg_rating_90d": math.fsum(window) / len(window) if window else None})
            else:
                rows.append({key: k, "event_timestamp": T, "ratings_given_90d": len(window)})
    out = pd.DataFrame(rows, columns=[key, "event_timestamp", *RATING_FEATURES[entity]])
    out["event_timestamp"] = out["event_timestamp"].astype("datetime64[ns, UTC]")
    if entity == "product":  # None, not NaN, where there is no average
        average = out["avg_rating_90d"].astype(object)
        out["avg_rating_90d"] = average.where(average.notna(), None)
    return out.sort_values([key, "event_timestamp"], kind="mergesort").reset_index(drop=True)


def reference_rating_features(raw_ratings_dir: str | Path, start: date, end: date, entity: str) -> pd.DataFrame:
    valid, _invalid = split_valid_ratings(load_ratings(raw_ratings_dir))
    return rating_features_as_of(deduplicate_ratings(valid), midnights(start, end), entity)
