"""Raw-row rules (SPEC §2) as pure transforms: quarantine reasons, the surviving copy of an event, row identities.

Validation comes first; then one row per event id across every landing (earliest timestamp wins,
then the smallest amount). `featurepipe.ingest` applies these to each new landing batch.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from featurepipe.lake import ARRIVED_AT, EVENT_DATE, SOURCE_FILE
from featurepipe.spec import Source

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

REASON = "reason"

# reason codes, in rule order; a row breaking several rules gets all of them, comma-joined
TRANSACTION_ID_MISSING = "transaction_id_missing"
TRANSACTION_ID_EMPTY = "transaction_id_empty"
USER_ID_MISSING = "user_id_missing"
USER_ID_EMPTY = "user_id_empty"
AMOUNT_MISSING = "amount_missing"  # null or NaN
AMOUNT_NOT_FINITE = "amount_not_finite"
AMOUNT_NOT_POSITIVE = "amount_not_positive"
AMOUNT_TOO_LARGE = "amount_too_large"
EVENT_TIMESTAMP_MISSING = "event_timestamp_missing"
EVENT_TIMESTAMP_IN_FUTURE = "event_timestamp_in_future"  # later than its file's arrival + the tolerance
# and `<column>_too_long` for a string past its column's max_length


def is_blank(c: Column) -> Column:
    """Empty or whitespace only (tabs, newlines too: F.trim strips only spaces). A blank string starts with
    a character <= " ": only those reach the regex, which costs a Java string per row."""
    from pyspark.sql import functions as F

    return (c == "") | ((F.substring(c, 1, 1) <= " ") & c.rlike(r"^\s*$"))


def _rule_checks(source: Source, arrival: bool) -> list[tuple[str, Column]]:
    """(reason, condition that is true when the row breaks the rule) for every column, in column order.

    `arrival`: the rows carry their file's arrival time (`ARRIVED_AT`), so future events can be told."""
    from pyspark.sql import functions as F

    checks: list[tuple[str, Column]] = []
    for column in source.columns:
        c = F.col(column.name)
        if column.kind == "string":
            if column.required:
                # whitespace-only ids are as empty as ""
                checks.append((f"{column.name}_missing", c.isNull()))
                checks.append((f"{column.name}_empty", c.isNotNull() & is_blank(c)))
            if column.max_length is not None:
                checks.append((f"{column.name}_too_long", F.char_length(c) > column.max_length))
        elif column.kind == "double":
            finite = c.isNotNull() & ~F.isnan(c)
            infinite = finite & (F.abs(c) == F.lit(float("inf")))
            real = finite & ~infinite
            if column.required:
                checks.append((f"{column.name}_missing", c.isNull() | F.isnan(c)))
                checks.append((f"{column.name}_not_finite", infinite))
                if column.min_value is None:
                    checks.append((f"{column.name}_not_positive", real & (c <= 0)))
            if column.min_value is not None:
                checks.append((f"{column.name}_too_small", real & (c < column.min_value)))
            if column.max_value is not None:
                checks.append((f"{column.name}_too_large", real & (c > column.max_value)))
            if column.integral:  # within its bounds (outside them, the bound is the reason)
                inside = real
                if column.min_value is not None:
                    inside = inside & (c >= column.min_value)
                if column.max_value is not None:
                    inside = inside & (c <= column.max_value)
                checks.append((f"{column.name}_not_integer", inside & (c != F.floor(c))))
        elif column.required:
            checks.append((f"{column.name}_missing", c.isNull()))
        if column.name == source.timestamp_column and arrival:
            tolerance_us = source.future_tolerance // dt.timedelta(microseconds=1)
            latest = F.unix_micros(F.col(ARRIVED_AT)) + F.lit(tolerance_us)
            checks.append((f"{column.name}_in_future", F.unix_micros(c) > latest))
    return checks


def with_reasons(raw: DataFrame, source: Source) -> DataFrame:
    """`raw` plus `reason`: null for a valid row, else every broken rule, comma-joined.

    Rows read with their file's arrival time (`ARRIVED_AT`, see `featurepipe.raw`) are also checked
    for events stamped in the future; that column is dropped here, it is not part of the data."""
    from pyspark.sql import functions as F

    arrival = ARRIVED_AT in raw.columns
    parts = [F.when(broken, F.lit(reason)) for reason, broken in _rule_checks(source, arrival)]
    reason = F.concat_ws(",", *parts)  # concat_ws skips nulls
    flagged = raw.withColumn(REASON, F.when(reason != "", reason))
    return flagged.drop(ARRIVED_AT) if arrival else flagged


def split_valid(raw: DataFrame, source: Source) -> tuple[DataFrame, DataFrame]:
    """(valid rows, invalid rows with `reason`)."""
    from pyspark.sql import functions as F

    flagged = with_reasons(raw, source)
    return flagged.where(F.col(REASON).isNull()).drop(REASON), flagged.where(F.col(REASON).isNotNull())


def rank_parts(source: Source, alias: str | None = None) -> list[Column]:
    """The order that picks an event's surviving copy, as sort keys: earliest timestamp, then the
    smallest value of each double column (the amount, the stars), then (only for determinism) the
    other columns with nulls last, then the source file.

    `alias` qualifies the columns (`c`/`n` inside a MERGE)."""
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(f"{alias}.{name}" if alias else name)

    preferred = [c.name for c in source.columns if c.kind == "double"]
    parts = [col(source.timestamp_column), *[col(name) for name in preferred]]
    for column in source.columns:
        if column.name in (source.id_column, source.timestamp_column, *preferred):
            continue
        parts += [col(column.name).isNull(), col(column.name)]  # False < True: nulls last
    parts.append(col(SOURCE_FILE))
    return parts


def rank_key(source: Source, alias: str | None = None) -> Column:
    """`rank_parts` as one comparable struct (smaller: the better copy)."""
    from pyspark.sql import functions as F

    return F.struct(*rank_parts(source, alias))


def deduplicate(valid: DataFrame, source: Source) -> DataFrame:
    """One row per event id: the copy with the smallest `rank_key`.

    Sorted by the key's parts, not by the struct: a struct sort key would be built before the
    shuffle and travel with every row, a second copy of its strings (2M landing rows: 775 MiB of
    shuffle instead of ~half)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(source.id_column).orderBy(*rank_parts(source))
    return valid.withColumn("_rank", F.row_number().over(w)).where(F.col("_rank") == 1).drop("_rank")


def winners(batch: DataFrame, current: DataFrame | None, source: Source) -> DataFrame:
    """Rows of a deduplicated landing batch that beat the stored copy of their event (or have none),
    with `_replaces` (a stored copy exists) and `_previous_date`: the event day of the copy they
    replace, if its payload differed."""
    from pyspark.sql import functions as F

    key = source.id_column
    if current is None:
        return batch.withColumn("_replaces", F.lit(False)).withColumn("_previous_date", F.lit(None).cast("date"))
    stored = current.join(batch.select(key), key, "left_semi").select(
        F.col(key), rank_key(source).alias("_stored_rank"), F.col(EVENT_DATE).alias("_stored_date"),
        F.struct(*[F.col(c.name) for c in source.columns]).alias("_stored_payload"),
    )
    joined = batch.join(stored, key, "left")
    payload = F.struct(*[F.col(c.name) for c in source.columns])
    win = F.col("_stored_rank").isNull() | (rank_key(source) < F.col("_stored_rank"))
    return joined.where(win).select(
        *batch.columns,
        F.col("_stored_rank").isNotNull().alias("_replaces"),
        F.when(F.col("_stored_payload").isNotNull() & (payload != F.col("_stored_payload")), F.col("_stored_date"))
        .alias("_previous_date"),
    )


def changed_days(days, previous_days) -> list:
    """Event days a batch changes: the winners' own days, and the days of the stored copies they
    replace with a different payload (`winners`' `_previous_date`; nulls ignored)."""
    return sorted({d for d in (*days, *previous_days) if d is not None})


def with_row_key(invalid: DataFrame, source: Source) -> DataFrame:
    """A stable identity for each quarantined row (file + content + occurrence), so reruns add nothing twice."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    content = F.sha2(
        F.to_json(F.struct(*[F.col(c.name) for c in source.columns], F.col(SOURCE_FILE))), 256
    )
    w = Window.partitionBy("_content").orderBy("_content")
    occurrence = F.row_number().over(w)
    return (
        invalid.withColumn("_content", content)
        .withColumn("row_key", F.concat_ws("#", F.col("_content"), occurrence.cast("string")))
        .drop("_content")
    )
