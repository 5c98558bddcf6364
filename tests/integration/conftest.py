"""Integration fixtures: a generated dirty landing zone, the CLI as a user runs it, a shared Spark driver, a real Redis server."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from cli_helpers import CLI, cli_env, free_port


@pytest.fixture(scope="session", autouse=True)
def _runs_use_the_spark_server(spark_server: str) -> str:
    """Every integration test's pipeline runs go to the shared test Spark server (tests/conftest.py)."""
    return spark_server


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
