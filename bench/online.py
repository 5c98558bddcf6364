"""online: single-entity reads of `user_purchase_features` from a real Redis server at a fixed rate
of 100 requests/s, p50/p99 through the Feast SDK (`FeatureStore.get_online_features`, in process)
and through the HTTP server (`featurepipe serve`, POST /get-online-features on a keep-alive
connection) vs a raw redis-py `HMGET` of the same key, in the same run (goal: SDK p99 / raw p99
<= 15; SDK p99 and HTTP p99 <= 3 ms).

Open loop: request i is due at start + i / rate and its latency is measured from that due time,
so a slow request delays the next ones and they count it (no coordinated omission). Each way is
paced on its own, one after the other, after 50 discarded warm-up requests; each reads users in
the same random order, and the first answer of each is checked against the table.

The online store is filled without Spark (the rows of `harness.feature_rows`, written in Feast's
format by `bench.materialize.raw_write`, the format that benchmark checks through the SDK), so no
JVM competes for the 2 cores while latencies are measured.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from bench.harness import feature_rows, free_port, redis_online_store, workspace
from bench.materialize import raw_write

AS_OF = dt.date(2024, 4, 1)
USERS = 10_000
RATE = 100.0  # requests per second
WARM_UP = 50


def paced(call: Callable[[str], dict | None], users: list[str]) -> list[float]:
    """Milliseconds from each request's due time (open loop at RATE) to its answer."""
    latencies = []
    start = time.perf_counter() + 0.05
    for i, user in enumerate(users):
        due = start + i / RATE
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        call(user)
        latencies.append((time.perf_counter() - due) * 1000)
    return latencies


def percentiles(latencies: list[float]) -> tuple[float, float]:
    import numpy as np

    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def measure(name: str, call: Callable[[str], dict | None], users: list[str], expected: dict) -> tuple[float, float]:
    """(p50, p99) in ms of `call` paced over `users`, after a warm-up whose first answer must equal `expected`."""
    from featurepipe.spec import USER_PURCHASE

    answer = call(users[0])
    if answer is not None and any(answer[n] != expected[users[0]][n] for n in USER_PURCHASE.feature_names):
        raise AssertionError(f"{name} read {answer} for {users[0]}, the table has {expected[users[0]]}")
    paced(call, users[:WARM_UP])
    p50, p99 = percentiles(paced(call, users[WARM_UP:]))
    print(f"[online] {name}: {len(users) - WARM_UP} requests at {RATE:.0f}/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
    return p50, p99


def sdk_reader(refs: list[str]) -> Callable[[str], dict]:
    from featurepipe.feast_store import get_store

    store = get_store()

    def read(user: str) -> dict:
        values = store.get_online_features(features=refs, entity_rows=[{"user_id": user}]).to_dict()
        return {k: v[0] for k, v in values.items()}
    return read


def http_reader(url: str, refs: list[str]) -> Callable[[str], dict]:
    import requests

    session = requests.Session()

    def read(user: str) -> dict:
        response = session.post(f"{url}/get-online-features", json={"features": refs, "entities": {"user_id": [user]}})
        response.raise_for_status()
        body = response.json()
        names = body["metadata"]["feature_names"]
        return {n: r["values"][0] for n, r in zip(names, body["results"])}
    return read


def raw_reader(url: str) -> Callable[[str], None]:
    """HMGET of the user's hash: Feast's key and fields, values left serialized."""
    import redis
    from feast.infra.online_stores.helpers import _mmh3, _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from featurepipe.feast_store import get_store
    from featurepipe.spec import USER_PURCHASE

    project = get_store().config.project
    fields = [_mmh3(f"{USER_PURCHASE.name}:{n}") for n in USER_PURCHASE.feature_names] + [f"_ts:{USER_PURCHASE.name}"]
    client = redis.Redis.from_url(url)

    def read(user: str) -> None:
        key = EntityKey(join_keys=[USER_PURCHASE.join_key], entity_values=[Value(string_val=user)])
        if client.hmget(_redis_key(project, key), fields)[-1] is None:
            raise AssertionError(f"no Redis hash for {user}")
    return read


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    """`featurepipe serve` on a free port with this process's settings; (process, URL) once it answers."""
    import requests

    port = free_port()
    log = open(root / "serve.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "featurepipe"), "serve", "--port", str(port)],
                            env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"featurepipe serve exited: {(root / 'serve.log').read_text()[-2000:]}")
        try:
            requests.get(f"{url}/health", timeout=1)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("featurepipe serve did not answer within 120 s")


def run(quick: bool) -> dict:
    import random

    from featurepipe.feast_store import ensure_applied, get_store
    from featurepipe.spec import USER_PURCHASE

    requests_per_way = 300 if quick else 3000
    refs = [f"{USER_PURCHASE.name}:{n}" for n in USER_PURCHASE.feature_names]
    with workspace("online") as root, redis_online_store(root / "redis") as url:
        print("[online] feast apply; filling Redis", flush=True)
        ensure_applied(get_store())
        rows = feature_rows(USERS, AS_OF, 1, seed=6, inactive=0)
        raw_write(url, rows)
        expected = {r["user_id"]: r for r in rows.to_pylist()}
        users = random.Random(7).choices(sorted(expected), k=WARM_UP + requests_per_way)
        print(f"[online] {len(expected):,} users in Redis; starting featurepipe serve", flush=True)
        server, server_url = start_server(root)
        try:
            sdk_p50, sdk_p99 = measure("SDK", sdk_reader(refs), users, expected)
            http_p50, http_p99 = measure("HTTP", http_reader(server_url, refs), users, expected)
            raw_p50, raw_p99 = measure("raw HMGET", raw_reader(url), users, expected)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "goal": 15.0,
        "ratio": round(sdk_p99 / raw_p99, 3),
        "requests_per_way": requests_per_way,
        "rate_per_second": RATE,
        "sdk_p50_ms": round(sdk_p50, 3),
        "sdk_p99_ms": round(sdk_p99, 3),
        "http_p50_ms": round(http_p50, 3),
        "http_p99_ms": round(http_p99, 3),
        "raw_p50_ms": round(raw_p50, 3),
        "raw_p99_ms": round(raw_p99, 3),
        "p99_goal_ms": 3.0,
        "table": [
            (f"requests per way (at {RATE:.0f}/s, open loop)", requests_per_way),
            ("SDK get_online_features p50 / p99 (ms)", f"{sdk_p50:.2f} / {sdk_p99:.2f}"),
            ("HTTP featurepipe serve p50 / p99 (ms)", f"{http_p50:.2f} / {http_p99:.2f}"),
            ("raw redis-py HMGET p50 / p99 (ms)", f"{raw_p50:.2f} / {raw_p99:.2f}"),
            ("SDK p99 <= 3 ms / HTTP p99 <= 3 ms", f"{'yes' if sdk_p99 <= 3 else 'no'} / {'yes' if http_p99 <= 3 else 'no'}"),
        ],
    }
