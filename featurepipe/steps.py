"""What every step entry point in `jobs/` does first: parse its range, start (or join) the session, size it.

A step's `main` is then only its own work: `step = begin("publish", __doc__, argv)`, call the
library, write the report.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from featurepipe.dates import AsOfRange, range_from_args, range_parser

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# the pipeline's steps, in order; each is jobs/<step>.py (the DAGs chain them, the Spark server
# runs them, `featurepipe run` checks each ran)
STEPS = ("validate_raw", "compute_features", "validate_features", "publish", "materialize", "check_parity")
# every entry point in `jobs/` a runner may start: the steps, the monitoring DAG's check, and what
# `featurepipe report`, `parity` and `training-set` send to the Spark server
JOBS = (*STEPS, "check_features", "parity", "training_set")


@dataclass(frozen=True)
class Step:
    name: str
    as_of: AsOfRange
    run_id: str  # the orchestrator's run id (`--run-id`), which keys the run's state in the lake
    spark: SparkSession

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """The lake's lease for this step (`with step.lease(): …` around every write; `lake_lease`)."""
        from featurepipe.faults import hang_if_step

        with lake_lease(self.name, self.run_id):
            hang_if_step(self.spark, self.name)  # a fault for the timeout test, off unless set (featurepipe.faults)
            yield

    def fit_to(self, input_bytes: int) -> None:
        """Choose the session's execution mode for the data this step is about to read (see `spark.fit_codegen`)."""
        from featurepipe.spark import fit_codegen

        on = fit_codegen(self.spark, input_bytes)
        print(f"[{self.name}] input {input_bytes / 2**20:.1f} MiB: code generation {'on' if on else 'off'}", flush=True)


@contextlib.contextmanager
def lake_lease(holder: str, run_id: str, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """The lake's lease (featurepipe.lease), held by `holder` (a step, `rollback`) for `run_id`.

    A write that fails for lack of space or permission leaves as `LakeWriteError`, one line
    naming the path (featurepipe.storage_errors)."""
    from featurepipe.lease import Lease
    from featurepipe.settings import get_settings
    from featurepipe.storage_errors import lake_write_error

    settings = get_settings()
    try:
        with Lease(settings.lake_uri, holder, run_id, settings.lease_ttl_seconds, settings.lease_wait_minutes * 60,
                   say=say or (lambda line: print(line, flush=True))):
            yield
    except Exception as exc:
        failed = lake_write_error(exc, settings.lake_uri)
        if failed is None:
            raise
        raise failed from exc


def begin(name: str, doc: str | None, argv: list[str] | None) -> Step:
    """Parse `--as-of`/`--start --end`/`--run-id` and get the step's Spark session."""
    from featurepipe.spark import get_spark

    parser = range_parser((doc or name).splitlines()[0])
    args = parser.parse_args(argv)
    as_of = range_from_args(parser, args)
    spark = get_spark(f"featurepipe-{name.replace('_', '-')}-{as_of.label}")
    return Step(name, as_of, run_id(args, as_of), spark)


def run_id(args: argparse.Namespace, as_of: AsOfRange) -> str:
    """The run's id: the orchestrator's (`--run-id`), else one derived from the range for runs by hand."""
    return args.run_id or f"manual__{as_of.label}"
