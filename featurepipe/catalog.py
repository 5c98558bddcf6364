"""The feature catalog (`featurepipe catalog`): every feature group of the spec, where its rows come
from and go, who owns it and how fresh it is, as one static page and the same content as JSON.

Everything is derived, nothing listed by hand: groups, features, owners and SLAs from
`featurepipe.spec` (every group of `GROUPS` and `ON_DEMAND_GROUPS`), table names from
`featurepipe.lake`, Feast views and feature services from the objects `feature_repo/` declares.
Freshness reads no data: the newest published as-of comes from the feature table's Delta log
(`featurepipe.delta_log`; Spark only for a log that replay cannot read), the newest landed event
from Parquet footers (`featurepipe.raw.latest_event`, as monitoring's freshness check does).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from featurepipe import lake
from featurepipe.spec import GROUPS, ON_DEMAND_GROUPS, REFERENCE_VIEWS, FeatureGroup, OnDemandGroup, ReferenceView, Source

NEVER_PUBLISHED = "never published"
WITHIN_SLA = "within SLA"
OVER_SLA = "over SLA"
UNKNOWN = "unknown"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Written:
    html: Path
    json: Path
    catalog: dict

    def summary(self) -> str:
        groups, on_demand = self.catalog["groups"], self.catalog["on_demand_groups"]
        features = sum(len(g["features"]) for g in groups)
        over = [g["name"] for g in groups if g["freshness"]["status"] == OVER_SLA]
        late = f"; over SLA: {', '.join(over)}" if over else ""
        return (f"catalog: {len(groups)} feature group(s), {features} features, {len(on_demand)} on-demand group(s) "
                f"({sum(len(o['features']) for o in on_demand)} features){late} -> {self.html}")


def default_path() -> Path:
    from featurepipe.settings import get_settings

    return get_settings().data_dir / "catalog" / "index.html"


def write_catalog(out: str | Path | None = None, say: Say = lambda line: print(line, flush=True)) -> Written:
    """Build the catalog and write `index.html` (or `out`) and `catalog.json` beside it."""
    from featurepipe.catalog_html import render

    html = Path(out) if out else default_path()
    if html.is_dir() or str(out or "").endswith(("/", "\\")):
        html = html / "index.html"
    catalog = build_catalog(say)
    html.parent.mkdir(parents=True, exist_ok=True)
    json_path = html.parent / "catalog.json"
    json_path.write_text(json.dumps(catalog, indent=2, default=str) + "\n", encoding="utf-8")
    html.write_text(render(catalog), encoding="utf-8")
    return Written(html.resolve(), json_path.resolve(), catalog)


def build_catalog(say: Say = lambda line: None) -> dict[str, Any]:
    """The catalog as plain data (what catalog.json holds and the page shows)."""
    from featurepipe.settings import get_settings

    settings = get_settings()
    say("[catalog] reading feature_repo/ for Feast views and feature services")
    views, services = feast_objects()
    groups = []
    for group in GROUPS:
        say(f"[catalog] {group.name}: freshness from {settings.table_uri(lake.features_table(group))}")
        entry = group_entry(group, views, services, say)
        fresh = entry["freshness"]
        say(f"[catalog] {group.name}: {fresh['status']}"
            + (f", newest as-of {fresh['newest_as_of']}, lag {fresh['lag_hours']} h" if fresh["newest_as_of"] else ""))
        groups.append(entry)
    return {
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),  # when, not what
        "raw_uri": settings.raw_uri,
        "lake_uri": settings.lake_uri,
        "groups": groups,
        "on_demand_groups": [on_demand_entry(o, views, services) for o in ON_DEMAND_GROUPS],
        "reference_views": [reference_entry(r, views) for r in REFERENCE_VIEWS],
        "feature_services": [{"name": s["name"], "description": s["description"], "tags": s["tags"],
                              "features": [f"{p['view']}:{f}" for p in s["projections"] for f in p["features"]]}
                             for s in services],
    }


def reference_entry(view: ReferenceView, views: dict[str, dict]) -> dict[str, Any]:
    """A reference view (the category embeddings): where its rows come from and how a product reaches them."""
    from featurepipe import embeddings
    from featurepipe.settings import get_settings

    group, via = view.via
    table = embeddings.reference_table(view)
    return {"name": view.name, "entity": view.entity, "join_key": view.join_key, "feature": view.feature,
            "dimensions": embeddings.DIMENSIONS, "description": view.description, "owner": view.owner,
            "version": view.version, "via": f"{group.name}.{via}", "source_file": "featurepipe/category_embeddings.json",
            "method": "featurepipe/embeddings.py", "table": table, "uri": get_settings().table_uri(table),
            "feast_feature_view": views.get(view.name) is not None}


def raw_location(source: Source) -> str:
    """Where the source lands: `$FEATUREPIPE_RAW_URI/<source>/`."""
    from featurepipe.settings import get_settings

    return f"{get_settings().source_uri(source.name)}/"


def group_entry(group: FeatureGroup, views: dict[str, dict], services: list[dict],
                say: Say = lambda line: None) -> dict[str, Any]:
    from featurepipe.settings import format_duration, get_settings

    settings = get_settings()
    view = views.get(group.name)
    table = lake.features_table(group)
    upstream = [{"kind": "raw", "name": f"{group.source.name} landing zone", "uri": raw_location(group.source)},
                {"kind": "quarantine", "name": lake.quarantine_table(group.source),
                 "uri": settings.table_uri(lake.quarantine_table(group.source)),
                 "note": "rejected raw rows, with their reason"}]
    upstream += [{"kind": name.split("/", 1)[0], "name": name, "uri": settings.table_uri(name)}
                 for name in lake.group_tables(group) if name != table]
    return {
        "name": group.name,
        "entity": group.entity,
        "join_key": group.join_key,
        "description": group.description,
        "owner": group.owner,
        "version": group.version,
        "freshness_sla": format_duration(group.freshness_sla),
        "freshness_sla_hours": _hours(group.freshness_sla),
        "source": group.source.name,
        "features": [{"name": f.name, "type": f.dtype.value, "op": f.op.value, "column": f.column,
                      "window_days": f.window_days} for f in group.features],
        "table": {"name": table, "uri": settings.table_uri(table)},
        "upstream": upstream,
        "downstream": {
            "feast_feature_view": view,
            "feature_services": _services_of(view["name"] if view else None, services),
            "on_demand_groups": [o.name for o in ON_DEMAND_GROUPS if o.base.name == group.name],
        },
        "freshness": freshness(group, say),
    }


def on_demand_entry(group: OnDemandGroup, views: dict[str, dict], services: list[dict]) -> dict[str, Any]:
    view = views.get(group.name)
    return {
        "name": group.name,
        "base": group.base.name,
        "owner": group.base.owner,
        "description": group.description,
        "version": group.version,
        "request": [{"name": c.name, "kind": c.kind} for c in group.request],
        "stored_inputs": group.stored_inputs,
        "features": [{"name": f.name, "type": f.dtype.value, "inputs": list(f.inputs), "description": f.description}
                     for f in group.features],
        "feast_feature_view": view,
        "feature_services": _services_of(view["name"] if view else None, services),
    }


def _services_of(view: str | None, services: list[dict]) -> list[dict]:
    """The feature services with a projection of `view`, and which of its features each takes."""
    if view is None:
        return []
    return [{"name": s["name"], "features": p["features"]}
            for s in services for p in s["projections"] if p["view"] == view]


def _hours(value: dt.timedelta) -> float:
    return round(value.total_seconds() / 3600, 3)


# --- freshness --------------------------------------------------------------------------------


def freshness(group: FeatureGroup, say: Say = lambda line: None) -> dict[str, Any]:
    """Newest published as-of vs the newest landed event of the group's source, against its SLA.

    The lag is monitoring's publish lag (newest landed event - newest published as-of midnight,
    0 when nothing landed since); within the SLA means lag < freshness_sla, as its check breaches at >=.
    """
    from featurepipe.dates import midnight
    from featurepipe.raw import latest_event
    from featurepipe.storage import StorageError

    sla = _hours(group.freshness_sla)
    out: dict[str, Any] = {"status": UNKNOWN, "newest_as_of": None, "newest_landed_event": None,
                           "lag_hours": None, "within_sla": None, "sla_hours": sla, "read_with": None, "note": None}
    try:
        newest, out["read_with"] = newest_published(group, say)
        # as monitoring reads it: only whether events after the newest as-of landed matters
        since = newest - dt.timedelta(days=1) if newest else None
        landed = latest_event(raw_location(group.source).rstrip("/"), group.source, since=since)
    except (StorageError, OSError) as exc:  # the catalog still lists the group; its freshness says why not
        out["note"] = f"cannot read freshness: {exc}"
        say(f"[catalog] WARNING {group.name}: {out['note']}")
        return out
    out["newest_landed_event"] = landed.isoformat() if landed else None
    if newest is None:
        out["status"] = NEVER_PUBLISHED
        out["note"] = "no published feature rows (the feature table does not exist or is empty)"
        return out
    lag = max((landed - midnight(newest)).total_seconds() / 3600, 0.0) if landed else 0.0
    out.update(newest_as_of=newest.isoformat(), lag_hours=round(lag, 3), within_sla=lag < sla,
               status=WITHIN_SLA if lag < sla else OVER_SLA)
    if landed is None:
        out["note"] = f"no event landed since {since.isoformat()}"
    return out


def newest_published(group: FeatureGroup, say: Say = lambda line: None) -> tuple[dt.date | None, str]:
    """(newest as-of in the group's Delta feature table or None, how it was read): from the Delta
    log, or with Spark when the log holds something its replay does not read."""
    from featurepipe import delta_log
    from featurepipe.settings import get_settings

    table = lake.features_table(group)
    try:
        return delta_log.newest_date(get_settings().table_uri(table), lake.AS_OF_DATE), "delta log"
    except delta_log.Unsupported as why:
        say(f"[catalog] {table}: reading with Spark ({why})")
    return _newest_with_spark(table), "spark"


def _newest_with_spark(table: str) -> dt.date | None:
    from pyspark.sql import functions as F

    from featurepipe.spark import get_spark

    spark = get_spark("featurepipe-catalog")
    if not lake.table_exists(spark, table):
        return None
    return lake.read_table(spark, table).agg(F.max(lake.AS_OF_DATE)).first()[0]


# --- Feast objects of feature_repo/ -------------------------------------------------------------


def feast_objects() -> tuple[dict[str, dict], list[dict]]:
    """The Feast views ({name: {name, kind, tags}}) and feature services (name, description, tags and
    per view the features it takes) that feature_repo/ declares, read from the objects themselves."""
    import importlib
    import sys
    import warnings

    from featurepipe.settings import FEATURE_REPO_DIR

    # the repo's modules import each other by name, as under `feast apply`
    if str(FEATURE_REPO_DIR) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO_DIR))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Feast's "Spark source is experimental" on every import
        modules = [importlib.import_module(p.stem) for p in sorted(FEATURE_REPO_DIR.glob("*.py"))]
    from feast import FeatureService, FeatureView, OnDemandFeatureView

    views: dict[str, dict] = {}
    services: dict[str, dict] = {}
    for module in modules:
        for obj in vars(module).values():
            if isinstance(obj, (FeatureView, OnDemandFeatureView)):
                views[obj.name] = {"name": obj.name, "kind": type(obj).__name__, "tags": dict(obj.tags or {})}
            elif isinstance(obj, FeatureService):
                services[obj.name] = {
                    "name": obj.name, "description": obj.description, "tags": dict(obj.tags or {}),
                    "projections": [{"view": p.name, "features": [f.name for f in p.features]}
                                    for p in obj.feature_view_projections],
                }
    return views, [services[name] for name in sorted(services)]
