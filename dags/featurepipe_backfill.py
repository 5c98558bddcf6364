"""
### featurepipe_backfill

Recomputes every feature group (`user_purchase_features`, `product_purchase_features`) for every as-of midnight from **start** to **end**
(inclusive) — the same steps as the daily DAG, each covering the whole range at once:
`compute_features` builds every missing tile and every as-of date of the range in one.
Trigger it from the Airflow UI ("Trigger DAG" shows the form) or with
`featurepipe backfill --start DATE --end DATE`.

`check_range >> validate_raw >> compute_features >> validate_features >> publish >> materialize >> check_parity`

Reruns replace exactly their own as-of partitions. Backfilling an older range never moves the
online store back in time: users keep their newest published row.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from featurepipe_operators import HISTORY_START, pipeline_tasks


@dag(
    dag_id="featurepipe_backfill",
    schedule=None,
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "featurepipe"},
    tags=["featurepipe", "features", "backfill"],
    doc_md=__doc__,
    params={
        "start": Param("2025-03-01", type="string", format="date", title="First as-of date",
                       description="UTC midnight, YYYY-MM-DD"),
        "end": Param("2025-03-31", type="string", format="date", title="Last as-of date (inclusive)",
                     description="UTC midnight, YYYY-MM-DD; not before start"),
    },
)
def featurepipe_backfill() -> None:
    @task(retries=0)
    def check_range(params: dict | None = None) -> str:
        """Fail fast on a reversed range or one past the landed data, before any Spark work starts."""
        from featurepipe.landing import check_backfill_range

        return check_backfill_range(params["start"], params["end"])

    check_range() >> pipeline_tasks(start="{{ params.start }}", end="{{ params.end }}")


featurepipe_backfill()
