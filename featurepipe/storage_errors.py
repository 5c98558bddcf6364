"""A lake that cannot be written (full disk, permission denied, read-only): one line naming the path.

Spark reports such a failure as a Py4J error whose Java stack, dozens of lines down, says
`No space left on device` or `Permission denied`; Python code raises an `OSError` with an errno.
`lake_write_error` finds either in an exception's chain and turns it into `LakeWriteError`, whose
message names the path and the cause; the step fails with it (and `featurepipe run` shows it as
its one-line reason). Delta commits atomically, so a write that failed this way changed no table.
"""

from __future__ import annotations

import errno
import re

# errno -> what a user reads
_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
}
# the same causes as the JVM (Hadoop's local file system, S3A) words them, the most precise first:
# Hadoop says only "Mkdirs failed" when it may not create a folder
_JAVA = (
    re.compile(r"No space left on device|Disk quota exceeded|Permission denied|Operation not permitted|Read-only file system"),
    re.compile(r"AccessDenied|403 Forbidden"),
    re.compile(r"Mkdirs failed to create"),
)
_JAVA_WORDS = {"accessdenied": "access denied", "403 forbidden": "access denied",
               "mkdirs failed to create": "the folder could not be created (no permission, or a read-only file system)"}
_PATH = re.compile(r"(?:file:|s3a?://)?(/[^\s'\"(),;]+)")


class LakeWriteError(RuntimeError):
    """The lake (or a file beside it) could not be written; nothing was committed."""


def lake_write_error(exc: BaseException, lake_uri: str) -> LakeWriteError | None:
    """A LakeWriteError for `exc` if a storage failure is somewhere in its chain, else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ERRNOS:
            return _error(str(current.filename or lake_uri), _ERRNOS[current.errno], lake_uri)
        text = str(current)
        found = next((m for m in (pattern.search(text) for pattern in _JAVA) if m), None)
        if found:
            phrase = found.group(0).lower()
            return _error(_path_in(text, lake_uri), _JAVA_WORDS.get(phrase, phrase), lake_uri)
        current = current.__cause__ or current.__context__
    return None


def _error(path: str, reason: str, lake_uri: str) -> LakeWriteError:
    where = f"the lake at {lake_uri}" if path == lake_uri else f"{path} (lake: {lake_uri})"
    return LakeWriteError(f"cannot write {where}: {reason}; nothing was committed")


def _path_in(text: str, lake_uri: str) -> str:
    """The first path under the lake named in a Java error's text (its innermost cause first), else the lake."""
    root = lake_uri.split("://", 1)[-1].rstrip("/")
    lines = text.splitlines()
    causes = [line for line in lines if "Caused by:" in line and any(pattern.search(line) for pattern in _JAVA)]
    for line in [*reversed(causes), *lines]:
        for match in _PATH.finditer(line):
            path = match.group(1).rstrip(".")
            if path.startswith(root):
                return path
    return lake_uri
