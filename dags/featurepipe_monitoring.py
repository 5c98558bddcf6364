"""
### featurepipe_monitoring

Watches the published features after every publish (scheduled on the feature table's Asset,
which `publish` of the daily and backfill DAGs updates): drift, completeness and freshness of the
newest published as-of date against its reference, as `featurepipe report` computes them.

`check_features` (`jobs/check_features.py`)

* writes `reports/monitoring/<T>/index.html` and `summary.json` under the data dir and appends the
  statistics to the Delta table `monitoring/feature_stats`;
* **fails on a breach**, and its notifier sends the breaches to the webhook in
  `FEATUREPIPE_ALERT_WEBHOOK_URL` (without one, the task log names each breach).

Drift never blocks the feature pipeline: only its failed GX suites do. Thresholds: `monitoring.toml`.
"""

from __future__ import annotations

from airflow.sdk import dag

from featurepipe_alerts import BreachNotifier
from featurepipe_operators import FEATURES_ASSET, HISTORY_START, SPARK_POOL, SparkJobOperator


@dag(
    dag_id="featurepipe_monitoring",
    schedule=[FEATURES_ASSET],
    start_date=HISTORY_START,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "featurepipe"},
    tags=["featurepipe", "monitoring"],
    doc_md=__doc__,
)
def featurepipe_monitoring() -> None:
    # jobs/check_features.py on the same runners as the pipeline's steps (inline, the Spark server,
    # spark-submit), one Spark application at a time with them (it reads the lake they write)
    SparkJobOperator(job="check_features", args=["--fail-on-breach"], pool=SPARK_POOL, retries=0,
                     on_failure_callback=[BreachNotifier()])


featurepipe_monitoring()
