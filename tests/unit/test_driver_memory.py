"""The driver's heap: a quarter of the machine for a local master unless set, and measured per step."""

from __future__ import annotations

import pytest

from featurepipe.spark import available_memory, driver_memory, spark_conf


def test_a_local_master_gets_a_quarter_of_the_memory_in_whole_gib_by_default(monkeypatch) -> None:
    monkeypatch.delenv("FEATUREPIPE_SPARK_DRIVER_MEMORY", raising=False)
    monkeypatch.setenv("FEATUREPIPE_SPARK_MASTER", "local[2]")
    quarter = available_memory() // 4
    assert driver_memory() == f"{max(1, quarter // 2**30)}g"
    monkeypatch.setenv("FEATUREPIPE_SPARK_DRIVER_MEMORY", "auto")
    assert spark_conf()["spark.driver.memory"] == f"{max(1, quarter // 2**30)}g"


def test_a_cluster_master_keeps_sparks_default_and_a_set_size_wins(monkeypatch) -> None:
    monkeypatch.delenv("FEATUREPIPE_SPARK_DRIVER_MEMORY", raising=False)
    monkeypatch.setenv("FEATUREPIPE_SPARK_MASTER", "spark://cluster:7077")
    assert driver_memory() is None
    assert "spark.driver.memory" not in spark_conf()
    monkeypatch.setenv("FEATUREPIPE_SPARK_DRIVER_MEMORY", "3G")
    assert driver_memory() == "3g"


@pytest.mark.parametrize("value", ["lots", "6", "0g", "1.5g", "-2g"])
def test_a_malformed_size_is_refused_naming_the_variable(monkeypatch, value) -> None:
    monkeypatch.setenv("FEATUREPIPE_SPARK_DRIVER_MEMORY", value)
    with pytest.raises(ValueError, match="FEATUREPIPE_SPARK_DRIVER_MEMORY must be `auto` or a JVM size"):
        driver_memory()


def test_available_memory_is_no_more_than_the_machine_has() -> None:
    import os

    assert 0 < available_memory() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_a_steps_heap_is_sampled_while_it_runs_and_a_full_collection_shows_what_it_kept(spark) -> None:
    from featurepipe import jvm_memory

    jvm = spark.sparkContext._jvm
    with jvm_memory.sampled(spark, interval_s=0.05) as memory:
        # ~32 MiB collected into the driver's heap, then a full collection while it is still held
        held = spark.range(0, 2_000_000, 1, 1).selectExpr("collect_list(id) AS ids").first()
        jvm.java.lang.System.gc()
    assert len(held["ids"]) == 2_000_000
    limit = jvm.java.lang.Runtime.getRuntime().maxMemory()
    assert memory.limit == spark.sparkContext.getConf().get("spark.driver.memory", "1g")
    assert 16 * 2**20 <= memory.in_use_peak <= jvm.java.lang.management.ManagementFactory.getMemoryMXBean() \
        .getHeapMemoryUsage().getCommitted() + limit
    assert memory.live_peak is not None and 0 < memory.live_peak <= limit
    assert memory.resident_peak is None or memory.resident_peak > memory.live_peak
    assert memory.line().startswith("driver heap: peak ") and "live after a full collection" in memory.line()


@pytest.mark.parametrize("live, resident", [(3 * 2**29, 5 * 2**30), (None, None)])
def test_a_heap_line_reads_back_as_the_record_it_came_from(live, resident) -> None:
    from featurepipe.jvm_memory import DriverMemory

    memory = DriverMemory("5g", 7 * 2**29, live, resident)
    assert DriverMemory.parse(f"[spark-server] compute_features exit 0 after 3.0 s; {memory.line()}") == memory
    assert DriverMemory.parse("[spark-server] compute_features exit 0 after 3.0 s") is None
