"""validate_raw: raw landings -> quarantine (bad rows, with reasons) + clean, deduplicated transactions.

Rules (SPEC §2): validation first, then one row per `transaction_id` across every landing
(earliest `event_timestamp` wins, then the smallest `amount`). The raw suite (GX) then gates the
clean rows, catching any bug in the rules here.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

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
EVENT_TIMESTAMP_MISSING = "event_timestamp_missing"


def _rule_checks(source: Source) -> list[tuple[str, Column]]:
    """(reason, condition that is true when the row breaks the rule) for every required column."""
    from pyspark.sql import functions as F

    checks: list[tuple[str, Column]] = []
    for column in source.required:
        c = F.col(column.name)
        if column.kind == "string":
            # whitespace-only ids (tabs, newlines too: F.trim strips only spaces) are as empty as ""
            checks.append((f"{column.name}_missing", c.isNull()))
            checks.append((f"{column.name}_empty", c.isNotNull() & c.rlike(r"^\s*$")))
        elif column.kind == "double":
            checks.append((f"{column.name}_missing", c.isNull() | F.isnan(c)))
            finite = c.isNotNull() & ~F.isnan(c)
            infinite = finite & (F.abs(c) == F.lit(float("inf")))
            checks.append((f"{column.name}_not_finite", infinite))
            checks.append((f"{column.name}_not_positive", finite & ~infinite & (c <= 0)))
        else:
            checks.append((f"{column.name}_missing", c.isNull()))
    return checks


def with_reasons(raw: DataFrame, source: Source) -> DataFrame:
    """`raw` plus `reason`: null for a valid row, else every broken rule, comma-joined."""
    from pyspark.sql import functions as F

    parts = [F.when(broken, F.lit(reason)) for reason, broken in _rule_checks(source)]
    reason = F.concat_ws(",", *parts)  # concat_ws skips nulls
    return raw.withColumn(REASON, F.when(reason != "", reason))


def split_valid(raw: DataFrame, source: Source) -> tuple[DataFrame, DataFrame]:
    """(valid rows, invalid rows with `reason`)."""
    from pyspark.sql import functions as F

    flagged = with_reasons(raw, source)
    return flagged.where(F.col(REASON).isNull()).drop(REASON), flagged.where(F.col(REASON).isNotNull())


def rank_key(source: Source, alias: str | None = None) -> Column:
    """The order that picks an event's surviving copy: earliest timestamp, then smallest amount,
    then (only for determinism) the other columns with nulls last, then the source file.

    `alias` qualifies the columns (`c`/`n` inside a MERGE)."""
    from pyspark.sql import functions as F

    def col(name: str) -> Column:
        return F.col(f"{alias}.{name}" if alias else name)

    parts = [col(source.timestamp_column), col("amount")]
    for column in source.columns:
        if column.name in (source.id_column, source.timestamp_column, "amount"):
            continue
        parts += [col(column.name).isNull(), col(column.name)]  # False < True: nulls last
    parts.append(col("source_file"))
    return F.struct(*parts)


def deduplicate(valid: DataFrame, source: Source) -> DataFrame:
    """One row per event id: the copy with the smallest `rank_key`."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(source.id_column).orderBy(rank_key(source))
    return valid.withColumn("_rank", F.row_number().over(w)).where(F.col("_rank") == 1).drop("_rank")


def winners(batch: DataFrame, current: DataFrame | None, source: Source) -> DataFrame:
    """Rows of a deduplicated landing batch that beat the stored copy of their event (or have none),
    with `_previous_date`: the event day of the copy they replace, if its payload differed."""
    from pyspark.sql import functions as F

    key = source.id_column
    if current is None:
        return batch.withColumn("_previous_date", F.lit(None).cast("date"))
    stored = current.join(batch.select(key), key, "left_semi").select(
        F.col(key), rank_key(source).alias("_stored_rank"), F.col("event_date").alias("_stored_date"),
        F.struct(*[F.col(c.name) for c in source.columns]).alias("_stored_payload"),
    )
    joined = batch.join(stored, key, "left")
    payload = F.struct(*[F.col(c.name) for c in source.columns])
    win = F.col("_stored_rank").isNull() | (rank_key(source) < F.col("_stored_rank"))
    return joined.where(win).select(
        *batch.columns,
        F.when(F.col("_stored_payload").isNotNull() & (payload != F.col("_stored_payload")), F.col("_stored_date"))
        .alias("_previous_date"),
    )


def changed_days(winning: DataFrame, source: Source) -> list:
    """Event days whose events a batch changes: days it adds to, and days it takes a replaced copy from."""
    from pyspark.sql import functions as F

    days = winning.select(F.to_date(source.timestamp_column).alias("d")).union(
        winning.where(F.col("_previous_date").isNotNull()).select(F.col("_previous_date").alias("d"))
    )
    return sorted(r["d"] for r in days.distinct().collect())


def with_row_key(invalid: DataFrame, source: Source) -> DataFrame:
    """A stable identity for each quarantined row (file + content + occurrence), so reruns add nothing twice."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    content = F.sha2(
        F.to_json(F.struct(*[F.col(c.name) for c in source.columns], F.col("source_file"))), 256
    )
    w = Window.partitionBy("_content").orderBy("_content")
    occurrence = F.row_number().over(w)
    return (
        invalid.withColumn("_content", content)
        .withColumn("row_key", F.concat_ws("#", F.col("_content"), occurrence.cast("string")))
        .drop("_content")
    )


def ingest(spark, as_of, gate=None) -> dict:
    """Read the landings not yet ingested, quarantine bad rows, merge valid events into the clean table.

    Marks the event days whose events changed as dirty (for compute_tiles) *before* merging, so a
    crash between the two never loses a change. `gate(batch)` may veto the batch before anything
    is merged (the raw GX suite). Returns the step report.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from featurepipe import bookkeeping, lake
    from featurepipe.dates import midnight
    from featurepipe.raw import read_source
    from featurepipe.settings import get_settings
    from featurepipe.spec import USER_PURCHASE
    from featurepipe.storage import list_parquet_file_info

    source = USER_PURCHASE.source
    uri = get_settings().transactions_uri
    listed = list_parquet_file_info(uri)
    if not listed:
        raise FileNotFoundError(f"no Parquet files under {uri}")
    fresh = bookkeeping.new_files(spark, listed)
    report = {"files": len(listed), "new_files": len(fresh)}
    if not fresh:
        print(f"[validate_raw] {len(listed)} raw files under {uri}, none new")
        return {**report, "raw_rows": 0, "quarantined_rows": 0, "quarantine_reasons": {}, "duplicate_rows_dropped": 0,
                "new_or_corrected_events": 0, "dirty_days": 0}
    print(f"[validate_raw] reading {len(fresh)} new of {len(listed)} raw files under {uri}")
    raw, _ = read_source(spark, uri, source, files=[f.path for f in fresh])

    flagged = with_reasons(raw, source).cache()
    valid = flagged.where(F.col(REASON).isNull()).drop(REASON)
    invalid = with_row_key(flagged.where(F.col(REASON).isNotNull()), source).withColumn(
        "as_of", F.lit(midnight(as_of.end)).cast("timestamp")
    )
    batch = deduplicate(valid, source).withColumn("event_date", F.to_date(source.timestamp_column)).cache()
    if gate is not None:
        gate(batch.drop("event_date"))

    # quarantine: insert rows never seen before; a row keeps the as-of of the run that first saw it
    if lake.table_exists(spark, lake.QUARANTINE):
        (
            DeltaTable.forPath(spark, lake.table_path(lake.QUARANTINE)).alias("q")
            .merge(invalid.alias("n"), "q.row_key = n.row_key")
            .whenNotMatchedInsertAll()
            .execute()
        )
    else:
        lake.overwrite(invalid, lake.QUARANTINE)

    has_clean = lake.table_exists(spark, lake.CLEAN_TRANSACTIONS)
    current = lake.read_table(spark, lake.CLEAN_TRANSACTIONS) if has_clean else None
    ids = _batch_ids(batch, source)
    if current is not None and ids is not None:
        # a literal IN list lets Delta skip every file whose id range cannot hold a batch id
        # (per-file min/max statistics), so a daily landing does not read the whole history
        current = current.where(F.col(source.id_column).isin(ids))
    winning = winners(batch, current, source).cache()
    days = changed_days(winning, source)
    # counted before the merge: writing the clean table invalidates every cache built on it
    n_raw, n_valid, n_batch, n_won = flagged.count(), valid.count(), batch.count(), winning.count()
    bookkeeping.mark_dirty_days(spark, days, as_of.label)
    clean_rows = winning.drop("_previous_date")
    if has_clean:
        condition = F.col(f"c.{source.id_column}") == F.col(f"n.{source.id_column}")
        if ids is not None:
            condition = condition & F.col(f"c.{source.id_column}").isin(ids)  # same file skipping
        (
            DeltaTable.forPath(spark, lake.table_path(lake.CLEAN_TRANSACTIONS)).alias("c")
            .merge(clean_rows.alias("n"), condition)
            .whenMatchedUpdateAll(condition=rank_key(source, "n") < rank_key(source, "c"))
            .whenNotMatchedInsertAll()
            .execute()
        )
    else:
        lake.overwrite(clean_rows, lake.CLEAN_TRANSACTIONS, partition_by="event_date")
    bookkeeping.record_ingested(spark, fresh, as_of.end)

    reasons = {r[REASON]: r["count"] for r in flagged.where(F.col(REASON).isNotNull()).groupBy(REASON).count().collect()}
    return {
        **report,
        "raw_rows": n_raw,
        "quarantined_rows": n_raw - n_valid,
        "quarantine_reasons": reasons,
        "duplicate_rows_dropped": n_valid - n_won,
        "new_or_corrected_events": n_won,
        "dirty_days": len(days),
        "dirty_day_range": f"{days[0]}..{days[-1]}" if days else "",
        "batch_events": n_batch,
    }


# up to this many distinct ids per landing batch, the clean table is read through an IN list
MAX_PUSHED_IDS = 50_000


def _batch_ids(batch: DataFrame, source: Source) -> list[str] | None:
    """The batch's event ids when few enough to push into the clean-table scan, else None."""
    ids = batch.select(source.id_column).limit(MAX_PUSHED_IDS + 1).collect()
    return None if len(ids) > MAX_PUSHED_IDS else [r[0] for r in ids]


def main(argv: list[str] | None = None) -> int:
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.quality import validate_dataframe
    from featurepipe.raw import RawSchemaError
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-validate-raw-{as_of.label}")
    outcomes = []

    def gate(batch) -> None:
        outcome = validate_dataframe(batch, "transactions_raw", f"raw-{as_of.label}")
        print(outcome.summary())
        outcomes.append(outcome)
        if not outcome.success:
            raise RawSuiteFailed(outcome.summary())

    try:
        report = ingest(spark, as_of, gate=gate)
    except (RawSchemaError, FileNotFoundError, RawSuiteFailed) as exc:
        print(f"validate_raw: {exc}", file=sys.stderr)
        return 2
    report["raw_suite"] = outcomes[0].summary().splitlines()[0] if outcomes else "not run (no new rows)"
    write_step_report("validate_raw", as_of, report)
    return 0


class RawSuiteFailed(RuntimeError):
    """The raw suite failed on rows that passed the quarantine rules: a bug there; nothing merged."""


if __name__ == "__main__":
    sys.exit(main())
