"""Real servers the tests start on loopback (never mocks)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from cli_helpers import free_port


class RedisServer:
    """A redis-server on a free loopback port, its data in `folder` (kept across a stop and a start
    when `persistent`, like a production server's)."""

    def __init__(self, folder: Path, persistent: bool = False, password: str | None = None) -> None:
        self.folder, self.persistent, self.port = folder, persistent, free_port()
        self.password = password  # AUTH required of every client when set
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Without the password: the pipeline gets it from REDIS_PASSWORD."""
        return f"redis://127.0.0.1:{self.port}/0"

    def _client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def start(self) -> RedisServer:
        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: `make test` installs it (apt-get install -y redis-server)")
        self.folder.mkdir(parents=True, exist_ok=True)
        # the config on stdin: a password never on a command line that `ps` shows
        config = (f"port {self.port}\nbind 127.0.0.1\ndir {self.folder}\nsave \"\"\n"
                  f"appendonly {'yes' if self.persistent else 'no'}\n")
        if self.password:
            config += f"requirepass {self.password}\n"
        self.proc = subprocess.Popen([binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.proc.stdin.write(config.encode())
        self.proc.stdin.close()
        client = self._client()
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """A clean shutdown (a persistent server writes its data first)."""
        self._client().shutdown(nosave=not self.persistent)
        self.proc.wait(timeout=30)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
