"""Shared set-up for the benchmarks: an isolated data dir, a warm Spark session, timed pipeline runs."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """The given environment variables set (None: unset) while inside; their previous values after."""
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def using(root: Path):
    """FEATUREPIPE_DATA_DIR = root (raw and lake below it) while inside; the previous values after."""
    return environ(FEATUREPIPE_DATA_DIR=str(root), FEATUREPIPE_RAW_URI=None, FEATUREPIPE_LAKE_URI=None)


@contextmanager
def workspace(name: str) -> Iterator[Path]:
    """A fresh FEATUREPIPE_DATA_DIR for one benchmark, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"featurepipe-bench-{name}-"))
    try:
        with using(root):
            yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# the in-process benchmarks' session, where the user has not set these: DuckDB may use most of the
# machine's memory, so the local Spark driver gets a fair share too. `bench e2e` runs the command a
# user runs, with the product's defaults: `user_environ()` leaves these out.
SESSION = {"FEATUREPIPE_SHUFFLE_PARTITIONS": "8", "FEATUREPIPE_SPARK_DRIVER_MEMORY": "8g"}
_set_here: set[str] = set()


def user_environ() -> dict[str, str]:
    """os.environ without what `spark()` set for the in-process benchmarks."""
    return {key: value for key, value in os.environ.items() if key not in _set_here}


def spark():
    """The pipeline's session, started (and warmed) before anything is timed: JVM start is excluded."""
    for key, value in SESSION.items():
        if key not in os.environ:
            os.environ[key] = value
            _set_here.add(key)
    from featurepipe.spark import get_spark

    session = get_spark("featurepipe-bench")
    session.range(10).count()
    return session


def pipeline_run(session, start: dt.date, end: dt.date) -> float:
    """Seconds for one run's Spark steps (ingest, tiles, features, publish) for as-of start..end.

    The GX gates and Feast materialization are left out: they cost the same whatever the history.
    """
    from featurepipe.dates import AsOfRange
    from featurepipe.settings import get_settings
    from featurepipe.features import stage_features
    from featurepipe.ingest import ingest
    from featurepipe.publishing import publish
    from featurepipe.spec import TRANSACTIONS, groups_of
    from featurepipe.tiles import rebuild_tiles

    as_of = AsOfRange(start, end)
    began = time.perf_counter()
    ingest(session, as_of)
    rebuild_tiles(session, as_of.label, groups_of(TRANSACTIONS))
    for group in groups_of(TRANSACTIONS):  # every group of the landings it moves (user and product)
        span, _ = stage_features(session, as_of, get_settings().late_lookback_days, "bench", group)
        publish(session, span, run_id="bench", group=group)
    return time.perf_counter() - began


def move_landings(source: Path, target: Path, first: dt.date, last: dt.date) -> None:
    """Move the generator's landing folders for days first..last into the landing zone."""
    (target / "transactions").mkdir(parents=True, exist_ok=True)
    for folder in sorted((source / "transactions").iterdir()):
        day = dt.date.fromisoformat(folder.name.split("=")[1])
        if first <= day <= last:
            shutil.move(str(folder), str(target / "transactions" / folder.name))


def free_port() -> int:
    """A free loopback TCP port."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_online_store(folder: Path) -> Iterator[str]:
    """A redis-server on a free loopback port without persistence (as tests/servers.py starts one),
    made the online store (FEATUREPIPE_ONLINE_STORE, FEATUREPIPE_REDIS_URL) while inside; its URL.
    Stopped afterwards."""
    import subprocess

    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
        else:
            raise RuntimeError("redis-server did not start")
        with environ(FEATUREPIPE_ONLINE_STORE="redis", FEATUREPIPE_REDIS_URL=url):
            yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def live_files(table_path: str) -> list[str]:
    """The Parquet files of a local Delta table's current snapshot, from its `_delta_log` (no Spark).

    The newest checkpoint (if any; single-file, as Delta writes for tables of our size), then every
    JSON commit after it: `add` adds a file, `remove` removes it."""
    import json
    from urllib.parse import unquote

    log = Path(table_path) / "_delta_log"
    files: set[str] = set()
    after = -1
    marker = log / "_last_checkpoint"
    if marker.exists():
        import pyarrow.parquet as pq

        after = json.loads(marker.read_text())["version"]
        adds = pq.read_table(log / f"{after:020d}.checkpoint.parquet", columns=["add"]).column("add").to_pylist()
        files.update(a["path"] for a in adds if a)
    for commit in sorted(log.glob("*.json")):
        if int(commit.stem) <= after:
            continue
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                files.add(action["add"]["path"])
            elif "remove" in action:
                files.discard(action["remove"]["path"])
    return sorted(str(Path(table_path) / unquote(f)) for f in files)


def feature_rows(users: int, first: dt.date, days: int, seed: int, inactive: float = 0.02):
    """Published-shape feature rows (pyarrow) for as-of dates first .. first + days - 1, written
    without the pipeline: each user is active over a random span of as-of days (often starting before
    `first`; a share `inactive` of users never: they have no rows), with one row per as-of date of the
    span; about a tenth of the rows have an empty 90-day window (zeros, null favorite_category), as
    after a user's last event. The values are random, typed as the published ones and non-negative;
    they are not consistent with each other (no benchmark reads their meaning)."""
    import numpy as np
    import pyarrow as pa

    from featurepipe.generate import CATEGORIES

    rng = np.random.default_rng(seed)
    # most users are active before `first` (spans last >= 60 days, so theirs reach it); some start later
    begin = np.where(rng.random(users) < 0.9, rng.integers(-59, 0, users), rng.integers(0, days, users))
    length = np.where(rng.random(users) < inactive, 0, rng.integers(60, 360, users))
    lo, hi = np.maximum(begin, 0), np.minimum(begin + length, days)
    counts = np.maximum(hi - lo, 0)
    user = np.repeat(np.arange(users), counts)
    day = np.repeat(lo, counts) + np.arange(len(user)) - np.repeat(np.cumsum(counts) - counts, counts)
    n = len(user)
    empty = rng.random(n) < 0.1
    t90 = np.where(empty, 0, rng.integers(1, 60, n))
    t30 = np.minimum(t90, rng.integers(0, 25, n))
    t7 = np.minimum(t30, rng.integers(0, 8, n))
    spent = [np.round(t * rng.uniform(5, 90, n), 2) for t in (t7, t30, t90)]
    favorite = np.array(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), n)]
    favorite[empty | (rng.random(n) < 0.03)] = None
    as_of = np.datetime64(first, "D") + day.astype("timedelta64[D]")
    width = max(4, len(str(users)))
    return pa.table({
        "user_id": np.char.add("u", np.char.zfill(user.astype(str), width)).astype(object),
        "event_timestamp": pa.array(as_of.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        "transactions_7d": t7, "transactions_30d": t30, "transactions_90d": t90,
        "total_spent_7d": spent[0], "total_spent_30d": spent[1], "total_spent_90d": spent[2],
        "avg_basket_size_30d": np.where(t30 > 0, spent[1] / np.maximum(t30, 1), 0.0),
        "max_purchase_90d": np.where(t90 > 0, np.round(rng.uniform(5, 400, n), 2), 0.0),
        "favorite_category": pa.array(favorite, pa.string()),
        "as_of_date": pa.array(as_of, pa.date32()),
    })


def publish_rows(session, rows, folder: Path) -> int:
    """Write `rows` (feature_rows) into the published feature table with the publish step's partition
    writer (Delta, by as_of_date, replaceWhere over their dates); returns the rows written."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from featurepipe import lake

    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, folder / "rows.parquet")
    first, last = pc.min(rows["as_of_date"]).as_py(), pc.max(rows["as_of_date"]).as_py()
    lake.replace_partitions(session.read.parquet(str(folder)), lake.FEATURES, lake.AS_OF_DATE, first, last)
    return rows.num_rows
