"""The driver JVM's memory as a step used it: heap peak and the process's resident high-water mark.

A local master runs every task in the driver JVM, so its heap is the run's memory. The server that
runs steps (`featurepipe.spark_server`) resets the heap pools' peaks before a step and reports them
after it, in the step's log: `driver heap: peak 2.1 GiB of 6.0 GiB`. The peak is each heap pool's
own peak summed (young and old generations peak at different moments): an upper bound of what the
heap held at once, never below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class DriverMemory:
    heap_peak: int  # bytes: the heap pools' peaks since the last reset, summed
    heap_max: int  # bytes: the heap's limit (-Xmx, from spark.driver.memory)
    resident_peak: int | None  # bytes: the JVM process's VmHWM (whole life), where /proc has it

    def line(self) -> str:
        text = f"driver heap: peak {_gib(self.heap_peak)} of {_gib(self.heap_max)}"
        if self.resident_peak:
            text += f" (JVM resident high-water mark {_gib(self.resident_peak)})"
        return text


def _gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


def _heap_pools(spark: SparkSession) -> list:
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory
    return [pool for pool in management.getMemoryPoolMXBeans() if pool.getType().toString() == "Heap memory"]


def reset_peaks(spark: SparkSession) -> None:
    """Start measuring: every heap pool's peak back to its current use."""
    for pool in _heap_pools(spark):
        pool.resetPeakUsage()


def measure(spark: SparkSession) -> DriverMemory:
    """The heap's peak since `reset_peaks` (or the JVM's start), its limit and the JVM's VmHWM."""
    jvm = spark.sparkContext._jvm
    peak = sum(pool.getPeakUsage().getUsed() for pool in _heap_pools(spark))
    limit = jvm.java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getMax()
    return DriverMemory(peak, limit, resident_peak(jvm.java.lang.ProcessHandle.current().pid()))


def resident_peak(pid: int) -> int | None:
    """A process's resident-set high-water mark in bytes (Linux /proc), or None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
