"""Feature views: the schema comes from the feature spec, never listed by hand."""

from __future__ import annotations

from datetime import timedelta

from feast import FeatureView, Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Array, Bool, Float64, Int64, String, UnixTimestamp

from data_sources import (category_embeddings_source, product_purchase_source, product_rating_source,
                          user_purchase_source, user_rating_source)
from entities import category, product, user
from featurepipe.settings import format_duration
from featurepipe.spec import (CATEGORY_EMBEDDINGS, PRODUCT_PURCHASE, PRODUCT_RATING, USER_PURCHASE,
                              USER_PURCHASE_ON_DEMAND, USER_RATING, Dtype, FeatureGroup)

_FEAST_TYPES = {Dtype.INT64: Int64, Dtype.FLOAT64: Float64, Dtype.STRING: String, Dtype.BOOL: Bool}
_REQUEST_TYPES = {"double": Float64, "timestamp": UnixTimestamp}


def group_view(group: FeatureGroup, entity, source) -> FeatureView:
    """A feature group's view: its schema, description and catalog metadata from the spec.

    TTL 0 = no expiry. Safe here because the pipeline writes a row for every day an entity's longest
    window is non-empty and a zero row on the first day it empties: the latest row at or before any
    instant is always that instant's truth, however old it is. A finite TTL would turn churned users
    into nulls offline while the online store (which never applies a TTL) serves zeros:
    training-serving skew. Missing runs are a freshness problem, reported, not hidden by a TTL."""
    return FeatureView(
        name=group.name,
        entities=[entity],
        ttl=timedelta(0),
        schema=[Field(name=f.name, dtype=_FEAST_TYPES[f.dtype]) for f in group.features],
        source=source,
        online=True,
        description=group.description,
        # what `featurepipe catalog` shows too: who answers for it, how fresh it must be, what it reads
        tags={"owner": group.owner, "freshness_sla": format_duration(group.freshness_sla),
              "source": group.source.name, "as_of": "UTC midnight", "version": str(group.version)},
    )


user_purchase_features = group_view(USER_PURCHASE, user, user_purchase_source)
product_purchase_features = group_view(PRODUCT_PURCHASE, product, product_purchase_source)
product_rating_features = group_view(PRODUCT_RATING, product, product_rating_source)
user_rating_features = group_view(USER_RATING, user, user_rating_source)

# keyed by category; a product reaches it through its main_category (featurepipe.feast_store joins the two)
category_embeddings = FeatureView(
    name=CATEGORY_EMBEDDINGS.name,
    entities=[category],
    ttl=timedelta(0),
    schema=[Field(name=CATEGORY_EMBEDDINGS.feature, dtype=Array(Float64))],
    source=category_embeddings_source,
    online=True,
    description=CATEGORY_EMBEDDINGS.description,
    tags={"owner": CATEGORY_EMBEDDINGS.owner, "source": "featurepipe/category_embeddings.json",
          "via": f"{CATEGORY_EMBEDDINGS.via[0].name}.{CATEGORY_EMBEDDINGS.via[1]}",
          "version": str(CATEGORY_EMBEDDINGS.version)},
)

# request values: entity-table columns of the same name in a training set, values passed with the
# entity online (`featurepipe online --request`, the HTTP request's entity columns)
purchase_request = RequestSource(
    name="purchase_request",
    schema=[Field(name=c.name, dtype=_REQUEST_TYPES[c.kind]) for c in USER_PURCHASE_ON_DEMAND.request],
    description="The purchase a prediction is made for: its amount and instant",
)


# Python mode: one plain function for both paths (Feast applies it to a training set's columns and
# to an online response alike). Feast stores this function's source and runs it from there, so it
# imports what it needs: the definition lives in featurepipe.on_demand, declared in the spec.
@on_demand_feature_view(
    name=USER_PURCHASE_ON_DEMAND.name,
    sources=[user_purchase_features[USER_PURCHASE_ON_DEMAND.stored_inputs], purchase_request],
    schema=[Field(name=f.name, dtype=_FEAST_TYPES[f.dtype]) for f in USER_PURCHASE_ON_DEMAND.features],
    mode="python",
    description=USER_PURCHASE_ON_DEMAND.description,
    tags={"owner": "featurepipe", "version": str(USER_PURCHASE_ON_DEMAND.version)},
)
def user_purchase_on_demand(inputs: dict) -> dict:
    from featurepipe.on_demand import transform
    from featurepipe.spec import USER_PURCHASE_ON_DEMAND

    return transform(USER_PURCHASE_ON_DEMAND, inputs)
