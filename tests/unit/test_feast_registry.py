"""Feast's registry is replaced atomically: a write that dies before its rename leaves the old one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from featurepipe.feast_registry import AtomicFileRegistryStore
from featurepipe.settings import FEATURE_REPO_DIR


def store(path: Path) -> AtomicFileRegistryStore:
    from feast.repo_config import RegistryConfig

    return AtomicFileRegistryStore(RegistryConfig(path=str(path)), path.parent)


def test_a_write_killed_before_its_rename_leaves_the_previous_registry(tmp_path: Path, monkeypatch) -> None:
    from feast.protos.feast.core.Registry_pb2 import Registry

    registry = store(tmp_path / "feast" / "registry.db")
    registry.update_registry_proto(Registry(registry_schema_version="1"))
    first = registry.get_registry_proto().version_id

    def killed(*_):  # the process dies between writing the new file and renaming it
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        registry.update_registry_proto(Registry(registry_schema_version="2"))
    monkeypatch.undo()
    assert registry.get_registry_proto().version_id == first  # still parses, still the old one
    assert [p.name for p in (tmp_path / "feast").iterdir()] == ["registry.db"]  # no temporary left behind
    registry.update_registry_proto(Registry(registry_schema_version="2"))
    assert registry.get_registry_proto().registry_schema_version == "2"


def test_the_feature_repo_uses_the_atomic_store() -> None:
    config = yaml.safe_load((FEATURE_REPO_DIR / "feature_store.yaml").read_text())
    assert config["registry"]["registry_store_type"] == "featurepipe.feast_registry.AtomicFileRegistryStore"


def test_the_default_data_dir_reaches_the_registry_as_an_absolute_path(tmp_path: Path, monkeypatch) -> None:
    """Without FEATUREPIPE_DATA_DIR the data dir is `./data` of the working directory; Feast's apply
    imports the repo from inside feature_repo/, where `./data` would mean feature_repo/data."""
    from featurepipe.feast_store import ensure_applied, get_store

    for name in [k for k in os.environ if k.startswith("FEATUREPIPE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert ensure_applied(get_store())
    assert os.getcwd() == str(tmp_path) and "FEATUREPIPE_DATA_DIR" not in os.environ
    source = get_store().get_feature_view("user_purchase_features").batch_source
    assert source.path == str(tmp_path / "data" / "lake" / "features" / "user_purchase_features")
