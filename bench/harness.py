"""Shared set-up for the benchmarks: an isolated data dir, a warm Spark session, timed pipeline runs."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def using(root: Path) -> Iterator[Path]:
    """FEATUREPIPE_DATA_DIR = root (raw and lake below it) while inside; the previous values after."""
    saved = {k: os.environ.get(k) for k in ("FEATUREPIPE_DATA_DIR", "FEATUREPIPE_RAW_URI", "FEATUREPIPE_LAKE_URI")}
    os.environ["FEATUREPIPE_DATA_DIR"] = str(root)
    os.environ.pop("FEATUREPIPE_RAW_URI", None)
    os.environ.pop("FEATUREPIPE_LAKE_URI", None)
    try:
        yield root
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def workspace(name: str) -> Iterator[Path]:
    """A fresh FEATUREPIPE_DATA_DIR for one benchmark, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"featurepipe-bench-{name}-"))
    try:
        with using(root):
            yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def spark():
    """The pipeline's session, started (and warmed) before anything is timed: JVM start is excluded."""
    os.environ.setdefault("FEATUREPIPE_SHUFFLE_PARTITIONS", "8")
    # DuckDB may use most of the machine's memory; give the local Spark driver a fair share too
    os.environ.setdefault("FEATUREPIPE_SPARK_DRIVER_MEMORY", "8g")
    from featurepipe.spark import get_spark

    session = get_spark("featurepipe-bench")
    session.range(10).count()
    return session


def pipeline_run(session, start: dt.date, end: dt.date) -> float:
    """Seconds for one run's Spark steps (ingest, tiles, features, publish) for as-of start..end.

    The GX gates and Feast materialization are left out: they cost the same whatever the history.
    """
    from featurepipe.dates import AsOfRange
    from featurepipe.settings import get_settings
    from featurepipe.features import stage_features
    from featurepipe.ingest import ingest
    from featurepipe.publishing import publish
    from featurepipe.tiles import rebuild_tiles

    as_of = AsOfRange(start, end)
    began = time.perf_counter()
    ingest(session, as_of)
    rebuild_tiles(session, as_of.label)
    span, _ = stage_features(session, as_of, get_settings().late_lookback_days, run_id="bench")
    publish(session, span, run_id="bench")
    return time.perf_counter() - began


def move_landings(source: Path, target: Path, first: dt.date, last: dt.date) -> None:
    """Move the generator's landing folders for days first..last into the landing zone."""
    (target / "transactions").mkdir(parents=True, exist_ok=True)
    for folder in sorted((source / "transactions").iterdir()):
        day = dt.date.fromisoformat(folder.name.split("=")[1])
        if first <= day <= last:
            shutil.move(str(folder), str(target / "transactions" / folder.name))
