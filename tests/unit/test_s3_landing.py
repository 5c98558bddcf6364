"""The landing zone on S3 through boto3, against a real S3-protocol server (moto's, on loopback, with
authentication on): listing, `_SUCCESS` markers and the sensor, `featurepipe land` (upload, skip the
same file, replace a changed one), `featurepipe generate --out s3://`, the lake's S3 parts, and
one-line errors for a missing bucket and refused credentials."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from s3_server import MotoServer

DAY = dt.date(2025, 3, 1)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    yield server
    server.stop()


@pytest.fixture()
def bucket(moto: MotoServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A new bucket for the test; the AWS chain (environment) points at the server, the landing zone
    (FEATUREPIPE_RAW_URI) and lake at the bucket."""
    name = "t-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    moto.create_bucket(name)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FEATUREPIPE_RAW_URI", f"s3://{name}/raw")
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", f"s3://{name}/lake")
    return name


def write(folder: Path, name: str, users: list[str], day: dt.date = DAY, amount: float = 10.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({
        "transaction_id": [f"t-{u}-{day}" for u in users], "user_id": users, "product_id": "p1", "category": "books",
        "amount": amount, "event_timestamp": pd.Timestamp(day.isoformat(), tz="UTC") + pd.Timedelta(hours=12),
    })
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    frame.to_parquet(folder / name, index=False)
    return folder / name


def cli(*args: str, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    from featurepipe.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_boto3_finds_the_endpoint_in_the_standard_variable(bucket: str, moto: MotoServer) -> None:
    from featurepipe.storage import s3_access

    access = s3_access()  # built from AWS_ENDPOINT_URL by boto3 itself: featurepipe passes no endpoint
    assert access.endpoint == moto.endpoint and access.region == "us-east-1"
    assert access.client.meta.endpoint_url == moto.endpoint


def test_listing_skips_hidden_files_folder_markers_and_sibling_prefixes(bucket: str, moto: MotoServer) -> None:
    from featurepipe.storage import list_parquet_file_info, marked_landing_dates

    client = moto.client()
    for key in ("raw/transactions/landing_date=2025-03-01/part-0.parquet", "raw/transactions/landing_date=2025-03-01/_SUCCESS",
                "raw/transactions/landing_date=2025-03-02/.part-1.parquet.landing", "raw/transactions/_tmp/x.parquet",
                "raw/transactions/landing_date=2025-03-02/", "raw/transactions2/landing_date=2025-03-05/_SUCCESS",
                "raw/transactions2/other.parquet", "raw/transactions/landing_date=2025-03-03/a/b.parquet"):
        client.put_object(Bucket=bucket, Key=key, Body=b"12345")
    listed = list_parquet_file_info(f"s3://{bucket}/raw/transactions")
    assert [f.path for f in listed] == [f"s3://{bucket}/raw/transactions/landing_date=2025-03-01/part-0.parquet",
                                        f"s3://{bucket}/raw/transactions/landing_date=2025-03-03/a/b.parquet"]
    assert all(f.size == 5 and f.modified.tzinfo == dt.timezone.utc for f in listed)
    assert marked_landing_dates(f"s3://{bucket}/raw/transactions") == [dt.date(2025, 3, 1)]
    assert list_parquet_file_info(f"s3://{bucket}/nothing/here") == []


def test_land_uploads_marks_skips_the_same_file_and_replaces_a_changed_one(bucket: str, moto: MotoServer,
                                                                         tmp_path: Path, capsys) -> None:
    from featurepipe.landing import landed_for

    producer = tmp_path / "producer"
    first = write(producer / f"landing_date={DAY}", "part-0.parquet", ["u1", "u2"])
    write(producer / f"landing_date={DAY + dt.timedelta(days=1)}", "part-0.parquet", ["u3"], DAY + dt.timedelta(days=1))
    code, out, err = cli("land", "--from", str(producer), capsys=capsys)
    assert code == 0, err
    assert f"landed into s3://{bucket}/raw/transactions: 2 files copied, 0 already landed" in out
    keys = moto.keys(bucket, "raw/")
    assert keys == [f"raw/transactions/landing_date={DAY}/_SUCCESS", f"raw/transactions/landing_date={DAY}/part-0.parquet",
                    f"raw/transactions/landing_date={DAY + dt.timedelta(days=1)}/_SUCCESS",
                    f"raw/transactions/landing_date={DAY + dt.timedelta(days=1)}/part-0.parquet"]
    head = moto.client().head_object(Bucket=bucket, Key=f"raw/transactions/landing_date={DAY}/part-0.parquet")
    assert head["Metadata"]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    marker = json.loads(moto.client().get_object(Bucket=bucket, Key=f"raw/transactions/landing_date={DAY}/_SUCCESS")["Body"].read())
    assert marker["files"] == 1 and marker["rows"] == 2
    # the daily DAG's sensor (wait_for_landing) on the S3 zone: markers say which days are complete
    assert landed_for(DAY + dt.timedelta(days=2))[0]
    ready, why = landed_for(DAY + dt.timedelta(days=3))
    assert not ready and "no _SUCCESS marker" in why

    # the same files again: nothing uploaded
    code, out, err = cli("land", "--from", str(producer), capsys=capsys)
    assert code == 0 and "0 files copied, 2 already landed" in out, (out, err)
    # a re-delivery with other content (same name): replaced
    write(producer / f"landing_date={DAY}", "part-0.parquet", ["u1", "u2"], amount=11.0)
    code, out, err = cli("land", "--from", str(producer), capsys=capsys)
    assert code == 0 and "1 files copied, 1 already landed" in out, (out, err)
    body = moto.client().get_object(Bucket=bucket, Key=f"raw/transactions/landing_date={DAY}/part-0.parquet")["Body"].read()
    assert body == first.read_bytes() and pd.read_parquet(first)["amount"].tolist() == [11.0, 11.0]


def test_land_compares_objects_from_other_tools_by_etag_or_content(bucket: str, moto: MotoServer, tmp_path: Path) -> None:
    """An object without featurepipe's sha256 metadata: a single-part upload's ETag is its MD5; a
    multipart one's is not, and is read back."""
    from boto3.s3.transfer import TransferConfig

    from featurepipe.land import land

    producer = tmp_path / "producer"
    small = write(producer, "small.parquet", ["u1"])
    big = producer / "big.parquet"
    big.write_bytes(small.read_bytes())  # renamed below; content is what matters
    client = moto.client()
    client.put_object(Bucket=bucket, Key=f"raw/transactions/landing_date={DAY}/small.parquet", Body=small.read_bytes())
    multipart = TransferConfig(multipart_threshold=1, multipart_chunksize=5 * 2**20)
    client.upload_file(str(big), bucket, f"raw/transactions/landing_date={DAY}/big.parquet", Config=multipart)
    assert "-" in client.head_object(Bucket=bucket, Key=f"raw/transactions/landing_date={DAY}/big.parquet")["ETag"]

    result = land(producer, f"s3://{bucket}/raw/transactions", date=DAY, progress=print)
    assert result.copied == [] and len(result.unchanged) == 2
    data = small.read_bytes()  # same size, one byte changed in a data page (the footer stays valid)
    big.write_bytes(data[:8] + bytes([data[8] ^ 0xFF]) + data[9:])
    result = land(producer, f"s3://{bucket}/raw/transactions", date=DAY, progress=print)
    assert result.copied == [f"s3://{bucket}/raw/transactions/landing_date={DAY}/big.parquet"]


def test_generate_writes_to_s3_and_land_then_finds_the_same_files(bucket: str, moto: MotoServer, tmp_path: Path,
                                                                 capsys) -> None:
    from featurepipe.land import land
    from featurepipe.raw import latest_event_date
    from featurepipe.spec import USER_PURCHASE

    args = ("--users", "4", "--start", "2025-01-01", "--days", "3", "--seed", "5", "--dirty")
    code, out, err = cli("generate", "--out", f"s3://{bucket}/raw", *args, capsys=capsys)
    assert code == 0, err
    assert "wrote 3 files" in out and f"to s3://{bucket}/raw" in out
    keys = moto.keys(bucket, "raw/")
    assert keys == sorted(f"raw/{source}/landing_date=2025-01-0{d}/part-00000.parquet"
                          for source in ("ratings", "transactions") for d in (1, 2, 3))
    # the Parquet contents read through pyarrow's S3 filesystem (configured from boto3's chain)
    assert latest_event_date(f"s3://{bucket}/raw/transactions", USER_PURCHASE.source) is not None

    # the same generator run locally gives the same bytes: landing them uploads nothing
    assert cli("generate", "--out", str(tmp_path / "local"), *args, capsys=capsys)[0] == 0
    result = land(tmp_path / "local" / "transactions", f"s3://{bucket}/raw/transactions", progress=print)
    assert result.copied == [] and len(result.unchanged) == 3 and len(result.marked) == 3
    # ratings land the same way, checked against their own source's schema
    from featurepipe.spec import RATINGS

    result = land(tmp_path / "local" / "ratings", f"s3://{bucket}/raw/ratings", progress=print, source=RATINGS)
    assert result.copied == [] and len(result.unchanged) == 3


def test_a_missing_bucket_and_refused_credentials_are_one_line_errors(bucket: str, moto: MotoServer, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    write(tmp_path / "producer", "part-0.parquet", ["u1"])
    monkeypatch.setenv("FEATUREPIPE_RAW_URI", "s3://no-such-bucket-here/raw")
    code, _, err = cli("land", "--from", str(tmp_path / "producer"), "--date", str(DAY), capsys=capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "the S3 bucket 'no-such-bucket-here' does not exist" in err
    code, _, err = cli("generate", "--out", "s3://no-such-bucket-here/raw", "--start", "2025-01-01", "--days", "2",
                       capsys=capsys)
    assert code == 1 and "the S3 bucket 'no-such-bucket-here' does not exist" in err

    monkeypatch.setenv("FEATUREPIPE_RAW_URI", f"s3://{bucket}/raw")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    code, _, err = cli("land", "--from", str(tmp_path / "producer"), "--date", str(DAY), capsys=capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "refused the credentials' signature" in err and "AWS_SECRET_ACCESS_KEY" in err
    assert "not-the-secret" not in err and moto.secret_key not in err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "UNKNOWNKEY0000000000")
    from featurepipe.landing import landed_for
    from featurepipe.storage import StorageError

    with pytest.raises(StorageError, match="does not know the access key"):
        landed_for(DAY)
    assert moto.keys(bucket) == []  # nothing was written with the wrong credentials


def test_the_lake_drops_a_table_with_its_folder_markers_and_s3a_settings_hold_no_secret(
        bucket: str, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from featurepipe import lake
    from featurepipe.spark import S3A_CREDENTIALS, s3a_conf

    client = moto.client()
    for key in ("lake/staging/run=1/_delta_log/", "lake/staging/run=1/_delta_log/00000.json", "lake/staging/run=1/a.parquet",
                "lake/staging/run=10/keep.parquet"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    lake.drop_table("staging/run=1")
    lake.drop_table("staging/run=1")  # gone already: nothing to do
    assert moto.keys(bucket) == ["lake/staging/run=10/keep.parquet"]
    assert lake.table_path(lake.FEATURES) == f"s3a://{bucket}/lake/features/user_purchase_features"

    conf = s3a_conf()
    assert conf["spark.hadoop.fs.s3a.endpoint"] == moto.endpoint
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"] == S3A_CREDENTIALS
    assert "hadoop-aws-3.5.0.jar" in conf["spark.driver.extraClassPath"]
    assert "spark.jars" not in conf  # a local master: on the class path, never copied per session
    text = json.dumps(conf)
    assert moto.secret_key not in text and moto.access_key not in text
    # on a cluster the executors fetch them with Delta's (spark.jars), as they cannot share the driver's class path
    monkeypatch.setenv("FEATUREPIPE_SPARK_MASTER", "spark://127.0.0.1:7077")
    jars = s3a_conf()["spark.jars"].split(",")
    assert any("delta-spark" in j for j in jars) and any("hadoop-aws-3.5.0" in j for j in jars)
    # https endpoints keep TLS on; without an S3 URI there are no s3a settings at all
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://minio.example.test:9000")
    assert s3a_conf()["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    monkeypatch.setenv("FEATUREPIPE_RAW_URI", "/tmp/raw")
    monkeypatch.setenv("FEATUREPIPE_LAKE_URI", "/tmp/lake")
    assert s3a_conf() == {}


def test_land_into_a_local_zone_skips_the_same_file_and_replaces_a_changed_one(tmp_path: Path) -> None:
    """The same rules on a local zone (files renamed into place, no staging file left behind)."""
    from featurepipe.land import land

    producer, zone = tmp_path / "producer", tmp_path / "raw" / "transactions"
    write(producer / f"landing_date={DAY}", "part-0.parquet", ["u1"])
    first = land(producer, str(zone), progress=print)
    assert first.copied == [str(zone / f"landing_date={DAY}" / "part-0.parquet")] and first.marked == [DAY]
    assert land(producer, str(zone), progress=print).unchanged == first.copied
    write(producer / f"landing_date={DAY}", "part-0.parquet", ["u1"], amount=12.0)
    assert land(producer, str(zone), progress=print).copied == first.copied
    assert sorted(p.name for p in (zone / f"landing_date={DAY}").iterdir()) == ["_SUCCESS", "part-0.parquet"]
    assert pd.read_parquet(zone / f"landing_date={DAY}" / "part-0.parquet")["amount"].tolist() == [12.0]
