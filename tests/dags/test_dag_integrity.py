"""Layer 2: the DAGs import cleanly, cheaply, and follow the house policy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
PIPELINE = ["validate_raw", "compute_features", "validate_features", "publish", "materialize", "check_parity"]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("airflow-home")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))  # Airflow 3: examples follow AIRFLOW__CORE__LOAD_EXAMPLES


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"featurepipe_daily", "featurepipe_backfill", "featurepipe_monitoring"}


def test_policy_of_every_dag_in_the_dagbag(dagbag) -> None:
    """Every DAG in the folder, so a new DAG is checked without editing this test."""
    assert dagbag.dags, "the DagBag is empty"
    for dag_id, dag in dagbag.dags.items():
        assert dag.max_active_runs == 1, dag_id
        assert dag.catchup is False, dag_id
        # no start date cuts off history: Airflow creates no task for a logical date before it
        assert dag.start_date is not None and dag.start_date.year <= 1970, (dag_id, dag.start_date)
        assert "featurepipe" in dag.tags, dag_id
        assert dag.doc_md and dag_id in dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.task_id.split("_")[0] in {"validate", "compute", "publish", "materialize", "check", "wait"}, task.task_id
            # validation failures are deterministic: no retry; a sensor has its own timeout; everything else retries
            expected = 0 if task.task_id.startswith(("validate_", "check_", "wait_")) else 2
            assert task.retries == expected, (dag_id, task.task_id, task.retries)


def test_the_cli_knows_every_task_it_must_see_run(dagbag) -> None:
    """`featurepipe run/backfill` fail a run in which Airflow ran fewer tasks than the DAG has."""
    from featurepipe.orchestrator import DAG_TASKS

    assert set(DAG_TASKS) == set(dagbag.dag_ids)
    for dag_id, tasks in DAG_TASKS.items():
        assert set(tasks) == set(dagbag.dags[dag_id].task_ids), dag_id


@pytest.mark.parametrize("dag_id", ["featurepipe_daily", "featurepipe_backfill"])
def test_pipeline_order_and_gate(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    for upstream, downstream in zip(PIPELINE, PIPELINE[1:]):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    # nothing is published or materialized unless validate_features ran (it fails when every group's
    # suite failed; publish copies only the groups whose suite passed, jobs/publish.py), and
    # check_parity, the leaf, fails the run when a group was blocked
    for task_id in ("publish", "materialize"):
        task = dag.get_task(task_id)
        assert "validate_features" in task.get_flat_relative_ids(upstream=True)
        assert task.trigger_rule == "all_success"
    assert dag.get_task("check_parity").downstream_task_ids == set()


def test_spark_steps_submit_jobs_with_the_run_dates(dagbag) -> None:
    daily = dagbag.dags["featurepipe_daily"]
    for step in PIPELINE:
        task = daily.get_task(step)
        assert task.task_type == "SparkJobOperator"
        assert Path(task.application) == ROOT / "jobs" / f"{step}.py"
        assert (ROOT / "jobs" / f"{step}.py").exists()
        # the as-of date is the logical date, never "now"
        assert task.application_args == ["--start", "{{ logical_date | ds }}", "--end", "{{ logical_date | ds }}"]
    backfill = dagbag.dags["featurepipe_backfill"]
    assert backfill.get_task("validate_raw").application_args == ["--start", "{{ params.start }}", "--end", "{{ params.end }}"]
    assert backfill.get_task("check_range").downstream_task_ids == {"validate_raw"}
    # the daily run waits for day T - 1 to land, outside the Spark pool (a waiting sensor holds no slot)
    sensor = daily.get_task("wait_for_landing")
    assert sensor.downstream_task_ids == {"validate_raw"}
    assert sensor.mode == "reschedule" and sensor.pool != "featurepipe_spark"
    assert set(backfill.params.keys()) == {"start", "end"}


def test_spark_steps_share_one_pool_and_publish_feeds_the_asset(dagbag) -> None:
    for dag_id in ("featurepipe_daily", "featurepipe_backfill"):
        dag = dagbag.dags[dag_id]
        for step in PIPELINE:
            assert dag.get_task(step).pool == "featurepipe_spark", (dag_id, step)
        outlets = dag.get_task("publish").outlets
        assert [o.uri for o in outlets] == ["featurepipe://lake/features/user_purchase_features"]


def test_monitoring_runs_after_every_publish_and_alerts_on_failure(dagbag) -> None:
    dag = dagbag.dags["featurepipe_monitoring"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert "featurepipe://lake/features/user_purchase_features" in str(dag.timetable.asset_condition)
    task = dag.get_task("check_features")
    assert task.task_type == "SparkJobOperator" and Path(task.application) == ROOT / "jobs" / "check_features.py"
    assert task.application_args == ["--fail-on-breach"]  # the newest published as-of, whatever triggered it
    assert task.retries == 0 and task.pool == "featurepipe_spark"
    assert [type(c).__name__ for c in task.on_failure_callback] == ["BreachNotifier"]
    # drift never blocks the feature pipeline: nothing in the pipeline DAGs waits for monitoring
    for dag_id in ("featurepipe_daily", "featurepipe_backfill"):
        assert not any("monitor" in t for t in dagbag.dags[dag_id].task_ids)


def test_daily_schedule_is_a_utc_daily_cron(dagbag) -> None:
    dag = dagbag.dags["featurepipe_daily"]
    # a cron *trigger*: the logical date is the as-of midnight itself (data interval start == end)
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.schedule == "@daily"
    assert str(dag.start_date.tzinfo) in ("UTC", "Timezone('UTC')")


def test_dag_import_is_cheap_and_does_no_heavy_imports() -> None:
    """Importing the DAG files (every one in dags/) loads neither Spark, GX nor Feast, and takes well under a few seconds."""
    code = (
        "import sys, time, runpy; sys.path.insert(0, %r); t = time.time()\n"
        "for f in %r: runpy.run_path(%r + '/' + f)\n"
        "heavy = [m for m in ('pyspark', 'great_expectations', 'feast', 'delta') if m in sys.modules]\n"
        "print(repr(heavy), round(time.time() - t, 2))\n"
    ) % (str(ROOT / "plugins"), sorted(p.name for p in DAGS.glob("*.py")), str(DAGS))
    script = Path(os.environ.get("TMPDIR", "/tmp")) / "featurepipe_dag_import_check.py"
    script.write_text(code)
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    heavy, seconds = out.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert heavy == "[]", f"DAG import pulled in {heavy}"
    assert float(seconds) < 10
