"""Shared fixtures: one local Delta-enabled SparkSession for the whole test session (start-up ~9 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parent
# `from reference import ...` (the independent pandas reference) and the DAGs' plugins
sys.path.insert(0, str(TESTS_DIR))
sys.path.insert(0, str(ROOT / "plugins"))

import cli_helpers  # noqa: E402  (after the path above)
from cli_helpers import CLI, cli_env, free_port  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FEATUREPIPE_DATA_DIR for in-process tests (integration tests make their own)."""
    path = tmp_path_factory.mktemp("featurepipe-data")
    os.environ["FEATUREPIPE_DATA_DIR"] = str(path)
    return path


@pytest.fixture()
def lake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A test's own landing zone (`raw/`) and lake (`lake/`) under its tmp dir, for in-process runs."""
    monkeypatch.setenv("FEATUREPIPE_RAW_URI", str(tmp_path / "raw"))
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", str(tmp_path / "lake"))
    return tmp_path


@pytest.fixture(scope="session", autouse=True)
def _airflow_template(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where the session's migrated Airflow database is made, on first need (`cli_helpers.seed_airflow`):
    one folder for all xdist workers (their base temp dirs share a parent), one per session."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    cli_helpers.AIRFLOW_TEMPLATE = shared / "airflow-template"


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `featurepipe spark-server` for the pipeline runs of the integration and reliability tests
    (their steps skip JVM start-up and cold queries; their conftests use it for every test). It
    starts in the background; `run_cli` waits for it before a run. Tests that exercise the other
    runners say so with FEATUREPIPE_STEP_RUNNER (inline, spark-submit)."""
    import signal

    folder = tmp_path_factory.mktemp("spark-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    with open(log, "w") as sink:
        # a long-lived driver: the JIT's optimising compiler pays off (the runs' own JVMs skip it)
        env = cli_env(folder, FEATUREPIPE_JVM_OPTS=os.environ.get("FEATUREPIPE_JVM_OPTS", ""))
        proc = subprocess.Popen([str(CLI), "spark-server", "--port", str(port)], env=env,
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
def spark(session_data_dir: Path) -> Iterator[SparkSession]:
    """The same session builder the jobs use (Delta, UTC, nanosecond handling), on local[2]."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("FEATUREPIPE_SPARK_MASTER", "local[2]")
    os.environ.setdefault("FEATUREPIPE_SHUFFLE_PARTITIONS", "2")
    # tiny data: interpreted execution (the steps' `auto` would choose it too; tests calling the
    # library directly skip the steps' sizing)
    os.environ.setdefault("FEATUREPIPE_SPARK_CODEGEN", "off")
    from featurepipe.spark import get_spark

    session = get_spark("featurepipe-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, stopped at the end."""
    from servers import RedisServer

    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.url
    server.kill()
