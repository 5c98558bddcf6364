"""Run one benchmark: `.venv/bin/python -m bench {history,backfill,compute,...} [--quick]`.

Prints a table and writes `bench/results/NAME.json` (at least `ratio` and `goal`; with
`"higher_is_better": true` the ratio passes at or above its goal, otherwise at or below). Ratios
compare two measurements taken in the same run on the same machine, never a stored number.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

BENCHMARKS = ("history", "backfill", "compute", "fixed_cost", "training", "materialize", "online", "e2e")
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", choices=BENCHMARKS + ("all",))
    parser.add_argument("--quick", action="store_true", help="small scale (each under ~3 minutes)")
    args = parser.parse_args(argv)
    failed = []
    for name in BENCHMARKS if args.name == "all" else (args.name,):
        module = importlib.import_module(f"bench.{name}")
        started = time.time()
        result = module.run(quick=args.quick)
        result.update(name=name, quick=args.quick, wall_seconds=round(time.time() - started, 1))
        higher = result.get("higher_is_better", False)
        result["passed"] = result["ratio"] >= result["goal"] if higher else result["ratio"] <= result["goal"]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
        print(f"\n{name} ({'quick' if args.quick else 'full'} scale)")
        for row in result["table"]:
            print(f"  {row[0]:<44} {row[1]:>10}")
        print(f"  {'ratio':<44} {result['ratio']:>10.2f}   goal {'>=' if higher else '<='} {result['goal']}   {'PASS' if result['passed'] else 'FAIL'}")
        print(f"  written to {RESULTS / f'{name}.json'}")
        if not result["passed"]:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
