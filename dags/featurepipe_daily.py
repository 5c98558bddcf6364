"""
### featurepipe_daily

Computes `user_purchase_features` as of the run's logical date `T` (a UTC midnight, SPEC §3)
and publishes it to the Delta feature table and Feast's online store.

`validate_raw >> compute_tiles >> compute_features >> validate_features >> publish >> materialize`

* **validate_raw**: schema check of every landing, bad rows to `quarantine/transactions`, dedup.
* **compute_tiles / compute_features**: daily tiles, then windows from tiles, staged.
* **validate_features**: the GX feature suite; a failure stops the run before anything is published.
* **publish / materialize**: replace the as-of partition, then refresh the online store.

Every step is a Spark application (`spark-submit jobs/<step>.py`) on `FEATUREPIPE_SPARK_MASTER`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from featurepipe_operators import pipeline_tasks


@dag(
    dag_id="featurepipe_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    # past dates are filled with the backfill DAG (one Spark application per step for the range)
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "featurepipe"},
    tags=["featurepipe", "features", "daily"],
    doc_md=__doc__,
)
def featurepipe_daily() -> None:
    # @daily is a cron trigger: logical_date == the as-of midnight T
    as_of = "{{ logical_date | ds }}"
    pipeline_tasks(start=as_of, end=as_of)


featurepipe_daily()
