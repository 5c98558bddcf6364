"""Great Expectations gates, built from the feature spec (SPEC §2, §3).

Two suites, both generated from `featurepipe.spec` and never hand-listed:

- one per source (`transactions_raw`, `ratings_raw`, from `spec.SOURCES`): run on the rows that
  passed quarantine, so it is a gate that catches bugs in the quarantine rules; on good data it passes.
- one per feature group (`user_purchase_features`, `product_purchase_features`, ... from
  `spec.GROUPS`), named after it: invariants every feature row of the group must satisfy.

The suites are also committed as JSON under `expectations/suites/` so reviewers see what a spec
change does to them; `python -m featurepipe.quality` regenerates that copy and a unit test keeps
it equal to the spec. At run time the suites are built from the spec, not read from the JSON:
the wheel ships `featurepipe/` but not `expectations/`, so a job running from an installed
package (spark-submit, an Airflow worker) has no repo checkout to read from.

Validation state (the GX file context, validation results, Data Docs) lives under
`get_settings().gx_dir`, never in the repo. GX on Spark costs one Spark job per metric, so the
suites stay lean and use `BASIC` results (never `COMPLETE`: results must not carry whole rows).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from featurepipe.aggregations import operation
from featurepipe.settings import EXPECTATIONS_DIR, format_duration, get_settings
from featurepipe.spec import GROUPS, SOURCES, TRANSACTIONS, USER_PURCHASE, FeatureGroup, Op, Source

if TYPE_CHECKING:
    from great_expectations.checkpoint import Checkpoint
    from great_expectations.checkpoint.checkpoint import CheckpointResult
    from great_expectations.core import ExpectationSuite
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.data_context import AbstractDataContext
    from pyspark.sql import DataFrame

RAW_SUITE = "transactions_raw"
FEATURE_SUITE = USER_PURCHASE.name  # each group's suite is named after the group
SUITES_DIR = EXPECTATIONS_DIR / "suites"
REGENERATE_COMMAND = ".venv/bin/python -m featurepipe.quality"
# BASIC keeps the unexpected counts (COMPLETE would carry whole rows). No sample values:
# fetching them costs one more Spark job per expectation, which doubled validation time.
# Without samples SUMMARY stores the very same results, but GX also computes an unexpected-index
# list and query for every map expectation (one Spark query analysis each) that nothing shows.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
DATASOURCE_NAME = "featurepipe_spark"
BATCH_DEFINITION_NAME = "whole_dataframe"

# `avg = sum / count` is rounded, so on real data it exceeds the max by an ulp
# (13 purchases of 19.99: fsum / 13 > 19.99). A relative tolerance far below any real bug.
AVG_MAX_RELATIVE_TOLERANCE = 1e-9
# Upper bound for "finite": in Spark NaN sorts above every number and +inf is above this.
_FINITE_MAX = sys.float_info.max


# --- suites, built from the spec ---------------------------------------------------------


def build_raw_suite(source: Source = TRANSACTIONS, name: str = RAW_SUITE) -> ExpectationSuite:
    """The gate on raw rows that passed quarantine (SPEC §2)."""
    import great_expectations.expectations as gxe

    required = source.required
    expectations: list[gxe.Expectation] = []
    expectations.append(
        gxe.ExpectTableColumnsToMatchSet(column_set=[c.name for c in required], exact_match=False)
    )
    for column in required:
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column.name))
    for column in source.columns:
        # one expectation per column bound (GX computes one metric each): empty ids and too-long
        # strings, amounts outside (0, max] were quarantined before this suite sees the rows
        if column.kind == "string" and (column.required or column.max_length is not None):
            expectations.append(gxe.ExpectColumnValueLengthsToBeBetween(
                column=column.name, min_value=1 if column.required else None, max_value=column.max_length))
        elif column.kind == "double" and column.required:
            low = {"min_value": 0, "strict_min": True} if column.min_value is None else {"min_value": column.min_value}
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(column=column.name, **low, max_value=column.max_value or _FINITE_MAX)
            )
    return _suite(name, expectations, f"source {source.name!r}")


def build_feature_suite(group: FeatureGroup = USER_PURCHASE, name: str | None = None) -> ExpectationSuite:
    """Invariants of every feature row of `group` (SPEC §3)."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    key, ts = group.join_key, group.source.timestamp_column
    features = group.features
    numeric = [f for f in features if operation(f.op).numeric]
    expectations: list[gxe.Expectation] = []
    expectations.append(
        gxe.ExpectTableColumnsToMatchSet(column_set=[key, ts, *group.feature_names], exact_match=False)
    )
    # a run of the first source (it lands every day) has rows; another source may have none yet
    expectations.append(gxe.ExpectTableRowCountToBeBetween(min_value=1 if group.source.name == SOURCES[0].name else 0))
    expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=[key, ts]))
    for column in (key, ts):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
    for f in numeric:
        if f.op is not Op.MEAN:  # a mean of nothing is null: checked against its count below
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=f.name))
    for f in numeric:
        bounds: dict[str, Any] = {"min_value": 1 if f.op is Op.RANK else 0}  # ranks start at 1
        if f.op not in (Op.COUNT, Op.COUNT_DISTINCT, Op.RANK):  # integers are finite
            bounds["max_value"] = _FINITE_MAX
        if f.op is Op.MEAN:  # a mean lies within its column's bounds (stars: 1..5)
            column = group.source.column(f.column)
            bounds = {"min_value": column.min_value if column.min_value is not None else 0,
                      "max_value": column.max_value if column.max_value is not None else _FINITE_MAX}
        expectations.append(gxe.ExpectColumnValuesToBeBetween(column=f.name, **bounds))
    # a mean is null exactly when its window is empty
    for mean in (f for f in features if f.op is Op.MEAN):
        counts = [c for c in features if c.op is Op.COUNT and c.window_days == mean.window_days]
        if counts:
            expectations.append(gxe.ExpectColumnValuesToBeNull(column=mean.name, row_condition=Column(counts[0].name) == 0))
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=mean.name, row_condition=Column(counts[0].name) > 0))
    # ranks of one as-of date are 1..n without ties (n = the rows at T: checked as unique and >= 1
    # here and <= the row count by the query below)
    for rank in (f for f in features if f.op is Op.RANK):
        expectations.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=[ts, rank.name]))
        expectations.append(
            gxe.UnexpectedRowsExpectation(
                description=f"{rank.name} <= the number of rows of its as-of date",
                unexpected_rows_query=(
                    f"SELECT {key}, {ts}, {rank.name} FROM (SELECT {key}, {ts}, {rank.name}, "
                    f"COUNT(*) OVER (PARTITION BY {ts}) AS _rows FROM {{batch}}) WHERE {rank.name} > _rows"
                ),
            )
        )
    # distinct values never outnumber the events of the same window
    for distinct in (f for f in features if f.op is Op.COUNT_DISTINCT):
        counts = [c for c in features if c.op is Op.COUNT and c.window_days == distinct.window_days]
        if counts:
            expectations.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=counts[0].name, column_B=distinct.name, or_equal=True)
            )

    # A longer window holds a superset of events: 7d <= 30d <= 90d. Exact even for float sums,
    # as long as the job adds each window's amounts in one order (IEEE rounding is monotone);
    # a job that sums windows in different orders would need a tolerance here.
    for agg in group.aggregations:
        if not operation(agg.op).monotone:  # only then does a longer window hold a larger value
            continue
        by_window = sorted(agg.features(), key=lambda f: f.window_days)
        for shorter, longer in zip(by_window, by_window[1:]):
            expectations.append(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A=longer.name, column_B=shorter.name, or_equal=True
                )
            )

    # An average never exceeds the max over the same or a longer window. Column-pair
    # expectations have no tolerance and the rounded average breaks them on good data, so
    # this one is a Spark SQL query with a relative tolerance.
    for avg in (f for f in features if f.op == Op.AVG):
        maxes = [
            m for m in features
            if m.op == Op.MAX and m.column == avg.column and m.window_days >= avg.window_days
        ]
        if not maxes:
            continue
        mx = min(maxes, key=lambda m: m.window_days)  # the tightest bound
        expectations.append(
            gxe.UnexpectedRowsExpectation(
                description=f"{avg.name} <= {mx.name} (relative tolerance {AVG_MAX_RELATIVE_TOLERANCE:g})",
                unexpected_rows_query=(
                    f"SELECT {key}, {ts}, {avg.name}, {mx.name} FROM {{batch}} "
                    f"WHERE {avg.name} > {mx.name} * (1 + {AVG_MAX_RELATIVE_TOLERANCE!r})"
                ),
            )
        )

    # The mode is null wherever the window has no events. Only this direction holds:
    # "non-null iff count > 0" is wrong, because a user whose events in the window all have a
    # null category has count > 0 and, correctly, a null favourite.
    for mode in (f for f in features if f.op == Op.MODE):
        counts = [c for c in features if c.op == Op.COUNT and c.window_days == mode.window_days]
        if counts:
            expectations.append(
                gxe.ExpectColumnValuesToBeNull(column=mode.name, row_condition=Column(counts[0].name) == 0)
            )
    return _suite(name or group.name, expectations, f"feature group {group.name!r}", group_meta(group))


def group_meta(group: FeatureGroup) -> dict[str, str]:
    """What the feature suite's `meta` says of its group (as the Feast view's tags and the catalog do)."""
    return {"group": group.name, "owner": group.owner, "freshness_sla": format_duration(group.freshness_sla),
            "source": group.source.name, "version": str(group.version)}


def _suite(name: str, expectations: list, built_from: str, meta: dict[str, str] | None = None) -> ExpectationSuite:
    # Expectations go in through the constructor: in GX 1.24 `suite.add_expectation` needs an
    # active data context even for an unsaved suite, and building a suite needs none.
    import great_expectations as gx

    return gx.ExpectationSuite(
        name=name, expectations=expectations, meta={"built_from": f"featurepipe.spec {built_from}", **(meta or {})}
    )


def raw_suite_name(source: Source) -> str:
    return f"{source.name}_raw"


SUITE_BUILDERS: dict[str, Callable[[], ExpectationSuite]] = {
    **{raw_suite_name(s): (lambda s=s: build_raw_suite(s, raw_suite_name(s))) for s in SOURCES},
    **{g.name: (lambda g=g: build_feature_suite(g)) for g in GROUPS},
}


def build_suite(name: str) -> ExpectationSuite:
    """The suite `name`, freshly built from the spec."""
    try:
        builder = SUITE_BUILDERS[name]
    except KeyError:
        raise KeyError(f"no GX suite {name!r}; known suites: {', '.join(SUITE_BUILDERS)}") from None
    return builder()


def suite_json(suite: ExpectationSuite) -> dict[str, Any]:
    """The suite as committed JSON: deterministic, so without GX's random ids."""
    data = suite.to_json_dict()
    data.pop("id", None)
    for expectation in data.get("expectations", []):
        expectation.pop("id", None)
    return data


def render_suite(name: str) -> str:
    """The exact text of `expectations/suites/<name>.json` the spec generates."""
    return json.dumps(suite_json(build_suite(name)), indent=2, sort_keys=True) + "\n"


def write_suites(directory: Path | str = SUITES_DIR) -> list[Path]:
    """Write every suite as `<directory>/<suite>.json`; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SUITE_BUILDERS:
        path = directory / f"{name}.json"
        path.write_text(render_suite(name), encoding="utf-8")
        paths.append(path)
    return paths


# --- running a suite ---------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationOutcome:
    """What one suite said about one DataFrame; `success=False` is for the caller to fail on."""

    suite: str
    success: bool
    evaluated: int
    failed: list[str] = field(default_factory=list)
    data_docs: str | None = None

    def summary(self) -> str:
        """A short multi-line text for logs and reports."""
        if self.success:
            status = f"passed ({self.evaluated} expectations)"
        else:
            status = f"FAILED {len(self.failed)} of {self.evaluated} expectations"
        lines = [f"GX suite {self.suite}: {status}"]
        lines += [f"  - {line}" for line in self.failed]
        if self.data_docs:
            lines.append(f"  data docs: {self.data_docs}")
        return "\n".join(lines)


def validate_dataframe(df: DataFrame, suite_name: str, run_label: str) -> ValidationOutcome:
    """Run suite `suite_name` on `df`, keep results and Data Docs under the gx dir; no raise on failure."""
    (outcome,) = validate_dataframes([(df, suite_name, run_label)])
    return outcome


def validate_dataframes(batches: Sequence[tuple[DataFrame, str, str]]) -> list[ValidationOutcome]:
    """Run each `(frame, suite name, run label)` in one GX context and build Data Docs once for them all.

    One outcome per batch, in order; no raise on a failed suite. Each frame is cached for its own
    validation only, so at most one of them is held in memory at a time.
    """
    from great_expectations.core.run_identifier import RunIdentifier

    suites = [build_suite(name) for _, name, _ in batches]  # fail fast on an unknown name, before touching Spark
    if not suites:
        return []
    gx_dir = get_settings().gx_dir
    gx_dir.mkdir(parents=True, exist_ok=True)
    results: list[CheckpointResult] = []
    with _gx_dir_lock(gx_dir):
        context = _file_context(gx_dir)
        try:
            for (df, _, run_label), suite in zip(batches, suites):
                checkpoint = _checkpoint(context, suite)
                with _persisted(df):
                    results.append(checkpoint.run(
                        batch_parameters={"dataframe": df}, run_id=RunIdentifier(run_name=run_label)
                    ))
        finally:
            # the pages of the results stored so far, also when a later validation raised
            if results:
                _build_data_docs(context, results)
        docs = _data_docs_index(context)
    return [_outcome(suite.name, result, docs) for suite, result in zip(suites, results)]


def _outcome(suite_name: str, result: CheckpointResult, docs: str | None) -> ValidationOutcome:
    (suite_result,) = result.run_results.values()
    return ValidationOutcome(
        suite=suite_name,
        success=bool(suite_result.success),
        evaluated=int(suite_result.statistics["evaluated_expectations"]),
        failed=[_describe_failure(r) for r in suite_result.results if not r.success],
        data_docs=docs,
    )


def _file_context(gx_dir: Path) -> AbstractDataContext:
    """The GX file context rooted at `gx_dir`, scaffolded on first use, quiet in task logs."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # usage statistics off (also in the config below)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", context_root_dir=str(gx_dir))
    variables = context.variables
    bars = variables.progress_bars  # a ProgressBarsConfig when fresh, a dict once read back from YAML
    bars = bars if isinstance(bars, dict) else vars(bars) if bars is not None else {}
    noisy = bars.get("globally", True) or bars.get("metric_calculations", True)
    if noisy or variables.analytics_enabled is not False:
        # a tqdm bar per validation would fill Airflow task logs with carriage returns
        variables.analytics_enabled = False
        variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        variables.save()
    return context


def _checkpoint(context: AbstractDataContext, suite: ExpectationSuite) -> Checkpoint:
    """Suite, data source, asset, batch definition, validation definition and checkpoint of `suite`.

    Each is written only when missing or different from what the spec builds now: rewriting the
    YAML and JSON on every validation is a fixed cost per gate that buys nothing.
    """
    import great_expectations as gx

    suite = _stored_suite(context, suite)
    datasource = _datasource(context)
    try:
        asset = datasource.get_asset(suite.name)
    except LookupError:
        asset = datasource.add_dataframe_asset(name=suite.name)
    try:
        batch_definition = asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)

    validation = _stored(context.validation_definitions, suite.name)
    if validation is None or (validation.suite.id, validation.batch_definition.id) != (suite.id, batch_definition.id):
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
        )
    checkpoint = _stored(context.checkpoints, suite.name)
    if (
        checkpoint is None
        or [v.id for v in checkpoint.validation_definitions] != [validation.id]
        or checkpoint.actions  # Data Docs are built once per `validate_dataframes`, not per checkpoint
        or checkpoint.result_format != RESULT_FORMAT
    ):
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(name=suite.name, validation_definitions=[validation], actions=[],
                          result_format=dict(RESULT_FORMAT))
        )
    return checkpoint


def _stored_suite(context: AbstractDataContext, suite: ExpectationSuite) -> ExpectationSuite:
    """The stored suite named like `suite`, rewritten only if its expectations (in order) or meta differ."""
    stored = _stored(context.suites, suite.name)
    if stored is not None and suite_json(stored) == suite_json(suite):
        return stored
    return context.suites.add_or_update(suite)


def _datasource(context: AbstractDataContext) -> Any:
    """Our Spark data source, created once: `add_or_update_spark` would drop every other suite's asset."""
    try:
        datasource = context.data_sources.get(DATASOURCE_NAME)
    except KeyError:
        datasource = None
    # persist=False: GX would otherwise persist() the batch itself and never unpersist it;
    # `_persisted` caches the frame for exactly the validation's duration instead.
    if datasource is None or getattr(datasource, "persist", None) is not False:
        datasource = context.data_sources.add_or_update_spark(name=DATASOURCE_NAME, persist=False)
    return datasource


def _stored(factory: Any, name: str) -> Any:
    """`factory.get(name)`, or None if it is missing or no longer loads (e.g. its asset was dropped)."""
    from great_expectations.exceptions import DataContextError

    try:
        return factory.get(name)
    except (DataContextError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def _build_data_docs(context: AbstractDataContext, results: list[CheckpointResult]) -> None:
    """One Data Docs build for these results: their validation pages, their suites' pages and the index.

    The index lists every page the site holds, so older results stay listed. One build instead
    of one per checkpoint: GX compiles its page templates afresh for every build.
    """
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    identifiers: list[Any] = []
    for result in results:
        for key, suite_result in result.run_results.items():
            identifiers.append(key)
            suite_key = ExpectationSuiteIdentifier(name=suite_result.suite_name)
            if suite_key not in identifiers:
                identifiers.append(suite_key)
    context.build_data_docs(resource_identifiers=identifiers)  # never empty: an empty list rebuilds the whole site


def _data_docs_index(context: AbstractDataContext) -> str | None:
    """Path of the local Data Docs index.html, if it was built."""
    for site in context.get_docs_sites_urls():
        url = site.get("site_url") or ""
        path = Path(url.removeprefix("file://"))
        if path.is_file():
            return str(path)
    return None


def _describe_failure(r: ExpectationValidationResult) -> str:
    """One human line for a failed expectation, e.g. `expect_...(a, b): 3 of 120 rows unexpected`."""
    config = r.expectation_config
    kwargs = config.kwargs
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    columns += list(kwargs.get("column_list") or [])
    custom_sql = config.type == "unexpected_rows_expectation"
    label = config.description if custom_sql and config.description else config.type
    head = f"{label}({', '.join(columns)})" if columns else label
    if kwargs.get("row_condition"):
        head += f" where {_condition_text(kwargs['row_condition'])}"

    error = _exception_message(r.exception_info or {})
    if error:
        return f"{head}: raised {error}"
    res = r.result or {}
    if "unexpected_count" in res:
        return f"{head}: {res['unexpected_count']} of {res.get('element_count')} rows unexpected"
    missing = ((res.get("details") or {}).get("mismatched") or {}).get("missing")
    if missing:
        return f"{head}: missing columns {', '.join(sorted(missing))}"
    if custom_sql:
        return f"{head}: {res.get('observed_value')} rows unexpected"
    return f"{head}: observed {res.get('observed_value')!r}"


def _exception_message(info: dict) -> str | None:
    """First line of the error GX caught, from either shape of `exception_info`."""
    # flat {"raised_exception": ...} for the expectation, or one such dict per failed metric
    infos = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for i in infos:
        if i.get("raised_exception"):
            message = str(i.get("exception_message") or "unknown error").strip()
            first = message.splitlines()[0] if message else message
            return first if len(first) <= 200 else first[:197] + "..."
    return None


def _condition_text(condition: Any) -> str:
    if isinstance(condition, dict):  # serialized Condition
        from great_expectations.expectations.row_conditions import deserialize_row_condition

        condition = deserialize_row_condition(condition)
    return repr(condition) if not isinstance(condition, str) else condition


@contextmanager
def _persisted(df: DataFrame) -> Iterator[None]:
    """Cache `df` for the validation (one Spark job per metric), unless the caller already did."""
    if df.storageLevel.useMemory or df.storageLevel.useDisk:
        yield
        return
    df.persist()
    try:
        yield
    finally:
        df.unpersist()


@contextmanager
def _gx_dir_lock(gx_dir: Path) -> Iterator[None]:
    """Serialise validations sharing a gx dir: GX rewrites its YAML and the Data Docs index."""
    import fcntl

    with open(gx_dir / ".featurepipe.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> None:
    """Regenerate the committed suite JSON from the spec."""
    for path in write_suites(SUITES_DIR):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
