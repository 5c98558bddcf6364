"""validate_raw: raw landings -> quarantine (bad rows, with reasons) + clean, deduplicated transactions, gated by the raw GX suite."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe.dates import range_from_args, range_parser
    from featurepipe.ingest import RawSuiteFailed, ingest
    from featurepipe.quality import RAW_SUITE, validate_dataframe
    from featurepipe.raw import RawSchemaError
    from featurepipe.reports import write_step_report
    from featurepipe.spark import get_spark

    parser = range_parser(__doc__.splitlines()[0])
    as_of = range_from_args(parser, parser.parse_args(argv))
    spark = get_spark(f"featurepipe-validate-raw-{as_of.label}")
    outcomes = []

    def gate(events) -> None:
        outcome = validate_dataframe(events, RAW_SUITE, f"raw-{as_of.label}")
        print(outcome.summary())
        outcomes.append(outcome)
        if not outcome.success:
            raise RawSuiteFailed(outcome.summary())

    try:
        report = ingest(spark, as_of, gate=gate)
    except (RawSchemaError, FileNotFoundError, RawSuiteFailed) as exc:
        print(f"validate_raw: {exc}", file=sys.stderr)
        return 2
    report["raw_suite"] = outcomes[0].summary().splitlines()[0] if outcomes else "not run (no new rows)"
    write_step_report("validate_raw", as_of, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
