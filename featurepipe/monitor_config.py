"""The monitoring configuration: `monitoring.toml` at the project root, or FEATUREPIPE_MONITORING_CONFIG.

Every key has a default here (the same values the committed file documents); an unknown section or
key, or a value of the wrong type, is an error naming it, so a typo never silently disables a check.
The publish-lag limit is not here: it is each feature group's `freshness_sla` in the spec
(`publish_lag_limit_hours`), which the catalog, Feast tags and the GX suite show too.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from featurepipe.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from featurepipe.spec import FeatureGroup

CONFIG_FILE = PROJECT_ROOT / "monitoring.toml"


class MonitoringConfigError(ValueError):
    pass


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.1
    ks: float = 0.1
    p_value: float = 0.001
    mean_change: float = 0.12


@dataclass(frozen=True)
class CompletenessThresholds:
    rows_change: float = 0.2
    users_change: float = 0.2
    null_rate_increase: float = 0.05


@dataclass(frozen=True)
class FreshnessThresholds:
    # the publish-lag limit is the group's `freshness_sla` (spec): `publish_lag_limit_hours`
    online_lag_days: float = 1.0


# keys that moved out of this file: a config still setting one fails with where it went
MOVED_KEYS = {
    ("thresholds.freshness", "publish_lag_hours"): (
        "moved to the feature spec: each FeatureGroup's freshness_sla in featurepipe/spec.py "
        "(e.g. freshness_sla=timedelta(hours=48)) is the publish-lag limit; remove it from this file"),
}


def publish_lag_limit_hours(group: FeatureGroup) -> float:
    """The freshness check's publish-lag limit for `group`: its `freshness_sla`, in hours."""
    return group.freshness_sla.total_seconds() / 3600


@dataclass(frozen=True)
class MonitoringConfig:
    reference_days: int = 28
    reference_gap_days: int = 7
    pinned_reference: tuple[dt.date, dt.date] | None = None
    bins: int = 10
    sample_rows: int = 200_000
    history_days: int = 60
    drift: DriftThresholds = field(default_factory=DriftThresholds)
    completeness: CompletenessThresholds = field(default_factory=CompletenessThresholds)
    freshness: FreshnessThresholds = field(default_factory=FreshnessThresholds)
    webhook_url_env: str = "FEATUREPIPE_ALERT_WEBHOOK_URL"
    source: str = "defaults"

    def reference_range(self, as_of: dt.date) -> tuple[dt.date, dt.date]:
        """The reference as-of dates for `as_of`, inclusive: pinned, or `reference_days` ending `gap_days` before it."""
        if self.pinned_reference:
            return self.pinned_reference
        end = as_of - dt.timedelta(days=self.reference_gap_days)
        return end - dt.timedelta(days=self.reference_days - 1), end

    def thresholds(self, group: FeatureGroup | None = None) -> dict[str, float]:
        """Every threshold by the statistic it bounds (`psi`, `rows_change`, ...), for reports; with
        `group`, its publish-lag limit (`publish_lag_hours`, from the spec's `freshness_sla`) too."""
        out: dict[str, float] = {}
        for section in ("drift", "completeness", "freshness"):
            if section == "freshness" and group is not None:
                out["publish_lag_hours"] = publish_lag_limit_hours(group)
            out.update({f.name: getattr(getattr(self, section), f.name) for f in fields(getattr(self, section))})
        return out

    @property
    def webhook_url(self) -> str | None:
        return os.environ.get(self.webhook_url_env) or None


def _number(section: str, key: str, value, kind: type, minimum: float = 0.0):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
    if not ok or value < minimum:
        raise MonitoringConfigError(f"[{section}] {key} must be a {'whole ' if kind is int else ''}number >= {minimum:g}, got {value!r}")
    return kind(value)


def _take(table: dict, section: str, allowed: set[str]) -> dict:
    for key in sorted(table):
        if (section, key) in MOVED_KEYS:
            raise MonitoringConfigError(f"[{section}] {key} {MOVED_KEYS[(section, key)]}")
    unknown = set(table) - allowed
    if unknown:
        raise MonitoringConfigError(f"[{section}] has unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(allowed))}")
    return table


def _thresholds(cls: type, section: str, table: dict):
    names = {f.name for f in fields(cls)}
    _take(table, section, names)
    return cls(**{k: _number(section, k, v, float) for k, v in table.items()})


def _date(section: str, key: str, value) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise MonitoringConfigError(f"[{section}] {key} must be a date YYYY-MM-DD, got {value!r}") from None


def parse_config(data: dict, source: str) -> MonitoringConfig:
    _take(data, "top level", {"reference", "statistics", "thresholds", "alerts"})
    reference = _take(dict(data.get("reference", {})), "reference", {"days", "gap_days", "start", "end"})
    statistics = _take(dict(data.get("statistics", {})), "statistics", {"bins", "sample_rows", "history_days"})
    thresholds = _take(dict(data.get("thresholds", {})), "thresholds", {"drift", "completeness", "freshness"})
    alerts = _take(dict(data.get("alerts", {})), "alerts", {"webhook_url_env"})
    pinned = None
    if "start" in reference or "end" in reference:
        if not ("start" in reference and "end" in reference):
            raise MonitoringConfigError("[reference] a pinned range needs both start and end")
        pinned = (_date("reference", "start", reference["start"]), _date("reference", "end", reference["end"]))
        if pinned[0] > pinned[1]:
            raise MonitoringConfigError(f"[reference] start {pinned[0]} is after end {pinned[1]}")
    defaults = MonitoringConfig()
    webhook_env = alerts.get("webhook_url_env", defaults.webhook_url_env)
    if not isinstance(webhook_env, str) or not webhook_env:
        raise MonitoringConfigError(f"[alerts] webhook_url_env must be an environment variable name, got {webhook_env!r}")
    return MonitoringConfig(
        reference_days=_number("reference", "days", reference.get("days", defaults.reference_days), int, 1),
        reference_gap_days=_number("reference", "gap_days", reference.get("gap_days", defaults.reference_gap_days), int, 1),
        pinned_reference=pinned,
        bins=_number("statistics", "bins", statistics.get("bins", defaults.bins), int, 2),
        sample_rows=_number("statistics", "sample_rows", statistics.get("sample_rows", defaults.sample_rows), int, 100),
        history_days=_number("statistics", "history_days", statistics.get("history_days", defaults.history_days), int, 1),
        drift=_thresholds(DriftThresholds, "thresholds.drift", dict(thresholds.get("drift", {}))),
        completeness=_thresholds(CompletenessThresholds, "thresholds.completeness", dict(thresholds.get("completeness", {}))),
        freshness=_thresholds(FreshnessThresholds, "thresholds.freshness", dict(thresholds.get("freshness", {}))),
        webhook_url_env=webhook_env,
        source=source,
    )


def load_config(path: str | Path | None = None) -> MonitoringConfig:
    """The configuration from `path`, else FEATUREPIPE_MONITORING_CONFIG, else the committed `monitoring.toml`."""
    chosen = Path(path or os.environ.get("FEATUREPIPE_MONITORING_CONFIG") or CONFIG_FILE)
    if not chosen.exists():
        raise MonitoringConfigError(f"monitoring config not found: {chosen}")
    try:
        data = tomllib.loads(chosen.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise MonitoringConfigError(f"{chosen}: not valid TOML: {exc}") from None
    try:
        return parse_config(data, str(chosen))
    except MonitoringConfigError as exc:
        raise MonitoringConfigError(f"{chosen}: {exc}") from None
