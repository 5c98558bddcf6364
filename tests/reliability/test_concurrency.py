"""One writer at a time, whatever starts the run: CLI runs at once (which bypass Airflow's pool) end
with the table and the online store of one sequential run.

One run executes its steps inline (its own Spark driver in its own process), the others on the
shared test Spark server: two drivers writing one lake, as two schedulers or two users would.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cli_helpers import finish_cli, generated_data_dir, online, start_cli
from compare import assert_features_equal, assert_online_is_latest, published
from reference import reference_features

pytestmark = pytest.mark.integration
DAY = dt.timedelta(days=1)
FIRST = dt.date(2025, 1, 20)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, spark_server: str) -> Path:
    return generated_data_dir(tmp_path_factory.mktemp("concurrency"), 8, "2025-01-01", 30, seed=5)


def test_runs_at_once_equal_one_sequential_run_in_the_table_and_in_redis(
    data_dir: Path, redis_url: str, spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = {"FEATUREPIPE_ONLINE_STORE": "redis", "FEATUREPIPE_REDIS_URL": redis_url}
    inline = {**redis, "FEATUREPIPE_STEP_RUNNER": "inline"}

    # two backfills on overlapping ranges and a daily run for a newer day, started at once: the
    # daily run races both older backfills, whose materialize must not send older rows after its own
    runs = [
        start_cli(data_dir, "backfill", "--start", str(FIRST), "--end", str(FIRST + 5 * DAY), **inline),
        start_cli(data_dir, "backfill", "--start", str(FIRST + 3 * DAY), "--end", str(FIRST + 7 * DAY), **redis),
        start_cli(data_dir, "run", "--date", str(FIRST + 8 * DAY), **redis),
    ]
    for run in runs:
        finish_cli(run)
    logs = "".join(p.read_text(errors="replace") for p in (data_dir / "airflow" / "cli-logs").glob("*.log"))
    assert "waiting for the lake, leased by" in logs, "no step ever waited for another run: the test proved nothing"

    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(data_dir))
    wanted = reference_features(data_dir / "raw" / "transactions", FIRST, FIRST + 8 * DAY)
    assert_features_equal(published(spark), wanted, "after runs at once")
    users = sorted(wanted["user_id"].unique())
    assert_online_is_latest(online(data_dir, users, **redis), wanted)
