"""Feature services: named, versionable sets of features for models."""

from __future__ import annotations

from feast import FeatureService

from feature_views import (product_purchase_features, product_rating_features, user_purchase_features,
                           user_purchase_on_demand, user_rating_features)

# everything we compute for a user
user_purchase_all = FeatureService(
    name="user_purchase_all",
    features=[user_purchase_features],
    description="Every feature of user_purchase_features",
)

# a lean set for a spend model: activity and spend, no category
user_spend_v1 = FeatureService(
    name="user_spend_v1",
    features=[
        user_purchase_features[
            ["transactions_30d", "total_spent_30d", "avg_basket_size_30d", "max_purchase_90d"]
        ]
    ],
    description="Recent spend for the spend model (v1)",
)

# v2 of the spend model: v1's features plus the purchase's amount against the user's average
# basket (on demand: a training set needs an `amount` column, an online read an `amount` value).
# v1 stays served beside it for the models trained on it.
user_spend_v2 = FeatureService(
    name="user_spend_v2",
    features=[
        user_purchase_features[
            ["transactions_30d", "total_spent_30d", "avg_basket_size_30d", "max_purchase_90d"]
        ],
        user_purchase_on_demand[["amount_vs_avg_basket_30d"]],
    ],
    description="Recent spend and the purchase against the average basket (v2)",
)

# everything we compute for a product: purchases and ratings
product_all = FeatureService(
    name="product_all",
    features=[product_purchase_features, product_rating_features],
    description="Every feature of product_purchase_features and product_rating_features",
)

# a recommendation model scores (user, product) pairs: the entity table carries both keys
user_product_v1 = FeatureService(
    name="user_product_v1",
    features=[
        user_purchase_features[["transactions_30d", "total_spent_30d", "favorite_category"]],
        user_rating_features[["ratings_given_90d"]],
        product_purchase_features[["purchases_30d", "buyers_30d", "popularity_rank_30d"]],
        product_rating_features[["avg_rating_90d", "ratings_90d"]],
    ],
    description="A user's recent activity beside a product's popularity and ratings, for (user, product) scoring (v1)",
)
