"""`featurepipe feast-env` prints what the `feast` CLI needs and never a secret: a Redis password is
written as `${REDIS_PASSWORD}`, which the user's shell fills in at `eval`."""

from __future__ import annotations

import json
import subprocess

import pytest

from featurepipe.cli import main


def exports(capsys, monkeypatch, url: str, password: str | None) -> tuple[str, str]:
    monkeypatch.setenv("FEATUREPIPE_ONLINE_STORE", "redis")
    monkeypatch.setenv("FEATUREPIPE_REDIS_URL", url)
    if password:
        monkeypatch.setenv("REDIS_PASSWORD", password)
    else:
        monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    assert main(["feast-env"]) == 0
    out = capsys.readouterr()
    return out.out, out.err


def evaluated(printed: str, password: str) -> dict:
    script = f'REDIS_PASSWORD={password!r}\n{printed}\nprintf %s "$FEATUREPIPE_FEAST_ONLINE_STORE"'
    return json.loads(subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("url, password", [
    ("redis://:s3cr%27t%20pw@10.0.0.5:6380/2", None),  # in the URL (a quote and a space: shell-hostile)
    ("redis://10.0.0.5:6380/2", "s3cr't pw"),  # in REDIS_PASSWORD
])
def test_the_password_is_never_printed_and_the_shell_fills_it_in(capsys, monkeypatch, url: str, password) -> None:
    printed, warning = exports(capsys, monkeypatch, url, password)
    assert "s3cr" not in printed and "${REDIS_PASSWORD}" in printed
    assert ("REDIS_PASSWORD" in warning) == (password is None)  # the URL's password: say how to pass it
    online = evaluated(printed, "s3cr't pw")
    assert online["connection_string"] == "10.0.0.5:6380,db=2,password=s3cr't pw"


def test_without_a_password_nothing_is_left_to_the_shell(capsys, monkeypatch) -> None:
    printed, warning = exports(capsys, monkeypatch, "redis://localhost:6379/0", None)
    assert "REDIS_PASSWORD" not in printed and warning == ""
    assert evaluated(printed, "unused")["connection_string"] == "localhost:6379,db=0"
