"""Category embeddings (issue 13): one vector per product category, committed in
`featurepipe/category_embeddings.json` and served by the feature view `category_embeddings`.

How the vectors are made (reproducible: `python -m featurepipe.embeddings --write` rebuilds the
file, `python -m featurepipe.embeddings` checks it, within 1e-5; a unit test runs the check):

1. the generator's clean purchases (`featurepipe.generate`, fixed users, days and seed below);
2. which products each user bought, as a binary users x products matrix B;
3. product co-purchase counts C = BᵀB (two products bought by the same user), turned into positive
   pointwise mutual information PPMI_ij = max(0, log(C_ij · N / (C_i · C_j))), N = Σ C;
4. a truncated SVD, PPMI ≈ U S Vᵀ: a product's vector is its row of U·√S, first `DIMENSIONS`
   components (each component's sign fixed so that its largest entry is positive);
5. a category's vector is the purchase-weighted mean of its products' vectors, L2-normalised,
   rounded to 6 decimals.

Categories bought by the same people end up close (cosine similarity), which is what a
recommender needs from them; the products per category (40) give the matrix the rank that 16
dimensions need, where 8 categories alone could give at most 8. Only numpy: no Spark, no model
download.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

EMBEDDINGS_FILE = Path(__file__).with_name("category_embeddings.json")
DIMENSIONS = 16
METHOD = {"users": 3000, "start": "2024-01-01", "days": 365, "seed": 20240101, "dimensions": DIMENSIONS}
VERSION = 1  # bumped with every change of the method or its parameters (the feature view's tag)


def purchases() -> tuple[np.ndarray, np.ndarray]:
    """(user number, product code) of every clean generated purchase of METHOD's parameters."""
    from featurepipe.generate import _clean_rows, _EPOCH, _US_PER_DAY

    start = dt.date.fromisoformat(METHOD["start"])
    rows = _clean_rows(np.random.default_rng([METHOD["seed"], 0]), METHOD["users"], start, METHOD["days"],
                       (start - _EPOCH).days * _US_PER_DAY)
    return rows.user, rows.product


def build(users: np.ndarray, products: np.ndarray, categories: tuple[str, ...], dimensions: int = DIMENSIONS) -> dict:
    """{category: vector} from purchases (user, product code = (category index + 1) * 1000 + n)."""
    product_ids, product_index = np.unique(products, return_inverse=True)
    user_ids, user_index = np.unique(users, return_inverse=True)
    bought = np.zeros((len(user_ids), len(product_ids)))
    bought[user_index, product_index] = 1.0
    co = bought.T @ bought
    np.fill_diagonal(co, 0.0)
    total, marginal = co.sum(), co.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(co * total / np.outer(marginal, marginal))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    u, s, _ = np.linalg.svd(ppmi)
    vectors = u[:, :dimensions] * np.sqrt(s[:dimensions])
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(dimensions)])
    vectors = vectors * np.where(signs == 0, 1.0, signs)
    weight = np.bincount(product_index, minlength=len(product_ids)).astype(float)
    category_of = product_ids // 1000 - 1
    out = {}
    for c, name in enumerate(categories):
        mine = category_of == c
        mean = (vectors[mine] * weight[mine, None]).sum(axis=0) / weight[mine].sum()
        out[name] = [round(float(x), 6) for x in mean / np.linalg.norm(mean)]
    return out


def render() -> dict:
    """The committed file's content, rebuilt."""
    from featurepipe.generate import CATEGORIES

    users, products = purchases()
    return {"method": "PPMI of product co-purchases, truncated SVD, purchase-weighted category means "
                      "(featurepipe/embeddings.py)",
            "parameters": METHOD, "version": VERSION, "vectors": build(users, products, CATEGORIES)}


def load() -> dict[str, list[float]]:
    """{category: vector} from the committed file."""
    data = json.loads(EMBEDDINGS_FILE.read_text())
    vectors = data["vectors"]
    bad = [c for c, v in vectors.items() if len(v) != DIMENSIONS]
    if bad:
        raise ValueError(f"{EMBEDDINGS_FILE}: {', '.join(bad)} do not have {DIMENSIONS} dimensions")
    return vectors


def same(committed: dict, built: dict, tolerance: float = 1e-5) -> bool:
    """The committed file equals a rebuild: same method and parameters, vectors within `tolerance`
    (another BLAS may round the SVD's last digits differently)."""
    if {k: v for k, v in committed.items() if k != "vectors"} != {k: v for k, v in built.items() if k != "vectors"}:
        return False
    a, b = committed["vectors"], built["vectors"]
    return a.keys() == b.keys() and all(np.allclose(a[c], b[c], rtol=0, atol=tolerance) for c in a)


# --- served: a Delta table behind the feature view, and its online rows ---------------------------

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)  # the rows' event_timestamp: valid for every as-of


def reference_table(view) -> str:
    return f"reference/{view.name}"


def serve(spark) -> dict:
    """Make the lake table `reference/category_embeddings` hold the committed vectors (rewritten only
    when its version differs) and the online store hold its rows (materialized when the table
    changed since the last materialize). Called by the materialize step, under the lake's lease."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType, TimestampType

    from featurepipe import bookkeeping, feast_store, lake
    from featurepipe.dates import AsOfRange
    from featurepipe.spec import CATEGORY_EMBEDDINGS as view

    table = reference_table(view)
    written = False
    current = (lake.read_table(spark, table).agg(F.max("version")).first()[0]
               if lake.table_exists(spark, table) else None)
    if current != VERSION:
        schema = StructType([StructField(view.join_key, StringType(), False),
                             StructField(view.feature, ArrayType(DoubleType(), False), False),
                             StructField("event_timestamp", TimestampType(), False),
                             StructField("version", LongType(), False)])
        rows = [(category, vector, EPOCH, VERSION) for category, vector in sorted(load().items())]
        lake.overwrite(lake.literal_rows(spark, rows, schema), table)
        written = True
    version = lake.table_version(spark, table)
    last = bookkeeping.last_materialized(spark, view)
    if last is None or last.features_version != version:
        print(f"[materialize] {view.name}: {len(load())} category vectors (v{VERSION}) into the online store")
        feast_store.materialize(EPOCH, EPOCH + dt.timedelta(days=1), view)
        bookkeeping.record_materialized(spark, AsOfRange(EPOCH.date(), EPOCH.date()), version, view)
        return {"table": table, "written": written, "materialized": True}
    return {"table": table, "written": written, "materialized": False}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build (--write) or check (default) the committed category embeddings")
    parser.add_argument("--write", action="store_true", help=f"rewrite {EMBEDDINGS_FILE.name}")
    args = parser.parse_args(argv)
    built = render()
    text = json.dumps(built, indent=1, sort_keys=True) + "\n"
    if args.write:
        EMBEDDINGS_FILE.write_text(text)
        print(f"wrote {EMBEDDINGS_FILE} ({len(built['vectors'])} categories x {DIMENSIONS} dimensions)")
        return 0
    if not EMBEDDINGS_FILE.exists() or not same(json.loads(EMBEDDINGS_FILE.read_text()), built):
        print(f"{EMBEDDINGS_FILE} differs from what featurepipe/embeddings.py builds: run "
              "`.venv/bin/python -m featurepipe.embeddings --write`", file=sys.stderr)
        return 1
    print(f"{EMBEDDINGS_FILE.name}: equal to the rebuilt vectors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
