"""Reproducible training sets (SPEC §7): the feature table read at a pinned Delta version, and a
manifest beside every output that says how to get the same bytes again.

`featurepipe training-set --entities E --out O` reads the table's current version and records it;
`--as-of-version N` or `--as-of-timestamp TS` (the newest version committed at or before TS) read
an older one (Delta time travel, through the Feast source's reader options: `feast_store`).
`O.manifest.json` holds the features asked for, the table and version read, the entity file and its
hash, the output's row count and SHA-256, the command that reproduces it, and the featurepipe
version and git commit. `featurepipe training-set --manifest M --out O2` runs that command again
and checks the new file's hash against the manifest's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MANIFEST_SUFFIX = ".manifest.json"


class VersionError(ValueError):
    """A Delta version or timestamp the feature table does not have."""


class ManifestError(ValueError):
    """A manifest that cannot be reproduced as it stands (missing, changed or unreadable input)."""


@dataclass(frozen=True)
class Selection:
    """What a training set asks for: feature refs, or a feature service, or (both None) every feature."""

    features: list[str] | None = None
    feature_service: str | None = None

    def to_json(self) -> dict:
        return {"features": self.features, "feature_service": self.feature_service}

    def args(self) -> list[str]:
        if self.feature_service:
            return ["--feature-service", self.feature_service]
        return ["--features", ",".join(self.features)] if self.features else []


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(out: Path | str) -> Path:
    return Path(f"{out}{MANIFEST_SUFFIX}")


def table_versions(spark: SparkSession, table: str) -> list[tuple[int, dt.datetime]]:
    """(version, commit time in UTC) of every version of `table` still in its log, oldest first."""
    from delta.tables import DeltaTable

    from featurepipe import lake

    if not lake.table_exists(spark, table):
        raise VersionError(f"the feature table {lake.table_path(table)} does not exist yet: run `featurepipe backfill` first")
    # as epoch microseconds: a collected timestamp would come back in the Python process's local zone
    rows = (DeltaTable.forPath(spark, lake.table_path(table)).history()
            .selectExpr("version", "unix_micros(timestamp) AS micros").collect())
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return sorted((int(r["version"]), epoch + dt.timedelta(microseconds=r["micros"])) for r in rows)


def resolve_version(spark: SparkSession, table: str, version: int | None = None, timestamp: dt.datetime | None = None) -> int:
    """The version to read: `version` if the table has it, the newest committed at or before
    `timestamp`, or the current one; VersionError (one line) otherwise."""
    versions = table_versions(spark, table)
    numbers = [v for v, _ in versions]
    if version is not None:
        if version not in numbers:
            raise VersionError(f"the feature table has no version {version}: its log holds versions "
                               f"{numbers[0]}..{numbers[-1]}")
        return version
    if timestamp is not None:
        earlier = [v for v, at in versions if at <= timestamp]
        if not earlier:
            raise VersionError(f"the feature table has no version at or before {timestamp.isoformat()}: "
                               f"its first was committed at {versions[0][1].isoformat()}")
        return earlier[-1]
    return numbers[-1]


def git_commit() -> str | None:
    """The project's git commit (with `-dirty` when the checkout has changes), None outside git."""
    from featurepipe.settings import PROJECT_ROOT

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def reproduce_command(entities: Path, out: Path, selection: Selection, version: int) -> list[str]:
    return ["featurepipe", "training-set", "--entities", str(entities), "--out", str(out),
            *selection.args(), "--as-of-version", str(version)]


def write_manifest(out: Path, entities: Path, selection: Selection, table_path: str, version: int,
                   rows: int, argv: list[str], versions: dict[str, int] | None = None) -> dict:
    """Write `out`'s manifest (after `out` itself) and return it. `versions`: every feature table read
    and its version (a training set with product features reads the product table too)."""
    from importlib.metadata import version as package_version

    manifest = {
        **selection.to_json(),
        "table": table_path,
        "delta_version": version,
        "delta_versions": versions or {},
        "entities": {"path": str(entities.resolve()), "sha256": sha256_of(entities)},
        "entity_rows": rows,
        "out": str(out.resolve()),
        "sha256": sha256_of(out),
        "command": reproduce_command(entities.resolve(), out.resolve(), selection, version),
        "argv": ["featurepipe", *argv],
        "featurepipe_version": package_version("featurepipe"),
        "git_commit": git_commit(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest_path(out).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(path: Path) -> dict:
    """A manifest whose entity file is still the one it names (same SHA-256); ManifestError otherwise."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from None
    missing = [k for k in ("entities", "delta_version", "sha256", "features", "feature_service") if k not in manifest]
    if missing:
        raise ManifestError(f"the manifest {path} lacks {', '.join(missing)}")
    entities = Path(manifest["entities"]["path"])
    if not entities.exists():
        raise ManifestError(f"the manifest's entity file {entities} no longer exists")
    if sha256_of(entities) != manifest["entities"]["sha256"]:
        raise ManifestError(f"the entity file {entities} changed since the manifest was written (SHA-256 differs)")
    return manifest


def read_entities(path: Path):
    """The entity table of a Parquet or CSV file (join keys such as `user_id` read as text)."""
    import pandas as pd

    from featurepipe.spec import GROUPS

    if not path.exists():
        raise FileNotFoundError(f"entity file not found: {path}")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype={g.join_key: str for g in GROUPS})
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"entity file must be .parquet or .csv: {path}")


def make_training_set(args, argv: list[str]) -> dict:
    """`featurepipe training-set` (parsed `args`, the `argv` it was given): write the output and its
    manifest; returns the manifest. With `args.manifest`, the output must equal the one described."""
    from featurepipe import lake
    from featurepipe.feast_store import check_entities, training_set
    from featurepipe.spark import get_spark

    described = None
    if args.manifest:
        given = [name for name in ("entities", "features", "feature_service", "as_of_version", "as_of_timestamp")
                 if getattr(args, name) is not None]
        if given:
            raise ValueError(f"--manifest takes only --out: the manifest names the entities, features and version "
                             f"(drop --{given[0].replace('_', '-')})")
        described = read_manifest(Path(args.manifest))
        entities_path, version = Path(described["entities"]["path"]), described["delta_version"]
        selection = Selection(described["features"], described["feature_service"])
    elif not args.entities:
        raise ValueError("give --entities FILE (or --manifest FILE to reproduce a training set)")
    else:
        entities_path, version = Path(args.entities), args.as_of_version
        selection = Selection(args.features, args.feature_service)
    entities = read_entities(entities_path)
    check_entities(entities)  # a bad entity file fails before Spark starts
    print(f"[training-set] {len(entities)} entity rows from {entities_path}", flush=True)
    spark = get_spark("featurepipe-training-set")
    version = resolve_version(spark, lake.FEATURES, version, args.as_of_timestamp)
    print(f"[training-set] reading {lake.FEATURES} at Delta version {version}", flush=True)
    # every table read is pinned: a manifest's versions, else the user table's `version` and the
    # others' at --as-of-timestamp (or current); recorded so that --manifest reads the same rows
    result = training_set(entities, features=selection.features, feature_service=selection.feature_service,
                          as_of_version=version, as_of_timestamp=None if described else args.as_of_timestamp,
                          versions=(described or {}).get("delta_versions"))
    pinned = result.attrs.pop("delta_versions", {})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out, index=False)
    written = write_manifest(out, entities_path, selection, lake.table_path(lake.FEATURES), version, len(result), argv,
                             pinned)
    print(f"[training-set] wrote {len(result)} rows x {len(result.columns)} columns to {out}")
    print(f"[training-set] manifest {manifest_path(out)} (version {version}, sha256 {written['sha256'][:16]}…)")
    if described is not None:
        if written["sha256"] != described["sha256"]:
            raise ManifestError(f"{out} differs from the training set of {args.manifest} (sha256 {written['sha256'][:16]}… "
                                f"vs {described['sha256'][:16]}…): same entities and version, other code or libraries?")
        print(f"[training-set] reproduced: byte-identical to the output {args.manifest} describes")
    return written
