"""The synthetic landing-zone generator: layout, types, determinism, realism and every dirty kind."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurepipe.generate import CONFLICT_KINDS, INVALID_REASONS, MAX_LATENESS_DAYS, generate

START = dt.date(2025, 1, 1)
DAYS = 120
USERS = 30
SEED = 11
US_PER_DAY = 86_400_000_000
EPOCH = dt.date(1970, 1, 1)
COLUMNS = ["transaction_id", "user_id", "product_id", "category", "amount", "event_timestamp"]


def _files(out: Path) -> list[Path]:
    return sorted((out / "transactions").glob("landing_date=*/*.parquet"))


def _landing(path: Path) -> dt.date:
    return dt.date.fromisoformat(path.parent.name.split("=", 1)[1])


def _read(out: Path) -> list[dict]:
    """Every row with its landing date, file, and event time as UTC microseconds (None if null)."""
    rows = []
    for path in _files(out):
        table = pq.read_table(path)
        ts = table["event_timestamp"]
        # tz-naive values mean UTC (SPEC §2); the int64 of a tz-aware timestamp is UTC already
        us = ts.cast(pa.timestamp("us", tz=ts.type.tz)).cast(pa.int64()).to_pylist()
        for row, ts_us in zip(table.drop_columns(["event_timestamp"]).to_pylist(), us):
            rows.append({**row, "ts_us": ts_us, "landing": _landing(path), "file": str(path)})
    return rows


def _reason(row: dict) -> str | None:
    """The SPEC §2 rule a row breaks, or None."""
    amount = row["amount"]
    if row["transaction_id"] is None:
        return "null_transaction_id"
    if row["transaction_id"] == "":
        return "empty_transaction_id"
    if row["user_id"] is None:
        return "null_user_id"
    if row["user_id"] == "":
        return "empty_user_id"
    if amount is None:
        return "null_amount"
    if math.isnan(amount):
        return "nan_amount"
    if math.isinf(amount):
        return "inf_amount"
    if amount == 0:
        return "zero_amount"
    if amount < 0:
        return "negative_amount"
    if row["ts_us"] is None:
        return "null_event_timestamp"
    return None


def _payload(row: dict) -> tuple:
    return tuple(row[c] for c in ("transaction_id", "user_id", "product_id", "category", "amount", "ts_us"))


def _event_day(row: dict) -> dt.date:
    return EPOCH + dt.timedelta(days=row["ts_us"] // US_PER_DAY)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    messages: list[str] = []
    summary = generate(str(out), USERS, START, DAYS, SEED, progress=messages.append)
    return out, summary, _read(out), messages


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    out = tmp_path_factory.mktemp("dirty")
    summary = generate(str(out), USERS, START, DAYS, SEED, dirty=True, progress=lambda _: None)
    rows = _read(out)
    valid = [r for r in rows if _reason(r) is None]
    return out, summary, rows, valid


# --- determinism -----------------------------------------------------------------


@pytest.mark.parametrize("dirty_mode", [False, True])
def test_same_seed_writes_the_same_rows(tmp_path, dirty_mode):
    a, b = tmp_path / "a", tmp_path / "b"
    generate(str(a), 12, START, 20, 5, dirty=dirty_mode, progress=lambda _: None)
    generate(str(b), 12, START, 20, 5, dirty=dirty_mode, progress=lambda _: None)
    files_a, files_b = _files(a), _files(b)
    assert [p.relative_to(a) for p in files_a] == [p.relative_to(b) for p in files_b]
    for fa, fb in zip(files_a, files_b):
        # bytes, not Table.equals: NaN amounts never compare equal
        assert fa.read_bytes() == fb.read_bytes(), fa.relative_to(a)
    assert sum(pq.read_metadata(f).num_rows for f in files_a) > 50


def test_another_seed_writes_other_rows(tmp_path, clean):
    _, _, rows, _ = clean
    generate(str(tmp_path), USERS, START, DAYS, SEED + 1, progress=lambda _: None)
    other = _read(tmp_path)
    assert {_payload(r) for r in rows} != {_payload(r) for r in other}


# --- layout and types ------------------------------------------------------------


def test_one_landing_file_per_day(clean):
    out, summary, rows, _ = clean
    files = _files(out)
    assert [_landing(p) for p in files] == [START + dt.timedelta(days=d) for d in range(DAYS)]
    assert all(p.name == "part-00000.parquet" for p in files)
    assert (summary.files, summary.rows) == (DAYS, len(rows))
    assert (summary.first_landing, summary.last_landing) == (START, START + dt.timedelta(days=DAYS - 1))


def test_clean_files_have_the_contract_schema_in_utc_microseconds(clean):
    out, _, _, _ = clean
    expected = pa.schema(
        [
            ("transaction_id", pa.string()),
            ("user_id", pa.string()),
            ("product_id", pa.string()),
            ("category", pa.string()),
            ("amount", pa.float64()),
            ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ]
    )
    for path in _files(out):
        assert pq.read_schema(path).remove_metadata().equals(expected), path


def test_dirty_mode_writes_one_nanosecond_and_one_tz_naive_file(dirty):
    out, summary, _, _ = dirty
    types = {_landing(p): pq.read_schema(p).field("event_timestamp").type for p in _files(out)}
    ns = [d for d, t in types.items() if t == pa.timestamp("ns", tz="UTC")]
    naive = [d for d, t in types.items() if t == pa.timestamp("us")]
    assert ns == [summary.ns_landing]
    assert naive == [summary.naive_landing]
    assert Counter(types.values())[pa.timestamp("us", tz="UTC")] == DAYS - 2
    # the ns file holds whole microseconds, so every reader sees the same instants
    ns_values = pq.read_table(out / "transactions" / f"landing_date={ns[0]}" / "part-00000.parquet")["event_timestamp"]
    assert all(v % 1000 == 0 for v in ns_values.cast(pa.int64()).to_pylist() if v is not None)


# --- clean data is realistic and valid ---------------------------------------------


def test_clean_rows_are_valid_unique_and_land_on_their_event_day(clean):
    _, summary, rows, _ = clean
    assert len(rows) > 500
    assert [r for r in rows if _reason(r) is not None] == []
    assert len({r["transaction_id"] for r in rows}) == len(rows)
    assert all(_event_day(r) == r["landing"] for r in rows)
    assert all(round(r["amount"], 2) == r["amount"] for r in rows)
    assert summary.dirty is False and summary.invalid_rows == 0 and summary.late_rows == 0


def test_clean_categories_products_and_nulls(clean):
    _, summary, rows, _ = clean
    nulls = sum(r["category"] is None for r in rows)
    assert nulls == summary.null_category
    assert 0.005 * len(rows) <= nulls <= 0.1 * len(rows)
    categories = {r["category"] for r in rows} - {None}
    assert 6 <= len(categories) <= 10
    # a product belongs to exactly one category
    product_categories = defaultdict(set)
    for r in rows:
        if r["category"] is not None:
            product_categories[r["product_id"]].add(r["category"])
    assert all(len(c) == 1 for c in product_categories.values())
    # users have preferences: the typical user's top category is well above a uniform share
    per_user = defaultdict(Counter)
    for r in rows:
        if r["category"] is not None:
            per_user[r["user_id"]][r["category"]] += 1
    top_shares = sorted(c.most_common(1)[0][1] / sum(c.values()) for c in per_user.values() if sum(c.values()) >= 10)
    assert top_shares[len(top_shares) // 2] > 2 / len(categories)


def test_activity_is_skewed_with_churn_late_starts_and_an_evening_peak(clean):
    _, _, rows, _ = clean
    per_user = Counter(r["user_id"] for r in rows)
    counts = sorted(per_user.values(), reverse=True)
    top = max(1, USERS // 10)
    assert sum(counts[:top]) / len(rows) > 0.25  # uniform activity would give 0.10
    days = defaultdict(list)
    for r in rows:
        days[r["user_id"]].append((_event_day(r) - START).days)
    # some users stop early enough that their 90-day window empties inside the range
    assert any(max(d) < DAYS - 91 for d in days.values())
    assert any(min(d) > 20 for d in days.values())
    hours = Counter((r["ts_us"] % US_PER_DAY) // 3_600_000_000 for r in rows)
    evening = sum(hours[h] for h in range(18, 24))
    night = sum(hours[h] for h in range(0, 6))
    assert evening > 3 * night


def test_progress_is_reported(clean):
    _, summary, _, messages = clean
    assert 1 <= len(messages) <= DAYS
    assert str(summary.last_landing) in messages[-1]
    assert "invalid" not in str(summary)


# --- dirty data: every kind, with the counts the summary reports ---------------------


def test_dirty_mode_adds_to_the_clean_rows(clean, dirty):
    _, _, clean_rows, _ = clean
    _, summary, dirty_rows, _ = dirty
    clean_set = Counter(_payload(r) for r in clean_rows)
    dirty_set = Counter(_payload(r) for r in dirty_rows)
    assert not clean_set - dirty_set
    assert summary.rows == len(dirty_rows) > len(clean_rows)


def test_dirty_invalid_rows_of_every_kind(dirty):
    _, summary, rows, _ = dirty
    by_reason = Counter(_reason(r) for r in rows)
    del by_reason[None]
    assert set(summary.invalid) == set(INVALID_REASONS)
    assert dict(by_reason) == summary.invalid
    assert all(n >= 3 for n in by_reason.values())
    landings = defaultdict(set)
    for r in rows:
        if _reason(r) is not None:
            landings[_reason(r)].add(r["landing"])
    assert all(len(d) >= 2 for d in landings.values()), landings


def test_dirty_invalid_rows_reuse_valid_ids(dirty):
    _, summary, rows, valid = dirty
    valid_ids = {r["transaction_id"] for r in valid}
    reusing = [r for r in rows if _reason(r) is not None and r["transaction_id"] in valid_ids]
    assert len(reusing) == summary.invalid_reusing_valid_id >= 1
    # one per reason that keeps an id, so a "dedupe first, validate later" pipeline gets caught
    assert {_reason(r) for r in reusing} == {x for x in INVALID_REASONS if "transaction_id" not in x}


def test_dirty_identical_duplicates_in_the_same_file_and_a_later_landing(dirty):
    _, summary, _, valid = dirty
    copies = defaultdict(list)
    for r in valid:
        copies[_payload(r)].append(r["landing"])
    same_file = later = 0
    for landings in copies.values():
        first = min(landings)
        for extra in sorted(landings)[1:]:
            same_file += extra == first
            later += extra > first
    assert same_file == summary.identical_duplicates_same_file >= 1
    assert later == summary.identical_duplicates_later_landing >= 1


def test_dirty_conflicting_duplicates(dirty):
    _, summary, _, valid = dirty
    by_id = defaultdict(set)
    for r in valid:
        by_id[r["transaction_id"]].add((r["landing"], r["ts_us"], r["amount"], _payload(r)))
    kinds = Counter()
    later_copy_cheaper = Counter()
    for versions in by_id.values():
        payloads = {v[3] for v in versions}
        if len(payloads) < 2:
            continue
        assert len(payloads) == 2
        (l1, ts1, a1, _), (l2, ts2, a2, _) = sorted(versions)
        assert l2 > l1  # conflicting copies arrive in another, later landing
        if ts2 == ts1:
            kinds["same_timestamp_other_amount"] += 1
            assert a1 != a2
            later_copy_cheaper[a2 < a1] += 1
        elif ts2 < ts1:
            kinds["later_copy_earlier_timestamp"] += 1
        else:
            kinds["later_copy_later_timestamp"] += 1
    assert set(summary.conflicting) == set(CONFLICT_KINDS)
    assert dict(kinds) == summary.conflicting
    assert all(n >= 1 for n in kinds.values())
    # the smallest amount wins on a timestamp tie, whichever copy landed first
    assert later_copy_cheaper[True] >= 1 and later_copy_cheaper[False] >= 1


def test_dirty_late_rows_land_after_their_event_day(dirty):
    _, summary, _, valid = dirty
    assert all(r["landing"] >= _event_day(r) for r in valid)
    ids = Counter(r["transaction_id"] for r in valid)
    late = [r for r in valid if ids[r["transaction_id"]] == 1 and r["landing"] > _event_day(r)]
    assert len(late) == summary.late_rows >= 3
    assert all(1 <= (r["landing"] - _event_day(r)).days <= MAX_LATENESS_DAYS for r in late)


def test_dirty_rows_on_the_midnight_edges(dirty):
    _, summary, _, valid = dirty
    midnight = [r for r in valid if r["ts_us"] % US_PER_DAY == 0]
    before = [r for r in valid if r["ts_us"] % US_PER_DAY == US_PER_DAY - 1]
    assert len(midnight) + len(before) == summary.edge_rows
    assert len(midnight) == len(before) >= 3
    assert len({(r["user_id"], r["landing"]) for r in midnight}) >= 3
    # the edges are also in the files a careless reader would shift or reject
    assert {summary.ns_landing, summary.naive_landing} <= {r["landing"] for r in midnight}


def test_dirty_tie_users(dirty):
    _, summary, _, valid = dirty
    assert len(summary.tie_users) == 3
    assert not set(summary.tie_users) & {f"u{i:04d}" for i in range(1, USERS + 1)}

    def favourite(user: str) -> str | None:
        counts = Counter(r["category"] for r in valid if r["user_id"] == user and r["category"] is not None)
        if not counts:
            return None
        best = max(counts.values())
        return min(c for c, n in counts.items() if n == best)

    two = [r for r in valid if r["user_id"] == summary.tie_users[0]]
    assert sorted(r["category"] for r in two) == ["books", "home"]
    assert [favourite(u) for u in summary.tie_users] == ["books", "beauty", None]
    assert sum(r["category"] is None for r in valid if r["user_id"] == summary.tie_users[1]) == 3


def test_dirty_summary_prints_every_kind(dirty):
    _, summary, _, _ = dirty
    text = str(summary)
    for word in ("invalid", "identical duplicates", "conflicting duplicates", "late rows", "edge", "tz-naive"):
        assert word in text


# --- arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users must be an integer >= 1"),
        ({"days": 0}, "days must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"days": 2, "dirty": True}, "dirty data needs days >= 3"),
        ({"start": "2025-13-01"}, "start must be a date"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_written(tmp_path, kwargs, message):
    args = {"users": 3, "start": START, "days": 5, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(str(tmp_path / "out"), progress=lambda _: None, **args)
    assert not (tmp_path / "out").exists()


def test_a_single_user_and_day_still_writes_its_landing(tmp_path):
    summary = generate(str(tmp_path), 1, START, 1, 0, progress=lambda _: None)
    assert summary.files == 1 and len(_files(tmp_path)) == 1
    assert summary.rows == len(_read(tmp_path))
