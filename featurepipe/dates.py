"""As-of dates (SPEC §3): every run covers the UTC midnights `start..end`, inclusive."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


@dataclass(frozen=True)
class AsOfRange:
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def dates(self) -> list[dt.date]:
        """Every date `start..end`, in order."""
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def label(self) -> str:
        return self.start.isoformat() if self.start == self.end else f"{self.start}_{self.end}"

    def __str__(self) -> str:
        return self.start.isoformat() if self.start == self.end else f"{self.start}..{self.end}"


def midnight(day: dt.date) -> dt.datetime:
    """The as-of instant T of a date: its UTC midnight."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def range_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every job takes: `--as-of DATE` or `--start DATE --end DATE`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--as-of", type=parse_date, help="one as-of date (UTC midnight)")
    parser.add_argument("--start", type=parse_date, help="first as-of date of a range")
    parser.add_argument("--end", type=parse_date, help="last as-of date of a range (inclusive)")
    parser.add_argument("--run-id", help="the orchestrator's run id, which keys the run's state in the lake "
                                         "(default: manual__<range>)")
    return parser


def range_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> AsOfRange:
    if args.as_of and (args.start or args.end):
        parser.error("give --as-of or --start/--end, not both")
    if args.as_of:
        return AsOfRange(args.as_of, args.as_of)
    if not (args.start and args.end):
        parser.error("give --as-of DATE, or --start DATE and --end DATE")
    try:
        return AsOfRange(args.start, args.end)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
