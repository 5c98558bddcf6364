"""check_features: the monitoring report of an as-of date (default: the newest published): drift, completeness, freshness."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from featurepipe.dates import parse_date
    from featurepipe.monitoring_output import MonitoringBreach, run_checks
    from featurepipe.spark import get_spark

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--date", type=parse_date, help="as-of date (default: the newest published)")
    parser.add_argument("--fail-on-breach", action="store_true", help="exit 5 when a check breaches (the monitoring DAG)")
    parser.add_argument("--run-id", help="the orchestrator's run id (for the log only)")
    args = parser.parse_args(argv)
    get_spark("featurepipe-check-features")
    try:
        run_checks(args.date)
    except MonitoringBreach as breach:
        if args.fail_on_breach:  # the monitoring DAG: the task fails with this line as its reason
            print(f"check_features: {breach}", file=sys.stderr)
            return 5
        # `featurepipe report` lists the breaches itself and exits 0: a report with breaches is a report
    return 0


if __name__ == "__main__":
    sys.exit(main())
