"""`featurepipe land`: put local Parquet landings into the landing zone and declare days complete.

A producer's day goes to `$FEATUREPIPE_RAW_URI/transactions/landing_date=D/`, and once all of its
files are there, `landing_date=D/_SUCCESS` says the day is complete: the daily DAG's sensor and the
backfill range check then go by markers instead of guessing from the newest event
(`featurepipe.landing`). A day without events is a marker alone.

- The landing date of a file is the `landing_date=YYYY-MM-DD` folder it sits in under `--from`,
  or `--date` for files outside such folders.
- Every file's schema is checked before anything is copied (a bad file: nothing lands).
- A file already in the zone with the same size and checksum is skipped; a changed one replaces it
  (a re-delivery, deduplicated by `validate_raw` like any landing).
- Files are written under a hidden name and renamed (local zones), so no reader sees half a file;
  the marker is written last, after every file of its day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from featurepipe.storage import COMPLETE_MARKER, LANDING_PARTITION, filesystem, is_hidden, landing_date_of

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


def _same(fs, target: str, local: Path) -> bool:
    from pyarrow import fs as pafs

    info = fs.get_file_info(target)
    if info.type != pafs.FileType.File or info.size != local.stat().st_size:
        return False
    return _sha256(lambda: fs.open_input_stream(target)) == _sha256(lambda: local.open("rb"))


def _copy(fs, local: Path, target: str) -> None:
    """Write `local` to `target` so that no reader sees a partial file."""
    directory, name = target.rsplit("/", 1)
    fs.create_dir(directory, recursive=True)
    local_zone = type(fs).__name__ == "LocalFileSystem"
    staging = f"{directory}/.{name}.landing" if local_zone else target  # an S3 PUT is atomic already
    with local.open("rb") as src, fs.open_output_stream(staging) as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
    if staging != target:
        fs.move(staging, target)


def land(source_dir: Path, transactions_uri: str, date: dt.date | None = None, complete: bool = True,
         progress: Callable[[str], None] = print) -> Landed:
    """Copy the Parquet files under `source_dir` into the landing zone and mark their days complete."""
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
            plan_file(str(path), schema, TRANSACTIONS)
    fs, root = filesystem(transactions_uri)
    result = Landed()
    for day in sorted(planned):
        folder = f"{root}/{LANDING_PARTITION}={day.isoformat()}"
        rows = 0
        for path, inner in planned[day]:
            target = f"{folder}/{inner}"
            rows += pq.ParquetFile(path).metadata.num_rows
            if _same(fs, target, path):
                result.unchanged.append(target)
                continue
            _copy(fs, path, target)
            result.copied.append(target)
            progress(f"[land] {path} -> {transactions_uri}/{LANDING_PARTITION}={day}/{inner}")
        if complete:
            fs.create_dir(folder, recursive=True)
            with fs.open_output_stream(f"{folder}/{COMPLETE_MARKER}") as out:
                out.write(json.dumps({"landing_date": day.isoformat(), "files": len(planned[day]), "rows": rows,
                                      "marked_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode())
            result.marked.append(day)
            progress(f"[land] {LANDING_PARTITION}={day}: {len(planned[day])} files, {rows} rows, marked complete")
    return result
