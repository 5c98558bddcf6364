"""PySpark's Python worker daemon, started with Feast's online-store writer already imported.

Feast's Spark engine writes the online store from Python workers (`mapInArrow` in
`materialize`), and every new worker imported Feast (5.4 s of CPU on this 2-core machine) before
its first row: the 8 category vectors took 5.8 s, and each feature group paid it again for
every worker it started. Workers are forked from this daemon, so they start with it imported.
`featurepipe.spark` names it in `spark.python.daemon.module` on local masters, where the
workers run this venv's Python; executors elsewhere keep PySpark's own daemon (featurepipe
reaches them as a zip on their tasks' path, not on the daemon's).
"""

import feast.infra.compute_engines.spark.utils  # noqa: F401  (inherited by every worker forked below)
from pyspark import daemon

if __name__ == "__main__":
    daemon.manager()
