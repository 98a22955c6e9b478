"""Command line: ``slw <command>`` (or ``python -m social_leadership <command>``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from pathlib import Path

from social_leadership.settings import ENV_PREFIX, SETTING_DOCS, SettingsError, load_settings


def _settings(_: argparse.Namespace) -> int:
    settings = load_settings()
    values = settings.as_env()
    for name, doc in SETTING_DOCS.items():
        key = ENV_PREFIX + name
        print(f"{key:<26} {values[key]}\n{'':<26} {doc}")
    return 0


def _run(_: argparse.Namespace) -> int:
    from social_leadership.demo.run import main

    return main()


def _summary(_: argparse.Namespace) -> int:
    import duckdb

    from social_leadership.summary import build_summary

    settings = load_settings()
    try:
        print(build_summary(settings))
    except duckdb.IOException as exc:
        # DuckDB allows one writer or many readers: a running pipeline task holds the file.
        print(
            f"cannot read {settings.warehouse_path} now (a pipeline task is writing it; "
            f"try again when the run ends): {str(exc).splitlines()[0]}",
            file=sys.stderr,
        )
        return 1
    return 0


def _bi(args: argparse.Namespace) -> int:
    import duckdb

    from social_leadership import bi

    settings = load_settings()
    if args.install_extensions:
        try:
            installed = bi.install_extensions(args.install_extensions)
        except (duckdb.Error, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("\n".join(f"installed {path}" for path in installed))
        return 0
    if args.sql:
        try:
            con = bi.connect_serving(settings, lake=not args.single_file)
        except (duckdb.Error, FileNotFoundError) as exc:
            print(f"error: cannot open the serving data: {exc}", file=sys.stderr)
            return 1
        with con:
            result = con.execute(args.sql)
            print("\t".join(column[0] for column in result.description or ()))
            for row in result.fetchall():
                print("\t".join("" if value is None else str(value) for value in row))
        return 0
    if not args.check:
        print(bi.connection_guide(settings))
        return 0
    try:
        engine = bi.sqlalchemy_engine(settings, lake=not args.single_file)
    except ImportError as exc:
        print(f"error: {exc}: pip install '.[bi]'", file=sys.stderr)
        return 1
    try:
        lines = bi.reflected_tables(engine)
    except Exception as exc:  # any driver error: the user needs the reason, not a traceback
        print(f"error: cannot reflect the serving data: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print("\n".join(lines) or "no tables in schema marts: publish first (make run)")
    return 0 if lines else 1


def _docs(_: argparse.Namespace) -> int:
    from social_leadership.docs_site import DBT_SITE, GX_SITE, current_docs, docs_server

    settings = load_settings()
    if not current_docs(settings).is_dir():
        print(
            f"no docs in {settings.docs_dir} yet: a successful warehouse_build publishes them "
            "(make run)",
            file=sys.stderr,
        )
        return 1
    server = docs_server(settings)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"dbt docs: {base}/{DBT_SITE}/index.html\nGX Data Docs: {base}/{GX_SITE}/index.html")
    print("serving on loopback only; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _local_airflow_environment() -> dict[str, str]:
    from social_leadership.local_airflow import airflow_environment, default_airflow_home

    settings = load_settings()
    settings.ensure_dirs()
    return airflow_environment(default_airflow_home(), settings.as_env())


def _logical_date(text: str | None) -> str | None:
    """``YYYY-MM-DD`` (midnight UTC) or a full ISO timestamp; None means now."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC).isoformat()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD) or an ISO timestamp"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _dags_test(args: argparse.Namespace) -> int:
    from social_leadership.local_airflow import run_one_dag

    return run_one_dag(args.dag_id, _local_airflow_environment(), logical_date=args.logical_date)


def _dags_list_runs(args: argparse.Namespace) -> int:
    from social_leadership.local_airflow import list_dag_runs

    return list_dag_runs(args.dag_id, _local_airflow_environment(), limit=args.limit)


def _rebuild(args: argparse.Namespace) -> int:
    from social_leadership.local_airflow import run_one_dag

    conf = {"full_refresh": bool(args.full)}
    return run_one_dag("warehouse_build", _local_airflow_environment(), conf=conf)


def _sandbox(args: argparse.Namespace) -> int:
    from social_leadership.sandbox.__main__ import main

    return main(args.sandbox_args) or 0


def _import_history(args: argparse.Namespace) -> int:
    from social_leadership.follower_imports import HistoryFileError, import_history
    from social_leadership.roster import load_roster
    from social_leadership.warehouse import connect

    settings = load_settings()
    roster = load_roster(settings.roster_path)
    failed = False
    with connect(settings.warehouse_path) as con:
        for path in args.paths:
            try:
                outcome = import_history(con, path, roster, settings.quarantine_dir)
            except HistoryFileError as exc:
                print(f"error: {exc}", file=sys.stderr)
                failed = True
                continue
            for error in outcome.errors:
                print(f"rejected {error}", file=sys.stderr)
            print(
                f"{path}: {outcome.rows_loaded} rows loaded, {outcome.rows_rejected} rejected"
                + (f" (kept in {outcome.quarantine_path})" if outcome.quarantine_path else "")
            )
            failed = failed or outcome.rows_rejected > 0
    return 1 if failed else 0


def _week_end(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _report(args: argparse.Namespace) -> int:
    from social_leadership.reports.weekly import ReportError, write_weekly_report

    settings = load_settings()
    week_end = args.week_end or datetime.now(UTC).date()
    try:
        report = write_weekly_report(settings, week_end, mail=not args.no_mail, resend=args.resend)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Weekly report {report.week.label} ({report.week.start} to {report.week.end}):")
    print(f"  html       {report.html}\n  pdf        {report.pdf}")
    if not report.enough_data:
        print("  not enough data: the report says so (see its first page)")
    if report.mailed_to:
        print(f"  mailed to  {', '.join(report.mailed_to)}")
    else:
        print(f"  not mailed: {report.mail_skipped}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slw", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="run the pipeline for today against the sandbox API (demo: SLW_DEMO on)"
    ).set_defaults(func=_run)
    commands.add_parser("summary", help="print the summary of the last run").set_defaults(
        func=_summary
    )
    commands.add_parser(
        "docs", help="serve the last publish's dbt docs and GX Data Docs on 127.0.0.1"
    ).set_defaults(func=_docs)
    commands.add_parser("settings", help="print every SLW_* setting in force").set_defaults(
        func=_settings
    )
    bi_command = commands.add_parser(
        "bi",
        help="how BI tools connect to the published marts (docs/bi.md); --check, --sql",
        description="Without options: the paths, statements and URLs BI tools use. The "
        "DuckLake catalog is read unless --single-file.",
    )
    bi_command.add_argument(
        "--check", action="store_true", help="reflect the marts through SQLAlchemy, as BI tools do"
    )
    bi_command.add_argument("--sql", help="run one read-only query and print its rows")
    bi_command.add_argument(
        "--single-file", action="store_true", help="read the single-file copy, not DuckLake"
    )
    bi_command.add_argument(
        "--install-extensions",
        type=Path,
        metavar="DIR",
        help="install ducklake and sqlite_scanner from their wheels into a DuckDB extension "
        "directory (e.g. ~/.duckdb/extensions), for the CLI, DBeaver and Superset",
    )
    bi_command.set_defaults(func=_bi)
    report = commands.add_parser(
        "report",
        help="write (and mail, if configured) the weekly report from the serving copy",
        description="Write $SLW_REPORTS_DIR/<ISO week>/ (HTML, PDF, CSV figures) for the 7 "
        "days ending on WEEK_END, from the published serving copy only; mail it through "
        "the connection slw_smtp to SLW_REPORT_EMAILS unless that week was mailed already.",
    )
    report.add_argument(
        "week_end",
        nargs="?",
        type=_week_end,
        help="last day of the week reported, YYYY-MM-DD (default today, UTC)",
    )
    report.add_argument("--no-mail", action="store_true", help="write the files only")
    report.add_argument(
        "--resend", action="store_true", help="mail again although this week was mailed"
    )
    report.set_defaults(func=_report)
    history = commands.add_parser(
        "import-history", help="import follower history files (CSV or Parquet) into raw"
    )
    history.add_argument("paths", nargs="+", type=Path)
    history.set_defaults(func=_import_history)
    dags = commands.add_parser(
        "dags",
        help="run one DAG through real Airflow, or list its runs",
        description=(
            "Airflow with this project's Airflow home ($AIRFLOW_HOME, default airflow_home/), "
            "DAGs folder and SLW_* settings; the metadata DB is migrated first. Platform "
            "connections come from the environment (AIRFLOW_CONN_SLW_*) or the metadata DB; "
            "no sandbox is started."
        ),
    )
    dag_commands = dags.add_subparsers(dest="dags_command", required=True)
    dag_test = dag_commands.add_parser(
        "test",
        help="run one DAG now, as `airflow dags test` does",
        description="Run one DAG as `airflow dags test` does: a real DAG run, tasks "
        "in this process, recorded in the metadata DB. Exit code 0 when the run succeeds.",
    )
    dag_test.add_argument("dag_id", help="e.g. survey_ingest, platform_metrics")
    dag_test.add_argument(
        "logical_date",
        nargs="?",
        type=_logical_date,
        help="YYYY-MM-DD (midnight UTC) or ISO timestamp; default now. A past date makes "
        "platform_metrics skip extraction: APIs only give current counts",
    )
    dag_test.set_defaults(func=_dags_test)
    list_runs = dag_commands.add_parser("list-runs", help="list a DAG's runs, newest first")
    list_runs.add_argument("dag_id")
    list_runs.add_argument("--limit", type=int, default=20, help="runs shown (default 20)")
    list_runs.set_defaults(func=_dags_list_runs)
    rebuild = commands.add_parser(
        "rebuild",
        help="run warehouse_build now (dbt build, quality gate, publish)",
        description="Run warehouse_build through real Airflow, as `slw dags test "
        "warehouse_build` does. A build recomputes from the first day of the raw rows "
        "loaded since the last one; --full recomputes every day of history.",
    )
    rebuild.add_argument(
        "--full", action="store_true", help="dbt build --full-refresh: every day of history"
    )
    rebuild.set_defaults(func=_rebuild)
    sandbox = commands.add_parser("sandbox", help="serve the sandbox platform API")
    sandbox.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    sandbox.set_defaults(func=_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        # A mistyped SLW_* value is the user's to fix: say which, without a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
