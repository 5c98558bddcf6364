"""The one place a SparkSession is built: Delta, UTC, JARs and master from settings.

Jobs, Feast retrieval and Feast materialization all go through `get_spark()`: Feast reuses an
active session and ignores its own `spark_conf`, so the Delta-configured session must exist first.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Callable

from featurepipe.settings import JARS_DIR, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

BASE_CONF = {
    **DELTA_CONF,
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    # users' landings may hold nanosecond timestamps, which Spark cannot read as timestamps;
    # read them as longs and convert (featurepipe/raw.py)
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Delta replays its log with 50 partitions by default, one task each, for every new table
    # version: our tables have one file per day and write, a few thousand actions at most
    "spark.databricks.delta.snapshotPartitions": "1",
}

# Below this much input, compiling Java for every query (whole-stage code generation) costs more
# than it saves: a daily landing of a few thousand events runs ~2x faster interpreted, while
# 5M-row aggregations run ~4x faster compiled (measured: README "Code generation follows the input").
CODEGEN_MIN_BYTES = 32 * 2**20


def codegen_conf(on: bool) -> dict[str, str]:
    """Spark's settings for compiled (on) or interpreted (off) query execution; both are runtime settings."""
    return {"spark.sql.codegen.wholeStage": str(on).lower(), "spark.sql.codegen.factoryMode": "FALLBACK" if on else "NO_CODEGEN"}


def fit_codegen(spark: SparkSession, input_bytes: int) -> bool:
    """Code generation on or off for a step about to read `input_bytes` (FEATUREPIPE_SPARK_CODEGEN=auto),
    or as the setting says (on, off). Returns whether it is on."""
    mode = get_settings().spark_codegen
    on = mode == "on" or (mode == "auto" and input_bytes >= CODEGEN_MIN_BYTES)
    for key, value in codegen_conf(on).items():
        spark.conf.set(key, value)
    return on


class MissingJarsError(RuntimeError):
    pass


def jar_paths() -> list[str]:
    """Delta's JARs, fetched once by `make jars` (Maven) into `.jars/`."""
    jars = sorted(str(p) for p in JARS_DIR.glob("*.jar")) if JARS_DIR.is_dir() else []
    if not any("delta-spark" in j for j in jars):
        raise MissingJarsError(f"Delta JARs not found in {JARS_DIR}: run `make jars` (fetches them from Maven Central)")
    return jars


def spark_conf(shuffle_partitions: int | None = None) -> dict[str, str]:
    """Every setting our sessions need, for the builder and for `spark-submit --conf`."""
    conf = dict(BASE_CONF)
    # e.g. "-XX:TieredStopAtLevel=1" makes short jobs on small data start faster (tests, demo)
    extra = os.environ.get("FEATUREPIPE_JVM_OPTS", "").strip()
    if extra:
        for key in ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions"):
            conf[key] = f"{conf[key]} {extra}"
    conf["spark.jars"] = ",".join(jar_paths())
    conf["spark.sql.shuffle.partitions"] = str(shuffle_partitions or _default_shuffle_partitions())
    codegen = get_settings().spark_codegen
    if codegen != "auto":  # auto: Spark's default (on) until a step fits it to its input
        conf.update(codegen_conf(codegen == "on"))
    # in local mode the driver JVM does all the work: its heap (Spark's default, 1g) is the cluster
    memory = os.environ.get("FEATUREPIPE_SPARK_DRIVER_MEMORY", "").strip()
    if memory:
        conf["spark.driver.memory"] = memory
    return conf


def _default_shuffle_partitions() -> int:
    value = os.environ.get("FEATUREPIPE_SHUFFLE_PARTITIONS")
    return int(value) if value else 8


def python_env() -> dict[str, str]:
    """Environment that makes Spark's driver and workers run this interpreter (the one with featurepipe).

    Workers otherwise start whichever `python3` is first on PATH (pyspark 4.2 ignores
    `spark.pyspark.python`), and `spark-submit` is found on PATH: the venv's `bin/` goes first.
    """
    venv_bin = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if venv_bin not in path.split(os.pathsep):
        path = venv_bin + os.pathsep + path
    return {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "PATH": path}


def start_spark_while(app_name: str, work: Callable[[], None]) -> SparkSession:
    """Start the session in a thread while `work` (e.g. importing a heavy library) runs in this one.

    Starting the JVM is mostly waiting for another process, so it overlaps well with Python work;
    an existing session is returned at once after `work`.
    """
    import threading

    failed: list[BaseException] = []

    def start() -> None:
        try:
            get_spark(app_name)
        except BaseException as exc:  # re-raised in the caller's thread below
            failed.append(exc)

    thread = threading.Thread(target=start, name="featurepipe-spark-start", daemon=True)
    thread.start()
    try:
        work()
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return get_spark(app_name)  # makes it this thread's active session too


def get_spark(app_name: str = "featurepipe") -> SparkSession:
    """The active session, or a new Delta-enabled one on `FEATUREPIPE_SPARK_MASTER`."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    for key, value in python_env().items():
        os.environ.setdefault(key, value)
    builder = SparkSession.builder.appName(app_name)
    # under spark-submit the master (and deploy mode) were already chosen on its command line
    if not os.environ.get("SPARK_ENV_LOADED"):
        builder = builder.master(get_settings().spark_master)
    for key, value in spark_conf().items():
        builder = builder.config(key, value)
    from featurepipe.command_log import process_output_to_log

    with process_output_to_log():  # a command's log file, if it opened one, gets the JVM's output for good
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
