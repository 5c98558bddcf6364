"""Online reads that know their age (SPEC §6): `fresh`, `stale` or `missing` per user.

A row's age is `now - as_of`, its as-of midnight T; older than FEATUREPIPE_MAX_FEATURE_AGE (default
2 days) is `stale`. A user without a row is `missing` and carries the no-history values (SPEC §4).
The HTTP feature server returns Feast's own response (values, with `event_timestamps` per feature
and a `NOT_FOUND` status where no row exists); a service applies the same rule with `status()`.
"""

from __future__ import annotations

import datetime as dt

FRESH, STALE, MISSING = "fresh", "stale", "missing"


def status(as_of: dt.datetime | None, now: dt.datetime, max_age: dt.timedelta) -> str:
    """`missing` without a row; `stale` when `now - as_of > max_age`; else `fresh`."""
    if as_of is None:
        return MISSING
    return STALE if now - as_of > max_age else FRESH


def online_with_status(entities: list[str] | list[dict[str, str]], features: list[str] | None = None,
                       feature_service: str | None = None, now: dt.datetime | None = None,
                       request: dict[str, str] | None = None) -> list[dict]:
    """`featurepipe.feast_store.online_rows` plus `as_of` (ISO 8601 UTC or None) and `status` per entity
    (`entities`: user ids, or dicts of join keys).

    `now` defaults to the current time (the one place the pipeline reads the clock: an online read
    happens now, unlike a run, whose dates come from the orchestrator)."""
    from featurepipe.feast_store import online_rows
    from featurepipe.settings import get_settings
    from featurepipe.spec import USER_PURCHASE

    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    max_age = get_settings().max_feature_age
    entities = [e if isinstance(e, dict) else {USER_PURCHASE.join_key: e} for e in entities]
    rows = online_rows(entities, features, feature_service, with_as_of=True, request=request, now=now)
    for row in rows:
        as_of = row.pop("as_of")
        row["as_of"] = as_of.isoformat().replace("+00:00", "Z") if as_of else None
        row["status"] = status(as_of, now, max_age)
    return rows
