"""Where files live: local paths or `s3://` URIs, for pyarrow (driver side) and Spark (`s3a://`)."""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def spark_uri(uri: str) -> str:
    """The URI Spark reads and writes: `s3://` becomes `s3a://` (hadoop-aws); local paths stay."""
    return "s3a://" + uri[len("s3://"):] if uri.startswith("s3://") else uri


def filesystem(uri: str):
    """A pyarrow filesystem and the path inside it for `uri`."""
    from pyarrow import fs

    if is_s3(uri):
        parsed = urlparse(uri)
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        kwargs = {}
        if endpoint:
            endpoint_parsed = urlparse(endpoint)
            kwargs["endpoint_override"] = endpoint_parsed.netloc or endpoint
            kwargs["scheme"] = endpoint_parsed.scheme or "https"
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            kwargs["region"] = region
        return fs.S3FileSystem(**kwargs), f"{parsed.netloc}{parsed.path}".rstrip("/")
    return fs.LocalFileSystem(), os.path.abspath(uri)


@dataclass(frozen=True)
class FileInfo:
    path: str  # a URI in the scheme of the listed root
    size: int
    modified: datetime.datetime | None  # UTC


def _list_files(uri: str, keep) -> list[FileInfo]:
    """Files below `uri`, recursively, whose path relative to it passes `keep`, sorted by path."""
    from pyarrow import fs

    filesystem_, root = filesystem(uri)
    info = filesystem_.get_file_info(root)
    if info.type == fs.FileType.NotFound:
        return []
    selector = fs.FileSelector(root, recursive=True)
    prefix = f"{urlparse(uri).scheme}://" if is_s3(uri) else ""
    found = [
        FileInfo(prefix + i.path, i.size, _utc(i.mtime))
        for i in filesystem_.get_file_info(selector)
        if i.type == fs.FileType.File and keep(i.path[len(root):].strip("/"))
    ]
    return sorted(found, key=lambda f: f.path)


def is_hidden(parts) -> bool:
    """A path (its parts below the landing root) that readers skip: a `_` or `.` name anywhere."""
    return any(part.startswith(("_", ".")) for part in parts)


def list_parquet_file_info(uri: str) -> list[FileInfo]:
    """Every `*.parquet` file below `uri`, recursively (skipping `_`/`.` names), sorted by path."""
    return _list_files(uri, lambda rel: rel.endswith(".parquet") and not is_hidden(rel.split("/")))


LANDING_PARTITION = "landing_date"
COMPLETE_MARKER = "_SUCCESS"
_LANDING_FOLDER = re.compile(rf"^{LANDING_PARTITION}=(\d{{4}}-\d{{2}}-\d{{2}})$")


def landing_date_of(folder: str) -> datetime.date | None:
    """The date of a `landing_date=YYYY-MM-DD` folder name; None for any other name."""
    match = _LANDING_FOLDER.match(folder)
    return datetime.date.fromisoformat(match.group(1)) if match else None


def marked_landing_dates(uri: str) -> list[datetime.date]:
    """Landing dates under `uri` whose `landing_date=YYYY-MM-DD/_SUCCESS` marker says they are complete."""
    markers = _list_files(uri, lambda rel: rel.endswith(f"/{COMPLETE_MARKER}"))
    dates = (landing_date_of(f.path.rsplit("/", 2)[-2]) for f in markers)
    return sorted(d for d in dates if d is not None)


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=datetime.timezone.utc) if value.tzinfo is None else value.astimezone(datetime.timezone.utc)


def list_parquet_files(uri: str) -> list[str]:
    """Every `*.parquet` file below `uri`, recursively, as URIs in the same scheme, sorted."""
    return [f.path for f in list_parquet_file_info(uri)]
