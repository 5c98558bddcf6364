"""Integration fixtures: a generated dirty landing zone, the CLI as a user runs it, a shared Spark driver
(tests/conftest.py also holds the real Redis server)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli_helpers import CLI, cli_env


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
