"""The monitoring report as one self-contained HTML page: inline CSS, hand-built inline SVG plots.

`render` is pure: the same summary and details give the same page, with no clock, no random ids and
no external reference (no CDN, font or script URL), so the file opens offline or as a CI artifact.
Status comes only from `summary["breaches"]`; the page never re-judges a value against a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from html import escape
from typing import Any

from featurepipe.monitoring import TABLE  # the `feature` of table-level checks

REFERENCE_COLOUR = "#94a3b8"
CURRENT_COLOUR = "#2563eb"
DASH = "–"
# KS and p-value breaches are drift breaches too: they cover the feature's one drift row.
_STATISTIC_GROUP = {"ks": "psi", "p_value": "psi", "mean_change": "psi"}

Guide = tuple[float, str, str]  # (value, label, css class) of a dashed horizontal line

CSS = """
body{margin:0;background:#f1f5f9;color:#0f172a;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:0}
h3{font-size:13px;margin:0 0 8px;color:#475569;text-transform:uppercase;letter-spacing:.04em}
.meta{color:#475569;margin:0 0 14px}
.banner{padding:12px 16px;border-radius:8px;font-weight:600;font-size:16px;margin-bottom:12px}
.banner.ok{background:#dcfce7;color:#166534;border:1px solid #86efac}
.banner.bad{background:#fee2e2;color:#991b1b;border:1px solid #fca5a5}
nav{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:20px}
nav a{padding:3px 10px;border-radius:999px;background:#e2e8f0;color:#0f172a;text-decoration:none;font-size:12px}
nav a.breach{background:#fee2e2;color:#991b1b;font-weight:600}
.panel{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:16px 18px;margin-bottom:18px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e2e8f0;vertical-align:top}
th{background:#f8fafc;color:#475569;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.breach td{background:#fef2f2}
.pill{display:inline-block;min-width:44px;text-align:center;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.pill.breach{background:#dc2626;color:#fff}.pill.ok{background:#dcfce7;color:#166534}
.pill.nodata{background:#e2e8f0;color:#475569}
.cards{display:grid;grid-template-columns:1fr 1fr;gap:18px}.cards .panel{margin:0}
.panel.breach,.feature.breach{border:2px solid #dc2626}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dl.kv dt{color:#475569}
dl.kv dd{margin:0;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:14px}
.feature{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:16px 18px;margin:18px 0}
.feature header{display:flex;align-items:center;gap:10px;margin-bottom:6px}
.kind{font-size:12px;color:#475569;background:#f1f5f9;border-radius:4px;padding:1px 6px}
.messages{margin:4px 0 10px;padding-left:18px;color:#991b1b}
.tiles{display:grid;grid-template-columns:repeat(5,1fr);gap:10px;margin:10px 0 14px}
.tile{border:1px solid #e2e8f0;border-radius:8px;padding:8px 12px}
.tile.breach{border-color:#dc2626;background:#fef2f2}
.tile .label{font-size:12px;color:#475569}
.tile .value{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}.tile .sub{font-size:12px;color:#64748b}
.plots{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.sparks{display:flex;flex-direction:column;gap:10px}
svg{display:block;max-width:100%;height:auto;font-family:inherit}
svg text{font-size:11px;fill:#475569}svg .axis{stroke:#94a3b8}svg .grid{stroke:#e2e8f0}
svg .open{stroke-dasharray:3 3}svg .line{fill:none;stroke:#2563eb;stroke-width:1.8}svg .dot{fill:#2563eb}
svg .guide{stroke-dasharray:5 4;stroke-width:1.3}svg line.threshold{stroke:#dc2626}svg line.reference{stroke:#64748b}
svg tspan.threshold{fill:#dc2626}svg tspan.reference{fill:#64748b}
svg text.title{font-weight:600;fill:#0f172a;font-size:12px}svg text.empty{font-size:13px}
"""


def render(summary: dict, details: dict) -> str:
    """The report page for one as-of date."""
    features = summary.get("features") or {}
    breaches = summary.get("breaches") or []
    thresholds = summary.get("thresholds") or {}
    histograms = details.get("histograms") or {}
    series = details.get("series") or {}
    title = f"featurepipe monitoring — as of {summary.get('as_of') or DASH}"
    body = [
        _header(title, summary, breaches),
        _nav(features, breaches),
        _summary_table(_summary_rows(summary)),
        _cards(summary, breaches),
        _table_series(series, summary.get("completeness") or {}, thresholds),
        *(_feature_section(name, stats or {}, histograms.get(name), series, thresholds, breaches)
          for name, stats in features.items()),
        _thresholds_table(thresholds),
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
            f"<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n")


# --- formatting -------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A finite float, or None for None, NaN, infinities and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _num(value: Any) -> str:
    if isinstance(value, str):
        return value
    number = _number(value)
    if number is None:
        return DASH
    if isinstance(value, int) or abs(number) >= 1e4:
        return f"{number:,.0f}"
    return f"{number:.1e}" if 0 < abs(number) < 1e-3 else f"{number:.4g}"


def _pct(value: Any, signed: bool = False) -> str:
    number = _number(value)
    if number is None:
        return DASH
    return f"{number * 100:+.1f}%" if signed else f"{number * 100:.1f}%"


def _share_tick(value: float) -> str:
    return f"{value * 100:.3g}%"


def _tick(value: float) -> str:
    """A short axis label: 1.2M, 3.4k, 12.5."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def _fmt_stat(statistic: str, value: Any, signed: bool = True) -> str:
    if statistic.endswith("_change"):
        return _pct(value, signed)
    return _pct(value) if statistic.endswith("null_rate") else _num(value)


def _change(value: Any, reference: Any) -> float | None:
    current, base = _number(value), _number(reference)
    return None if current is None or not base else current / base - 1


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 'es'}"


# --- header, summary table, cards -------------------------------------------------------------


def _header(title: str, summary: dict, breaches: list[dict]) -> str:
    ref = summary.get("reference") or {}
    mode = "pinned" if ref.get("pinned") else "rolling"
    meta = (f"Reference {ref.get('start') or DASH} → {ref.get('end') or DASH} "
            f"({_num(ref.get('dates'))} as-of dates, {mode}) · generated {summary.get('generated_at') or DASH}")
    if breaches:
        checks = sorted({f"{b.get('check')} {b.get('feature')}" for b in breaches})
        banner = f'<div class="banner bad">{_plural(len(breaches), "breach")}: {escape(", ".join(checks))}</div>'
    else:
        banner = '<div class="banner ok">No breaches</div>'
    return f"<header><h1>{escape(title)}</h1><p class=\"meta\">{escape(meta)}</p>{banner}</header>"


def _nav(features: dict, breaches: list[dict]) -> str:
    breached = {b.get("feature") for b in breaches}
    links = "".join(f'<a href="#feature-{escape(name)}"{" class=breach" if name in breached else ""}>{escape(name)}</a>'
                    for name in features)
    return f"<nav>{links}</nav>"


def _checked_values(summary: dict) -> Iterator[tuple[str, str, str, Any]]:
    """Every (check, feature, statistic, value) the page reports a status for, in page order."""
    for name, stats in (summary.get("features") or {}).items():
        yield "drift", name, "psi", (stats or {}).get("psi")
        stats = stats or {}
        yield "completeness", name, "null_rate_increase", _change_abs(stats.get("null_rate"), stats.get("reference_null_rate"))
    completeness = summary.get("completeness") or {}
    freshness = summary.get("freshness") or {}
    yield "completeness", TABLE, "rows_change", completeness.get("rows_change")
    yield "completeness", TABLE, "users_change", _change(completeness.get("users"), completeness.get("reference_users"))
    yield "freshness", TABLE, "publish_lag_hours", freshness.get("publish_lag_hours")
    yield "freshness", TABLE, "online_lag_days", freshness.get("online_lag_days")


def _change_abs(value: Any, reference: Any) -> float | None:
    value, reference = _number(value), _number(reference)
    return None if value is None or reference is None else value - reference


def _covers(breach: dict, feature: str, statistic: str) -> bool:
    group = _STATISTIC_GROUP.get(str(breach.get("statistic")), breach.get("statistic"))
    return breach.get("feature") == feature and group == _STATISTIC_GROUP.get(statistic, statistic)


def _summary_rows(summary: dict) -> list[dict]:
    """Breached checks first (as reported), then every other check with its value and threshold."""
    breaches = summary.get("breaches") or []
    thresholds = summary.get("thresholds") or {}
    rows = [{**b, "status": "breach"} for b in breaches]
    for check, feature, statistic, value in _checked_values(summary):
        if not any(_covers(b, feature, statistic) for b in breaches):
            status = "nodata" if _number(value) is None else "ok"
            rows.append({"check": check, "feature": feature, "statistic": statistic, "value": value,
                         "threshold": thresholds.get(statistic), "message": "", "status": status})
    return rows


def _summary_table(rows: list[dict]) -> str:
    labels = {"breach": "breach", "ok": "ok", "nodata": "no data"}
    body = []
    for row in rows:
        feature, statistic = str(row.get("feature")), str(row.get("statistic"))
        name = escape(feature) if feature == TABLE else f'<a href="#feature-{escape(feature)}">{escape(feature)}</a>'
        body.append(
            f'<tr class="{row["status"]}" data-status="{row["status"]}" data-feature="{escape(feature)}">'
            f'<td><span class="pill {row["status"]}">{labels[row["status"]]}</span></td>'
            f"<td>{escape(str(row.get('check')))}</td><td>{name}</td><td>{escape(statistic)}</td>"
            f'<td class="num">{escape(_fmt_stat(statistic, row.get("value")))}</td>'
            f'<td class="num">{escape(_fmt_stat(statistic, row.get("threshold"), signed=False))}</td>'
            f"<td>{escape(str(row.get('message') or ''))}</td></tr>")
    head = ('<tr><th>Status</th><th>Check</th><th>Feature</th><th>Statistic</th><th class="num">Value</th>'
            '<th class="num">Threshold</th><th>Message</th></tr>')
    table = f'<table data-table="summary">{head}{"".join(body)}</table>'
    return f'<section class="panel"><h3>Checks</h3>{table}</section>'


def _card(title: str, items: Iterable[tuple[str, str]], breached: bool) -> str:
    pairs = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in items)
    css = "panel breach" if breached else "panel"
    return f'<section class="{css}"><h3>{escape(title)}</h3><dl class="kv">{pairs}</dl></section>'


def _cards(summary: dict, breaches: list[dict]) -> str:
    fresh, comp = summary.get("freshness") or {}, summary.get("completeness") or {}
    checks = {b.get("check") for b in breaches}
    users_change = _change(comp.get("users"), comp.get("reference_users"))
    freshness = _card("Freshness", [
        ("Newest as-of", str(fresh.get("newest_as_of") or DASH)),
        ("Newest landed event", str(fresh.get("newest_landed_event") or DASH)),
        ("Publish lag", f"{_num(fresh.get('publish_lag_hours'))} h"),
        ("Online newest as-of", str(fresh.get("online_newest_as_of") or DASH)),
        ("Online lag", f"{_num(fresh.get('online_lag_days'))} days"),
        ("Online users sampled", _num(fresh.get("online_users_sampled"))),
    ], "freshness" in checks)
    completeness = _card("Completeness", [
        ("Rows", (f"{_num(comp.get('rows'))} vs {_num(comp.get('reference_rows_per_day'))} / reference day "
                  f"({_pct(comp.get('rows_change'), signed=True)})")),
        ("Users", (f"{_num(comp.get('users'))} vs {_num(comp.get('reference_users'))} in reference "
                   f"({_pct(users_change, signed=True)})")),
    ], "completeness" in checks)
    return f'<div class="cards">{freshness}{completeness}</div>'


def _thresholds_table(thresholds: dict) -> str:
    rows = "".join(f'<tr><td>{escape(str(key))}</td><td class="num">{escape(_num(value))}</td></tr>'
                   for key, value in thresholds.items())
    return (f'<section class="panel"><h3>Thresholds</h3><table data-table="thresholds" style="width:auto">'
            f'<tr><th>Setting</th><th class="num">Value</th></tr>{rows}</table></section>')


# --- SVG plots --------------------------------------------------------------------------------


def _svg(width: float, height: float, title: str, content: str, **data: str) -> str:
    attrs = "".join(f' data-{key}="{escape(value)}"' for key, value in data.items())
    return (f'<svg width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img"{attrs}>'
            f"<title>{escape(title)}</title>{content}</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", css: str = "", rotate: float = 0) -> str:
    place = f'transform="translate({x:.1f},{y:.1f}) rotate({rotate:g})"' if rotate else f'x="{x:.1f}" y="{y:.1f}"'
    css_attr = f' class="{css}"' if css else ""
    return f'<text {place} text-anchor="{anchor}"{css_attr}>{escape(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, css: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{css}"/>'


def _rect(x: float, y: float, w: float, h: float, colour: str, tip: str = "") -> str:
    inner = f"<title>{escape(tip)}</title></rect>" if tip else "</rect>"
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{colour}">{inner}'


def _nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, … × 10^k) at or above `value`; 1 for nothing positive."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    steps = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
    return next(step * magnitude for step in steps if value <= step * magnitude * (1 + 1e-9))


def _legend(x: float, y: float) -> str:
    return (_rect(x, y - 9, 12, 10, REFERENCE_COLOUR) + _text(x + 16, y, "reference")
            + _rect(x + 86, y - 9, 12, 10, CURRENT_COLOUR) + _text(x + 102, y, "current"))


def _no_data_svg(width: float, height: float, title: str, message: str, **data: str) -> str:
    content = (_rect(0.5, 0.5, width - 1, height - 1, "#f8fafc") + _text(14, 20, title, css="title")
               + _text(width / 2, height / 2 + 4, message, "middle", "empty"))
    return _svg(width, height, f"{title}: {message}", content, **data)


def _edges(values: Any) -> list[float]:
    """Bin edges, or none if any is not a number (±inf is fine: it marks an open-ended bin)."""
    edges = list(values or [])
    return edges if all(isinstance(e, (int, float)) and not math.isnan(e) for e in edges) else []


def _fractions(values: Any) -> list[float]:
    return [_number(v) or 0.0 for v in values or []]


def _distribution_svg(feature: str, histogram: dict | None) -> str:
    """Reference-vs-current shares: vertical bars per quantile bin, or horizontal bars per category."""
    histogram = histogram or {}
    reference, current = _fractions(histogram.get("reference")), _fractions(histogram.get("current"))
    title = f"{feature}: reference vs current distribution"
    if not reference or len(reference) != len(current) or max(reference + current) <= 0:
        return _no_data_svg(620, 160, title, "no distribution data", plot="distribution", feature=feature)
    if histogram.get("kind") == "categorical":
        categories = [str(c) for c in histogram.get("categories") or []]
        return _category_bars_svg(feature, title, categories, reference, current)
    return _bin_bars_svg(feature, title, _edges(histogram.get("edges")), reference, current)


def _bin_label(edges: Sequence[float], index: int) -> str:
    if index + 1 >= len(edges):
        return f"bin {index + 1}"
    low, high = edges[index], edges[index + 1]
    if low == -math.inf:
        return f"< {_tick(high)}"
    return f"≥ {_tick(low)}" if high == math.inf else f"[{_tick(low)}, {_tick(high)})"


def _edge_labels(edges: Sequence[float], x0: float, group: float) -> list[tuple[float, str]]:
    """Tick labels at finite bin edges; an open-ended first or last bin is labelled "<x" or ">y" at its centre."""
    bins = len(edges) - 1
    open_low, open_high = bins > 0 and edges[0] == -math.inf, bins > 0 and edges[-1] == math.inf
    skip = {0, 1} if open_low else set()
    skip |= {bins - 1, bins} if open_high else set()
    every = max(1, math.ceil(24 / group))
    labels = [(x0 + i * group, _tick(edge)) for i, edge in enumerate(edges)
              if i not in skip and i % every == 0 and math.isfinite(edge)]
    if open_low and bins > 1:
        labels.append((x0 + group / 2, f"<{_tick(edges[1])}"))
    if open_high and bins > 1:
        labels.append((x0 + (bins - 0.5) * group, f">{_tick(edges[-2])}"))
    return labels


def _x_axis(edges: Sequence[float], x0: float, group: float, y: float) -> str:
    """The bin axis: dashed under an open-ended first or last bin, solid elsewhere."""
    bins, open_low, open_high = len(edges) - 1, edges[0] == -math.inf, edges[-1] == math.inf
    start, end = x0 + (group if open_low else 0), x0 + (bins - (1 if open_high else 0)) * group
    parts = [_line(start, y, end, y, "axis")] if end > start else []
    if open_low:
        parts.append(_line(x0, y, start, y, "axis open"))
    if open_high:
        parts.append(_line(end, y, end + group, y, "axis open"))
    return "".join(parts)


def _bin_bars_svg(feature: str, title: str, edges: list, reference: list[float], current: list[float]) -> str:
    width, height, left, right, top, bottom = 620, 280, 58, 16, 34, 76
    plot_w, plot_h, bins = width - left - right, height - top - bottom, len(reference)
    edges = edges if len(edges) == bins + 1 else []
    group, peak = plot_w / bins, _nice_ceiling(max(reference + current))
    bar = group * 0.38
    base = top + plot_h
    parts = [_text(left, 16, feature, css="title"), _legend(width - right - 160, 16)]
    for fraction in (0, peak / 2, peak):
        y = base - fraction / peak * plot_h
        parts += [_line(left, y, width - right, y, "grid"), _text(left - 6, y + 4, _share_tick(fraction), "end")]
    for i, (ref, cur) in enumerate(zip(reference, current)):
        x, tip = left + i * group + group * 0.1, f"{_bin_label(edges, i)}: reference {_pct(ref)}, current {_pct(cur)}"
        ref_h, cur_h = ref / peak * plot_h, cur / peak * plot_h
        parts.append(_rect(x, base - ref_h, bar, ref_h, REFERENCE_COLOUR, tip))
        parts.append(_rect(x + bar + group * 0.04, base - cur_h, bar, cur_h, CURRENT_COLOUR, tip))
    parts.append(_x_axis(edges, left, group, base) if edges else _line(left, base, width - right, base, "axis"))
    for x, label in _edge_labels(edges, left, group):
        parts += [_line(x, base, x, base + 4, "axis"), _text(x + 3, base + 15, label, "end", rotate=-35)]
    parts.append(_text(left + plot_w / 2, height - 6, f"{feature} (reference quantile bins)", "middle"))
    parts.append(_text(14, top + plot_h / 2, "share of rows", "middle", rotate=-90))
    return _svg(width, height, title, "".join(parts), plot="distribution", feature=feature)


def _category_bars_svg(feature: str, title: str, categories: list[str], reference: list[float],
                       current: list[float]) -> str:
    names = (categories + [f"#{i + 1}" for i in range(len(reference))])[: len(reference)]
    width, left, right, top, row = 620, 150, 24, 34, 28
    plot_w, plot_h, peak = width - left - right, row * len(reference), _nice_ceiling(max(reference + current))
    height = top + plot_h + 44
    parts = [_text(14, 16, feature, css="title"), _legend(width - right - 160, 16)]
    for fraction in (0, peak / 2, peak):
        x = left + fraction / peak * plot_w
        parts += [_line(x, top, x, top + plot_h, "grid"), _text(x, top + plot_h + 15, _share_tick(fraction), "middle")]
    for i, (name, ref, cur) in enumerate(zip(names, reference, current)):
        y, tip = top + i * row, f"{name}: reference {_pct(ref)}, current {_pct(cur)}"
        short = name if len(name) <= 20 else name[:19] + "…"
        parts.append(_text(left - 8, y + row / 2 + 4, short, "end"))
        parts.append(_rect(left, y + 4, ref / peak * plot_w, 10, REFERENCE_COLOUR, tip))
        parts.append(_rect(left, y + 14, cur / peak * plot_w, 10, CURRENT_COLOUR, tip))
    parts.append(_line(left, top, left, top + plot_h, "axis"))
    parts.append(_text(left + plot_w / 2, height - 6, "share of rows", "middle"))
    return _svg(width, height, title, "".join(parts), plot="distribution", feature=feature)


def _segments(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive known points; a None value breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def _line_header(width: float, label: str, latest: str, guides: Sequence[Guide], fmt: Callable[[float], str]) -> str:
    """The chart's name on the left; its dashed guides' legend and the as-of date's value on the right."""
    legend = "".join(f'<tspan class="{css}">- - {escape(text)} {escape(fmt(value))}</tspan>   '
                     for value, text, css in guides)
    return (_text(8, 15, label, css="title")
            + f'<text x="{width - 14:.1f}" y="15" text-anchor="end">{legend}latest {escape(latest)}</text>')


def _date_ticks(dates: Sequence[str], x_at: Callable[[int], float], y: float) -> str:
    """First, middle and last as-of date under the axis."""
    ticks = sorted({0, (len(dates) - 1) // 2, len(dates) - 1})
    anchors = ["start", "middle", "end"] if len(ticks) == 3 else ["middle"] * len(ticks)
    return "".join(_text(x_at(i), y, str(dates[i]), anchor) for i, anchor in zip(ticks, anchors))


def _line_svg(label: str, dates: Sequence[str], values: Sequence[Any], guides: Sequence[Guide] = (),
              fmt: Callable[[float], str] = _tick, width: float = 500, height: float = 136, **data: str) -> str:
    """A line over the as-of dates with first/middle/last date ticks, gaps for missing days, dashed guides."""
    numbers = [_number(v) for v in list(values)[: len(dates)]]
    known = [v for v in numbers if v is not None]
    if not known:
        return _no_data_svg(width, height, label, "no data", **data)
    left, right, top, bottom = 50, 14, 28, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    guides = [(_number(value), text, css) for value, text, css in guides if _number(value) is not None]
    high = _nice_ceiling(max(known + [g[0] for g in guides]) * 1.08)  # headroom: a line at the top edge hides
    low = -_nice_ceiling(-min(known)) if min(known) < 0 else 0.0

    def x_at(i: int) -> float:
        return left + (i / (len(numbers) - 1) * plot_w if len(numbers) > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + (high - v) / (high - low) * plot_h

    parts = [_line_header(width, label, fmt(numbers[-1]) if numbers[-1] is not None else DASH, guides, fmt)]
    for v in (low, (low + high) / 2, high):
        parts += [_line(left, y_at(v), width - right, y_at(v), "grid"), _text(left - 6, y_at(v) + 4, fmt(v), "end")]
    parts += [_line(left, y_at(value), width - right, y_at(value), f"guide {css}") for value, _, css in guides]
    for run in _segments([(x_at(i), v) for i, v in enumerate(numbers)]):
        if len(run) == 1:
            parts.append(f'<circle cx="{run[0][0]:.1f}" cy="{y_at(run[0][1]):.1f}" r="2.5" class="dot"/>')
        else:
            coords = " ".join(f"{x:.1f},{y_at(v):.1f}" for x, v in run)
            parts.append(f'<polyline points="{coords}" class="line"/>')
    parts += [_line(left, top + plot_h, width - right, top + plot_h, "axis"), _date_ticks(dates, x_at, height - 6)]
    return _svg(width, height, f"{label} over the last {len(numbers)} as-of dates", "".join(parts), **data)


# --- series and feature sections --------------------------------------------------------------


def _table_series(series: dict, completeness: dict, thresholds: dict) -> str:
    dates = series.get("dates") or []
    charts = [
        _line_svg(label, dates, series.get(key) or [], [(guide, guide_label, guide_label)],
                  width=366, height=170, plot=plot)
        for label, key, guide, guide_label, plot in (
            ("Rows per as-of", "rows", completeness.get("reference_rows_per_day"), "reference", "rows"),
            ("Users", "users", completeness.get("reference_users"), "reference", "users"),
            ("Publish lag (hours)", "publish_lag_hours", thresholds.get("publish_lag_hours"), "threshold",
             "publish-lag"),
        )
    ]
    return f'<section class="panel"><h3>Table over time</h3><div class="charts">{"".join(charts)}</div></section>'


def _tiles(stats: dict, thresholds: dict, breached: set) -> str:
    """Statistic tiles; a categorical feature has no KS, p-value or mean, so it gets no tile for them."""
    tiles = [("PSI", _num(stats.get("psi")), f"threshold {_num(thresholds.get('psi'))}", {"psi"})]
    if stats.get("kind") != "categorical":
        tiles += [
            ("KS", _num(stats.get("ks")), f"threshold {_num(thresholds.get('ks'))}", {"ks"}),
            ("p-value", _num(stats.get("p_value")), f"threshold {_num(thresholds.get('p_value'))}", {"p_value"}),
            ("Mean", _num(stats.get("mean")),
             f"reference {_num(stats.get('reference_mean'))} ({_pct(stats.get('mean_change'), signed=True)})",
             {"mean", "mean_change"}),
        ]
    tiles.append(("Null rate", _pct(stats.get("null_rate")), f"reference {_pct(stats.get('reference_null_rate'))}",
                  {"null_rate", "null_rate_change"}))
    return '<div class="tiles">' + "".join(
        f'<div class="tile{" breach" if keys & breached else ""}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="sub">{escape(sub)}</div></div>'
        for label, value, sub, keys in tiles) + "</div>"


def _feature_section(name: str, stats: dict, histogram: dict | None, series: dict, thresholds: dict,
                     breaches: list[dict]) -> str:
    hits = [b for b in breaches if b.get("feature") == name]
    dates = series.get("dates") or []
    psi = _line_svg("PSI", dates, (series.get("psi") or {}).get(name) or [],
                    [(thresholds.get("psi"), "threshold", "threshold")], plot="psi", feature=name)
    nulls = _line_svg("Null rate", dates, (series.get("null_rate") or {}).get(name) or [],
                      fmt=_pct, plot="null-rate", feature=name)
    badge = (f'<span class="pill breach">{_plural(len(hits), "breach")}</span>' if hits
             else '<span class="pill ok">ok</span>')
    messages = "".join(f"<li>{escape(str(b.get('message') or b.get('statistic')))}</li>" for b in hits)
    kind = escape(str(stats.get("kind") or DASH))
    return (f'<section class="feature{" breach" if hits else ""}" id="feature-{escape(name)}" '
            f'data-feature="{escape(name)}">'
            f'<header><h2>{escape(name)}</h2><span class="kind">{kind}</span>{badge}</header>'
            + (f'<ul class="messages">{messages}</ul>' if hits else "")
            + _tiles(stats, thresholds, {b.get("statistic") for b in hits})
            + f'<div class="plots">{_distribution_svg(name, histogram)}'
            f'<div class="sparks">{psi}{nulls}</div></div></section>')
