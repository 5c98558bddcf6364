"""Data sources: each feature group's published Delta feature table (never the staging tables)."""

from __future__ import annotations

from feast.table_format import DeltaFormat
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

from featurepipe import lake
from featurepipe.embeddings import reference_table
from featurepipe.spec import CATEGORY_EMBEDDINGS, PRODUCT_PURCHASE, PRODUCT_RATING, USER_PURCHASE, USER_RATING, FeatureGroup


def delta_source(group: FeatureGroup) -> SparkSource:
    table = lake.features_table(group)
    return SparkSource(
        name=f"{group.name}_delta",
        path=lake.table_path(table),
        table_format=DeltaFormat(),
        timestamp_field="event_timestamp",
        # one partition per as-of date: Feast prunes partitions when materializing a range
        date_partition_column="as_of_date",
        description=f"{table}, one row per ({group.join_key}, as-of midnight)",
    )


user_purchase_source = delta_source(USER_PURCHASE)
product_purchase_source = delta_source(PRODUCT_PURCHASE)
product_rating_source = delta_source(PRODUCT_RATING)
user_rating_source = delta_source(USER_RATING)

# reference data, one row per category from the epoch on (featurepipe.embeddings.serve writes it)
category_embeddings_source = SparkSource(
    name=f"{CATEGORY_EMBEDDINGS.name}_delta",
    path=lake.table_path(reference_table(CATEGORY_EMBEDDINGS)),
    table_format=DeltaFormat(),
    timestamp_field="event_timestamp",
    description=f"{reference_table(CATEGORY_EMBEDDINGS)}, one row per category",
)
