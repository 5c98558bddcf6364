"""The whole pipeline with the landing zone and the lake on S3 (a real S3-protocol server: moto's, on
loopback, signatures checked) and the online store in a real Redis server that requires a password.

Producer files land through `featurepipe land` (boto3), `featurepipe backfill` runs the backfill DAG
through Airflow, its Spark steps read `s3a://` and write every Delta table there, Feast materializes
into Redis; then the feature table equals the independent reference, a training set is
point-in-time correct, an online read serves the latest rows, an unauthenticated Redis client is
refused, and neither the Redis password nor the AWS secret key appears in any log line, report or
output of the run.

Tiny data (8 users, 3 weeks of landings, 5 as-of dates): this test proves the storage path, the
local run (test_pipeline.py) the features at size.

Where the steps run: the test session's shared step server (tests/conftest.py) serves from a JVM
started without S3 settings, and a JVM reads its credentials and s3a settings once, at start. So
this module starts its own `featurepipe spark-server` process with the S3 environment and points
every command at it with `FEATUREPIPE_SPARK_SERVER`: the DAG's tasks take the `server` runner (as
`featurepipe run`/`backfill` do with their shared driver), and `training-set` runs there too.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
from cli_helpers import CLI, cli_env, free_port, run_cli
from compare import KEY, assert_features_equal, assert_online_is_latest
from reference import (
    COUNT_FEATURES,
    FEATURE_COLUMNS,
    FLOAT_FEATURES,
    load_raw,
    point_in_time,
    reference_features,
    split_valid,
)
from s3_server import MotoServer
from servers import RedisServer

pytestmark = pytest.mark.integration

BUCKET = "featurepipe-lake"
FIRST_LANDING = dt.date(2025, 1, 1)
LANDING_DAYS = 21
START, END = dt.date(2025, 1, 17), dt.date(2025, 1, 21)
# recognisable: no log line, report or output of the run may contain it
REDIS_PASSWORD = f"fp-redis-{secrets.token_hex(8)}"


class Runs:
    """The S3 data dir, its environment, and every command's output (grepped for secrets at the end)."""

    def __init__(self, data_dir: Path, env: dict[str, str], moto: MotoServer) -> None:
        self.data_dir, self.env, self.moto = data_dir, env, moto
        self.outputs: list[str] = []

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = run_cli(self.data_dir, *args, check=check, **self.env)
        self.outputs += [out.stdout, out.stderr]
        return out


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    server.create_bucket(BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis-auth"), password=REDIS_PASSWORD).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer, redis_server: RedisServer) -> Iterator[Runs]:
    """The data dir and environment of the S3 runs, with their own step server (module docstring)."""
    data_dir = tmp_path_factory.mktemp("s3-data")
    env = {
        **moto.env(),
        "FEATUREPIPE_RAW_URI": f"s3://{BUCKET}/raw",
        "FEATUREPIPE_LAKE_URI": f"s3://{BUCKET}/lake",
        "FEATUREPIPE_ONLINE_STORE": "redis",
        # the password in the URL, as a user may give it: it must not leak from there either
        "FEATUREPIPE_REDIS_URL": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_server.port}/0",
    }
    port = free_port()
    server_env = cli_env(data_dir, **env)
    server_env.pop("FEATUREPIPE_SPARK_SERVER", None)
    log = data_dir / "logs" / "s3-spark-server.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as sink:
        server = subprocess.Popen([str(CLI), "spark-server", "--port", str(port)], env=server_env, stdout=sink,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        from featurepipe.spark_server import ping

        began = time.time()
        while not ping(url):
            assert server.poll() is None, f"the S3 step server exited: {log.read_text()[-3000:]}"
            assert time.time() - began < 300, f"the S3 step server did not answer in 300 s: {log.read_text()[-3000:]}"
            time.sleep(1)
        print(f"S3 step server ready on {url} after {time.time() - began:.0f} s")
        yield Runs(data_dir, {**env, "FEATUREPIPE_SPARK_SERVER": url}, moto)
    finally:
        server.terminate()  # SIGTERM: the server stops its Spark session and exits
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def producer(runs: Runs) -> Path:
    """A producer's local landings (`generate --dirty`, 8 users), landed on S3 by `featurepipe land`."""
    folder = runs.data_dir.parent / f"{runs.data_dir.name}-producer"
    run_cli(runs.data_dir, "generate", "--out", str(folder), "--users", "8", "--start", FIRST_LANDING.isoformat(),
            "--days", str(LANDING_DAYS), "--seed", "3", "--dirty")
    out = runs.cli("land", "--from", str(folder / "transactions"))
    assert f"{LANDING_DAYS} files copied, 0 already landed" in out.stdout
    return folder / "transactions"


@pytest.fixture(scope="module")
def expected(producer: Path) -> pd.DataFrame:
    return reference_features(producer, START, END)


@pytest.fixture(scope="module")
def backfilled(runs: Runs, producer: Path) -> Runs:
    out = runs.cli("backfill", "--start", START.isoformat(), "--end", END.isoformat())
    assert f"done: as-of {START}..{END}" in out.stdout
    assert "newest landing marked complete" in out.stdout  # the range check read the S3 zone's markers
    return runs


def lake_table(runs: Runs, spark, table: str, folder: Path) -> pd.DataFrame:
    """A Delta table of the S3 lake, copied down and read with the test session (whose JVM has no S3
    settings): Delta's log names its files relative to the table, so the copy is the same table."""
    local = runs.moto.download(BUCKET, f"lake/{table}", folder / table)
    frame = spark.read.format("delta").load(str(local)).toPandas()
    if "event_timestamp" in frame:
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"]).dt.tz_localize("UTC")
    return frame


def test_backfill_on_s3_matches_the_reference(backfilled: Runs, expected: pd.DataFrame, producer: Path, spark,
                                              tmp_path: Path) -> None:
    from featurepipe import lake

    table = lake_table(backfilled, spark, lake.FEATURES, tmp_path)
    assert not table.duplicated(KEY).any() and len(table) == len(expected) > 0
    assert_features_equal(table, expected, "Delta feature table on S3")
    _, invalid = split_valid(load_raw(producer))
    quarantined = lake_table(backfilled, spark, lake.QUARANTINE, tmp_path)
    assert sorted(quarantined["reason"]) == sorted(invalid["reason"]) and len(invalid) > 0

    # everything lives in the bucket: no lake or landing zone was written locally, the lease is released
    assert not (backfilled.data_dir / "lake").exists() and not (backfilled.data_dir / "raw").exists()
    keys = backfilled.moto.keys(BUCKET)
    for table_name in (lake.FEATURES, lake.QUARANTINE, lake.CLEAN_TRANSACTIONS, lake.TILES, lake.INGESTED_FILES):
        assert f"lake/{table_name}/_delta_log/00000000000000000000.json" in keys, table_name
    assert not any(k.startswith(f"lake/{lake.STAGED_FEATURES}/") and not k.endswith("/") for k in keys), \
        "a run's staging table was left on S3"
    assert "lake/_featurepipe_lease.json" not in keys


def test_training_set_and_online_read_from_the_s3_lake_and_password_redis(backfilled: Runs, expected: pd.DataFrame,
                                                                        redis_server: RedisServer) -> None:
    import json

    import redis

    users = sorted(expected["user_id"].unique())
    rng = np.random.default_rng(3)
    stamps = pd.Timestamp(START, tz="UTC") + pd.to_timedelta(rng.integers(0, 5 * 86_400_000_000, 12), unit="us")
    entities = pd.DataFrame({"user_id": rng.choice(users + ["u9999"], 12), "event_timestamp": stamps,
                             "label": rng.integers(0, 2, 12)})
    entities.loc[0, "event_timestamp"] = pd.Timestamp(END, tz="UTC")  # exactly at a midnight: that day's row
    entities.loc[1, "user_id"] = "u9999"  # no history: the no-history values
    folder = backfilled.data_dir / "training"
    folder.mkdir(exist_ok=True)
    entities.to_parquet(folder / "entities.parquet", index=False)
    backfilled.cli("training-set", "--entities", str(folder / "entities.parquet"), "--out", str(folder / "set.parquet"))
    result = pd.read_parquet(folder / "set.parquet")
    manifest = json.loads((folder / "set.parquet.manifest.json").read_text())
    assert manifest["table"] == f"s3a://{BUCKET}/lake/features/user_purchase_features"
    assert list(result.columns) == list(entities.columns) + FEATURE_COLUMNS
    want = point_in_time(expected, entities, no_history=True)
    for name in COUNT_FEATURES:
        assert result[name].astype("int64").tolist() == want[name].astype("int64").tolist(), name
    for name in FLOAT_FEATURES:
        np.testing.assert_allclose(result[name].to_numpy(float), want[name].to_numpy(float), rtol=1e-9)
    assert [v if isinstance(v, str) else None for v in result["favorite_category"]] == [
        v if isinstance(v, str) else None for v in want["favorite_category"]]

    out = backfilled.cli("online", *[a for u in users for a in ("--user-id", u)])
    rows = {r["user_id"]: r for r in (json.loads(line) for line in out.stdout.splitlines() if line.startswith("{"))}
    assert sorted(rows) == users
    assert_online_is_latest(rows, expected)
    assert all(math.isfinite(float(rows[u]["total_spent_90d"])) for u in users)

    # the Redis server that served them refuses a client without the password
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=redis_server.port).get("x")
    assert redis.Redis(host="127.0.0.1", port=redis_server.port, password=REDIS_PASSWORD).dbsize() > 0


def test_no_secret_in_any_log_report_or_output(backfilled: Runs) -> None:
    """Run last: every file the runs wrote under the data dir (Airflow's task logs, the step server's
    and the commands' logs, run reports, monitoring, Feast's registry) and every command's output."""
    hidden = {"Redis password": REDIS_PASSWORD, "AWS secret key": backfilled.moto.secret_key}
    files = [p for p in backfilled.data_dir.rglob("*") if p.is_file()]
    assert any("airflow" in p.parts and p.suffix == ".log" for p in files), "no Airflow log to check"
    assert any(p.name == "s3-spark-server.out" for p in files)
    leaks = []
    for path in files:
        data = path.read_bytes()
        leaks += [f"{what} in {path}" for what, secret in hidden.items() if secret.encode() in data]
    leaks += [f"{what} in a command's output" for what, secret in hidden.items()
              for text in backfilled.outputs if secret in text]
    assert not leaks, leaks
    assert len(backfilled.outputs) >= 8  # land, backfill, training-set, online: stdout and stderr each
    print(f"checked {len(files)} files and {len(backfilled.outputs)} outputs for {', '.join(hidden)}")
