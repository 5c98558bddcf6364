"""The feature catalog (`featurepipe catalog`, featurepipe.catalog), its Delta-log freshness
(featurepipe.delta_log) and the SLA's move from monitoring.toml to the spec."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from featurepipe import catalog, delta_log, lake, spec
from featurepipe.settings import FEATURE_REPO_DIR, format_duration, parse_duration


@pytest.fixture()
def empty_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir with no landing zone and no lake at all."""
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FEATUREPIPE_RAW_URI", raising=False)
    monkeypatch.delenv("FEATUREPIPE_LAKE_URI", raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def repo_services() -> list:
    """feature_repo/'s FeatureService objects, found here independently of the catalog's own reading."""
    from feast import FeatureService

    if str(FEATURE_REPO_DIR) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO_DIR))
    import feature_services

    return [o for o in vars(feature_services).values() if isinstance(o, FeatureService)]


def test_the_page_and_json_list_every_group_feature_owner_sla_lineage_and_service(
        empty_machine: Path, repo_services: list) -> None:
    written = catalog.write_catalog(empty_machine / "somewhere" / "catalog.html", say=lambda _: None)
    assert written.json == (empty_machine / "somewhere" / "catalog.json").resolve()
    data = json.loads(written.json.read_text())
    page = written.html.read_text()
    assert data == json.loads(json.dumps(written.catalog, default=str))  # the json is the catalog

    assert [g["name"] for g in data["groups"]] == [g.name for g in spec.GROUPS]
    for group, entry in zip(spec.GROUPS, data["groups"]):
        assert (entry["entity"], entry["join_key"], entry["owner"], entry["version"], entry["description"]) == (
            group.entity, group.join_key, group.owner, group.version, group.description)
        assert parse_duration(entry["freshness_sla"]) == group.freshness_sla
        assert entry["freshness_sla_hours"] == group.freshness_sla.total_seconds() / 3600
        assert [(f["name"], f["type"], f["op"], f["column"], f["window_days"]) for f in entry["features"]] == [
            (f.name, f.dtype.value, f.op.value, f.column, f.window_days) for f in group.features]
        upstream = {u["kind"]: u for u in entry["upstream"]}
        assert upstream["raw"]["uri"] == f"{empty_machine / 'raw' / group.source.name}/"
        assert upstream["quarantine"]["name"] == lake.quarantine_table(group.source)
        assert upstream["clean"]["name"] == lake.clean_table(group.source)
        assert upstream["tiles"]["name"] == lake.tiles_table(group)
        assert entry["table"]["name"] == lake.features_table(group)
        assert entry["downstream"]["on_demand_groups"] == [o.name for o in spec.ON_DEMAND_GROUPS if o.base is group]
        # every projection of this group's view in feature_repo/feature_services.py, with its features
        expected = sorted((s.name, tuple(f.name for f in p.features)) for s in repo_services
                          for p in s.feature_view_projections if p.name == group.name)
        assert sorted((s["name"], tuple(s["features"])) for s in entry["downstream"]["feature_services"]) == expected
        assert entry["freshness"]["status"] == catalog.NEVER_PUBLISHED and entry["freshness"]["newest_as_of"] is None

        section = page.split(f'data-group="{group.name}"', 1)[1].split("</section>", 1)[0]
        for text in (group.owner, format_duration(group.freshness_sla), group.entity, group.join_key,
                     lake.quarantine_table(group.source), lake.clean_table(group.source), lake.tiles_table(group),
                     lake.features_table(group), f"{empty_machine / 'raw' / group.source.name}/", "never published",
                     *(f"<code>{f.name}</code>" for f in group.features), *(f"{w}d" for f in group.features for w in [f.window_days]),
                     *(f.dtype.value for f in group.features), *(name for name, _ in expected)):
            assert text in section, f"{group.name}: {text!r} missing from its section of the page"

    assert [o["name"] for o in data["on_demand_groups"]] == [o.name for o in spec.ON_DEMAND_GROUPS]
    for group, entry in zip(spec.ON_DEMAND_GROUPS, data["on_demand_groups"]):
        assert entry["base"] == group.base.name
        assert entry["request"] == [{"name": c.name, "kind": c.kind} for c in group.request]
        assert [(f["name"], f["inputs"]) for f in entry["features"]] == [(f.name, list(f.inputs)) for f in group.features]
        assert f'data-on-demand="{group.name}"' in page
    assert sorted(s["name"] for s in data["feature_services"]) == sorted(s.name for s in repo_services)
    # the category embeddings: a reference view, with how it is made and how a product reaches it
    (reference,) = data["reference_views"]
    assert (reference["name"], reference["join_key"], reference["via"], reference["dimensions"], reference["owner"]) == (
        "category_embeddings", "category", "product_purchase_features.main_category", 16, "catalog-data")
    assert reference["feast_feature_view"] and 'data-reference="category_embeddings"' in page
    # self-contained: no script, no external URL
    assert "<script" not in page and "http://" not in page and "https://" not in page


def _feature_rows(spark, group: spec.FeatureGroup, dates: list[dt.date]):
    """A tiny feature table's rows: two entities per as-of date (`a<date>`, `b<date>`), the group's first feature."""
    rows = [(f"{e}{d.isoformat()}", dt.datetime.combine(d, dt.time()), d, 1) for d in dates for e in "ab"]
    return spark.createDataFrame(rows, f"{group.join_key} string, event_timestamp timestamp, "
                                       f"{lake.AS_OF_DATE} date, {group.features[0].name} long")


def _land(raw: Path, source: spec.Source, day: str, newest: dt.datetime) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = raw / source.name / f"landing_date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"transaction_id": ["t1"], "user_id": ["u1"], "product_id": ["p1"], "amount": [1.0],
                             source.timestamp_column: pa.array([newest], pa.timestamp("us", "UTC"))}),
                   folder / "part.parquet")


def test_freshness_from_a_real_delta_table_and_a_lag_over_the_sla_is_flagged(
        spark, empty_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.sql import functions as F

    group = spec.GROUPS[0]
    raw, lake_dir = empty_machine / "raw", empty_machine / "lake"
    monkeypatch.setenv("FEATUREPIPE_RAW_URI", str(raw))
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", str(lake_dir))
    table = lake.features_table(group)
    uri = str(lake_dir / table)
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(4)]  # as-of 03-01 .. 03-04

    def spark_newest() -> dt.date | None:
        return lake.read_table(spark, table).agg(F.max(lake.AS_OF_DATE)).first()[0]

    # a table of several commits with a checkpoint every 2 (the log replay starts from one), and
    # deletion vectors on (a row-level delete below keeps the file and marks its rows deleted)
    lake.overwrite(_feature_rows(spark, group, days[:3]), table, partition_by=lake.AS_OF_DATE)
    spark.sql(f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES ('delta.checkpointInterval' = '2', "
              "'delta.enableDeletionVectors' = 'true')")
    lake.replace_dates(_feature_rows(spark, group, days[3:]), table, lake.AS_OF_DATE, days[3:])  # version 2
    assert any(p.name.endswith(".checkpoint.parquet") for p in (lake_dir / table / "_delta_log").iterdir())
    assert delta_log.newest_date(uri, lake.AS_OF_DATE) == days[-1]

    newest = dt.datetime.combine(days[-1], dt.time(), dt.timezone.utc)
    sla_hours = group.freshness_sla.total_seconds() / 3600
    _land(raw, group.source, days[-1].isoformat(), newest + dt.timedelta(hours=sla_hours / 2))
    fresh = catalog.freshness(group)
    assert (fresh["status"], fresh["newest_as_of"], fresh["lag_hours"], fresh["within_sla"], fresh["read_with"]) == (
        catalog.WITHIN_SLA, days[-1].isoformat(), pytest.approx(sla_hours / 2), True, "delta log")
    assert fresh["newest_landed_event"] == (newest + dt.timedelta(hours=sla_hours / 2)).isoformat()

    # events land that the lake has not published for longer than the SLA allows
    later = newest + dt.timedelta(hours=sla_hours + 5)
    _land(raw, group.source, later.date().isoformat(), later)
    written = catalog.write_catalog(empty_machine / "catalog" / "index.html", say=lambda _: None)
    entry = next(g for g in written.catalog["groups"] if g["name"] == group.name)
    assert (entry["freshness"]["status"], entry["freshness"]["lag_hours"], entry["freshness"]["within_sla"]) == (
        catalog.OVER_SLA, pytest.approx(sla_hours + 5), False)
    section = written.html.read_text().split(f'data-group="{group.name}"', 1)[1].split("</section>", 1)[0]
    assert 'data-status="over SLA"' in section and days[-1].isoformat() in section
    assert f"over SLA: {group.name}" in written.summary()
    others = [g for g in written.catalog["groups"] if g["name"] != group.name]
    assert all(g["freshness"]["status"] == catalog.NEVER_PUBLISHED for g in others)

    # a removed newest partition is no longer the newest (removes replayed after the checkpoint)
    spark.sql(f"DELETE FROM delta.`{uri}` WHERE {lake.AS_OF_DATE} = '{days[-1].isoformat()}'")
    assert delta_log.newest_date(uri, lake.AS_OF_DATE) == spark_newest() == days[-2]
    # a row-level delete marks one row of the newest date's file deleted (a deletion vector): the file,
    # removed and re-added with its vector in one commit, still holds a row
    spark.sql(f"DELETE FROM delta.`{uri}` WHERE {group.join_key} = 'a{days[-2].isoformat()}'")
    assert any('"deletionVector":{' in p.read_text() for p in (lake_dir / table / "_delta_log").glob("*.json"))
    assert delta_log.newest_date(uri, lake.AS_OF_DATE) == days[-2]


def test_freshness_of_a_lake_and_landing_zone_on_s3(spark, empty_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same reads against a real S3-protocol server (moto's, authentication on): the Delta log
    and the landing's footers through pyarrow's S3 filesystem, no Spark."""
    from s3_server import MotoServer

    group = spec.GROUPS[0]
    table = lake.features_table(group)
    days = [dt.date(2025, 3, 1), dt.date(2025, 3, 2)]
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", str(empty_machine / "lake"))
    lake.overwrite(_feature_rows(spark, group, days), table, partition_by=lake.AS_OF_DATE)
    spark.sql(f"DELETE FROM delta.`{empty_machine / 'lake' / table}` WHERE {lake.AS_OF_DATE} = '{days[1]}'")
    raw = empty_machine / "raw"
    landed = dt.datetime.combine(days[0], dt.time(), dt.timezone.utc) + dt.timedelta(hours=5)
    _land(raw, group.source, days[0].isoformat(), landed)

    server = MotoServer(empty_machine / "moto").start()
    try:
        bucket = server.create_bucket("catalog")
        client = server.client()
        for root, prefix in ((empty_machine / "lake", "lake"), (raw, "raw")):
            for path in root.rglob("*"):
                if path.is_file():
                    client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("FEATUREPIPE_LAKE_URI", f"s3://{bucket}/lake")
        monkeypatch.setenv("FEATUREPIPE_RAW_URI", f"s3://{bucket}/raw")
        fresh = catalog.freshness(group)
        assert (fresh["newest_as_of"], fresh["newest_landed_event"], fresh["lag_hours"], fresh["read_with"]) == (
            days[0].isoformat(), landed.isoformat(), 5.0, "delta log")
        assert all(catalog.freshness(g)["status"] == catalog.NEVER_PUBLISHED for g in spec.GROUPS[1:])
    finally:
        server.stop()


def test_a_log_the_replay_cannot_read_is_read_with_spark(spark, empty_machine: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    group = spec.GROUPS[0]
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", str(empty_machine / "lake"))
    monkeypatch.setenv("FEATUREPIPE_RAW_URI", str(empty_machine / "raw"))
    day = dt.date(2025, 3, 9)
    lake.overwrite(_feature_rows(spark, group, [day]), lake.features_table(group), partition_by=lake.AS_OF_DATE)

    def unreadable(uri: str, column: str):
        raise delta_log.Unsupported("a reader feature it has not met")

    monkeypatch.setattr(delta_log, "newest_date", unreadable)
    said: list[str] = []
    assert catalog.newest_published(group, said.append) == (day, "spark")
    assert "reading with Spark" in said[0]


def test_cli_writes_the_catalog_and_prints_a_summary(empty_machine: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    from featurepipe import command_log
    from featurepipe.cli import main

    # the command's log would take over this process's logging (pytest's too)
    monkeypatch.setattr(command_log, "open_command_log", lambda command: empty_machine / "logs" / f"{command}.log")
    assert main(["catalog"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    page = empty_machine / "catalog" / "index.html"
    features = sum(len(g.features) for g in spec.GROUPS)
    assert lines[-1] == (f"catalog: {len(spec.GROUPS)} feature group(s), {features} features, "
                         f"{len(spec.ON_DEMAND_GROUPS)} on-demand group(s) "
                         f"({sum(len(o.features) for o in spec.ON_DEMAND_GROUPS)} features) -> {page.resolve()}")
    assert page.exists() and (empty_machine / "catalog" / "catalog.json").exists()
    assert any(line.startswith(f"[catalog] {spec.GROUPS[0].name}: never published") for line in lines)


def test_format_duration_is_the_inverse_of_parse_duration() -> None:
    for text in ("2d", "1d12h", "36m", "1h30m", "45s"):
        assert format_duration(parse_duration(text)) == text
    assert format_duration(dt.timedelta(hours=48)) == "2d"


# --- the SLA moved from monitoring.toml to the spec -------------------------------------------------


def test_a_monitoring_config_still_setting_publish_lag_hours_says_where_it_moved(tmp_path: Path) -> None:
    from featurepipe.monitor_config import MonitoringConfigError, load_config, parse_config

    old = tmp_path / "monitoring.toml"
    old.write_text("[thresholds.freshness]\npublish_lag_hours = 48\nonline_lag_days = 1\n")
    with pytest.raises(MonitoringConfigError, match=r"publish_lag_hours moved to the feature spec.*freshness_sla"):
        load_config(old)
    # other unknown keys are still refused, naming them
    with pytest.raises(MonitoringConfigError, match=r"\[thresholds.freshness\] has unknown key\(s\) online_lag_dayz"):
        parse_config({"thresholds": {"freshness": {"online_lag_dayz": 1}}}, "x")
    assert "publish_lag_hours" not in load_config().thresholds()  # the committed file no longer sets it


def test_the_freshness_check_breaches_at_the_groups_sla() -> None:
    from featurepipe.monitor_config import load_config
    from featurepipe.monitoring import freshness_breaches

    config = load_config()
    for group in spec.GROUPS:
        sla = group.freshness_sla.total_seconds() / 3600
        assert config.thresholds(group)["publish_lag_hours"] == sla

        def lag(hours: float) -> dict:
            return {"publish_lag_hours": hours, "newest_landed_event": "x", "newest_as_of": "2025-03-01",
                    "online_lag_days": 0}

        assert freshness_breaches(lag(sla - 0.5), config, group) == []
        (breach,) = freshness_breaches(lag(sla), config, group)
        assert (breach["statistic"], breach["threshold"]) == ("publish_lag_hours", sla)
        assert group.name in breach["message"]
