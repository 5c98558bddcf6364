"""Where a monitoring report goes: rows of `monitoring/feature_stats`, `summary.json` and `index.html`.

`$FEATUREPIPE_DATA_DIR/reports/monitoring/<T>/` holds the page and the summary; the Delta table keeps
one row per (as-of, feature, statistic), the as-of's rows replaced when T is reported again, so
history is one query: `SELECT * FROM delta.\\`…/monitoring/feature_stats\\` WHERE feature = '…'`.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING

from featurepipe.monitoring import TABLE, Report

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FEATURE_STATISTICS = ("ks", "p_value", "psi", "mean", "reference_mean", "mean_change", "null_rate", "reference_null_rate")
TABLE_STATISTICS = {
    "completeness": ("rows", "users", "reference_rows_per_day", "reference_users", "rows_change", "users_change"),
    "freshness": ("publish_lag_hours", "online_lag_days"),
}


def report_dir(as_of: str) -> Path:
    from featurepipe.settings import get_settings

    return get_settings().reports_dir / "monitoring" / as_of


def stat_rows(summary: dict) -> list[tuple]:
    """(as_of, feature, statistic, value, breached) for every statistic of the summary."""
    as_of = dt.date.fromisoformat(summary["as_of"])
    breached = {(b["feature"], b["statistic"]) for b in summary["breaches"]}
    rows = []
    for name, stats in summary["features"].items():
        for statistic in FEATURE_STATISTICS:
            rows.append((as_of, name, statistic, stats.get(statistic), (name, statistic) in breached))
    for section, statistics in TABLE_STATISTICS.items():
        for statistic in statistics:
            value = summary[section].get(statistic)
            rows.append((as_of, TABLE, statistic, value, (TABLE, statistic) in breached))
    return [(a, f, s, None if v is None else float(v), b) for a, f, s, v, b in rows]


def save_stats(spark: SparkSession, summary: dict) -> None:
    """Replace the as-of's rows of `monitoring/feature_stats` with this report's."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, DateType, DoubleType, StringType, StructField, StructType

    from featurepipe import lake

    schema = StructType([
        StructField(lake.AS_OF_DATE, DateType(), False),
        StructField("feature", StringType(), False),
        StructField("statistic", StringType(), False),
        StructField("value", DoubleType(), True),
        StructField("breached", BooleanType(), False),
    ])
    reference = summary["reference"]
    df = (lake.literal_rows(spark, stat_rows(summary), schema)
          .withColumn("reference_start", F.lit(reference["start"]).cast("date"))
          .withColumn("reference_end", F.lit(reference["end"]).cast("date"))
          .withColumn("reported_at", F.current_timestamp()))
    as_of = dt.date.fromisoformat(summary["as_of"])
    lake.replace_dates(df, lake.FEATURE_STATS, lake.AS_OF_DATE, [as_of])


def latest_file() -> Path:
    """`reports/monitoring/latest.json`: where the newest report went ({as_of, html, summary, breaches})."""
    from featurepipe.settings import get_settings

    return get_settings().reports_dir / "monitoring" / "latest.json"


def write_files(report: Report) -> tuple[Path, Path]:
    """(index.html, summary.json) under the as-of's report folder, and the `latest_file` pointer to them."""
    from featurepipe.report_html import render

    folder = report_dir(report.summary["as_of"])
    folder.mkdir(parents=True, exist_ok=True)
    summary_path = folder / "summary.json"
    summary_path.write_text(json.dumps(report.summary, indent=2, default=str) + "\n")
    page = folder / "index.html"
    page.write_text(render(report.summary, report.details))
    pointer = {"as_of": report.summary["as_of"], "html": str(page), "summary": str(summary_path),
               "breaches": len(report.breaches)}
    latest_file().write_text(json.dumps(pointer, indent=2) + "\n")
    return page, summary_path


def save(spark: SparkSession, report: Report) -> tuple[Path, Path]:
    save_stats(spark, report.summary)
    return write_files(report)


class MonitoringBreach(RuntimeError):
    """A report breached a threshold: carries the summary and the page for the alert."""

    def __init__(self, summary: dict, page: Path) -> None:
        lines = "; ".join(f"{b['check']} {b['feature']}: {b['message']}" for b in summary["breaches"][:5])
        super().__init__(f"monitoring: {len(summary['breaches'])} breach(es) as of {summary['as_of']}: {lines} (report: {page})")
        self.summary = summary
        self.page = page


def run_checks(as_of: dt.date | None = None) -> dict:
    """The monitoring task: report `as_of` (default: the newest published), save it, raise MonitoringBreach
    on a breach; else return a short result (for the task's XCom)."""
    from featurepipe.monitor_config import load_config
    from featurepipe.monitoring import build_report
    from featurepipe.spark import get_spark

    config = load_config()
    spark = get_spark("featurepipe-check-features")
    report = build_report(spark, as_of, config)
    page, summary_path = save(spark, report)
    print(f"[monitoring] HTML: {page}\n[monitoring] JSON: {summary_path}", flush=True)
    if report.breaches:
        raise MonitoringBreach(report.summary, page)
    return {"as_of": report.summary["as_of"], "breaches": 0, "report": str(page)}
