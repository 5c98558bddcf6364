"""A feature group's definition changes only with a version bump and a CHANGELOG entry (featurepipe/versions.py)."""

from __future__ import annotations

import dataclasses
import json

from featurepipe import versions
from featurepipe.spec import USER_PURCHASE, USER_PURCHASE_ON_DEMAND, Aggregation, Op


def test_the_committed_versions_match_the_spec_and_the_changelog() -> None:
    lock = json.loads(versions.LOCK_FILE.read_text())
    assert versions.problems(versions.ALL_GROUPS, lock, versions.CHANGELOG.read_text()) == []
    assert set(lock) == {g.name for g in versions.ALL_GROUPS} >= {USER_PURCHASE.name, USER_PURCHASE_ON_DEMAND.name}


def _ratio_or_zero(amount, avg_basket_size_30d):
    return amount / avg_basket_size_30d if avg_basket_size_30d else 0.0


def test_an_on_demand_feature_is_versioned_by_its_code_and_inputs() -> None:
    group = USER_PURCHASE_ON_DEMAND
    lock = versions.lock_entries((group,))
    changelog = f"## {group.name} v1\n"
    ratio = group.feature("amount_vs_avg_basket_30d")
    recoded = dataclasses.replace(group, features=tuple(
        dataclasses.replace(f, compute=_ratio_or_zero) if f is ratio else f for f in group.features))
    found = versions.problems((recoded,), lock, changelog)
    assert len(found) == 1 and "changed without a version bump (still v1)" in found[0]
    # the stored group it reads is versioned on its own: a change there is not this group's
    assert versions.definition(group)["base"] == USER_PURCHASE.name
    assert versions.fingerprint(dataclasses.replace(group, description="reworded")) == versions.fingerprint(group)


def test_a_changed_definition_needs_a_version_bump_and_a_changelog_entry() -> None:
    lock = versions.lock_entries((USER_PURCHASE,))
    changelog = f"## {USER_PURCHASE.name} v1\n"
    wider = dataclasses.replace(USER_PURCHASE, aggregations=(
        *USER_PURCHASE.aggregations[:-1], Aggregation("favorite_category", Op.MODE, windows=(60,), column="category",
                                                      window_suffix=False)))
    assert versions.fingerprint(wider) != versions.fingerprint(USER_PURCHASE)
    found = versions.problems((wider,), lock, changelog)
    assert len(found) == 1 and "changed without a version bump (still v1)" in found[0]

    bumped = dataclasses.replace(wider, version=2)
    found = versions.problems((bumped,), lock, changelog)
    assert any("v2 is not recorded" in p for p in found) and any("no '## user_purchase_features v2' entry" in p for p in found)
    assert versions.problems((bumped,), versions.lock_entries((bumped,)), changelog + "## user_purchase_features v2\n") == []


def test_a_description_is_not_part_of_the_definition_and_a_version_cannot_go_back() -> None:
    reworded = dataclasses.replace(USER_PURCHASE, description="reworded")
    assert versions.fingerprint(reworded) == versions.fingerprint(USER_PURCHASE)
    lock = {USER_PURCHASE.name: {"version": 3, "fingerprint": versions.fingerprint(USER_PURCHASE)}}
    assert "older than the recorded v3" in versions.problems((USER_PURCHASE,), lock, "## user_purchase_features v1")[0]
