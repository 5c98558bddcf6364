"""What a Delta table holds, read from its transaction log in this process: no Spark job.

`newest_partition` answers "the newest value of a partition column among the table's live files"
(the catalog's newest published as-of) by replaying `_delta_log/` as the Delta protocol describes:
the newest complete checkpoint (classic, multi-part or V2 with sidecars), then every JSON commit
after it, add and remove actions reconciled by (path, deletion vector). A file whose statistics say
it has no live row (empty, or every row deleted by its deletion vector) holds no partition value.
`table_size`, `partition_columns` and `newest_commit` answer what `DESCRIBE DETAIL` and
`DESCRIBE HISTORY` would, and `read_rows` reads a small table's live files (the bookkeeping
records, a few rows per run, where a Spark job costs far more than the read). It reads local paths
and `s3://` alike (pyarrow's filesystem of `featurepipe.storage`). Whatever it does not know how
to read (a reader feature it has not met, a log with gaps, a column that is not a partition
column, a deletion vector in a table read whole) raises `Unsupported`: the caller then asks
Spark, never guesses.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

LOG = "_delta_log"
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT_SINGLE = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_CHECKPOINT_PART = re.compile(r"^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$")
_CHECKPOINT_V2 = re.compile(r"^(\d{20})\.checkpoint\.[0-9a-fA-F-]{36}\.(json|parquet)$")
# reader features whose tables this replay reads correctly (the rest: `Unsupported`)
KNOWN_READER_FEATURES = {"deletionVectors", "columnMapping", "timestampNtz", "typeWidening", "typeWidening-preview",
                         "v2Checkpoint", "vacuumProtocolCheck", "variantType", "variantType-preview"}


class Unsupported(RuntimeError):
    """A log this replay cannot read with certainty; ask Spark instead."""


@dataclass
class Snapshot:
    version: int
    files: dict[tuple[str, str], dict] = field(default_factory=dict)  # (path, deletion vector id) -> add action
    metadata: dict | None = None
    protocol: dict | None = None


def newest_partition(uri: str, column: str) -> str | None:
    """The largest non-null value of partition `column` among the live, non-empty files of the Delta
    table at `uri` (a local path or s3://); None if the table does not exist or holds no row."""
    snapshot = read_snapshot(uri)
    if snapshot is None:
        return None
    physical = _physical_name(snapshot.metadata or {}, column)
    values = [as_dict(add.get("partitionValues")).get(physical) for add in snapshot.files.values() if _has_rows(add)]
    values = [v for v in values if v not in (None, "")]
    return max(values) if values else None


def newest_date(uri: str, column: str) -> dt.date | None:
    """`newest_partition` of a date-typed partition column, as a date."""
    value = newest_partition(uri, column)
    return dt.date.fromisoformat(value) if value else None


def table_size(uri: str) -> int | None:
    """Bytes of the live files of the Delta table at `uri` (Spark's `DESCRIBE DETAIL` sizeInBytes); None if no table."""
    snapshot = read_snapshot(uri)
    return None if snapshot is None else sum(int(add.get("size") or 0) for add in snapshot.files.values())


def partition_columns(uri: str) -> list[str] | None:
    """The table's partition columns (logical names), from its newest metadata; None if no table."""
    snapshot = read_snapshot(uri)
    return None if snapshot is None else list((snapshot.metadata or {}).get("partitionColumns") or [])


def newest_commit(uri: str) -> tuple[int, dict] | None:
    """(version, commitInfo) of the newest commit of the Delta table at `uri` (what `DESCRIBE HISTORY`
    shows first); None if `uri` holds no Delta log. A commit without commitInfo raises `Unsupported`."""
    from pyarrow import fs as pafs

    from featurepipe.storage import filesystem

    filesystem_, root = filesystem(uri)
    log = f"{root}/{LOG}"
    listed = filesystem_.get_file_info(pafs.FileSelector(log, allow_not_found=True, recursive=False))
    commits = [int(m.group(1)) for info in listed if (m := _COMMIT.match(info.base_name))]
    if not commits:
        return None
    version = max(commits)
    with filesystem_.open_input_stream(f"{log}/{version:020d}.json") as stream:
        for line in stream.read().decode("utf-8").splitlines():
            if line.strip() and "commitInfo" in (action := json.loads(line)):
                return version, action["commitInfo"]
    raise Unsupported(f"{log}: commit {version} has no commitInfo")


def read_rows(uri: str) -> list[dict] | None:
    """Every live row of the small, unpartitioned Delta table at `uri` (the pipeline's bookkeeping
    records), read from its log and Parquet files in this process: no Spark job. None if `uri` holds
    no Delta log. Values as Spark's `collect` gives them (dates as `datetime.date`), except
    timestamps: naive `datetime`s in UTC. A column added by a later schema merge is None in the rows
    of files written before it. A partitioned table, a deletion vector or column mapping raises
    `Unsupported`."""
    from concurrent.futures import ThreadPoolExecutor

    from featurepipe.storage import filesystem

    snapshot = read_snapshot(uri)
    if snapshot is None:
        return None
    metadata = snapshot.metadata or {}
    if metadata.get("partitionColumns"):
        raise Unsupported(f"{uri}: a partitioned table (read it with Spark)")
    if as_dict(metadata.get("configuration")).get("delta.columnMapping.mode", "none") != "none":
        raise Unsupported(f"{uri}: column mapping")
    if any(add.get("deletionVector") for add in snapshot.files.values()):
        raise Unsupported(f"{uri}: deletion vectors")
    columns = [f["name"] for f in json.loads(metadata.get("schemaString") or "{}").get("fields", [])]
    filesystem_, root = filesystem(uri)
    paths = [path if "://" in path else f"{root}/{path}" for (path, _), add in snapshot.files.items() if _has_rows(add)]

    def rows_of(path: str) -> list[dict]:
        fs_, inner = filesystem(path) if "://" in path else (filesystem_, path)
        return _plain_rows(fs_, inner, columns)

    with ThreadPoolExecutor(max_workers=min(16, max(1, len(paths)))) as pool:
        return [row for rows in pool.map(rows_of, paths) for row in rows]


def _plain_rows(filesystem_, path: str, columns: list[str]) -> list[dict]:
    """One data file's rows over `columns` (absent columns None; timestamps as naive UTC microseconds)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with filesystem_.open_input_file(path) as handle:
            table = pq.ParquetFile(handle).read()
    except FileNotFoundError as exc:
        raise Unsupported(f"{path}: a file the log lists is gone ({exc})") from exc
    for i, field_ in enumerate(table.schema):
        if pa.types.is_timestamp(field_.type):  # INT96 reads as nanoseconds: pandas Timestamps in to_pylist
            table = table.set_column(i, field_.name, table.column(i).cast(pa.timestamp("us")))
    present = set(table.column_names)
    return [{c: row.get(c) if c in present else None for c in columns} for row in table.to_pylist()]


def read_snapshot(uri: str) -> Snapshot | None:
    """The table's newest snapshot (live files, metadata, protocol); None if `uri` holds no Delta log."""
    from pyarrow import fs as pafs

    from featurepipe.storage import filesystem

    filesystem_, root = filesystem(uri)
    log = f"{root}/{LOG}"
    listed = filesystem_.get_file_info(pafs.FileSelector(log, allow_not_found=True, recursive=False))
    names = {info.base_name for info in listed if info.type == pafs.FileType.File}
    commits = sorted(int(m.group(1)) for m in map(_COMMIT.match, names) if m)
    if not commits:
        return None
    checkpoint_version, checkpoint_files = _newest_checkpoint(names, commits[-1])
    start = checkpoint_version + 1 if checkpoint_files else 0
    wanted = list(range(start, commits[-1] + 1))
    if [c for c in commits if c >= start] != wanted:
        raise Unsupported(f"{log}: commits {start}..{commits[-1]} are not all there (a log cleaned up "
                          "without a checkpoint, or a commit being written)")
    snapshot = Snapshot(version=commits[-1])
    for name in checkpoint_files:
        _apply_checkpoint(snapshot, filesystem_, log, name)
    for version in wanted:
        with filesystem_.open_input_stream(f"{log}/{version:020d}.json") as stream:
            for line in stream.read().decode("utf-8").splitlines():
                if line.strip():
                    _apply(snapshot, json.loads(line))
    _check_protocol(snapshot, log)
    return snapshot


def _newest_checkpoint(names: set[str], newest_commit: int) -> tuple[int, list[str]]:
    """(version, file names) of the newest complete checkpoint at or before `newest_commit`; (-1, []) if none."""
    found: dict[int, list[list[str]]] = {}
    parts: dict[tuple[int, int], set[int]] = {}
    for name in names:
        if m := _CHECKPOINT_SINGLE.match(name) or _CHECKPOINT_V2.match(name):
            found.setdefault(int(m.group(1)), []).append([name])
        elif m := _CHECKPOINT_PART.match(name):
            parts.setdefault((int(m.group(1)), int(m.group(3))), set()).add(int(m.group(2)))
    for (version, total), got in parts.items():
        if got == set(range(1, total + 1)):  # a multi-part checkpoint counts only when every part is there
            found.setdefault(version, []).append(
                [f"{version:020d}.checkpoint.{i:010d}.{total:010d}.parquet" for i in range(1, total + 1)])
    usable = [v for v in found if v <= newest_commit]
    if not usable:
        return -1, []
    version = max(usable)
    return version, sorted(found[version], key=len)[0]  # any complete one of that version will do


def _apply_checkpoint(snapshot: Snapshot, filesystem_, log: str, name: str) -> None:
    """A checkpoint's live files, metadata and protocol (its removes are tombstones of earlier versions);
    a V2 checkpoint's sidecar files add their files too."""
    path = f"{log}/{name}"
    if name.endswith(".json"):
        with filesystem_.open_input_stream(path) as stream:
            actions = [json.loads(line) for line in stream.read().decode("utf-8").splitlines() if line.strip()]
    else:
        actions = _parquet_actions(filesystem_, path, ("add", "metaData", "protocol", "sidecar"))
    for action in actions:
        if action.get("sidecar"):
            sidecar = unquote(action["sidecar"]["path"].rsplit("/", 1)[-1])
            for inner in _parquet_actions(filesystem_, f"{log}/_sidecars/{sidecar}", ("add",)):
                _apply(snapshot, inner)
        elif action.get("add") or action.get("metaData") or action.get("protocol"):
            _apply(snapshot, action)


def _parquet_actions(filesystem_, path: str, columns: tuple[str, ...]) -> list[dict]:
    import pyarrow.parquet as pq

    with filesystem_.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        rows = parquet.read(columns=present).to_pylist()
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def _apply(snapshot: Snapshot, action: dict) -> None:
    if "add" in action:
        add = action["add"]
        snapshot.files[_key(add)] = add
    elif "remove" in action:
        snapshot.files.pop(_key(action["remove"]), None)
    elif "metaData" in action:
        snapshot.metadata = action["metaData"]
    elif "protocol" in action:
        snapshot.protocol = action["protocol"]


def _key(action: dict) -> tuple[str, str]:
    """Delta's primary key of a file action: its (decoded) path and its deletion vector's unique id."""
    dv = action.get("deletionVector") or {}
    dv_id = ""
    if dv:
        dv_id = f"{dv.get('storageType')}{dv.get('pathOrInlineDv')}"
        if dv.get("offset") is not None:
            dv_id += f"@{dv['offset']}"
    return unquote(action["path"]), dv_id


def _has_rows(add: dict) -> bool:
    """False only when the file's statistics say no row of it is live; unknown counts as rows."""
    stats = add.get("stats")
    if not stats:
        return True
    records = json.loads(stats).get("numRecords")
    if records is None:
        return True
    deleted = (add.get("deletionVector") or {}).get("cardinality") or 0
    return records - deleted > 0


def _check_protocol(snapshot: Snapshot, log: str) -> None:
    protocol = snapshot.protocol or {}
    reader = int(protocol.get("minReaderVersion", 1))
    features = set(protocol.get("readerFeatures") or ())
    if reader > 3 or features - KNOWN_READER_FEATURES:
        raise Unsupported(f"{log}: reader version {reader} with features {sorted(features)} is not one this "
                          "log replay knows")
    if snapshot.metadata is None:
        raise Unsupported(f"{log}: no metaData action found")


def _physical_name(metadata: dict, column: str) -> str:
    """The name partition values are stored under: the column's own, or its physical name under column mapping."""
    if column not in (metadata.get("partitionColumns") or []):
        raise Unsupported(f"{column!r} is not a partition column of the table (its partition columns: "
                          f"{metadata.get('partitionColumns')})")
    mode = as_dict(metadata.get("configuration")).get("delta.columnMapping.mode", "none")
    if mode == "none":
        return column
    for f in json.loads(metadata.get("schemaString") or "{}").get("fields", []):
        if f.get("name") == column:
            return (f.get("metadata") or {}).get("delta.columnMapping.physicalName", column)
    raise Unsupported(f"column {column!r} is not in the table's schema")


def as_dict(value) -> dict:
    """A partition-values map: a dict in JSON commits, a list of (key, value) pairs from a Parquet checkpoint."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else dict(value)
