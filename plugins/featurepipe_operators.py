"""Operators for featurepipe DAGs: every Spark step is `jobs/<step>.py`'s `main`, run one of three ways.

- `inline` (the default on a `local[...]` master): `main` runs in the task's own process, on a
  Spark session whose driver is that process (client mode, as Airflow's `@task.pyspark` does).
  Under `airflow dags test` (`featurepipe run/backfill`) every task of a run shares one session:
  one JVM start per run, not one per step.
- `server` (the default when `FEATUREPIPE_SPARK_SERVER` is set): `main` runs on the shared, warm
  driver of `featurepipe spark-server` (`featurepipe.spark_server`); its output streams into the
  task log. No JVM starts in the task at all.
- `spark-submit` (the default on any other master, or `FEATUREPIPE_STEP_RUNNER=spark-submit`):
  `spark-submit jobs/<step>.py --start S --end E --run-id R` through the Spark provider, so the
  driver can run on a cluster (`--deploy-mode cluster` via the connection's extras).

Either way the step gets the same arguments and reads and writes the same lake tables. Kept out
of `dags/` so DAG files only orchestrate. Nothing here reads the environment at import: the
master, JARs and data locations are resolved when a task runs.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, TaskGroup

# the pipeline's steps, in order; each is jobs/<step>.py (compute_features rebuilds the changed
# tiles and computes every as-of date of the range in one Spark application)
from featurepipe.steps import STEPS

SPARK_CONN_ID = "featurepipe_spark"
# every DAG's start_date: Airflow creates no task for a logical date before it, so any later date
# would silently cut off history (a 2024 backfill "succeeding" with nothing done). The daily DAG
# has catchup off, so an early start schedules nothing extra.
HISTORY_START = pendulum.datetime(1970, 1, 1, tz="UTC")
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

# a failed suite, a bad schema or a parity mismatch (read under the lake's lease) fails the same way
# on every try: retrying only delays the alert
DETERMINISTIC_STEPS = {"validate_raw", "validate_features", "check_parity"}
# heavy libraries a step imports, loaded while its Spark session starts (inline runner)
PRELOAD = {"validate_raw": ("great_expectations",), "validate_features": ("great_expectations",), "materialize": ("feast",), "check_parity": ("feast",)}


RUNNERS = ("inline", "server", "spark-submit")


def step_runner(master: str) -> str:
    """`FEATUREPIPE_STEP_RUNNER` if set; else `server` when `FEATUREPIPE_SPARK_SERVER` is set, `inline` on a
    local master and `spark-submit` on any other."""
    chosen = os.environ.get("FEATUREPIPE_STEP_RUNNER", "").strip().lower()
    if chosen and chosen not in RUNNERS:
        raise ValueError(f"FEATUREPIPE_STEP_RUNNER must be one of {', '.join(RUNNERS)}, got {chosen!r}")
    if chosen == "server" and not os.environ.get("FEATUREPIPE_SPARK_SERVER"):
        raise ValueError("FEATUREPIPE_STEP_RUNNER=server needs FEATUREPIPE_SPARK_SERVER (see `featurepipe spark-server`)")
    if chosen:
        return chosen
    if os.environ.get("FEATUREPIPE_SPARK_SERVER"):
        return "server"
    return "inline" if master.startswith("local") else "spark-submit"


class StepFailed(RuntimeError):
    """A step's `main` returned non-zero (its one-line reason is on stderr, in the task log)."""


class SparkJobOperator(SparkSubmitOperator):
    """`jobs/<job>.py --start S --end E --run-id R`: inline, on the Spark server or through `spark-submit` (module docstring)."""

    def __init__(self, *, job: str, start: str | None = None, end: str | None = None,
                 args: list[str] | None = None, **kwargs: Any) -> None:
        """`start`/`end`: the as-of range of a pipeline step; `args`: other arguments instead (a job without a range)."""
        from featurepipe.settings import JOBS_DIR

        kwargs.setdefault("task_id", job)
        super().__init__(
            application=str(JOBS_DIR / f"{job}.py"),
            conn_id=SPARK_CONN_ID,
            name=f"featurepipe-{job}",
            application_args=list(args) if args is not None else ["--start", start, "--end", end],
            **kwargs,
        )
        self.job = job

    def execute(self, context: Any) -> Any:
        from featurepipe.settings import get_settings

        settings = get_settings()
        # the run's state in the lake (its span) is keyed by the DAG run
        given = list(self.application_args)
        if "--run-id" in given:  # a retry in the same process: the id was added by the first try
            given = given[: given.index("--run-id")]
        args = [*given, "--run-id", str(context["run_id"])]
        runner = self._runner = step_runner(settings.spark_master)
        if runner == "inline":
            return self._run_inline(args)
        if runner == "server":
            return self._run_on_server(args)
        self.application_args = args
        return self._submit(context, settings)

    def on_kill(self) -> None:
        """The task timed out or was stopped: end the step's Spark work, not just the task.

        spark-submit: the parent kills the driver process. Inline: cancel this process's jobs. On the
        Spark server, the step's connection closes as the task ends, and the server cancels its jobs.
        The step's lease is released as its `with` block unwinds (or expires with its process)."""
        runner = getattr(self, "_runner", None)
        if runner == "spark-submit":
            super().on_kill()
        elif runner == "inline":
            from pyspark import SparkContext

            if SparkContext._active_spark_context is not None:
                self.log.info("cancelling the Spark jobs of %s", self.job)
                SparkContext._active_spark_context.cancelAllJobs()

    def _run_inline(self, args: list[str]) -> None:
        import importlib

        from featurepipe.spark import start_spark_while

        def preload() -> None:
            for name in PRELOAD.get(self.job, ()):
                importlib.import_module(name)

        start_spark_while(f"featurepipe-{self.job}", preload)
        module = importlib.import_module(f"jobs.{self.job}")
        self.log.info("running jobs/%s.py %s in this process", self.job, " ".join(args))
        code = module.main(args)
        if code:
            raise StepFailed(f"{self.job} failed (exit {code}): see its reason above")

    def _run_on_server(self, args: list[str]) -> None:
        from featurepipe.spark_server import run_step

        url = os.environ["FEATUREPIPE_SPARK_SERVER"]
        self.log.info("running jobs/%s.py %s on the Spark server %s", self.job, " ".join(args), url)
        code = run_step(url, self.job, args, echo=lambda line: print(line, flush=True))
        if code:
            raise StepFailed(f"{self.job} failed (exit {code}) on the Spark server {url}: see its reason above")

    def _submit(self, context: Any, settings: Any) -> Any:
        from featurepipe.spark import python_env, spark_conf

        # an Airflow connection of this id (env or metastore) wins; else the master from settings
        os.environ.setdefault(
            f"AIRFLOW_CONN_{SPARK_CONN_ID.upper()}",
            json.dumps({"conn_type": "spark", "host": settings.spark_master}),
        )
        self.conf = {**spark_conf(), **(self.conf or {})}
        self.env_vars = {
            **(self.env_vars or {}),
            **python_env(),
            "FEATUREPIPE_DATA_DIR": str(settings.data_dir),
            "FEATUREPIPE_RAW_URI": settings.raw_uri,
            "FEATUREPIPE_LAKE_URI": settings.lake_uri,
            "FEATUREPIPE_ONLINE_STORE": settings.online_store,
            "FEATUREPIPE_REDIS_URL": settings.redis_url,
        }
        return super().execute(context)


def pipeline_tasks(start: str, end: str, retries: int | None = None) -> TaskGroup:
    """The steps for the as-of range `start..end` (Jinja templates), chained in order, as one group.

    Task ids stay the step names (no group prefix): `upstream >> pipeline_tasks(...)` chains
    into the first step.
    """
    from featurepipe.settings import get_settings

    settings = get_settings()
    timeout_minutes = settings.step_timeout_minutes
    retries = settings.step_retries if retries is None else retries
    with TaskGroup(group_id="pipeline", prefix_group_id=False, tooltip=" >> ".join(STEPS)) as group:
        previous = None
        for step in STEPS:
            task = SparkJobOperator(
                job=step,
                start=start,
                end=end,
                pool=SPARK_POOL,
                retries=0 if step in DETERMINISTIC_STEPS else retries,
                retry_delay=timedelta(minutes=2),
                retry_exponential_backoff=True,
                # a hung step fails (and frees the pool slot and the lake's lease) instead of holding them forever
                execution_timeout=timedelta(minutes=timeout_minutes) if timeout_minutes else None,
                outlets=[FEATURES_ASSET] if step == "publish" else [],
            )
            if previous is not None:
                previous >> task
            previous = task
    return group
