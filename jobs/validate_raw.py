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


def deduplicate(valid: DataFrame, source: Source) -> DataFrame:
    """One row per event id: earliest timestamp, then smallest amount, then a stable tie-break."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = [F.col(source.timestamp_column).asc(), F.col("amount").asc()]
    order += [F.col(c.name).asc_nulls_last() for c in source.columns if c.name not in (source.id_column, source.timestamp_column, "amount")]
    if "source_file" in valid.columns:
        order.append(F.col("source_file").asc())
    w = Window.partitionBy(source.id_column).orderBy(*order)
    return valid.withColumn("_rank", F.row_number().over(w)).where(F.col("_rank") == 1).drop("_rank")


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


def main(argv: list[str] | None = None) -> int:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from featurepipe import lake
    from featurepipe.dates import midnight, range_from_args, range_parser
    from featurepipe.quality import validate_dataframe
    from featurepipe.raw import RawSchemaError, read_source
    from featurepipe.reports import write_step_report
    from featurepipe.settings import get_settings
    from featurepipe.spark import get_spark
    from featurepipe.spec import USER_PURCHASE

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    source = USER_PURCHASE.source
    settings = get_settings()
    spark = get_spark(f"featurepipe-validate-raw-{as_of.label}")

    try:
        raw, n_files = read_source(spark, settings.transactions_uri, source)
    except RawSchemaError as exc:
        print(f"validate_raw: {exc}", file=sys.stderr)
        return 2
    if raw is None:
        print(f"validate_raw: no Parquet files under {settings.transactions_uri}", file=sys.stderr)
        return 2
    print(f"[validate_raw] reading {n_files} raw files under {settings.transactions_uri}")

    flagged = with_reasons(raw, source).cache()
    valid = flagged.where(F.col(REASON).isNull()).drop(REASON)
    invalid = with_row_key(flagged.where(F.col(REASON).isNotNull()), source).withColumn(
        "as_of", F.lit(midnight(as_of.end)).cast("timestamp")
    )

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

    clean = deduplicate(valid, source).withColumn("event_date", F.to_date(source.timestamp_column)).cache()
    outcome = validate_dataframe(clean.drop("event_date"), "transactions_raw", f"raw-{as_of.label}")
    print(outcome.summary())
    if not outcome.success:
        print(f"validate_raw: the raw suite failed on the clean rows; nothing written. {outcome.summary()}", file=sys.stderr)
        return 3
    lake.overwrite(clean, lake.CLEAN_TRANSACTIONS, partition_by="event_date")

    reasons = {r[REASON]: r["count"] for r in flagged.where(F.col(REASON).isNotNull()).groupBy(REASON).count().collect()}
    n_raw, n_valid, n_clean = flagged.count(), valid.count(), spark.read.format("delta").load(lake.table_path(lake.CLEAN_TRANSACTIONS)).count()
    write_step_report(
        "validate_raw",
        as_of,
        {
            "files": n_files,
            "raw_rows": n_raw,
            "quarantined_rows": n_raw - n_valid,
            "quarantine_reasons": reasons,
            "duplicate_rows_dropped": n_valid - n_clean,
            "clean_transactions": n_clean,
            "raw_suite": outcome.summary(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
