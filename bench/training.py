"""training: a point-in-time training set for N entity rows through `feast_store.training_set`
(Feast with our windowed Spark offline store, featurepipe/feast_offline.py, on the published Delta table) vs DuckDB's `ASOF JOIN` over the same
table's current Parquet files, in the same run (goal: ratio <= 20; ours under 120 s at full scale).

The feature table (90 as-of dates) is written directly, not by the pipeline: its Spark steps took
177 s for just 5,000 users (440k transactions), far too long to set up 100,000. `harness.feature_rows`
gives it the published schema and shape (one row per active user per as-of date, spans starting and
ending inside the range, zero rows, null categories) and `harness.publish_rows` writes it with the
publish step's own Delta partition writer. The entity rows' timestamps are spread over the 90 days;
some of their users have no row at all, and users who start late have rows before their first
feature row: both get the no-history values (SPEC §4), which the DuckDB reference applies too.
The two results must agree exactly, value for value.

Excluded from the timing: the JVM start, `feast apply`, and one small discarded training set (the
first Delta read and Feast's imports), as for any warm process.
"""

from __future__ import annotations

import datetime as dt
import time

from bench.harness import feature_rows, live_files, publish_rows, spark, workspace

FIRST = dt.date(2024, 4, 1)  # the first as-of date
AS_OF_DAYS = 90
UNKNOWN_USERS = 0.01  # share of entity rows whose user is not in the table at all


def entity_rows(users: int, rows: int, first: dt.date, seed: int):
    """`rows` entity rows: user ids of the generator's form, timestamps uniform over the as-of days."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, int(users * (1 + UNKNOWN_USERS)), rows)
    width = max(4, len(str(users)))
    seconds = rng.integers(0, AS_OF_DAYS * 86400, rows)
    return pd.DataFrame({
        "user_id": np.char.add("u", np.char.zfill(codes.astype(str), width)).astype(object),
        "event_timestamp": pd.Timestamp(first, tz="UTC") + pd.to_timedelta(seconds, unit="s"),
        "label": rng.random(rows),
    })


def ours(entities) -> tuple[float, object]:
    """(seconds, training set) of `feast_store.training_set` for `entities`, as a user calls it."""
    from featurepipe.feast_store import training_set

    began = time.perf_counter()
    result = training_set(entities)
    return time.perf_counter() - began, result


def duckdb_path(table: str, entities) -> tuple[float, object, int]:
    """The same training set from the table's live Parquet files: ASOF LEFT JOIN, no-history values
    filled; (seconds, training set, rows without history)."""
    import duckdb
    import pyarrow as pa

    from featurepipe.feast_store import no_history_values
    from featurepipe.spec import USER_PURCHASE

    began = time.perf_counter()
    files = live_files(table)
    defaults = no_history_values(USER_PURCHASE.feature_names)
    columns = ", ".join(f"f.{n}" if defaults[n] is None else f"coalesce(f.{n}, {defaults[n]!r}) AS {n}"
                        for n in USER_PURCHASE.feature_names)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("entities", pa.Table.from_pandas(entities.reset_index(drop=True), preserve_index=False)
                 .append_column("row_id", pa.array(range(len(entities)))))
    features = con.from_parquet(files).select("user_id, CAST(event_timestamp AS TIMESTAMP) AS ts, "
                                               + ", ".join(USER_PURCHASE.feature_names))
    con.register("features", features)
    values = con.execute(f"""
        SELECT {columns}, f.ts IS NULL AS no_history
        FROM (SELECT row_id, user_id, CAST(event_timestamp AS TIMESTAMP) AS ts FROM entities) e
        ASOF LEFT JOIN features f ON e.user_id = f.user_id AND e.ts >= f.ts
        ORDER BY e.row_id
    """).df()
    con.close()
    out = entities.copy()
    for name in USER_PURCHASE.feature_names:
        out[name] = values[name].to_numpy()
    return time.perf_counter() - began, out, int(values["no_history"].sum())


def compare(ours_df, ref_df) -> None:
    """Exact agreement, value for value (numbers equal, null favorite_category where the other has it)."""
    from featurepipe.spec import USER_PURCHASE

    wrong = {}
    for name in USER_PURCHASE.feature_names:
        a = ours_df[name].astype(object).where(ours_df[name].notna(), None).tolist()
        b = ref_df[name].astype(object).where(ref_df[name].notna(), None).tolist()
        bad = sum(x != y for x, y in zip(a, b))
        if bad:
            wrong[name] = bad
    if wrong or len(ours_df) != len(ref_df):
        raise AssertionError(f"training_set and DuckDB disagree (rows per feature): {wrong}")


def run(quick: bool) -> dict:
    from featurepipe import lake

    users, rows = (5_000, 50_000) if quick else (100_000, 1_000_000)
    session = spark()
    with workspace("training") as root:
        print(f"[training] writing the feature table: {users:,} users, {AS_OF_DAYS} as-of dates", flush=True)
        began = time.perf_counter()
        feature_count = publish_rows(session, feature_rows(users, FIRST, AS_OF_DAYS, seed=21), root / "rows")
        build = time.perf_counter() - began
        table = lake.table_path(lake.FEATURES)
        print(f"[training] {feature_count:,} feature rows in {build:.1f} s; warm-up training set (feast apply)",
              flush=True)
        ours(entity_rows(users, 1_000, FIRST, seed=1))
        entities = entity_rows(users, rows, FIRST, seed=2)
        # the reference first: run right after the 1M-row Spark job it once took 13.2 s, 4.7 s in a fresh process
        print(f"[training] DuckDB ASOF JOIN over {len(live_files(table))} live files, {rows:,} entity rows", flush=True)
        duck_seconds, duck_df, no_history = duckdb_path(table, entities)
        print(f"[training] DuckDB {duck_seconds:.1f} s; training_set for the same rows", flush=True)
        ours_seconds, ours_df = ours(entities)
        print(f"[training] ours {ours_seconds:.1f} s; comparing", flush=True)
        compare(ours_df, duck_df)
    return {
        "goal": 20.0,
        "ratio": round(ours_seconds / duck_seconds, 3),
        "seconds": round(ours_seconds, 2),
        "seconds_goal": 120.0,
        "duckdb_seconds": round(duck_seconds, 3),
        "entity_rows": rows,
        "users": users,
        "feature_rows": feature_count,
        "no_history_rows": no_history,
        "feature_table_write_seconds": round(build, 1),
        "table": [
            (f"feature rows ({users:,} users, {AS_OF_DAYS} as-of days)", feature_count),
            ("entity rows, results agree exactly", rows),
            ("entity rows without history (no-history values)", no_history),
            ("training_set, Feast + windowed Spark store (s)", f"{ours_seconds:.2f}"),
            ("DuckDB ASOF JOIN, same Parquet (s)", f"{duck_seconds:.2f}"),
        ],
    }
