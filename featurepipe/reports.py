"""Per-run step reports: a JSON file per step under `$FEATUREPIPE_DATA_DIR/reports/runs/<range>/`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featurepipe.dates import AsOfRange
from featurepipe.settings import get_settings


def run_dir(as_of: AsOfRange) -> Path:
    return get_settings().reports_dir / "runs" / as_of.label


def write_step_report(step: str, as_of: AsOfRange, payload: dict[str, Any]) -> Path:
    """Write (replace) one step's report and print it, so it also shows in the task log."""
    folder = run_dir(as_of)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{step}.json"
    body = {"step": step, "start": as_of.start.isoformat(), "end": as_of.end.isoformat(), **payload}
    path.write_text(json.dumps(body, indent=2, sort_keys=True, default=str) + "\n")
    print(f"[{step}] {as_of}: " + ", ".join(f"{k}={v}" for k, v in payload.items() if not isinstance(v, (dict, list))))
    return path


def read_run_reports(as_of: AsOfRange) -> dict[str, dict[str, Any]]:
    folder = run_dir(as_of)
    if not folder.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
