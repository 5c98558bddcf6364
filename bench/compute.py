"""compute: SPEC §3 features for 90 as-of days over N transactions, our Spark path vs DuckDB
computing the same features from the same Parquet in the same run (goal: ratio <= 5).

JVM start is excluded (the session is started, and the Spark path run once on a small sample,
before anything is timed). Both write their result to
Parquet; the results must agree row for row (counts exactly, floats to 1e-9 relative).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from bench.harness import spark, workspace

START = dt.date(2024, 1, 1)
DAYS = 182  # 91 days of look-back before the first as-of date, then 90 as-of dates + 1
AS_OF_DAYS = 90


def spark_path(session, raw: Path, out: Path, first: dt.date, last: dt.date) -> float:
    from featurepipe.raw import read_source
    from featurepipe.spec import USER_PURCHASE
    from featurepipe.features import features_from_tiles
    from featurepipe.tiles import build_tiles
    from featurepipe.validation import deduplicate, split_valid

    began = time.perf_counter()
    df, _ = read_source(session, str(raw / "transactions"), USER_PURCHASE.source)
    valid, _ = split_valid(df, USER_PURCHASE.source)
    tiles = build_tiles(deduplicate(valid, USER_PURCHASE.source), USER_PURCHASE)
    features = features_from_tiles(tiles, first, last, USER_PURCHASE)
    features.drop("as_of_date").write.mode("overwrite").parquet(str(out))
    return time.perf_counter() - began


def duckdb_sql(raw: Path, out: Path, first: dt.date, last: dt.date) -> str:
    horizon = 91
    return f"""
    SET TimeZone = 'UTC';
    COPY (
    WITH valid AS (
        SELECT transaction_id, user_id, category, amount, CAST(event_timestamp AS TIMESTAMP) AS ts
        FROM read_parquet('{raw}/transactions/**/*.parquet', hive_partitioning = false)
        WHERE transaction_id IS NOT NULL AND trim(transaction_id) <> ''
          AND user_id IS NOT NULL AND trim(user_id) <> ''
          AND amount IS NOT NULL AND isfinite(amount) AND amount > 0 AND event_timestamp IS NOT NULL
    ), events AS (
        SELECT * FROM valid
        QUALIFY row_number() OVER (PARTITION BY transaction_id ORDER BY ts, amount, user_id, category NULLS LAST) = 1
    ), tiles AS (
        SELECT user_id, CAST(ts AS DATE) - DATE '1970-01-01' AS day, count(*) AS n, sum(amount) AS s, max(amount) AS mx
        FROM events WHERE ts >= DATE '{first}' - INTERVAL {horizon} DAY AND ts < DATE '{last}'
        GROUP BY ALL
    ), flagged AS (
        SELECT user_id, day, CASE WHEN lag(day) OVER w IS NULL OR day - lag(day) OVER w > {horizon} THEN 1 ELSE 0 END AS starts
        FROM tiles WINDOW w AS (PARTITION BY user_id ORDER BY day)
    ), islands AS (
        SELECT user_id, day, sum(starts) OVER (PARTITION BY user_id ORDER BY day ROWS UNBOUNDED PRECEDING) AS island FROM flagged
    ), spans AS (
        SELECT user_id, greatest(min(day) + 1, DATE '{first}' - DATE '1970-01-01') AS lo,
               least(max(day) + {horizon}, DATE '{last}' - DATE '1970-01-01') AS hi
        FROM islands GROUP BY user_id, island
    ), grid AS (
        SELECT user_id, unnest(range(lo, hi + 1)) AS day FROM spans WHERE lo <= hi
    ), frames AS (
        SELECT user_id, day, n, s, mx, false AS is_as_of FROM tiles
        UNION ALL SELECT user_id, day, NULL, NULL, NULL, true FROM grid
    ), scalars AS (
        SELECT user_id, day, is_as_of,
            coalesce(sum(n) OVER w7, 0) AS transactions_7d,
            coalesce(sum(n) OVER w30, 0) AS transactions_30d,
            coalesce(sum(n) OVER w90, 0) AS transactions_90d,
            coalesce(sum(s) OVER w7, 0.0) AS total_spent_7d,
            coalesce(sum(s) OVER w30, 0.0) AS total_spent_30d,
            coalesce(sum(s) OVER w90, 0.0) AS total_spent_90d,
            CASE WHEN coalesce(sum(n) OVER w30, 0) > 0 THEN sum(s) OVER w30 / sum(n) OVER w30 ELSE 0.0 END AS avg_basket_size_30d,
            coalesce(max(mx) OVER w90, 0.0) AS max_purchase_90d
        FROM frames
        WINDOW w7 AS (PARTITION BY user_id ORDER BY day RANGE BETWEEN 7 PRECEDING AND 1 PRECEDING),
               w30 AS (PARTITION BY user_id ORDER BY day RANGE BETWEEN 30 PRECEDING AND 1 PRECEDING),
               w90 AS (PARTITION BY user_id ORDER BY day RANGE BETWEEN 90 PRECEDING AND 1 PRECEDING)
    ), category_tiles AS (
        SELECT user_id, category, CAST(ts AS DATE) - DATE '1970-01-01' AS day, count(*) AS n
        FROM events WHERE category IS NOT NULL AND ts >= DATE '{first}' - INTERVAL {horizon} DAY AND ts < DATE '{last}'
        GROUP BY ALL
    ), category_frames AS (
        SELECT user_id, category, day, n, false AS is_as_of FROM category_tiles
        UNION ALL
        SELECT g.user_id, c.category, g.day, NULL, true
        FROM grid g JOIN (SELECT DISTINCT user_id, category FROM category_tiles) c USING (user_id)
    ), category_counts AS (
        SELECT user_id, category, day, sum(n) OVER (PARTITION BY user_id, category ORDER BY day
                                                    RANGE BETWEEN 90 PRECEDING AND 1 PRECEDING) AS in_window, is_as_of
        FROM category_frames
    ), favorites AS (
        SELECT user_id, day, first(category ORDER BY in_window DESC, category ASC) AS favorite_category
        FROM category_counts WHERE is_as_of AND in_window > 0 GROUP BY ALL
    )
    SELECT s.user_id, CAST(DATE '1970-01-01' + s.day * INTERVAL 1 DAY AS TIMESTAMP) AS event_timestamp,
           transactions_7d, transactions_30d, transactions_90d, total_spent_7d, total_spent_30d, total_spent_90d,
           avg_basket_size_30d, max_purchase_90d, f.favorite_category
    FROM scalars s LEFT JOIN favorites f USING (user_id, day)
    WHERE s.is_as_of
    ) TO '{out}' (FORMAT parquet);
    """


def duckdb_path(raw: Path, out: Path, first: dt.date, last: dt.date) -> float:
    import duckdb

    began = time.perf_counter()
    con = duckdb.connect()
    con.execute(duckdb_sql(raw, out, first, last))
    con.close()
    return time.perf_counter() - began


def compare(spark_out: Path | list[str], duck_out: Path) -> int:
    """Row-for-row agreement (counts exactly, floats to 1e-9 relative); returns the rows compared.
    `spark_out`: a folder of Parquet files, or the files themselves (a Delta table's live files).

    Checked with DuckDB SQL over the two Parquet outputs: a join of millions of rows in pandas
    would cost more than the benchmark itself."""
    import duckdb

    ints = ("transactions_7d", "transactions_30d", "transactions_90d")
    floats = ("total_spent_7d", "total_spent_30d", "total_spent_90d", "avg_basket_size_30d", "max_purchase_90d")
    checks = ["count(*) FILTER (WHERE a.user_id IS NULL OR b.user_id IS NULL) AS one_side"]
    checks += [f"count(*) FILTER (WHERE a.{c} <> b.{c}) AS {c}" for c in ints]
    checks += [f"count(*) FILTER (WHERE abs(a.{c} - b.{c}) > 1e-12 + 1e-9 * abs(b.{c})) AS {c}" for c in floats]
    checks += ["count(*) FILTER (WHERE a.favorite_category IS DISTINCT FROM b.favorite_category) AS favorite_category",
               "count(*) AS rows"]
    ours = f"[{', '.join(repr(str(f)) for f in spark_out)}]" if isinstance(spark_out, list) else f"'{spark_out}/*.parquet'"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cursor = con.execute(f"""
        WITH a AS (SELECT * REPLACE (CAST(event_timestamp AS TIMESTAMP) AS event_timestamp) FROM read_parquet({ours})),
             b AS (SELECT * REPLACE (CAST(event_timestamp AS TIMESTAMP) AS event_timestamp) FROM read_parquet('{duck_out}'))
        SELECT {", ".join(checks)}
        FROM a FULL OUTER JOIN b ON a.user_id = b.user_id AND a.event_timestamp = b.event_timestamp
    """)
    result = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    con.close()
    rows = result.pop("rows")
    wrong = {k: v for k, v in result.items() if v}
    if wrong:
        raise AssertionError(f"Spark and DuckDB disagree (rows per check): {wrong}")
    return rows


def run(quick: bool) -> dict:
    from featurepipe.generate import generate

    users = 30_000 if quick else 110_000  # ~0.5 events per user per day: ~10M transactions at full scale
    session = spark()
    first = START + dt.timedelta(days=91)
    last = first + dt.timedelta(days=AS_OF_DAYS - 1)
    with workspace("compute") as root:
        # a discarded warm-up pass on a small sample: the JVM compiles the hot paths once, as it
        # would in any long-lived job (DuckDB is compiled ahead of time)
        generate(str(root / "warm"), users=500, start=START, days=DAYS, seed=8, progress=lambda _: None)
        spark_path(session, root / "warm", root / "warm_out", first, last)
        summary = generate(str(root / "raw"), users=users, start=START, days=DAYS, seed=9, progress=lambda _: None)
        spark_seconds = spark_path(session, root / "raw", root / "spark_out", first, last)
        duck_seconds = duckdb_path(root / "raw", root / "duck.parquet", first, last)
        rows = compare(root / "spark_out", root / "duck.parquet")
    return {
        "goal": 5.0,
        "ratio": round(spark_seconds / duck_seconds, 3),
        "transactions": summary.rows,
        "feature_rows": rows,
        "spark_seconds": round(spark_seconds, 2),
        "duckdb_seconds": round(duck_seconds, 2),
        "table": [
            ("raw transactions", summary.rows),
            (f"feature rows ({AS_OF_DAYS} as-of days), results agree", rows),
            ("Spark (tiles + range windows) (s)", f"{spark_seconds:.2f}"),
            ("DuckDB, same Parquet (s)", f"{duck_seconds:.2f}"),
        ],
    }
