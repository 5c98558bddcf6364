"""Airflow's own scheduler runs the DAGs (`featurepipe ui`, i.e. `airflow standalone`): an Airflow
backfill of the daily DAG, newest day first, while a UI-style trigger of the backfill DAG runs a
disjoint range at the same time. Both share the Spark pool; the table equals the definition.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from cli_helpers import CLI, cli_env, free_port, run_cli, seed_airflow, wait_for_spark_server
from compare import assert_features_equal, published
from reference import reference_features

pytestmark = pytest.mark.integration

DATA_START = dt.date(2025, 1, 1)
DAILY = (dt.date(2025, 2, 8), dt.date(2025, 2, 9))  # `airflow backfill create` of featurepipe_daily
RANGE = (dt.date(2025, 2, 1), dt.date(2025, 2, 3))  # a triggered featurepipe_backfill run
DEADLINE_S = 1500


class Airflow:
    """A running `featurepipe ui` (scheduler, DAG processor, API server, triggerer) and its CLI."""

    def __init__(self, data_dir: Path, env: dict[str, str], log: Path) -> None:
        self.data_dir, self.env, self.log = data_dir, env, log

    def __call__(self, *args: str) -> str:
        for attempt in range(5):
            out = subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=self.env,
                                 capture_output=True, text=True, timeout=300)
            # SQLite takes one writer at a time: a CLI write can meet the scheduler's and fail at once
            if out.returncode == 0 or "database is locked" not in out.stderr:
                break
            time.sleep(2 + attempt * 2)
        assert out.returncode == 0, f"airflow {' '.join(args)}: {out.stderr[-2000:]}"
        return out.stdout

    def runs(self, dag_id: str) -> list[dict]:
        """The DAG's runs, read from the metadata database itself: polling through the `airflow` CLI
        would cost a Python start-up with Airflow's imports (~4 s of CPU) every time."""
        with _database(self.data_dir) as db:
            rows = db.execute("SELECT run_id, logical_date, state FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchall()
        return [{"run_id": r, "logical_date": str(d), "state": st} for r, d, st in rows]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Airflow]:
    from featurepipe.orchestrator import airflow_env

    data_dir = tmp_path_factory.mktemp("scheduler-data")
    run_cli(data_dir, "generate", "--out", str(data_dir / "raw"), "--users", "12", "--start", str(DATA_START),
            "--days", "45", "--seed", "5", "--dirty")
    seed_airflow(data_dir)
    # the DAG files do not change during the test: parse them once, not every 30 s (each parse is
    # a Python process importing the DAGs, CPU the runs' tasks need on a 2-core machine)
    env = cli_env(data_dir, AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="600")
    with pytest.MonkeyPatch.context() as patch:  # airflow_env() reads the data dir from the environment
        patch.setenv("FEATUREPIPE_DATA_DIR", str(data_dir))
        airflow_cli_env = {**airflow_env(), **{k: v for k, v in env.items() if k.startswith("FEATUREPIPE_")}}
    port = free_port()
    log = data_dir / "standalone.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([str(CLI), "ui", "--port", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
    service = Airflow(data_dir, airflow_cli_env, log)
    try:
        began = time.time()
        while True:  # the API server answers and the DAG processor has serialised both DAGs
            assert proc.poll() is None, f"featurepipe ui exited: {log.read_text()[-3000:]}"
            assert time.time() - began < 300, f"Airflow did not come up in 300 s: {log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5)
                if _serialized(data_dir) >= {"featurepipe_daily", "featurepipe_backfill"}:
                    break
            except (OSError, AssertionError, sqlite3.Error):
                pass
            time.sleep(3)
        wait_for_spark_server()  # the runs' steps go to the shared driver
        yield service
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _serialized(data_dir: Path) -> set[str]:
    with _database(data_dir) as db:
        return {r[0] for r in db.execute("SELECT dag_id FROM serialized_dag")}


def _database(data_dir: Path) -> contextlib.closing[sqlite3.Connection]:
    """The data dir's Airflow metadata database (SQLite), read-only."""
    return contextlib.closing(sqlite3.connect(f"file:{data_dir / 'airflow' / 'airflow.db'}?mode=ro", uri=True, timeout=30))


def _wait_for(airflow: Airflow, dag_id: str, logical_dates: set[str]) -> list[dict]:
    began = time.time()
    while True:
        runs = [r for r in airflow.runs(dag_id) if str(r["logical_date"])[:10] in logical_dates]
        if len(runs) == len(logical_dates) and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        assert time.time() - began < DEADLINE_S, f"{dag_id} runs not finished: {runs}\n{airflow.log.read_text()[-3000:]}"
        time.sleep(3)


def test_airflow_backfill_of_the_daily_dag_and_a_triggered_backfill_at_once_equal_the_definition(
    airflow: Airflow, spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    airflow("dags", "unpause", "--treat-dag-id-as-regex", "-y", "^featurepipe_(daily|backfill)$")
    # the daily DAG's own backfill, newest day first (out of order), two runs at a time
    airflow("backfill", "create", "--dag-id", "featurepipe_daily", "--from-date", str(DAILY[0]),
            "--to-date", str(DAILY[1]), "--run-backwards", "--max-active-runs", "2")
    # ...while the backfill DAG, triggered as from the UI form, builds a disjoint range
    airflow("dags", "trigger", "featurepipe_backfill", "--logical-date", f"{RANGE[1]}T00:00:00+00:00",
            "--conf", json.dumps({"start": str(RANGE[0]), "end": str(RANGE[1])}))

    days = {str(DAILY[0] + dt.timedelta(days=k)) for k in range((DAILY[1] - DAILY[0]).days + 1)}
    daily_runs = _wait_for(airflow, "featurepipe_daily", days)
    backfill_runs = _wait_for(airflow, "featurepipe_backfill", {str(RANGE[1])})
    for run in daily_runs + backfill_runs:
        assert run["state"] == "success", f"{run}: see {airflow.data_dir / 'airflow'}/logs"
    assert all(r["run_id"].startswith("backfill__") for r in daily_runs), daily_runs

    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(airflow.data_dir))
    table = published(spark)
    raw = airflow.data_dir / "raw" / "transactions"
    for first, last in (RANGE, DAILY):
        part = table[table["event_timestamp"].dt.date.between(first, last)]
        assert_features_equal(part, reference_features(raw, first, last), f"as-of {first}..{last}")
    assert not table.duplicated(["user_id", "event_timestamp"]).any()
