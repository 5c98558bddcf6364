"""Running the `featurepipe` CLI from tests exactly as a user does (a subprocess of the venv's console script)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(sys.executable).parent / "featurepipe"

# the backfilled as-of range of the integration tests
START = dt.date(2025, 3, 1)
END = dt.date(2025, 3, 31)
# the step server the integration and reliability tests' runs use, once started (tests/conftest.py:
# `featurepipe spark-server`'s StepServer in a thread of the test process); runs check it answers
SPARK_SERVER: str | None = None
_server_ready = False
# a migrated Airflow metadata database the test data dirs start from (tests/conftest.py sets it):
# `airflow db migrate` costs ~12 s of CPU, once per test session instead of once per data dir
AIRFLOW_TEMPLATE: Path | None = None


def wait_for_spark_server(timeout_s: float = 300) -> None:
    """Block until the shared Spark server answers (at once after the first time)."""
    global _server_ready
    if _server_ready or not SPARK_SERVER:
        return
    from featurepipe.spark_server import ping

    began = time.time()
    while not ping(SPARK_SERVER):
        assert time.time() - began < timeout_s, f"the test Spark server {SPARK_SERVER} did not answer in {timeout_s} s"
        time.sleep(1)
    _server_ready = True


def free_port() -> int:
    """A free loopback TCP port (for the servers the integration tests start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_airflow(data_dir: Path) -> None:
    """Give a new data dir a copy of the session's migrated Airflow database (made once, under a lock
    shared by the xdist workers). Only the database and the migration marker are copied: Airflow
    writes the data dir's own `airflow.cfg`, whose paths name that dir."""
    import fcntl
    import shutil

    if AIRFLOW_TEMPLATE is None or (data_dir / "airflow").exists():
        return
    with open(AIRFLOW_TEMPLATE.parent / f"{AIRFLOW_TEMPLATE.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        markers = list((AIRFLOW_TEMPLATE / "airflow").glob(".migrated-*"))
        if not markers:
            migrate = "from featurepipe.orchestrator import airflow_env, ensure_airflow_db; ensure_airflow_db(airflow_env())"
            made = subprocess.run([sys.executable, "-c", migrate], capture_output=True, text=True, env=cli_env(AIRFLOW_TEMPLATE))
            markers = list((AIRFLOW_TEMPLATE / "airflow").glob(".migrated-*"))
            assert made.returncode == 0 and markers, f"migrating the template Airflow database failed: {made.stderr[-2000:]}"
    home = data_dir / "airflow"
    home.mkdir(parents=True)
    shutil.copy2(AIRFLOW_TEMPLATE / "airflow" / "airflow.db", home / "airflow.db")
    shutil.copy2(markers[0], home / markers[0].name)


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATUREPIPE_")}
    env.update(
        FEATUREPIPE_DATA_DIR=str(data_dir),
        FEATUREPIPE_SPARK_MASTER="local[2]",
        FEATUREPIPE_SHUFFLE_PARTITIONS="2",
        FEATUREPIPE_JVM_OPTS=os.environ.get("FEATUREPIPE_JVM_OPTS", "-XX:TieredStopAtLevel=1"),
        # tiny data: Spark's 1g, not a quarter of the machine per JVM (the suite starts several at once)
        FEATUREPIPE_SPARK_DRIVER_MEMORY=os.environ.get("FEATUREPIPE_SPARK_DRIVER_MEMORY", "1g"),
        # no test leaves a shared driver behind: runs use the test server, or say which runner
        FEATUREPIPE_SPARK_SERVER_IDLE_MINUTES="0",
    )
    if SPARK_SERVER:
        env["FEATUREPIPE_SPARK_SERVER"] = SPARK_SERVER
    env.update(extra)
    return env


def start_cli(data_dir: Path, *args: str, **extra_env: str) -> tuple[subprocess.Popen, float]:
    """`featurepipe ARGS` started in the background (for runs at once); finish with `finish_cli`."""
    if args and args[0] in ("run", "backfill"):
        wait_for_spark_server()
        seed_airflow(data_dir)
    proc = subprocess.Popen([str(CLI), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(data_dir, **extra_env))
    proc.args_shown = " ".join(args)  # type: ignore[attr-defined]
    return proc, time.time()


def finish_cli(started: tuple[subprocess.Popen, float], check: bool = True) -> subprocess.CompletedProcess:
    proc, began = started
    stdout, stderr = proc.communicate(timeout=1800)
    out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    print(f"$ featurepipe {proc.args_shown}  ({time.time() - began:.0f} s, exit {out.returncode})")  # type: ignore[attr-defined]
    print(stdout[-4000:])
    print(stderr[-4000:], file=sys.stderr)
    if check:
        assert out.returncode == 0, f"featurepipe {proc.args_shown} failed: {stderr[-2000:]}"  # type: ignore[attr-defined]
    return out


def run_cli(data_dir: Path, *args: str, check: bool = True, timeout: float = 1800, **extra_env: str) -> subprocess.CompletedProcess:
    """`featurepipe ARGS` as a user runs it; output echoed for the test log."""
    if args and args[0] in ("run", "backfill"):
        wait_for_spark_server()
        seed_airflow(data_dir)
    started = time.time()
    out = subprocess.run([str(CLI), *args], capture_output=True, text=True, env=cli_env(data_dir, **extra_env), timeout=timeout)
    print(f"$ featurepipe {' '.join(args)}  ({time.time() - started:.0f} s, exit {out.returncode})")
    print(out.stdout[-4000:])
    print(out.stderr[-4000:], file=sys.stderr)
    if check:
        assert out.returncode == 0, f"featurepipe {' '.join(args)} failed: {out.stderr[-2000:]}"
    return out


def online(data_dir: Path, users: list[str], **env: str) -> dict[str, dict]:
    """`featurepipe online` for `users`: {user_id: row}."""
    args = ["online"] + [a for u in users for a in ("--user-id", u)]
    out = run_cli(data_dir, *args, **env)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["user_id"] for r in rows] == users
    return {r["user_id"]: r for r in rows}


def generated_data_dir(folder: Path, users: int, start: str, days: int, seed: int, dirty: bool = False) -> Path:
    """A data dir whose landing zone holds `featurepipe generate` output (run as a user runs it)."""
    run_cli(folder, "generate", "--out", str(folder / "raw"), "--users", str(users), "--start", start,
            "--days", str(days), "--seed", str(seed), *(["--dirty"] if dirty else []))
    return folder
