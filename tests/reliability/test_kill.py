"""A driver killed while it writes: `kill -9` on a `spark-submit` publish whose write job is running.
Delta commits atomically, so the table's newest version is readable and unchanged; the dead
holder's lease expires; the rerun of the same step equals one clean run."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from compare import KEY, published
from inprocess import LOOKBACK, expect, generated_landings, land, run

from featurepipe.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration
DATA_START = dt.date(2025, 1, 1)
T = DATA_START + dt.timedelta(days=30)  # the as-of date whose publish is killed
RUN_ID = "killed__publish"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_landings(tmp_path_factory.mktemp("generated"), DATA_START, days=32, seed=9)


def spark_submit(step: str, args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """`spark-submit jobs/<step>.py ARGS` as the DAG's spark-submit runner starts it (its own driver JVM)."""
    from featurepipe.spark import python_env, spark_conf

    conf = [a for key, value in spark_conf().items() for a in ("--conf", f"{key}={value}")]
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]", *conf,
               str(PROJECT_ROOT / "jobs" / f"{step}.py"), *args]
    with open(log, "w") as sink:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, **python_env(), **env},
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_driver_killed_while_publish_writes_leaves_the_table_unchanged_and_the_rerun_clean(
    generated: Path, lake_env: Path, spark, tmp_path: Path
) -> None:
    from featurepipe import bookkeeping, lake
    from featurepipe.dates import AsOfRange
    from featurepipe.features import stage_features
    from featurepipe.ingest import ingest
    from featurepipe.lease import LEASE_FILE
    from featurepipe.tiles import rebuild_tiles

    raw = lake_env / "raw"
    land(generated, raw, T - dt.timedelta(days=2))
    run(spark, T - dt.timedelta(days=5), T - dt.timedelta(days=1))
    # the run for T, done up to its publish (as compute_features leaves it)
    land(generated, raw, T - dt.timedelta(days=1))
    as_of = AsOfRange(T, T)
    ingest(spark, as_of)
    rebuild_tiles(spark, as_of.label)
    span, _ = stage_features(spark, as_of, LOOKBACK, RUN_ID)
    bookkeeping.record_run_span(spark, RUN_ID, as_of, span, lake.table_version(spark, lake.TILES))
    before, version = published(spark), lake.table_version(spark, lake.FEATURES)

    log = tmp_path / "publish.log"
    driver = spark_submit("publish", ["--as-of", str(T), "--run-id", RUN_ID], log,
                          FEATUREPIPE_FAULT_HANG_WRITE=lake.FEATURES, FEATUREPIPE_LEASE_TTL_SECONDS="3")
    deadline = time.monotonic() + 300
    while "blocks inside its Spark job" not in log.read_text(errors="replace"):
        assert driver.poll() is None, f"the publish driver exited before its write: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"the publish never reached its write: {log.read_text()[-3000:]}"
        time.sleep(0.5)
    time.sleep(3)  # the write job's task is running (blocked in its first row)
    os.killpg(driver.pid, signal.SIGKILL)  # spark-submit and its driver JVM
    driver.wait(timeout=60)
    assert (lake_env / "lake" / LEASE_FILE).exists(), "the killed holder's lease should be left to expire"

    # the newest version is the one before the publish, and it reads whole
    assert lake.table_version(spark, lake.FEATURES) == version
    after = published(spark)
    assert after.sort_values(KEY, ignore_index=True).equals(before.sort_values(KEY, ignore_index=True))

    # the rerun of the same publish takes over the expired lease and publishes what one clean run would
    import jobs.publish

    assert jobs.publish.main(["--as-of", str(T), "--run-id", RUN_ID]) == 0
    assert lake.table_version(spark, lake.FEATURES) == version + 1
    expect(lake_env, spark, T - dt.timedelta(days=5), T, "after the killed publish and its rerun")
