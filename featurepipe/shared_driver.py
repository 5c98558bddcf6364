"""The shared Spark driver that `featurepipe run` and `backfill` start on a local master, and reuse.

A step on a cold JVM spends most of a small run starting Spark and warming up Delta, GX and Feast
(README "Where the time goes"). So, as build tools keep a daemon (Gradle, sbt, Bazel), the first
run on a local master starts `featurepipe spark-server` in the background for its data dir; later
runs find it through `$FEATUREPIPE_DATA_DIR/spark-server/driver.json` and send their steps to it.

- It is replaced when what it runs changed: a fingerprint of our code (`featurepipe/`, `jobs/`,
  `feature_repo/`, `expectations/`), the installed versions of the stack and the session's
  settings (master, JARs, memory, JVM options) is recorded at start and compared at every run.
- It stops by itself after `FEATUREPIPE_SPARK_SERVER_IDLE_MINUTES` (default 30) without a step;
  `featurepipe spark-server --stop` stops it now.
- Runs opt out with `FEATUREPIPE_SPARK_SERVER_IDLE_MINUTES=0`, `FEATUREPIPE_STEP_RUNNER` (inline,
  spark-submit) or their own `FEATUREPIPE_SPARK_SERVER`. Scheduled runs (`featurepipe ui`) and
  other masters are unchanged (README "Where a step runs").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from featurepipe.settings import PROJECT_ROOT, get_settings

STATE_FILE = "driver.json"
_CODE = ("featurepipe", "jobs", "feature_repo", "expectations")
_STACK = ("pyspark", "delta-spark", "great-expectations", "feast", "apache-airflow")


class SharedDriverError(RuntimeError):
    """The shared driver did not start (its log says why)."""


def folder() -> Path:
    return get_settings().data_dir / "spark-server"


def fingerprint() -> str:
    """What a driver started now would run: our code, the stack's versions, the session's settings."""
    from importlib.metadata import version

    from featurepipe.spark import spark_conf

    digest = hashlib.sha256()
    for top in _CODE:
        for path in sorted((PROJECT_ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".json", ".yaml") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    session = {"master": get_settings().spark_master, "python": sys.executable, **spark_conf(),
               **{name: version(name) for name in _STACK}}
    digest.update(json.dumps(session, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def read_state() -> dict | None:
    path = folder() / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_state(url: str, runs: str) -> None:
    """Called by the server once it answers: where it listens, its pid and what it runs (a fingerprint)."""
    folder().mkdir(parents=True, exist_ok=True)
    state = {"url": url, "pid": os.getpid(), "fingerprint": runs, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    temporary = folder() / f".{STATE_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(state))
    temporary.replace(folder() / STATE_FILE)  # atomic: a reader sees the old state or the new one


def clear_state() -> None:
    """Called by the server as it stops: forget it, unless another driver has replaced it meanwhile."""
    state = read_state()
    if state and state.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            (folder() / STATE_FILE).unlink()


def alive(pid: int) -> bool:
    """The process exists and has not exited (an exited child not yet reaped is a zombie: not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One CLI at a time decides about the driver (two runs started together start one driver)."""
    import fcntl

    folder().mkdir(parents=True, exist_ok=True)
    with open(folder() / "driver.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def stop(reason: str = "") -> bool:
    """Stop this data dir's shared driver if one runs; True if one was stopped."""
    state = read_state()
    if not state or not alive(int(state["pid"])):
        return False
    pid = int(state["pid"])
    print(f"[spark-server] stopping the shared driver (pid {pid}){': ' + reason if reason else ''}", flush=True)
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if not alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        (folder() / STATE_FILE).unlink()
    return True


def ensure(timeout_s: float = 300) -> str:
    """The URL of this data dir's shared driver, started (or replaced) if needed."""
    from featurepipe.spark_server import ping

    want = fingerprint()
    with _lock():
        state = read_state()
        if state and alive(int(state["pid"])):
            if state.get("fingerprint") == want and ping(state["url"]):
                print(f"[run] steps run on the shared Spark driver {state['url']} (pid {state['pid']}, "
                      f"since {state['started']})", flush=True)
                return state["url"]
            stop("the code or the session settings changed" if state.get("fingerprint") != want else "it does not answer")
        return _start(want, timeout_s)


def running() -> str | None:
    """The URL of this data dir's shared driver if one runs what this code and these settings would
    start, else None: for commands that use a warm driver but never start one (`report`, `parity`,
    `training-set` after a `run` or `backfill`)."""
    if os.environ.get("FEATUREPIPE_STEP_RUNNER"):
        return None
    state = read_state()
    if state and alive(int(state["pid"])) and state.get("fingerprint") == fingerprint():
        return state["url"]
    return None


def _start(want: str, timeout_s: float) -> str:
    from featurepipe.spark_server import ping

    idle = get_settings().spark_server_idle_minutes
    log = folder() / "server.log"
    print(f"[run] starting the shared Spark driver for this data dir (stops after {idle:g} idle minutes; "
          f"log: {log})", flush=True)
    command = [str(Path(sys.executable).parent / "featurepipe"), "spark-server", "--port", "0", "--shared", want]
    env = {k: v for k, v in os.environ.items() if k != "FEATUREPIPE_SPARK_SERVER"}
    with open(log, "a") as sink:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # outlives this command; no pipe keeps anyone waiting
    began = time.time()
    while time.time() - began < timeout_s:
        state = read_state()
        if state and state.get("pid") == proc.pid and ping(state["url"]):
            print(f"[run] shared Spark driver ready on {state['url']} after {time.time() - began:.0f} s", flush=True)
            return state["url"]
        if proc.poll() is not None:
            raise SharedDriverError(f"the shared Spark driver exited (status {proc.returncode}): see {log}")
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    raise SharedDriverError(f"the shared Spark driver did not answer within {timeout_s:.0f} s: see {log}")


def for_cli_run() -> str | None:
    """The shared driver's URL for a `featurepipe run`/`backfill`, or None where it does not apply (module docstring)."""
    settings = get_settings()
    if os.environ.get("FEATUREPIPE_SPARK_SERVER") or os.environ.get("FEATUREPIPE_STEP_RUNNER"):
        return None
    if not settings.spark_local or settings.spark_server_idle_minutes <= 0:
        return None
    return ensure()
