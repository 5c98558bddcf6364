"""The one-line reason a failed run gives the user: the root cause found in its task log.

Airflow ends a failed task with "Task failed with exception", and PySpark wraps every JVM error in
`Py4JJavaError: An error occurred while calling o48.load`: neither tells a user what to fix. The
cause is further in: our own step messages first, then, after a `Py4JJavaError`, the innermost Java cause
(`Caused by:`), then the last Python exception of a traceback.
"""

from __future__ import annotations

import re

# our steps' own one-line reasons, which name the file, column or expectations to fix
_OURS = (
    re.compile(r"(RawSchemaError: [^\n]+)"),
    re.compile(r"(validate_(?:raw|features): [^\n]+)"),
    re.compile(r"(check_(?:parity|features): [^\n]+)"),
    re.compile(r"(MissingRunSpan: [^\n]+)"),
    re.compile(r"(LakeWriteError: [^\n]+)"),
)
# a qualified Java exception, alone or after "Caused by:" / ": " (how Py4J prints the Java side)
_JAVA = re.compile(r"(?m)^(?:\s*Caused by: |: |\s*)((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)(?:: [^\n]*)?)$")
# the last line of a Python traceback: an unindented `Name: message` (or `module.Name: message`)
_PYTHON = re.compile(r"(?m)^((?:[a-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Failed|Failure)\b(?:: [^\n]*)?)$")
_UNHELPFUL = {"Py4JJavaError", "AirflowException", "StepFailed", "PipelineFailed"}
# Airflow's logger/location suffix on structured log lines
_SUFFIX = re.compile(r" \[[\w.]+\](?: \w+=\S+)*\s*$")


def root_cause(log_text: str, limit: int = 400) -> str:
    """The most useful one-line reason in a task log, or "see the log"."""
    timeout = log_text.find("AirflowTaskTimeout")
    if timeout >= 0:  # whatever the step was doing when it was stopped
        task = re.search(r"\[DAG TEST\] end task task_id=(\w+)", log_text[timeout:])
        return (f"{task.group(1) if task else 'a step'} timed out: it ran longer than its execution_timeout "
                "(FEATUREPIPE_STEP_TIMEOUT_MINUTES)")
    for pattern in _OURS:
        found = pattern.search(log_text)
        if found:
            return _clean(found.group(1), limit)
    # a JVM error: Py4J's wrapper is followed by the Java exception and its causes, innermost last
    wrapper = log_text.find("Py4JJavaError")
    if wrapper >= 0:
        java_side = log_text[wrapper:]
        caused_by = re.findall(r"(?m)^\s*Caused by: ([^\n]+)$", java_side)
        if caused_by:
            return _clean(caused_by[-1], limit)
        first = _JAVA.search(java_side)
        if first:
            return _clean(first.group(1), limit)
    python = [line for line in (m.group(1) for m in _PYTHON.finditer(log_text)) if _name(line) not in _UNHELPFUL]
    if python:
        return _clean(python[-1], limit)
    if "Task failed" in log_text:
        return "Task failed with exception"
    return "see the log"


def _name(line: str) -> str:
    """The exception class of a `module.Name: message` line, without its module."""
    return line.split(":", 1)[0].rsplit(".", 1)[-1]


def _clean(line: str, limit: int) -> str:
    return _SUFFIX.sub("", line.strip())[:limit]
