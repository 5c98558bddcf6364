"""The feature catalog as one self-contained HTML page: inline CSS, no script, no external URL.

`render` is pure: it shows `featurepipe.catalog.build_catalog`'s data (the same as catalog.json)
and judges nothing itself; a group's freshness status comes from the data.
"""

from __future__ import annotations

from html import escape
from typing import Any, Iterable

DASH = "–"

CSS = """
body{margin:0;background:#f1f5f9;color:#0f172a;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:0}h3{font-size:13px;margin:14px 0 6px;color:#475569;text-transform:uppercase;letter-spacing:.04em}
.meta{color:#475569;margin:0 0 14px}.desc{margin:6px 0 10px}
nav{display:flex;flex-wrap:wrap;gap:6px;margin-bottom:20px}
nav a{padding:3px 10px;border-radius:999px;background:#e2e8f0;color:#0f172a;text-decoration:none;font-size:12px}
.panel{background:#fff;border:1px solid #e2e8f0;border-radius:10px;padding:16px 18px;margin-bottom:18px}
.panel header{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e2e8f0;vertical-align:top}
th{background:#f8fafc;color:#475569;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f5f9;border-radius:4px;padding:0 4px}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap}
.pill.within{background:#dcfce7;color:#166534}.pill.over{background:#dc2626;color:#fff}
.pill.never,.pill.unknown{background:#e2e8f0;color:#475569}.tag{font-size:12px;color:#475569;background:#f1f5f9;border-radius:4px;padding:1px 6px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:18px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}dl.kv dt{color:#475569}dl.kv dd{margin:0}
.flow{display:flex;flex-wrap:wrap;align-items:center;gap:6px;margin:4px 0}
.node{border:1px solid #cbd5e1;border-radius:8px;padding:5px 10px;background:#f8fafc;font-size:12px}
.node b{display:block;font-size:11px;color:#475569;text-transform:uppercase;letter-spacing:.04em}
.node.side{border-style:dashed}.node.here{border:2px solid #2563eb;background:#eff6ff}
.arrow{color:#64748b}
.uri{color:#64748b;font-size:11px;word-break:break-all}
"""

_STATUS_CLASS = {"within SLA": "within", "over SLA": "over", "never published": "never"}


def render(catalog: dict[str, Any]) -> str:
    """The catalog page."""
    groups = catalog.get("groups") or []
    on_demand = catalog.get("on_demand_groups") or []
    services = catalog.get("feature_services") or []
    features = sum(len(g.get("features") or []) for g in groups)
    title = "featurepipe feature catalog"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{len(groups)} feature group(s), {features} features; {len(on_demand)} on-demand group(s); '
        f"{len(services)} feature service(s). Generated {_text(catalog.get('generated_at'))} from "
        f"<code>featurepipe/spec.py</code> and <code>feature_repo/</code>. Lake <code>{_text(catalog.get('lake_uri'))}</code>, "
        f"landing zone <code>{_text(catalog.get('raw_uri'))}</code>.</p>",
        _nav(groups, on_demand),
        _overview(groups),
        *(_group(g) for g in groups),
        *(_on_demand(o) for o in on_demand),
        *(_reference(r) for r in catalog.get("reference_views") or []),
        _services(services),
    ]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
            f"<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n")


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else escape(str(value))


def _pill(status: str) -> str:
    return f'<span class="pill {_STATUS_CLASS.get(status, "unknown")}" data-status="{escape(status)}">{escape(status)}</span>'


def _table(name: str, headers: Iterable[str], rows: Iterable[Iterable[str]], empty: str = "none") -> str:
    rows = list(rows)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    if not rows:
        return f'<p class="meta" data-table="{escape(name)}">{escape(empty)}</p>'
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table data-table="{escape(name)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _nav(groups: list[dict], on_demand: list[dict]) -> str:
    links = [f'<a href="#{escape(g["name"])}">{escape(g["name"])}</a>' for g in groups]
    links += [f'<a href="#{escape(o["name"])}">{escape(o["name"])} (on demand)</a>' for o in on_demand]
    links.append('<a href="#feature-services">feature services</a>')
    return f"<nav>{''.join(links)}</nav>"


def _overview(groups: list[dict]) -> str:
    rows = [[f'<a href="#{escape(g["name"])}">{escape(g["name"])}</a>', _text(g["entity"]), f"<code>{_text(g['join_key'])}</code>",
             _text(g["owner"]), _text(g["version"]), _text(g["freshness_sla"]), str(len(g["features"])),
             _pill(g["freshness"]["status"]), _text(g["freshness"]["newest_as_of"])] for g in groups]
    return ('<section class="panel"><h3>Feature groups</h3>'
            + _table("groups", ["group", "entity", "join key", "owner", "version", "freshness SLA", "features",
                                "freshness", "newest as-of"], rows, "the spec declares no feature group")
            + "</section>")


def _freshness(fresh: dict) -> str:
    lag = fresh.get("lag_hours")
    items = [("status", _pill(fresh["status"])),
             ("newest published as-of", _text(fresh.get("newest_as_of"))),
             ("newest landed event", _text(fresh.get("newest_landed_event"))),
             ("publish lag", f"{lag:g} h (SLA {fresh['sla_hours']:g} h)" if lag is not None else f"{DASH} (SLA {fresh['sla_hours']:g} h)")]
    if fresh.get("note"):
        items.append(("note", _text(fresh["note"])))
    if fresh.get("read_with"):
        items.append(("read from", _text(fresh["read_with"])))
    return _kv(items)


def _kv(items: list[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _node(kind: str, name: str, uri: str | None = None, css: str = "") -> str:
    where = f'<span class="uri">{escape(uri)}</span>' if uri and uri != name else ""
    return (f'<span class="node {css}" data-lineage="{escape(kind)}"><b>{escape(kind)}</b>'
            f"<code>{escape(name)}</code>{'<br>' + where if where else ''}</span>")


def _lineage(group: dict) -> str:
    arrow = '<span class="arrow">→</span>'
    upstream = [u for u in group["upstream"] if u["kind"] != "quarantine"]
    side = [u for u in group["upstream"] if u["kind"] == "quarantine"]
    chain = [_node(u["kind"], u["name"], u.get("uri")) for u in upstream]
    chain.append(_node("features", group["table"]["name"], group["table"]["uri"], "here"))
    down = group["downstream"]
    view = down.get("feast_feature_view")
    chain.append(_node("Feast feature view", view["name"]) if view
                 else '<span class="node side" data-lineage="Feast feature view">no Feast view in feature_repo/</span>')
    flow = f'<div class="flow">{arrow.join(chain)}</div>'
    rejected = "".join(f'<div class="flow"><span class="arrow">raw rows that break a rule ↳</span>'
                       f'{_node(u["kind"], u["name"], u.get("uri"), "side")}</div>' for u in side)
    services = ", ".join(f"<code>{escape(s['name'])}</code>" for s in down["feature_services"]) or DASH
    on_demand = ", ".join(f'<a href="#{escape(n)}"><code>{escape(n)}</code></a>' for n in down["on_demand_groups"]) or DASH
    return (f"<h3>Lineage</h3>{flow}{rejected}"
            + _kv([("feature services", services), ("on-demand groups", on_demand)]))


def _group(g: dict) -> str:
    features = _table("features", ["feature", "type", "op", "column", "window"],
                      ([f"<code>{escape(f['name'])}</code>", escape(f["type"]), escape(f["op"]),
                        f"<code>{escape(f['column'])}</code>" if f.get("column") else DASH,
                        f"{f['window_days']}d"] for f in g["features"]))
    services = _table("feature-services", ["feature service", "features of this group it takes"],
                      ([f"<code>{escape(s['name'])}</code>", ", ".join(escape(n) for n in s["features"])]
                       for s in g["downstream"]["feature_services"]), "no feature service takes this group")
    about = _kv([("entity", _text(g["entity"])), ("join key", f"<code>{_text(g['join_key'])}</code>"),
                 ("owner", _text(g["owner"])), ("version", _text(g["version"])),
                 ("freshness SLA", f"{_text(g['freshness_sla'])} ({g['freshness_sla_hours']:g} h)"),
                 ("source", f"<code>{_text(g['source'])}</code>")])
    return (f'<section class="panel" id="{escape(g["name"])}" data-group="{escape(g["name"])}">'
            f'<header><h2>{escape(g["name"])}</h2><span class="tag">v{_text(g["version"])}</span>'
            f'<span class="tag">owner {_text(g["owner"])}</span>{_pill(g["freshness"]["status"])}</header>'
            f'<p class="desc">{_text(g["description"])}</p>'
            f'<div class="grid"><div><h3>About</h3>{about}</div><div><h3>Freshness</h3>{_freshness(g["freshness"])}</div></div>'
            f"<h3>Features</h3>{features}{_lineage(g)}<h3>Feature services</h3>{services}</section>")


def _on_demand(o: dict) -> str:
    request = ", ".join(f"<code>{escape(r['name'])}</code> ({escape(r['kind'])})" for r in o["request"]) or DASH
    stored = ", ".join(f"<code>{escape(n)}</code>" for n in o["stored_inputs"]) or DASH
    view = o.get("feast_feature_view")
    services = ", ".join(f"<code>{escape(s['name'])}</code> ({', '.join(escape(n) for n in s['features'])})"
                         for s in o["feature_services"]) or DASH
    features = _table("features", ["feature", "type", "inputs", "description"],
                      ([f"<code>{escape(f['name'])}</code>", escape(f["type"]),
                        ", ".join(f"<code>{escape(i)}</code>" for i in f["inputs"]), _text(f["description"])]
                       for f in o["features"]))
    about = _kv([("computed on", f'<a href="#{escape(o["base"])}"><code>{escape(o["base"])}</code></a>'),
                 ("request fields", request), ("stored features read", stored),
                 ("owner", _text(o["owner"]) + " (its stored group's)"), ("version", _text(o["version"])),
                 ("Feast feature view", f"<code>{escape(view['name'])}</code>" if view else "none in feature_repo/"),
                 ("feature services", services)])
    return (f'<section class="panel" id="{escape(o["name"])}" data-on-demand="{escape(o["name"])}">'
            f'<header><h2>{escape(o["name"])}</h2><span class="tag">on demand</span>'
            f'<span class="tag">v{_text(o["version"])}</span></header>'
            f'<p class="desc">{_text(o["description"])}</p>{about}<h3>Features</h3>{features}</section>')


def _reference(r: dict) -> str:
    about = _kv([("key", f"<code>{escape(r['join_key'])}</code> (entity {escape(r['entity'])})"),
                 ("feature", f"<code>{escape(r['feature'])}</code>: {_text(r['dimensions'])} doubles"),
                 ("reached from", f"<code>{escape(r['via'])}</code>"),
                 ("made by", f"<code>{escape(r['method'])}</code> into <code>{escape(r['source_file'])}</code>"),
                 ("lake table", f"<code>{escape(r['table'])}</code> ({_text(r['uri'])})"),
                 ("owner", _text(r["owner"])), ("version", _text(r["version"])),
                 ("Feast feature view", f"<code>{escape(r['name'])}</code>" if r["feast_feature_view"] else "none")])
    return (f'<section class="panel" id="{escape(r["name"])}" data-reference="{escape(r["name"])}">'
            f'<header><h2>{escape(r["name"])}</h2><span class="tag">reference</span>'
            f'<span class="tag">v{_text(r["version"])}</span></header>'
            f'<p class="desc">{_text(r["description"])}</p>{about}</section>')


def _services(services: list[dict]) -> str:
    rows = ([f"<code>{escape(s['name'])}</code>", _text(s["description"]),
             ", ".join(f"<code>{escape(f)}</code>" for f in s["features"])] for s in services)
    return ('<section class="panel" id="feature-services"><h3>Feature services</h3>'
            + _table("all-feature-services", ["feature service", "description", "features (view:feature)"], rows,
                     "feature_repo/ declares no feature service")
            + "</section>")
