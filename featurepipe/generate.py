"""Deterministic synthetic raw transactions for the landing zone (SPEC §2, §5 `generate`).

Clean mode writes realistic purchase events: skewed per-user activity, users who start late
or churn, per-user category preferences, products tied to categories, log-normal amounts in
cents, an evening-heavy daily rhythm and a few percent of null categories. `dirty=True` adds,
on top of exactly the same clean rows, every input the pipeline must survive: invalid rows of
each SPEC §2 kind, identical and conflicting duplicates, late arrivals, events on the
half-open window edges, favourite-category ties, and one landing file each with nanosecond
and with tz-naive timestamps.

Ratings of some purchases (`featurepipe.generate_ratings`) land beside them, from the same clean
purchases whatever the mode.

Layout: `<out>/transactions/landing_date=YYYY-MM-DD/part-00000.parquet` and
`<out>/ratings/landing_date=YYYY-MM-DD/part-00000.parquet`, one file each per day. An
`s3://` out is written through boto3: each file is written to a temporary folder, then uploaded
with its SHA-256 in the object's metadata (as `featurepipe land` does, which then skips it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from featurepipe.generate_ratings import Ratings, clean_ratings, dirty_ratings, ratings_table
from featurepipe.spec import RATINGS, TRANSACTIONS
from featurepipe.storage import is_s3

CATEGORIES = ("beauty", "books", "electronics", "fashion", "grocery", "home", "sports", "toys")
_MEDIAN_PRICE = (22.0, 14.0, 110.0, 45.0, 30.0, 55.0, 48.0, 25.0)
_PRODUCTS_PER_CATEGORY = 40
NULL_CATEGORY_SHARE = 0.03
MAX_LATENESS_DAYS = 10
# the smallest --days for which every dirty kind fits: a ns file, a tz-naive file and a later landing
MIN_DIRTY_DAYS = 3

INVALID_REASONS = (
    "null_transaction_id",
    "empty_transaction_id",
    "null_user_id",
    "empty_user_id",
    "null_amount",
    "nan_amount",
    "inf_amount",
    "zero_amount",
    "negative_amount",
    "null_event_timestamp",
)
CONFLICT_KINDS = (
    "same_timestamp_other_amount",  # tie on event_timestamp: the smallest amount wins
    "later_copy_earlier_timestamp",  # the copy that lands later wins
    "later_copy_later_timestamp",  # the copy that landed first wins
)

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_EPOCH = dt.date(1970, 1, 1)
_NULL = -1  # code for a null id / category
_EMPTY = -2  # code for an empty-string id
_BLANK = -3  # code for a whitespace-only id
_TID_WIDTH = 10


def _hour_weights() -> np.ndarray:
    # UTC rhythm: quiet nights, a lunch bump, the main peak in the evening
    h = np.arange(24)
    w = (
        0.2
        + 0.15 * (h >= 7)
        + 0.6 * np.exp(-((h - 12.5) ** 2) / (2 * 1.5**2))
        + 1.6 * np.exp(-((h - 20.0) ** 2) / (2 * 2.0**2))
    )
    return w / w.sum()


_HOUR_P = _hour_weights()


@dataclass(frozen=True)
class GenerateSummary:
    """What `generate` wrote; the dirty counts are zero in clean mode."""

    out_uri: str
    files: int
    rows: int
    users: int  # regular users; dirty mode adds the scripted `tie_users` after them
    first_landing: dt.date
    last_landing: dt.date
    seed: int
    dirty: bool = False
    null_category: int = 0
    invalid: dict[str, int] = field(default_factory=dict)  # reason -> rows
    invalid_reusing_valid_id: int = 0  # invalid rows (counted above) whose id a valid row also has
    identical_duplicates_same_file: int = 0
    identical_duplicates_later_landing: int = 0
    conflicting: dict[str, int] = field(default_factory=dict)  # CONFLICT_KINDS -> extra rows
    late_rows: int = 0
    edge_rows: int = 0  # events at 00:00:00.000000 or 23:59:59.999999 UTC
    tie_users: tuple[str, ...] = ()
    ns_landing: dt.date | None = None
    naive_landing: dt.date | None = None
    ratings: int = 0  # rating rows written (the dirty ones included)
    invalid_ratings: int = 0
    duplicate_ratings: int = 0

    @property
    def invalid_rows(self) -> int:
        return sum(self.invalid.values())

    @property
    def identical_duplicates(self) -> int:
        return self.identical_duplicates_same_file + self.identical_duplicates_later_landing

    @property
    def conflicting_duplicates(self) -> int:
        return sum(self.conflicting.values())

    def lines(self) -> list[str]:
        out = [
            f"wrote {self.files} files, {self.rows} rows ({self.users} users"
            f"{f' + {len(self.tie_users)} tie users' if self.tie_users else ''}, landings "
            f"{self.first_landing}..{self.last_landing}, seed {self.seed}) to {self.out_uri}",
            f"null category: {self.null_category} rows",
            f"ratings: {self.ratings} rows",
        ]
        if self.dirty:
            reasons = ", ".join(f"{k} {v}" for k, v in self.invalid.items())
            conflicts = ", ".join(f"{k} {v}" for k, v in self.conflicting.items())
            out += [
                f"invalid: {self.invalid_rows} rows ({reasons}); {self.invalid_reusing_valid_id} reuse a valid id",
                f"identical duplicates: {self.identical_duplicates} "
                f"({self.identical_duplicates_same_file} same file, "
                f"{self.identical_duplicates_later_landing} later landing)",
                f"conflicting duplicates: {self.conflicting_duplicates} ({conflicts})",
                f"late rows: {self.late_rows} (1-{MAX_LATENESS_DAYS} days after their event day); "
                f"edge-of-day rows: {self.edge_rows}",
                f"tie users: {', '.join(self.tie_users)}; ns timestamps in landing {self.ns_landing}, "
                f"tz-naive timestamps in landing {self.naive_landing}",
                f"ratings: {self.invalid_ratings} invalid rows, {self.duplicate_ratings} duplicates",
            ]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass
class _Rows:
    """Rows as code arrays; strings are formatted only when a landing file is written."""

    tid: np.ndarray  # counter, or _NULL/_EMPTY
    user: np.ndarray  # 1-based user number, or _NULL/_EMPTY
    product: np.ndarray  # (category + 1) * 1000 + product number
    category: np.ndarray  # index into CATEGORIES, or _NULL
    amount: np.ndarray  # NaN and inf are values, not nulls
    amount_null: np.ndarray
    ts: np.ndarray  # µs since the epoch, UTC
    ts_null: np.ndarray
    landing: np.ndarray  # day index of the landing folder

    _FIELDS = ("tid", "user", "product", "category", "amount", "amount_null", "ts", "ts_null", "landing")

    def __len__(self) -> int:
        return len(self.tid)

    def take(self, idx: np.ndarray) -> _Rows:
        return _Rows(*(getattr(self, f)[idx] for f in self._FIELDS))

    def row(self, i: int) -> dict:
        return {f: getattr(self, f)[i].item() for f in self._FIELDS}

    @classmethod
    def concat(cls, parts: list[_Rows]) -> _Rows:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls._FIELDS))

    @classmethod
    def from_dicts(cls, rows: list[dict]) -> _Rows:
        dtypes = {"amount": np.float64, "amount_null": bool, "ts_null": bool}
        return cls(*(np.array([r[f] for r in rows], dtype=dtypes.get(f, np.int64)) for f in cls._FIELDS))


def generate(
    out_uri: str,
    users: int,
    start: dt.date,
    days: int,
    seed: int,
    dirty: bool = False,
    progress: Callable[[str], None] = print,
) -> GenerateSummary:
    """Write `days` daily landing files of synthetic transactions under `<out_uri>/transactions/`."""
    start = _check_args(users, start, days, seed, dirty)
    day0_us = (start - _EPOCH).days * _US_PER_DAY
    # separate streams: the clean rows of a dirty run are exactly those of the clean run
    clean = _clean_rows(np.random.default_rng([seed, 0]), users, start, days, day0_us)
    counts: dict = {}
    rows = clean
    if dirty:
        rng = np.random.default_rng([seed, 1])
        injected, counts = _dirty_rows(rng, clean, users, days, day0_us)
        rows = _Rows.concat([clean, injected])
        # a landing file's row order means nothing: interleave injected rows with clean ones
        order = np.lexsort((rng.permutation(len(rows)), rows.landing))
        rows = rows.take(order)
        counts["ns_landing"] = start + dt.timedelta(days=days // 3)
        counts["naive_landing"] = start + dt.timedelta(days=2 * days // 3)
    ratings = clean_ratings(np.random.default_rng([seed, 2]), clean.user, clean.product, clean.ts, days, day0_us)
    if dirty:
        injected_ratings, rating_counts = dirty_ratings(np.random.default_rng([seed, 3]), ratings, days)
        ratings = Ratings.concat([ratings, injected_ratings])
        ratings = ratings.take(np.argsort(ratings.landing, kind="stable"))
        counts.update(rating_counts)
    user_width = max(4, len(str(users + len(counts.get("tie_users", ())))))
    files = _write(out_uri, rows, ratings, start, days, dirty, user_width, progress)
    return GenerateSummary(
        out_uri=out_uri,
        files=files,
        rows=len(rows),
        users=users,
        first_landing=start,
        last_landing=start + dt.timedelta(days=days - 1),
        seed=seed,
        dirty=dirty,
        null_category=int((rows.category == _NULL).sum()),
        ratings=len(ratings),
        **counts,
    )


def _check_args(users: int, start: dt.date | str, days: int, seed: int, dirty: bool) -> dt.date:
    if isinstance(start, str):
        try:
            start = dt.date.fromisoformat(start)
        except ValueError:
            raise ValueError(f"start must be a date YYYY-MM-DD, got {start!r}") from None
    elif isinstance(start, dt.datetime):
        start = start.date()
    elif not isinstance(start, dt.date):
        raise ValueError(f"start must be a date, got {start!r}")
    for name, value in (("users", users), ("days", days)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if dirty and days < MIN_DIRTY_DAYS:
        raise ValueError(f"dirty data needs days >= {MIN_DIRTY_DAYS} (late and duplicate rows land later), got {days}")
    return start


def _clean_rows(rng: np.random.Generator, users: int, start: dt.date, days: int, day0_us: int) -> _Rows:
    """Realistic events, each landing on its own event day, ids in time order."""
    n_cat = len(CATEGORIES)
    # a few heavy buyers, a long tail of occasional ones
    rate = rng.lognormal(mean=np.log(0.3), sigma=1.1, size=users)
    start_day = np.zeros(users, dtype=np.int64)
    end_day = np.full(users, days, dtype=np.int64)
    lifecycle = rng.random(users)
    late_start = lifecycle < 0.2
    start_day[late_start] = rng.integers(1, max(2, 2 * days // 3), size=int(late_start.sum()))
    # churners stop anywhere in the range, so some 90-day windows empty out before its end
    churn = (lifecycle >= 0.2) & (lifecycle < 0.45)
    end_day[churn] = rng.integers(1, max(2, days), size=int(churn.sum()))
    prefs = rng.dirichlet(np.full(n_cat, 0.4), size=users)
    base_price = np.array(_MEDIAN_PRICE)[:, None] * rng.lognormal(0.0, 0.5, size=(n_cat, _PRODUCTS_PER_CATEGORY))
    product_p = 1.0 / np.arange(1, _PRODUCTS_PER_CATEGORY + 1)
    product_p /= product_p.sum()

    day = np.arange(days)
    weekend = np.array([(start + dt.timedelta(days=int(d))).weekday() >= 5 for d in day])
    active = (day[None, :] >= start_day[:, None]) & (day[None, :] < end_day[:, None])
    counts = rng.poisson(rate[:, None] * active * np.where(weekend, 1.3, 1.0)[None, :])
    cell = np.repeat(np.arange(days * users), counts.T.ravel())  # day-major
    ev_day, ev_user = cell // users, cell % users
    n = len(cell)

    hour = rng.choice(24, size=n, p=_HOUR_P)
    ts = day0_us + ev_day * _US_PER_DAY + hour * _US_PER_HOUR + rng.integers(0, _US_PER_HOUR, size=n)
    cum = prefs.cumsum(axis=1)
    category = np.minimum((rng.random(n)[:, None] >= cum[ev_user]).sum(axis=1), n_cat - 1)
    product = rng.choice(_PRODUCTS_PER_CATEGORY, size=n, p=product_p)
    amount = np.round(base_price[category, product] * rng.lognormal(0.0, 0.15, size=n), 2)
    amount = np.maximum(amount, 0.01)
    # the product still names its category: the catalogue join failed, not the purchase
    shown_category = np.where(rng.random(n) < NULL_CATEGORY_SHARE, _NULL, category)

    order = np.argsort(ts, kind="stable")
    return _Rows(
        tid=np.arange(1, n + 1, dtype=np.int64),
        user=(ev_user + 1)[order],
        product=((category + 1) * 1000 + product + 1)[order],
        category=shown_category[order],
        amount=amount[order],
        amount_null=np.zeros(n, dtype=bool),
        ts=ts[order],
        ts_null=np.zeros(n, dtype=bool),
        landing=ev_day[order],
    )


def _dirty_rows(rng: np.random.Generator, clean: _Rows, users: int, days: int, day0_us: int) -> tuple[_Rows, dict]:
    """Rows added on top of the clean ones, and how many of each kind."""
    last = days - 1
    n = max(3, len(clean) // 500)
    next_tid = int(clean.tid.max()) + 1 if len(clean) else 1
    out: list[dict] = []

    def new_tid() -> int:
        nonlocal next_tid
        next_tid += 1
        return next_tid - 1

    def later(landing: int, min_delay: int = 1) -> int:
        return landing + int(rng.integers(min_delay, min(MAX_LATENESS_DAYS, last - landing) + 1))

    def random_time(day: int) -> int:
        return day0_us + day * _US_PER_DAY + int(rng.choice(24, p=_HOUR_P)) * _US_PER_HOUR + int(
            rng.integers(0, _US_PER_HOUR)
        )

    def template(part: int = 0, parts: int = 1) -> dict:
        """A plausible new event (fresh id), shaped like a random clean one from `part` of the range."""
        if len(clean):
            # clean rows are in time order: a slice of them is a stretch of days
            lo = len(clean) * part // parts
            hi = max(len(clean) * (part + 1) // parts, lo + 1)
            r = clean.row(int(rng.integers(lo, hi)))
        else:
            d = int(rng.integers(days))
            r = dict(
                user=1, product=1001, category=0, amount=10.0, amount_null=False, ts=random_time(d), ts_null=False, landing=d
            )
        return {**r, "tid": new_tid()}

    # rows whose identity is reused: one permutation keeps the kinds disjoint
    not_last = np.flatnonzero(clean.landing < last)
    victims = iter(rng.permutation(not_last).tolist())
    takes = {k: n for k in ("same_file", "later_landing", *CONFLICT_KINDS)}
    takes["invalid_reuse"] = sum("transaction_id" not in reason for reason in INVALID_REASONS)
    picked = {k: [i for _, i in zip(range(want), victims)] for k, want in takes.items()}

    invalid: dict[str, int] = {}
    reuse = iter(picked["invalid_reuse"])
    reused = 0
    for reason in INVALID_REASONS:
        for j in range(n):
            # the first of a kind that keeps its id is an invalid copy of a valid event:
            # validation must run before deduplication
            i = next(reuse, None) if j == 0 and "transaction_id" not in reason else None
            if i is None:
                r = template(j, n)
            else:
                r = clean.row(i)
                r["landing"] = later(r["landing"], min_delay=0)
                reused += 1
            _break(r, reason)
            out.append(r)
        invalid[reason] = n

    for i in picked["same_file"]:
        out.append(clean.row(i))
    for i in picked["later_landing"]:
        out.append({**clean.row(i), "landing": later(int(clean.landing[i]))})

    conflicting: dict[str, int] = {}
    for kind in CONFLICT_KINDS:
        for j, i in enumerate(picked[kind]):
            r = clean.row(i)
            r["landing"] = later(r["landing"])
            shift = int(rng.integers(1, 3 * 3600)) * 1_000_000
            if kind == "same_timestamp_other_amount":
                # alternate which copy is cheaper, so "first landed wins" is wrong half the time
                r["amount"] = _other_amount(r["amount"], smaller=j % 2 == 0)
            elif kind == "later_copy_earlier_timestamp":
                r["ts"] -= shift
                r["amount"] = _other_amount(r["amount"], smaller=j % 2 == 1)
            else:
                r["ts"] += shift
                if j % 2 == 0:
                    r["amount"] = _other_amount(r["amount"], smaller=True)
            out.append(r)
        conflicting[kind] = len(picked[kind])

    late = 0
    for _ in range(n):
        r = template()
        event_day = int(rng.integers(0, last))
        r.update(ts=random_time(event_day), landing=later(event_day))
        out.append(r)
        late += 1

    # pairs one microsecond apart around a midnight, the first in the ns and tz-naive files
    edge_days = [days // 3, 2 * days // 3] + [int(d) for d in rng.integers(1, days, size=max(0, n - 2))]
    for d in edge_days:
        r = template()
        midnight = day0_us + d * _US_PER_DAY
        out.append({**r, "ts": midnight, "landing": d})
        out.append({**r, "tid": new_tid(), "ts": midnight - 1, "landing": d - 1})

    tie_users, tie_rows = _tie_rows(rng, users, days, day0_us, new_tid)
    out += tie_rows

    counts = dict(
        invalid=invalid,
        invalid_reusing_valid_id=reused,
        identical_duplicates_same_file=len(picked["same_file"]),
        identical_duplicates_later_landing=len(picked["later_landing"]),
        conflicting=conflicting,
        late_rows=late,
        edge_rows=2 * len(edge_days),
        tie_users=tuple(f"u{u:0{max(4, len(str(users + len(tie_users))))}d}" for u in tie_users),
    )
    return _Rows.from_dicts(out), counts


def _break(r: dict, reason: str) -> None:
    if reason == "null_transaction_id":
        r["tid"] = _NULL
    elif reason == "empty_transaction_id":
        r["tid"] = _EMPTY
    elif reason == "null_user_id":
        r["user"] = _NULL
    elif reason == "empty_user_id":
        r["user"] = _EMPTY
    elif reason == "null_amount":
        r["amount_null"] = True
    elif reason == "nan_amount":
        r["amount"] = float("nan")
    elif reason == "inf_amount":
        r["amount"] = float("inf")
    elif reason == "zero_amount":
        r["amount"] = 0.0
    elif reason == "negative_amount":
        r["amount"] = -r["amount"]
    elif reason == "null_event_timestamp":
        r["ts_null"] = True
    else:
        raise ValueError(f"unknown invalid-row reason {reason!r}")


def _other_amount(amount: float, smaller: bool) -> float:
    if smaller and amount > 0.01:
        return max(0.01, min(round(amount * 0.8, 2), round(amount - 0.01, 2)))
    return round(amount * 1.25 + 0.01, 2)


def _tie_rows(rng: np.random.Generator, users: int, days: int, day0_us: int, new_tid) -> tuple[list[int], list[dict]]:
    """Scripted extra users whose favourite category is a tie or null."""
    cat = {c: i for i, c in enumerate(CATEGORIES)}
    scripts = [
        # 2 events, 2 categories, the larger name bought first: favourite "books"
        [("home", 18, 40.0), ("books", 19, 12.5)],
        # beauty/toys tie at 2; three nulls must not count: favourite "beauty"
        [("toys", 9, 19.99), ("toys", 10, 5.0), (None, 11, 7.5), (None, 12, 8.0), (None, 13, 9.0),
         ("beauty", 20, 30.0), ("beauty", 21, 12.0)],
        # only null categories: favourite null
        [(None, 17, 15.0), (None, 18, 25.0)],
    ]
    numbers, rows = [], []
    for k, script in enumerate(scripts):
        user = users + 1 + k
        day = int(rng.integers(days))
        numbers.append(user)
        for c, hour, amount in script:
            product_cat = cat[c] if c is not None else 0
            rows.append(dict(
                tid=new_tid(), user=user, product=(product_cat + 1) * 1000 + 1, category=_NULL if c is None else cat[c],
                amount=amount, amount_null=False, ts=day0_us + day * _US_PER_DAY + hour * _US_PER_HOUR, ts_null=False,
                landing=day,
            ))
    return numbers, rows


def _write(
    out_uri: str, rows: _Rows, ratings: Ratings, start: dt.date, days: int, dirty: bool, user_width: int,
    progress: Callable[[str], None],
) -> int:
    import tempfile
    from pathlib import Path

    if not is_s3(out_uri):
        return _write_files(Path(out_uri), out_uri, rows, ratings, start, days, dirty, user_width, progress)
    import hashlib

    from featurepipe.storage import s3_check, s3_join, s3_upload

    s3_check(out_uri, "write generated landings to")  # no bucket or refused credentials: before any work

    def upload(path: Path, rel: str) -> None:
        s3_upload(path, s3_join(out_uri, rel), hashlib.sha256(path.read_bytes()).hexdigest())
        path.unlink()

    # each file is written here first, then uploaded with boto3
    with tempfile.TemporaryDirectory(prefix="featurepipe-generate-") as staging:
        return _write_files(Path(staging), out_uri, rows, ratings, start, days, dirty, user_width, progress, upload)


def _write_files(
    root, out_uri: str, rows: _Rows, ratings: Ratings, start: dt.date, days: int, dirty: bool, user_width: int,
    progress: Callable[[str], None], upload: Callable | None = None,
) -> int:
    """One Parquet file per landing day and source under the folder `root`, each passed to `upload`
    (with its path below `out_uri`) once written; returns the transaction files written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    bounds = np.searchsorted(rows.landing, np.arange(days + 1))
    rating_bounds = np.searchsorted(ratings.landing, np.arange(days + 1))
    every = max(1, days // 10)
    for d in range(days):
        # users' landings arrive in any unit and with or without a zone; the pipeline must read them all
        if dirty and d == days // 3:
            ts_type = pa.timestamp("ns", tz="UTC")
        elif dirty and d == 2 * days // 3:
            ts_type = pa.timestamp("us")
        else:
            ts_type = pa.timestamp("us", tz="UTC")
        part = rows.take(np.arange(bounds[d], bounds[d + 1]))
        landing = start + dt.timedelta(days=d)
        rated = ratings.take(np.arange(rating_bounds[d], rating_bounds[d + 1]))
        for source, table in ((TRANSACTIONS, _table(part, ts_type, user_width)),
                              (RATINGS, ratings_table(rated, ts_type, user_width, dirty))):
            rel = f"{source.name}/landing_date={landing.isoformat()}/part-00000.parquet"
            path = root / rel
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, str(path), version="2.6")
            except OSError as e:
                raise OSError(f"cannot write landing file {out_uri.rstrip('/')}/{rel}: {e}") from e
            if upload is not None:
                upload(path, rel)
        if (d + 1) % every == 0 or d == days - 1:
            progress(f"generate: landing {landing} ({d + 1}/{days}) {len(part)} rows")
    return days


def _table(rows: _Rows, ts_type, user_width: int):
    import pyarrow as pa

    categories = np.array(CATEGORIES, dtype=object)[np.maximum(rows.category, 0)]
    categories[rows.category == _NULL] = None
    ts = rows.ts * 1000 if ts_type.unit == "ns" else rows.ts
    arrays = {
        "transaction_id": ids("t", rows.tid, _TID_WIDTH),
        "user_id": ids("u", rows.user, user_width),
        "product_id": ids("p", rows.product, 5),
        "category": pa.array(categories, type=pa.string()),
        "amount": pa.array(rows.amount, type=pa.float64(), mask=rows.amount_null),
        "event_timestamp": pa.array(np.where(rows.ts_null, 0, ts), type=ts_type, mask=rows.ts_null),
    }
    types = {"string": pa.string(), "double": pa.float64(), "timestamp": ts_type}
    schema = pa.schema([pa.field(c.name, types[c.kind]) for c in TRANSACTIONS.columns])
    return pa.Table.from_arrays([arrays[c.name] for c in TRANSACTIONS.columns], schema=schema)


def ids(prefix: str, codes: np.ndarray, width: int):
    import pyarrow as pa

    if len(codes) == 0:  # numpy's zfill cannot size an empty array
        return pa.array([], type=pa.string())
    out = np.char.add(prefix, np.char.zfill(codes.astype(str), width)).astype(object)
    out[codes == _NULL] = None
    out[codes == _EMPTY] = ""
    out[codes == _BLANK] = " \t"
    return pa.array(out, type=pa.string())
