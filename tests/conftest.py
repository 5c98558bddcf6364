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

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FEATUREPIPE_DATA_DIR for in-process tests (integration tests make their own)."""
    path = tmp_path_factory.mktemp("featurepipe-data")
    os.environ["FEATUREPIPE_DATA_DIR"] = str(path)
    return path


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
