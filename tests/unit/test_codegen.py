"""Steps fit Spark's code generation to their input: interpreted for small inputs, compiled for large ones."""

from __future__ import annotations

import pytest

from featurepipe.spark import CODEGEN_MIN_BYTES, fit_codegen


@pytest.fixture()
def restore_codegen(spark):
    before = {k: spark.conf.get(k) for k in ("spark.sql.codegen.wholeStage", "spark.sql.codegen.factoryMode")}
    yield
    for key, value in before.items():
        spark.conf.set(key, value)


@pytest.mark.parametrize(
    ("mode", "size", "on"),
    [("auto", 0, False), ("auto", CODEGEN_MIN_BYTES - 1, False), ("auto", CODEGEN_MIN_BYTES, True),
     ("on", 0, True), ("off", 10 * CODEGEN_MIN_BYTES, False)],
)
def test_code_generation_follows_the_input_size_or_the_setting(spark, restore_codegen, monkeypatch, mode, size, on) -> None:
    monkeypatch.setenv("FEATUREPIPE_SPARK_CODEGEN", mode)
    assert fit_codegen(spark, size) is on
    assert spark.conf.get("spark.sql.codegen.wholeStage") == str(on).lower()
    assert spark.conf.get("spark.sql.codegen.factoryMode") == ("FALLBACK" if on else "NO_CODEGEN")
    # the session computes the same either way
    assert spark.range(10).selectExpr("sum(id * 2) AS s").first()["s"] == 90


def test_an_unknown_codegen_setting_is_refused_naming_the_variable(monkeypatch) -> None:
    from featurepipe.settings import get_settings

    monkeypatch.setenv("FEATUREPIPE_SPARK_CODEGEN", "fast")
    with pytest.raises(ValueError, match="FEATUREPIPE_SPARK_CODEGEN must be one of auto, on, off"):
        get_settings()
