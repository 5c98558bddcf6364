"""validate_raw: each source's raw landings -> quarantine (bad rows, with reasons) + clean, deduplicated events, gated by the source's raw GX suite."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe.ingest import RawSuiteFailed, ingest
    from featurepipe.quality import raw_suite_name, validate_dataframe
    from featurepipe.raw import RawSchemaError
    from featurepipe.reports import write_step_report
    from featurepipe.spec import SOURCES
    from featurepipe.steps import begin

    step = begin("validate_raw", __doc__, argv)
    as_of = step.as_of
    reports = {}
    for source in SOURCES:
        outcomes = []

        def gate(events, source=source, outcomes=outcomes) -> None:
            outcome = validate_dataframe(events, raw_suite_name(source), f"raw-{source.name}-{as_of.label}")
            print(outcome.summary())
            outcomes.append(outcome)
            if not outcome.success:
                raise RawSuiteFailed(outcome.summary())

        try:
            with step.lease():
                report = ingest(step.spark, as_of, gate=gate, sized=step.fit_to, source=source)
        except (RawSchemaError, FileNotFoundError, RawSuiteFailed) as exc:
            print(f"validate_raw: {source.name}: {exc}", file=sys.stderr)
            return 2
        report["raw_suite"] = outcomes[0].summary().splitlines()[0] if outcomes else "not run (no new rows)"
        reports[source.name] = report
    write_step_report(step.name, as_of, {"sources": reports})
    return 0


if __name__ == "__main__":
    sys.exit(main())
