"""A day counts as landed when the producer says so (markers), a day without events is published,
and rows that would poison the features (future events, huge amounts, huge strings) are quarantined."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from inprocess import expect, run

pytestmark = pytest.mark.integration
DAY0 = dt.date(2025, 3, 1)


def at(day: dt.date, hour: int = 12) -> pd.Timestamp:
    return pd.Timestamp(day.isoformat(), tz="UTC") + pd.Timedelta(hours=hour)


def rows(user: str, stamps: list[pd.Timestamp], amount: float = 10.0, category: str | None = "books") -> list[dict]:
    return [
        {"transaction_id": f"{user}-{ts.value}", "user_id": user, "product_id": "p1", "category": category,
         "amount": amount, "event_timestamp": ts}
        for ts in stamps
    ]


def write(folder: Path, name: str, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame = pd.DataFrame(records)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype("datetime64[us, UTC]")
    frame.to_parquet(path, index=False)
    return path


def land(source: Path, *args: str) -> None:
    """`featurepipe land --from source …`, as a producer runs it."""
    from featurepipe.cli import main

    assert main(["land", "--from", str(source), *args]) == 0


def landed(as_of: dt.date) -> bool:
    from featurepipe.landing import landed_for

    ready, why = landed_for(as_of)
    print(why)
    return ready


def test_the_sensor_waits_for_the_marker_of_a_partly_landed_day_and_ignores_future_events(lake_env, tmp_path, spark):
    from featurepipe import lake

    day1, day2 = DAY0, DAY0 + dt.timedelta(days=1)
    first = write(tmp_path / "producer" / "a", "part-0.parquet", rows("u1", [at(day1), at(day2, 1)]))
    land(first.parent, "--date", str(day1))
    assert landed(day2) and not landed(day2 + dt.timedelta(days=1))

    # day 2's first file arrives, its second has not: with markers in the zone, the sensor waits
    write(tmp_path / "producer" / "b", "part-0.parquet", rows("u2", [at(day2, 3)]))
    land(tmp_path / "producer" / "b", "--date", str(day2), "--partial")
    assert not landed(day2 + dt.timedelta(days=1)), "a day without its marker counted as landed"
    write(tmp_path / "producer" / "c", "part-1.parquet", rows("u3", [at(day2, 20)]))
    land(tmp_path / "producer" / "c", "--date", str(day2))
    assert landed(day2 + dt.timedelta(days=1))
    files = sorted(p.name for p in (lake_env / "raw" / "transactions" / f"landing_date={day2}").iterdir())
    assert files == ["_SUCCESS", "part-0.parquet", "part-1.parquet"], files

    # landing the same files again copies nothing
    from featurepipe.land import land as land_files

    again = land_files(tmp_path / "producer" / "b", f"{lake_env}/raw/transactions", date=day2, progress=print)
    assert again.copied == [] and len(again.unchanged) == 1

    # a zone without markers: one event stamped in the future (past its file's arrival) must not make
    # later days look landed, and validate_raw quarantines it with its reason
    for marker in (lake_env / "raw" / "transactions").rglob("_SUCCESS"):
        marker.unlink()
    future = pd.Timestamp.now(tz="UTC").floor("s") + pd.Timedelta(days=3)
    write(lake_env / "raw" / "transactions" / f"landing_date={day2 + dt.timedelta(days=1)}", "part-0.parquet",
          rows("u4", [at(day2 + dt.timedelta(days=1), 5), future]))
    assert landed(day2 + dt.timedelta(days=2)) and not landed(day2 + dt.timedelta(days=3)), \
        "a future-dated event made days count as landed"

    report = run(spark, day2 + dt.timedelta(days=2), day2 + dt.timedelta(days=2))
    assert report["quarantine_reasons"] == {"event_timestamp_in_future": 1}, report
    reasons = lake.read_table(spark, lake.QUARANTINE).select("user_id", "reason").collect()
    assert [(r["user_id"], r["reason"]) for r in reasons] == [("u4", "event_timestamp_in_future")]
    expect(lake_env, spark, day2 + dt.timedelta(days=2), day2 + dt.timedelta(days=2), "after the future event")


def test_a_day_without_events_is_published_with_its_expired_window_zeros_once_marked(lake_env, tmp_path, spark):
    from compare import published

    # u1 buys every day but one (the empty day `gap`); u2's only purchase is 90 days before it,
    # so as of gap + 1 u2's 90-day window has just emptied: a row of zeros
    gap = DAY0 + dt.timedelta(days=95)
    producer = tmp_path / "producer"
    days = [DAY0 + dt.timedelta(days=i) for i in range(97)]
    for day in days:
        if day == gap:
            continue
        records = rows("u1", [at(day, 9)], amount=5.0 + day.day)
        if day == gap - dt.timedelta(days=90):
            records += rows("u2", [at(day, 23)], amount=42.0, category="garden")
        write(producer / f"landing_date={day}", "part-0.parquet", records)
    land(producer)  # every day but the empty one, each marked complete
    assert landed(gap) and not landed(gap + dt.timedelta(days=1))
    run(spark, gap - dt.timedelta(days=2), gap)  # the days before, published as usual

    # the producer declares the empty day complete: a marker alone
    (tmp_path / "empty").mkdir()
    land(tmp_path / "empty", "--date", str(gap))
    assert landed(gap + dt.timedelta(days=1)), "the marked empty day did not count as landed"
    run(spark, gap + dt.timedelta(days=1), gap + dt.timedelta(days=1))

    expect(lake_env, spark, gap - dt.timedelta(days=2), gap + dt.timedelta(days=1), "around the empty day")
    table = published(spark)
    u2 = table[(table["user_id"] == "u2") & (table["event_timestamp"].dt.date == gap + dt.timedelta(days=1))]
    assert len(u2) == 1 and u2.iloc[0]["transactions_90d"] == 0 and u2.iloc[0]["total_spent_90d"] == 0.0, u2


def test_huge_amounts_and_strings_are_quarantined_and_the_gates_pass(lake_env, tmp_path, spark):
    import jobs.compute_features
    import jobs.publish
    import jobs.validate_features
    import jobs.validate_raw
    from featurepipe import lake

    producer = tmp_path / "producer" / f"landing_date={DAY0}"
    records = rows("u1", [at(DAY0, 8), at(DAY0, 9)])
    records += rows("u2", [at(DAY0, 10), at(DAY0, 11)], amount=1e308)  # their sum would be inf
    records += rows("u3", [at(DAY0, 12)], category="x" * 1_000_000)  # a 1 MB category
    records += [{**rows("u4", [at(DAY0, 13)])[0], "user_id": "u" * 300}]  # a 300-character id
    write(producer, "part-0.parquet", records)
    land(producer.parent)

    as_of = ["--as-of", str(DAY0 + dt.timedelta(days=1))]
    for step in (jobs.validate_raw, jobs.compute_features, jobs.validate_features, jobs.publish):
        assert step.main(as_of) == 0, f"{step.__name__} failed"

    reasons = sorted((r["user_id"][:2], r["reason"]) for r in lake.read_table(spark, lake.QUARANTINE).collect())
    assert reasons == [("u2", "amount_too_large"), ("u2", "amount_too_large"), ("u3", "category_too_long"),
                       ("uu", "user_id_too_long")], reasons
    expect(lake_env, spark, DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=1), "after the huge rows")
