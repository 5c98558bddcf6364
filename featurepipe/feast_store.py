"""Feast glue: repo config from settings, apply-when-changed, materialize, training sets, online reads."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import unquote, urlparse

from featurepipe.settings import FEATURE_REPO_DIR, JARS_DIR, Settings, get_settings
from featurepipe.spec import (GROUPS, ON_DEMAND_GROUPS, REFERENCE_VIEWS, USER_PURCHASE, USER_PURCHASE_ON_DEMAND, Dtype,
                              FeatureGroup, OnDemandGroup, ReferenceView)

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

ENTITY_ROW = "__featurepipe_row"
# where `featurepipe feast-env` puts `${REDIS_PASSWORD}` instead of the password: the shell fills it
# in at `eval` (inside a JSON string: a password with `"`, `\` or `,` cannot pass; Feast's
# connection string splits on `,` anyway)
PASSWORD_PLACEHOLDER = "@@REDIS_PASSWORD@@"


class FeatureRefError(ValueError):
    pass


def declaring_group(name: str) -> FeatureGroup | OnDemandGroup | ReferenceView:
    """The stored, on-demand or reference group that declares feature `name` (names are unique: spec)."""
    for group in (*GROUPS, *ON_DEMAND_GROUPS, *REFERENCE_VIEWS):
        if name in group.feature_names:
            return group
    raise KeyError(f"no feature group declares {name!r}")


def read_groups(names: list[str]) -> list[FeatureGroup]:
    """The stored groups whose tables a read of `names` touches (an on-demand feature's base, a
    reference view's `via` group), in spec order."""
    found = set()
    for name in names:
        group = declaring_group(name)
        found.add((group.base if isinstance(group, OnDemandGroup) else
                   group.via[0] if isinstance(group, ReferenceView) else group).name)
    return [g for g in GROUPS if g.name in found]


def join_keys(names: list[str]) -> list[str]:
    """The entity columns a read of `names` needs: the join keys of their groups, in spec order."""
    return list(dict.fromkeys(g.join_key for g in read_groups(names)))


def _references(names: list[str]) -> list[ReferenceView]:
    return [v for v in REFERENCE_VIEWS if v.feature in names]


def _direct(selection, references: list[ReferenceView]) -> list[str]:
    """The refs Feast reads by the entity table's own keys: `selection` without the reference views'
    features, plus each one's `via` feature (the key it is reached by)."""
    if not isinstance(selection, list):
        raise FeatureRefError(f"{', '.join(v.name for v in references)} is reached through "
                              f"{', '.join(f'{v.via[0].name}.{v.via[1]}' for v in references)}: ask for it with --features")
    refs = [r for r in selection if r.split(":", 1)[0] not in {v.name for v in references}]
    return list(dict.fromkeys([*refs, *(f"{v.via[0].name}:{v.via[1]}" for v in references)]))


def redis_connection_string(url: str, password: str | None = None) -> str:
    """`redis://[:pw@]host:port/db` -> Feast's `host:port,db=N[,password=...][,ssl=true]`."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"FEATUREPIPE_REDIS_URL must start with redis:// or rediss://, got {url!r}")
    parts = [f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}"]
    db = (parsed.path or "/0").lstrip("/") or "0"
    parts.append(f"db={int(db)}")
    secret = unquote(parsed.password) if parsed.password else password
    if secret:
        parts.append(f"password={secret}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def feast_env(settings: Settings | None = None, redact: bool = False) -> dict[str, str]:
    """The variables `feature_repo/feature_store.yaml` reads. `redact`: a Redis password becomes
    `PASSWORD_PLACEHOLDER` (for printing)."""
    settings = settings or get_settings()
    if settings.online_store == "redis":
        password = os.environ.get("REDIS_PASSWORD")
        url = settings.redis_url
        if redact and (password or urlparse(url).password):
            password, url = PASSWORD_PLACEHOLDER, _without_password(url)
        online = {
            "type": "redis",
            "connection_string": redis_connection_string(url, password),
            # by default Feast's Redis store drops a write whose event timestamp is not newer than
            # the stored one, so a corrected row for the same as-of would never arrive; our
            # materialize window always ends at the newest published as-of, so writing
            # unconditionally can never move a user back in time
            "skip_dedup": True,
        }
    else:
        online = {"type": "sqlite", "path": str(settings.feast_dir / "online_store.db")}
    return {
        "FEATUREPIPE_FEAST_REGISTRY": str(settings.feast_dir / "registry.db"),
        "FEATUREPIPE_FEAST_ONLINE_STORE": json.dumps(online),
        # the session plain Feast starts (feature_store.yaml's spark_conf): our master and Delta JARs,
        # and Spark's Python workers on this interpreter (the one with pyspark), not the first on PATH
        "FEATUREPIPE_SPARK_MASTER": settings.spark_master,
        "FEATUREPIPE_SPARK_JARS": ",".join(sorted(str(p) for p in JARS_DIR.glob("*.jar"))),
        "PYSPARK_PYTHON": sys.executable,
    }


def _without_password(url: str) -> str:
    parsed = urlparse(url)
    host = f"{parsed.hostname or 'localhost'}{f':{parsed.port}' if parsed.port else ''}"
    user = f"{parsed.username}@" if parsed.username else ""
    return parsed._replace(netloc=f"{user}{host}").geturl()


def shell_exports(settings: Settings | None = None) -> tuple[list[str], str | None]:
    """(`export` lines for `eval`, a warning or None). No secret is printed: a Redis password is
    written as `${REDIS_PASSWORD}`, which the user's shell fills in at `eval`."""
    import shlex

    settings = settings or get_settings()
    lines = []
    for key, value in feast_env(settings, redact=True).items():
        parts = value.split(PASSWORD_PLACEHOLDER)
        lines.append(f"export {key}=" + '"${REDIS_PASSWORD}"'.join(shlex.quote(p) for p in parts))
    warning = None
    if settings.online_store == "redis" and urlparse(settings.redis_url).password and not os.environ.get("REDIS_PASSWORD"):
        warning = ("FEATUREPIPE_REDIS_URL holds a password, which is never printed: export REDIS_PASSWORD "
                   "with it before the eval")
    return lines, warning


def get_store() -> FeatureStore:
    """The Feast store of the current settings (registry and online store under the data dir)."""
    from feast import FeatureStore

    settings = get_settings()
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(feast_env(settings))
    return FeatureStore(repo_path=str(FEATURE_REPO_DIR))


def _store_settings() -> str:
    """What reaches the registry from the environment, as JSON: the registry and online-store
    settings (not the Spark session's, which plain Feast alone reads)."""
    return json.dumps({k: v for k, v in feast_env().items() if k.startswith("FEATUREPIPE_FEAST_")}, sort_keys=True)


def _definition_hash(store: FeatureStore) -> str:
    digest = hashlib.sha256()
    for path in sorted(FEATURE_REPO_DIR.glob("*.py")) + [FEATURE_REPO_DIR / "feature_store.yaml"]:
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(_store_settings().encode())
    from featurepipe import lake

    for group in GROUPS:
        digest.update(lake.table_path(lake.features_table(group)).encode())
        digest.update(repr(group).encode())
    from featurepipe.versions import fingerprint

    # the on-demand view's code is featurepipe.on_demand's (its functions' reprs vary per process)
    digest.update(fingerprint(USER_PURCHASE_ON_DEMAND).encode())
    return digest.hexdigest()


def ensure_applied(store: FeatureStore) -> bool:
    """`feast apply` when the definitions or the config changed since the last apply; True if it ran.

    Applying costs ~20 s, so a hash of what was applied is kept beside the registry. A deleted
    SQLite online store is only recreated by a fresh registry, so both are reset together.
    """
    from feast.repo_operations import apply_total

    settings = get_settings()
    marker = settings.feast_dir / "applied.sha256"
    registry = Path(feast_env(settings)["FEATUREPIPE_FEAST_REGISTRY"])
    online_db = settings.feast_dir / "online_store.db"
    wanted = _definition_hash(store)
    online_missing = settings.online_store == "sqlite" and not online_db.exists()
    if registry.exists() and marker.exists() and marker.read_text().strip() == wanted and not online_missing:
        return False
    if online_missing and registry.exists():
        registry.unlink()
    # on stderr: `featurepipe online` prints JSON lines only; Feast's own account of the apply (the
    # whole diff of every object) goes to the log (the command's log file, the task log)
    print(f"[feast] applying feature definitions from {FEATURE_REPO_DIR}", file=sys.stderr, flush=True)
    cwd = os.getcwd()
    # the repo's modules import each other by name (entities, data_sources, ...), as under `feast apply`
    if str(FEATURE_REPO_DIR) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO_DIR))
    # the repo's modules read the lake location when imported: a long-lived process (the Spark
    # server) must import them again for the current settings, not reuse an earlier request's
    for module in [p.stem for p in FEATURE_REPO_DIR.glob("*.py")]:
        sys.modules.pop(module, None)
    # apply_total imports them from inside the repo folder: the default data dir (`./data`, resolved
    # against the working directory) must already be absolute, or the source points under feature_repo/
    given = os.environ.get("FEATUREPIPE_DATA_DIR")
    os.environ["FEATUREPIPE_DATA_DIR"] = str(settings.data_dir)
    try:
        account = io.StringIO()
        with contextlib.redirect_stdout(account):
            apply_total(store.config, FEATURE_REPO_DIR, skip_source_validation=True)
        logging.getLogger(__name__).info("feast apply:\n%s", account.getvalue())
    finally:
        os.chdir(cwd)  # apply_total changes directory
        if given is None:
            os.environ.pop("FEATUREPIPE_DATA_DIR", None)
        else:
            os.environ["FEATUREPIPE_DATA_DIR"] = given
    marker.write_text(wanted + "\n")
    return True


_APPLIED: set[str] = set()


def _ensure_applied_once(store: FeatureStore) -> None:
    """`ensure_applied` once per process and store configuration: a service reading online features
    for every request pays the definitions' hash once, not per read."""
    key = _store_settings()
    if key not in _APPLIED:
        ensure_applied(store)
        _APPLIED.add(key)


def reset() -> None:
    """Forget the registry and the SQLite online store (they are derived; rebuilt by the next materialize)."""
    shutil.rmtree(get_settings().feast_dir, ignore_errors=True)


def resolve_features(store: FeatureStore, features: list[str] | None, feature_service: str | None,
                     default: tuple[FeatureGroup, ...] = (USER_PURCHASE,)):
    """Feature refs (`view:feature`, or bare names: each group's feature names are its own) or a
    feature service; neither: every feature of the `default` groups."""
    if features and feature_service:
        raise FeatureRefError("give --features or --feature-service, not both")
    if feature_service:
        try:
            return store.get_feature_service(feature_service)
        except Exception as exc:
            names = ", ".join(s.name for s in store.list_feature_services())
            raise FeatureRefError(f"unknown feature service {feature_service!r} (known: {names})") from exc
    if not features:
        return [f"{group.name}:{name}" for group in default for name in group.feature_names]
    views = {g.name: g.feature_names for g in (*GROUPS, *ON_DEMAND_GROUPS, *REFERENCE_VIEWS)}
    refs = []
    for item in features:
        if ":" in item:
            view, name = item.split(":", 1)
        else:
            try:
                view, name = declaring_group(item).name, item
            except KeyError:
                known = "; ".join(f"{v}: {', '.join(n)}" for v, n in views.items())
                raise FeatureRefError(f"unknown feature {item!r} (known: {known})") from None
        if view not in views:
            raise FeatureRefError(f"unknown feature view {view!r} in {item!r} (known: {', '.join(views)})")
        if name not in views[view]:
            raise FeatureRefError(f"unknown feature {name!r}; {view} has {', '.join(views[view])}")
        refs.append(f"{view}:{name}")
    return refs


def _feature_names(store: FeatureStore, selection) -> list[str]:
    if isinstance(selection, list):
        return [ref.split(":", 1)[1] for ref in selection]
    return [f.name for projection in selection.feature_view_projections for f in projection.features]


def _stored(names: list[str]) -> list[str]:
    """The names of aggregated features (those with no-history values)."""
    return [n for n in names if isinstance(declaring_group(n), FeatureGroup)]


def request_fields(names: list[str]) -> list[str]:
    """The request values the selected on-demand features read (SPEC §7), in declaration order."""
    return USER_PURCHASE_ON_DEMAND.request_fields([n for n in names if n in USER_PURCHASE_ON_DEMAND.feature_names])


def _request_source_fields(names: list[str]) -> list[str]:
    """Every request field of the on-demand view when a selected feature is on demand: Feast asks
    for all of them, read or not."""
    if any(n in USER_PURCHASE_ON_DEMAND.feature_names for n in names):
        return [c.name for c in USER_PURCHASE_ON_DEMAND.request]
    return []


def _readers(names: list[str], field: str) -> str:
    return ", ".join(n for n in names if n in USER_PURCHASE_ON_DEMAND.feature_names
                     and field in USER_PURCHASE_ON_DEMAND.feature(n).inputs)


def _dtype(name: str) -> Dtype | None:
    """The feature's type; None for a reference view's vector (a list)."""
    group = declaring_group(name)
    return None if isinstance(group, ReferenceView) else group.feature(name).dtype


_PANDAS_DTYPES = {Dtype.INT64: "Int64", Dtype.FLOAT64: "float64", Dtype.STRING: "object", Dtype.BOOL: "boolean"}


def training_set(entities: pd.DataFrame, features: list[str] | None = None, feature_service: str | None = None,
                 as_of_version: int | None = None, as_of_timestamp: dt.datetime | None = None,
                 versions: dict[str, int] | None = None) -> pd.DataFrame:
    """Point-in-time correct features for each entity row (SPEC §4); entity columns come back unchanged, in order.

    Every feature table read is pinned to one Delta version (SPEC §7), recorded in the result's
    `attrs["delta_versions"]` ({table: version}): `versions[table]` if given (a manifest's), else
    `as_of_version` for the user group's table, else the newest version committed at or before
    `as_of_timestamp`, else the current one."""
    import pandas as pd

    from featurepipe import lake
    from featurepipe.spark import fit_codegen, get_spark
    from featurepipe.training_sets import resolve_version

    check_entities(entities)
    spark = get_spark("featurepipe-training-set")  # Feast reuses the active, Delta-enabled session
    store = get_store()
    ensure_applied(store)
    # SPEC §5: by default every feature of user_purchase_features (another group's only when the
    # entity table has that group's key and no user_id)
    default = (USER_PURCHASE,) if USER_PURCHASE.join_key in entities.columns else _default_groups(entities.columns)
    selection = resolve_features(store, features, feature_service, default=default)
    names = _feature_names(store, selection)
    needed = request_fields(names)
    keys = join_keys(names)
    check_entities(entities, needed, names, keys)
    references = _references(names)
    if references:  # read by the entity's keys first, then by the keys that read found
        selection = _direct(selection, references)
    fit_codegen(spark, sum(lake.table_bytes(spark, lake.features_table(g)) for g in read_groups(names)))

    query = pd.DataFrame(
        {
            ENTITY_ROW: range(len(entities)),
            **{key: entities[key].astype(str).to_numpy() for key in keys},
            "event_timestamp": _utc(entities["event_timestamp"]).reset_index(drop=True),
        }
    )
    # request values of on-demand features: the entity table's columns of the same name; Feast
    # wants every field of the view's request source, so a field no selected feature reads is null
    for field in _request_source_fields(names):
        if field != "event_timestamp":
            query[field] = (pd.to_numeric(entities[field], errors="raise").astype("float64").to_numpy()
                            if field in needed else float("nan"))
    pinned = {}
    for group in read_groups(names):
        table = lake.features_table(group)
        if versions and table in versions:
            pinned[table] = resolve_version(spark, table, versions[table])
        elif group is USER_PURCHASE and as_of_version is not None:
            pinned[table] = resolve_version(spark, table, as_of_version)
        else:
            pinned[table] = resolve_version(spark, table, None, as_of_timestamp)
    with feast_session(spark, arrow=True), _feature_tables_at({lake.table_path(t): v for t, v in pinned.items()}):
        result = store.get_historical_features(entity_df=query, features=selection).to_df()
    # Feast returns rows in its own order and widens Int64-with-nulls to float: restore both
    result = result.set_index(ENTITY_ROW).reindex(range(len(entities)))
    for view in references:  # a product's main_category -> its category's row (rows hold from the epoch on)
        by_key = pd.DataFrame({ENTITY_ROW: range(len(entities)),
                               view.join_key: result[view.via[1]].fillna("").astype(str).to_numpy(),
                               "event_timestamp": query["event_timestamp"]})
        with feast_session(spark, arrow=True):
            found = store.get_historical_features(entity_df=by_key, features=[f"{view.name}:{view.feature}"]).to_df()
        result[view.feature] = found.set_index(ENTITY_ROW).reindex(range(len(entities)))[view.feature]
    out = entities.copy()
    defaults = no_history_values(_stored(names))
    for name in names:
        values = pd.Series(result[name].to_numpy(), index=out.index)
        if defaults.get(name) is not None:
            # no feature row at or before the row's timestamp: the no-history value (SPEC §4). A
            # stored row never holds a null number (the feature suite checks it), so a null is that.
            values = values.fillna(defaults[name])
        if _dtype(name) is None:  # a vector: a list of floats, None where there is none
            out[name] = [list(v) if v is not None and not (isinstance(v, float) and v != v) else None for v in values]
            continue
        dtype = _PANDAS_DTYPES[_dtype(name)]
        # strings: None (not NaN) where there is no value
        out[name] = values.astype(dtype) if dtype != "object" else values.astype(object).where(values.notna(), None)
    out.attrs["delta_versions"] = pinned
    return out


def _default_groups(columns) -> tuple[FeatureGroup, ...]:
    """The groups whose features a read without --features/--feature-service gets: by user_id,
    user_purchase_features (SPEC §4-§5); by product_id, every product group; by both, all of those."""
    chosen = tuple(g for g in GROUPS if g.join_key in columns
                   and (g.join_key != USER_PURCHASE.join_key or g is USER_PURCHASE))
    return chosen or (USER_PURCHASE,)


def check_entities(entities: pd.DataFrame, request: list[str] = (), names: list[str] = (),
                   keys: list[str] | None = None) -> None:
    """ValueError naming what an entity table lacks (before any Spark work): the join `keys` of the
    selected features (None: some group's key) and the timestamp, and the request columns of the
    on-demand features `names` (`request`, from `request_fields`)."""
    has = ", ".join(map(str, entities.columns))
    if keys is None and not any(g.join_key in entities.columns for g in GROUPS):
        others = [k for k in dict.fromkeys(g.join_key for g in GROUPS) if k != USER_PURCHASE.join_key]
        raise ValueError(f"the entity table needs a {USER_PURCHASE.join_key!r} column (or another entity's key: "
                         f"{', '.join(others)}) (it has {has})")
    for column in (*(keys or ()), "event_timestamp"):
        if column not in entities.columns:
            raise ValueError(f"the entity table needs a {column!r} column (it has {has})")
    for column in request:
        if column not in entities.columns:
            raise ValueError(f"the on-demand feature {_readers(names, column)} needs a request column {column!r} "
                             f"in the entity table (it has {', '.join(map(str, entities.columns))})")


@contextlib.contextmanager
def _feature_tables_at(versions: dict[str, int]) -> Iterator[None]:
    """Inside, Feast reads each feature table (by path) at its Delta version: `versionAsOf` joins
    the reader options of its source (the DeltaFormat's properties) for the reads Feast makes.

    Feast builds its feature views afresh from the registry for every retrieval, so the option is
    added where its Spark source loads the table; every other source loads as Feast does."""
    if not versions:
        yield
        return

    def at_version(source, spark_session, load):
        if source.path not in versions or source.table_format is None:
            return load(source, spark_session)
        reader = spark_session.read.format(source.table_format.format_type.value)
        for key, value in {**source.table_format.properties, "versionAsOf": str(versions[source.path])}.items():
            reader = reader.option(key, value)
        return reader.load(source.path)

    with _sources_loaded_by(at_version):
        yield


# entities whose newest timestamps materialize broadcasts (~40 bytes each in the driver and every executor)
BROADCAST_ENTITIES = 2_000_000


@contextlib.contextmanager
def _newest_rows_only(path: str, key: str, start: dt.datetime, end: dt.datetime) -> Iterator[None]:
    """Inside, Feast's read of the feature table at `path` holds only each entity's newest row with
    start <= event_timestamp <= end: the rows Feast's materialization keeps (its query numbers each
    entity's rows of that range newest first and keeps the first).

    Feast finds them by sorting every row of the range per entity; here each entity's newest
    timestamp is aggregated first (two narrow columns, cached and counted), and the table read
    again keeps the rows with it, so Feast's query numbers one row per entity. (bench e2e at 2M:
    852,546 rows of the user group's 90 as-of dates were sorted for 9,840 entities.) Up to
    `BROADCAST_ENTITIES` the newest timestamps are broadcast: the rows are filtered where they are
    read, with no shuffle and no sort (at 20M events, 8.5M rows for 113k users; Spark's own size
    estimate of the aggregate, the whole table's, chose a sort-merge join that shuffled them all).
    With more entities the join sorts, as Feast did, rather than hold them all in the driver."""
    from pyspark.sql import functions as F

    from featurepipe import lake

    cached = []

    def newest(source, spark_session, load):
        rows = load(source, spark_session)
        if source.path != path:
            return rows
        inside = rows.where(F.col(lake.AS_OF_DATE).between(F.lit(start.date()), F.lit(end.date()))
                            & F.col("event_timestamp").between(F.lit(start), F.lit(end)))
        latest = inside.groupBy(key).agg(F.max("event_timestamp").alias("event_timestamp")).cache()
        cached.append(latest)
        if latest.count() <= BROADCAST_ENTITIES:
            latest = F.broadcast(latest)
        return inside.join(latest, [key, "event_timestamp"]).select(*rows.columns)

    try:
        with _sources_loaded_by(newest):
            yield
    finally:
        for frame in cached:
            frame.unpersist()


@contextlib.contextmanager
def _sources_loaded_by(load_source) -> Iterator[None]:
    """Inside, Feast's Spark sources load their tables through `load_source(source, spark, load)`
    (`load`: Feast's own loader)."""
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    load = SparkSource._load_dataframe_from_path
    SparkSource._load_dataframe_from_path = lambda source, spark_session: load_source(source, spark_session, load)
    try:
        yield
    finally:
        SparkSource._load_dataframe_from_path = load


def _utc(series: pd.Series) -> pd.Series:
    import pandas as pd

    parsed = pd.to_datetime(series, utc=False, format="ISO8601") if series.dtype == object else series
    if getattr(parsed.dt, "tz", None) is None:
        return parsed.dt.tz_localize("UTC")
    return parsed.dt.tz_convert("UTC")


def require_registry() -> None:
    if not Path(feast_env()["FEATUREPIPE_FEAST_REGISTRY"]).exists():
        raise FileNotFoundError("no Feast registry yet: run `featurepipe run` or `featurepipe backfill` first")


def no_history_values(names: list[str]) -> dict:
    """What SPEC §3 gives an entity with empty windows (SPEC §4: no history is not unknown): 0, 0.0, null."""
    from featurepipe.aggregations import operation

    return {n: operation(declaring_group(n).feature(n).op).empty for n in names}


def request_values(names: list[str], given: dict[str, str] | None, now: dt.datetime | None = None) -> dict:
    """The request values of an online read of `names` (SPEC §7), typed: `given` as NAME=VALUE
    text (`--request`), `event_timestamp` defaulting to `now` (default: the current time).

    FeatureRefError naming a missing or unreadable value, or a name no selected feature reads."""
    from featurepipe.on_demand import RequestValueError, utc_instant

    given = dict(given or {})
    needed = request_fields(names)
    unused = sorted(set(given) - set(needed))
    if unused:
        raise FeatureRefError(f"--request {unused[0]}: no selected feature reads it"
                              + (f" (they read {', '.join(needed)})" if needed else " (no on-demand feature selected)"))
    values = {}
    for field in needed:
        text = given.get(field)
        if field == "event_timestamp":
            try:
                values[field] = utc_instant(text) if text is not None else (now or dt.datetime.now(dt.timezone.utc))
            except RequestValueError:
                raise FeatureRefError(f"--request event_timestamp={text!r} is not an ISO 8601 timestamp") from None
        elif text is None:
            raise FeatureRefError(f"the on-demand feature {_readers(names, field)} needs a request value {field!r}: "
                                  f"pass --request {field}=VALUE")
        else:
            try:
                values[field] = float(text)
            except ValueError:
                raise FeatureRefError(f"--request {field}={text!r} is not a number") from None
    return values


def online_features(user_ids: list[str], features: list[str] | None = None, feature_service: str | None = None,
                    with_as_of: bool = False, request: dict[str, str] | None = None,
                    now: dt.datetime | None = None) -> list[dict]:
    """The online store's current row for each user, one dict per user, in the order asked (`online_rows`)."""
    return online_rows([{USER_PURCHASE.join_key: u} for u in user_ids], features, feature_service,
                       with_as_of=with_as_of, request=request, now=now)


def online_rows(entities: list[dict[str, str]], features: list[str] | None = None, feature_service: str | None = None,
                with_as_of: bool = False, request: dict[str, str] | None = None,
                now: dt.datetime | None = None) -> list[dict]:
    """The online store's current rows for each entity (a dict of join keys: `{"user_id": ...}`,
    `{"product_id": ...}` or both), one dict per entity, in the order asked.

    Without `features` or `feature_service`: every feature of the groups whose keys the entities carry. An entity without a row of a group gets
    that group's no-history values (SPEC §4), so a service sees what a training set gives.
    `with_as_of`: each dict also carries `as_of`, the newest as-of instant (UTC datetime) of the
    rows read, None when there is none. On-demand features read `request` (NAME=VALUE text, the
    same for every entity) and `now` as the request's `event_timestamp` (SPEC §7).
    """
    require_registry()
    if not entities:
        return []  # Feast fails on zero entity rows
    store = get_store()
    _ensure_applied_once(store)  # definitions newer than the last run's apply (a new on-demand feature)
    selection = resolve_features(store, features, feature_service, default=_default_groups({k for e in entities for k in e}))
    names = _feature_names(store, selection)
    keys = join_keys(names)
    for entity in entities:
        missing = [k for k in keys if not entity.get(k)]
        if missing:
            raise FeatureRefError(f"the selected features need {' and '.join(missing)} for every entity, got {entity}")
    extra = {field: None for field in _request_source_fields(names)} | request_values(names, request, now)
    references = _references(names)
    direct = _direct(selection, references) if references else selection
    response = store.get_online_features(features=direct, entity_rows=[{**{k: e[k] for k in keys}, **extra}
                                                                        for e in entities])
    values = response.to_dict(include_event_timestamps=True)
    for view in references:  # a product's main_category -> its category's vector
        by_key = [{view.join_key: key or ""} for key in values[view.via[1]]]
        values[view.feature] = store.get_online_features(features=[f"{view.name}:{view.feature}"],
                                                         entity_rows=by_key).to_dict()[view.feature]
    stored = _stored(names)
    defaults = no_history_values(stored)
    rows = []
    for i, entity in enumerate(entities):
        # each feature's event timestamp is its row's as-of; 0 (the epoch) where the store has no row
        seconds = {n: values.get(f"{n}__ts", [0] * len(entities))[i] or 0 for n in stored}
        row = {**{k: entity[k] for k in keys},
               **{n: defaults[n] if n in defaults and not seconds[n] else values[n][i] for n in names}}
        if with_as_of:
            newest = max(seconds.values(), default=0)
            row["as_of"] = dt.datetime.fromtimestamp(newest, dt.timezone.utc) if newest else None
        rows.append(row)
    return rows


def materialize(start: dt.datetime, end: dt.datetime, group: FeatureGroup = USER_PURCHASE) -> None:
    """Latest row per entity of `group` with start <= event_timestamp <= end into the online store."""
    from featurepipe import lake
    from featurepipe.spark import get_spark

    spark = get_spark("featurepipe-materialize")
    store = get_store()
    ensure_applied(store)
    # each entity's newest row is found before Feast's query and reaches Python as Arrow batches
    with feast_session(spark, arrow=True), _newest_rows_only(lake.table_path(lake.features_table(group)),
                                                             group.join_key, start, end):
        store.materialize(start_date=start, end_date=end, feature_views=[group.name])


# Feast's Spark offline store switches this on in the active session and leaves it on; with it,
# backticked names are regular expressions, which breaks Delta (and our own SQL) in every later
# step of a shared session: "[INVALID_USAGE_OF_STAR_OR_REGEX] ... 'null_count.<column>'"
_FEAST_SESSION_SETTING = "spark.sql.parser.quotedRegexColumnNames"
_ARROW_SETTING = "spark.sql.execution.arrow.pyspark.enabled"


@contextlib.contextmanager
def feast_session(spark, arrow: bool = False) -> Iterator[None]:
    """Feast's queries run with the setting Feast needs; the session gets its own back afterwards.

    `arrow`: pandas frames cross the JVM boundary as Arrow batches, not row by row: a training
    set uploads its entity rows and fetches its result through pandas (at 1M rows, ~38 s and ~30 s
    row by row, ~7 s and ~3 s with Arrow; bench/training.py)."""
    before = spark.conf.get(_FEAST_SESSION_SETTING, "false")
    arrow_before = spark.conf.get(_ARROW_SETTING, "false")
    if arrow:
        spark.conf.set(_ARROW_SETTING, "true")
    try:
        yield
    finally:
        spark.conf.set(_FEAST_SESSION_SETTING, before)
        spark.conf.set(_ARROW_SETTING, arrow_before)
