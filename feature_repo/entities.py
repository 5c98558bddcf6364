"""Entities: built from the feature spec's entity and join key."""

from __future__ import annotations

from feast import Entity, ValueType

from featurepipe.spec import CATEGORY_EMBEDDINGS, PRODUCT_PURCHASE, USER_PURCHASE

user = Entity(
    name=USER_PURCHASE.entity,
    join_keys=[USER_PURCHASE.join_key],
    value_type=ValueType.STRING,
    description="A purchasing user, keyed by user_id",
)

product = Entity(
    name=PRODUCT_PURCHASE.entity,
    join_keys=[PRODUCT_PURCHASE.join_key],
    value_type=ValueType.STRING,
    description="A product in the catalogue, keyed by product_id",
)

category = Entity(
    name=CATEGORY_EMBEDDINGS.entity,
    join_keys=[CATEGORY_EMBEDDINGS.join_key],
    value_type=ValueType.STRING,
    description="A product category (a product reaches it through its main_category)",
)
