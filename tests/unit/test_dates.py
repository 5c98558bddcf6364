"""As-of ranges (SPEC §3: the UTC midnights start..end, inclusive)."""

from __future__ import annotations

import datetime as dt

import pytest

from featurepipe.dates import AsOfRange


def test_a_range_lists_every_date_from_start_to_end_inclusive() -> None:
    span = AsOfRange(dt.date(2024, 2, 27), dt.date(2024, 3, 1))  # across a leap day
    assert span.dates == [dt.date(2024, 2, 27), dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)]
    assert len(span.dates) == span.days == 4
    assert AsOfRange(dt.date(2025, 1, 1), dt.date(2025, 1, 1)).dates == [dt.date(2025, 1, 1)]


def test_a_range_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="end 2025-01-01 is before start 2025-01-02"):
        AsOfRange(dt.date(2025, 1, 2), dt.date(2025, 1, 1))
