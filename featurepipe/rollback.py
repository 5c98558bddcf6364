"""Rolling a feature table back to an earlier Delta version (`featurepipe rollback`), online values included.

Under the lake's lease (no run publishes or materializes meanwhile):
1. the target version is resolved (`--to-version N`, or the newest committed at or before
   `--to-timestamp TS`) and the entities whose rows differ between the current and the target
   version (any as-of date) are found, keys only;
2. Delta RESTORE makes the target's content the table's new version (a commit of its own: the
   history keeps everything, and a rollback can itself be rolled back);
3. every affected entity's newest row of the restored table goes to the online store, even when it
   is OLDER than what the store holds (its values are removed first: Feast's Redis store otherwise
   skips a write that is not newer than the stored one); an affected entity with no row left is
   removed, so reads give the no-history values (SPEC §4);
4. the online store's new state is recorded for parity (`bookkeeping/materialized`, at the restore's
   version) and the rollback itself in `bookkeeping/rollbacks`.

Nothing else in the bookkeeping changes: the rolled-back as-of dates stay "published" (not gaps),
so no daily run re-publishes them behind the operator's back; a backfill of the range re-publishes
them once the cause is fixed (docs/RUNBOOK.md).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore
    from pyspark.sql import DataFrame, SparkSession

    from featurepipe.spec import FeatureGroup

ROLLBACKS = "bookkeeping/rollbacks"  # one row per rollback: what, from which version to which, why, who
EVENT_TIMESTAMP = "event_timestamp"  # every feature table's row instant (= its as-of T, SPEC §3a)
BATCH = 5000  # online rows removed and re-written per round trip


class RollbackError(ValueError):
    """A rollback that cannot be done as asked (nothing was changed)."""


# --- arguments (pure) ---------------------------------------------------------------------------


def group_for_table(table: str | None, groups: Iterable[FeatureGroup] | None = None) -> FeatureGroup:
    """The feature group whose Delta table is `table` (`features/<group>`)."""
    from featurepipe import lake

    if groups is None:
        from featurepipe.spec import GROUPS as groups
    known = {lake.features_table(g): g for g in groups}
    if not table:
        raise RollbackError(f"--table is required (one of: {', '.join(sorted(known))})")
    found = known.get(table.strip().strip("/"))
    if found is None:
        raise RollbackError(f"unknown table {table!r}: the feature tables are {', '.join(sorted(known))}")
    return found


def check_reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise RollbackError("--reason is required: say why the table is rolled back (it is recorded in "
                            f"{ROLLBACKS})")
    return " ".join(reason.split())  # one line in the record and the summary


def parse_timestamp(text: str) -> dt.datetime:
    """An ISO 8601 instant; without a zone it means UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RollbackError(f"--to-timestamp {text!r} is not an ISO 8601 timestamp (e.g. 2025-03-04T12:00:00Z)") from None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def check_target_args(to_version: int | None, to_timestamp: str | None) -> dt.datetime | None:
    """Exactly one of the two; the timestamp parsed."""
    if (to_version is None) == (to_timestamp is None):
        raise RollbackError("give exactly one of --to-version N and --to-timestamp TS (or --list to see the versions)")
    return parse_timestamp(to_timestamp) if to_timestamp is not None else None


def choose_target(table: str, versions: list[tuple[int, dt.datetime]], to_version: int | None = None,
                  to_timestamp: dt.datetime | None = None) -> int:
    """The version to restore: `to_version`, or the newest committed at or before `to_timestamp`.

    `versions`: (version, commit time UTC) of the table's log, oldest first; the last is the current one."""
    numbers = [v for v, _ in versions]
    current = numbers[-1]
    if to_version is not None:
        if to_version not in numbers:
            raise RollbackError(f"{table} has no version {to_version}: its log holds versions "
                                f"{numbers[0]}..{current} (featurepipe rollback --table {table} --list)")
        target = to_version
    else:
        earlier = [v for v, at in versions if at <= to_timestamp]
        if not earlier:
            raise RollbackError(f"--to-timestamp {to_timestamp.isoformat()} is before {table}'s first commit "
                                f"(version {numbers[0]}, {versions[0][1].isoformat()})")
        target = earlier[-1]
    if target == current:
        raise RollbackError(f"version {target} is {table}'s current version: nothing to roll back")
    return target


def operator() -> str:
    """Who rolled back: $USER, else the login name, else "unknown"."""
    name = os.environ.get("USER")
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = None
    return name or "unknown"


# --- what changed (Spark) -----------------------------------------------------------------------


def changed_keys(old: DataFrame, new: DataFrame, key: str) -> DataFrame:
    """Distinct keys of the entities with a row (any as-of) in one frame and not, identical, in the other.

    Compares the columns both have; a column only one has (a feature added or dropped) makes every
    entity of either side changed."""
    from pyspark.sql import functions as F

    shared = [c for c in old.columns if c in new.columns]
    if set(shared) != set(old.columns) or set(shared) != set(new.columns):
        return old.select(key).union(new.select(key)).distinct()
    a, b = old.select(*shared), new.select(*shared)
    return a.exceptAll(b).union(b.exceptAll(a)).select(F.col(key)).distinct()


# --- the online store ---------------------------------------------------------------------------


def _entity_keys(store: FeatureStore, view, key: str, values: list):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import python_values_to_proto_values

    kind = {c.name: c.dtype.to_value_type() for c in view.entity_columns}[key]
    protos = python_values_to_proto_values(values, kind)
    return [EntityKey(join_keys=[key], entity_values=[p]) for p in protos]


def forget_online(store: FeatureStore, view_name: str, key: str, values: list) -> None:
    """Remove the online values of feature view `view_name` for these entities (other views' values stay).

    Feast 0.67's OnlineStore has no per-entity delete (Redis's `delete_entity_values` drops every
    entity of a join key), so this speaks to the store Feast configured, in Feast's own layout:
    Redis: the view's fields (murmur3 of `view:feature`, and `_ts:view`) of the entity's hash;
    SQLite: the entity's rows of the view's table."""
    if not values:
        return
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    config = store.config
    view = store.get_feature_view(view_name)
    online = store._get_provider().online_store
    keys = _entity_keys(store, view, key, values)
    version = config.entity_key_serialization_version
    if isinstance(online, RedisOnlineStore):
        from feast.infra.online_stores.helpers import _mmh3, _redis_key
        from feast.infra.online_stores.redis import _versioned_fv_name

        name = _versioned_fv_name(view, config)
        fields = [_mmh3(f"{name}:{f.name}") for f in view.features] + [f"_ts:{name}"]
        client = online._get_client(config.online_store)
        with client.pipeline(transaction=False) as pipe:
            for entity in keys:  # a hash left without fields is deleted by Redis itself
                pipe.hdel(_redis_key(config.project, entity, entity_key_serialization_version=version), *fields)
            pipe.execute()
    elif isinstance(online, SqliteOnlineStore):
        from feast.infra.online_stores.sqlite import _quote_id, _table_id

        table = _table_id(config.project, view, config.registry.enable_online_feature_view_versioning)
        conn = online._get_conn(config)
        with conn:
            conn.executemany(f"DELETE FROM {_quote_id(table)} WHERE entity_key = ?",
                             [(serialize_entity_key(k, entity_key_serialization_version=version),) for k in keys])
    else:
        raise RollbackError(f"cannot remove entities from a {type(online).__name__} online store "
                            "(featurepipe knows Redis and SQLite)")


def rewrite_online(store: FeatureStore, group: FeatureGroup, rows: pd.DataFrame) -> None:
    """Each row (key, event_timestamp, features) becomes its entity's online value, older or not:
    its stored values are removed first, then the row is written through Feast."""
    if rows.empty:
        return
    forget_online(store, group.name, group.join_key, rows[group.join_key].tolist())
    store.write_to_online_store(group.name, df=rows)


def _row_frames(newest: DataFrame, group: FeatureGroup) -> Iterable[pd.DataFrame]:
    """The rows as pandas frames of up to BATCH rows, typed as the feature view declares."""
    import pandas as pd
    from pyspark.sql import functions as F

    from featurepipe.spec import Dtype

    names = group.feature_names
    # epoch microseconds, not a timestamp: collected timestamps come back in the local zone
    selected = newest.select(group.join_key, F.unix_micros(EVENT_TIMESTAMP).alias("_micros"), *names)
    dtypes = {Dtype.INT64: "int64", Dtype.FLOAT64: "float64", Dtype.BOOL: "bool"}
    batch: list = []

    def frame() -> pd.DataFrame:
        out = pd.DataFrame.from_records([r.asDict() for r in batch], columns=[group.join_key, "_micros", *names])
        out[EVENT_TIMESTAMP] = pd.to_datetime(out.pop("_micros"), unit="us", utc=True)
        for name in names:
            kind = dtypes.get(group.feature(name).dtype)
            if kind:
                out[name] = out[name].astype(kind)
        return out

    for row in selected.toLocalIterator():
        batch.append(row)
        if len(batch) == BATCH:
            yield frame()
            batch = []
    if batch:
        yield frame()


# --- the rollback -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackResult:
    table: str
    from_version: int
    to_version: int
    new_version: int
    entities_changed: int
    entities_rematerialized: int
    entities_removed: int
    reason: str
    operator: str
    online_store: str

    def summary(self) -> list[str]:
        return [
            f"rolled back {self.table}: version {self.from_version} -> content of version {self.to_version} "
            f"(restore committed as version {self.new_version})",
            f"  entities changed: {self.entities_changed}; online ({self.online_store}): "
            f"{self.entities_rematerialized} re-materialized, {self.entities_removed} removed (no row left)",
            f"  reason: {self.reason} (by {self.operator}; recorded in {ROLLBACKS})",
        ]


def rollback(spark: SparkSession, table: str, reason: str, to_version: int | None = None,
             to_timestamp: dt.datetime | None = None, say: Callable[[str], None] = print) -> RollbackResult:
    """Restore `table` (`features/<group>`) to an earlier version and bring the online store along."""
    from featurepipe import bookkeeping, lake
    from featurepipe.settings import get_settings
    from featurepipe.steps import lake_lease

    group = group_for_table(table)
    table = lake.features_table(group)
    reason = check_reason(reason)
    who = operator()
    with lake_lease("rollback", f"rollback__{table}__{dt.datetime.now(dt.timezone.utc).isoformat()}", say):
        from featurepipe.training_sets import VersionError, table_versions

        try:
            versions = table_versions(spark, table)
        except VersionError as exc:
            raise RollbackError(str(exc)) from None
        current = versions[-1][0]
        target = choose_target(table, versions, to_version, to_timestamp)
        say(f"[rollback] {table}: current version {current}, restoring the content of version {target}")
        key = group.join_key
        columns = [key, EVENT_TIMESTAMP, *group.feature_names]
        now_rows = _columns(lake.read_version(spark, table, current), columns)
        then_rows = _columns(lake.read_version(spark, table, target), columns)
        changed = {r[0] for r in changed_keys(now_rows, then_rows, key).collect()}
        # what the online store holds is the newest rows of the last materialized version: if that
        # is not the current one (a publish not materialized yet, or a rollback whose online part
        # failed and is run again), its differences from the target are owed too
        last = bookkeeping.last_materialized(spark, group)
        online_version = None if last is None else last.features_version
        owed: set = set()
        if online_version is not None and online_version != current:
            owed = {r[0] for r in changed_keys(_columns(lake.read_version(spark, table, online_version), columns),
                                                 then_rows, key).collect()}
        say(f"[rollback] {len(changed)} entities have rows that differ between versions {current} and {target}"
            + (f"; {len(owed - changed)} more differ from version {online_version}, the online store's" if owed - changed else ""))

        from delta.tables import DeltaTable

        DeltaTable.forPath(spark, lake.table_path(table)).restoreToVersion(target)
        new_version = lake.last_commit(spark, table)[0]
        say(f"[rollback] restored: {table} is now version {new_version} (the content of version {target})")

        store_kind = get_settings().online_store
        try:
            rewritten, removed = _refresh_online(spark, group, table, new_version, changed | owed, say)
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RuntimeError(f"{table} was restored to the content of version {target} (version {new_version}), but "
                               f"updating the online store failed: {type(exc).__name__}: {message}; run the same "
                               "rollback again to finish it") from exc
        result = RollbackResult(table, current, target, new_version, len(changed), rewritten, removed, reason, who,
                                store_kind)
        _record(spark, result)
    return result


def _columns(frame: DataFrame, wanted: list[str]) -> DataFrame:
    return frame.select(*[c for c in wanted if c in frame.columns])


def _refresh_online(spark: SparkSession, group: FeatureGroup, table: str, new_version: int, affected: set,
                    say: Callable[[str], None]) -> tuple[int, int]:
    """The affected entities' newest restored rows into the online store, the others removed;
    (re-materialized, removed). Records the online store's new state for parity."""
    from featurepipe import bookkeeping, feast_store, lake
    from featurepipe.dates import AsOfRange
    from featurepipe.parity import newest_rows
    from pyspark.sql import functions as F

    registry = feast_store.feast_env()["FEATUREPIPE_FEAST_REGISTRY"]
    if bookkeeping.last_materialized(spark, group) is None or not os.path.exists(registry):
        say("[rollback] nothing was materialized yet: the online store is left as it is (the next run's "
            "materialize sends the table)")
        return 0, 0
    if not affected:
        return 0, 0
    key = group.join_key
    restored = lake.read_version(spark, table, new_version)
    keys = lake.literal_rows(spark, [(k,) for k in sorted(affected)], restored.select(key).schema)
    newest = newest_rows(restored.join(F.broadcast(keys), key), group).cache()
    store = feast_store.get_store()
    feast_store.ensure_applied(store)
    written: set = set()
    for rows in _row_frames(newest, group):
        rewrite_online(store, group, rows)
        written.update(rows[key].tolist())
    gone = sorted(affected - written)
    for i in range(0, len(gone), BATCH):
        forget_online(store, group.name, key, gone[i:i + BATCH])
    say(f"[rollback] online store: {len(written)} entities re-materialized with their newest restored row, "
        f"{len(gone)} removed (no row left: reads give the no-history values)")
    newest_as_of = restored.agg(F.max(lake.AS_OF_DATE)).first()[0]
    if newest_as_of is not None:
        first = newest.agg(F.min(lake.AS_OF_DATE)).first()[0] or newest_as_of
        # the online store now holds every entity's newest row of the restored version: parity
        # compares with it, and the next materialize owes only what is published after it
        bookkeeping.record_materialized(spark, AsOfRange(first, newest_as_of), new_version, group)
    newest.unpersist()
    return len(written), len(gone)


def _record(spark: SparkSession, result: RollbackResult) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    from featurepipe import lake

    values = {"table": result.table, "from_version": result.from_version, "to_version": result.to_version,
              "new_version": result.new_version, "reason": result.reason, "operator": result.operator,
              "entities_changed": result.entities_changed,
              "entities_rematerialized": result.entities_rematerialized,
              "entities_removed": result.entities_removed}
    schema = StructType([StructField(k, StringType() if isinstance(v, str) else LongType(), False)
                         for k, v in values.items()])
    row = lake.literal_rows(spark, [tuple(values.values())], schema).withColumn("rolled_back_at", F.current_timestamp())
    lake.append(row, ROLLBACKS)


# --- the history (--list) -----------------------------------------------------------------------


def history(spark: SparkSession, table: str) -> list[dict]:
    """Every version in `table`'s log, oldest first: version, committed_at (UTC), operation, and what
    made it where featurepipe knows (the as-of span a publish wrote, the rollback a restore was)."""
    from delta.tables import DeltaTable

    from featurepipe import lake

    group = group_for_table(table)
    table = lake.features_table(group)
    if not lake.table_exists(spark, table):
        raise RollbackError(f"{table} does not exist yet at {lake.table_path(table)}: nothing to list")
    rows = (DeltaTable.forPath(spark, lake.table_path(table)).history()
            .selectExpr("version", "unix_micros(timestamp) AS micros", "operation").collect())
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    made_by: dict[int, str] = {}
    from featurepipe.bookkeeping import published_records

    for r in published_records(spark, group):
        version = r.get("features_version")
        if version is not None and version >= 0:
            made_by[version] = f"publish of as-of {r['span_start']}..{r['span_end']}"
    if lake.table_exists(spark, ROLLBACKS):
        for r in lake.read_table(spark, ROLLBACKS).where(f"`table` = '{table}'").collect():
            made_by[r["new_version"]] = (f"rollback {r['from_version']} -> {r['to_version']} by {r['operator']}: "
                                         f"{r['reason']}")
    return [{"version": int(r["version"]),
             "committed_at": (epoch + dt.timedelta(microseconds=r["micros"])).isoformat(timespec="seconds"),
             "operation": r["operation"], "run": made_by.get(int(r["version"]), "")}
            for r in sorted(rows, key=lambda r: r["version"])]


def history_lines(entries: list[dict]) -> list[str]:
    """A table for the console, the current version marked."""
    lines = [f"{'version':>7}  {'committed_at (UTC)':<25}  {'operation':<18}  run"]
    for i, e in enumerate(entries):
        mark = "  (current)" if i == len(entries) - 1 else ""
        lines.append(f"{e['version']:>7}  {e['committed_at']:<25}  {e['operation']:<18}  {e['run']}{mark}")
    return lines


# --- the command --------------------------------------------------------------------------------


def command(table: str | None, to_version: int | None, to_timestamp: str | None, reason: str | None,
            list_versions: bool = False) -> int:
    """`featurepipe rollback`: arguments checked before Spark starts; progress and summary printed."""
    from featurepipe.command_log import open_command_log
    from featurepipe.spark import get_spark

    group_for_table(table)
    if list_versions:
        if to_version is not None or to_timestamp is not None or reason is not None:
            raise RollbackError("--list only lists the versions: give it with --table alone")
        print(f"[rollback] library output (Spark) goes to {open_command_log('rollback')}", flush=True)
        for line in history_lines(history(get_spark("featurepipe-rollback"), table)):
            print(line)
        return 0
    timestamp = check_target_args(to_version, to_timestamp)
    reason = check_reason(reason)
    print(f"[rollback] library output (Spark, Feast) goes to {open_command_log('rollback')}", flush=True)
    result = rollback(get_spark("featurepipe-rollback"), table, reason, to_version=to_version, to_timestamp=timestamp,
                      say=lambda line: print(line, flush=True))
    for line in result.summary():
        print(line)
    return 0
