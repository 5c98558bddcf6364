"""Shared fixtures: one local Delta-enabled SparkSession for the whole test session (start-up ~9 s)."""

from __future__ import annotations

import os
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

# tiny data: every JVM the tests start keeps Spark's own 1g heap, not the product's quarter of the
# machine for a local master (the suite runs several at once); test_driver_memory checks the default
os.environ.setdefault("FEATUREPIPE_SPARK_DRIVER_MEMORY", "1g")

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
def spark_server(spark: SparkSession) -> Iterator[str]:
    """The step server of the integration and reliability tests' pipeline runs: `featurepipe
    spark-server`'s own `StepServer`, serving from a thread of this test process on the session's
    Spark (tests/integration/test_shared_driver.py starts real `featurepipe spark-server`
    processes). The runs' steps then share the JVM, its warm code and the libraries this process
    has loaded, instead of a second JVM per worker. Steps run one at a time while the test waits on
    its run, each with the request's environment and output (`StepServer.run`). Tests that exercise
    the other runners say so with FEATUREPIPE_STEP_RUNNER (inline, spark-submit)."""
    import threading

    from featurepipe.spark_server import StepServer

    server = StepServer(("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, name="featurepipe-test-step-server", daemon=True)
    thread.start()
    cli_helpers.SPARK_SERVER = f"http://127.0.0.1:{server.server_address[1]}"
    yield cli_helpers.SPARK_SERVER
    cli_helpers.SPARK_SERVER = None
    server.shutdown()
    server.server_close()


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
