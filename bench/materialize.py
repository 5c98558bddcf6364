"""materialize: N feature rows (one as-of date: the latest row of every user) into a real Redis
server through our materialize step (`feast_store.materialize`: Feast's Spark batch engine on our
session, Redis settings from FEATUREPIPE_ONLINE_STORE/FEATUREPIPE_REDIS_URL) vs a raw redis-py
pipelined write of the same rows in Feast's Redis format, in the same run (goal: our rows/s at
least 0.3 of the raw rows/s; higher is better).

The raw write reads the same as-of partition's live Parquet files (pyarrow) and writes one hash per
user: key = Feast's serialized entity key + project, fields = mmh3("view:feature") -> serialized
ValueProto, plus `_ts:view` -> serialized Timestamp, in pipelines of 10,000 rows. After each write,
Redis must hold one key per row and a sample read through the SDK (`feast_store.online_features`)
must equal the table; Redis is emptied between the two.

The feature table is written directly in the published schema (`harness.feature_rows`, one as-of
date). Excluded from the timing: the JVM start, `feast apply` and one small discarded materialize
of another as-of date (Spark's Python workers, Feast's imports), as in any warm process.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from bench.harness import feature_rows, live_files, publish_rows, redis_online_store, spark, workspace

AS_OF = dt.date(2024, 4, 1)
SAMPLE = 2_000  # users read back through the SDK after each write
BATCH = 10_000  # rows per raw pipeline


def ours(as_of: dt.date) -> float:
    from featurepipe.dates import midnight
    from featurepipe.feast_store import materialize

    began = time.perf_counter()
    materialize(midnight(as_of), midnight(as_of))
    return time.perf_counter() - began


def raw_path(url: str, files: list[str]) -> float:
    """Seconds to read `files` (pyarrow) and write their rows into Redis with `raw_write`."""
    import pyarrow.dataset as ds

    from featurepipe.spec import USER_PURCHASE

    began = time.perf_counter()
    raw_write(url, ds.dataset(files).to_table(columns=["user_id", "event_timestamp", *USER_PURCHASE.feature_names]))
    return time.perf_counter() - began


def raw_write(url: str, table) -> None:
    """The rows of `table` (pyarrow) into Redis in Feast's format with plain pipelined HSETs."""
    import redis
    from feast.infra.online_stores.helpers import _mmh3, _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from google.protobuf.timestamp_pb2 import Timestamp

    from featurepipe.feast_store import get_store
    from featurepipe.spec import Dtype, USER_PURCHASE

    project = get_store().config.project
    view = USER_PURCHASE.name
    kinds = {Dtype.INT64: "int64_val", Dtype.FLOAT64: "double_val", Dtype.STRING: "string_val"}
    fields = [(_mmh3(f"{view}:{f.name}"), f.name, kinds[f.dtype]) for f in USER_PURCHASE.features]
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    stamps: dict = {}
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for i, user in enumerate(columns["user_id"]):
        when = columns["event_timestamp"][i]
        if when not in stamps:
            stamp = Timestamp()
            stamp.FromDatetime(when)
            stamps[when] = stamp.SerializeToString()
        mapping = {f"_ts:{view}": stamps[when]}
        for field, name, kind in fields:
            value = columns[name][i]
            mapping[field] = (Value() if value is None else Value(**{kind: value})).SerializeToString()
        key = EntityKey(join_keys=[USER_PURCHASE.join_key], entity_values=[Value(string_val=user)])
        pipe.hset(_redis_key(project, key), mapping=mapping)
        if (i + 1) % BATCH == 0:
            pipe.execute()
    pipe.execute()
    client.close()


def check(url: str, rows, expected: int) -> int:
    """Redis holds `expected` keys, and a sample of users read through the SDK equals `rows`; returns the sample size."""
    import random

    import redis

    from featurepipe.feast_store import online_features
    from featurepipe.spec import USER_PURCHASE

    keys = redis.Redis.from_url(url).dbsize()
    if keys != expected:
        raise AssertionError(f"Redis holds {keys} keys, expected {expected}")
    table = {r["user_id"]: r for r in rows.to_pylist()}
    sample = random.Random(5).sample(sorted(table), min(SAMPLE, len(table)))
    wrong = [row for row in online_features(sample)
             if any(row[n] != table[row["user_id"]][n] for n in USER_PURCHASE.feature_names)]
    if wrong:
        raise AssertionError(f"{len(wrong)} of {len(sample)} users read back differ from the table, e.g. {wrong[0]}")
    return len(sample)


def run(quick: bool) -> dict:
    import redis

    from featurepipe import lake

    users = 50_000 if quick else 1_000_000
    session = spark()
    with workspace("materialize") as root, redis_online_store(root / "redis") as url:
        warm = AS_OF - dt.timedelta(days=1)
        publish_rows(session, feature_rows(1_000, warm, 1, seed=3, inactive=0), root / "warm")
        rows = feature_rows(users, AS_OF, 1, seed=4, inactive=0)
        print(f"[materialize] writing {rows.num_rows:,} feature rows (as-of {AS_OF}) to the feature table", flush=True)
        publish_rows(session, rows, root / "rows")
        print("[materialize] warm-up materialize of 1,000 rows (feast apply, Python workers)", flush=True)
        ours(warm)
        redis.Redis.from_url(url).flushdb()
        print(f"[materialize] our materialize of {rows.num_rows:,} rows into Redis", flush=True)
        ours_seconds = ours(AS_OF)
        checked = check(url, rows, rows.num_rows)
        redis.Redis.from_url(url).flushdb()
        files = [f for f in live_files(lake.table_path(lake.FEATURES)) if f"{lake.AS_OF_DATE}={AS_OF}" in Path(f).parent.name]
        print(f"[materialize] ours {ours_seconds:.1f} s, read back; raw pipelined write of the same rows", flush=True)
        raw_seconds = raw_path(url, files)
        check(url, rows, rows.num_rows)
    ours_rate, raw_rate = rows.num_rows / ours_seconds, rows.num_rows / raw_seconds
    return {
        "goal": 0.3,
        "higher_is_better": True,
        "ratio": round(ours_rate / raw_rate, 3),
        "rows": rows.num_rows,
        "seconds": round(ours_seconds, 2),
        "raw_seconds": round(raw_seconds, 2),
        "rows_per_second": round(ours_rate),
        "raw_rows_per_second": round(raw_rate),
        "table": [
            ("feature rows (latest per user)", rows.num_rows),
            ("users read back through the SDK, equal", checked),
            ("our materialize (s)", f"{ours_seconds:.2f}"),
            ("raw redis-py pipelined HSET (s)", f"{raw_seconds:.2f}"),
            ("our rows/s", f"{ours_rate:,.0f}"),
            ("raw rows/s", f"{raw_rate:,.0f}"),
        ],
    }
