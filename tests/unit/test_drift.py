"""Drift statistics (featurepipe.drift) and the monitoring configuration (featurepipe.monitor_config)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from featurepipe.drift import NULL_CATEGORY, bin_index, categorical_drift, numeric_drift, psi, quantile_edges
from featurepipe.monitor_config import MonitoringConfigError, load_config, parse_config


def test_psi_is_zero_for_equal_shares_and_symmetric() -> None:
    a, b = np.array([0.2, 0.3, 0.5]), np.array([0.3, 0.3, 0.4])
    assert psi(a, a) == 0.0
    assert psi(a, b) == pytest.approx(psi(b, a))
    # by hand: sum (c - r) ln(c / r)
    assert psi(a, b) == pytest.approx((0.3 - 0.2) * np.log(0.3 / 0.2) + (0.4 - 0.5) * np.log(0.4 / 0.5))


def test_quantile_bins_are_open_ended_and_give_ties_a_bin_of_their_own() -> None:
    counts = np.array([0] * 60 + [1] * 20 + [2] * 10 + [5] * 10, dtype=float)
    edges = quantile_edges(counts, 10)
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert list(edges[1:-1]) == sorted(set(edges[1:-1]))  # no repeated cut
    index = bin_index(np.array([0.0, 1.0, 100.0, np.nan]), edges)
    assert index[0] != index[1] and index[2] == len(edges) - 2 and index[3] == -1


def test_a_shift_is_flagged_and_the_same_distribution_is_not() -> None:
    rng = np.random.default_rng(3)
    reference = rng.lognormal(4, 0.6, 20_000)
    same = numeric_drift(reference, rng.lognormal(4, 0.6, 3_000), bins=10)
    shifted = numeric_drift(reference, rng.lognormal(4, 0.6, 3_000) * 1.5, bins=10)
    assert same.psi < 0.02 and same.p_value > 0.01 and abs(same.mean_change) < 0.05
    assert shifted.psi > 0.2 and shifted.ks > 0.2 and shifted.p_value < 1e-9
    assert shifted.mean_change == pytest.approx(0.5, abs=0.05)
    assert sum(shifted.reference_shares) == pytest.approx(1) and sum(shifted.current_shares) == pytest.approx(1)


def test_a_vanished_category_is_flagged_with_null_as_a_category() -> None:
    reference = ["books"] * 40 + ["toys"] * 40 + ["home"] * 20 + [None] * 5
    current = ["books"] * 50 + ["toys"] * 50 + [None] * 5
    drift = categorical_drift(reference, current)
    assert drift.bins[:3] == ["books", "toys", "home"] and NULL_CATEGORY in drift.bins
    assert drift.current_shares[drift.bins.index("home")] == 0.0
    assert drift.psi > 1.0
    assert categorical_drift(reference, reference).psi == 0.0


def test_the_committed_config_loads_and_a_typo_is_an_error_naming_it(tmp_path) -> None:
    config = load_config()
    assert config.reference_range(dt.date(2025, 6, 30)) == (dt.date(2025, 5, 27), dt.date(2025, 6, 23))
    assert {"psi", "ks", "p_value", "rows_change", "online_lag_days"} <= set(config.thresholds())
    with pytest.raises(MonitoringConfigError, match=r"\[thresholds.drift\] has unknown key\(s\) pis"):
        parse_config({"thresholds": {"drift": {"pis": 0.1}}}, "x")
    with pytest.raises(MonitoringConfigError, match=r"\[statistics\] bins must be a whole number >= 2"):
        parse_config({"statistics": {"bins": 1.5}}, "x")
    with pytest.raises(MonitoringConfigError, match="needs both start and end"):
        parse_config({"reference": {"start": "2025-01-01"}}, "x")
    pinned = parse_config({"reference": {"start": "2025-01-01", "end": "2025-01-28"}}, "x")
    assert pinned.reference_range(dt.date(2025, 6, 30)) == (dt.date(2025, 1, 1), dt.date(2025, 1, 28))
    bad = tmp_path / "m.toml"
    bad.write_text("[reference\n")
    with pytest.raises(MonitoringConfigError, match="not valid TOML"):
        load_config(bad)
