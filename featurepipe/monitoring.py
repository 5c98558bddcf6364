"""Feature monitoring for one as-of date T (SPEC §6): drift, completeness and freshness against a reference.

One cached read of the feature table covers T, the reference dates and the report's history; the
per-date series (rows, users, null rates, means, binned shares for the PSI of every date) are Spark
aggregations, and only samples of at most `sample_rows` rows of T and of the reference reach the
driver for the KS test (`featurepipe.drift`). The result is the summary `featurepipe report --json`
prints, the details the HTML page plots, and rows appended (per as-of, replaced) to
`monitoring/feature_stats`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurepipe.dates import AsOfRange
from featurepipe.drift import NULL_CATEGORY, Drift, categorical_drift, numeric_drift, psi, shares
from featurepipe.monitor_config import MonitoringConfig, publish_lag_limit_hours
from featurepipe.spec import USER_PURCHASE, Dtype, FeatureGroup

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TABLE = "(table)"  # the `feature` of table-level statistics and breaches
CHECKS = ("drift", "completeness", "freshness")
_SAMPLE_SEED = 17


class NothingPublished(RuntimeError):
    pass


@dataclass
class Report:
    summary: dict[str, Any]
    details: dict[str, Any]

    @property
    def breaches(self) -> list[dict]:
        return self.summary["breaches"]


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _finite(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def build_report(spark: SparkSession, as_of: dt.date | None, config: MonitoringConfig,
                 say=lambda line: print(line, flush=True)) -> Report:
    """Every check of as-of `as_of` (default: the newest published); nothing written yet (see `save`)."""
    from pyspark.sql import functions as F

    from featurepipe import bookkeeping, lake

    newest = bookkeeping.latest_published(spark)
    if newest is None:
        raise NothingPublished("no published feature rows yet: run `featurepipe run` or `featurepipe backfill` first")
    as_of = as_of or newest
    ref_start, ref_end = config.reference_range(as_of)
    history_start = as_of - dt.timedelta(days=config.history_days - 1)
    first = min(ref_start, history_start)
    say(f"[monitoring] as-of {as_of}: reference {ref_start} .. {ref_end}, history from {history_start}")
    rows = lake.read_range(spark, lake.FEATURES, lake.AS_OF_DATE, first, max(as_of, ref_end)).cache()
    try:
        current = rows.where(F.col(lake.AS_OF_DATE) == F.lit(as_of))
        reference = rows.where(F.col(lake.AS_OF_DATE).between(F.lit(ref_start), F.lit(ref_end)))
        per_date = _per_date(rows)
        if as_of not in per_date:
            raise NothingPublished(f"as-of {as_of} has no published rows (newest published: {newest})")
        ref_dates = [d for d in AsOfRange(ref_start, ref_end).dates if d in per_date]
        # the row counts are known from `per_date`: no count job per sample
        cur_sample = _sample(current, per_date[as_of]["rows"], config)
        ref_sample = _sample(reference, sum(per_date[d]["rows"] for d in ref_dates), config)
        drifts = {f.name: (numeric_drift(ref_sample[f.name].to_numpy(dtype=float, na_value=math.nan),
                                         cur_sample[f.name].to_numpy(dtype=float, na_value=math.nan), config.bins)
                           if f.dtype is not Dtype.STRING else categorical_drift(ref_sample[f.name], cur_sample[f.name]))
                  for f in USER_PURCHASE.features}
        history = AsOfRange(history_start, as_of).dates
        psi_series = _psi_series(rows.where(F.col(lake.AS_OF_DATE) >= F.lit(history_start)), drifts, history)
    finally:
        rows.unpersist()
    freshness = _freshness(spark, newest)
    summary = _summary(as_of, (ref_start, ref_end), ref_dates, per_date, drifts, freshness, config)
    details = {
        "histograms": {name: _histogram(d) for name, d in drifts.items()},
        "series": _series(history, per_date, psi_series, spark),
    }
    say(f"[monitoring] {len(summary['breaches'])} breach(es)")
    return Report(summary, details)


def _per_date(rows: DataFrame) -> dict[dt.date, dict]:
    """Rows, users, null count and mean of every feature, per as-of date (one aggregation)."""
    from pyspark.sql import functions as F

    from featurepipe.lake import AS_OF_DATE

    key = USER_PURCHASE.join_key
    aggs = [F.count(F.lit(1)).alias("rows"), F.countDistinct(key).alias("users")]
    for f in USER_PURCHASE.features:
        aggs.append(F.sum(F.col(f.name).isNull().cast("long")).alias(f"nulls__{f.name}"))
        if f.dtype is not Dtype.STRING:
            aggs.append(F.avg(F.col(f.name).cast("double")).alias(f"mean__{f.name}"))
    return {r[AS_OF_DATE]: r.asDict() for r in rows.groupBy(AS_OF_DATE).agg(*aggs).collect()}


def _sample(df: DataFrame, total: int, config: MonitoringConfig):
    """At most `sample_rows` of the `total` rows of `df`'s features, as pandas (a fixed-seed sample when there are more)."""
    if total > config.sample_rows:
        df = df.sample(fraction=min(1.0, 1.1 * config.sample_rows / total), seed=_SAMPLE_SEED).limit(config.sample_rows)
    return df.select(*USER_PURCHASE.feature_names).toPandas()


def _bin_column(name: str, drift: Drift):
    """The bin label of a feature's value, as `featurepipe.drift` bins it (numeric: index of the quantile bin)."""
    from pyspark.sql import functions as F

    column = F.col(name)
    if drift.kind == "categorical":
        return F.coalesce(column.cast("string"), F.lit(NULL_CATEGORY))
    index = F.lit(0)
    for cut in drift.bins[1:-1]:
        index = index + (column.cast("double") >= F.lit(cut)).cast("int")
    return F.when(column.isNull(), F.lit(None)).otherwise(index.cast("string"))


def _psi_series(rows: DataFrame, drifts: dict[str, Drift], history: list[dt.date]) -> dict[str, list[float | None]]:
    """Each feature's PSI of every history date against the reference shares (the same bins)."""
    from pyspark.sql import functions as F

    from featurepipe.lake import AS_OF_DATE

    pairs = F.array(*[F.struct(F.lit(name).alias("feature"), _bin_column(name, d).alias("bin")) for name, d in drifts.items()])
    counts = (rows.select(AS_OF_DATE, F.explode(pairs).alias("p"))
              .where(F.col("p.bin").isNotNull())
              .groupBy(AS_OF_DATE, "p.feature", "p.bin").count().collect())
    by: dict[tuple[str, dt.date], dict[str, int]] = {}
    for r in counts:
        by.setdefault((r["feature"], r[AS_OF_DATE]), {})[r["bin"]] = r["count"]
    series: dict[str, list[float | None]] = {}
    for name, drift in drifts.items():
        labels = [str(i) for i in range(len(drift.reference_shares))] if drift.kind == "numeric" else list(drift.bins)
        values = []
        for day in history:
            got = by.get((name, day))
            if not got:
                values.append(None)
                continue
            extra = [b for b in got if b not in labels]  # a category the reference never saw
            current = shares([float(got.get(b, 0)) for b in labels + extra])
            reference = list(drift.reference_shares) + [0.0] * len(extra)
            values.append(psi(reference, current))
        series[name] = values
    return series


def _freshness(spark: SparkSession, newest: dt.date) -> dict[str, Any]:
    """Newest published as-of vs the newest landed event, and the online store's newest as-of."""
    from featurepipe.dates import midnight
    from featurepipe.raw import latest_event
    from featurepipe.settings import get_settings

    landed = latest_event(get_settings().transactions_uri, USER_PURCHASE.source, since=newest - dt.timedelta(days=1))
    lag = (landed - midnight(newest)).total_seconds() / 3600 if landed else 0.0
    out: dict[str, Any] = {
        "newest_as_of": _iso(newest),
        "newest_landed_event": landed.isoformat() if landed else None,
        "publish_lag_hours": round(max(lag, 0.0), 3),
    }
    out.update(_online_freshness(spark, newest))
    return out


def _online_freshness(spark: SparkSession, newest: dt.date) -> dict[str, Any]:
    """The newest as-of among the online rows of the parity sample of users (read from the store itself)."""
    from pathlib import Path

    from featurepipe import lake
    from featurepipe.feast_store import feast_env, online_features
    from featurepipe.parity import newest_rows, sample_users

    if not Path(feast_env()["FEATUREPIPE_FEAST_REGISTRY"]).exists():
        return {"online_newest_as_of": None, "online_lag_days": None, "online_users_sampled": 0,
                "online_note": "no Feast registry: nothing was materialized yet"}
    key = USER_PURCHASE.join_key
    users = [r[key] for r in sample_users(newest_rows(lake.read_table(spark, lake.FEATURES)), 1000, newest.isoformat())
             .select(key).collect()]
    stamps = [row["as_of"] for row in online_features(users, with_as_of=True) if row["as_of"]]
    online_newest = max(stamps).date() if stamps else None
    return {"online_newest_as_of": _iso(online_newest),
            "online_lag_days": (newest - online_newest).days if online_newest else None,
            "online_users_sampled": len(users)}


def _breach(check: str, feature: str, statistic: str, value: float | None, threshold: float, message: str) -> dict:
    return {"check": check, "feature": feature, "statistic": statistic, "value": _finite(value),
            "threshold": threshold, "message": message}


def freshness_breaches(freshness: dict, config: MonitoringConfig, group: FeatureGroup) -> list[dict]:
    """The freshness checks of `_freshness`'s result against the thresholds: the publish lag against
    `group`'s `freshness_sla` (spec), the online lag against the config's."""
    breaches: list[dict] = []
    from featurepipe.settings import format_duration

    limit = publish_lag_limit_hours(group)
    if freshness["publish_lag_hours"] >= limit:
        breaches.append(_breach("freshness", TABLE, "publish_lag_hours", freshness["publish_lag_hours"], limit,
                                f"newest landed event {freshness['newest_landed_event']} is "
                                f"{freshness['publish_lag_hours']:.1f} h after the newest published as-of {freshness['newest_as_of']} "
                                f"({group.name}'s freshness_sla: {format_duration(group.freshness_sla)})"))
    online_lag = freshness.get("online_lag_days")
    if online_lag is not None and online_lag >= config.freshness.online_lag_days:
        breaches.append(_breach("freshness", TABLE, "online_lag_days", online_lag, config.freshness.online_lag_days,
                                f"online store's newest as-of {freshness['online_newest_as_of']} is {online_lag} day(s) "
                                f"behind the newest published {freshness['newest_as_of']}"))
    if freshness.get("online_users_sampled") and freshness.get("online_newest_as_of") is None:
        breaches.append(_breach("freshness", TABLE, "online_lag_days", None, config.freshness.online_lag_days,
                                "the online store holds no row of the sampled users"))
    return breaches


def _summary(as_of: dt.date, reference: tuple[dt.date, dt.date], ref_dates: list[dt.date], per_date: dict,
             drifts: dict[str, Drift], freshness: dict, config: MonitoringConfig) -> dict[str, Any]:
    cur = per_date[as_of]
    n_ref = len(ref_dates)
    ref_rows = sum(per_date[d]["rows"] for d in ref_dates) / n_ref if n_ref else None
    ref_users = sum(per_date[d]["users"] for d in ref_dates) / n_ref if n_ref else None
    breaches: list[dict] = []
    features: dict[str, dict] = {}
    for name, drift in drifts.items():
        null_rate = cur[f"nulls__{name}"] / cur["rows"] if cur["rows"] else None
        ref_nulls = sum(per_date[d][f"nulls__{name}"] for d in ref_dates)
        ref_null_rate = ref_nulls / (ref_rows * n_ref) if ref_rows else None
        features[name] = {"kind": drift.kind, "ks": _finite(drift.ks), "p_value": _finite(drift.p_value),
                          "psi": _finite(drift.psi), "null_rate": null_rate, "reference_null_rate": ref_null_rate,
                          "mean": _finite(drift.mean), "reference_mean": _finite(drift.reference_mean),
                          "mean_change": _finite(drift.mean_change)}
        if not n_ref:
            continue  # no reference: drift and null-rate changes cannot be judged (reported in `reference`)
        if drift.psi is not None and not math.isnan(drift.psi) and drift.psi >= config.drift.psi:
            breaches.append(_breach("drift", name, "psi", drift.psi, config.drift.psi,
                                    f"PSI {drift.psi:.3f} >= {config.drift.psi:g} against the reference"))
        if drift.ks is not None and drift.ks >= config.drift.ks and drift.p_value < config.drift.p_value:
            breaches.append(_breach("drift", name, "ks", drift.ks, config.drift.ks,
                                    f"KS {drift.ks:.3f} >= {config.drift.ks:g} (p = {drift.p_value:.2g} < {config.drift.p_value:g})"))
        change = drift.mean_change
        if change is not None and abs(change) >= config.drift.mean_change:
            breaches.append(_breach("drift", name, "mean_change", change, config.drift.mean_change,
                                    f"mean {drift.mean:.4g} vs reference {drift.reference_mean:.4g} ({change:+.1%})"))
        if null_rate is not None and ref_null_rate is not None and null_rate - ref_null_rate >= config.completeness.null_rate_increase:
            breaches.append(_breach("completeness", name, "null_rate_increase", null_rate - ref_null_rate,
                                    config.completeness.null_rate_increase,
                                    f"null rate {null_rate:.1%} vs reference {ref_null_rate:.1%}"))
    rows_change = cur["rows"] / ref_rows - 1 if ref_rows else None
    users_change = cur["users"] / ref_users - 1 if ref_users else None
    for statistic, value, threshold, what in (("rows_change", rows_change, config.completeness.rows_change, "rows"),
                                              ("users_change", users_change, config.completeness.users_change, "users with a row")):
        if value is not None and abs(value) >= threshold:
            breaches.append(_breach("completeness", TABLE, statistic, value, threshold,
                                    f"{what} at {as_of} {value:+.1%} against the reference mean per as-of"))
    breaches += freshness_breaches(freshness, config, USER_PURCHASE)
    breaches.sort(key=lambda b: (CHECKS.index(b["check"]), b["feature"], b["statistic"]))
    return {
        "as_of": as_of.isoformat(),
        "reference": {"start": reference[0].isoformat(), "end": reference[1].isoformat(), "dates": n_ref,
                      "pinned": config.pinned_reference is not None},
        "breaches": breaches,
        "features": features,
        "completeness": {"rows": cur["rows"], "users": cur["users"], "reference_rows_per_day": ref_rows,
                         "reference_users": ref_users, "rows_change": rows_change, "users_change": users_change},
        "freshness": freshness,
        "thresholds": config.thresholds(USER_PURCHASE),
        "config": config.source,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # when, not what: the data is as of T
    }


def _histogram(drift: Drift) -> dict[str, Any]:
    if drift.kind == "numeric":
        return {"kind": "numeric", "edges": drift.bins, "reference": drift.reference_shares, "current": drift.current_shares}
    return {"kind": "categorical", "categories": drift.bins, "reference": drift.reference_shares, "current": drift.current_shares}


def _series(history: list[dt.date], per_date: dict, psi_series: dict, spark: SparkSession) -> dict[str, Any]:
    from featurepipe import bookkeeping
    from featurepipe.dates import midnight

    published_at = bookkeeping.first_published_at(spark, history[0], history[-1])
    day = [per_date.get(d) for d in history]
    lag = [round((published_at[d] - midnight(d)).total_seconds() / 3600, 3) if d in published_at else None for d in history]
    return {
        "dates": [d.isoformat() for d in history],
        "psi": psi_series,
        "null_rate": {f.name: [r[f"nulls__{f.name}"] / r["rows"] if r and r["rows"] else None for r in day]
                      for f in USER_PURCHASE.features},
        "mean": {f.name: [r.get(f"mean__{f.name}") if r else None for r in day]
                 for f in USER_PURCHASE.features if f.dtype is not Dtype.STRING},
        "rows": [r["rows"] if r else None for r in day],
        "users": [r["users"] if r else None for r in day],
        "publish_lag_hours": lag,
    }
