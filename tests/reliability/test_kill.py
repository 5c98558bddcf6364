"""A driver killed while it writes (`kill -9` on `spark-submit` and its driver JVM):
- a publish whose write job is running: Delta commits atomically, so the table's newest version is
  readable and unchanged; the dead holder's lease expires; the rerun of the step equals one clean run;
- a materialize writing Feast's registry: the registry still loads, and the next run's materialize
  leaves the online store right for every user."""

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
from inprocess import expect, generated_landings, land, online_rows, run, stage

from featurepipe.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration
DATA_START = dt.date(2025, 1, 1)
T = DATA_START + dt.timedelta(days=30)  # the as-of date whose publish (or materialize) is killed
RUN_ID = "killed__publish"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_landings(tmp_path_factory.mktemp("generated"), DATA_START, days=33, seed=9)


def spark_submit(step: str, args: list[str], log: Path, **env: str) -> subprocess.Popen:
    """`spark-submit jobs/<step>.py ARGS` as the DAG's spark-submit runner starts it (its own driver JVM)."""
    from featurepipe.spark import python_env, spark_conf

    conf = [a for key, value in spark_conf().items() for a in ("--conf", f"{key}={value}")]
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]", *conf,
               str(PROJECT_ROOT / "jobs" / f"{step}.py"), *args]
    with open(log, "w") as sink:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, **python_env(), **env},
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)


def kill_when_blocked(driver: subprocess.Popen, log: Path, settle_s: float = 0) -> None:
    """SIGKILL `driver` (spark-submit and its driver JVM: its process group) once its fault hook says it blocks."""
    deadline = time.monotonic() + 300
    while "[fault]" not in log.read_text(errors="replace"):
        assert driver.poll() is None, f"the driver exited before its fault: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"the driver never reached its fault: {log.read_text()[-3000:]}"
        time.sleep(0.5)
    time.sleep(settle_s)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=60)


def test_a_driver_killed_while_publish_writes_leaves_the_table_unchanged_and_the_rerun_clean(
    generated: Path, lake_env: Path, spark, tmp_path: Path
) -> None:
    from featurepipe import lake
    from featurepipe.lease import LEASE_FILE
    from featurepipe.spec import GROUPS

    raw = lake_env / "raw"
    land(generated, raw, T - dt.timedelta(days=2))
    run(spark, T - dt.timedelta(days=5), T - dt.timedelta(days=1), groups=GROUPS)  # publish below covers every group
    land(generated, raw, T - dt.timedelta(days=1))
    stage(spark, T, T, RUN_ID)  # the run for T, done up to its publish (as compute_features leaves it)
    before, version = published(spark), lake.table_version(spark, lake.FEATURES)

    log = tmp_path / "publish.log"
    driver = spark_submit("publish", ["--as-of", str(T), "--run-id", RUN_ID], log,
                          FEATUREPIPE_FAULT_HANG_WRITE=lake.FEATURES, FEATUREPIPE_LEASE_TTL_SECONDS="3")
    kill_when_blocked(driver, log, settle_s=3)  # the write job's task is running (blocked in its first row)
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


def test_a_driver_killed_while_materialize_writes_the_feast_registry_leaves_it_loadable_and_the_next_run_heals(
    generated: Path, lake_env: Path, spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.materialize
    from compare import assert_online_is_latest
    from featurepipe.feast_store import get_store

    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(tmp_path / "data"))  # this test's own registry and online store
    raw = lake_env / "raw"

    def materialize(first: dt.date, last: dt.date, run_id: str) -> None:
        assert jobs.materialize.main(["--start", str(first), "--end", str(last), "--run-id", run_id]) == 0

    land(generated, raw, T - dt.timedelta(days=2))
    run(spark, T - dt.timedelta(days=3), T - dt.timedelta(days=1), run_id="first")
    materialize(T - dt.timedelta(days=3), T - dt.timedelta(days=1), "first")  # the registry exists: the killed run's first write is its record
    registry = tmp_path / "data" / "feast" / "registry.db"
    before = registry.read_bytes()

    land(generated, raw, T - dt.timedelta(days=1))
    run(spark, T, T, run_id="killed")
    log = tmp_path / "materialize.log"
    driver = spark_submit("materialize", ["--as-of", str(T), "--run-id", "killed"], log,
                          FEATUREPIPE_FAULT_HANG_WRITE="feast-registry", FEATUREPIPE_LEASE_TTL_SECONDS="3")
    kill_when_blocked(driver, log)
    assert registry.read_bytes() == before  # the old registry, whole: the new one was never renamed over it
    assert {v.name for v in get_store().list_feature_views()} >= {"user_purchase_features"}

    # the next run's materialize (after the dead holder's lease expired) leaves every user's newest row online
    land(generated, raw, T)
    run(spark, T + dt.timedelta(days=1), T + dt.timedelta(days=1), run_id="next")
    materialize(T + dt.timedelta(days=1), T + dt.timedelta(days=1), "next")
    wanted = published(spark)
    users = sorted(wanted["user_id"].unique())
    assert_online_is_latest(online_rows(users), wanted)
