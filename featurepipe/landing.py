"""Is the landed data complete for an as-of range? (the DAGs' range check and landing sensor, and the CLI)

An as-of T uses events before T, so T has complete inputs once events of day T - 1 have landed:
the last as-of with complete inputs is the day after the newest landed event.
"""

from __future__ import annotations

import datetime as dt

from featurepipe.dates import AsOfRange, parse_date


class BadRange(ValueError):
    pass


def newest_event_day() -> dt.date | None:
    """The newest event day in the landing zone (Parquet footers, no data read); None if unknown."""
    from featurepipe.raw import latest_event_date
    from featurepipe.settings import get_settings
    from featurepipe.spec import USER_PURCHASE

    return latest_event_date(get_settings().transactions_uri, USER_PURCHASE.source)


def last_complete_as_of(latest: dt.date | None) -> dt.date | None:
    return None if latest is None else latest + dt.timedelta(days=1)


def landed_for(as_of: dt.date) -> tuple[bool, str]:
    """(inputs of as-of T have landed, a sentence saying why or why not) — the daily DAG's sensor."""
    latest = newest_event_day()
    ready = latest is not None and as_of <= last_complete_as_of(latest)
    if ready:
        return True, f"as-of {as_of}: inputs landed (newest event on {latest})"
    return False, (f"as-of {as_of} needs events through {as_of - dt.timedelta(days=1)}; "
                   f"newest landed event: {latest or 'none'}")


def check_backfill_range(start: str, end: str) -> str:
    """The range as text, or BadRange naming what is wrong: reversed, or as-of dates past the landed data."""
    import argparse

    try:
        as_of = AsOfRange(parse_date(start), parse_date(end))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise BadRange(f"bad backfill range: {exc}") from None
    latest = newest_event_day()
    if latest is not None and as_of.end > last_complete_as_of(latest):
        raise BadRange(
            f"end {as_of.end} is past the landed data: the newest event is on {latest}, "
            f"so the last as-of date with complete inputs is {last_complete_as_of(latest)}"
        )
    return f"{as_of} ({as_of.days} as-of dates; newest landed event {latest})"
