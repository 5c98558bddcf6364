"""The shared Spark driver of `featurepipe run`/`backfill` on a local master: started once per data dir,
reused while nothing changed, replaced when the session settings change, stopped when idle."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from featurepipe import shared_driver
from featurepipe.shared_driver import alive
from featurepipe.spark_server import ping

pytestmark = pytest.mark.integration


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FEATUREPIPE_SPARK_MASTER", "local[1]")
    for name in ("FEATUREPIPE_SPARK_SERVER", "FEATUREPIPE_STEP_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    shared_driver.stop("end of test")


def test_runs_share_one_driver_until_its_settings_change_and_it_stops_when_idle(data_dir, monkeypatch, capsys) -> None:
    url = shared_driver.for_cli_run()
    first = shared_driver.read_state()
    assert url and ping(url) and first["url"] == url and alive(first["pid"])
    assert "starting the shared Spark driver" in capsys.readouterr().out
    assert shared_driver.running() == url  # what `report`, `parity` and `training-set` then use

    assert shared_driver.for_cli_run() == url  # the next run reuses it
    assert shared_driver.read_state()["pid"] == first["pid"]
    assert "steps run on the shared Spark driver" in capsys.readouterr().out

    # another session setting: the old driver would run with the wrong one, so it is replaced;
    # the new one stops after 6 idle seconds
    monkeypatch.setenv("FEATUREPIPE_SHUFFLE_PARTITIONS", "3")
    assert shared_driver.running() is None  # nor does a command use it meanwhile
    monkeypatch.setenv("FEATUREPIPE_SPARK_SERVER_IDLE_MINUTES", "0.1")
    second_url = shared_driver.for_cli_run()
    second = shared_driver.read_state()
    assert second["pid"] != first["pid"] and second["fingerprint"] != first["fingerprint"]
    assert not alive(first["pid"]) and ping(second_url)
    assert "the code or the session settings changed" in capsys.readouterr().out

    deadline = time.time() + 90
    while alive(second["pid"]) and time.time() < deadline:
        time.sleep(1)
    assert not alive(second["pid"]), "the idle shared driver did not stop"
    assert shared_driver.read_state() is None and shared_driver.running() is None
    assert "no step for 0.1 minutes: stopping" in (data_dir / "spark-server" / "server.log").read_text()


@pytest.mark.parametrize(
    "setting",
    [{"FEATUREPIPE_STEP_RUNNER": "inline"}, {"FEATUREPIPE_SPARK_SERVER": "http://127.0.0.1:1"},
     {"FEATUREPIPE_SPARK_MASTER": "spark://cluster:7077"}, {"FEATUREPIPE_SPARK_SERVER_IDLE_MINUTES": "0"}],
)
def test_runs_opt_out_of_the_shared_driver(data_dir, monkeypatch, setting) -> None:
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    assert shared_driver.for_cli_run() is None
    assert shared_driver.read_state() is None
