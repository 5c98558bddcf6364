"""The online store converges: a materialize that failed (Redis down through all retries) is redone by
the next run, including users whose newest row is in the failed run's span only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from compare import assert_online_is_latest, published
from inprocess import online_rows, run
from servers import RedisServer

pytestmark = pytest.mark.integration
DAY = dt.timedelta(days=1)
T1 = dt.date(2025, 4, 10)  # the three as-of dates of the test: T1, T1 + 1 (Redis down), T1 + 2


def landings(raw: Path) -> None:
    """u1 buys on the days before T1; u2's only purchase is 91 days before T1 + 1, so u2's newest row
    is the zero row of as-of T1 + 1: only that run's materialize can send it."""
    def write(day: dt.date, records: list[dict]) -> None:
        folder = raw / "transactions" / f"landing_date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(records)
        frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
        frame.to_parquet(folder / "part-0.parquet", index=False)

    u2_day = T1 + DAY - 91 * DAY
    for i, day in enumerate([u2_day, *(T1 - k * DAY for k in range(5, -2, -1))]):
        records = [{"transaction_id": f"u1-{day}", "user_id": "u1", "product_id": "p", "category": "books",
                    "amount": 3.0 + i, "event_timestamp": f"{day}T09:00:00Z"}]
        if day == u2_day:
            records.append({"transaction_id": "u2-only", "user_id": "u2", "product_id": "p", "category": "garden",
                            "amount": 50.0, "event_timestamp": f"{day}T10:00:00Z"})
        write(day, records)


def run_steps(spark, as_of: dt.date) -> None:
    """A run for `as-of`: ingest to publish in-process (tests/inprocess.py), then the materialize step's job."""
    import jobs.materialize

    run_id = f"test__{as_of}"
    run(spark, as_of, as_of, run_id=run_id)
    assert jobs.materialize.main(["--as-of", str(as_of), "--run-id", run_id]) == 0, f"materialize failed for {as_of}"


def test_a_failed_materialize_is_redone_by_the_next_run(lake_env: Path, tmp_path: Path, spark, monkeypatch) -> None:
    redis = RedisServer(tmp_path / "redis", persistent=True)
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FEATUREPIPE_ONLINE_STORE", "redis")
    monkeypatch.setenv("FEATUREPIPE_REDIS_URL", redis.url)
    landings(lake_env / "raw")
    redis.start()
    try:
        run_steps(spark, T1)
        assert online_rows(["u2"])["u2"]["transactions_90d"] == 1
        # Feast switches this on for its queries; left on, it breaks Delta in every later step
        assert spark.conf.get("spark.sql.parser.quotedRegexColumnNames") == "false"

        redis.stop()  # down through the whole materialize of T1 + 1 (its retries too)
        with pytest.raises(Exception, match="(?i)connect"):
            run_steps(spark, T1 + DAY)

        redis.start()
        run_steps(spark, T1 + 2 * DAY)
        wanted = published(spark)
        assert (wanted[wanted["user_id"] == "u2"]["event_timestamp"].dt.date.max()) == T1 + DAY
        assert_online_is_latest(online_rows(["u1", "u2"]), wanted)  # u2: the zero row of T1 + 1
    finally:
        redis.kill()
