"""`featurepipe rollback`'s pure parts and argument errors (no Spark), and docs/RUNBOOK.md's commands."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shlex
from pathlib import Path

import pytest

from featurepipe import rollback
from featurepipe.rollback import RollbackError, choose_target

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc
TABLE = "features/user_purchase_features"
VERSIONS = [(3, dt.datetime(2025, 4, 1, 2, 0, tzinfo=UTC)), (4, dt.datetime(2025, 4, 2, 2, 0, tzinfo=UTC)),
            (5, dt.datetime(2025, 4, 3, 2, 0, tzinfo=UTC))]


def test_the_table_names_a_group_of_the_spec_and_nothing_else() -> None:
    from featurepipe import lake
    from featurepipe.spec import GROUPS, USER_PURCHASE

    for group in GROUPS:  # every group, as other engineers add them
        assert rollback.group_for_table(lake.features_table(group)) is group
    assert rollback.group_for_table(f"{TABLE}/") is USER_PURCHASE
    other = dataclasses.replace(USER_PURCHASE, name="store_sales_features")
    assert rollback.group_for_table("features/store_sales_features", groups=[USER_PURCHASE, other]) is other
    with pytest.raises(RollbackError, match=r"unknown table 'features/nope': the feature tables are .*user_purchase"):
        rollback.group_for_table("features/nope")
    with pytest.raises(RollbackError, match="--table is required"):
        rollback.group_for_table(None)


def test_a_reason_is_required_and_kept_on_one_line() -> None:
    assert rollback.check_reason("  bad landing\n 2025-04-02 ") == "bad landing 2025-04-02"
    for missing in (None, "", "   \n"):
        with pytest.raises(RollbackError, match="--reason is required"):
            rollback.check_reason(missing)


def test_exactly_one_target_and_timestamps_mean_utc() -> None:
    assert rollback.check_target_args(4, None) is None
    assert rollback.check_target_args(None, "2025-04-02T12:00:00Z") == dt.datetime(2025, 4, 2, 12, tzinfo=UTC)
    assert rollback.check_target_args(None, "2025-04-02T12:00") == dt.datetime(2025, 4, 2, 12, tzinfo=UTC)
    assert rollback.check_target_args(None, "2025-04-02T14:00+02:00") == dt.datetime(2025, 4, 2, 12, tzinfo=UTC)
    for both in ((None, None), (4, "2025-04-02")):
        with pytest.raises(RollbackError, match="exactly one of --to-version N and --to-timestamp TS"):
            rollback.check_target_args(*both)
    with pytest.raises(RollbackError, match="'yesterday' is not an ISO 8601 timestamp"):
        rollback.check_target_args(None, "yesterday")


def test_the_target_version_is_one_in_the_log_and_not_the_current_one() -> None:
    assert choose_target(TABLE, VERSIONS, to_version=4) == 4
    assert choose_target(TABLE, VERSIONS, to_version=3) == 3
    with pytest.raises(RollbackError, match=r"has no version 9: its log holds versions 3..5"):
        choose_target(TABLE, VERSIONS, to_version=9)
    with pytest.raises(RollbackError, match=r"has no version 1: "):
        choose_target(TABLE, VERSIONS, to_version=1)  # before the log's oldest (vacuumed)
    with pytest.raises(RollbackError, match="version 5 is features/user_purchase_features's current version"):
        choose_target(TABLE, VERSIONS, to_version=5)


def test_a_timestamp_picks_the_newest_version_committed_at_or_before_it() -> None:
    assert choose_target(TABLE, VERSIONS, to_timestamp=dt.datetime(2025, 4, 2, 2, 0, tzinfo=UTC)) == 4  # inclusive
    assert choose_target(TABLE, VERSIONS, to_timestamp=dt.datetime(2025, 4, 2, 23, 0, tzinfo=UTC)) == 4
    assert choose_target(TABLE, VERSIONS, to_timestamp=dt.datetime(2025, 4, 1, 2, 0, tzinfo=UTC)) == 3
    with pytest.raises(RollbackError, match=r"is before features/user_purchase_features's first commit \(version 3"):
        choose_target(TABLE, VERSIONS, to_timestamp=dt.datetime(2025, 3, 1, tzinfo=UTC))
    with pytest.raises(RollbackError, match="current version"):  # after the newest commit: the current one
        choose_target(TABLE, VERSIONS, to_timestamp=dt.datetime(2026, 1, 1, tzinfo=UTC))


def test_the_operator_is_user_or_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "ana")
    assert rollback.operator() == "ana"
    monkeypatch.delenv("USER")
    monkeypatch.setattr(rollback.getpass, "getuser", lambda: (_ for _ in ()).throw(KeyError("no passwd entry")))
    monkeypatch.delenv("LOGNAME", raising=False)
    assert rollback.operator() == "unknown"


def test_the_history_listing_and_the_summary_read_well() -> None:
    lines = rollback.history_lines([
        {"version": 0, "committed_at": "2025-04-01T02:00:00+00:00", "operation": "WRITE", "run": "publish of as-of 2025-03-01..2025-03-31"},
        {"version": 1, "committed_at": "2025-04-02T02:00:00+00:00", "operation": "RESTORE", "run": "rollback 0 -> 0 by ana: x"},
    ])
    assert lines[0].split() == ["version", "committed_at", "(UTC)", "operation", "run"]
    assert lines[1].split()[:3] == ["0", "2025-04-01T02:00:00+00:00", "WRITE"] and not lines[1].endswith("(current)")
    assert lines[2].endswith("(current)") and "RESTORE" in lines[2]
    summary = rollback.RollbackResult(TABLE, 5, 3, 6, 10, 8, 2, "why", "ana", "redis").summary()
    assert summary[0] == f"rolled back {TABLE}: version 5 -> content of version 3 (restore committed as version 6)"
    assert "entities changed: 10" in summary[1] and "8 re-materialized, 2 removed" in summary[1]
    assert "why" in summary[2] and rollback.ROLLBACKS in summary[2]


@pytest.mark.parametrize("argv, message", [
    (["rollback", "--to-version", "3", "--reason", "x"], "--table is required"),
    (["rollback", "--table", "features/nope", "--to-version", "3", "--reason", "x"], "unknown table 'features/nope'"),
    (["rollback", "--table", TABLE, "--to-version", "3"], "--reason is required"),
    (["rollback", "--table", TABLE, "--to-version", "3", "--reason", "  "], "--reason is required"),
    (["rollback", "--table", TABLE, "--reason", "x"], "give exactly one of --to-version N and --to-timestamp TS"),
    (["rollback", "--table", TABLE, "--to-version", "3", "--to-timestamp", "2025-01-01", "--reason", "x"], "exactly one"),
    (["rollback", "--table", TABLE, "--to-timestamp", "soon", "--reason", "x"], "'soon' is not an ISO 8601 timestamp"),
    (["rollback", "--table", TABLE, "--list", "--to-version", "3"], "--list only lists the versions"),
])
def test_argument_errors_are_one_line_and_start_nothing(argv, message, capsys, monkeypatch, tmp_path) -> None:
    from featurepipe.cli import main

    monkeypatch.setenv("FEATUREPIPE_DATA_DIR", str(tmp_path))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("featurepipe rollback: RollbackError: ") and message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "logs").exists() and not (tmp_path / "lake").exists()  # nothing started, nothing written


# --- docs/RUNBOOK.md --------------------------------------------------------------------------


def runbook_commands() -> list[list[str]]:
    """Every `featurepipe …` line of the runbook's shell blocks, split as a shell would."""
    text = (ROOT / "docs" / "RUNBOOK.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [shlex.split(line)[1:] for block in blocks for line in block.splitlines() if line.startswith("featurepipe ")]


def test_every_runbook_command_parses_with_the_real_cli_parser() -> None:
    from featurepipe.cli import COMMANDS, _parser

    commands = runbook_commands()
    assert {c[0] for c in commands} >= {"report", "parity", "online", "rollback", "backfill"}
    for argv in commands:
        args = _parser().parse_args(argv)  # SystemExit (a failed test) on anything the CLI does not take
        assert args.command in COMMANDS
        if args.command == "rollback" and not args.list_versions:  # and passes the rollback's own checks
            rollback.group_for_table(args.table)
            rollback.check_target_args(args.to_version, args.to_timestamp)
            rollback.check_reason(args.reason)


def test_every_runbook_command_is_one_an_integration_test_runs() -> None:
    """Same subcommand and options as a command some integration or reliability test runs
    (rollback, parity, online: tests/integration/test_rollback.py; report, backfill: test_pipeline.py;
    run: the reliability tests)."""
    sources = {p.name: p.read_text() for folder in ("integration", "reliability")
               for p in (ROOT / "tests" / folder).glob("test_*.py")}
    for argv in runbook_commands():
        wanted = [f'"{argv[0]}"', *(f'"{a}"' for a in argv if a.startswith("--"))]
        runners = [name for name, text in sources.items() if all(w in text for w in wanted)]
        assert runners, f"no test runs `featurepipe {' '.join(argv)}` ({', '.join(wanted)})"
        if argv[0] in ("rollback", "parity", "online"):
            assert "test_rollback.py" in runners, argv
