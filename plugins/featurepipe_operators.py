"""Operators for featurepipe DAGs: every Spark step is a real Spark application (`spark-submit`).

Kept out of `dags/` so DAG files only orchestrate. Nothing here reads the environment at import:
the master, JARs and data locations are resolved when a task runs.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset

SPARK_CONN_ID = "featurepipe_spark"
# every Spark step takes a slot: one slot (created by `featurepipe run/backfill`; create it with
# `airflow pools set featurepipe_spark 1 ...` elsewhere) serialises steps across DAG runs, so two
# runs never write the same Delta tables at once
SPARK_POOL = "featurepipe_spark"
# the published feature table: downstream DAGs can schedule on it (schedule=[FEATURES_ASSET])
FEATURES_ASSET = Asset(
    name="user_purchase_features",
    uri="featurepipe://lake/features/user_purchase_features",
    group="featurepipe",
)

# the pipeline's steps, in order; each is jobs/<step>.py
# (compute_features rebuilds the changed tiles and computes every as-of date of the range in one
# Spark application)
STEPS = ("validate_raw", "compute_features", "validate_features", "publish", "materialize")
# a failed suite or a bad schema fails the same way on every try: retrying only delays the alert
DETERMINISTIC_STEPS = {"validate_raw", "validate_features"}


class SparkJobOperator(SparkSubmitOperator):
    """`spark-submit jobs/<job>.py --start S --end E` on the master of `FEATUREPIPE_SPARK_MASTER`."""

    def __init__(self, *, job: str, start: str, end: str, **kwargs: Any) -> None:
        from featurepipe.settings import JOBS_DIR

        kwargs.setdefault("task_id", job)
        super().__init__(
            application=str(JOBS_DIR / f"{job}.py"),
            conn_id=SPARK_CONN_ID,
            name=f"featurepipe-{job}",
            application_args=["--start", start, "--end", end],
            **kwargs,
        )
        self.job = job

    def execute(self, context: Any) -> Any:
        from featurepipe.settings import get_settings
        from featurepipe.spark import spark_conf

        settings = get_settings()
        # an Airflow connection of this id (env or metastore) wins; else the master from settings
        os.environ.setdefault(
            f"AIRFLOW_CONN_{SPARK_CONN_ID.upper()}",
            json.dumps({"conn_type": "spark", "host": settings.spark_master}),
        )
        venv_bin = str(Path(sys.executable).parent)
        self.conf = {**spark_conf(), **(self.conf or {})}
        self.env_vars = {
            **(self.env_vars or {}),
            # the driver and the workers run the interpreter that has featurepipe installed
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
            "FEATUREPIPE_DATA_DIR": str(settings.data_dir),
            "FEATUREPIPE_RAW_URI": settings.raw_uri,
            "FEATUREPIPE_LAKE_URI": settings.lake_uri,
            "FEATUREPIPE_ONLINE_STORE": settings.online_store,
            "FEATUREPIPE_REDIS_URL": settings.redis_url,
        }
        return super().execute(context)


def pipeline_tasks(start: str, end: str, retries: int = 2) -> list[SparkJobOperator]:
    """The steps for the as-of range `start..end` (Jinja templates), chained in order."""
    tasks = []
    for step in STEPS:
        task = SparkJobOperator(
            job=step,
            start=start,
            end=end,
            pool=SPARK_POOL,
            retries=0 if step in DETERMINISTIC_STEPS else retries,
            retry_delay=timedelta(minutes=2),
            retry_exponential_backoff=True,
            outlets=[FEATURES_ASSET] if step == "publish" else [],
        )
        if tasks:
            tasks[-1] >> task
        tasks.append(task)
    return tasks
