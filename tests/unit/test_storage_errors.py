"""A full disk or a denied write becomes one line naming the path, from Python's errno or the JVM's text."""

from __future__ import annotations

import errno

from featurepipe.failures import root_cause
from featurepipe.storage_errors import lake_write_error

LAKE = "/data/lake"
JAVA = """An error occurred while calling o412.save.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 12.0 failed 1 times
\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2856)
Caused by: java.io.IOException: Mkdirs failed to create file:/data/lake/clean/transactions/event_date=2025-01-20 (exists=false, cwd=file:/repo): Operation not permitted
\tat org.apache.hadoop.fs.ChecksumFileSystem.create(ChecksumFileSystem.java:715)
"""


def test_an_oserror_with_a_storage_errno_names_its_file() -> None:
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/lake/.lease.tmp")
    message = str(lake_write_error(exc, LAKE))
    assert message == "cannot write /data/lake/.lease.tmp (lake: /data/lake): no space left on device; nothing was committed"


def test_a_jvm_error_names_the_lake_path_of_its_innermost_storage_cause() -> None:
    wrapped = RuntimeError("the step failed")
    wrapped.__cause__ = Exception(JAVA)
    message = str(lake_write_error(wrapped, LAKE))
    assert message.startswith("cannot write /data/lake/clean/transactions/event_date=2025-01-20 (lake: /data/lake): operation not permitted")


def test_hadoops_mkdirs_failure_says_the_folder_could_not_be_created() -> None:
    exc = Exception("Caused by: java.io.IOException: Mkdirs failed to create file:/data/lake/tiles/event_date=2025-01-20 (exists=false, cwd=file:/repo)")
    assert str(lake_write_error(exc, LAKE)) == (
        "cannot write /data/lake/tiles/event_date=2025-01-20 (lake: /data/lake): the folder could not be created "
        "(no permission, or a read-only file system); nothing was committed")


def test_a_jvm_storage_error_without_a_path_names_the_lake() -> None:
    exc = Exception("Caused by: org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device")
    assert str(lake_write_error(exc, LAKE)) == "cannot write the lake at /data/lake: no space left on device; nothing was committed"


def test_other_errors_are_left_alone() -> None:
    assert lake_write_error(ValueError("bad date"), LAKE) is None
    assert lake_write_error(OSError(errno.ENOENT, "No such file", "/x"), LAKE) is None


def test_the_runs_one_line_reason_is_the_lake_write_error() -> None:
    log = (
        "Traceback (most recent call last):\n"
        "featurepipe.storage_errors.LakeWriteError: cannot write the lake at /data/lake: no space left on device; nothing was committed\n"
        "2026-11-28T00:00:00Z [error    ] Task failed with exception     [task]\n"
        "featurepipe_operators.StepFailed: validate_raw failed (exit 1): see its reason above\n"
    )
    assert root_cause(log) == "LakeWriteError: cannot write the lake at /data/lake: no space left on device; nothing was committed"
