"""The HTML monitoring report: self-contained, one plot per feature, breaches first, text escaped.

`sample_report()` is a plain function so other tests can build the same realistic input.
"""

from __future__ import annotations

import copy
import math
import random
import re
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest

from featurepipe.report_html import render

NUMERIC = ["transactions_7d", "transactions_30d", "transactions_90d", "total_spent_7d", "total_spent_30d",
           "total_spent_90d", "avg_basket_size_30d", "max_purchase_90d"]
FEATURES = NUMERIC + ["favorite_category"]
CATEGORIES = ["beauty", "books", "electronics", "fashion", "grocery", "home", "sports", "toys", "(null)"]
BINS = 10
AS_OF = date(2025, 6, 20)
DRIFTED = {"total_spent_7d": 0.41, "favorite_category": 1.3}


def _shares(rng: random.Random, count: int, tilt: float) -> list[float]:
    """Fractions summing to 1; `tilt` > 0 moves weight towards the last bins."""
    raw = [max(0.01, 1 + tilt * (i - count / 2) / count + rng.uniform(-0.15, 0.15)) for i in range(count)]
    return [value / sum(raw) for value in raw]


def _numeric_histogram(rng: random.Random, name: str, open_ended: bool) -> dict:
    scale = 900.0 if "spent" in name or "purchase" in name else 40.0
    edges = [scale * (i / BINS) ** 2 for i in range(BINS + 1)]
    if open_ended:
        edges[0], edges[-1] = -math.inf, math.inf
    return {"kind": "numeric", "edges": edges, "reference": [1 / BINS] * BINS,
            "current": _shares(rng, BINS, 1.6 if name in DRIFTED else 0.1)}


def _series(rng: random.Random, dates: list[str], level: float, noise: float, end: float | None = None) -> list:
    values = [level + rng.uniform(-noise, noise) for _ in dates]
    if end is not None:  # a ramp over the last ten days to `end`
        for k in range(10):
            values[-10 + k] = level + (end - level) * (k + 1) / 10
    return values


def sample_report() -> tuple[dict, dict]:
    """A realistic (summary, details): 9 features, a numeric and a categorical drift breach, 60 dates."""
    rng = random.Random(20250620)
    dates = [(AS_OF - timedelta(days=59 - i)).isoformat() for i in range(60)]
    features, histograms = {}, {}
    psi_series, null_series, mean_series = {}, {}, {}
    for index, name in enumerate(FEATURES):
        psi = DRIFTED.get(name, round(rng.uniform(0.01, 0.08), 4))
        psi_series[name] = _series(rng, dates, 0.04, 0.025, end=DRIFTED.get(name))
        if name == "favorite_category":
            features[name] = {"kind": "categorical", "ks": None, "p_value": None, "psi": psi, "null_rate": 0.05,
                              "reference_null_rate": 0.03, "mean": None, "reference_mean": None, "mean_change": None}
            histograms[name] = {"kind": "categorical", "categories": CATEGORIES,
                                "reference": _shares(rng, len(CATEGORIES), 0.0),
                                "current": _shares(rng, len(CATEGORIES), 2.5)}
            null_series[name] = _series(rng, dates, 0.03, 0.01)
            continue
        reference_mean = rng.uniform(5, 400)
        mean = reference_mean * (1.2026 if name in DRIFTED else 1 + rng.uniform(-0.03, 0.03))
        features[name] = {"kind": "numeric", "ks": 0.12 if name in DRIFTED else round(rng.uniform(0.01, 0.05), 4),
                          "p_value": 1e-6 if name in DRIFTED else rng.uniform(0.05, 0.9), "psi": psi,
                          "null_rate": 0.0, "reference_null_rate": 0.0, "mean": mean,
                          "reference_mean": reference_mean, "mean_change": mean / reference_mean - 1}
        histograms[name] = _numeric_histogram(rng, name, open_ended=index % 2 == 1)
        null_series[name] = [0.0] * len(dates)
        mean_series[name] = _series(rng, dates, reference_mean, reference_mean * 0.03)
    for name, stats in features.items():  # the last as-of date is the one the summary describes
        psi_series[name][-1], null_series[name][-1] = stats["psi"], stats["null_rate"]
    rows = _series(rng, dates, 1750, 60)
    rows[20] = rows[41] = None  # days with no data
    users = [None if value is None else value * 0.98 for value in rows]
    rows[-1] = users[-1] = 1800
    lag = _series(rng, dates, 24, 3)
    lag[33], lag[-1] = 80.5, 24.0
    summary = {
        "as_of": AS_OF.isoformat(),
        "reference": {"start": "2025-04-17", "end": "2025-05-14", "dates": 28, "pinned": False},
        "breaches": [
            {"check": "drift", "feature": "total_spent_7d", "statistic": "psi", "value": 0.41, "threshold": 0.2,
             "message": "PSI 0.41 >= 0.2"},
            {"check": "drift", "feature": "favorite_category", "statistic": "psi", "value": 1.3, "threshold": 0.2,
             "message": "PSI 1.3 >= 0.2"},
        ],
        "features": features,
        "completeness": {"rows": 1800, "reference_rows_per_day": 1750.3, "rows_change": 0.028,
                         "users": 1800, "reference_users": 1761.0},
        "freshness": {"newest_as_of": AS_OF.isoformat(), "newest_landed_event": "2025-06-19T23:58:01+00:00",
                      "publish_lag_hours": 24.0, "online_newest_as_of": AS_OF.isoformat(), "online_lag_days": 0,
                      "online_users_sampled": 1000},
        "thresholds": {"psi": 0.1, "ks": 0.1, "p_value": 0.001, "null_rate_increase": 0.05, "rows_change": 0.2,
                       "publish_lag_hours": 48, "online_lag_days": 1},
        "generated_at": "2025-06-21T03:00:00+00:00",
    }
    details = {
        "histograms": histograms,
        "series": {"dates": dates, "psi": psi_series, "null_rate": null_series, "mean": mean_series,
                   "rows": rows, "users": users, "publish_lag_hours": lag},
    }
    return summary, details


class _Page(HTMLParser):
    """The page's SVGs (attributes, rect and polyline counts) and the summary table's rows."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.svgs: list[dict] = []
        self.summary_rows: list[dict] = []
        self._in_summary = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self.svgs.append({**attributes, "rect": 0, "polyline": 0})
        elif tag in ("rect", "polyline") and self.svgs:
            self.svgs[-1][tag] += 1
        elif tag == "table":
            self._in_summary = attributes.get("data-table") == "summary"
        elif tag == "tr" and self._in_summary and "data-status" in attributes:
            self.summary_rows.append(attributes)

    def plots(self, kind: str) -> list[dict]:
        return [svg for svg in self.svgs if svg.get("data-plot") == kind]


@pytest.fixture()
def report() -> tuple[dict, dict]:
    return sample_report()


def test_page_has_no_external_reference(report: tuple[dict, dict]) -> None:
    page = render(*report)
    for forbidden in ("http://", "https://", "<script src", "<link", "@import", "url("):
        assert forbidden not in page, forbidden


def test_one_distribution_plot_per_feature_with_a_bar_per_bin_and_side(report: tuple[dict, dict]) -> None:
    summary, details = report
    plots = _Page(render(summary, details)).plots("distribution")
    assert [plot["data-feature"] for plot in plots] == FEATURES
    for plot in plots:
        bins = len(details["histograms"][plot["data-feature"]]["reference"])
        assert plot["rect"] >= 2 * bins, plot


def test_every_svg_has_a_title(report: tuple[dict, dict]) -> None:
    page = render(*report)
    assert page.count("<svg") == len(re.findall(r"<svg[^>]*><title>[^<]+</title>", page)) >= 2 * len(FEATURES) + 3


def test_breached_rows_come_first_in_the_summary_table(report: tuple[dict, dict]) -> None:
    rows = _Page(render(*report)).summary_rows
    statuses = [row["data-status"] for row in rows]
    assert [row["data-feature"] for row in rows[:2]] == ["total_spent_7d", "favorite_category"]
    assert statuses[:2] == ["breach", "breach"] and "breach" not in statuses[2:]
    # a drift and a null-rate row per feature, two completeness and two freshness rows; breaches replace their row
    assert len(rows) == 2 * len(FEATURES) + 4


def test_a_later_breach_still_sorts_first(report: tuple[dict, dict]) -> None:
    summary, details = report
    summary["breaches"] = [{"check": "freshness", "feature": "(table)", "statistic": "publish_lag_hours",
                            "value": 80.5, "threshold": 48, "message": "lag 80.5 h >= 48 h"}]
    rows = _Page(render(summary, details)).summary_rows
    assert (rows[0]["data-feature"], rows[0]["data-status"]) == ("(table)", "breach")
    assert [row["data-status"] for row in rows].count("breach") == 1


def test_status_banner(report: tuple[dict, dict]) -> None:
    summary, details = report
    assert "2 breaches" in render(summary, details)
    summary["breaches"] = []
    page = render(summary, details)
    assert "No breaches" in page and "banner bad" not in page


def test_text_is_escaped(report: tuple[dict, dict]) -> None:
    summary, details = report
    histogram = details["histograms"]["favorite_category"]
    histogram["categories"] = histogram["categories"][:-1] + ["<script>"]
    summary["breaches"][0]["message"] = 'PSI "0.41" <b>high</b>'
    page = render(summary, details)
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;high&lt;/b&gt;" in page


def test_open_ended_bins_are_labelled_below_and_above(report: tuple[dict, dict]) -> None:
    summary, details = report
    edges = details["histograms"]["transactions_30d"]["edges"]
    assert edges[0] == -math.inf and edges[-1] == math.inf
    page = render(summary, details)
    plot = re.search(r'<svg[^>]*data-feature="transactions_30d".*?</svg>', page).group(0)
    assert ">&lt;0.4</text>" in plot and ">&gt;32.4</text>" in plot
    assert ">-inf<" not in plot.lower() and ">inf<" not in plot.lower()


def test_missing_days_break_the_line(report: tuple[dict, dict]) -> None:
    (rows_chart,) = _Page(render(*report)).plots("rows")
    assert rows_chart["polyline"] == 3  # two None days split the 60 dates into three runs


def test_output_is_deterministic(report: tuple[dict, dict]) -> None:
    assert render(*report) == render(*copy.deepcopy(report))


def _no_histogram(summary: dict, details: dict) -> None:
    del details["histograms"]["total_spent_30d"]


def _zero_histogram(summary: dict, details: dict) -> None:
    histogram = details["histograms"]["transactions_7d"]
    histogram["reference"] = histogram["current"] = [0.0] * BINS


def _series_all_none(summary: dict, details: dict) -> None:
    series = details["series"]
    for key in ("rows", "users", "publish_lag_hours"):
        series[key] = [None] * len(series["dates"])
    for key in ("psi", "null_rate"):
        series[key] = {name: [None] * len(series["dates"]) for name in FEATURES}


def _nan_values(summary: dict, details: dict) -> None:
    summary["features"]["total_spent_90d"].update(ks=math.nan, p_value=math.nan, psi=math.nan, mean=None)
    summary["completeness"].update(rows_change=math.nan, reference_users=0)
    summary["freshness"]["publish_lag_hours"] = None
    details["histograms"]["total_spent_90d"]["current"][3] = math.nan
    details["series"]["psi"]["total_spent_90d"][5] = math.nan


def _single_date(summary: dict, details: dict) -> None:
    series = details["series"]
    for key in ("dates", "rows", "users", "publish_lag_hours"):
        series[key] = series[key][-1:]
    for key in ("psi", "null_rate", "mean"):
        series[key] = {name: values[-1:] for name, values in series[key].items()}


def _malformed_histograms(summary: dict, details: dict) -> None:
    details["histograms"]["transactions_90d"]["edges"][4] = None
    details["histograms"]["total_spent_7d"]["current"] = [0.5, 0.5]
    details["histograms"]["favorite_category"]["categories"] = ["beauty"]


def _no_details(summary: dict, details: dict) -> None:
    details.clear()
    summary["thresholds"] = {}


@pytest.mark.parametrize("edit", [_no_histogram, _zero_histogram, _series_all_none, _nan_values, _single_date,
                                  _malformed_histograms, _no_details])
def test_edge_cases_render(report: tuple[dict, dict], edit) -> None:
    summary, details = report
    summary["breaches"] = []
    edit(summary, details)
    page = _Page(render(summary, details))
    assert [plot["data-feature"] for plot in page.plots("distribution")] == FEATURES
    assert all(svg.get("data-plot") for svg in page.svgs)


def test_nan_renders_as_a_dash(report: tuple[dict, dict]) -> None:
    summary, details = report
    _nan_values(summary, details)
    page = render(summary, details)
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)
    tiles = re.search(r'id="feature-total_spent_90d".*?<div class="plots">', page).group(0)
    assert tiles.count(">–<") == 4  # PSI, KS, p-value and mean
