"""Where library noise goes: a log file per command, so the console shows only our progress and results.

Spark's JVM prints its start-up lines and WARNs to the stdout/stderr it inherits, and Feast and
GX emit Python warnings and log records. A command that works in-process (`training-set`,
`online`, `serve`, `spark-server`) opens a log file under `$FEATUREPIPE_DATA_DIR/logs/`; the JVM
is started with that file as its stdout and stderr, and Python warnings and library log records
go there too. Errors still reach the user: the command's one-line reason on failure, with the
log file to read for the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Iterator

LOG_FILE_VARIABLE = "FEATUREPIPE_LOG_FILE"


def open_command_log(command: str) -> Path:
    """Send Python warnings and library log records of this process to a new log file; returns its path.

    `FEATUREPIPE_LOG_FILE` tells `featurepipe.spark` to start the JVM with its output there too.
    """
    from featurepipe.settings import get_settings

    folder = get_settings().data_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{command}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")  # each warning once per place, into the log
    os.environ[LOG_FILE_VARIABLE] = str(path)
    return path


@contextlib.contextmanager
def process_output_to_log() -> Iterator[None]:
    """While inside, this process's fds 1 and 2 point at the command log (if one is open).

    A child started inside (the JVM) keeps writing there for good; Python's own streams are
    restored on exit.
    """
    target = os.environ.get(LOG_FILE_VARIABLE)
    if not target:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    log_fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
