"""Deterministic synthetic ratings (issue 13), derived from the generated purchases.

A share of purchases is rated by their buyer some hours to days later: 1-5 stars around the
product's own quality (fixed per product for a seed) plus the user's leniency and noise, so some
products are loved and some are not, and a heavy buyer rates more. Each rating lands on its event
day. `dirty=True` adds, on top of exactly the same clean ratings, every input the ratings rules
must survive: each kind of invalid row, identical and conflicting duplicates, and late arrivals.

Layout: `<out>/ratings/landing_date=YYYY-MM-DD/part-00000.parquet`, one file per landing day
(written by `featurepipe.generate` beside the transactions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATED_SHARE = 0.15  # of purchases
MEDIAN_DELAY_HOURS = 36  # purchase -> rating
MAX_DELAY_DAYS = 20
MAX_LATENESS_DAYS = 10

# invalid ratings, one row each per batch of dirty rows (their reasons: tests/reference.py)
INVALID_KINDS = ("null_rating_id", "empty_rating_id", "null_user_id", "null_product_id", "blank_product_id",
                 "zero_stars", "six_stars", "half_stars", "null_stars", "nan_stars", "null_event_timestamp")

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_NULL, _EMPTY, _BLANK = -1, -2, -3  # id codes, as featurepipe.generate formats them
RID_WIDTH = 10


@dataclass
class Ratings:
    """Ratings as code arrays; strings are formatted when a landing file is written."""

    rid: np.ndarray  # counter, or _NULL/_EMPTY
    user: np.ndarray  # user number (as in the transactions), or _NULL
    product: np.ndarray  # product code (as in the transactions), or _NULL/_BLANK
    stars: np.ndarray  # float: 3.5 and NaN are values, not nulls
    stars_null: np.ndarray
    ts: np.ndarray  # µs since the epoch, UTC
    ts_null: np.ndarray
    landing: np.ndarray  # day index of the landing folder

    _FIELDS = ("rid", "user", "product", "stars", "stars_null", "ts", "ts_null", "landing")

    def __len__(self) -> int:
        return len(self.rid)

    def take(self, idx: np.ndarray) -> Ratings:
        return Ratings(*(getattr(self, f)[idx] for f in self._FIELDS))

    @classmethod
    def concat(cls, parts: list[Ratings]) -> Ratings:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls._FIELDS))


def clean_ratings(rng: np.random.Generator, user: np.ndarray, product: np.ndarray, ts: np.ndarray,
                  days: int, day0_us: int) -> Ratings:
    """Ratings of some of the purchases (`user`, `product`, `ts` arrays of valid purchases), landing
    on their own event day; those that would land after the last day are not written."""
    products = np.unique(product)
    quality = dict(zip(products.tolist(), rng.uniform(2.2, 4.8, size=len(products))))
    users = np.unique(user)
    leniency = dict(zip(users.tolist(), rng.normal(0.0, 0.45, size=len(users))))
    rated = rng.random(len(user)) < RATED_SHARE
    u, p, t = user[rated], product[rated], ts[rated]
    delay = np.minimum(rng.lognormal(np.log(MEDIAN_DELAY_HOURS), 0.9, size=len(u)) * _US_PER_HOUR,
                       MAX_DELAY_DAYS * _US_PER_DAY).astype(np.int64)
    at = t + np.maximum(delay, 1)
    mean = np.array([quality[x] for x in p.tolist()]) + np.array([leniency[x] for x in u.tolist()])
    stars = np.clip(np.rint(mean + rng.normal(0.0, 0.8, size=len(u))), 1, 5)
    day = (at - day0_us) // _US_PER_DAY
    keep = day < days
    order = np.argsort(at[keep], kind="stable")
    n = int(keep.sum())
    return Ratings(
        rid=np.arange(1, n + 1, dtype=np.int64),
        user=u[keep][order], product=p[keep][order], stars=stars[keep][order].astype(np.float64),
        stars_null=np.zeros(n, dtype=bool), ts=at[keep][order], ts_null=np.zeros(n, dtype=bool),
        landing=day[keep][order],
    )


def dirty_ratings(rng: np.random.Generator, clean: Ratings, days: int) -> tuple[Ratings, dict]:
    """Rows added on top of the clean ratings, and how many of each kind."""
    last = days - 1
    if len(clean) == 0:
        return clean.take(np.arange(0)), {}
    next_rid = int(clean.rid.max()) + 1
    picks = rng.integers(0, len(clean), size=len(INVALID_KINDS) + 6)
    rows: list[dict] = []

    def copy(i: int, **changes) -> dict:
        row = {f: getattr(clean, f)[i].item() for f in Ratings._FIELDS}
        row.update(changes)
        return row

    def fresh_id() -> int:
        nonlocal next_rid
        next_rid += 1
        return next_rid - 1

    for kind, i in zip(INVALID_KINDS, picks):
        change = {
            "null_rating_id": {"rid": _NULL}, "empty_rating_id": {"rid": _EMPTY},
            "null_user_id": {"user": _NULL}, "null_product_id": {"product": _NULL},
            "blank_product_id": {"product": _BLANK}, "zero_stars": {"stars": 0.0}, "six_stars": {"stars": 6.0},
            "half_stars": {"stars": 3.5}, "null_stars": {"stars_null": True}, "nan_stars": {"stars": float("nan")},
            "null_event_timestamp": {"ts_null": True},
        }[kind]
        rows.append(copy(int(i), **{"rid": fresh_id(), **change}))
    extra = picks[len(INVALID_KINDS):]
    # identical duplicates: the same file, and a later landing
    rows.append(copy(int(extra[0])))
    i = int(extra[1])
    rows.append(copy(i, landing=min(last, int(clean.landing[i]) + 1 + int(rng.integers(0, MAX_LATENESS_DAYS)))))
    # a conflicting copy (same id and instant, other stars): the fewer stars win
    i = int(extra[2])
    rows.append(copy(i, stars=float(max(1, int(clean.stars[i]) - 1)) if clean.stars[i] > 1 else 5.0))
    # late ratings: a new event that lands 1-10 days after its event day
    for i in extra[3:]:
        i = int(i)
        lands = int(clean.landing[i]) + 1 + int(rng.integers(0, MAX_LATENESS_DAYS))
        if lands <= last:
            rows.append(copy(i, rid=fresh_id(), landing=lands))
    out = Ratings(*(np.array([r[f] for r in rows], dtype={"stars": np.float64, "stars_null": bool,
                                                           "ts_null": bool}.get(f, np.int64))
                    for f in Ratings._FIELDS))
    return out, {"invalid_ratings": len(INVALID_KINDS), "duplicate_ratings": 3}


def ratings_table(rows: Ratings, ts_type, user_width: int, dirty: bool):
    """One landing file's rows as the source's schema: stars as int64 in clean landings, float64
    in dirty ones (which carry 3.5 and NaN)."""
    import pyarrow as pa

    from featurepipe.generate import ids
    from featurepipe.spec import RATINGS

    ts = rows.ts * 1000 if ts_type.unit == "ns" else rows.ts
    stars_type = pa.float64() if dirty else pa.int64()
    stars = rows.stars if dirty else np.nan_to_num(rows.stars).astype(np.int64)
    arrays = {
        "rating_id": ids("r", rows.rid, RID_WIDTH),
        "user_id": ids("u", rows.user, user_width),
        "product_id": ids("p", rows.product, 5),
        "stars": pa.array(stars, type=stars_type, mask=rows.stars_null),
        "event_timestamp": pa.array(np.where(rows.ts_null, 0, ts), type=ts_type, mask=rows.ts_null),
    }
    types = {"rating_id": pa.string(), "user_id": pa.string(), "product_id": pa.string(), "stars": stars_type,
             "event_timestamp": ts_type}
    schema = pa.schema([pa.field(c.name, types[c.name]) for c in RATINGS.columns])
    return pa.Table.from_arrays([arrays[c.name] for c in RATINGS.columns], schema=schema)
