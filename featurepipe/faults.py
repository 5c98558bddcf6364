"""Faults injected for real by the reliability tests (tests/reliability/), off unless their variable is set.

- `FEATUREPIPE_FAULT_HANG_STEP=<step>`: that step, once it holds the lake's lease, runs a Spark job
  that never ends, as a hung job would (the step timeout's test).
- `FEATUREPIPE_FAULT_HANG_WRITE=<table>`: a write to that lake table (e.g.
  `features/user_purchase_features`) blocks inside its Spark job, after the job has started and
  before Delta commits, so a test can kill the driver while it writes. With `feast-registry`, a
  write of Feast's registry blocks after writing its new file and before the rename that
  publishes it (a materialize records its intervals there).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

HANG_STEP = "FEATUREPIPE_FAULT_HANG_STEP"
HANG_WRITE = "FEATUREPIPE_FAULT_HANG_WRITE"


def _forever(*_: object) -> bool:
    import time

    time.sleep(10**6)
    return True


def hang_if_writing_file(what: str) -> None:
    """Block forever if FEATUREPIPE_FAULT_HANG_WRITE names `what` (a file write outside Spark)."""
    if os.environ.get(HANG_WRITE) == what:
        print(f"[fault] {HANG_WRITE}: the write of {what} blocks", flush=True)
        _forever()


def hang_if_step(spark: SparkSession, step: str) -> None:
    """Block in a never-ending Spark job if `step` is the one FEATUREPIPE_FAULT_HANG_STEP names."""
    if os.environ.get(HANG_STEP) == step:
        print(f"[{step}] {HANG_STEP}: running a Spark job that never ends", flush=True)
        spark.sparkContext.parallelize([0], 1).foreach(_forever)


def hang_if_writing(df: DataFrame, table: str) -> DataFrame:
    """`df`, or, if FEATUREPIPE_FAULT_HANG_WRITE names `table`, `df` behind a filter whose every
    row blocks: the write job runs (its tasks started, no commit) and never ends."""
    if os.environ.get(HANG_WRITE) != table:
        return df
    from pyspark.sql import functions as F

    print(f"[fault] {HANG_WRITE}: the write to {table} blocks inside its Spark job", flush=True)
    blocked = F.udf(_forever, "boolean").asNondeterministic()
    return df.where(blocked(F.lit(0)))
