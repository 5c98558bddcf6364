"""Layer 3: the whole pipeline through the CLI on `generate --dirty` data (Airflow, Spark, Delta, GX, Feast, Redis).

Tests run in file order and share one data dir: backfill once, then check it every way a user
reads it, then the gate, then a rerun into a real Redis server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import END, START, online, run_cli
from compare import KEY, assert_features_equal, assert_online_is_latest, published
from inprocess import online_rows
from reference import COUNT_FEATURES, FEATURE_COLUMNS, FLOAT_FEATURES, point_in_time, reference_features

pytestmark = pytest.mark.integration


def online_now(users: list[str], **env: str) -> dict[str, dict]:
    """The online rows read in-process, by the library call `featurepipe online` makes (the CLI itself
    is read by the SQLite and Redis serving tests): a read costs no Python start with Feast's imports."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return online_rows(users)


@pytest.fixture(scope="module")
def expected(workspace: Path) -> pd.DataFrame:
    """SPEC §3 straight from the raw files, by the independent pandas reference."""
    return reference_features(workspace / "raw" / "transactions", START, END)


@pytest.fixture(scope="module")
def backfilled(workspace: Path) -> Path:
    out = run_cli(workspace, "backfill", "--start", START.isoformat(), "--end", END.isoformat())
    assert "done: as-of 2025-03-01..2025-03-31" in out.stdout
    assert "quarantined" in out.stdout
    return workspace


def test_backfill_matches_the_reference_for_every_user_and_day(backfilled: Path, expected: pd.DataFrame, spark) -> None:
    table = published(spark)
    assert not table.duplicated(KEY).any()
    assert table["event_timestamp"].dt.date.between(START, END).all()
    assert_features_equal(table, expected, "Delta feature table")
    # the dirty data exercised the rules: some rows were quarantined, some users expired inside the range
    assert (expected["transactions_90d"] == 0).any(), "no expiry row in range: pick other generator parameters"


def test_product_features_match_the_reference_and_serve_online(backfilled: Path, spark) -> None:
    """The second group of the same run: products, with an exact distinct count and a rank (issue 13)."""
    from compare import assert_product_features_equal
    from featurepipe import lake
    from featurepipe.feast_store import online_rows
    from featurepipe.spec import PRODUCT_PURCHASE
    from reference import PRODUCT_FEATURE_COLUMNS, reference_product_features

    table = published(spark, lake.features_table(PRODUCT_PURCHASE))
    wanted = reference_product_features(backfilled / "raw" / "transactions", START, END)
    assert_product_features_equal(table, wanted, "Delta product feature table")
    assert (wanted["purchases_30d"] == 0).any() and (wanted["buyers_30d"] < wanted["purchases_30d"]).any()

    newest = wanted.sort_values("event_timestamp").groupby("product_id").tail(1).set_index("product_id")
    products = sorted(newest.index)[:10]
    rows = online_rows([{"product_id": p} for p in [*products, "p_never_sold"]], with_as_of=True)
    for row in rows[:-1]:
        want = newest.loc[row["product_id"]]
        assert row["as_of"] == want["event_timestamp"].to_pydatetime(), row
        numbers = [c for c in PRODUCT_FEATURE_COLUMNS if c != "main_category"]
        assert [row[c] for c in numbers] == pytest.approx([want[c] for c in numbers], rel=1e-9), row
        assert row["main_category"] == want["main_category"], row
    # a product's category embedding online: through its main_category, as in a training set
    from featurepipe.embeddings import load

    named = [p for p in products if isinstance(newest.loc[p]["main_category"], str)][:3]
    embedded = online_rows([{"product_id": p} for p in [*named, "p_never_sold"]],
                           features=["main_category", "category_embedding"])
    for row in embedded[:-1]:
        assert row["category_embedding"] == pytest.approx(load()[row["main_category"]]), row
    assert embedded[-1] == {"product_id": "p_never_sold", "main_category": None, "category_embedding": None}
    # no history: each product group's no-history values (the rank and the average rating have none)
    assert rows[-1] == {"product_id": "p_never_sold", "purchases_7d": 0, "purchases_30d": 0, "buyers_30d": 0,
                        "revenue_30d": 0.0, "main_category": None, "popularity_rank_30d": None,
                        "avg_rating_90d": None, "ratings_90d": 0,
                        "as_of": None}


def test_rating_features_and_quarantine_match_the_reference(backfilled: Path, spark) -> None:
    """The second source: ratings quarantined and deduplicated by their own rules, features per product and user."""
    from featurepipe import lake
    from featurepipe.spec import PRODUCT_RATING, RATINGS, USER_RATING
    from reference import load_ratings, reference_rating_features, split_valid_ratings

    raw = backfilled / "raw" / "ratings"
    _, invalid = split_valid_ratings(load_ratings(raw))
    quarantined = lake.read_table(spark, lake.quarantine_table(RATINGS)).toPandas()
    assert sorted(quarantined["reason"]) == sorted(invalid["reason"]) and len(invalid) > 0
    for group, entity in ((PRODUCT_RATING, "product"), (USER_RATING, "user")):
        key = [group.join_key, "event_timestamp"]
        got = published(spark, lake.features_table(group)).sort_values(key, ignore_index=True)
        want = reference_rating_features(raw, START, END, entity).sort_values(key, ignore_index=True)
        assert len(want) > 50, group.name
        assert got[key].equals(want[key]), group.name
        for name in group.feature_names:  # a null average is NaN on both sides
            np.testing.assert_allclose(np.array(got[name], dtype=float), np.array(want[name], dtype=float),
                                       rtol=1e-9, equal_nan=True, err_msg=f"{group.name}.{name}")
    assert published(spark, lake.features_table(PRODUCT_RATING))["avg_rating_90d"].isna().any()  # a zero row


def test_quarantine_holds_every_bad_row_with_a_reason(backfilled: Path, spark) -> None:
    from featurepipe import lake
    from reference import load_raw, split_valid

    _, invalid = split_valid(load_raw(backfilled / "raw" / "transactions"))
    quarantined = lake.read_table(spark, lake.QUARANTINE).toPandas()
    assert len(quarantined) == len(invalid) > 0
    assert sorted(quarantined["reason"]) == sorted(invalid["reason"])
    assert quarantined["as_of"].notna().all()


def test_training_set_is_point_in_time_correct(backfilled: Path, expected: pd.DataFrame, spark) -> None:
    import hashlib

    from featurepipe import lake

    rng = np.random.default_rng(5)
    users = sorted(expected["user_id"].unique())
    n = 60
    span_us = int(((END - START).days + 1) * 86_400 * 1e6)
    ts = pd.Timestamp(START, tz="UTC") + pd.to_timedelta(rng.integers(0, span_us, n), unit="us")
    ts = pd.Series(ts)
    ts[::4] = ts[::4].dt.floor("D")  # exactly at a midnight: that day's row
    ts[1::4] = ts[1::4].dt.floor("D") - pd.Timedelta(microseconds=1)  # 1 µs before: the previous day's
    entities = pd.DataFrame({
        "user_id": rng.choice(users + ["u9999"], n),  # an unknown user: the no-history values (SPEC §4)
        "event_timestamp": ts,
        "label": rng.integers(0, 2, n),
        "note": [f"row{i}" for i in range(n)],
    })
    # kept in the data dir: the last test reproduces it from its manifest after later runs changed the table
    entities_path, out_path = backfilled / "training" / "entities.parquet", backfilled / "training" / "first.parquet"
    entities_path.parent.mkdir(exist_ok=True)
    entities.to_parquet(entities_path, index=False)
    run_cli(backfilled, "training-set", "--entities", str(entities_path), "--out", str(out_path))
    result = pd.read_parquet(out_path)
    manifest = json.loads((backfilled / "training" / "first.parquet.manifest.json").read_text())
    assert manifest["delta_version"] == lake.table_version(spark, lake.FEATURES)
    assert manifest["table"] == lake.table_path(lake.FEATURES) and manifest["entity_rows"] == n
    assert manifest["sha256"] == hashlib.sha256(out_path.read_bytes()).hexdigest()
    assert manifest["features"] is None and manifest["feature_service"] is None  # every feature
    assert manifest["command"][-2:] == ["--as-of-version", str(manifest["delta_version"])]

    # entity columns unchanged, in order, then one column per feature named as in SPEC §3
    assert list(result.columns) == list(entities.columns) + FEATURE_COLUMNS
    pd.testing.assert_frame_equal(result[entities.columns], entities, check_dtype=False)
    want = point_in_time(expected, entities, no_history=True)
    for name in COUNT_FEATURES:
        assert str(result[name].dtype) == "Int64"
        pd.testing.assert_series_equal(result[name], want[name].astype("Int64"), check_names=False)
    for name in FLOAT_FEATURES:
        np.testing.assert_allclose(result[name].to_numpy(float), want[name].to_numpy(float), rtol=1e-9, equal_nan=True)
    assert [v if isinstance(v, str) else None for v in result["favorite_category"]] == [
        v if isinstance(v, str) else None for v in want["favorite_category"]
    ]
    unknown = result[entities["user_id"] == "u9999"]
    assert len(unknown) and (unknown["transactions_30d"] == 0).all() and (unknown["total_spent_90d"] == 0.0).all()
    assert unknown["favorite_category"].isna().all()


def latest_at(features: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    """The newest row of `features` (reference rows keyed by product_id) at or before the entity row's instant."""
    seen = features[(features["product_id"] == row["product_id"]) & (features["event_timestamp"] <= row["event_timestamp"])]
    return seen.sort_values("event_timestamp").iloc[-1] if len(seen) else None


def test_a_mixed_training_set_of_user_and_product_features_is_point_in_time_correct(
    backfilled: Path, expected: pd.DataFrame, spark
) -> None:
    """One entity table with user_id and product_id: each group's features as of the latest midnight
    at or before the row's instant, by its own key; no history gives each group's no-history values."""
    from featurepipe import lake
    from featurepipe.feast_store import training_set
    from featurepipe.spec import GROUPS
    from reference import reference_product_features, reference_rating_features

    products = reference_product_features(backfilled / "raw" / "transactions", START, END)
    rng = np.random.default_rng(11)
    n = 40
    ts = pd.Series(pd.Timestamp(START, tz="UTC")
                   + pd.to_timedelta(rng.integers(0, int(((END - START).days + 1) * 86_400e6), n), unit="us"))
    ts[::3] = ts[::3].dt.floor("D")
    ts[1::3] = ts[1::3].dt.floor("D") - pd.Timedelta(microseconds=1)
    entities = pd.DataFrame({
        "user_id": rng.choice(sorted(expected["user_id"].unique()) + ["u9999"], n),
        "product_id": rng.choice(sorted(products["product_id"].unique())[:15] + ["p_never_sold"], n),
        "event_timestamp": ts,
        "label": rng.integers(0, 2, n),
    })
    result = training_set(entities, feature_service="user_product_v1")
    # every table the service reads (user and product groups of both sources), each pinned to its version
    assert result.attrs["delta_versions"] == {lake.features_table(g): lake.table_version(spark, lake.features_table(g))
                                              for g in GROUPS}
    user_want = point_in_time(expected, entities[["user_id", "event_timestamp"]], no_history=True)
    for name in ("transactions_30d", "total_spent_30d"):
        assert result[name].tolist() == pytest.approx(user_want[name].tolist(), rel=1e-9), name
    assert result["favorite_category"].tolist() == user_want["favorite_category"].tolist()
    for i, row in entities.iterrows():
        want, got = latest_at(products, row), result.loc[i]
        if want is None:
            assert (got["purchases_30d"], got["buyers_30d"], pd.isna(got["popularity_rank_30d"])) == (0, 0, True), got
        else:
            assert (got["purchases_30d"], got["buyers_30d"], got["popularity_rank_30d"]) == (
                want["purchases_30d"], want["buyers_30d"], want["popularity_rank_30d"]), (row.to_dict(), want.to_dict())
    # the second source's product features, by the same key: null average where no rating row
    ratings = reference_rating_features(backfilled / "raw" / "ratings", START, END, "product")
    for i, row in entities.iterrows():
        want, got = latest_at(ratings, row), result.loc[i]
        assert got["ratings_90d"] == (0 if want is None else want["ratings_90d"]), (row.to_dict(), want)
        if want is None or want["avg_rating_90d"] is None:
            assert pd.isna(got["avg_rating_90d"]), (row.to_dict(), want)
        else:
            assert got["avg_rating_90d"] == pytest.approx(want["avg_rating_90d"], rel=1e-9)

    # user, product and embedding features in one set: the product's main_category as of the row
    # picks its category's committed vector (none without a main category)
    from featurepipe.embeddings import load

    vectors = load()
    mixed = training_set(entities, features=["transactions_30d", "purchases_30d", "main_category", "category_embedding"])
    assert list(mixed.columns) == [*entities.columns, "transactions_30d", "purchases_30d", "main_category",
                                   "category_embedding"]
    assert mixed["transactions_30d"].tolist() == result["transactions_30d"].tolist()
    assert any(c is not None for c in mixed["main_category"]) and any(c is None for c in mixed["main_category"])
    for category, vector in zip(mixed["main_category"], mixed["category_embedding"]):
        assert (vector is None) if category is None else vector == pytest.approx(vectors[category]), (category, vector)


def test_the_windowed_point_in_time_join_answers_what_feasts_own_query_answers(backfilled: Path, expected: pd.DataFrame,
                                                                              spark) -> None:
    """featurepipe.feast_offline's join against Feast's own Spark query, on the same registry and
    entity rows: at a midnight, 1 µs before one, before a user's first row, long after the last,
    duplicated rows, an unknown user; stored and on-demand features, short and full names."""
    from feast.infra.offline_stores.contrib.spark_offline_store.spark import SparkOfflineStore

    from featurepipe.feast_offline import WindowedSparkOfflineStore
    from featurepipe.feast_store import ensure_applied, feast_session, get_store
    from featurepipe.spark import get_spark

    first = pd.to_datetime(expected.groupby("user_id")["event_timestamp"].min(), utc=True)
    users = list(first.index[:6])
    stamps = [first[users[0]], first[users[1]] - pd.Timedelta(microseconds=1), first[users[2]] + pd.Timedelta(days=3),
              pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=200), first[users[4]].floor("D") - pd.Timedelta(days=40),
              pd.Timestamp(END, tz="UTC") - pd.Timedelta(hours=5)]
    entities = pd.DataFrame({"user_id": users + [users[0], "u9999"], "event_timestamp": stamps + [stamps[0], stamps[3]],
                             "amount": [10.0, 20.0, 0.5, 99.0, 7.0, 1.0, 10.0, 3.0]})
    get_spark("featurepipe-training-set")
    store = get_store()
    ensure_applied(store)
    refs = [f"user_purchase_features:{name}" for name in FEATURE_COLUMNS] + [
        "user_purchase_on_demand:hour_of_day", "user_purchase_on_demand:amount_vs_avg_basket_30d"]
    views = [store.get_feature_view("user_purchase_features")]
    for full in (False, True):
        frames = []
        for offline_store in (SparkOfflineStore, WindowedSparkOfflineStore):
            with feast_session(spark):
                job = offline_store.get_historical_features(
                    store.config, views, refs[:len(FEATURE_COLUMNS)], entities.copy(), store.registry, store.project,
                    full_feature_names=full)
                frames.append(job.to_df().sort_values(["user_id", "event_timestamp"], ignore_index=True))
        pd.testing.assert_frame_equal(frames[1], frames[0], check_dtype=False)
    # and through the store, with the on-demand view applied by Feast's retrieval job
    with feast_session(spark):
        ours = store.get_historical_features(entity_df=entities.copy(), features=refs).to_df()
    assert len(ours) == len(entities) and ours["amount_vs_avg_basket_30d"].notna().sum() >= 4


def test_training_set_with_a_feature_service_and_a_bad_input(backfilled: Path, tmp_path: Path, spark) -> None:
    from featurepipe.feast_store import training_set

    # the library call the CLI makes (the test above runs the CLI), on the session's warm Spark
    entities = pd.DataFrame({"user_id": ["u0001"], "event_timestamp": pd.to_datetime(["2025-03-15T12:00:00Z"], utc=True)})
    result = training_set(entities, feature_service="user_spend_v1")
    assert list(result.columns) == ["user_id", "event_timestamp", "transactions_30d", "total_spent_30d",
                                    "avg_basket_size_30d", "max_purchase_90d"]
    pd.DataFrame({"customer": ["u0001"]}).to_csv(tmp_path / "bad.csv", index=False)
    bad = run_cli(backfilled, "training-set", "--entities", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x.parquet"), check=False)
    assert bad.returncode != 0
    assert "user_id" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


PLAIN_FEAST = """
import sys

import pandas as pd
from feast import FeatureStore

store = FeatureStore(repo_path="feature_repo")
service = store.get_feature_service("user_purchase_all")
on_demand = [f"user_purchase_on_demand:{name}" for name in ("hour_of_day", "is_weekend", "amount_vs_avg_basket_30d")]
refs = [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features] + on_demand
entities = pd.read_parquet(sys.argv[1])
store.get_historical_features(entity_df=entities, features=refs).to_df().to_parquet(sys.argv[2])
rows = [{"user_id": user} for user in entities["user_id"]]
pd.DataFrame(store.get_online_features(features=service, entity_rows=rows).to_dict()).to_parquet(sys.argv[3])
"""


def test_plain_feast_after_feast_env_equals_featurepipe(backfilled: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    """A data scientist's own Python (importing only feast and pandas) and the `feast` CLI, after
    `eval "$(featurepipe feast-env)"` from the project root: Feast starts its own Spark session from
    feature_store.yaml, with Delta, and gives what featurepipe gives."""
    import subprocess
    import sys

    from cli_helpers import CLI, cli_env
    from featurepipe.feast_store import training_set
    from featurepipe.settings import PROJECT_ROOT

    # rows with history (plain Feast gives nulls where featurepipe gives the no-history values, SPEC §4)
    rows = expected.drop_duplicates("user_id").head(8)
    users = list(rows["user_id"])
    when = pd.to_datetime(rows["event_timestamp"], utc=True).reset_index(drop=True)
    entities = pd.DataFrame({"user_id": users, "event_timestamp": when + pd.to_timedelta([3 * i for i in range(len(users))], unit="h"),
                             "amount": [10.0 * (i + 1) for i in range(len(users))]})
    entities.to_parquet(tmp_path / "entities.parquet")
    (tmp_path / "mine.py").write_text(PLAIN_FEAST)
    venv = Path(sys.executable).parent
    shell = (f'eval "$({CLI} feast-env)" && {venv / "python"} {tmp_path / "mine.py"} {tmp_path / "entities.parquet"} '
             f'{tmp_path / "training.parquet"} {tmp_path / "online.parquet"} && {venv / "feast"} -c feature_repo feature-views list')
    env = {k: v for k, v in cli_env(backfilled).items() if k != "FEATUREPIPE_SPARK_SERVER"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != venv)  # no venv on PATH
    out = subprocess.run(["bash", "-c", shell], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "user_purchase_features" in out.stdout  # `feast feature-views list`

    # the on-demand view too: Feast runs its function from the registry in the user's own Python
    on_demand = ["hour_of_day", "is_weekend", "amount_vs_avg_basket_30d"]
    ours = training_set(entities, features=[*FEATURE_COLUMNS, *on_demand])
    theirs = pd.read_parquet(tmp_path / "training.parquet").sort_values("user_id", ignore_index=True)
    assert theirs["hour_of_day"].tolist() == ours["hour_of_day"].tolist()
    assert theirs["is_weekend"].tolist() == ours["is_weekend"].tolist()
    np.testing.assert_allclose(theirs["amount_vs_avg_basket_30d"].to_numpy(float),
                               ours["amount_vs_avg_basket_30d"].to_numpy(float), rtol=1e-12)
    for name in FEATURE_COLUMNS:
        if name in COUNT_FEATURES:
            assert theirs[name].astype("Int64").tolist() == ours[name].tolist(), name
        elif name in FLOAT_FEATURES:
            np.testing.assert_allclose(theirs[name].to_numpy(float), ours[name].to_numpy(float), rtol=1e-12, err_msg=name)
        else:
            assert theirs[name].tolist() == ours[name].tolist(), name
    online = pd.read_parquet(tmp_path / "online.parquet").set_index("user_id")
    for user, row in online_now(users).items():
        assert {k: online.loc[user, k] for k in FEATURE_COLUMNS} == pytest.approx({k: row[k] for k in FEATURE_COLUMNS}), user


def test_online_store_sqlite_serves_the_latest_row(backfilled: Path, expected: pd.DataFrame) -> None:
    users = sorted(expected["user_id"].unique())[:12]
    assert_online_is_latest(online(backfilled, users), expected)


def overwrite_online(user: str, values: dict, **env: str) -> dict:
    """Write `values` over `user`'s online row through Feast's own write path (SQLite file or the real
    Redis server); returns the row as it was, for restoring it."""
    from featurepipe.feast_store import get_store, online_features
    from featurepipe.spec import USER_PURCHASE

    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        row = online_features([user], with_as_of=True)[0]
        as_of = row.pop("as_of")
        written = pd.DataFrame([{**row, **values, "event_timestamp": as_of}])
        get_store().write_to_online_store(USER_PURCHASE.name, written)
        return {**row, "event_timestamp": as_of}


def restore_online(row: dict, **env: str) -> None:
    overwrite_online(row["user_id"], {k: v for k, v in row.items() if k not in ("user_id", "event_timestamp")}, **env)


def test_parity_holds_after_the_run_and_a_changed_online_value_fails_the_cli_and_the_dag_task(
    backfilled: Path, spark
) -> None:
    import os

    from cli_helpers import cli_env, wait_for_spark_server
    from featurepipe.orchestrator import PipelineFailed, run_dag
    from featurepipe.parity import check_parity

    result = check_parity(spark)  # what the backfill's check_parity task checked, all 30 users
    assert result.ok and result.users >= 25 and str(result.newest_as_of) == str(END)
    row = overwrite_online("u0004", {"total_spent_30d": 12345.5})
    try:
        out = run_cli(backfilled, "parity", "--sample", "1000", check=False)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "u0004 total_spent_30d online=12345.5 offline=" in out.stderr
        assert len([line for line in out.stderr.splitlines() if line.startswith("u0")]) == 1
        # the daily DAG's parity task (its other tasks marked done): the run fails naming the user
        wait_for_spark_server()
        saved = dict(os.environ)
        os.environ.update(cli_env(backfilled))
        try:
            with pytest.raises(PipelineFailed) as failure:
                run_dag("featurepipe_daily", END.isoformat(),
                        skip="wait_for_landing|validate_raw|compute_features|validate_features|publish|materialize")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert "check_parity: the online store differs" in str(failure.value) and "u0004" in str(failure.value)
    finally:
        restore_online(row)
    assert check_parity(spark).ok


def test_online_reads_with_status_say_fresh_stale_or_missing(backfilled: Path) -> None:
    from featurepipe.staleness import online_with_status

    now = (dt.datetime.combine(END, dt.time(), dt.timezone.utc) + dt.timedelta(days=3)).isoformat()
    out = run_cli(backfilled, "online", "--user-id", "u0002", "--user-id", "nobody", "--with-status", "--now", now)
    known, unknown = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert known["status"] == "stale" and known["as_of"] == f"{END}T00:00:00Z"
    assert unknown == {"user_id": "nobody", "transactions_7d": 0, "transactions_30d": 0, "transactions_90d": 0,
                       "total_spent_7d": 0.0, "total_spent_30d": 0.0, "total_spent_90d": 0.0,
                       "avg_basket_size_30d": 0.0, "max_purchase_90d": 0.0, "favorite_category": None,
                       "as_of": None, "status": "missing"}
    fresh = online_with_status(["u0002"], now=dt.datetime.combine(END, dt.time(12), dt.timezone.utc))[0]
    assert fresh["status"] == "fresh" and {k: fresh[k] for k in known if k not in ("status",)} == {
        k: known[k] for k in known if k != "status"}


def test_report_writes_a_self_contained_page_a_summary_and_feature_stats(backfilled: Path, spark, tmp_path: Path) -> None:
    import re
    import shutil
    import subprocess

    from featurepipe import lake
    from featurepipe.spec import USER_PURCHASE

    out = run_cli(backfilled, "report", "--date", END.isoformat(), "--json")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["as_of"] == END.isoformat()
    assert set(summary) >= {"as_of", "breaches", "features", "freshness", "completeness", "reference"}
    assert list(summary["features"]) == USER_PURCHASE.feature_names
    for stats in summary["features"].values():
        assert {"ks", "p_value", "psi", "null_rate"} <= set(stats)
    assert summary["reference"] == {"start": "2025-02-25", "end": "2025-03-24", "dates": 24, "pinned": False}
    # the landing zone holds events up to 9 days after the newest published as-of: a freshness breach
    lag = [b for b in summary["breaches"] if b["check"] == "freshness"]
    assert lag and lag[0]["statistic"] == "publish_lag_hours" and lag[0]["value"] > 72
    folder = backfilled / "reports" / "monitoring" / END.isoformat()
    assert f"HTML: {folder / 'index.html'}" in out.stderr
    assert json.loads((folder / "summary.json").read_text())["breaches"] == summary["breaches"]
    page = (folder / "index.html").read_text()
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page), "the page references an external URL"
    assert "<script src" not in page and "<link" not in page
    for name in USER_PURCHASE.feature_names:
        plot = re.search(rf'<svg[^>]*data-plot="distribution"[^>]*data-feature="{name}".*?</svg>', page, re.S)
        assert plot and plot.group(0).count("<rect") >= 4, name
    stats = lake.read_table(spark, lake.FEATURE_STATS).where(f"as_of_date = '{END}'").toPandas()
    assert set(stats["feature"]) == set(USER_PURCHASE.feature_names) | {"(table)"}
    assert stats.loc[stats["statistic"] == "publish_lag_hours", "breached"].all()
    # a headless browser renders it (the README's screenshot is made the same way)
    shot = tmp_path / "report.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Debian's chromium is needed (make test installs it)"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,2000",
                    f"--screenshot={shot}", (folder / "index.html").as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 50_000


def test_the_monitoring_dag_fails_on_a_breach_and_its_notifier_posts_the_alert(backfilled: Path) -> None:
    """featurepipe_monitoring (run as `airflow dags test`) on a lake 9 days behind its landings: the
    check fails and the notifier POSTs the breaches to the webhook of FEATUREPIPE_ALERT_WEBHOOK_URL."""
    import os
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from cli_helpers import cli_env
    from featurepipe.orchestrator import PipelineFailed, run_dag

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    saved = dict(os.environ)
    os.environ.update(cli_env(backfilled, FEATUREPIPE_ALERT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/alerts"))
    try:
        with pytest.raises(PipelineFailed) as failure:
            run_dag("featurepipe_monitoring", END.isoformat())
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.shutdown()
    assert "check_features: monitoring:" in str(failure.value) and "breach(es) as of" in str(failure.value)
    assert len(received) == 1, received
    alert = received[0]
    assert alert["dag_id"] == "featurepipe_monitoring" and alert["as_of"] == END.isoformat()
    assert any(b["check"] == "freshness" and b["statistic"] == "publish_lag_hours" for b in alert["breaches"])
    assert alert["report"].endswith(f"monitoring/{END}/index.html")


def test_freshness_breaches_when_the_lake_is_three_days_behind_its_landings(backfilled: Path, spark, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featurepipe.monitor_config import load_config, publish_lag_limit_hours
    from featurepipe.monitoring import _freshness, freshness_breaches
    from featurepipe.spec import USER_PURCHASE

    def lag_after(hours: float) -> dict:
        raw = tmp_path / f"raw-{hours}"
        folder = raw / "transactions" / "landing_date=2025-04-05"
        folder.mkdir(parents=True)
        newest = dt.datetime.combine(END, dt.time(), dt.timezone.utc) + dt.timedelta(hours=hours)
        pq.write_table(pa.table({"transaction_id": ["t1"], "user_id": ["u1"], "amount": [1.0],
                                 "event_timestamp": pa.array([newest], pa.timestamp("us", "UTC"))}), folder / "p.parquet")
        monkeypatch.setenv("FEATUREPIPE_RAW_URI", str(raw))
        return _freshness(spark, END)

    limit = publish_lag_limit_hours(USER_PURCHASE)  # the spec's freshness_sla
    behind = lag_after(3 * 24 + 2)  # the lake's newest as-of is 3 days older than the newest landed event
    assert behind["publish_lag_hours"] == pytest.approx(74) and behind["publish_lag_hours"] >= limit
    assert [b["statistic"] for b in freshness_breaches(behind, load_config(), USER_PURCHASE)] == ["publish_lag_hours"]
    normal = lag_after(30)  # a day of events landed before its run: normal
    assert normal["publish_lag_hours"] < limit and freshness_breaches(normal, load_config(), USER_PURCHASE) == []
    assert behind["online_newest_as_of"] == END.isoformat() and behind["online_lag_days"] == 0


def test_a_failed_feature_suite_blocks_publish_and_materialize(backfilled: Path, expected: pd.DataFrame, spark) -> None:
    """Break a daily user tile under END's windows (a bug in the tile step), rerun the daily DAG for END
    from compute_features on: the user suite fails and nothing of the user group moves, while the
    product group (its suite passed) is published; the run fails. The tile is restored afterwards."""
    from pyspark.sql import functions as F

    from featurepipe import lake
    from featurepipe.spec import PRODUCT_PURCHASE, USER_PURCHASE
    from featurepipe.orchestrator import PipelineFailed, run_dag
    from featurepipe.tiles import write_tiles
    from cli_helpers import cli_env, wait_for_spark_server

    users = sorted(expected["user_id"].unique())[:12]
    before_online = online_now(users)
    before_table = published(spark)
    products = lake.features_table(PRODUCT_PURCHASE)
    before_products = published(spark, products)
    product_version = lake.table_version(spark, products)

    day = END - dt.timedelta(days=3)
    tiles = lake.read_range(spark, lake.TILES, "event_date", day, day).localCheckpoint()
    assert tiles.count() > 0, "no tile on END - 3: pick another day"
    # a negative count: transactions_7d < 0 for every user with that tile
    write_tiles(spark, tiles.withColumn("event_count", F.lit(-1000).cast("long")), USER_PURCHASE, [day])

    import os

    wait_for_spark_server()
    saved = dict(os.environ)
    os.environ.update(cli_env(backfilled))
    try:
        with pytest.raises(PipelineFailed) as failure:
            run_dag("featurepipe_daily", END.isoformat(), skip="wait_for_landing|validate_raw")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        write_tiles(spark, tiles, USER_PURCHASE, [day])
    assert "feature suite failed" in str(failure.value) or "validate_features" in str(failure.value)
    pd.testing.assert_frame_equal(
        published(spark).sort_values(KEY, ignore_index=True), before_table.sort_values(KEY, ignore_index=True)
    )
    assert online_now(users) == before_online
    # the other group was not held back: its END partition was replaced (same rows: its input did not change)
    assert lake.table_version(spark, products) == product_version + 1
    product_key = ["product_id", "event_timestamp"]
    pd.testing.assert_frame_equal(published(spark, products).sort_values(product_key, ignore_index=True),
                                  before_products.sort_values(product_key, ignore_index=True))


def test_rerun_into_redis_is_idempotent_and_serves_the_latest_row(
    backfilled: Path, expected: pd.DataFrame, redis_url: str, spark
) -> None:
    before = published(spark)
    run_cli(backfilled, "backfill", "--start", START.isoformat(), "--end", END.isoformat(),
            FEATUREPIPE_ONLINE_STORE="redis", FEATUREPIPE_REDIS_URL=redis_url)
    after = published(spark)
    assert len(after) == len(before) and not after.duplicated(KEY).any()
    assert_features_equal(after, expected, "after rerun")
    users = sorted(expected["user_id"].unique())
    assert_online_is_latest(online(backfilled, users, FEATUREPIPE_ONLINE_STORE="redis", FEATUREPIPE_REDIS_URL=redis_url), expected)
    # the run's check_parity passed on Redis; a value changed in the real Redis server is found
    from featurepipe.parity import check_parity

    redis = {"FEATUREPIPE_ONLINE_STORE": "redis", "FEATUREPIPE_REDIS_URL": redis_url}
    row = overwrite_online("u0005", {"transactions_7d": 777}, **redis)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in redis.items():
                patch.setenv(key, value)
            mismatches = check_parity(spark).mismatches
    finally:
        restore_online(row, **redis)
    assert [(m.entity, m.feature, m.online) for m in mismatches] == [("u0005", "transactions_7d", 777)]


def test_a_file_with_a_mistyped_column_fails_the_run_naming_file_and_column(backfilled: Path, spark) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featurepipe import lake

    folder = backfilled / "raw" / "transactions" / "landing_date=2099-01-01"
    folder.mkdir(parents=True)
    bad = folder / "bad.parquet"
    pq.write_table(pa.table({"transaction_id": ["x1"], "user_id": ["u1"], "amount": ["12.50"],
                             "event_timestamp": pa.array([dt.datetime(2025, 3, 30)], pa.timestamp("us", "UTC"))}), bad)
    versions = lake.read_table(spark, lake.FEATURES).count()
    try:
        # this run's steps go through `spark-submit` (one Spark application per step, the runner
        # for non-local masters): the failing step's reason still reaches the user
        out = run_cli(backfilled, "run", "--date", END.isoformat(), check=False, FEATUREPIPE_STEP_RUNNER="spark-submit")
    finally:
        bad.unlink()
        folder.rmdir()
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()
    assert len(message) == 1, out.stderr
    assert str(bad) in message[0] and "'amount'" in message[0]
    assert lake.read_table(spark, lake.FEATURES).count() == versions


def test_a_late_event_is_repaired_in_the_table_and_in_redis_for_the_same_as_of(
    backfilled: Path, redis_url: str, spark
) -> None:
    """Day END's run is done; then a landing brings an event of END - 5 days. Rerunning END (the
    next run for the same as-of, as a retry or a scheduled rerun would) repairs as-of END-4..END
    and Redis serves the corrected row although its event timestamp (END) did not change."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    redis = {"FEATUREPIPE_ONLINE_STORE": "redis", "FEATUREPIPE_REDIS_URL": redis_url}
    user = "u0003"
    before = online_now([user], **redis)[user]
    late = dt.datetime(2025, 3, 26, 12, 0, tzinfo=dt.timezone.utc)  # END - 5 days
    folder = backfilled / "raw" / "transactions" / "landing_date=2025-04-10"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({
        "transaction_id": ["late-0001"], "user_id": [user], "product_id": ["p-late"], "category": ["late-category"],
        "amount": [9999.0], "event_timestamp": pa.array([late], pa.timestamp("us", "UTC")),
    }), folder / "part-00000.parquet")

    out = run_cli(backfilled, "run", "--date", END.isoformat(), **redis)
    assert "4 earlier as-of days repaired for late data" in out.stdout, out.stdout

    wanted = reference_features(backfilled / "raw" / "transactions", START, END)
    assert_features_equal(published(spark), wanted, "after the late landing")
    after = online_now([user], **redis)
    assert after[user]["max_purchase_90d"] == 9999.0 != before["max_purchase_90d"]
    assert_online_is_latest(after, wanted)


def test_a_training_set_is_reproduced_from_its_manifest_after_a_run_changed_the_table(backfilled: Path, spark,
                                                                                     tmp_path: Path) -> None:
    """The late-event test's run changed u0003's values; the first training set (test_training_set_is_point_in_time_correct)
    is reproduced byte for byte from its manifest, and an older version gives the older values."""
    from featurepipe import lake
    from featurepipe.training_sets import table_versions

    first = backfilled / "training" / "first.parquet"
    manifest = json.loads(first.with_name("first.parquet.manifest.json").read_text())
    current = lake.table_version(spark, lake.FEATURES)
    assert current > manifest["delta_version"], "no run changed the table since the first training set"
    again = tmp_path / "again.parquet"
    out = run_cli(backfilled, "training-set", "--manifest", str(first) + ".manifest.json", "--out", str(again))
    assert "reproduced: byte-identical" in out.stdout
    assert again.read_bytes() == first.read_bytes()

    # u0003 at END + 12 h: 9999.0 (the late event) now, the value before it at the first version
    entities = tmp_path / "u0003.csv"
    pd.DataFrame({"user_id": ["u0003"], "event_timestamp": [f"{END}T12:00:00Z"]}).to_csv(entities, index=False)
    committed = dict(table_versions(spark, lake.FEATURES))[manifest["delta_version"]]
    reads = {}
    for label, pin in [("now", []), ("version", ["--as-of-version", str(manifest["delta_version"])]),
                       ("timestamp", ["--as-of-timestamp", (committed + dt.timedelta(milliseconds=1)).isoformat()])]:
        path = tmp_path / f"{label}.parquet"
        run_cli(backfilled, "training-set", "--entities", str(entities), "--out", str(path), "--feature-service", "user_spend_v1", *pin)
        reads[label] = (pd.read_parquet(path)["max_purchase_90d"].item(),
                        json.loads(Path(f"{path}.manifest.json").read_text())["delta_version"])
    assert reads["now"] == (9999.0, current)
    assert reads["version"] == reads["timestamp"] and reads["version"][0] != 9999.0
    assert reads["version"][1] == manifest["delta_version"]

    # bad input: one line naming what is wrong
    for args, wanted in [(["--entities", str(entities), "--as-of-version", "999"], "no version 999"),
                         (["--entities", str(entities), "--feature-service", "nope"], "nope"),
                         (["--manifest", str(first) + ".manifest.json", "--entities", str(entities)], "--manifest takes only --out")]:
        bad = run_cli(backfilled, "training-set", *args, "--out", str(tmp_path / "bad.parquet"), check=False)
        assert bad.returncode != 0 and wanted in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr



ON_DEMAND = ["hour_of_day", "day_of_week", "is_weekend", "amount_vs_avg_basket_30d"]
V2 = ["transactions_30d", "total_spent_30d", "avg_basket_size_30d", "max_purchase_90d", "amount_vs_avg_basket_30d"]


def assert_rows_equal(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs)
    for mine, other in zip(ours, theirs):
        assert mine == pytest.approx(other), (mine, other)


def http_online(url: str, body: dict) -> tuple[int, list[dict] | str]:
    """POST /get-online-features: (status, one dict per entity) on success, (status, text) else."""
    import requests

    response = requests.post(f"{url}/get-online-features", json=body, timeout=60)
    if response.status_code != 200:
        return response.status_code, response.text
    payload = response.json()
    names = payload["metadata"]["feature_names"]
    columns = [r["values"] for r in payload["results"]]
    return 200, [dict(zip(names, values)) for values in zip(*columns)]


def test_on_demand_features_agree_in_a_training_set_the_sdk_and_the_http_server_on_redis(
    backfilled: Path, expected: pd.DataFrame, redis_url: str, spark
) -> None:
    """SPEC §7: the same requests give the same on-demand values in a training set (request values
    from entity columns), through the SDK (`--request`, `--now`) and over `featurepipe serve` with
    Redis behind it; the server equals the SDK for stored features too, known user or not (SPEC §4)."""
    import subprocess
    import time

    import requests
    from cli_helpers import CLI, cli_env, free_port
    from featurepipe.feast_store import online_features, training_set

    latest = expected.sort_values("event_timestamp").groupby("user_id").tail(1)
    known = latest.loc[latest["avg_basket_size_30d"] > 0, "user_id"].iloc[0]
    zero = latest.loc[latest["avg_basket_size_30d"] == 0, "user_id"].iloc[0]  # a row, and a zero average
    users = [known, zero, "u9999"]  # u9999: no history at all
    when = dt.datetime(2025, 4, 5, 22, 30, tzinfo=dt.timezone.utc)  # a Saturday, after the last as-of
    features = [*V2[:-1], *ON_DEMAND]
    redis = {"FEATUREPIPE_ONLINE_STORE": "redis", "FEATUREPIPE_REDIS_URL": redis_url}

    with pytest.MonkeyPatch.context() as patch:
        for key, value in redis.items():
            patch.setenv(key, value)
        entities = pd.DataFrame({"user_id": users, "event_timestamp": [when] * 3, "amount": [42.0] * 3})
        trained = training_set(entities, features=features).drop(columns=["event_timestamp", "amount"])
        sdk = online_features(users, features=features, request={"amount": "42"}, now=when)
        sdk_v2 = online_features(users, feature_service="user_spend_v2", request={"amount": "42"})
    trained_rows = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in trained.to_dict("records")]
    assert_rows_equal(trained_rows, sdk)
    by_user = {row["user_id"]: row for row in sdk}
    assert by_user[known]["amount_vs_avg_basket_30d"] == pytest.approx(42.0 / by_user[known]["avg_basket_size_30d"])
    assert by_user[zero]["avg_basket_size_30d"] == 0.0 and by_user[zero]["amount_vs_avg_basket_30d"] is None
    assert by_user["u9999"] == {"user_id": "u9999", **dict.fromkeys(V2[:2], 0), "avg_basket_size_30d": 0.0,
                                "max_purchase_90d": 0.0, "total_spent_30d": 0.0, "hour_of_day": 22, "day_of_week": 5,
                                "is_weekend": True, "amount_vs_avg_basket_30d": None}

    port = free_port()
    server = subprocess.Popen([str(CLI), "serve", "--port", str(port)], env=cli_env(backfilled, **redis),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        began = time.time()
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.communicate()[0][-3000:]
            assert time.time() - began < 120, "featurepipe serve did not answer in 120 s"
            time.sleep(0.5)
        request = {"user_id": users, "amount": [42.0] * 3, "event_timestamp": [when.isoformat()] * 3}
        refs = [f"{'user_purchase_on_demand' if f in ON_DEMAND else 'user_purchase_features'}:{f}" for f in features]
        status, over_http = http_online(url, {"features": refs, "entities": request})
        assert status == 200
        assert_rows_equal(over_http, sdk)
        # request values as a service sends them: epoch seconds for the instant, per entity
        status, v2 = http_online(url, {"feature_service": "user_spend_v2",
                                       "entities": {**request, "event_timestamp": [int(when.timestamp())] * 3}})
        assert status == 200
        assert_rows_equal([{k: row[k] for k in ["user_id", *V2]} for row in v2], sdk_v2)
        status, v1 = http_online(url, {"feature_service": "user_spend_v1", "entities": {"user_id": users}})
        assert status == 200 and [set(row) for row in v1] == [{"user_id", *V2[:-1]}] * 3  # v1 served beside v2
        # a request without the amount the on-demand feature needs
        status, text = http_online(url, {"feature_service": "user_spend_v2", "entities": {"user_id": users}})
        assert status >= 400 and "amount" in text
    finally:
        server.terminate()
        server.wait(timeout=30)

    bad = run_cli(backfilled, "online", "--user-id", known, "--feature-service", "user_spend_v2", check=False, **redis)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert "needs a request value 'amount': pass --request amount=VALUE" in bad.stderr
    out = run_cli(backfilled, "online", "--user-id", known, "--features", ",".join(ON_DEMAND), "--request", "amount=42",
                  "--now", when.isoformat(), **redis)
    assert json.loads(out.stdout.splitlines()[-1]) == pytest.approx({k: by_user[known][k] for k in ["user_id", *ON_DEMAND]})
