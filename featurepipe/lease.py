"""One writer at a time on the lake: a lease with an owner, a heartbeat and an expiry.

Every step that writes (validate_raw, compute_features, publish, materialize) holds the lease while
it runs, whatever started it: the daily or backfill DAG under a scheduler, `featurepipe run` or
`backfill` (which bypass Airflow's pool), two schedulers, a pool of two slots. A second writer waits
(printing who holds the lease) and fails after `FEATUREPIPE_LEASE_WAIT_MINUTES` with a one-line
message naming the holder.

The lease is one small JSON document beside the tables, `<lake>/_featurepipe_lease.json`:
`{owner, step, run_id, token, acquired_at, expires_at}`. Its holder renews `expires_at` every third
of `FEATUREPIPE_LEASE_TTL_SECONDS` from a background thread; a holder that died (SIGKILL, a lost
machine) stops renewing, and once the lease has expired the next writer takes it over.

- Local lakes: every read-decide-write of the document happens under an exclusive `flock` on
  `<lake>/_featurepipe_lease.lock`, and the document is replaced by rename (atomic).
- S3 lakes: S3's conditional writes: create with `If-None-Match: *`, renew, take over and release
  with `If-Match: <ETag>` (the ETag the writer last saw), so two writers can never both succeed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

LEASE_FILE = "_featurepipe_lease.json"


class LeaseHeld(RuntimeError):
    """Another writer held the lake's lease for longer than this writer may wait."""


class LeaseLost(RuntimeError):
    """The holder could not renew in time and another writer took the lease over: the step fails
    (and is retried) rather than passing for a write that may have interleaved with another."""


@dataclass(frozen=True)
class Holder:
    owner: str  # host:pid
    step: str
    run_id: str
    token: str
    acquired_at: str
    expires_at: str

    def expired(self, now: dt.datetime) -> bool:
        return dt.datetime.fromisoformat(self.expires_at) <= now

    def __str__(self) -> str:
        return (f"{self.step} of run {self.run_id} ({self.owner}, since {self.acquired_at}, "
                f"lease expires {self.expires_at} unless renewed)")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- stores: read the document, and replace it only if it is still what the writer saw ----------


class _LocalStore:
    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, LEASE_FILE)
        self.guard = os.path.join(root, "_featurepipe_lease.lock")
        os.makedirs(root, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        with open(self.guard, "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)

    def _read(self) -> Holder | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                return Holder(**json.load(f))
        except FileNotFoundError:
            return None

    def swap(self, expected_token: str | None, new: Holder | None) -> tuple[bool, Holder | None]:
        """Replace the lease by `new` (None: remove it) if its token is `expected_token` (None: no lease
        or an expired one). Returns (done, the lease found)."""
        with self._locked():
            found = self._read()
            if expected_token is None:
                ok = found is None or found.expired(_now())
            else:
                ok = found is not None and found.token == expected_token
            if ok:
                if new is None:
                    if found is not None:
                        os.unlink(self.path)
                else:
                    tmp = f"{self.path}.{new.token}.tmp"
                    with open(tmp, "w", encoding="utf-8") as f:
                        json.dump(asdict(new), f)
                    os.replace(tmp, self.path)
            return ok, found


class _S3Store:
    def __init__(self, uri: str) -> None:
        import boto3
        from urllib.parse import urlparse

        parsed = urlparse(uri)
        self.bucket = parsed.netloc
        self.key = "/".join(p for p in (parsed.path.strip("/"), LEASE_FILE) if p)
        self.s3 = boto3.client("s3")
        self.etag: str | None = None  # the ETag of the document this writer last wrote

    def _read(self) -> tuple[Holder | None, str | None]:
        try:
            got = self.s3.get_object(Bucket=self.bucket, Key=self.key)
        except self.s3.exceptions.NoSuchKey:
            return None, None
        return Holder(**json.loads(got["Body"].read())), got["ETag"]

    def swap(self, expected_token: str | None, new: Holder | None) -> tuple[bool, Holder | None]:
        from botocore.exceptions import ClientError

        found, etag = self._read()
        if expected_token is None:
            ok = found is None or found.expired(_now())
        else:
            ok = found is not None and found.token == expected_token
        if not ok:
            return False, found
        condition = {"IfMatch": etag} if found is not None else {"IfNoneMatch": "*"}
        try:
            if new is None:
                if found is not None:
                    self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
            else:
                put = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=json.dumps(asdict(new)).encode(),
                                         ContentType="application/json", **condition)
                self.etag = put["ETag"]
        except ClientError as exc:  # 412: another writer changed it between our read and write
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                return False, self._read()[0]
            raise
        return True, found


def _store(lake_uri: str):
    from featurepipe.storage import is_s3

    return _S3Store(lake_uri) if is_s3(lake_uri) else _LocalStore(lake_uri)


# --- the lease ---------------------------------------------------------------------------------


class Lease:
    """The lake's lease, held by one step of one run (a context manager: `with Lease(...):`)."""

    def __init__(self, lake_uri: str, step: str, run_id: str, ttl_s: float, wait_s: float,
                 say: Callable[[str], None] = print) -> None:
        self.store = _store(lake_uri)
        self.step, self.run_id, self.ttl_s, self.wait_s, self.say = step, run_id, ttl_s, wait_s, say
        self.token = uuid.uuid4().hex
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.lost: str | None = None  # why the heartbeat lost the lease, if it did

    def _record(self, acquired_at: str | None = None) -> Holder:
        now = _now()
        return Holder(self.owner, self.step, self.run_id, self.token, acquired_at or now.isoformat(),
                      (now + dt.timedelta(seconds=self.ttl_s)).isoformat())

    def acquire(self) -> None:
        began = time.monotonic()
        told = 0.0
        pause = 0.2
        while True:
            mine = self._record()
            done, found = self.store.swap(None, mine)
            if done:
                if found is not None:
                    self.say(f"[lease] took over the expired lease of {found}")
                self.acquired_at = mine.acquired_at
                break
            waited = time.monotonic() - began
            if waited >= self.wait_s:
                raise LeaseHeld(f"the lake is leased by {found}; waited {waited / 60:.1f} min "
                                "(FEATUREPIPE_LEASE_WAIT_MINUTES)")
            if waited - told >= 30 or told == 0:
                self.say(f"[lease] {self.step}: waiting for the lake, leased by {found}")
                told = waited or 0.001
            time.sleep(min(pause, max(0.0, self.wait_s - waited)))
            pause = min(pause * 1.5, 5.0)
        self._beat = threading.Thread(target=self._heartbeat, name="featurepipe-lease", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # a transient store error: try again at the next beat
                self.say(f"[lease] could not renew the lease ({exc}); retrying")

    def renew(self) -> bool:
        """Push the expiry forward; False (and `lost` set) if another writer holds the lease now."""
        done, found = self.store.swap(self.token, self._record(self.acquired_at))
        if not done:
            self.lost = f"the lease was taken over by {found}"
            self.say(f"[lease] WARNING: {self.lost}")
        return done

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.lost is None:
            self.store.swap(self.token, None)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, kind, *_) -> None:
        self.release()
        if self.lost is not None and kind is None:
            raise LeaseLost(f"{self.step} of run {self.run_id} lost the lake's lease while writing: {self.lost}")
