"""Where files live: local paths or `s3://` URIs, for Python (driver side) and Spark (`s3a://`).

On S3, Python code lists, uploads, marks and deletes through boto3; pyarrow reads Parquet
contents (schemas, footers, a column) through its S3 filesystem, configured from what boto3
resolved. Either way the endpoint, region and credentials come from the standard AWS chain alone
(`AWS_ENDPOINT_URL` for an S3-compatible server, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
`AWS_PROFILE`, a role), never from featurepipe's own settings. Spark reads the same locations
as `s3a://` with the JVM's default AWS chain (`featurepipe.spark.s3a_conf`).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def spark_uri(uri: str) -> str:
    """The URI Spark reads and writes: `s3://` becomes `s3a://` (hadoop-aws); local paths stay."""
    return "s3a://" + uri[len("s3://"):] if uri.startswith("s3://") else uri


def filesystem(uri: str):
    """A pyarrow filesystem and the path inside it for `uri` (for reading Parquet contents; on S3
    configured from boto3's endpoint, region and credentials, `S3Access.pyarrow`)."""
    from pyarrow import fs

    if is_s3(uri):
        bucket, key = split_s3(uri)
        return s3_access().pyarrow(), f"{bucket}/{key}".rstrip("/")
    return fs.LocalFileSystem(), os.path.abspath(uri)


# --- S3 through boto3 ----------------------------------------------------------------------------


class StorageError(RuntimeError):
    """An S3 location that cannot be used (no bucket, refused or missing credentials, no endpoint)."""


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`)."""
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise StorageError(f"{uri}: an S3 URI needs a bucket (s3://bucket/prefix)")
    return parsed.netloc, parsed.path.strip("/")


def s3_join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


# the variables of the AWS chain that change what a client connects to, or as whom: a client is
# reused while they are unchanged (a test, or the Spark server's next request, may change them)
_CHAIN_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
                    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                    "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
_AWS_HOSTS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


@dataclass(frozen=True)
class S3Access:
    """A boto3 client and what boto3 resolved from the AWS chain: the endpoint (None: AWS's own)
    and the region. Secrets stay inside the boto3 session; nothing here prints them."""

    client: object
    session: object
    endpoint: str | None  # a custom endpoint (AWS_ENDPOINT_URL, a profile's endpoint_url), else None
    region: str

    def pyarrow(self):
        """A pyarrow S3 filesystem that reaches what the client reaches, as the same identity."""
        from pyarrow import fs

        kwargs: dict = {"region": self.region}
        if self.endpoint:
            parsed = urlparse(self.endpoint)
            kwargs.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
        credentials = self.session.get_credentials()  # refreshed by boto3 when temporary
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            kwargs.update(access_key=frozen.access_key, secret_key=frozen.secret_key)
            if frozen.token:
                kwargs["session_token"] = frozen.token
        return fs.S3FileSystem(**kwargs)


def s3_access() -> S3Access:
    """The process's S3 access for the current AWS environment (built once per distinct environment)."""
    return _s3_access(tuple(os.environ.get(name) for name in _CHAIN_VARIABLES))


@functools.lru_cache(maxsize=4)
def _s3_access(_environment: tuple) -> S3Access:
    import boto3

    session = boto3.session.Session()
    client = session.client("s3")
    endpoint = client.meta.endpoint_url
    host = urlparse(endpoint).hostname or ""
    custom = None if host.endswith(_AWS_HOSTS) else endpoint.rstrip("/")
    return S3Access(client, session, custom, client.meta.region_name or "us-east-1")


@contextlib.contextmanager
def s3_errors(uri: str, doing: str) -> Iterator[None]:
    """Turn boto3's errors while `doing` something at `uri` into one-line StorageErrors naming the cause."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, PartialCredentialsError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
        raise StorageError(_client_error(uri, doing, code, error.get("Message") or "")) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise StorageError(f"cannot {doing} {uri}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the machine a role)") from None
    except EndpointConnectionError:
        raise StorageError(f"cannot {doing} {uri}: the S3 endpoint {s3_access().endpoint or 'of AWS'} does not "
                           "answer (AWS_ENDPOINT_URL)") from None


def _client_error(uri: str, doing: str, code: str, message: str) -> str:
    bucket = urlparse(uri).netloc
    if code == "NoSuchBucket":
        return f"cannot {doing} {uri}: the S3 bucket '{bucket}' does not exist (create it, or fix the URI)"
    if code == "InvalidAccessKeyId":
        return f"cannot {doing} {uri}: S3 does not know the access key (check AWS_ACCESS_KEY_ID or the AWS profile)"
    if code == "SignatureDoesNotMatch":
        return (f"cannot {doing} {uri}: S3 refused the credentials' signature (a wrong AWS_SECRET_ACCESS_KEY "
                "for the access key?)")
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
        return f"cannot {doing} {uri}: the AWS session token is expired or invalid (AWS_SESSION_TOKEN)"
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return f"cannot {doing} {uri}: access denied (the AWS identity may not {doing} there)"
    return f"cannot {doing} {uri}: S3 answered {code}{': ' + message if message else ''}"


def s3_check(uri: str, doing: str) -> None:
    """Fail now, with the reason, if `uri`'s bucket is missing or refuses these credentials (a LIST
    answers with a precise error code, where a HEAD says only 403 or 404)."""
    bucket, prefix = split_s3(uri)
    with s3_errors(uri, doing):
        s3_access().client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)


def s3_head(uri: str) -> dict | None:
    """An object's HEAD (size, ETag, metadata), None if there is no such object."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3(uri)
    with s3_errors(uri, "read"):
        try:
            return s3_access().client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
    s3_check(uri, "read")  # a missing bucket is an error, not "no such object"
    return None


def s3_upload(local: Path, uri: str, sha256: str) -> None:
    """Upload a file (multipart when large), its sha256 in the object's metadata (`x-amz-meta-sha256`).
    An S3 PUT is atomic: no reader ever sees part of the object."""
    bucket, key = split_s3(uri)
    with s3_errors(uri, "write"):
        s3_access().client.upload_file(str(local), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}})


def s3_put(uri: str, body: bytes, content_type: str = "application/octet-stream") -> None:
    bucket, key = split_s3(uri)
    with s3_errors(uri, "write"):
        s3_access().client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def s3_read(uri: str) -> Iterator[bytes]:
    """An object's bytes, in chunks."""
    bucket, key = split_s3(uri)
    with s3_errors(uri, "read"):
        body = s3_access().client.get_object(Bucket=bucket, Key=key)["Body"]
        yield from body.iter_chunks(1 << 20)


def s3_delete_prefix(uri: str) -> int:
    """Delete every object below `uri` (a folder); returns how many."""
    bucket = split_s3(uri)[0]
    client = s3_access().client
    keys = [obj.key for obj in _s3_objects(uri, folder_markers=True)]
    with s3_errors(uri, "delete"):
        for i in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at a time
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StorageError(f"cannot delete s3://{bucket}/{first['Key']}: {first.get('Code')} "
                                   f"({len(answer['Errors'])} objects below {uri} not deleted)")
    return len(keys)


@dataclass(frozen=True)
class _Object:
    key: str
    size: int
    modified: datetime.datetime


def _s3_objects(uri: str, folder_markers: bool = False) -> list[_Object]:
    """Every object below `uri` taken as a folder (`prefix/`, so `a/b` never lists `a/bc`); the empty
    `…/` objects that s3a and other tools write as folder markers only if `folder_markers`."""
    bucket, prefix = split_s3(uri)
    start = f"{prefix}/" if prefix else ""
    found = []
    with s3_errors(uri, "list"):
        for page in s3_access().client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
            found += [_Object(o["Key"], o["Size"], o["LastModified"]) for o in page.get("Contents", ())
                      if folder_markers or not o["Key"].endswith("/")]
    return found


@dataclass(frozen=True)
class FileInfo:
    path: str  # a URI in the scheme of the listed root
    size: int
    modified: datetime.datetime | None  # UTC


def _list_files(uri: str, keep) -> list[FileInfo]:
    """Files below `uri`, recursively, whose path relative to it passes `keep`, sorted by path."""
    from pyarrow import fs

    if is_s3(uri):
        scheme, bucket, prefix = urlparse(uri).scheme, *split_s3(uri)
        skip = len(prefix) + 1 if prefix else 0
        found = [FileInfo(f"{scheme}://{bucket}/{o.key}", o.size, _utc(o.modified))
                 for o in _s3_objects(uri) if keep(o.key[skip:])]
        return sorted(found, key=lambda f: f.path)
    filesystem_, root = filesystem(uri)
    info = filesystem_.get_file_info(root)
    if info.type == fs.FileType.NotFound:
        return []
    selector = fs.FileSelector(root, recursive=True)
    found = [
        FileInfo(i.path, i.size, _utc(i.mtime))
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
