"""Airflow 3 as services, the production shape: a PostgreSQL metadata database, a scheduler
(LocalExecutor), a DAG processor and an API server, each its own process, authentication on.

Through the REST API with a token: trigger `featurepipe_backfill` with params and create an Airflow
backfill of `featurepipe_daily` (`POST /api/v2/backfills`); through the UI in headless Chromium:
log in and trigger `featurepipe_backfill` from its params form. Every run must succeed and the
feature table must equal the independent reference; an unauthenticated request is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import cli_env, free_port, run_cli, wait_for_spark_server
from compare import assert_features_equal, published
from postgres_server import PostgresServer
from reference import reference_features

pytestmark = pytest.mark.integration

DATA_START = dt.date(2025, 1, 1)
# every DAG run costs six Spark steps and their Airflow tasks, whatever its range: three runs in all.
# The daily DAG's backfill is one day (test_airflow_scheduler.py backfills several, newest first)
API_RANGE = (dt.date(2025, 1, 8), dt.date(2025, 1, 10))  # featurepipe_backfill triggered through the API
DAILY = (dt.date(2025, 1, 14), dt.date(2025, 1, 14))  # POST /api/v2/backfills of featurepipe_daily
UI_RANGE = (dt.date(2025, 1, 4), dt.date(2025, 1, 5))  # featurepipe_backfill triggered from the UI form
DAGS = ("featurepipe_daily", "featurepipe_backfill")
USER = "featurepipe"  # SimpleAuthManager's user (role admin); its password is made per test run
DEADLINE_S = 600
# set FEATUREPIPE_UI_SHOTS=DIR to get the UI screenshots copied there (else they stay in the test's tmp dir)
SHOTS = os.environ.get("FEATUREPIPE_UI_SHOTS")


class Services:
    """The running Airflow processes and an authenticated client of their REST API."""

    def __init__(self, root: Path, data_dir: Path, base_url: str, password: str, postgres: PostgresServer) -> None:
        self.root, self.data_dir, self.base_url, self.password = root, data_dir, base_url, password
        self.postgres = postgres
        self.logs = root / "logs"
        self._token: str | None = None

    def token(self) -> str:
        """A JWT from the auth manager's `POST /auth/token` (username and password)."""
        import httpx

        if self._token is None:
            answer = httpx.post(f"{self.base_url}/auth/token", json={"username": USER, "password": self.password}, timeout=30)
            assert answer.status_code == 201, f"POST /auth/token: {answer.status_code} {answer.text[:500]}"
            self._token = answer.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        """`METHOD /api/v2/PATH` with the token; the JSON answer, after checking its status."""
        import httpx

        answer = httpx.request(method, f"{self.base_url}/api/v2/{path}", json=body, timeout=60,
                               headers={"Authorization": f"Bearer {self.token()}"})
        assert answer.status_code == expect, f"{method} /api/v2/{path}: {answer.status_code} {answer.text[:2000]}"
        return answer.json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def unpause(self, dag_id: str) -> None:
        assert self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})["is_paused"] is False

    def wait_for(self, dag_id: str, run_ids: set[str] | None = None, count: int = 1) -> list[dict]:
        """The DAG's runs `run_ids` (or, for a backfill, its `count` runs) once all have ended."""
        began = time.time()
        while True:
            runs = [r for r in self.runs(dag_id) if run_ids is None or r["dag_run_id"] in run_ids]
            if len(runs) >= (len(run_ids) if run_ids else count) and all(r["state"] in ("success", "failed") for r in runs):
                return runs
            assert time.time() - began < DEADLINE_S, f"{dag_id} runs not finished in {DEADLINE_S} s: " \
                f"{[(r['dag_run_id'], r['state']) for r in runs]}; logs: {self.logs}"
            time.sleep(3)

    def metadata_run_ids(self, dag_id: str) -> set[str]:
        """The DAG's run ids as PostgreSQL holds them (the metadata database is really there)."""
        import psycopg2

        pg = self.postgres
        with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password,
                                                 dbname=pg.database)) as db, db.cursor() as cur:
            cur.execute("SELECT run_id FROM dag_run WHERE dag_id = %s", (dag_id,))
            return {row[0] for row in cur.fetchall()}

    def failed_tasks(self, dag_id: str, run_id: str) -> list[str]:
        instances = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return [f"{t['task_id']}={t['state']}" for t in instances if t["state"] != "success"]

    def assert_equal_to_reference(self, spark, monkeypatch: pytest.MonkeyPatch, *ranges: tuple[dt.date, dt.date]) -> None:
        monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(self.data_dir))
        table = published(spark)
        raw = self.data_dir / "raw" / "transactions"
        for first, last in ranges:
            part = table[table["event_timestamp"].dt.date.between(first, last)]
            assert not part.empty, f"no feature rows published for as-of {first}..{last}"
            assert_features_equal(part, reference_features(raw, first, last), f"as-of {first}..{last}")
        assert not table.duplicated(["user_id", "event_timestamp"]).any()


def _airflow_env(data_dir: Path, postgres: PostgresServer, port: int, password_file: Path) -> dict[str, str]:
    """The embedded Airflow's environment (featurepipe.orchestrator) turned into the services' one."""
    from featurepipe.orchestrator import airflow_env

    with pytest.MonkeyPatch.context() as patch:  # airflow_env() reads the data dir from the environment
        patch.setenv("FEATUREPIPE_DATA_DIR", str(data_dir))
        env = airflow_env()
    base_url = f"http://127.0.0.1:{port}"
    env.update(cli_env(data_dir))  # FEATUREPIPE_*: the data dir, local[2], the test's shared Spark server
    env.update(
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgres.url("psycopg2"),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="4",  # task processes at once: the steps queue on the one-slot Spark pool anyway
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USER}:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(password_file),
        # the scheduler signs the tasks' tokens and the API server checks them: one secret for both
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(64),
        AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__WORKERS="1",
        AIRFLOW__API__BASE_URL=base_url,
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{base_url}/execution/",
        # only the runs the test asks for: a scheduled run of the daily DAG for today would wait for
        # a landing that never comes
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        # the DAG files do not change during the test: parse them once, not every 30 s
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="600",
    )
    return env


@contextlib.contextmanager
def airflow_services(root: Path) -> Iterator[Services]:
    """PostgreSQL, `airflow db migrate`, then scheduler, DAG processor and API server; all stopped at the end."""
    from featurepipe.orchestrator import airflow_command, ensure_airflow_db

    data_dir = root / "data"
    run_cli(data_dir, "generate", "--out", str(data_dir / "raw"), "--users", "6", "--start", str(DATA_START),
            "--days", "16", "--seed", "3", "--dirty")
    logs = root / "logs"
    logs.mkdir()
    password = secrets.token_urlsafe(16)
    password_file = root / "simple_auth_manager_passwords.json"
    password_file.write_text(json.dumps({USER: password}))
    password_file.chmod(0o600)
    postgres = PostgresServer(root / "postgres").start()
    procs: list[subprocess.Popen] = []
    try:
        port = free_port()
        env = _airflow_env(data_dir, postgres, port, password_file)
        began = time.time()
        ensure_airflow_db(env)  # `airflow db migrate`, the Spark pool, the DAGs serialised
        print(f"[services] PostgreSQL metadata database migrated in {time.time() - began:.0f} s")
        for name, args in (("scheduler", ["scheduler"]), ("dag-processor", ["dag-processor"]),
                           ("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"])):
            with open(logs / f"{name}.log", "w") as sink:
                procs.append(subprocess.Popen([airflow_command(), *args], env=env, stdout=sink,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        services = Services(root, data_dir, f"http://127.0.0.1:{port}", password, postgres)
        _wait_until_up(services, procs)
        print(f"[services] Airflow up on {services.base_url} {time.time() - began:.0f} s after PostgreSQL")
        yield services
    finally:
        _stop(procs)
        postgres.stop()


def _wait_until_up(services: Services, procs: list[subprocess.Popen]) -> None:
    """The API server answers, the scheduler and DAG processor report healthy, both DAGs are parsed."""
    import httpx

    began = time.time()
    while True:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args[1]} exited ({proc.returncode}): see {services.logs}"
        assert time.time() - began < 240, f"Airflow did not come up in 240 s: see {services.logs}"
        try:
            health = httpx.get(f"{services.base_url}/api/v2/monitor/health", timeout=10).json()
            parts = ("metadatabase", "scheduler", "dag_processor")
            if all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                dags = {d["dag_id"] for d in services.api("GET", "dags?limit=100")["dags"]}
                if set(DAGS) <= dags:
                    errors = services.api("GET", "importErrors")
                    assert errors["total_entries"] == 0, f"DAG import errors: {errors}"
                    return
        except httpx.HTTPError:
            pass
        time.sleep(2)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each process's group (the executor's workers and task processes too), then SIGKILL
    to whatever of a group is left after 60 s."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    began = time.time()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(1.0, 60 - (time.time() - began)))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with airflow_services(tmp_path_factory.mktemp("airflow-services")) as running:
        wait_for_spark_server()  # the runs' steps go to the test's shared Spark driver
        yield running


def test_the_api_refuses_requests_without_a_valid_token(services: Services) -> None:
    import httpx

    anonymous = httpx.get(f"{services.base_url}/api/v2/dags", timeout=30)
    assert anonymous.status_code in (401, 403), anonymous.text[:500]
    forged = httpx.get(f"{services.base_url}/api/v2/dags", headers={"Authorization": "Bearer not-a-token"}, timeout=30)
    assert forged.status_code in (401, 403), forged.text[:500]
    wrong = httpx.post(f"{services.base_url}/auth/token", json={"username": USER, "password": "wrong"}, timeout=30)
    assert wrong.status_code == 401, wrong.text[:500]
    assert services.api("GET", "dags/featurepipe_backfill")["dag_id"] == "featurepipe_backfill"


def test_rest_api_triggers_a_backfill_run_and_backfills_the_daily_dag(
    services: Services, spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dag_id in DAGS:
        services.unpause(dag_id)
    run = services.api("POST", "dags/featurepipe_backfill/dagRuns", {
        "logical_date": f"{API_RANGE[1]}T00:00:00Z",
        "conf": {"start": str(API_RANGE[0]), "end": str(API_RANGE[1])},
    })
    backfill = services.api("POST", "backfills", {
        "dag_id": "featurepipe_daily",
        "from_date": f"{DAILY[0]}T00:00:00Z",
        "to_date": f"{DAILY[1]}T00:00:00Z",
        "max_active_runs": 2,
    })
    days = (DAILY[1] - DAILY[0]).days + 1

    for dag_id, runs in (("featurepipe_backfill", services.wait_for("featurepipe_backfill", {run["dag_run_id"]})),
                         ("featurepipe_daily", services.wait_for("featurepipe_daily", count=days))):
        for r in runs:
            assert r["state"] == "success", f"{dag_id} {r['dag_run_id']}: {services.failed_tasks(dag_id, r['dag_run_id'])}; " \
                f"task logs under {services.data_dir / 'airflow' / 'logs'}"
    daily = services.runs("featurepipe_daily")
    api_runs = {r["dag_run_id"] for r in daily} | {run["dag_run_id"]}
    assert api_runs <= services.metadata_run_ids("featurepipe_daily") | services.metadata_run_ids("featurepipe_backfill")
    assert run["triggering_user_name"] == USER, run
    assert sorted(r["logical_date"][:10] for r in daily) == [str(DAILY[0] + dt.timedelta(days=k)) for k in range(days)]
    assert all(r["run_type"] == "backfill" for r in daily), daily
    began = time.time()  # the scheduler marks the backfill complete once it sees its runs ended
    while services.api("GET", f"backfills/{backfill['id']}")["completed_at"] is None:
        assert time.time() - began < 60, f"backfill {backfill['id']} not marked complete"
        time.sleep(2)

    services.assert_equal_to_reference(spark, monkeypatch, API_RANGE, DAILY)


def test_ui_login_and_trigger_of_the_backfill_dag_through_its_params_form(
    services: Services, spark, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services.unpause("featurepipe_backfill")
    before = {r["dag_run_id"] for r in services.runs("featurepipe_backfill")}
    with _browser(tmp_path) as browser:
        shots = _trigger_through_the_ui(browser, services, tmp_path, before)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shots = [Path(shutil.copy2(shot, Path(SHOTS) / shot.name)) for shot in shots]
    print(f"[ui] screenshots: {', '.join(str(s) for s in shots)}")
    services.assert_equal_to_reference(spark, monkeypatch, UI_RANGE)


@contextlib.contextmanager
def _browser(tmp_path: Path):
    """Debian's headless Chromium through its chromedriver (both stopped at the end)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromium-driver are not installed: `make redis` installs them"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US",
                "--window-size=1600,1100", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    service = Service(executable_path=driver, log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    try:
        yield browser
    finally:
        browser.quit()


def _trigger_through_the_ui(browser, services: Services, tmp_path: Path, before: set[str]) -> list[Path]:
    """Log in, open the DAG, fill the trigger form's params, trigger; the run's page once it succeeded.

    While the run works the page is left (about:blank) and the test polls the REST API: the UI
    polls the API server every few seconds, CPU the run's tasks need on a small machine."""
    from urllib.parse import quote, unquote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from featurepipe.orchestrator import DAG_TASKS

    wait = WebDriverWait(browser, 90)
    browser.get(f"{services.base_url}/dags/featurepipe_backfill")
    # not logged in: the auth manager's login page, which returns to the DAG afterwards
    wait.until(ec.element_to_be_clickable((By.NAME, "username"))).send_keys(USER)
    browser.find_element(By.NAME, "password").send_keys(services.password)
    browser.find_element(By.CSS_SELECTOR, "button[type='submit']").click()
    wait.until(ec.url_contains("/dags/featurepipe_backfill"))
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Trigger Dag']"))).click()

    # the params form: one date input per Param, `element_<name>` (Chromium shows them mm/dd/yyyy)
    fields = {"start": UI_RANGE[0], "end": UI_RANGE[1]}
    for name, day in fields.items():
        field = wait.until(ec.element_to_be_clickable((By.ID, f"element_{name}")))
        field.send_keys(day.strftime("%m%d%Y"))
        wait.until(lambda _, field=field, day=day: field.get_attribute("value") == str(day))
    browser.execute_script("document.activeElement.blur()")  # no half-selected date in the picture
    form = tmp_path / "airflow-ui-1-trigger-form.png"
    browser.save_screenshot(str(form))
    dialog_trigger = (By.XPATH, "//*[@role='dialog']//button[normalize-space()='Trigger']")
    wait.until(ec.element_to_be_clickable(dialog_trigger)).click()

    # the UI opens the new run's page
    wait.until(ec.url_contains("/dags/featurepipe_backfill/runs/"))
    run_id = unquote(browser.current_url.split("/runs/", 1)[1].split("?")[0].split("/")[0])
    assert run_id not in before, f"the UI showed an old run {run_id}"
    browser.get("about:blank")
    (run,) = services.wait_for("featurepipe_backfill", {run_id})
    assert run["conf"] == {k: str(v) for k, v in fields.items()}, run["conf"]
    assert run["triggering_user_name"] == USER, run
    assert run["state"] == "success", f"{run_id}: {services.failed_tasks('featurepipe_backfill', run_id)}; " \
        f"task logs under {services.data_dir / 'airflow' / 'logs'}"

    # the finished run as the UI shows it: its state, every task instance, the grid expanded
    browser.get(f"{services.base_url}/dags/featurepipe_backfill/runs/{quote(run_id, safe='')}")
    success = (By.XPATH, "//*[normalize-space(text())='Success']")
    tasks = DAG_TASKS["featurepipe_backfill"]

    def shown(b) -> bool:  # the run's badge and one per task instance, with the table's own count
        text = b.find_element(By.TAG_NAME, "body").text
        return f"{len(tasks)} Task Instances" in text and len(b.find_elements(*success)) >= 1 + len(tasks)

    try:
        WebDriverWait(browser, 180).until(shown)
    except Exception:
        browser.save_screenshot(str(tmp_path / "airflow-ui-run-page-timeout.png"))
        raise AssertionError("the run page did not show the run and its task instances as Success: "
                             + browser.find_element(By.TAG_NAME, "body").text[:2000]) from None
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Expand all task groups']"))).click()
    body = browser.find_element(By.TAG_NAME, "body").text
    assert all(t in body for t in tasks) and "Failed" not in body, body[:3000]
    time.sleep(1)  # the grid's expand animation
    finished = tmp_path / "airflow-ui-2-finished-run.png"
    browser.save_screenshot(str(finished))
    return [form, finished]
