"""Data sources: the published Delta feature table (never the staging table)."""

from __future__ import annotations

from feast.table_format import DeltaFormat
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

from featurepipe import lake

user_purchase_source = SparkSource(
    name="user_purchase_features_delta",
    path=lake.table_path(lake.FEATURES),
    table_format=DeltaFormat(),
    timestamp_field="event_timestamp",
    # one partition per as-of date: Feast prunes partitions when materializing a range
    date_partition_column="as_of_date",
    description="features/user_purchase_features, one row per (user_id, as-of midnight)",
)
