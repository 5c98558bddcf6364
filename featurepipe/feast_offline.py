"""Feast's Spark offline store with a point-in-time join that scales with the rows, not their pairs.

Feast's own Spark query joins every entity row with every feature row of its entity at or before
it, ranks those pairs and joins the winners back: ~35–40M pairs for a 1M-row training set over 90
as-of days (bench/training.py). Here each feature view's rows and the entity rows go into one
frame per entity, ordered by time with feature rows first at equal times, and each entity row
takes the last feature row before or at it: one shuffle and one sort, linear in the rows.

It answers exactly what Feast's query answers for feature views without a TTL and without a
created-timestamp column (ours: TTL 0, SPEC §4); any other view goes through Feast's own query.
Everything else (entity upload, feature view contexts, on-demand transformations, the retrieval
job) is Feast's. `feature_store.yaml` names it as the offline store, so plain Feast uses it too.
"""

from __future__ import annotations

import threading

from feast.infra.offline_stores.contrib.spark_offline_store import spark as feast_spark
from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStore, SparkOfflineStoreConfig
from pydantic import StrictStr

TYPE = "featurepipe.feast_offline.WindowedSparkOfflineStore"

# The same context and output as Feast's MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN; the per-view
# part carries the latest feature row forward instead of ranking (entity, feature row) pairs.
WINDOWED_POINT_IN_TIME_JOIN = """
CREATE OR REPLACE TEMPORARY VIEW entity_dataframe AS (
    SELECT *,
        {{entity_df_event_timestamp_col}} AS entity_timestamp
        {% for featureview in featureviews %}
            ,CONCAT(
                {% for entity in featureview.entities %}
                    CAST({{entity}} AS STRING),
                {% endfor %}
                CAST({{entity_df_event_timestamp_col}} AS STRING)
            ) AS {{featureview.name}}__entity_row_unique_id
        {% endfor %}
    FROM {{ left_table_query_string }}
);

---EOS---

{% for featureview in featureviews %}

CREATE OR REPLACE TEMPORARY VIEW {{ featureview.name }}__cleaned AS (
    WITH {{ featureview.name }}__entity_rows AS (
        SELECT DISTINCT
            {{ featureview.entities | join(', ')}}{% if featureview.entities %},{% endif %}
            entity_timestamp,
            {{featureview.name}}__entity_row_unique_id
        FROM entity_dataframe
    ),

    {{ featureview.name }}__rows AS (
        SELECT
            {{ featureview.entity_selections | join(', ')}}{% if featureview.entity_selections %},{% endif %}
            {{ featureview.timestamp_field }} AS __featurepipe_ts,
            0 AS __featurepipe_kind,
            CAST(NULL AS STRING) AS {{featureview.name}}__entity_row_unique_id,
            named_struct(
            {% for feature in featureview.features %}
                '{% if full_feature_names %}{{ featureview.name }}__{{featureview.field_mapping.get(feature, feature)}}{% else %}{{ featureview.field_mapping.get(feature, feature) }}{% endif %}', {{ feature }}{% if not loop.last %},{% endif %}
            {% endfor %}
            ) AS __featurepipe_values
        FROM {{ featureview.table_subquery }}
        WHERE {{ featureview.timestamp_field }} <= '{{ featureview.max_event_timestamp }}'
        {% if featureview.date_partition_column != "" and featureview.date_partition_column is not none %}
        AND {{ featureview.date_partition_column }} <= '{{ featureview.max_date_partition }}'
        {% endif %}

        UNION ALL

        SELECT
            {{ featureview.entities | join(', ')}}{% if featureview.entities %},{% endif %}
            entity_timestamp,
            1,
            {{featureview.name}}__entity_row_unique_id,
            NULL
        FROM {{ featureview.name }}__entity_rows
    ),

    {{ featureview.name }}__carried AS (
        SELECT
            {{featureview.name}}__entity_row_unique_id,
            __featurepipe_kind,
            last(__featurepipe_values, true) OVER (
                {% if featureview.entities %}PARTITION BY {{ featureview.entities | join(', ')}}{% endif %}
                ORDER BY __featurepipe_ts, __featurepipe_kind
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS __featurepipe_values
        FROM {{ featureview.name }}__rows
    )

    SELECT {{featureview.name}}__entity_row_unique_id, __featurepipe_values.*
    FROM {{ featureview.name }}__carried
    WHERE __featurepipe_kind = 1
)

---EOS---

{% endfor %}

SELECT {{ final_output_feature_names | join(', ')}}
FROM entity_dataframe
{% for featureview in featureviews %}
LEFT JOIN (
    SELECT
        {{featureview.name}}__entity_row_unique_id
        {% for feature in featureview.features %}
            ,{% if full_feature_names %}{{ featureview.name }}__{{featureview.field_mapping.get(feature, feature)}}{% else %}{{ featureview.field_mapping.get(feature, feature) }}{% endif %}
        {% endfor %}
    FROM {{ featureview.name }}__cleaned
) USING ({{featureview.name}}__entity_row_unique_id)
{% endfor %}
"""

# Feast's Spark store reads its query template from a module global while it builds the query
_TEMPLATE_LOCK = threading.Lock()


class WindowedSparkOfflineStoreConfig(SparkOfflineStoreConfig):
    type: StrictStr = TYPE


class WindowedSparkOfflineStore(SparkOfflineStore):
    @staticmethod
    def get_historical_features(config, feature_views, feature_refs, entity_df, registry, project,
                                full_feature_names: bool = False, filter_by_created_timestamp: bool = False,
                                **kwargs):
        windowed = all(fv.ttl is None or not fv.ttl.total_seconds() for fv in feature_views) and not any(
            fv.batch_source.created_timestamp_column for fv in feature_views)
        with _TEMPLATE_LOCK:
            feast_template = feast_spark.MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN
            if windowed:
                feast_spark.MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN = WINDOWED_POINT_IN_TIME_JOIN
            try:
                return SparkOfflineStore.get_historical_features(
                    config, feature_views, feature_refs, entity_df, registry, project,
                    full_feature_names=full_feature_names, filter_by_created_timestamp=filter_by_created_timestamp,
                    **kwargs)
            finally:
                feast_spark.MULTIPLE_FEATURE_VIEW_POINT_IN_TIME_JOIN = feast_template
