"""Online rows' status (featurepipe.staleness) and the age setting."""

from __future__ import annotations

import datetime as dt

import pytest

from featurepipe.settings import parse_duration
from featurepipe.staleness import MISSING, STALE, FRESH, status

T = dt.datetime(2025, 3, 31, tzinfo=dt.timezone.utc)


def test_status_by_age_against_the_limit() -> None:
    two_days = dt.timedelta(days=2)
    assert status(T, T + dt.timedelta(days=1), two_days) == FRESH
    assert status(T, T + two_days, two_days) == FRESH  # older than the limit is stale, equal is not
    assert status(T, T + dt.timedelta(days=3), two_days) == STALE
    assert status(None, T, two_days) == MISSING


def test_max_feature_age_parses_durations_and_names_a_bad_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_duration("2d") == dt.timedelta(days=2)
    assert parse_duration("1d12h") == dt.timedelta(hours=36)
    assert parse_duration("90m") == dt.timedelta(minutes=90)
    from featurepipe.settings import get_settings

    monkeypatch.setenv("FEATUREPIPE_MAX_FEATURE_AGE", "two days")
    with pytest.raises(ValueError, match="FEATUREPIPE_MAX_FEATURE_AGE must be a duration"):
        get_settings()
