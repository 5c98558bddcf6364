"""A real S3-protocol server for the tests (moto's standalone server from PyPI, on loopback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cli_helpers import free_port

REGION = "us-east-1"
# moto checks signatures once this many requests have run unauthenticated: the three that make
# the IAM user, its access key and its policy (`MotoServer.start`)
_SETUP_REQUESTS = 3


class MotoServer:
    """`moto_server -H 127.0.0.1 -p PORT` as a subprocess, its log in `folder`, stopped by `stop()`.

    Authentication is on: every request must be signed with the access key of the IAM user made at
    start (`access_key`, `secret_key`), so a wrong secret or an unknown key is refused as AWS
    refuses it, and a client that sent no credentials would fail."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.proc: subprocess.Popen | None = None
        self.access_key = self.secret_key = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3, pyarrow and s3a at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}

    def start(self, timeout_s: float = 60) -> MotoServer:
        import json
        import urllib.request

        import boto3

        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
        if binary is None:
            raise RuntimeError("moto_server is not installed: pip install -e '.[test]' (moto[server])")
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_REQUESTS)}
        with open(self.folder / "moto.log", "ab") as log:
            self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        began = time.time()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited ({self.proc.returncode}): see {self.folder / 'moto.log'}")
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.time() - began > timeout_s:
                    self.stop()
                    raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {timeout_s:.0f} s") from None
                time.sleep(0.2)
        # the setup requests are not checked: any credentials do
        iam = boto3.client("iam", endpoint_url=self.endpoint, aws_access_key_id="setup",
                           aws_secret_access_key="not-a-secret", region_name=REGION)
        iam.create_user(UserName="featurepipe")
        key = iam.create_access_key(UserName="featurepipe")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="featurepipe", PolicyName="s3", PolicyDocument=json.dumps(policy))
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        return self

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=REGION)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))

    def download(self, bucket: str, prefix: str, folder: Path) -> Path:
        """Every object below `prefix` into `folder` (e.g. a Delta table, to read it with a local session)."""
        client = self.client()
        for key in self.keys(bucket, prefix.rstrip("/") + "/"):
            target = folder / key[len(prefix.rstrip("/")) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
        return folder

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
