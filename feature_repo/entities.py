"""Entities: built from the feature spec's entity and join key."""

from __future__ import annotations

from feast import Entity, ValueType

from featurepipe.spec import USER_PURCHASE

user = Entity(
    name=USER_PURCHASE.entity,
    join_keys=[USER_PURCHASE.join_key],
    value_type=ValueType.STRING,
    description="A purchasing user, keyed by user_id",
)
