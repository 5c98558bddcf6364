"""Feature views: the schema comes from the feature spec, never listed by hand."""

from __future__ import annotations

from datetime import timedelta

from feast import FeatureView, Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Bool, Float64, Int64, String, UnixTimestamp

from data_sources import user_purchase_source
from entities import user
from featurepipe.spec import USER_PURCHASE, USER_PURCHASE_ON_DEMAND, Dtype

_FEAST_TYPES = {Dtype.INT64: Int64, Dtype.FLOAT64: Float64, Dtype.STRING: String, Dtype.BOOL: Bool}
_REQUEST_TYPES = {"double": Float64, "timestamp": UnixTimestamp}

# TTL 0 = no expiry. Safe here because the pipeline writes a row for every day a user's 90-day
# window is non-empty and a zero row on the first day it empties: the latest row at or before any
# instant is always that instant's truth, however old it is. A finite TTL would turn churned
# users into nulls offline while the online store (which never applies a TTL) serves zeros:
# training-serving skew. Missing runs are a freshness problem, reported, not hidden by a TTL.
user_purchase_features = FeatureView(
    name=USER_PURCHASE.name,
    entities=[user],
    ttl=timedelta(0),
    schema=[Field(name=f.name, dtype=_FEAST_TYPES[f.dtype]) for f in USER_PURCHASE.features],
    source=user_purchase_source,
    online=True,
    description=USER_PURCHASE.description,
    tags={"owner": "featurepipe", "as_of": "UTC midnight", "version": str(USER_PURCHASE.version)},
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
