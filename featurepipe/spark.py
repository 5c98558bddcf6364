"""The one place a SparkSession is built: Delta, UTC, JARs and master from settings.

Jobs, Feast retrieval and Feast materialization all go through `get_spark()`: Feast reuses an
active session and ignores its own `spark_conf`, so the Delta-configured session must exist first.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
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
    # the throughput collector: a batch driver wants the most work per core, not short pauses; on
    # this 2-core machine G1's concurrent threads took cores from the tasks (bench e2e at 2M:
    # 268.8 s with G1, 230.7 s with this, same code, one run each)
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseParallelGC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseParallelGC",
    # users' landings may hold nanosecond timestamps, which Spark cannot read as timestamps;
    # read them as longs and convert (featurepipe/raw.py)
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.inferTimestampNTZ.enabled": "true",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Delta replays its log with 50 partitions by default, one task each, for every new table
    # version: our tables have one file per day and write, a few thousand actions at most
    "spark.databricks.delta.snapshotPartitions": "1",
    # a landing batch names its files (one per day: 365 in a year's backfill); past 32 paths Spark
    # lists them with a Spark job of one task per path, 10x slower than the driver's own listing
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "4096",
    # deduplication keeps rank 1 per event id; Spark would sort every landing row before the shuffle
    # too (a "group limit" that pays off only when most ids repeat; duplicates are rare here)
    "spark.sql.optimizer.windowGroupLimitThreshold": "-1",
    # collect_list/collect_set (a tile's per-value counts and value sets) by sorting, not in an
    # object hash map: past 128 keys per task that map falls back to sorting anyway, after building
    # it; a year of user tiles (2M events) took 9.4 s that way and 5.7 s sorted (measured)
    "spark.sql.execution.useObjectHashAggregateExec": "false",
}

# file:// paths through Hadoop's raw local file system, not its checksummed wrapper: the wrapper
# writes a hidden .crc beside every file and reads it back on every open, rename and delete, which
# doubles the file operations of every Delta commit and log replay. A tiny-data run of the six
# steps on an idle machine took 104 s with the wrapper and 60 s without (README "Test time"); the
# time saved is waiting on files, so a CPU-bound machine gains less. Delta's commits stay atomic
# (put-if-absent through Hadoop's FileContext, which this does not change), and every reader
# already skips hidden files, so lakes written before read the same. Not with S3: hadoop-aws
# buffers uploads through `FileSystem.getLocal`, which must be the checksummed class.
RAW_LOCAL_FS_CONF = {"spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem"}

# Below this much input, compiling Java for every query (whole-stage code generation) costs more
# than it saves: a daily landing of a few thousand events runs ~2x faster interpreted, while
# 5M-row aggregations run ~4x faster compiled (measured: README "Code generation follows the input").
# Feature tables are wide and compress well: 850k feature rows are 29 MiB, and interpreted they
# made validate_features, publish and materialize 1.5-2x slower (bench e2e), hence 4 MiB, not 32.
CODEGEN_MIN_BYTES = 4 * 2**20


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


S3A_JARS_DIR = JARS_DIR / "s3a"
# the JVM's standard AWS chain, as boto3's on the Python side: environment variables, system
# properties, web identity (Kubernetes IRSA), ~/.aws profiles, container and instance roles
# (Hadoop's default list misses the profiles and web identity). Credentials never enter Spark's conf.
S3A_CREDENTIALS = "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"


def s3a_conf() -> dict[str, str]:
    """`s3a://` settings when the landing zone or the lake is on S3; none otherwise (nothing to pay).

    hadoop-aws and the AWS SDK bundle (`make jars`: `.jars/s3a/`, matching Spark's Hadoop 3.5.0) go
    on the driver's class path rather than in `spark.jars`: a local session would copy the ~700 MB
    bundle into its temp folder at every start. Other masters also get them in `spark.jars`, so
    executors fetch them as they fetch Delta's. The endpoint and region are what boto3 resolved from
    the AWS chain (`featurepipe.storage.s3_access`): a custom endpoint (`AWS_ENDPOINT_URL`, e.g.
    MinIO) gets path-style access, and TLS exactly when its scheme is https.
    """
    from urllib.parse import urlparse

    from featurepipe.storage import is_s3, s3_access

    settings = get_settings()
    if not (is_s3(settings.raw_uri) or is_s3(settings.lake_uri)):
        return {}
    jars = sorted(str(p) for p in S3A_JARS_DIR.glob("*.jar")) if S3A_JARS_DIR.is_dir() else []
    if not any("hadoop-aws" in j for j in jars):
        raise MissingJarsError(f"hadoop-aws JARs for s3a:// not found in {S3A_JARS_DIR}: run `make jars` "
                               "(FEATUREPIPE_RAW_URI or FEATUREPIPE_LAKE_URI is on S3)")
    access = s3_access()
    conf = {
        "spark.driver.extraClassPath": os.pathsep.join(jars),
        "spark.hadoop.fs.s3a.aws.credentials.provider": S3A_CREDENTIALS,
        "spark.hadoop.fs.s3a.endpoint.region": access.region,
    }
    if not settings.spark_local:
        conf["spark.jars"] = ",".join(jar_paths() + jars)
    if access.endpoint:
        conf.update({
            "spark.hadoop.fs.s3a.endpoint": access.endpoint,
            "spark.hadoop.fs.s3a.path.style.access": "true",
            "spark.hadoop.fs.s3a.connection.ssl.enabled": str(urlparse(access.endpoint).scheme == "https").lower(),
        })
    return conf


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
    memory = driver_memory()
    if memory:
        conf["spark.driver.memory"] = memory
    if get_settings().spark_local:
        conf["spark.python.daemon.module"] = "featurepipe.worker_daemon"  # workers fork with Feast imported
    code = shipped_code()
    if code:  # spark-submit's --py-files; the driver serves it to the executors, which put it on sys.path
        conf["spark.submit.pyFiles"] = code
    s3 = s3a_conf()
    conf.update(s3 or RAW_LOCAL_FS_CONF)
    return conf


_MEMORY = re.compile(r"^[1-9][0-9]*[kmgt]$")


def driver_memory() -> str | None:
    """The driver's heap (`spark.driver.memory`), or None for Spark's own default (1g).

    FEATUREPIPE_SPARK_DRIVER_MEMORY: a JVM size (`512m`, `6g`) or `auto` (default). `auto` gives a
    local master a quarter of the memory this process may use (the machine's, or its cgroup's limit
    in a container), whole GiB, at least 1g: what the JVM itself takes when nobody sets `-Xmx`. In
    local mode the driver JVM is the whole cluster (every task runs in it), and Spark's 1g is too
    small for a year of a 20M-transaction landing: sorting its tiles spilled until the spill readers'
    buffers exhausted the heap (README "End to end"). Other masters keep Spark's 1g: their driver
    only plans and commits, and the executors' memory is the cluster's setting.
    """
    value = (os.environ.get("FEATUREPIPE_SPARK_DRIVER_MEMORY") or "auto").strip().lower()
    if value != "auto":
        if not _MEMORY.match(value):
            raise ValueError(f"FEATUREPIPE_SPARK_DRIVER_MEMORY must be `auto` or a JVM size such as 512m or 6g; got {value!r}")
        return value
    if not get_settings().spark_local:
        return None
    return f"{max(1, available_memory() // 4 // 2**30)}g"


def available_memory() -> int:
    """Bytes of memory this process may use: the machine's, or less under a cgroup (v2 or v1) limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))  # "max" (v2) or a huge number (v1) means no limit
    return total


def shipped_code() -> str | None:
    """The zip of featurepipe that executors import (`spark.submit.pyFiles`), or None.

    Executors run our code too (Feast's materialization unpickles a repo config naming our offline
    store and registry classes), and on a cluster they are other processes, usually on hosts
    without this checkout. FEATUREPIPE_SPARK_SHIP_CODE: `auto` (default) ships it on any master but
    `local[...]`; `on`; `off` when the executors' Python already has featurepipe (a container image).
    """
    mode = (os.environ.get("FEATUREPIPE_SPARK_SHIP_CODE") or "auto").strip().lower()
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"FEATUREPIPE_SPARK_SHIP_CODE must be one of auto, on, off; got {mode!r}")
    if mode == "off" or (mode == "auto" and get_settings().spark_local):
        return None
    return str(code_zip())


def code_zip() -> Path:
    """`featurepipe/` (code and package data) as a zip under the data dir, built once per version of
    the code: its name is a hash of the contents, so a run never ships stale code under an old name."""
    import hashlib
    import zipfile

    package = Path(__file__).resolve().parent
    files = {path.relative_to(package.parent).as_posix(): path.read_bytes() for path in sorted(package.rglob("*"))
             if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    target = get_settings().data_dir / "spark-code" / f"featurepipe-{digest.hexdigest()[:16]}.zip"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
        temporary.replace(target)  # atomic: two runs building it at once both leave a whole zip
    return target


def _default_shuffle_partitions() -> int:
    value = os.environ.get("FEATUREPIPE_SHUFFLE_PARTITIONS")
    return int(value) if value else 8


def python_env() -> dict[str, str]:
    """Environment that makes Spark's driver and workers run this interpreter (the one with featurepipe).

    Workers otherwise start whichever `python3` is first on PATH (pyspark 4.2 ignores
    `spark.pyspark.python`), and `spark-submit` is found on PATH: the venv's `bin/` goes first.
    On a cluster master a `PYSPARK_PYTHON` set by the user wins: the executors' Python is theirs
    (an image's, or a venv shipped with `spark.archives` as `./environment/bin/python`).
    """
    venv_bin = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if venv_bin not in path.split(os.pathsep):
        path = venv_bin + os.pathsep + path
    workers = sys.executable
    if not get_settings().spark_local:
        workers = os.environ.get("PYSPARK_PYTHON") or sys.executable
    return {"PYSPARK_PYTHON": workers, "PYSPARK_DRIVER_PYTHON": sys.executable, "PATH": path}


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
