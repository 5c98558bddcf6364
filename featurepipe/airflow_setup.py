"""A new data dir's Airflow metadata database in one process: `python -m featurepipe.airflow_setup`.

`db migrate`, then our Spark pool (`pools set`), then the DAGs serialized (`dags reserialize`), each
through Airflow's own CLI parser and command, as `airflow` runs them (`airflow.__main__`). Three
`airflow` processes imported Airflow three times: 7.6 s of CPU for a new data dir on this machine,
while the shared driver starts beside it; in one process 3.0 s (measured). Run by
`featurepipe.orchestrator.ensure_airflow_db` under its lock; a failing command ends the process
with its error (the caller names the log).
"""

from __future__ import annotations

import sys

POOL_DESCRIPTION = "featurepipe Spark steps: one at a time (shared Delta tables)"


def commands() -> list[list[str]]:
    from featurepipe_operators import SPARK_POOL  # plugins/ is on the Airflow environment's path

    return [
        ["db", "migrate"],
        ["pools", "set", SPARK_POOL, "1", POOL_DESCRIPTION],
        # the DAGs and their assets in the database now, under the caller's lock: two `dags test` started
        # at once on a new database would otherwise both insert the feature table's asset, and one would fail
        ["dags", "reserialize"],
    ]


def main() -> int:
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()  # what `airflow` does before any command
    parser = cli_parser.get_parser()
    for argv in commands():
        print(f"[airflow-setup] airflow {' '.join(argv)}", flush=True)
        args = parser.parse_args(argv)
        args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
