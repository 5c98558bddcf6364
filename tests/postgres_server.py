"""A real PostgreSQL server for tests (Debian's `postgresql`): a private cluster, port and login."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from cli_helpers import free_port

# the server refuses to run as root: as root, the cluster belongs to (and runs as) this account,
# which Debian's package creates
SERVER_ACCOUNT = "postgres"


class PostgresServer:
    """A throwaway PostgreSQL cluster made with `initdb`, served on a free loopback port; its log in
    `folder/postgres.log`.

    Only loopback TCP with a password (SCRAM) and a Unix socket beside the cluster (owner-only) are
    open. `start()` creates `database`, owned by the login role `user`, whose password is random;
    `stop()` shuts the server down (fast mode), ends its process and deletes the cluster.

    The cluster is not under `folder` when we are root: the server runs as another account, which
    must reach its files by path for as long as it runs, and pytest's temporary folders are
    owner-only (a chmod of their parents does not hold: every pytest session started meanwhile
    on the machine resets its root folder to 0700, and the server then fails at its next
    checkpoint). It gets its own folder in the system's temporary directory, owned by that account."""

    def __init__(self, folder: Path, database: str = "airflow", user: str = "airflow") -> None:
        self.folder, self.database, self.user = folder, database, user
        self.password = secrets.token_urlsafe(18)
        self.port = free_port()
        self.log = folder / "postgres.log"
        self.cluster: Path | None = None  # made by start(): data/ and socket/
        self.proc: subprocess.Popen | None = None

    @property
    def data(self) -> Path:
        assert self.cluster is not None, "start() first"
        return self.cluster / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.cluster is not None, "start() first"
        return self.cluster / "socket"

    def url(self, driver: str = "psycopg2") -> str:
        """The SQLAlchemy URL of the database for its role (it holds the password: never log it)."""
        return f"postgresql+{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> PostgresServer:
        bindir = _bindir()
        account = _account()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cluster = Path(tempfile.mkdtemp(prefix="featurepipe-postgres-")) if account else self.folder
        for folder in ([self.cluster] if account else []) + [self.data, self.socket_dir]:
            folder.mkdir(mode=0o700, exist_ok=True)
            if account:
                os.chown(folder, *account)
        as_account = {"user": account[0], "group": account[1], "extra_groups": []} if account else {}
        try:
            self._start(bindir, as_account)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, bindir: Path, as_account: dict) -> None:
        # the superuser gets no password (none on a command line): it may log in only through the
        # owner-only socket (trust); TCP needs SCRAM and a password, which only our role has
        made = subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
             "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"],
            check=False, capture_output=True, text=True, cwd=self.data, **as_account,
        )
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.data}: {made.stderr[-2000:]}")
        with open(self.log, "w") as sink:
            self.proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
                 # a throwaway cluster: no durability work, small memory
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "shared_buffers=32MB", "-c", "max_connections=200"],
                stdout=sink, stderr=subprocess.STDOUT, cwd=self.data, start_new_session=True, **as_account,
            )
        self._create_login()

    def _create_login(self) -> None:
        import psycopg2

        began = time.time()
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            try:
                admin = psycopg2.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.time() - began > 60:
                    raise RuntimeError(f"postgres did not accept connections in 60 s: {self.log.read_text()[-2000:]}")
                time.sleep(0.2)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f'CREATE ROLE "{self.user}" LOGIN PASSWORD %s', (self.password,))
                cur.execute(f'CREATE DATABASE "{self.database}" OWNER "{self.user}"')
        finally:
            admin.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions end, no checkpoint wait beyond its own), a kill after 30 s;
        then the cluster's own folder goes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.cluster is not None and self.cluster != self.folder:
            shutil.rmtree(self.cluster, ignore_errors=True)


def _bindir() -> Path:
    """The newest installed server's binaries (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make redis` installs it (apt-get install -y postgresql)")
    return Path(found[-1]).parent


def _account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        raise RuntimeError(f"running as root, and there is no {SERVER_ACCOUNT!r} account to run PostgreSQL as "
                           "(Debian's postgresql package creates it)") from None
    return entry.pw_uid, entry.pw_gid

