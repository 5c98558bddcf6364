"""Drift statistics of one feature between a reference sample and a current sample (pure, no Spark).

The statistics come from scipy, not from hand-written formulas: the two-sample Kolmogorov-Smirnov
test (`scipy.stats.ks_2samp`) for numeric features, and the population stability index as the
symmetrised relative entropy of binned shares (`scipy.special.rel_entr`). Numeric bins are fixed
quantiles of the reference (open-ended at both ends), so the same edges bin every as-of date of a
report's time series; categorical features are binned by value, with null as a category of its
own (`NULL_CATEGORY`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NULL_CATEGORY = "(null)"
# an empty bin's share before the PSI's logarithm (the usual floor: Evidently and most PSI tables use it)
MIN_SHARE = 1e-4


@dataclass(frozen=True)
class Drift:
    """One feature's drift: the statistics plus the binned shares the report plots."""

    kind: str  # "numeric" | "categorical"
    psi: float
    ks: float | None  # numeric only
    p_value: float | None
    mean: float | None
    reference_mean: float | None
    bins: list  # numeric: bin edges (len = shares + 1, first -inf, last +inf); categorical: category names
    reference_shares: list[float]
    current_shares: list[float]

    @property
    def mean_change(self) -> float | None:
        """Relative change of the mean (current / reference - 1); None when the reference mean is 0."""
        if self.mean is None or not self.reference_mean:
            return None
        return self.mean / self.reference_mean - 1.0


def quantile_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Interior cut points at the reference's quantiles, ties merged, between -inf and +inf."""
    values = reference[~np.isnan(reference)]
    if values.size == 0:
        return np.array([-np.inf, np.inf])
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="linear"))
    # a value equal to a cut belongs to the bin above it: with many ties (counts, zeros) the tied
    # value gets a bin of its own instead of sharing one with everything below it
    return np.concatenate([[-np.inf], cuts, [np.inf]])


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value: i such that edges[i] <= value < edges[i + 1] (NaN: -1)."""
    index = np.searchsorted(edges[1:-1], values, side="right")
    return np.where(np.isnan(values), -1, index)


def shares(counts) -> np.ndarray:
    """Counts as fractions of their total (all zeros when the total is 0)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    return counts / total if total else np.zeros_like(counts, dtype=float)


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Population stability index: sum over bins of (c - r) * ln(c / r), empty bins floored at MIN_SHARE."""
    from scipy.special import rel_entr

    r = np.maximum(np.asarray(reference_shares, dtype=float), MIN_SHARE)
    c = np.maximum(np.asarray(current_shares, dtype=float), MIN_SHARE)
    return float(np.sum(rel_entr(c, r) + rel_entr(r, c)))


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def numeric_drift(reference: np.ndarray, current: np.ndarray, bins: int) -> Drift:
    """KS, PSI over reference quantile bins, and means, ignoring nulls (their rate is reported apart)."""
    from scipy.stats import ks_2samp

    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    edges = quantile_edges(reference, bins)
    n_bins = len(edges) - 1
    ref_counts = np.bincount(bin_index(reference, edges)[~np.isnan(reference)], minlength=n_bins)
    cur_counts = np.bincount(bin_index(current, edges)[~np.isnan(current)], minlength=n_bins)
    ref_shares, cur_shares = shares(ref_counts), shares(cur_counts)
    ref_valid, cur_valid = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if ref_valid.size and cur_valid.size:
        test = ks_2samp(ref_valid, cur_valid)
        ks, p_value = float(test.statistic), float(test.pvalue)
    else:
        ks, p_value = None, None
    return Drift(
        kind="numeric",
        psi=psi(ref_shares, cur_shares) if ref_valid.size and cur_valid.size else math.nan,
        ks=ks,
        p_value=p_value,
        mean=_mean(current),
        reference_mean=_mean(reference),
        bins=[float(e) for e in edges],
        reference_shares=[float(s) for s in ref_shares],
        current_shares=[float(s) for s in cur_shares],
    )


def category_labels(values) -> np.ndarray:
    """Values as category labels, null as NULL_CATEGORY."""
    return np.array([NULL_CATEGORY if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values],
                    dtype=object)


def categorical_drift(reference, current) -> Drift:
    """PSI over the categories seen in either sample (null is a category), reference order by share."""
    ref, cur = category_labels(reference), category_labels(current)
    ref_names, ref_counts = np.unique(ref, return_counts=True)
    cur_names, cur_counts = np.unique(cur, return_counts=True)
    ref_map, cur_map = dict(zip(ref_names, ref_counts)), dict(zip(cur_names, cur_counts))
    names = sorted(set(ref_map) | set(cur_map), key=lambda n: (-ref_map.get(n, 0), n))
    ref_shares = shares(np.array([ref_map.get(n, 0) for n in names], dtype=float))
    cur_shares = shares(np.array([cur_map.get(n, 0) for n in names], dtype=float))
    return Drift(
        kind="categorical",
        psi=psi(ref_shares, cur_shares) if ref.size and cur.size else math.nan,
        ks=None,
        p_value=None,
        mean=None,
        reference_mean=None,
        bins=list(names),
        reference_shares=[float(s) for s in ref_shares],
        current_shares=[float(s) for s in cur_shares],
    )
