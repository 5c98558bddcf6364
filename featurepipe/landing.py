"""Is the landed data complete for an as-of range? (the DAGs' range check and landing sensor, and the CLI)

An as-of T uses events before T, so T has complete inputs once day T - 1 has landed: the last
as-of with complete inputs is the day after the newest complete landing day. Which day that is:
- a landing zone with markers (`landing_date=D/_SUCCESS`, written by `featurepipe land` or the
  producer) says so itself: the newest marked date (a day without events is just a marker);
- a zone without markers is judged by its data: the newest event day, events stamped in the
  future (past their file's arrival) not counted. The first of several files of a day already
  counts there, which is why producers should write markers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from featurepipe.dates import AsOfRange, parse_date


class BadRange(ValueError):
    pass


@dataclass(frozen=True)
class Landed:
    newest_day: dt.date | None  # the newest complete landing day, None if nothing has landed
    marked: frozenset[dt.date] = frozenset()  # the days with a completion marker (none: judged by events)
    since: dt.date | None = None  # judged by events, only files that could hold one of this day or later were read

    def complete(self, day: dt.date) -> bool:
        """Has `day` landed completely? With markers: its own marker, or it predates the first
        marker (history from before the producer wrote them). Without: an event that late landed."""
        if self.marked:
            return day in self.marked or day < min(self.marked)
        return self.newest_day is not None and day <= self.newest_day

    def __str__(self) -> str:
        if not self.marked and self.since and self.newest_day is None:
            return f"no event of {self.since} or later has landed"
        what = "newest landing marked complete" if self.marked else "newest landed event"
        return f"{what}: {self.newest_day or 'none'}"


def newest_landed_day(since: dt.date | None = None) -> Landed:
    """The complete days of the landing zone (markers, else Parquet footers; with `since`, only
    the footers of files that arrived late enough to hold an event of that day or later)."""
    from featurepipe.raw import latest_event_date
    from featurepipe.settings import get_settings
    from featurepipe.spec import USER_PURCHASE
    from featurepipe.storage import marked_landing_dates

    uri = get_settings().transactions_uri
    marked = marked_landing_dates(uri)
    if marked:
        return Landed(marked[-1], frozenset(marked))
    return Landed(latest_event_date(uri, USER_PURCHASE.source, since), since=since)


def landed_for(as_of: dt.date) -> tuple[bool, str]:
    """(inputs of as-of T have landed, a sentence saying why or why not) — the daily DAG's sensor."""
    day = as_of - dt.timedelta(days=1)
    landed = newest_landed_day(since=day)  # every poke: only the files that could hold day T - 1
    if landed.complete(day):
        return True, f"as-of {as_of}: inputs landed ({landed})"
    missing = " (no _SUCCESS marker for it)" if landed.marked else ""
    return False, f"as-of {as_of} needs day {day} landed{missing}; {landed}"


def check_backfill_range(start: str, end: str) -> str:
    """The range as text, or BadRange naming what is wrong: reversed, or as-of dates past the landed data."""
    import argparse

    try:
        as_of = AsOfRange(parse_date(start), parse_date(end))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise BadRange(f"bad backfill range: {exc}") from None
    landed = newest_landed_day()
    needed = (as_of.start + dt.timedelta(days=i - 1) for i in range(as_of.days))  # day T - 1 of every as-of T
    missing = [d for d in needed if not landed.complete(d)]
    if missing:
        days = ", ".join(str(d) for d in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise BadRange(f"end {as_of.end} is past the landed data: day {days} not landed completely ({landed})")
    return f"{as_of} ({as_of.days} as-of dates; {landed})"
