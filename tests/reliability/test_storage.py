"""A lake that cannot be written: a full disk (the lake on a small tmpfs, filled) and a path the
process may not write (the clean table made immutable: root ignores permission bits, not that flag).
Each step fails with one line naming the path, no table moves, and the run after the fix is clean."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from inprocess import expect, generated_landings, land, run

pytestmark = pytest.mark.integration
DATA_START = dt.date(2025, 1, 1)
T = DATA_START + dt.timedelta(days=20)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_landings(tmp_path_factory.mktemp("generated"), DATA_START, days=22, seed=12)


def versions(spark, lake: Path) -> dict[str, int]:
    """Every data table under the lake and its current version. (The bookkeeping may gain a dirty-day
    mark: validate_raw marks the days a landing changes before it merges them, a harmless extra
    tile rebuild if the merge then fails; featurepipe/ingest.py.)"""
    from featurepipe import lake as tables

    found = sorted(str(p.parent.relative_to(lake)) for p in lake.rglob("_delta_log"))
    return {name: tables.table_version(spark, name) for name in found if not name.startswith("bookkeeping/")}


def validate_raw(as_of: dt.date) -> None:
    import jobs.validate_raw

    jobs.validate_raw.main(["--as-of", str(as_of), "--run-id", f"storage__{as_of}"])


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message, message
    return message


@pytest.fixture()
def small_lake(lake_env: Path) -> Iterator[Path]:
    """The lake on its own 16 MiB tmpfs (`mount` needs root, which the test machines give)."""
    lake = lake_env / "lake"
    lake.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(lake)], capture_output=True, text=True)
    if mounted.returncode != 0:  # the machine, not the pipeline: say so rather than fail
        pytest.skip(f"cannot mount a tmpfs here (the full-disk test needs root): {mounted.stderr.strip()}")
    try:
        yield lake
    finally:
        subprocess.run(["umount", "-l", str(lake)], check=False)


def test_a_full_disk_fails_the_step_naming_the_path_and_changes_no_table(generated, small_lake: Path, lake_env: Path, spark) -> None:
    from featurepipe.storage_errors import LakeWriteError

    raw = lake_env / "raw"
    land(generated, raw, T - dt.timedelta(days=2))
    run(spark, T - dt.timedelta(days=3), T - dt.timedelta(days=1))
    before = versions(spark, small_lake)

    land(generated, raw, T - dt.timedelta(days=1))
    filler = small_lake / "filler"
    with open(filler, "wb", buffering=0) as sink:  # every free block of the lake's file system...
        try:
            while True:
                sink.write(b"\0" * 4096)
        except OSError:
            pass
    with open(filler, "r+b") as sink:  # ...but 16 KiB: the lease is taken, the step's first table write fails
        sink.truncate(filler.stat().st_size - 16384)
    with pytest.raises(LakeWriteError) as failed:
        validate_raw(T)
    message = one_line(failed.value)
    assert "no space left on device" in message and str(small_lake) in message, message
    assert versions(spark, small_lake) == before

    filler.unlink()  # space again: the next run ingests the landing and publishes T as one clean run would
    run(spark, T, T)
    expect(lake_env, spark, T - dt.timedelta(days=3), T, "after the full disk")


def test_a_lake_path_that_cannot_be_written_fails_the_step_naming_it_and_changes_no_table(generated, lake_env: Path, spark) -> None:
    from featurepipe.storage_errors import LakeWriteError

    raw, lake = lake_env / "raw", lake_env / "lake"
    land(generated, raw, T - dt.timedelta(days=2))
    run(spark, T - dt.timedelta(days=3), T - dt.timedelta(days=1))
    before = versions(spark, lake)

    land(generated, raw, T - dt.timedelta(days=1))
    clean = lake / "clean" / "transactions"
    locked = [clean, clean / "_delta_log"]  # no new month folder, no commit
    made = subprocess.run(["chattr", "+i", *map(str, locked)], capture_output=True, text=True) if shutil.which("chattr") else None
    if made is None or made.returncode != 0:  # the machine, not the pipeline: say so rather than fail
        pytest.skip(f"cannot make a folder immutable here (needs root, chattr, ext4): {made.stderr.strip() if made else 'no chattr'}")
    try:
        with pytest.raises(LakeWriteError) as failed:
            validate_raw(T)
    finally:
        subprocess.run(["chattr", "-i", *map(str, locked)], check=True)
    message = one_line(failed.value)
    # the day's month folder exists already: its data file is written (invisible: in no commit), the
    # commit is refused
    assert f"cannot write {clean}/_delta_log/" in message and "operation not permitted" in message, message
    assert "nothing was committed" in message, message
    assert versions(spark, lake) == before

    run(spark, T, T)
    expect(lake_env, spark, T - dt.timedelta(days=3), T, "after the unwritable path")
