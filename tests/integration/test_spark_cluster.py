"""Layer 3: a backfill on a real Spark standalone cluster (a master and a worker on loopback), not local[*].

The run is `featurepipe backfill` with FEATUREPIPE_SPARK_MASTER=spark://127.0.0.1:PORT. Its steps
use the inline runner: the driver is the run's own `airflow dags test` process, and all its steps are
one application on the cluster, whose executors (the worker's JVMs) do the reading, aggregating and
Delta writing, and run Feast's materialization in Python. The warm test server (tests/conftest.py)
runs on local[2], so it is switched off for this run. The `spark-submit` runner (the default on a
cluster master) would start a driver JVM and executors per step (six applications instead of one,
~1 min each on this 2-core machine); it has its own run on local[2] in test_pipeline, and it ships
the same `spark_conf()` (JARs and code zip) through `spark-submit --conf`.

What must reach the executors, and how the test makes a miss fail:
- the Delta JARs (`spark.jars`): the worker's JVMs have only Spark's own classpath, so a Delta write
  fails without them;
- our Python code: executors run a Python whose installed featurepipe is hidden (`executor_python`),
  so they can import it only from the zip featurepipe.spark ships (`spark.submit.pyFiles`).
The lake is on local disk, which driver and worker share here; a real cluster needs a shared lake (S3).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Iterator

import pytest
from cli_helpers import generated_data_dir, run_cli
from compare import KEY, assert_features_equal, published
from reference import reference_features
from spark_cluster import SparkStandalone

pytestmark = pytest.mark.integration

START, END = dt.date(2025, 2, 8), dt.date(2025, 2, 12)

# Imported first by the executors' Python (on PYTHONPATH): `featurepipe` only from a shipped zip on
# sys.path, never from the venv's installed (editable) copy, as on a cluster host without our checkout.
# Each such Python leaves its pid in MARKER: the test sees the executors did run it.
_HIDE_INSTALLED = '''
import sys
from importlib.machinery import PathFinder

with open(MARKER, "a") as marker:
    marker.write(f"{os.getpid()}\\n")


class ShippedFeaturepipeOnly:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "featurepipe":
            return None
        spec = PathFinder.find_spec(name, [entry for entry in sys.path if entry.endswith(".zip")])
        if spec is None:
            raise ModuleNotFoundError("featurepipe was not shipped to this executor (its installed copy is hidden "
                                      "by tests/integration/test_spark_cluster.py)", name=name)
        return spec


sys.meta_path.insert(0, ShippedFeaturepipeOnly)
'''


def executor_python(folder: Path) -> Path:
    """PYSPARK_PYTHON for the executors: our interpreter and its libraries, without featurepipe."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_HIDE_INSTALLED.replace("MARKER", repr(str(folder / "started"))))
    wrapper = folder / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{folder}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkStandalone]:
    """One master and one worker (2 cores, 1 GiB for executors), stopped with everything they started."""
    try:
        server = SparkStandalone(tmp_path_factory.mktemp("spark-cluster"), cores=2, memory="1g").start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()
    assert not server.leftovers(), f"processes of the Spark cluster still running after stop: {server.leftovers()}"


def test_a_backfill_on_a_standalone_cluster_equals_the_reference(cluster: SparkStandalone, tmp_path_factory, spark,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = generated_data_dir(tmp_path_factory.mktemp("cluster-run"), 6, "2025-02-01", 14, seed=3, dirty=True)
    hidden = executor_python(data / "executor-python")
    out = run_cli(data, "backfill", "--start", START.isoformat(), "--end", END.isoformat(),
                  FEATUREPIPE_SPARK_MASTER=cluster.url,
                  FEATUREPIPE_SPARK_SERVER="",  # not the test session's warm driver (local[2])
                  FEATUREPIPE_STEP_RUNNER="inline",  # the driver: the run's own process, on the cluster master
                  PYSPARK_PYTHON=str(hidden),
                  SPARK_LOCAL_IP="127.0.0.1")  # the driver listens on loopback too
    assert f"done: as-of {START}..{END}" in out.stdout
    assert "materialized to the online store" in out.stdout and "parity:" in out.stdout

    # the run was an application of this cluster (ended with the run), its executors fetched the JARs
    # and our code, and their Python was the one without featurepipe installed
    apps = [app for app in cluster.finished_applications() if app["name"].startswith("featurepipe")]
    assert apps, f"the master saw no featurepipe application: {cluster.applications()}"
    assert all(app["state"] == "FINISHED" for app in apps), apps
    assert (hidden.parent / "started").exists(), "the executors did not run the Python of PYSPARK_PYTHON"
    for app in apps:
        fetched = {path.name for path in (cluster.work_dir / app["id"]).glob("*/*")}
        assert any(name.startswith("delta-spark_") and name.endswith(".jar") for name in fetched), (app["id"], fetched)
        assert any(name.startswith("featurepipe-") and name.endswith(".zip") for name in fetched), (app["id"], fetched)

    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(data))
    monkeypatch.delenv("FEATUREPIPE_LAKE_URI", raising=False)
    monkeypatch.delenv("FEATUREPIPE_RAW_URI", raising=False)
    table = published(spark)
    expected = reference_features(data / "raw" / "transactions", START, END)
    assert not table.duplicated(KEY).any()
    assert len(expected) > 0
    assert_features_equal(table, expected, "Delta feature table written on the cluster")
