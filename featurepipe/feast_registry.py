"""Feast's file registry, written atomically.

Feast's `FileRegistryStore` truncates `registry.db` and writes it in place, so a process killed
mid-write (a task timeout, a SIGKILL during `materialize`, which records its intervals there)
leaves a truncated registry that no later run can parse. This store writes a temporary file
beside it, syncs it, and renames it over the old one: a reader sees the old registry or the new,
never half of one. `feature_repo/feature_store.yaml` selects it with `registry_store_type`.
"""

from __future__ import annotations

import os
import uuid

from feast.infra.registry.file import FileRegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.utils import _utc_now

from featurepipe.faults import hang_if_writing_file


class AtomicFileRegistryStore(FileRegistryStore):
    def _write_registry(self, registry_proto: RegistryProto) -> None:
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        staging = self._filepath.with_name(f".{self._filepath.name}.{registry_proto.version_id}.tmp")
        try:
            with open(staging, mode="wb", buffering=0) as f:
                f.write(registry_proto.SerializeToString())
                os.fsync(f.fileno())
            hang_if_writing_file("feast-registry")  # a fault for the kill test, off unless set
            os.replace(staging, self._filepath)
        finally:
            staging.unlink(missing_ok=True)
        directory = os.open(self._filepath.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash of the machine
        finally:
            os.close(directory)
