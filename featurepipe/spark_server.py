"""A shared, long-lived Spark driver for pipeline steps: `featurepipe spark-server`.

Each step otherwise pays for a cold JVM: starting it, loading Spark's and Delta's classes and
compiling their first queries cost more than the work of a small daily run. This server keeps
one Delta-enabled session warm (and GX and Feast imported) and runs `jobs/<step>.py`'s `main`
in it on request, one step at a time. Airflow tasks use it when `FEATUREPIPE_SPARK_SERVER` is
set (`http://127.0.0.1:PORT`, printed at start); the step's output streams back into the task
log and its exit status fails or passes the task.

Why not Spark Connect: Delta's Python `DeltaTable` API (MERGE, DELETE) needs Delta's Connect
server plugin, which Maven Central does not serve for Spark 4.2 / Delta 4.4, and the steps use
it. Here the steps run on a classic session, exactly as inline or under `spark-submit`.

Each request carries the caller's `FEATUREPIPE_*`, `AWS_*` and Redis variables, applied for
that step only (settings are read lazily, so the data dir, lake and online store follow the
caller). Session-level settings (master, JARs, driver memory, JVM options) are the server's own.
After each step the session's cached DataFrames are dropped, so nothing accumulates.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socketserver
import sys
import threading
import time
import traceback
from typing import Callable, Iterator

from featurepipe.steps import JOBS

ENV_PREFIXES = ("FEATUREPIPE_", "AWS_", "REDIS_", "GX_")
# session-level: fixed when the server's session started, so a request cannot change them
SERVER_ONLY = {"FEATUREPIPE_SPARK_MASTER", "FEATUREPIPE_SPARK_DRIVER_MEMORY", "FEATUREPIPE_JVM_OPTS", "FEATUREPIPE_SPARK_SERVER",
               "FEATUREPIPE_LOG_FILE"}
_EXIT = "\x00exit "  # the last line of a response: the step's exit status
_ERR = "\x00err "  # a line the step wrote to stderr (a command shows it there)


class SparkServerError(RuntimeError):
    """The server could not be reached, or it ended a step without an exit status."""


def step_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a request carries: everything that decides where a step reads and writes."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k.startswith(ENV_PREFIXES) and k not in SERVER_ONLY}


# --- client --------------------------------------------------------------------------------


def _address(url: str) -> tuple[str, int]:
    from urllib.parse import urlparse

    parsed = urlparse(url if "://" in url else f"tcp://{url}")
    if not parsed.hostname or not parsed.port:
        raise SparkServerError(f"FEATUREPIPE_SPARK_SERVER must look like http://127.0.0.1:PORT, got {url!r}")
    return parsed.hostname, parsed.port


def run_step(url: str, job: str, argv: list[str], echo: Callable[[str], None] = print,
             env: dict[str, str] | None = None, echo_err: Callable[[str], None] | None = None) -> int:
    """Run `jobs/<job>.py main(argv)` on the server at `url`; returns its exit status.

    Its output goes to `echo`, the lines it wrote to stderr to `echo_err` (default: `echo` too)."""
    import socket

    host, port = _address(url)
    request = {"job": job, "argv": argv, "env": step_env() if env is None else env}
    try:
        conn = socket.create_connection((host, port), timeout=30)
    except OSError as exc:
        raise SparkServerError(f"Spark server {url} is not reachable ({exc}): start it with `featurepipe spark-server`, "
                               "or unset FEATUREPIPE_SPARK_SERVER to run steps in the task's own process") from None
    with conn:
        conn.settimeout(None)  # a step may run for hours
        conn.sendall(json.dumps(request).encode() + b"\n")
        for raw in conn.makefile("r", encoding="utf-8", errors="replace"):
            line = raw.rstrip("\n")
            if line.startswith(_EXIT):
                return int(line[len(_EXIT):])
            if line.startswith(_ERR):
                (echo_err or echo)(line[len(_ERR):])
            else:
                echo(line)
    raise SparkServerError(f"Spark server {url} closed the connection before {job} ended (did the server stop?)")


def ping(url: str, timeout: float = 2.0) -> bool:
    """True once the server accepts connections."""
    import socket

    try:
        with socket.create_connection(_address(url), timeout=timeout) as conn:
            conn.sendall(b'{"job": "ping"}\n')
            return conn.makefile("r").readline().startswith(_EXIT + "0")
    except OSError:
        return False


# --- server --------------------------------------------------------------------------------


class _LineWriter(io.TextIOBase):
    """A text stream that sends each complete line to the client at once."""

    def __init__(self, send: Callable[[str], None]) -> None:
        self._send, self._buffer, self._lock = send, "", threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            *lines, self._buffer = self._buffer.split("\n")
            for line in lines:
                self._send(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._buffer:
                self._send(self._buffer)
                self._buffer = ""


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The request's variables for the duration of a step, the server's own afterwards."""
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(ENV_PREFIXES) and k not in SERVER_ONLY]:
        del os.environ[key]  # a variable the caller did not set must not leak from an earlier request
    os.environ.update({k: v for k, v in values.items() if k.startswith(ENV_PREFIXES) and k not in SERVER_ONLY})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class _StepHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        gone = False

        def send(line: str) -> None:
            nonlocal gone
            if gone:
                return  # the client left: the step's output goes nowhere, the step is being cancelled
            try:
                self.wfile.write((line + "\n").encode("utf-8", errors="replace"))
                self.wfile.flush()
            except OSError:
                gone = True

        try:
            request = json.loads(self.rfile.readline() or b"{}")
        except json.JSONDecodeError:
            send(f"{_EXIT}2")
            return
        job = request.get("job")
        if job == "ping":
            # a run that found the server counts as activity: the idle timer cannot fire before its first step
            self.server.last_active = time.time()
            send(f"{_EXIT}0")
            return
        if job not in JOBS:
            send(f"spark-server: unknown step {job!r}; steps: {', '.join(JOBS)}")
            send(f"{_EXIT}2")
            return
        done = threading.Event()
        threading.Thread(target=_cancel_when_client_leaves, args=(self.connection, done, job), daemon=True).start()
        try:
            code = self.server.run(job, list(request.get("argv") or []), dict(request.get("env") or {}), send)
        finally:
            done.set()
        send(f"{_EXIT}{code}")


def _cancel_when_client_leaves(connection, done: threading.Event, job: str) -> None:
    """A thread beside a step: once its client has gone (the Airflow task timed out or was killed),
    cancel the step's Spark jobs, so a hung step ends and frees the lake's lease and the server."""
    import select
    import socket

    while not done.wait(0.5):
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            gone = bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            gone = True
        if gone:
            break
    else:
        return
    from pyspark import SparkContext

    print(f"[spark-server] the client of {job} left: cancelling its Spark jobs", flush=True)
    while not done.wait(0.0):
        context = SparkContext._active_spark_context
        if context is not None:
            context.cancelAllJobs()  # again while the step lives: it may start another job
        done.wait(2.0)


class StepServer(socketserver.TCPServer):
    """Runs one step at a time (a plain TCPServer handles requests in turn) on the warm session."""

    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _StepHandler)
        self.busy = False
        self.last_active = time.time()

    def run(self, job: str, argv: list[str], env: dict[str, str], send: Callable[[str], None]) -> int:
        import importlib

        from featurepipe import jvm_memory
        from featurepipe.spark import get_spark

        writer, errors = _LineWriter(send), _LineWriter(lambda line: send(_ERR + line))
        began = time.time()
        self.busy = True
        print(f"[spark-server] {job} {' '.join(argv)}", flush=True)
        try:
            with (jvm_memory.sampled(get_spark()) as memory, _environment(env), contextlib.redirect_stdout(writer),
                  contextlib.redirect_stderr(errors)):
                try:
                    code = importlib.import_module(f"jobs.{job}").main(argv)
                except SystemExit as exc:  # argparse errors
                    code = exc.code if isinstance(exc.code, int) else 2
                except Exception:
                    traceback.print_exc()
                    code = 1
                finally:
                    writer.flush()
                    errors.flush()
        finally:
            get_spark().catalog.clearCache()  # steps cache what they reuse; nothing outlives a step
            self.busy, self.last_active = False, time.time()
        heap = memory.line()
        send(f"[spark-server] {heap}")  # into the task's log, beside the step's own summary
        print(f"[spark-server] {job} exit {code or 0} after {time.time() - began:.1f} s; {heap}", flush=True)
        return code or 0


def _stop_when_idle(server: StepServer, idle_s: float) -> None:
    """A thread: shut the server down once no step has run for `idle_s` seconds."""
    while True:
        time.sleep(min(5.0, max(idle_s / 4, 0.2)))
        if not server.busy and time.time() - server.last_active > idle_s:
            print(f"[spark-server] no step for {idle_s / 60:g} minutes: stopping", flush=True)
            server.shutdown()
            return


def _start_python_workers(spark) -> None:
    """A thread at start: PySpark's worker daemon, which imports Feast before it forks a worker
    (`featurepipe.worker_daemon`, ~5 s of CPU), starts while the server waits for its first step,
    not inside the first step that needs a Python worker (materialize's online writes)."""
    began = time.time()
    try:
        spark.sparkContext.parallelize([0], 1).map(lambda x: x).count()
    except Exception as exc:  # a step cancelled it, or workers cannot start: the step that needs one says why
        print(f"[spark-server] Python workers not started ahead ({str(exc).splitlines()[0][:200]})", flush=True)
        return
    print(f"[spark-server] Python workers ready after {time.time() - began:.1f} s", flush=True)


def serve(host: str, port: int, shared: str | None = None) -> None:
    """Start the session, load the step libraries, then serve until interrupted (or SIGTERM).

    `shared`: this is the CLI's shared driver (`featurepipe.shared_driver`) running code with that
    fingerprint: it records itself for the data dir and stops after the configured idle time.
    """
    import importlib
    import signal

    from featurepipe import shared_driver
    from featurepipe.settings import get_settings
    from featurepipe.spark import start_spark_while

    began = time.time()
    # the JVM starts in a thread while this one imports GX, Feast and the steps (~10 s of Python
    # that would otherwise follow the JVM's start); what both threads import comes first
    for module in ("pyspark.sql", "delta.tables", "featurepipe.command_log"):
        importlib.import_module(module)
    spark = start_spark_while("featurepipe-spark-server", lambda: [
        importlib.import_module(module) for module in ("great_expectations", "feast", *(f"jobs.{job}" for job in JOBS))
    ])
    spark.range(1).count()
    if get_settings().spark_local:
        threading.Thread(target=_start_python_workers, args=(spark,), name="featurepipe-python-workers",
                         daemon=True).start()
    with StepServer((host, port)) as server:
        url = f"http://{host}:{server.server_address[1]}"
        # SIGTERM (`featurepipe spark-server --stop`, a replaced shared driver) ends the loop cleanly
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
        if shared:
            idle_minutes = get_settings().spark_server_idle_minutes
            threading.Thread(target=_stop_when_idle, args=(server, idle_minutes * 60), daemon=True).start()
        print(f"[spark-server] ready on {url} after {time.time() - began:.0f} s (master {spark.sparkContext.master}); "
              f"use it with FEATUREPIPE_SPARK_SERVER={url}", flush=True)
        try:
            if shared:
                shared_driver.write_state(url, shared)
            server.serve_forever()
        except KeyboardInterrupt:
            print("[spark-server] stopping", file=sys.stderr)
        finally:
            if shared:
                shared_driver.clear_state()
            spark.stop()
