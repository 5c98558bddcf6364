"""Running our DAGs through embedded Airflow (`airflow dags test`, SQLite metadata DB under the data dir)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from featurepipe.settings import DAGS_DIR, PROJECT_ROOT, get_settings
from featurepipe.steps import STEPS

DAILY_DAG = "featurepipe_daily"
BACKFILL_DAG = "featurepipe_backfill"
MONITORING_DAG = "featurepipe_monitoring"
# every task of each DAG (tests/dags checks these against the DagBag): a run in which Airflow ran
# (or was told to skip) fewer is a failure, never "done"
DAG_TASKS = {DAILY_DAG: ("wait_for_landing", *STEPS), BACKFILL_DAG: ("check_range", *STEPS),
             MONITORING_DAG: ("check_features",)}

# a step's own line: raw (inline or server runner) or after a logger prefix (spark-submit's output)
_STEP_LINE = re.compile(r"(?:^|\] )((?:\[(?:wait_for_landing|validate_raw|compute_features|validate_features|publish|materialize|check_parity|check_features|feast|monitoring)\]|GX suite|parity:|validate_(?:raw|features):|check_parity:|featurepipe).*?)(?: \[airflow[.\w]*\].*)?$")
_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
_ERROR = re.compile(r"\[error\s*\] (.*?)(?: \[[\w.]+\] loc=.*)?$")


def progress_line(line: str) -> str | None:
    """The part of an Airflow log line a person running the pipeline wants to see, or None."""
    if m := _TASK_START.search(line):
        return f"  -> {m.group(1)}"
    if m := _TASK_END.search(line):
        return f"     {m.group(1)} finished"
    if m := _ERROR.search(line):
        return f"  !! {m.group(1)[:300]}"
    if m := _STEP_LINE.search(line):
        return f"     {m.group(1)[:300]}"
    return None


class PipelineFailed(RuntimeError):
    pass


def airflow_env() -> dict[str, str]:
    """Environment for the embedded Airflow: home, DAGs, plugins, SQLite metadata DB, our venv first on PATH."""
    settings = get_settings()
    home = settings.airflow_home
    from featurepipe.spark import python_env

    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
            or f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
            "FEATUREPIPE_DATA_DIR": str(settings.data_dir),
            **python_env(),
            "GX_ANALYTICS_ENABLED": "false",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT / "plugins"), env.get("PYTHONPATH")])),
        }
    )
    return env


def airflow_command() -> str:
    """The `airflow` CLI of our venv."""
    return str(Path(sys.executable).parent / "airflow")


def _airflow(args: list[str], env: dict[str, str], log: Path | None = None, echo: bool = False) -> int:
    """Run the `airflow` CLI of our venv; output goes to `log` (and progress lines to stdout)."""
    cmd = [airflow_command(), *args]
    with open(log, "a") if log else open(os.devnull, "w") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            sink.write(line)
            shown = progress_line(line.rstrip()) if echo else None
            if shown:
                print(shown, flush=True)
        return proc.wait()


def ensure_airflow_db(env: dict[str, str]) -> None:
    """`airflow db migrate` (with our pool and the DAGs serialized: `featurepipe.airflow_setup`) once
    per data dir and Airflow version; two commands started at once on a new data dir migrate it once
    (the second waits for the first)."""
    import fcntl

    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    marker = home / f".migrated-{version('apache-airflow')}"
    if marker.exists():
        return
    with open(home / ".migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not marker.exists():
                _migrate(env, home, marker)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _migrate(env: dict[str, str], home: Path, marker: Path) -> None:
    print(f"[airflow] initialising the metadata database under {home}", flush=True)
    log = home / "db-migrate.log"
    with open(log, "a") as sink:
        code = subprocess.run([sys.executable, "-m", "featurepipe.airflow_setup"], env=env, stdout=sink,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise PipelineFailed(f"setting up Airflow's metadata database failed (exit {code}): see {log}")
    marker.touch()


def run_dag(dag_id: str, logical_date: str, conf: dict | None = None, skip: str | None = None) -> Path:
    """One DAG run through `airflow dags test`; raises PipelineFailed (with the log path) unless it succeeds.

    `skip` is a regex of task ids marked successful without running (e.g. resume from a step).
    """
    import json

    env = airflow_env()
    ensure_airflow_db(env)
    logs = Path(env["AIRFLOW_HOME"]) / "cli-logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{dag_id}-{logical_date[:10]}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    args = ["dags", "test", dag_id, logical_date]
    if conf:
        args[2:2] = ["--conf", json.dumps(conf)]
    if skip:
        args[2:2] = ["--mark-success-pattern", skip]
    print(f"[airflow] {dag_id} for {logical_date[:10]}{' ' + json.dumps(conf) if conf else ''} (log: {log})", flush=True)
    rc = _airflow(args, env, log=log, echo=True)
    state = _final_state(log)
    if rc != 0 or state != "success":
        raise PipelineFailed(f"{dag_id} run {'ended ' + state if state else 'failed'} (exit {rc}); {_first_error(log)}; full log: {log}")
    missing = not_run(log.read_text(errors="replace"), DAG_TASKS.get(dag_id, ()))
    if missing:
        raise PipelineFailed(
            f"{dag_id} for {logical_date[:10]}: Airflow marked the run successful but ran no {', '.join(missing)} "
            f"(a logical date before the DAG's start_date, or tasks removed?); nothing was computed; full log: {log}"
        )
    return log


def not_run(log_text: str, tasks: tuple[str, ...]) -> list[str]:
    """The tasks of `tasks` that an `airflow dags test` log shows neither ending nor marked successful."""
    ended = set(_TASK_END.findall(log_text))
    marked = set(re.findall(r"\[DAG TEST\] Marking success for <Task\(\w+\): (\w+)>", log_text))
    return [t for t in tasks if t not in ended | marked]


def _final_state(log: Path) -> str | None:
    states = re.findall(r"DagRun Finished: .*?state=(\w+)", log.read_text(errors="replace"))
    return states[-1] if states else None


def _first_error(log: Path) -> str:
    from featurepipe.failures import root_cause

    return root_cause(log.read_text(errors="replace"))
