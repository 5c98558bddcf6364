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
from featurepipe.aggregations import Dtype
from featurepipe.spec import USER_PURCHASE, Feature, FeatureGroup

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


def _mismatch_sql(f: Feature) -> str:
    """True when a matched row's values of the feature differ (ints and strings exactly, null included;
    floats to 1e-9 relative, null only against null)."""
    a, b = f"a.{f.name}", f"b.{f.name}"
    if f.dtype is Dtype.FLOAT64:
        return f"({a} IS NULL) <> ({b} IS NULL) OR abs({a} - {b}) > 1e-12 + 1e-9 * abs({b})"
    return f"{a} IS DISTINCT FROM {b}"


def compare_group(ours: list[str], duck_out: Path, group: FeatureGroup, first: dt.date, last: dt.date) -> tuple[int, dict]:
    """(rows compared, mismatching rows per check) of the group's rows for as-of first..last: `ours`
    (Parquet files, e.g. a Delta table's live files) against DuckDB's. Checks: rows on one side only
    (full outer join on the join key and event_timestamp), duplicate (key, T) rows on either side,
    and each feature of the spec."""
    import duckdb

    key = group.join_key
    columns = ", ".join([key, "CAST(event_timestamp AS TIMESTAMP) AS event_timestamp", *group.feature_names])
    in_range = f"CAST(event_timestamp AS TIMESTAMP) BETWEEN TIMESTAMP '{first}' AND TIMESTAMP '{last}'"
    files = "[" + ", ".join(f"'{f}'" for f in ours) + "]"
    checks = ["count(*) FILTER (WHERE a._present IS NULL OR b._present IS NULL) AS one_side"]
    checks += [f"count(*) FILTER (WHERE a._present AND b._present AND ({_mismatch_sql(f)})) AS {f.name}"
               for f in group.features]
    checks += ["count(*) AS rows"]
    duplicates = f"count(*) - count(DISTINCT ({key}, event_timestamp))"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cursor = con.execute(f"""
        WITH a AS (SELECT {columns}, true AS _present FROM read_parquet({files}, hive_partitioning = false) WHERE {in_range}),
             b AS (SELECT {columns}, true AS _present FROM read_parquet('{duck_out}') WHERE {in_range})
        SELECT {", ".join(checks)},
               (SELECT {duplicates} FROM a) AS duplicates_ours, (SELECT {duplicates} FROM b) AS duplicates_duckdb
        FROM a FULL OUTER JOIN b ON a.{key} = b.{key} AND a.event_timestamp = b.event_timestamp
    """)
    result = dict(zip([d[0] for d in cursor.description], cursor.fetchone()))
    con.close()
    rows = result.pop("rows")
    return rows, {check: n for check, n in result.items() if n}


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
        ours = sorted(str(p) for p in (root / "spark_out").glob("*.parquet"))
        rows, wrong = compare_group(ours, root / "duck.parquet", USER_PURCHASE, first, last)
        if wrong:
            raise AssertionError(f"Spark and DuckDB disagree (mismatching rows per check): {wrong}")
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
