"""Validation of a backfill's as-of range (the backfill DAG's form and `featurepipe backfill`)."""

from __future__ import annotations

import datetime as dt

from featurepipe.dates import AsOfRange, parse_date


class BadRange(ValueError):
    pass


def check_backfill_range(start: str, end: str) -> str:
    """The range as text, or BadRange naming what is wrong: reversed, or as-of dates past the landed data.

    An as-of T uses events before T, so the last useful as-of is the day after the newest event:
    anything later would publish rows computed from data that has not landed yet.
    """
    import argparse

    from featurepipe.raw import latest_event_date
    from featurepipe.settings import get_settings
    from featurepipe.spec import USER_PURCHASE

    try:
        as_of = AsOfRange(parse_date(start), parse_date(end))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise BadRange(f"bad backfill range: {exc}") from None
    latest = latest_event_date(get_settings().transactions_uri, USER_PURCHASE.source)
    if latest is not None and as_of.end > latest + dt.timedelta(days=1):
        raise BadRange(
            f"end {as_of.end} is past the landed data: the newest event is on {latest}, "
            f"so the last as-of date with complete inputs is {latest + dt.timedelta(days=1)}"
        )
    return f"{as_of} ({as_of.days} as-of dates; newest landed event {latest})"
