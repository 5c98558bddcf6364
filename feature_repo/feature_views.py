"""Feature views: the schema comes from the feature spec, never listed by hand."""

from __future__ import annotations

from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Float64, Int64, String

from data_sources import user_purchase_source
from entities import user
from featurepipe.spec import USER_PURCHASE, Dtype

_FEAST_TYPES = {Dtype.INT64: Int64, Dtype.FLOAT64: Float64, Dtype.STRING: String}

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
