"""A real Spark standalone cluster (one master, one worker) from the installed pyspark, on loopback.

pip's pyspark has no `sbin/start-master.sh`: the master and the worker are started with
`spark-class`, each in its own process group, so `stop()` also ends the executors and Python
workers the worker launched (they are its children) and leaves no stray JVM.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cli_helpers import free_port

SPARK_CLASS = Path(sys.executable).parent / "spark-class"


class SparkStandalone:
    """`spark://127.0.0.1:PORT` with one worker of `cores` cores and `memory` (logs and work dir under `folder`)."""

    def __init__(self, folder: Path, cores: int = 2, memory: str = "1g") -> None:
        self.folder, self.cores, self.memory = folder, cores, memory
        self.port, self.webui_port = free_port(), free_port()
        self.work_dir = folder / "work"
        self.procs: dict[str, subprocess.Popen] = {}
        self._groups: list[int] = []  # every process group started, kept after stop() for `leftovers`

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def webui(self) -> str:
        return f"http://127.0.0.1:{self.webui_port}"

    def start(self, timeout_s: float = 120) -> SparkStandalone:
        """Start the master, then the worker; return once the master lists the worker ALIVE."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(exist_ok=True)
        try:
            self._spawn("master", "org.apache.spark.deploy.master.Master",
                        "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.webui_port))
            self._wait(lambda state: state is not None, "the master's web UI to answer", timeout_s)
            self._spawn("worker", "org.apache.spark.deploy.worker.Worker", self.url,
                        "--host", "127.0.0.1", "--port", str(free_port()), "--webui-port", str(free_port()),
                        "--cores", str(self.cores), "--memory", self.memory, "--work-dir", str(self.work_dir))
            self._wait(lambda state: state is not None and self.alive_workers(state) >= 1,
                       "the worker to register with the master", timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def state(self) -> dict | None:
        """The master's status (its web UI's `/json/`), None while it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.webui}/json/", timeout=2) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    @staticmethod
    def alive_workers(state: dict) -> int:
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def applications(self) -> list[dict]:
        """Running and completed applications the master saw (name, cores, state...)."""
        state = self.state() or {}
        return [*state.get("activeapps", []), *state.get("completedapps", [])]

    def finished_applications(self, timeout_s: float = 60) -> list[dict]:
        """The applications, once none is running any more (a driver that exited is noticed within seconds)."""
        began = time.time()
        while (self.state() or {}).get("activeapps") and time.time() - began < timeout_s:
            time.sleep(0.5)
        return self.applications()

    def pids(self) -> list[int]:
        """The master's and the worker's process ids (also the ids of their process groups)."""
        return [proc.pid for proc in self.procs.values()]

    def stop(self) -> None:
        """End the worker (with its executors) and the master: SIGTERM to each process group, then SIGKILL."""
        for name in ("worker", "master"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            # executors and Python workers of the group may outlive the worker's JVM for a moment
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.procs.clear()

    def leftovers(self) -> list[str]:
        """Processes of this cluster still alive: in the master's or worker's process group, or working
        in its folder (executors and their Python workers run in the worker's work dir)."""
        groups, folder, found = set(self._groups), str(self.folder.resolve()), []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if stat[0] == "Z":
                    continue
                cwd = os.readlink(entry / "cwd")
                if int(stat[2]) in groups or cwd == folder or cwd.startswith(folder + os.sep):
                    command = (entry / "cmdline").read_bytes()[:200].replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{entry.name}: {command}")
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile, or not ours to read
        return found

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, name: str, main_class: str, *args: str) -> None:
        # the executors' Python is the driver's choice (its PYSPARK_PYTHON), not the worker's environment
        env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(self.folder)}
        with open(self.folder / f"{name}.log", "ab") as sink:
            # a process group of its own: stop() ends it with every executor and Python worker it started
            self.procs[name] = subprocess.Popen([str(SPARK_CLASS), main_class, *args], env=env,
                                                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        self._groups.append(self.procs[name].pid)

    def _wait(self, ready, what: str, timeout_s: float) -> None:
        began = time.time()
        while time.time() - began < timeout_s:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"the Spark {name} exited (status {proc.returncode}) waiting for {what}:\n"
                                       f"{self.log(name)[-3000:]}")
            if ready(self.state()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}:\n{self.log('master')[-2000:]}\n"
                           f"{self.log('worker')[-2000:]}")
