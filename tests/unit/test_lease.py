"""The lake's lease (featurepipe.lease): one writer at a time, waiting writers name the holder, a dead
holder's lease expires, a live holder's does not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from featurepipe.lease import LEASE_FILE, Lease, LeaseHeld, LeaseLost


def lease(lake: Path, step: str, run_id: str, ttl_s: float = 30, wait_s: float = 0) -> Lease:
    return Lease(str(lake), step, run_id, ttl_s=ttl_s, wait_s=wait_s, say=lambda _: None)


def test_a_second_writer_fails_naming_the_holder_and_gets_the_lease_once_it_is_released(tmp_path: Path) -> None:
    with lease(tmp_path, "publish", "scheduled__2025-03-02"):
        held = json.loads((tmp_path / LEASE_FILE).read_text())
        assert (held["step"], held["run_id"]) == ("publish", "scheduled__2025-03-02")
        with pytest.raises(LeaseHeld, match=r"leased by publish of run scheduled__2025-03-02 \(.*:\d+, since"):
            lease(tmp_path, "compute_features", "manual__2025-03-05", wait_s=0.5).acquire()
    assert not (tmp_path / LEASE_FILE).exists()
    with lease(tmp_path, "compute_features", "manual__2025-03-05"):
        pass


def test_a_waiting_writer_proceeds_when_the_holder_releases(tmp_path: Path) -> None:
    first = lease(tmp_path, "validate_raw", "a")
    first.acquire()
    order: list[str] = []

    def second() -> None:
        with lease(tmp_path, "validate_raw", "b", wait_s=30):
            order.append("b holds")

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(1.0)
    order.append("a releases")
    first.release()
    waiter.join(timeout=30)
    assert order == ["a releases", "b holds"]


def test_a_live_holder_renews_and_a_killed_one_expires(tmp_path: Path) -> None:
    # the holder renews every ttl/3: long past its first expiry, nobody can take the lease
    with lease(tmp_path, "materialize", "a", ttl_s=0.6):
        time.sleep(1.5)
        with pytest.raises(LeaseHeld):
            lease(tmp_path, "publish", "b", ttl_s=0.6, wait_s=0.3).acquire()

    # a holder SIGKILLed while holding: its lease expires after the TTL and the next writer takes it over
    script = textwrap.dedent(f"""
        import time
        from featurepipe.lease import Lease
        Lease({str(tmp_path)!r}, "publish", "killed-run", ttl_s=1.5, wait_s=0).acquire()
        print("held", flush=True)
        time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld, match="killed-run"):
            lease(tmp_path, "publish", "b", wait_s=0.2).acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        said: list[str] = []
        taker = Lease(str(tmp_path), "publish", "b", ttl_s=30, wait_s=10, say=said.append)
        with taker:
            assert any("took over the expired lease of publish of run killed-run" in line for line in said), said
    finally:
        holder.kill()


def test_a_holder_whose_lease_was_taken_over_fails_its_step(tmp_path: Path) -> None:
    first = lease(tmp_path, "publish", "a", ttl_s=0.6)
    with pytest.raises(LeaseLost, match="publish of run a lost the lake's lease while writing: the lease was taken over by publish of run b"):
        with first:
            first._stop.set()  # a holder that stalls (its renewals stop): the lease expires
            first._beat.join()
            time.sleep(0.8)
            with lease(tmp_path, "publish", "b"):
                assert not first.renew()
