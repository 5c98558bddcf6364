"""The feature spec checks itself where it is declared, and every operation has one table entry."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from featurepipe.aggregations import OPERATIONS, Dtype, Op, operation
from featurepipe.spec import TRANSACTIONS, USER_PURCHASE, Aggregation, Column, FeatureGroup, Source, SpecError


def group(*aggregations: Aggregation, **changes) -> FeatureGroup:
    fields = dict(name="g", entity="user", join_key="user_id", source=TRANSACTIONS, aggregations=aggregations,
                  description="test group", owner="tests")
    fields.update(changes)
    return FeatureGroup(**fields)


@pytest.mark.parametrize(
    "declare, message",
    [
        (lambda: Aggregation("x", Op.SUM, (7,)), "Op.SUM needs a column"),
        (lambda: Aggregation("x", Op.MODE, (7,)), "Op.MODE needs a column"),
        (lambda: Aggregation("x", Op.COUNT, (7,), column="amount"), "Op.COUNT takes no column"),
        (lambda: Aggregation("x", Op.COUNT, (0,)), "whole number of days > 0, got 0"),
        (lambda: Aggregation("x", Op.COUNT, (-7,)), "whole number of days > 0, got -7"),
        (lambda: Aggregation("x", Op.COUNT, (7.5,)), "whole number of days > 0, got 7.5"),
        (lambda: Aggregation("x", Op.COUNT, ()), "non-empty tuple"),
        (lambda: Aggregation("x", Op.COUNT, [7]), "non-empty tuple"),
        (lambda: Aggregation("x", Op.COUNT, (7, 7)), "listed twice"),
        (lambda: Aggregation("x", Op.COUNT, (7, 30), window_suffix=False), "exactly one window"),
        (lambda: Aggregation("Total Spent", Op.COUNT, (7,)), "snake_case"),
        (lambda: Aggregation("x", "sum", (7,), column="amount"), "op must be one of"),
    ],
)
def test_an_aggregation_that_cannot_work_fails_where_it_is_declared(declare, message: str) -> None:
    with pytest.raises(SpecError, match=message) as error:
        declare()
    assert "Aggregation 'x'" in str(error.value) or "'Total Spent'" in str(error.value)


def test_a_column_must_exist_in_the_source_and_suit_the_operation() -> None:
    with pytest.raises(SpecError, match="reads 'price', which source 'transactions' does not have"):
        group(Aggregation("spent", Op.SUM, (7,), column="price"))
    with pytest.raises(SpecError, match="Op.MODE needs a string column, 'amount' is double"):
        group(Aggregation("top", Op.MODE, (90,), column="amount", window_suffix=False))
    with pytest.raises(SpecError, match="Op.SUM needs a double column, 'category' is string"):
        group(Aggregation("spent", Op.SUM, (7,), column="category"))
    with pytest.raises(SpecError, match="Op.MAX needs a double column, 'event_timestamp' is timestamp"):
        group(Aggregation("latest", Op.MAX, (7,), column="event_timestamp"))


def test_feature_names_are_unique_and_do_not_clash_with_keys() -> None:
    with pytest.raises(SpecError, match="'transactions_7d' is declared twice"):
        group(Aggregation("transactions", Op.COUNT, (7, 30)), Aggregation("transactions", Op.COUNT, (7,)))
    with pytest.raises(SpecError, match="'user_id' is declared twice .or clashes with a key column"):
        group(Aggregation("user_id", Op.MODE, (90,), column="category", window_suffix=False))


def test_a_group_needs_a_join_key_in_its_source_and_an_aggregation() -> None:
    with pytest.raises(SpecError, match="join key 'customer_id' is not a column of source 'transactions'"):
        group(Aggregation("n", Op.COUNT, (7,)), join_key="customer_id")
    with pytest.raises(SpecError, match="declares no aggregation"):
        group()


def test_a_source_names_a_required_id_and_timestamp() -> None:
    columns = (Column("id", "string", True), Column("ts", "timestamp", True))
    Source("ok", columns, id_column="id", timestamp_column="ts")
    with pytest.raises(SpecError, match="'ts' must be a required timestamp column"):
        Source("bad", (Column("id", "string", True), Column("ts", "string", True)), id_column="id", timestamp_column="ts")
    with pytest.raises(SpecError, match="declared twice"):
        Source("bad", (*columns, Column("id", "string", False)), id_column="id", timestamp_column="ts")
    with pytest.raises(SpecError, match="unknown kind 'int'"):
        Source("bad", (*columns, Column("n", "int", False)), id_column="id", timestamp_column="ts")
    with pytest.raises(SpecError, match="max_length of 'n' needs a string column"):
        Source("bad", (*columns, Column("n", "double", False, max_length=3)), id_column="id", timestamp_column="ts")
    with pytest.raises(SpecError, match="max_value of 'n' needs a double column and a value > 0"):
        Source("bad", (*columns, Column("n", "double", False, max_value=-1.0)), id_column="id", timestamp_column="ts")
    with pytest.raises(SpecError, match="future_tolerance must be >= 0"):
        Source("bad", columns, id_column="id", timestamp_column="ts", future_tolerance=-dt.timedelta(seconds=1))


def test_the_declared_spec_is_valid_and_gives_the_contracts_features() -> None:
    assert USER_PURCHASE.feature_names == [
        "transactions_7d", "transactions_30d", "transactions_90d",
        "total_spent_7d", "total_spent_30d", "total_spent_90d",
        "avg_basket_size_30d", "max_purchase_90d", "favorite_category",
    ]
    # re-declaring it through dataclasses.replace runs the same checks
    assert dataclasses.replace(USER_PURCHASE).feature_names == USER_PURCHASE.feature_names


def test_every_operation_has_one_table_entry() -> None:
    assert set(OPERATIONS) == set(Op)
    assert {op: operation(op).dtype for op in Op} == {
        Op.COUNT: Dtype.INT64, Op.SUM: Dtype.FLOAT64, Op.AVG: Dtype.FLOAT64, Op.MAX: Dtype.FLOAT64, Op.MODE: Dtype.STRING,
        Op.COUNT_DISTINCT: Dtype.INT64, Op.RANK: Dtype.INT64, Op.MEAN: Dtype.FLOAT64,
    }
    # empty windows give SPEC §3's values (an entity without a row has no rank)
    assert {op: operation(op).empty for op in Op} == {Op.COUNT: 0, Op.SUM: 0.0, Op.AVG: 0.0, Op.MAX: 0.0, Op.MODE: None,
                                                      Op.COUNT_DISTINCT: 0, Op.RANK: None, Op.MEAN: None}
    # only these grow with the window, so only these get 7d <= 30d <= 90d checks
    assert {op for op in Op if operation(op).monotone} == {Op.COUNT, Op.SUM, Op.MAX, Op.COUNT_DISTINCT}
    assert {op for op in Op if not operation(op).takes_column} == {Op.COUNT, Op.RANK}


def test_the_product_group_and_its_rank_are_declared_once() -> None:
    from featurepipe.spec import PRODUCT_PURCHASE, Rank

    assert PRODUCT_PURCHASE.feature_names == [
        "purchases_7d", "purchases_30d", "buyers_30d", "revenue_30d", "main_category", "popularity_rank_30d"]
    assert PRODUCT_PURCHASE.row_horizon_days == 31
    rank = PRODUCT_PURCHASE.feature("popularity_rank_30d")
    assert (rank.op, rank.column, rank.window_days) == (Op.RANK, "purchases_30d", 30)
    with pytest.raises(SpecError, match="declare it as Rank"):
        Aggregation("r", Op.RANK, (30,))
    with pytest.raises(SpecError, match="orders by 'nope', which is not a numeric aggregated feature"):
        group(Aggregation("n", Op.COUNT, (7,)), ranks=(Rank("r", by="nope"),))
    with pytest.raises(SpecError, match="'n_7d' is declared twice"):
        group(Aggregation("n", Op.COUNT, (7,)), ranks=(Rank("n_7d", by="n_7d"),))
    with pytest.raises(SpecError, match="declares no owner"):
        group(Aggregation("n", Op.COUNT, (7,)), owner=" ")
    with pytest.raises(SpecError, match="freshness_sla must be a positive"):
        group(Aggregation("n", Op.COUNT, (7,)), freshness_sla=dt.timedelta(0))


def test_tile_columns_come_from_the_table(spark) -> None:
    from featurepipe.tiles import build_tiles

    names = {name for agg in USER_PURCHASE.aggregations for name in operation(agg.op).tiles(agg.column)}
    assert names == {"event_count", "sum_amount", "max_amount", "counts_category"}
    events = spark.createDataFrame([], TRANSACTIONS_SCHEMA)
    assert set(build_tiles(events, USER_PURCHASE).columns) == {"user_id", "event_date", *names}


TRANSACTIONS_SCHEMA = (
    "transaction_id string, user_id string, product_id string, category string, amount double, event_timestamp timestamp"
)
