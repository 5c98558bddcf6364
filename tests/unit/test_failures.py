"""The one-line reason of a failed run names the root cause in the task log, not Airflow's wrapper."""

from __future__ import annotations

from featurepipe.failures import root_cause

S3A_LOG = """\
2026-11-27T10:00:01.000000Z [info     ] running jobs/validate_raw.py --start 2025-03-01 --end 2025-03-31 [airflow.task]
26/11/27 10:00:05 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform
Traceback (most recent call last):
  File "/repo/jobs/validate_raw.py", line 29, in main
    report = ingest(spark, as_of, gate=gate)
py4j.protocol.Py4JJavaError: An error occurred while calling o48.load.
: java.lang.RuntimeException: java.lang.ClassNotFoundException: Class org.apache.hadoop.fs.s3a.S3AFileSystem not found
\tat org.apache.hadoop.conf.Configuration.getClass(Configuration.java:2737)
Caused by: java.lang.ClassNotFoundException: Class org.apache.hadoop.fs.s3a.S3AFileSystem not found
\tat org.apache.hadoop.conf.Configuration.getClassByName(Configuration.java:2641)
2026-11-27T10:00:09.000000Z [error    ] Task failed with exception     [task] loc=task_runner.py:1676
featurepipe_operators.StepFailed: validate_raw failed (exit 1): see its reason above
"""


def test_a_jvm_error_is_reported_by_its_innermost_cause() -> None:
    assert root_cause(S3A_LOG) == "java.lang.ClassNotFoundException: Class org.apache.hadoop.fs.s3a.S3AFileSystem not found"


def test_a_java_error_without_causes_is_reported_as_py4j_prints_it() -> None:
    log = "py4j.protocol.Py4JJavaError: An error occurred while calling o9.save.\n: java.io.FileNotFoundException: /lake/x (Permission denied)\n\tat java.io.Foo\n"
    assert root_cause(log) == "java.io.FileNotFoundException: /lake/x (Permission denied)"


def test_our_step_reasons_come_first() -> None:
    log = S3A_LOG + "validate_raw: raw file /raw/a.parquet: column 'amount' has type string, expected double\n"
    assert root_cause(log) == "validate_raw: raw file /raw/a.parquet: column 'amount' has type string, expected double"


def test_a_python_error_is_reported_by_its_last_exception_line_not_the_wrapper() -> None:
    log = """Traceback (most recent call last):
  File "x.py", line 1, in main
redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6390. Connection refused.
2026-11-27T10:00:09.000000Z [error    ] Task failed with exception     [task] loc=task_runner.py:1676
airflow.exceptions.AirflowException: Task failed
"""
    assert root_cause(log) == "redis.exceptions.ConnectionError: Error 111 connecting to 127.0.0.1:6390. Connection refused."


def test_nothing_recognisable_says_so() -> None:
    assert root_cause("all quiet\n") == "see the log"
    assert root_cause("x [error    ] Task failed with exception\n") == "Task failed with exception"


def test_a_timed_out_step_is_named() -> None:
    log = ("[error    ] Process timed out [task]\nairflow.sdk.exceptions.AirflowTaskTimeout: Timeout, PID: 31256\n"
           "[info     ] [DAG TEST] end task task_id=compute_features map_index=-1 [airflow.sdk.definitions.dag]\n")
    assert root_cause(log).startswith("compute_features timed out: it ran longer than its execution_timeout")
