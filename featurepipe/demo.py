"""Helpers for `make demo`: an entity table of labelled events, and a readable print of a training set."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from featurepipe.dates import parse_date


def demo_products() -> list[str]:
    """The generator's five most popular products of each category (its ids: p<category><number>)."""
    from featurepipe.generate import CATEGORIES

    return [f"p{(c + 1) * 1000 + n:05d}" for c in range(len(CATEGORIES)) for n in range(1, 6)]


def entity_table(users: list[str], start: dt.date, end: dt.date, rows: int, seed: int = 1,
                 products: list[str] | None = None):
    """Random (user_id, product_id, event_timestamp, amount, label) rows in [start, end]: some exactly
    at midnight, some 1 µs before. `amount` is the purchase being scored: the request value of the
    on-demand feature amount_vs_avg_basket_30d; `product_id` the product offered (a training set
    with product features joins on it)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    span = int((end - start).days * 86_400 * 1_000_000)
    offsets = rng.integers(0, span, size=rows)
    base = pd.Timestamp(start, tz="UTC")
    ts = base + pd.to_timedelta(offsets, unit="us")
    # exact window edges: a label at T sees T's row; one microsecond earlier it sees the day before
    ts = ts.where(np.arange(rows) % 5 != 0, ts.floor("D"))
    ts = ts.where(np.arange(rows) % 5 != 1, ts.floor("D") - pd.Timedelta(microseconds=1))
    return pd.DataFrame(
        {
            "user_id": rng.choice(users, size=rows),
            "product_id": rng.choice(products or demo_products(), size=rows),
            "event_timestamp": ts,
            "amount": np.round(rng.gamma(2.0, 25.0, size=rows), 2),
            "label_will_purchase": rng.integers(0, 2, size=rows),
        }
    ).sort_values("event_timestamp", kind="stable", ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("entities")
    e.add_argument("--out", required=True)
    e.add_argument("--start", type=parse_date, required=True)
    e.add_argument("--end", type=parse_date, required=True)
    e.add_argument("--users", type=int, default=10)
    e.add_argument("--rows", type=int, default=20)
    s = sub.add_parser("show")
    s.add_argument("path")
    s.add_argument("--rows", type=int, default=12)
    args = p.parse_args(argv)

    if args.command == "entities":
        users = [f"u{i:04d}" for i in range(1, args.users + 1)]
        table = entity_table(users, args.start, args.end, args.rows)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        print(f"wrote {len(table)} entity rows to {out}")
    else:
        pd.set_option("display.width", 250)
        pd.set_option("display.max_columns", 30)
        frame = pd.read_parquet(args.path)
        print(f"training set {args.path}: {len(frame)} rows")
        print(frame.head(args.rows).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
