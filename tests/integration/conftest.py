"""Integration fixtures: a generated dirty landing zone, the CLI as a user runs it, a shared Spark driver, a real Redis server."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

import cli_helpers
from cli_helpers import CLI, cli_env, free_port


@pytest.fixture(scope="session", autouse=True)
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `featurepipe spark-server` for the integration tests' pipeline runs (their steps skip JVM
    start-up and cold queries). It starts in the background; `run_cli` waits for it before a run.
    Tests that exercise the other runners say so with FEATUREPIPE_STEP_RUNNER (inline, spark-submit)."""
    import os
    import signal

    folder = tmp_path_factory.mktemp("spark-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([str(CLI), "spark-server", "--port", str(port)], env=cli_env(folder),
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    cli_helpers.SPARK_SERVER = url
    yield url
    assert proc.poll() is None, f"featurepipe spark-server exited early: {log.read_text()[-3000:]}"
    cli_helpers.SPARK_SERVER = None
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory, session_data_dir: Path) -> Path:
    """The session's data dir with `featurepipe generate --dirty` raw data (30 users, Dec 2024 .. Apr 2025)."""
    out = subprocess.run(
        [str(CLI), "generate", "--out", str(session_data_dir / "raw"), "--users", "30",
         "--start", "2024-12-01", "--days", "130", "--seed", "11", "--dirty"],
        capture_output=True, text=True, env=cli_env(session_data_dir),
    )
    assert out.returncode == 0, out.stderr
    return session_data_dir


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `make test` installs it (apt-get install -y redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
