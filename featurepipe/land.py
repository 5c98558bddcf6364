"""`featurepipe land`: put local Parquet landings into the landing zone and declare days complete.

A producer's day goes to `$FEATUREPIPE_RAW_URI/transactions/landing_date=D/`, and once all of its
files are there, `landing_date=D/_SUCCESS` says the day is complete: the daily DAG's sensor and the
backfill range check then go by markers instead of guessing from the newest event
(`featurepipe.landing`). A day without events is a marker alone.

- The landing date of a file is the `landing_date=YYYY-MM-DD` folder it sits in under `--from`,
  or `--date` for files outside such folders.
- Every file's schema is checked before anything is copied (a bad file: nothing lands).
- A file already in the zone with the same size and checksum is skipped; a changed one replaces it
  (a re-delivery, deduplicated by `validate_raw` like any landing). The checksum is the file's
  SHA-256: on S3 every upload stores it in the object's metadata (`x-amz-meta-sha256`), so the
  comparison reads no object; an object that came another way (no such metadata) is compared by
  its ETag where that is the MD5 of its bytes (a single-part upload: 32 hex digits), else by
  reading it back.
- Files are written under a hidden name and renamed (local zones) or with one PUT (S3, through
  boto3: atomic), so no reader sees half a file; the marker is written last, after every file of
  its day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from featurepipe.storage import (
    COMPLETE_MARKER,
    LANDING_PARTITION,
    filesystem,
    is_hidden,
    is_s3,
    landing_date_of,
    s3_check,
    s3_head,
    s3_join,
    s3_put,
    s3_read,
    s3_upload,
)

if TYPE_CHECKING:
    from featurepipe.spec import Source

_CHUNK = 1 << 20


class LandingError(ValueError):
    """A file that cannot land (no landing date, bad schema): nothing was copied."""


@dataclass
class Landed:
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    marked: list[dt.date] = field(default_factory=list)

    def summary(self) -> str:
        dates = ", ".join(d.isoformat() for d in self.marked) or "none"
        return (f"{len(self.copied)} files copied, {len(self.unchanged)} already landed; "
                f"marked complete: {dates}")


def plan(source_dir: Path, date: dt.date | None) -> dict[dt.date, list[tuple[Path, str]]]:
    """{landing date: [(local file, path under landing_date=D/)]}; LandingError for a file with no date."""
    files = sorted(
        p for p in source_dir.rglob("*.parquet") if p.is_file() and not is_hidden(p.relative_to(source_dir).parts)
    )
    planned: dict[dt.date, list[tuple[Path, str]]] = {}
    if date is not None:
        planned[date] = []
    for path in files:
        parts = path.relative_to(source_dir).parts
        folders = [i for i, part in enumerate(parts[:-1]) if landing_date_of(part)]
        if folders:
            i = folders[-1]
            day, inner = landing_date_of(parts[i]), "/".join(parts[i + 1:])
        elif date is not None:
            day, inner = date, "/".join(parts)
        else:
            raise LandingError(f"{path}: not under a {LANDING_PARTITION}=YYYY-MM-DD folder; pass --date for such files")
        planned.setdefault(day, []).append((path, inner))
    return planned


def _sha256(read: Callable[[], object]) -> str:
    digest = hashlib.sha256()
    with read() as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Local:
    """A file to land: its size and checksums, read once."""

    path: Path
    size: int
    sha256: str
    md5: str

    @classmethod
    def of(cls, path: Path) -> _Local:
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                sha.update(chunk)
                md5.update(chunk)
        return cls(path, path.stat().st_size, sha.hexdigest(), md5.hexdigest())


class _LocalZone:
    """A landing zone on a local (or mounted) file system."""

    def __init__(self, uri: str) -> None:
        self.fs, self.root = filesystem(uri)

    def where(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def same(self, rel: str, local: _Local) -> bool:
        from pyarrow import fs as pafs

        target = self.where(rel)
        info = self.fs.get_file_info(target)
        if info.type != pafs.FileType.File or info.size != local.size:
            return False
        return _sha256(lambda: self.fs.open_input_stream(target)) == local.sha256

    def copy(self, local: _Local, rel: str) -> None:
        """Write under a hidden name, then rename: no reader sees a partial file."""
        directory, name = self.where(rel).rsplit("/", 1)
        self.fs.create_dir(directory, recursive=True)
        staging = f"{directory}/.{name}.landing"
        with local.path.open("rb") as src, self.fs.open_output_stream(staging) as out:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
        self.fs.move(staging, self.where(rel))

    def mark(self, rel: str, body: bytes) -> None:
        directory = self.where(rel).rsplit("/", 1)[0]
        self.fs.create_dir(directory, recursive=True)
        with self.fs.open_output_stream(self.where(rel)) as out:
            out.write(body)


_PLAIN_MD5_ETAG = re.compile(r"[0-9a-f]{32}")


class _S3Zone:
    """A landing zone on S3 (or an S3-compatible server), through boto3."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        s3_check(uri, "land files in")  # no bucket, or refused credentials: say so before the first file

    def where(self, rel: str) -> str:
        return s3_join(self.uri, rel)

    def same(self, rel: str, local: _Local) -> bool:
        head = s3_head(self.where(rel))
        if head is None or head["ContentLength"] != local.size:
            return False
        stored = head.get("Metadata", {}).get("sha256")
        if stored:  # written by `featurepipe land` or `generate`
            return stored == local.sha256
        etag = head.get("ETag", "").strip('"')
        if _PLAIN_MD5_ETAG.fullmatch(etag):  # a single-part upload's ETag is its MD5 (not under SSE-KMS: then
            return etag == local.md5  # it differs, and the file is uploaded again: never a wrong skip)
        digest = hashlib.sha256()  # a multipart upload by another tool: read it back
        for chunk in s3_read(self.where(rel)):
            digest.update(chunk)
        return digest.hexdigest() == local.sha256

    def copy(self, local: _Local, rel: str) -> None:
        s3_upload(local.path, self.where(rel), local.sha256)

    def mark(self, rel: str, body: bytes) -> None:
        s3_put(self.where(rel), body, content_type="application/json")


def land(source_dir: Path, transactions_uri: str, date: dt.date | None = None, complete: bool = True,
         progress: Callable[[str], None] = print, source: Source | None = None) -> Landed:
    """Copy the Parquet files under `source_dir` into the landing zone `transactions_uri` (the
    source's folder: `$FEATUREPIPE_RAW_URI/<source>`) and mark their days complete; every file's
    schema is checked against `source` (default: the transactions) first."""
    import pyarrow.parquet as pq

    from featurepipe.raw import plan_file
    from featurepipe.spec import TRANSACTIONS

    if not source_dir.is_dir():
        raise LandingError(f"--from {source_dir}: not a folder")
    planned = plan(source_dir, date)
    if not planned:
        raise LandingError(f"no Parquet files under {source_dir} (pass --date to mark a day without events complete)")
    for files in planned.values():  # every schema first: one bad file and nothing lands
        for path, _ in files:
            try:
                schema = pq.read_schema(path)
            except Exception as exc:
                raise LandingError(f"{path}: cannot read Parquet schema: {exc}") from None
            plan_file(str(path), schema, source or TRANSACTIONS)
    zone = _S3Zone(transactions_uri) if is_s3(transactions_uri) else _LocalZone(transactions_uri)
    result = Landed()
    for day in sorted(planned):
        folder = f"{LANDING_PARTITION}={day.isoformat()}"
        rows = 0
        for path, inner in planned[day]:
            rel = f"{folder}/{inner}"
            rows += pq.ParquetFile(path).metadata.num_rows
            local = _Local.of(path)
            if zone.same(rel, local):
                result.unchanged.append(zone.where(rel))
                continue
            zone.copy(local, rel)
            result.copied.append(zone.where(rel))
            progress(f"[land] {path} -> {transactions_uri}/{rel}")
        if complete:
            zone.mark(f"{folder}/{COMPLETE_MARKER}",
                      json.dumps({"landing_date": day.isoformat(), "files": len(planned[day]), "rows": rows,
                                  "marked_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode())
            result.marked.append(day)
            progress(f"[land] {LANDING_PARTITION}={day}: {len(planned[day])} files, {rows} rows, marked complete")
    return result
