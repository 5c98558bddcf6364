"""The driver JVM's memory while a step runs: heap in use, live data after collections, resident size.

A local master runs every task in the driver JVM, so its heap is the run's memory. The server that
runs steps (`featurepipe.spark_server`) samples the heap once a second during a step and reports,
in the step's log: `driver heap: peak 3.1 GiB in use, 1.2 GiB live after a full collection, of 5g`.
In use is what the heap held (garbage included: the collector lets the young generation fill
before it collects, so a busy step's peak nears the heap it was given); live is the old
generation's occupancy right after a full collection, the data the step really kept, which must
stay under the limit. Samples can miss a peak between two of them: these are the peaks sampled.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class DriverMemory:
    limit: str  # the configured heap (spark.driver.memory: -Xmx), e.g. "5g"
    in_use_peak: int = 0  # bytes: the heap's largest sampled use
    live_peak: int | None = None  # bytes: the old generation after a full collection, largest; None: none ran
    resident_peak: int | None = None  # bytes: the JVM process's VmHWM (its whole life), where /proc has it

    def line(self) -> str:
        live = (f", {_gib(self.live_peak)} live after a full collection" if self.live_peak is not None
                else ", no full collection")
        text = f"driver heap: peak {_gib(self.in_use_peak)} in use{live}, of {self.limit}"
        if self.resident_peak:
            text += f" (JVM resident high-water mark {_gib(self.resident_peak)})"
        return text

    @classmethod
    def parse(cls, text: str) -> DriverMemory | None:
        """The record a `line()` in `text` gives (sizes to its 0.01 GiB), or None without one."""
        found = _LINE.search(text)
        if found is None:
            return None
        in_use, live, limit, resident = found.groups()
        return cls(limit, _bytes(in_use), _bytes(live) if live else None, _bytes(resident) if resident else None)


_LINE = re.compile(r"driver heap: peak ([\d.]+) GiB in use, (?:([\d.]+) GiB live after a full collection|no full collection), "
                   r"of (\w+)(?: \(JVM resident high-water mark ([\d.]+) GiB\))?")


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def _bytes(gib: str) -> int:
    return round(float(gib) * 2**30)


@contextlib.contextmanager
def sampled(spark: SparkSession, interval_s: float = 1.0) -> Iterator[DriverMemory]:
    """Sample the driver's heap every `interval_s` while inside; the peaks are in the yielded record
    once the block ends (a last sample is taken then)."""
    jvm = spark.sparkContext._jvm
    management = jvm.java.lang.management.ManagementFactory
    bean = management.getMemoryMXBean()
    old = [pool for pool in management.getMemoryPoolMXBeans()
           if pool.getType().toString() == "Heap memory" and any(w in pool.getName() for w in ("Old", "Tenured"))]
    managers = {name for pool in old for name in pool.getMemoryManagerNames()}
    full = [gc for gc in management.getGarbageCollectorMXBeans() if gc.getName() in managers]
    full_before = _count(full)
    memory = DriverMemory(spark.sparkContext.getConf().get("spark.driver.memory", "1g"))
    stop = threading.Event()

    def sample() -> None:
        memory.in_use_peak = max(memory.in_use_peak, bean.getHeapMemoryUsage().getUsed())
        if old and _count(full) > full_before:  # a full collection ran during the step: what it kept
            kept = sum(pool.getCollectionUsage().getUsed() for pool in old)
            memory.live_peak = max(memory.live_peak or 0, kept)

    def loop() -> None:
        while not stop.wait(interval_s):
            with contextlib.suppress(Exception):  # a sample lost to a busy or stopping JVM is no failure
                sample()

    thread = threading.Thread(target=loop, name="featurepipe-heap-sampler", daemon=True)
    thread.start()
    try:
        yield memory
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(Exception):
            sample()
            memory.resident_peak = resident_peak(jvm.java.lang.ProcessHandle.current().pid())


def _count(collectors: list) -> int:
    return sum(max(0, gc.getCollectionCount()) for gc in collectors)


def resident_peak(pid: int) -> int | None:
    """A process's resident-set high-water mark in bytes (Linux /proc), or None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
