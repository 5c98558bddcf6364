"""
### featurepipe_daily

Computes every feature group of the spec (`user_purchase_features`, `product_purchase_features`)
as of the run's logical date `T` (a UTC midnight, SPEC §3) and publishes each to its Delta feature
table and Feast's online store. Each step covers all groups in one Spark application.

`wait_for_landing >> validate_raw >> compute_features >> validate_features >> publish >> materialize >> check_parity`

* **wait_for_landing**: a sensor (reschedule mode, outside the Spark pool) that waits until day
  `T − 1` has landed, so no as-of is computed from a partial day: its `_SUCCESS` marker where the
  landing zone has markers, else an event of that day (checks every 5 min, gives up after 12 h
  naming the newest landed day).

* **validate_raw**: schema check of every landing, bad rows to `quarantine/transactions`, dedup.
* **compute_features**: rebuilds the daily tiles that changed, then windows from tiles, staged.
* **validate_features**: each group's GX feature suite; a failed suite blocks that group only (the
  step fails when every group's did).
* **publish / materialize**: replace each validated group's as-of partition, then refresh the
  online store; a group whose suite failed for this run is skipped.
* **check_parity**: each group's sampled online rows must equal their newest published rows in
  Delta (`featurepipe parity`); a mismatch fails the run, naming entities, features and both
  values, and so does a group whose suite blocked it this run (after the others are served).

Every Spark step is `jobs/<step>.py` on `FEATUREPIPE_SPARK_MASTER`: inline in the task, on the
shared `featurepipe spark-server`, or through `spark-submit` (`FEATUREPIPE_STEP_RUNNER`).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from featurepipe_operators import HISTORY_START, pipeline_tasks


@dag(
    dag_id="featurepipe_daily",
    schedule="@daily",
    start_date=HISTORY_START,
    # past dates are filled with the backfill DAG (each step covers the whole range at once)
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "featurepipe"},
    tags=["featurepipe", "features", "daily"],
    doc_md=__doc__,
)
def featurepipe_daily() -> None:
    # @daily is a cron trigger: logical_date == the as-of midnight T
    as_of = "{{ logical_date | ds }}"

    @task.sensor(poke_interval=300, timeout=12 * 3600, mode="reschedule", retries=0,
                 execution_timeout=timedelta(minutes=10))
    def wait_for_landing(ds: str | None = None) -> bool:
        """Done once the landing zone holds events of the day before the run's as-of date."""
        import datetime as dt

        from featurepipe.landing import landed_for

        ready, why = landed_for(dt.date.fromisoformat(ds))
        print(f"[wait_for_landing] {why}")
        return ready

    wait_for_landing() >> pipeline_tasks(start=as_of, end=as_of)


featurepipe_daily()
