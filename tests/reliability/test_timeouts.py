"""A hung Spark step is ended by its timeout: the run fails with one line, and the next run proceeds
(the pool slot, the Spark server and the lake's lease are free again)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cli_helpers import generated_data_dir, run_cli
from compare import assert_features_equal, published
from reference import reference_features

pytestmark = pytest.mark.integration
AS_OF = dt.date(2025, 1, 20)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, spark_server: str) -> Path:
    return generated_data_dir(tmp_path_factory.mktemp("timeouts"), 8, "2025-01-01", 20, seed=6)


def test_a_hung_step_times_out_and_the_next_run_proceeds(data_dir: Path, spark, monkeypatch: pytest.MonkeyPatch) -> None:
    from featurepipe.lease import LEASE_FILE

    # the first step hangs (as soon as it holds the lease), so the short timeout can end no other step
    out = run_cli(data_dir, "run", "--date", str(AS_OF), check=False, timeout=600,
                  FEATUREPIPE_FAULT_HANG_STEP="validate_raw", FEATUREPIPE_STEP_TIMEOUT_MINUTES="0.25",
                  FEATUREPIPE_STEP_RETRIES="0")  # a retry would hang again: one timeout is the point
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()
    assert len(message) == 1 and "validate_raw timed out" in message[0], out.stderr
    # the server cancels the step's jobs once its client has gone; the step then releases the lease
    lease = data_dir / "lake" / LEASE_FILE
    deadline = time.monotonic() + 60
    while lease.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not lease.exists(), f"the hung step kept the lake's lease: {lease.read_text()}"

    # the same server, the same pool: the next run is not blocked by the hung one
    run_cli(data_dir, "run", "--date", str(AS_OF), timeout=600)
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(data_dir))
    assert_features_equal(published(spark), reference_features(data_dir / "raw" / "transactions", AS_OF, AS_OF),
                          "after the timed-out run")
