"""`featurepipe` console script (SPEC §5)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from featurepipe.dates import AsOfRange, parse_date
from featurepipe.parity import DEFAULT_SAMPLE


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="featurepipe", description="Airflow + Spark + Delta + GX + Feast feature pipeline")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write synthetic raw transactions")
    g.add_argument("--out", required=True, help="raw landing root (local path or s3://bucket/prefix)")
    g.add_argument("--users", type=int, default=50)
    g.add_argument("--start", type=parse_date, required=True, help="first event day (YYYY-MM-DD)")
    g.add_argument("--days", type=int, required=True)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--dirty", action="store_true", help="add invalid, duplicate, late and edge-of-window rows")

    la = sub.add_parser("land", help="copy local Parquet landings into the landing zone and mark their days complete")
    la.add_argument("--from", dest="source", required=True, type=Path,
                    help="folder of Parquet files (in landing_date=YYYY-MM-DD/ folders, or give --date)")
    la.add_argument("--date", type=parse_date, help="landing date of files outside landing_date= folders; "
                    "with an empty --from folder, marks a day without events complete")
    la.add_argument("--partial", action="store_true", help="copy without marking the days complete (more files follow)")
    la.add_argument("--source", dest="raw_source", default="transactions",
                    help="the raw source the files are (transactions, ratings; default %(default)s): their schema "
                         "is checked against it and they land under $FEATUREPIPE_RAW_URI/<source>/")

    r = sub.add_parser("run", help="run the daily DAG for one as-of date through Airflow")
    r.add_argument("--date", type=parse_date, required=True)

    b = sub.add_parser("backfill", help="run the backfill DAG for an as-of range through Airflow")
    b.add_argument("--start", type=parse_date, required=True)
    b.add_argument("--end", type=parse_date, required=True)

    training_set_arguments(sub.add_parser("training-set", help="point-in-time correct training set via Feast, "
                                                             "with a manifest to reproduce it"))

    o = sub.add_parser("online", help="online features, one JSON object per user (or product, or (user, product) pair)")
    o.add_argument("--user-id", action="append", default=[], dest="user_ids")
    o.add_argument("--product-id", action="append", default=[], dest="product_ids",
                   help="product features (default: every feature of product_purchase_features); with --user-id: "
                        "pairs, in order (or one of either, paired with each of the other)")
    _feature_args(o)
    o.add_argument("--with-status", action="store_true",
                   help='add "as_of" (the row\'s as-of, UTC) and "status": fresh, stale or missing (SPEC §6)')
    o.add_argument("--request", action="append", type=_request_value, default=[], metavar="NAME=VALUE",
                   help="a request value of the on-demand features, the same for every user (e.g. amount=42.5)")
    o.add_argument("--now", type=_utc_timestamp,
                   help="the request's instant: on-demand features' event_timestamp and the age of --with-status "
                        "(ISO 8601; default: now)")

    rp = sub.add_parser("report", help="monitoring of an as-of date: drift, completeness, freshness (HTML + JSON)")
    rp.add_argument("--date", type=parse_date, help="as-of date (default: the newest published)")
    rp.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    ca = sub.add_parser("catalog", help="the feature catalog: groups, features, owners, SLAs, lineage, freshness "
                                         "(static HTML + catalog.json)")
    ca.add_argument("--out", help="the HTML file (default: $FEATUREPIPE_DATA_DIR/catalog/index.html); "
                                  "catalog.json goes beside it")

    pa = sub.add_parser("parity", help="online store vs the newest published Delta rows; exit 1 on a mismatch")
    pa.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="users compared (all if fewer; default %(default)s)")

    sv = sub.add_parser("serve", help="Feast feature server (HTTP) over the online store")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=6566)

    u = sub.add_parser("ui", help="Airflow UI, scheduler and DAG processor on embedded defaults (airflow standalone)")
    u.add_argument("--port", type=int, default=8080)

    ss = sub.add_parser("spark-server", help="a shared, warm Spark driver that runs pipeline steps (FEATUREPIPE_SPARK_SERVER)")
    ss.add_argument("--host", default="127.0.0.1")
    ss.add_argument("--port", type=int, default=7078, help="0: any free port")
    ss.add_argument("--stop", action="store_true", help="stop this data dir's shared driver (started by run/backfill) and exit")
    ss.add_argument("--shared", metavar="FINGERPRINT", help=argparse.SUPPRESS)  # set by featurepipe.shared_driver

    sub.add_parser("feast-env", help="print shell exports that let the `feast` CLI use feature_repo/")

    # required options are checked by featurepipe.rollback: one line naming what is missing
    rb = sub.add_parser("rollback", help="restore a feature table to an earlier Delta version, online values included "
                                         "(docs/RUNBOOK.md)")
    rb.add_argument("--table", help="the feature table, e.g. features/user_purchase_features (required)")
    rb.add_argument("--to-version", type=int, help="the Delta version whose content to restore (see --list)")
    rb.add_argument("--to-timestamp", help="restore the newest version committed at or before this instant (ISO 8601)")
    rb.add_argument("--reason", help="why (required; recorded in bookkeeping/rollbacks)")
    rb.add_argument("--list", action="store_true", dest="list_versions",
                    help="list the table's versions: version, commit time, operation, the run that made it")
    return p


def _utc_timestamp(text: str):
    """ISO 8601 instant; without a zone it means UTC (SPEC §2's rule for naive timestamps)."""
    import datetime as dt

    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 timestamp: {text!r} (e.g. 2025-03-04T12:00:00Z)") from None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _request_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r} (e.g. amount=42.5)")
    return name.strip(), value.strip()


def _feature_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--features", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                       help="comma-separated feature refs (name or view:name)")
    group.add_argument("--feature-service", help="a Feast feature service name")


def training_set_arguments(t: argparse.ArgumentParser) -> None:
    """`featurepipe training-set`'s options (also `jobs/training_set.py`'s, which runs it)."""
    t.add_argument("--entities", help="Parquet or CSV with user_id, event_timestamp, labels...")
    t.add_argument("--out", required=True, help="output Parquet file (its manifest: OUT.manifest.json)")
    _feature_args(t)
    at = t.add_mutually_exclusive_group()
    at.add_argument("--as-of-version", type=int, help="read the feature table at this Delta version (default: the current one)")
    at.add_argument("--as-of-timestamp", type=_utc_timestamp,
                    help="read the feature table's newest version committed at or before this instant (ISO 8601)")
    t.add_argument("--manifest", help="reproduce the training set this manifest describes (same entities, features "
                                      "and version) into --out, and check it is byte-identical")


def _warm_driver() -> str | None:
    """Where `report`, `parity` and `training-set` run: the Spark server of FEATUREPIPE_SPARK_SERVER,
    else this data dir's shared driver if a `run`/`backfill` left one running; None: in this process."""
    import os

    from featurepipe import shared_driver

    return os.environ.get("FEATUREPIPE_SPARK_SERVER") or shared_driver.running()


def _generate(args: argparse.Namespace) -> None:
    from featurepipe.generate import generate

    summary = generate(args.out, users=args.users, start=args.start, days=args.days, seed=args.seed, dirty=args.dirty)
    print(summary)


def _print_run_summary(as_of: AsOfRange) -> None:
    from featurepipe.reports import read_run_reports, run_dir

    reports = read_run_reports(as_of)
    raw, feats, pub = reports.get("validate_raw", {}), reports.get("compute_features", {}), reports.get("publish", {})
    print(f"done: as-of {as_of} ({as_of.days} day{'s' if as_of.days > 1 else ''})")
    for name, source in raw.get("sources", {}).items():
        print(f"  {name} landings: {source['new_files']} new of {source['files']} files, {source['raw_rows']} raw rows, "
              f"quarantined {source['quarantined_rows']} {source.get('quarantine_reasons') or ''}, "
              f"duplicates dropped {source['duplicate_rows_dropped']}, new or corrected events "
              f"{source['new_or_corrected_events']}")
    for name, tiles in feats.get("tiles", {}).items():
        print(f"  {name} tiles rebuilt for {tiles['rebuilt_days']} event days")
    for name, group in feats.get("groups", {}).items():
        print(f"  {name}: {group['rows']} feature rows for {group['entities']} entities over {group['span']} "
              f"({group['expiry_rows']} expiry rows, {group['repaired_as_of_days']} earlier as-of days repaired for late data)")
        if group.get("stale_as_of_not_repaired"):
            print(f"  WARNING: {name}: {group['stale_as_of_not_repaired']} published as-of dates are stale from late "
                  f"data older than the look-back; repair with: {group['repair_with']}")
    for name, group in pub.get("groups", {}).items():
        again = " (tiles changed meanwhile: recomputed by the next run)" if group.get("recomputed_next_run") else ""
        print(f"  published as-of {group['span']} to {group['table']}{again}; materialized to the online store")
    for name, why in pub.get("blocked", {}).items():
        print(f"  NOT published: {name}: {why}")
    for name, group in reports.get("materialize", {}).get("groups", {}).items():
        if group.get("healed_from"):
            print(f"  online store: {name}: also re-sent rows owed since {group['healed_from']} (an earlier materialize failed)")
    for name, group in reports.get("check_parity", {}).get("groups", {}).items():
        if not group["mismatches"]:
            print(f"  parity: {name}: {group['entities']} sampled entities' online rows equal the feature table "
                  f"(version {group['features_version']}, newest as-of {group['newest_as_of']})")
    print(f"  reports: {run_dir(as_of)}; drift, completeness and freshness: `featurepipe report` "
          "(the featurepipe_monitoring DAG runs it after every publish under the Airflow scheduler)")


def _use_shared_driver() -> None:
    """On a local master, the run's steps go to the data dir's warm shared driver (featurepipe.shared_driver).

    A new data dir's Airflow metadata database is migrated meanwhile (both take ~15-25 s, mostly
    waiting on other processes), not after it."""
    import os
    import threading

    from featurepipe.orchestrator import airflow_env, ensure_airflow_db
    from featurepipe.shared_driver import for_cli_run

    failed: list[BaseException] = []

    def migrate() -> None:
        try:
            ensure_airflow_db(airflow_env())
        except BaseException as exc:  # raised again below, in this thread
            failed.append(exc)

    migrating = threading.Thread(target=migrate, name="featurepipe-airflow-db", daemon=True)
    migrating.start()
    try:
        url = for_cli_run()
    finally:
        migrating.join()
    if failed:
        raise failed[0]
    if url:
        os.environ["FEATUREPIPE_SPARK_SERVER"] = url  # `airflow dags test` inherits it: the server runner


def _run(args: argparse.Namespace) -> None:
    from featurepipe.landing import BadRange, landed_for
    from featurepipe.orchestrator import DAILY_DAG, run_dag

    # the DAG's sensor would wait for the landing (hours); from the command line, say so at once
    ready, why = landed_for(args.date)
    if not ready:
        raise BadRange(f"{why}: the daily run would wait for it to land")
    print(f"[run] {why}", flush=True)
    _use_shared_driver()
    # checked just above: the sensor is marked done instead of checking the landing a second time
    run_dag(DAILY_DAG, args.date.isoformat(), skip="wait_for_landing")
    _print_run_summary(AsOfRange(args.date, args.date))


def _backfill(args: argparse.Namespace) -> None:
    from featurepipe.orchestrator import BACKFILL_DAG, run_dag

    from featurepipe.landing import check_backfill_range

    as_of = AsOfRange(args.start, args.end)
    print(f"[backfill] {check_backfill_range(args.start.isoformat(), args.end.isoformat())}", flush=True)
    _use_shared_driver()
    # the run's logical date is the range end: one run per range, reruns of a range are separate runs
    # checked just above: the DAG's check_range is marked done instead of reading every footer again
    run_dag(BACKFILL_DAG, as_of.end.isoformat(), conf={"start": as_of.start.isoformat(), "end": as_of.end.isoformat()},
            skip="check_range")
    _print_run_summary(as_of)


def _training_set(args: argparse.Namespace) -> int:
    """`jobs/training_set.py` on a warm Spark driver when there is one (`_warm_driver`), else in this process."""
    # the server has its own working directory: every path goes as an absolute one
    argv = ["--out", str(Path(args.out).resolve())]
    for name in ("entities", "manifest"):
        if getattr(args, name):
            argv += [f"--{name}", str(Path(getattr(args, name)).resolve())]
    if args.features:
        argv += ["--features", ",".join(args.features)]
    if args.feature_service:
        argv += ["--feature-service", args.feature_service]
    if args.as_of_version is not None:
        argv += ["--as-of-version", str(args.as_of_version)]
    if args.as_of_timestamp is not None:
        argv += ["--as-of-timestamp", args.as_of_timestamp.isoformat()]
    url = _warm_driver()
    if url:
        from featurepipe.spark_server import run_step

        print(f"[training-set] on the Spark server {url}", flush=True)
        return run_step(url, "training_set", argv, echo_err=lambda line: print(line, file=sys.stderr, flush=True))
    import jobs.training_set
    from featurepipe.command_log import open_command_log

    print(f"[training-set] library output (Spark, Feast) goes to {open_command_log('training-set')}", flush=True)
    return jobs.training_set.main(argv)


def online_entities(user_ids: list[str], product_ids: list[str]) -> list[dict[str, str]]:
    """`--user-id`/`--product-id` as entity rows: users, products, or (user, product) pairs."""
    if not user_ids and not product_ids:
        raise ValueError("give --user-id U (and/or --product-id P), once per entity")
    if not product_ids:
        return [{"user_id": u} for u in user_ids]
    if not user_ids:
        return [{"product_id": p} for p in product_ids]
    if len(user_ids) == 1 or len(product_ids) == 1 or len(user_ids) == len(product_ids):
        n = max(len(user_ids), len(product_ids))
        return [{"user_id": user_ids[i % len(user_ids)], "product_id": product_ids[i % len(product_ids)]} for i in range(n)]
    raise ValueError(f"{len(user_ids)} --user-id and {len(product_ids)} --product-id cannot pair: give as many of "
                     "each, or one of either")


def _online(args: argparse.Namespace) -> None:
    from featurepipe.command_log import open_command_log
    from featurepipe.feast_store import online_rows

    open_command_log("online")  # stdout is JSON lines only: the log is under $FEATUREPIPE_DATA_DIR/logs/

    entities = online_entities(args.user_ids, args.product_ids)
    if args.with_status:
        from featurepipe.staleness import online_with_status

        rows = online_with_status(entities, features=args.features, feature_service=args.feature_service,
                                  now=args.now, request=dict(args.request))
    else:
        rows = online_rows(entities, features=args.features, feature_service=args.feature_service,
                           request=dict(args.request), now=args.now)
    for row in rows:
        print(json.dumps(row, default=str))


def _report(args: argparse.Namespace) -> None:
    """`jobs/check_features.py` on a warm Spark driver when there is one (`_warm_driver`), else in this process."""
    from featurepipe.command_log import open_command_log
    from featurepipe.monitor_config import load_config
    from featurepipe.monitoring_output import latest_file

    config = load_config()  # a bad config fails before Spark starts
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else (lambda line: print(line, flush=True))
    job_args = ["--date", args.date.isoformat()] if args.date else []
    url = _warm_driver()
    if url:
        from featurepipe.spark_server import run_step

        say(f"[report] on the Spark server {url}")
        if run_step(url, "check_features", job_args, echo=say):
            raise RuntimeError(f"the report failed on the Spark server {url}: see its reason above")
    else:
        import contextlib

        import jobs.check_features

        say(f"[report] library output (Spark) goes to {open_command_log('report')}")
        # with --json, stdout carries the JSON object only: the job's progress goes to stderr
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            if jobs.check_features.main(job_args):
                raise RuntimeError("the report failed: see its reason above")
    pointer = json.loads(latest_file().read_text())
    summary = json.loads(Path(pointer["summary"]).read_text())
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        for breach in summary["breaches"]:
            print(f"  BREACH {breach['check']:<12} {breach['feature']:<22} {breach['message']}")
        print(f"report for as-of {summary['as_of']}: {len(summary['breaches'])} breach(es) "
              f"of {len(summary['features'])} features (config {config.source})")
    say(f"[report] HTML: {pointer['html']}")
    say(f"[report] JSON: {pointer['summary']}")


def _catalog(args: argparse.Namespace) -> None:
    from featurepipe.catalog import write_catalog
    from featurepipe.command_log import open_command_log

    print(f"[catalog] library output goes to {open_command_log('catalog')}", flush=True)
    written = write_catalog(args.out)
    print(f"[catalog] JSON: {written.json}")
    print(written.summary())


def _parity(args: argparse.Namespace) -> int:
    """`jobs/parity.py` on a warm Spark driver when there is one (`_warm_driver`), else in this process."""
    url = _warm_driver()
    job_args = ["--sample", str(args.sample)]
    if url:
        from featurepipe.spark_server import run_step

        print(f"[parity] on the Spark server {url}", flush=True)
        return run_step(url, "parity", job_args, echo_err=lambda line: print(line, file=sys.stderr, flush=True))
    import jobs.parity
    from featurepipe.command_log import open_command_log

    print(f"[parity] library output (Spark, Feast) goes to {open_command_log('parity')}", flush=True)
    return jobs.parity.main(job_args)


def _serve(args: argparse.Namespace) -> None:
    from featurepipe.command_log import open_command_log
    from featurepipe.feast_store import ensure_applied, get_store, require_registry
    from featurepipe.serving import serve

    require_registry()
    print(f"[serve] library output goes to {open_command_log('serve')}", flush=True)
    print(f"[serve] Feast feature server on http://{args.host}:{args.port} (POST /get-online-features; "
          f"users without history get the no-history values)", flush=True)
    store = get_store()
    ensure_applied(store)
    serve(store, args.host, args.port)


def _ui(args: argparse.Namespace) -> None:
    import os

    from featurepipe.orchestrator import airflow_command, airflow_env, ensure_airflow_db

    env = airflow_env()
    env["AIRFLOW__API__PORT"] = str(args.port)
    # tasks report to the API server's execution API: it must be the one on this port, not :8080
    env.setdefault("AIRFLOW__API__BASE_URL", f"http://localhost:{args.port}")
    ensure_airflow_db(env)
    print(f"[ui] Airflow on http://localhost:{args.port} (login printed below by airflow standalone)", flush=True)
    os.execve(airflow_command(), [airflow_command(), "standalone"], env)


def _spark_server(args: argparse.Namespace) -> None:
    from featurepipe import shared_driver
    from featurepipe.command_log import open_command_log
    from featurepipe.spark_server import serve

    if args.stop:
        if not shared_driver.stop("asked to"):
            print(f"[spark-server] no shared driver runs for {shared_driver.folder().parent}")
        return
    print(f"[spark-server] starting a Spark session for pipeline steps on {args.host}:{args.port}; "
          f"library output goes to {open_command_log('spark-server')}", flush=True)
    serve(args.host, args.port, shared=args.shared)


def _land(args: argparse.Namespace) -> None:
    from featurepipe.land import land
    from featurepipe.settings import get_settings

    from featurepipe.spec import SOURCES

    source = next((s for s in SOURCES if s.name == args.raw_source), None)
    if source is None:
        raise ValueError(f"--source {args.raw_source!r}: no such raw source (known: {', '.join(s.name for s in SOURCES)})")
    uri = get_settings().source_uri(source.name)
    result = land(args.source, uri, date=args.date, complete=not args.partial, source=source)
    print(f"landed into {uri}: {result.summary()}")


def _feast_env(_: argparse.Namespace) -> None:
    from featurepipe.feast_store import shell_exports

    lines, warning = shell_exports()
    for line in lines:
        print(line)
    if warning:
        print(f"featurepipe feast-env: {warning}", file=sys.stderr)


def _rollback(args: argparse.Namespace) -> int:
    from featurepipe.rollback import command

    return command(args.table, args.to_version, args.to_timestamp, args.reason, list_versions=args.list_versions)


COMMANDS = {
    "generate": _generate,
    "land": _land,
    "run": _run,
    "backfill": _backfill,
    "training-set": _training_set,
    "online": _online,
    "report": _report,
    "catalog": _catalog,
    "parity": _parity,
    "serve": _serve,
    "ui": _ui,
    "spark-server": _spark_server,
    "feast-env": _feast_env,
    "rollback": _rollback,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("featurepipe: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the user; the DAG/task logs keep the details
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"featurepipe {args.command}: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
