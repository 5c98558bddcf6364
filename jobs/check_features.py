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
        print(f"check_features: {breach}", file=sys.stderr if args.fail_on_breach else sys.stdout)
        return 5 if args.fail_on_breach else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
