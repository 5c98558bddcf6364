"""GX suites built from the spec, their committed JSON, and the Spark runner.

GX on Spark costs a Spark job per metric, so the broken cases share one frame with several
defects and each expected failure is asserted on it.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from featurepipe import quality
from featurepipe.spec import USER_PURCHASE, Aggregation

T = datetime(2025, 3, 2, tzinfo=timezone.utc)
T2 = datetime(2025, 3, 3, tzinfo=timezone.utc)
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"


# --- committed JSON and spec-driven construction (no Spark) --------------------------------


@pytest.mark.parametrize("name", list(quality.SUITE_BUILDERS))
def test_committed_suite_json_equals_the_spec(name: str) -> None:
    path = quality.SUITES_DIR / f"{name}.json"
    committed = path.read_text(encoding="utf-8") if path.exists() else "<missing>"
    assert committed == quality.render_suite(name), (
        f"{path} is out of date with featurepipe/spec.py; regenerate it with "
        f"`{quality.REGENERATE_COMMAND}` and commit the result"
    )


def test_write_suites_writes_one_file_per_suite(tmp_path: Path) -> None:
    paths = quality.write_suites(tmp_path)
    assert sorted(p.name for p in paths) == sorted(f"{n}.json" for n in quality.SUITE_BUILDERS)
    assert all(p.read_text() == quality.render_suite(p.stem) for p in paths)


def _kinds(suite) -> list[tuple[str, dict]]:
    return [(e.configuration.type, dict(e.configuration.kwargs)) for e in suite.expectations]


def test_adding_a_window_to_the_spec_adds_its_checks() -> None:
    aggs = tuple(
        dataclasses.replace(a, windows=(7, 14, 30, 90)) if a.name == "transactions" else a
        for a in USER_PURCHASE.aggregations
    )
    suite = quality.build_feature_suite(dataclasses.replace(USER_PURCHASE, aggregations=aggs))
    pairs = [(k["column_A"], k["column_B"]) for t, k in _kinds(suite) if t == PAIR]
    assert ("transactions_14d", "transactions_7d") in pairs
    assert ("transactions_30d", "transactions_14d") in pairs
    assert ("transactions_30d", "transactions_7d") not in pairs  # implied by the chain
    not_null = {k["column"] for t, k in _kinds(suite) if t == "expect_column_values_to_not_be_null"}
    assert "transactions_14d" in not_null


def test_mode_check_needs_the_count_of_the_same_window() -> None:
    aggs = (Aggregation("transactions", USER_PURCHASE.aggregations[0].op, windows=(7,)),) + tuple(
        a for a in USER_PURCHASE.aggregations if a.name == "favorite_category"
    )
    suite = quality.build_feature_suite(dataclasses.replace(USER_PURCHASE, aggregations=aggs))
    assert "expect_column_values_to_be_null" not in [t for t, _ in _kinds(suite)]


def test_importing_quality_is_cheap(tmp_path: Path) -> None:
    # a script file, not `python -c`: pyspark 4.2 can exit silently with status 0 under -c
    script = tmp_path / "probe.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import featurepipe.quality
            heavy = sorted(m for m in ("great_expectations", "pyspark") if m in sys.modules)
            print("HEAVY=" + ",".join(heavy))
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout, out.stdout + out.stderr


# --- running on Spark ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("featurepipe_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEATUREPIPE_DATA_DIR", str(data_dir))
        yield data_dir / "gx"


def _feature_frame(spark, rows: list[dict]):
    from pyspark.sql import types as T_

    spark_type = {"Int64": T_.LongType(), "Float64": T_.DoubleType(), "String": T_.StringType()}
    schema = T_.StructType(
        [
            T_.StructField(USER_PURCHASE.join_key, T_.StringType()),
            T_.StructField("event_timestamp", T_.TimestampType()),
            *[T_.StructField(f.name, spark_type[f.dtype.value]) for f in USER_PURCHASE.features],
        ]
    )
    return spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)


def _row(user, ts=T, counts=(1, 2, 3), sums=(10.0, 20.0, 30.0), avg=10.0, mx=15.0, fav="books") -> dict:
    """A consistent feature row; override fields to break it."""
    return {
        "user_id": user,
        "event_timestamp": ts,
        **dict(zip(("transactions_7d", "transactions_30d", "transactions_90d"), counts)),
        **dict(zip(("total_spent_7d", "total_spent_30d", "total_spent_90d"), sums)),
        "avg_basket_size_30d": avg,
        "max_purchase_90d": mx,
        "favorite_category": fav,
    }


def test_good_feature_frame_passes_and_writes_data_docs(spark, gx_dir: Path) -> None:
    # 13 purchases of 19.99: the rounded average is one ulp above the max, and must pass
    total = math.fsum([19.99] * 13)
    assert total / 13 > 19.99
    df = _feature_frame(
        spark,
        [
            _row("u1"),
            _row("u1", ts=T2, counts=(0, 2, 3), sums=(0.0, 20.0, 30.0)),
            _row("u2", counts=(0, 0, 0), sums=(0.0, 0.0, 0.0), avg=0.0, mx=0.0, fav=None),  # expiry row
            _row("u3", counts=(13, 13, 14), sums=(total, total, total + 1), avg=total / 13, mx=19.99, 
                 fav=None),
        ],
    )
    outcome = quality.validate_dataframe(df, quality.FEATURE_SUITE, run_label="2025-03-02")
    assert outcome.success, outcome.summary()
    assert outcome.failed == []
    assert outcome.evaluated == len(quality.build_suite(quality.FEATURE_SUITE).expectations)
    assert outcome.data_docs is not None and Path(outcome.data_docs).is_file()
    assert Path(outcome.data_docs).name == "index.html"
    assert Path(outcome.data_docs).is_relative_to(gx_dir)
    assert not df.is_cached  # persisted for the validation only
    assert "passed" in outcome.summary()


def test_broken_feature_frame_names_each_failure(spark, gx_dir: Path) -> None:
    df = _feature_frame(
        spark,
        [
            _row("ok"),
            _row("window", counts=(5, 3, 3)),  # 7d > 30d
            _row("dup"),
            _row("dup", counts=(2, 2, 3)),  # same (user_id, event_timestamp)
            _row("negative", counts=(-1, 2, 3)),
            _row("favourite", counts=(0, 0, 0), sums=(0.0, 0.0, 0.0), avg=0.0, mx=0.0, fav="books"),
            _row("avg", avg=50.0, mx=15.0),
            _row("nulls", sums=(10.0, None, 30.0)),
        ],
    ).cache()
    outcome = quality.validate_dataframe(df, quality.FEATURE_SUITE, run_label="broken")
    assert df.is_cached  # the caller's cache is left alone
    df.unpersist()

    assert not outcome.success
    text = "\n".join(outcome.failed)
    expected = [
        f"{PAIR}(transactions_30d, transactions_7d): 1 of 8 rows unexpected",
        "expect_compound_columns_to_be_unique(user_id, event_timestamp): 2 of 8 rows unexpected",
        "expect_column_values_to_be_between(transactions_7d): 1 of 8 rows unexpected",
        "expect_column_values_to_be_null(favorite_category) where transactions_90d == 0: 1 of",
        "avg_basket_size_30d <= max_purchase_90d (relative tolerance 1e-09): 1 rows unexpected",
        "expect_column_values_to_not_be_null(total_spent_30d): 1 of 8 rows unexpected",
    ]
    for line in expected:
        assert line in text, f"missing {line!r} in:\n{outcome.summary()}"
    assert len(outcome.failed) == len(expected), outcome.summary()
    assert "FAILED 6 of" in outcome.summary()


def _raw_frame(spark, rows: list[tuple]):
    from pyspark.sql import types as T_

    kinds = {"string": T_.StringType(), "double": T_.DoubleType(), "timestamp": T_.TimestampType()}
    schema = T_.StructType([T_.StructField(c.name, kinds[c.kind]) for c in USER_PURCHASE.source.columns])
    return spark.createDataFrame(rows, schema)


def test_raw_suite_passes_good_rows_and_catches_quarantine_bugs(spark, gx_dir: Path) -> None:
    good = _raw_frame(
        spark,
        [
            ("t1", "u1", "p1", "books", 9.99, T),
            ("t2", "u1", None, None, 0.01, T2),  # optional columns may be null
        ],
    )
    outcome = quality.validate_dataframe(good, quality.RAW_SUITE, run_label="raw-good")
    assert outcome.success, outcome.summary()

    bad = _raw_frame(
        spark,
        [
            ("t1", "u1", "p1", "books", 9.99, T),
            ("", "u2", None, None, 5.0, T),  # empty id
            ("t3", None, None, None, 5.0, T),  # null user
            ("t4", "u4", None, None, 0.0, T),  # amount not > 0
            ("t5", "u5", None, None, float("inf"), T),  # amount not finite
            ("t7", "u7", None, None, float("nan"), T),
            ("t6", "u6", None, None, 5.0, None),  # no timestamp
        ],
    )
    outcome = quality.validate_dataframe(bad, quality.RAW_SUITE, run_label="raw-bad")
    text = "\n".join(outcome.failed)
    assert not outcome.success
    for line in [
        "expect_column_value_lengths_to_be_between(transaction_id): 1 of 7 rows unexpected",
        "expect_column_values_to_not_be_null(user_id): 1 of 7 rows unexpected",
        "expect_column_values_to_be_between(amount): 3 of 7 rows unexpected",
        "expect_column_values_to_not_be_null(event_timestamp): 1 of 7 rows unexpected",
    ]:
        assert line in text, f"missing {line!r} in:\n{outcome.summary()}"
    assert len(outcome.failed) == 4, outcome.summary()


GOOD_RAW_ROWS = [("t1", "u1", "p1", "books", 9.99, T), ("t2", "u1", None, None, 0.01, T2)]


def test_one_call_validates_each_frame_and_builds_data_docs_once(spark, gx_dir: Path, monkeypatch) -> None:
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext

    builds: list[list] = []
    build = AbstractDataContext.build_data_docs

    def counted(self, *args, **kwargs):
        builds.append(list(kwargs.get("resource_identifiers") or []))
        return build(self, *args, **kwargs)

    monkeypatch.setattr(AbstractDataContext, "build_data_docs", counted)
    earlier = quality.validate_dataframe(_raw_frame(spark, GOOD_RAW_ROWS), quality.RAW_SUITE, run_label="batch-earlier")
    assert earlier.success, earlier.summary()
    outcomes = quality.validate_dataframes([
        (_raw_frame(spark, GOOD_RAW_ROWS), quality.RAW_SUITE, "batch-raw"),
        (_feature_frame(spark, []), quality.FEATURE_SUITE, "batch-empty"),
    ])

    assert [o.suite for o in outcomes] == [quality.RAW_SUITE, quality.FEATURE_SUITE]  # in the given order
    assert outcomes[0].success, outcomes[0].summary()
    assert not outcomes[1].success  # an empty feature frame fails
    assert "expect_table_row_count_to_be_between: observed 0" in "\n".join(outcomes[1].failed), outcomes[1].summary()
    # one build per call, for exactly its results and their suites (an empty list would rebuild the site)
    assert [len(b) for b in builds] == [2, 4], builds
    site = gx_dir / "uncommitted" / "data_docs" / "local_site"
    assert outcomes[0].data_docs == outcomes[1].data_docs == str(site / "index.html")
    for suite, label in ((quality.RAW_SUITE, "batch-earlier"), (quality.RAW_SUITE, "batch-raw"),
                         (quality.FEATURE_SUITE, "batch-empty")):
        assert list((site / "validations" / suite / label).glob("*/*.html")), f"no Data Docs page for {label}"
        assert label in (site / "index.html").read_text(), f"index does not list {label}"  # older results too
    assert (site / "expectations" / f"{quality.FEATURE_SUITE}.html").is_file()
    assert quality.validate_dataframes([]) == []


def test_gx_config_is_written_only_when_the_spec_changes(spark, gx_dir: Path, monkeypatch) -> None:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    good = _raw_frame(spark, GOOD_RAW_ROWS)
    assert quality.validate_dataframe(good, quality.RAW_SUITE, run_label="config-1").success
    files = [gx_dir / "great_expectations.yml"] + [
        gx_dir / kind / f"{quality.RAW_SUITE}.json" for kind in ("expectations", "validation_definitions", "checkpoints")
    ]
    written = [f.stat().st_mtime_ns for f in files]
    assert quality.validate_dataframe(good, quality.RAW_SUITE, run_label="config-2").success
    assert [f.stat().st_mtime_ns for f in files] == written  # nothing rewritten

    # a spec change reaches the stored suite: one more expectation, which these 2 rows break
    changed = quality.build_raw_suite()
    changed = quality._suite(quality.RAW_SUITE, [*changed.expectations, gxe.ExpectTableRowCountToBeBetween(min_value=3)],
                             "test: a changed spec")
    monkeypatch.setitem(quality.SUITE_BUILDERS, quality.RAW_SUITE, lambda: changed)
    outcome = quality.validate_dataframe(good, quality.RAW_SUITE, run_label="config-3")
    assert not outcome.success and outcome.evaluated == len(changed.expectations), outcome.summary()
    assert outcome.failed == ["expect_table_row_count_to_be_between: observed 2"]
    monkeypatch.undo()
    outcome = quality.validate_dataframe(good, quality.RAW_SUITE, run_label="config-4")
    assert outcome.success and outcome.evaluated == len(changed.expectations) - 1, outcome.summary()

    # every suite validated in this gx dir still loads from the stored config, with no per-run action
    context = gx.get_context(mode="file", context_root_dir=str(gx_dir))
    for name in (quality.RAW_SUITE, quality.FEATURE_SUITE):
        checkpoint = context.checkpoints.get(name)
        assert checkpoint.actions == [] and checkpoint.result_format == quality.RESULT_FORMAT
        assert quality.suite_json(checkpoint.validation_definitions[0].suite) == quality.suite_json(quality.build_suite(name))
