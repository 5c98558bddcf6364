"""Feature-definition versions: a feature group's definition changes only with a version bump.

Each `FeatureGroup` and `OnDemandGroup` in the spec carries a `version`. `featurepipe/feature_versions.json` (committed)
holds, per group, the version and a fingerprint of its definition: name, entity and key, the
source's columns and limits, every aggregation (op, column, windows) and the raw-data tolerances;
for an on-demand group, its request fields, each feature's type and inputs and the source code of
the function computing it. Descriptions are not part of it. `check` fails when a definition differs from its fingerprint
under the same version, when a version has no `## <group> v<N>` entry in CHANGELOG.md, or when a
version goes back. After a deliberate change: bump the version, write the CHANGELOG entry, then

    .venv/bin/python -m featurepipe.versions --write
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import enum
import hashlib
import inspect
import json
import sys
from pathlib import Path

from featurepipe.settings import PROJECT_ROOT
from featurepipe.spec import FUTURE_TOLERANCE, GROUPS, ON_DEMAND_GROUPS, FeatureGroup, OnDemandGroup

Group = FeatureGroup | OnDemandGroup
ALL_GROUPS: tuple[Group, ...] = GROUPS + ON_DEMAND_GROUPS

LOCK_FILE = Path(__file__).with_name("feature_versions.json")
CHANGELOG = PROJECT_ROOT / "CHANGELOG.md"


# what describes a group, not what it computes: changing these needs no new version
_METADATA = ("description", "version", "owner", "freshness_sla")
# optional fields added to the spec after groups were recorded: at their defaults they are omitted,
# so the fingerprints recorded before them stay valid
_ADDED_LATER = ("ranks", "min_value", "integral")


def _plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in _METADATA and not (f.name in _ADDED_LATER and getattr(value, f.name) == f.default)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if callable(value):  # an on-demand feature's function: what it computes is its code
        return inspect.getsource(value)
    return value


def definition(group: Group) -> dict:
    """What the group computes, as plain data (what its fingerprint hashes)."""
    if isinstance(group, OnDemandGroup):
        # the stored group it reads is named, not expanded: that group has its own version
        return {"name": group.name, "base": group.base.name, "request": _plain(group.request),
                "features": _plain(group.features)}
    return {"group": _plain(group), "features": [_plain(f) for f in group.features],
            "future_tolerance_seconds": FUTURE_TOLERANCE.total_seconds()}


def fingerprint(group: Group) -> str:
    return hashlib.sha256(json.dumps(definition(group), sort_keys=True).encode()).hexdigest()[:16]


def lock_entries(groups: tuple[Group, ...] = ALL_GROUPS) -> dict:
    return {g.name: {"version": g.version, "fingerprint": fingerprint(g)} for g in groups}


def problems(groups: tuple[Group, ...], lock: dict, changelog: str) -> list[str]:
    """What is wrong between the spec, the lock file and the changelog; [] when they agree."""
    found = []
    fix = "bump its version, add a CHANGELOG.md entry and run `python -m featurepipe.versions --write`"
    for group in groups:
        entry = lock.get(group.name)
        if entry is None:
            found.append(f"{group.name} is not in {LOCK_FILE.name}: add a CHANGELOG.md entry and run "
                         f"`python -m featurepipe.versions --write`")
            continue
        if group.version < entry["version"]:
            found.append(f"{group.name}: version {group.version} is older than the recorded v{entry['version']}")
        elif fingerprint(group) != entry["fingerprint"] and group.version == entry["version"]:
            found.append(f"{group.name}: its definition changed without a version bump (still v{group.version}): {fix}")
        elif group.version != entry["version"] or fingerprint(group) != entry["fingerprint"]:
            found.append(f"{group.name} v{group.version} is not recorded in {LOCK_FILE.name}: run "
                         f"`python -m featurepipe.versions --write`")
        if f"## {group.name} v{group.version}" not in changelog:
            found.append(f"{group.name} v{group.version} has no '## {group.name} v{group.version}' entry in CHANGELOG.md")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check (default) or record the feature groups' versions")
    parser.add_argument("--write", action="store_true", help=f"record the current versions in {LOCK_FILE.name}")
    args = parser.parse_args(argv)
    changelog = CHANGELOG.read_text() if CHANGELOG.exists() else ""
    if args.write:
        LOCK_FILE.write_text(json.dumps(lock_entries(), indent=2, sort_keys=True) + "\n")
        print(f"wrote {LOCK_FILE}")
    lock = json.loads(LOCK_FILE.read_text()) if LOCK_FILE.exists() else {}
    found = problems(ALL_GROUPS, lock, changelog)
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print(", ".join(f"{g.name} v{g.version}" for g in ALL_GROUPS) + ": definitions match their recorded versions")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
