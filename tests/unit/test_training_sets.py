"""Reproducible training sets (SPEC §7): which Delta version a request reads, and what a manifest must hold."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from featurepipe.training_sets import (
    ManifestError,
    Selection,
    VersionError,
    read_manifest,
    resolve_version,
    sha256_of,
    table_versions,
)

TABLE = "features/user_purchase_features"


@pytest.fixture()
def three_versions(spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dt.datetime]]:
    """The feature table's path with three commits, a little apart in time."""
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", str(tmp_path / "lake"))
    from featurepipe import lake

    for i in range(3):
        spark.createDataFrame([(f"u{i}", i)], "user_id string, n long").write.format("delta").mode("overwrite").save(
            lake.table_path(TABLE))
        time.sleep(0.05)
    return table_versions(spark, TABLE)


def test_a_version_a_timestamp_or_the_current_version(spark, three_versions) -> None:
    assert [v for v, _ in three_versions] == [0, 1, 2]
    assert all(at.tzinfo is dt.timezone.utc for _, at in three_versions)
    assert resolve_version(spark, TABLE) == 2
    assert resolve_version(spark, TABLE, version=1) == 1
    (_, first), (_, second), _ = three_versions
    assert resolve_version(spark, TABLE, timestamp=first) == 0  # committed at that instant: that version
    assert resolve_version(spark, TABLE, timestamp=second - dt.timedelta(microseconds=1)) == 0
    assert resolve_version(spark, TABLE, timestamp=second + dt.timedelta(days=1)) == 2


def test_a_version_the_table_lacks_is_named(spark, three_versions) -> None:
    with pytest.raises(VersionError, match="no version 7: its log holds versions 0..2"):
        resolve_version(spark, TABLE, version=7)
    with pytest.raises(VersionError, match="no version at or before 2020-01-01"):
        resolve_version(spark, TABLE, timestamp=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))


def test_the_selection_becomes_the_same_arguments_again() -> None:
    assert Selection(["transactions_7d", "user_purchase_features:favorite_category"]).args() == [
        "--features", "transactions_7d,user_purchase_features:favorite_category"]
    assert Selection(feature_service="user_spend_v1").args() == ["--feature-service", "user_spend_v1"]
    assert Selection().args() == []


def test_a_manifest_whose_entities_changed_is_refused(tmp_path: Path) -> None:
    entities = tmp_path / "entities.csv"
    entities.write_text("user_id,event_timestamp\nu1,2025-03-01T00:00:00Z\n")
    manifest = tmp_path / "out.parquet.manifest.json"
    manifest.write_text(json.dumps({"entities": {"path": str(entities), "sha256": sha256_of(entities)},
                                    "delta_version": 3, "sha256": "x", "features": None, "feature_service": None}))
    assert read_manifest(manifest)["delta_version"] == 3
    entities.write_text("user_id,event_timestamp\nu2,2025-03-01T00:00:00Z\n")
    with pytest.raises(ManifestError, match="changed since the manifest was written"):
        read_manifest(manifest)
    entities.unlink()
    with pytest.raises(ManifestError, match="no longer exists"):
        read_manifest(manifest)
    manifest.write_text("{}")
    with pytest.raises(ManifestError, match="lacks entities, delta_version, sha256"):
        read_manifest(manifest)
