"""Command line: ``slw <command>`` (or ``python -m social_leadership <command>``), on click.

:func:`main` returns each command's exit code: 0 done, 1 the command ran and something
failed (rows rejected, a run failed, the warehouse is locked, a report was not mailed), 2
the command was not given what it needs (a usage error, a bad ``SLW_*`` value, a path that
does not exist). An error the user can fix is said in one or two lines, without a
traceback; ``slw --debug`` or ``SLW_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from social_leadership.formatting import counted
from social_leadership.settings import (
    ENV_PREFIX,
    MIN_PSEUDONYM_KEY_CHARS,
    PSEUDONYM_KEY_ENV,
    SETTING_DOCS,
    SettingsError,
    for_a_run_by_hand,
    load_settings,
    misspelled_settings,
)

PACKAGE = "social-leadership-warehouse"
# A DuckDB file that another process writes: 'Could not set lock on file "<path>":
# Conflicting lock is held in <program> (PID <n>) ...'.
_DUCKDB_LOCK = re.compile(r'Could not set lock on file "(?P<path>[^"]+)"(.*?\(PID (?P<pid>\d+)\))?')
# Opening a DuckDB file read-only that is not there: 'Cannot open database "<path>" in
# read-only mode: database does not exist'.
_DUCKDB_MISSING = re.compile(r'Cannot open database "(?P<path>[^"]+)".*database does not exist')
# Attaching a DuckLake whose SQLite catalog file is not there.
_DUCKLAKE_MISSING = re.compile(
    r'Failed to probe DuckLake metadata: Unable to open database "(?P<path>[^"]+)"'
)
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_DEBUG_HINT = "run again with slw --debug (or SLW_DEBUG=1) for the traceback"
_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def calendar_day(text: str) -> date:
    """``YYYY-MM-DD``; raises ValueError for anything else (Python's fromisoformat also
    takes 20261129 and ISO week dates: 2026-W48 is its Monday, which a user means
    otherwise)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{text!r} is not YYYY-MM-DD")
    return date.fromisoformat(text)


class _Date(click.ParamType):
    """``YYYY-MM-DD``; with ``timestamp``, also a full ISO timestamp (then kept as text);
    with ``week``, also an ISO week ``YYYY-Www``, read as its Sunday (the report's folder
    names its week so)."""

    def __init__(self, *, timestamp: bool, week: bool = False) -> None:
        self.timestamp, self.week = timestamp, week
        self.name = "datetime" if timestamp else "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, date | datetime):
            return value
        text = str(value)
        try:
            if self.week:
                from social_leadership.reports.data import week_end_day

                parsed: Any = week_end_day(text)
            elif not self.timestamp:
                parsed = calendar_day(text)
            else:
                parsed = logical_date(text)
        except ValueError as exc:
            # Written as a day or week but none there is (2026-02-30, 2025-W53): said so,
            # where "is not a date (YYYY-MM-DD) or an ISO week (YYYY-Www)" read as a form
            # not followed.
            week = self.week and re.fullmatch(r"\d{4}-W\d{2}", text)
            if week or re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                self.fail(f"{text!r} is no such {'week' if week else 'day'}: {exc}", param, ctx)
            wanted = "a date (YYYY-MM-DD)" + (" or an ISO timestamp" if self.timestamp else "")
            wanted += " or an ISO week (YYYY-Www)" if self.week else ""
            self.fail(f"{text!r} is not {wanted}", param, ctx)
        outside = self._outside(parsed)
        if outside:
            self.fail(f"{text!r} {outside}", param, ctx)
        return parsed

    def _outside(self, parsed: Any) -> str | None:
        """Why a date given is none a command can run for, or None. Before the DAGs' start
        date Airflow runs none of a DAG's tasks (the run was green, nothing done); a day
        not come yet has nothing to report (a future week was written, mailed as done)."""
        from social_leadership.domain import DAGS_START_DAY

        today = datetime.now(UTC).date()
        if self.timestamp:
            day = datetime.fromisoformat(parsed).astimezone(UTC).date()
            if day < DAGS_START_DAY:
                return (
                    f"is before the DAGs' start date {DAGS_START_DAY}: Airflow would run "
                    "none of their tasks"
                )
            if day > today + timedelta(days=1):
                return f"is a day to come (today is {today}, UTC)"
            return None
        if parsed > today:
            return f"ends after today ({today}, UTC): the week has not ended yet"
        if parsed.year < EARLIEST_YEAR:
            return f"is before {EARLIEST_YEAR}: no platform counted then"
        return None


# The earliest year a report can be of (no platform counted before it).
EARLIEST_YEAR = 2000


def logical_date(text: str) -> str:
    """``YYYY-MM-DD`` (midnight UTC) or a full ISO timestamp (UTC unless it says otherwise),
    as the ISO timestamp Airflow takes. Raises ValueError for anything else."""
    if len(text) == 10:
        return datetime.combine(calendar_day(text), time(), tzinfo=UTC).isoformat()
    calendar_day(text[:10])
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _existing_file() -> click.Path:
    return click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@click.group(
    context_settings=_CONTEXT,
    epilog="Settings are SLW_* environment variables (slw settings lists them). "
    "Exit codes: 0 done, 1 failed, 2 usage error or bad setting.",
)
@click.version_option(package_name=PACKAGE, prog_name="slw", message="%(prog)s %(version)s")
@click.option(
    "--debug",
    is_flag=True,
    help="show the full traceback of an error (also SLW_DEBUG=1)",
)
def cli(debug: bool) -> None:
    """The social leadership warehouse: run the pipeline, one DAG, or read its results."""
    # A misspelt variable is ignored and leaves its setting at the default: said on stderr.
    for variable, meant in misspelled_settings(os.environ):
        print(
            f"warning: {variable} is not a setting and is ignored: did you mean {meant}?",
            file=sys.stderr,
        )


@cli.command()
def run() -> int:
    """Run the whole pipeline for today against the sandbox API.

    Starts the sandbox platform API on loopback, runs survey_ingest, platform_metrics,
    warehouse_build and weekly_report through real Airflow with the demo switch on, then
    prints the summary. What make run does after installing. Refused (exit 2) when the
    roster is not the bundled demo roster as shipped, or the warehouse holds another
    roster: the demo's invented counts would mix with real data.
    """
    from social_leadership.demo.run import main as run_demo

    return run_demo()


@cli.command()
def summary() -> int:
    """Print the summary of the last run.

    The latest run of each DAG that writes the warehouse (platform_metrics, survey_ingest,
    warehouse_build; failed ones first), platform loads, raw rows, quality checks, top reach
    per country, the country comparison and where the files are. Exit code 1 when the
    latest run of one of those DAGs failed. weekly_report reads only the serving copy and
    records its runs in Airflow alone: slw dags list-runs weekly_report.
    """
    from social_leadership.summary import summarise

    text, failed = summarise(load_settings())
    print(text)
    return 1 if failed else 0


@cli.command()
def docs() -> int:
    """Serve the dbt docs and GX Data Docs of the last publish.

    On http://127.0.0.1:SLW_DOCS_PORT only; Ctrl-C stops.
    """
    from social_leadership.docs_site import DBT_SITE, GX_SITE, current_docs, docs_server

    settings = load_settings()
    if not current_docs(settings).is_dir():
        print(
            f"no docs in {settings.docs_dir} yet: a successful warehouse_build publishes them "
            "(make run)",
            file=sys.stderr,
        )
        # As slw summary and slw bi before the first build: nothing to read yet.
        return 2
    try:
        server = docs_server(settings)
    except OSError as exc:
        raise _port_taken(exc, settings.docs_port, "set SLW_DOCS_PORT to a free port") from None
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


@cli.command()
def settings() -> int:
    """Print every SLW_* setting in force, with what it means."""
    values = load_settings().as_env()
    # As wide as the longest name: a fixed 26 left four names' values out of line.
    width = max(len(name) for name in (*values, PSEUDONYM_KEY_ENV))
    for name, doc in SETTING_DOCS.items():
        key = ENV_PREFIX + name
        print(f"{key:<{width}} {values[key]}\n{'':<{width}} {doc}")
    # The key is a secret: its length is checked here (the survey intake refuses a short one
    # only when a respondent file first needs it), its value never printed.
    key = os.environ.get(PSEUDONYM_KEY_ENV, "")
    in_use = (
        f"set ({len(key)} characters, not shown): used instead of SLW_PSEUDONYM_KEY_FILE"
        if key
        else "unset: the key is read from SLW_PSEUDONYM_KEY_FILE"
    )
    print(
        f"{PSEUDONYM_KEY_ENV:<{width}} {in_use}\n{'':<{width}} the survey pseudonyms' secret key "
        f"(at least {MIN_PSEUDONYM_KEY_CHARS} characters), from the environment only"
    )
    if key and len(key) < MIN_PSEUDONYM_KEY_CHARS:
        print(
            f"error: {PSEUDONYM_KEY_ENV} is {len(key)} characters long: it must be at least "
            f"{MIN_PSEUDONYM_KEY_CHARS}\n  fix: set a longer key, or unset it for the key file "
            "(SLW_PSEUDONYM_KEY_FILE)",
            file=sys.stderr,
        )
        return 2
    return 0


@cli.command()
@click.option("--check", is_flag=True, help="reflect the marts through SQLAlchemy, as BI tools do")
@click.option("--sql", metavar="QUERY", help="run one read-only query and print its rows")
@click.option("--single-file", is_flag=True, help="read the single-file copy, not DuckLake")
@click.option(
    "--install-extensions",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="install ducklake and sqlite_scanner from their wheels into a DuckDB extension "
    "directory (e.g. ~/.duckdb/extensions), for the DuckDB CLI, DBeaver and Superset",
)
def bi(check: bool, sql: str | None, single_file: bool, install_extensions: Path | None) -> int:
    """How BI tools connect to the published marts (docs/bi.md).

    Without options: the paths, statements and URLs BI tools use. The DuckLake catalog is
    read unless --single-file.
    """
    import duckdb

    from social_leadership import bi as bi_module

    settings = load_settings()
    if install_extensions:
        try:
            installed = bi_module.install_extensions(install_extensions)
        except (duckdb.Error, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("\n".join(f"installed {path}" for path in installed))
        return 0
    # An empty --sql (a variable unset in a script) is no query: it printed the connection
    # guide, exit 0, as if the query had run.
    if sql is not None:
        try:
            con = bi_module.connect_serving(settings, lake=not single_file)
        except (duckdb.Error, FileNotFoundError) as exc:
            if missing := _missing_database(exc):
                print(missing, file=sys.stderr)
                return 2
            print(f"error: cannot open the serving data: {exc}", file=sys.stderr)
            return 1
        with con:
            refused = _not_one_query(con, sql)
            if refused:
                print(
                    f"error: {refused}\n"
                    "  fix: give one SELECT (or DESCRIBE, SHOW, EXPLAIN [ANALYZE] SELECT)",
                    file=sys.stderr,
                )
                return 2
            try:
                result = con.execute(sql)
            except duckdb.Error as exc:
                print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
                return 1
            print("\t".join(column[0] for column in result.description or ()))
            for row in result.fetchall():
                print("\t".join("" if value is None else str(value) for value in row))
        return 0
    if not check:
        print(bi_module.connection_guide(settings))
        return 0
    try:
        engine = bi_module.sqlalchemy_engine(settings, lake=not single_file)
    except ImportError as exc:
        print(f"error: {exc}: pip install '.[bi]'", file=sys.stderr)
        return 1
    try:
        lines = bi_module.reflected_tables(engine)
    except Exception as exc:  # any driver error: the user needs the reason, not a traceback
        if missing := _missing_database(exc):
            print(missing, file=sys.stderr)
            return 2
        print(f"error: cannot reflect the serving data: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print("\n".join(lines) or "no tables in schema marts: publish first (make run)")
    return 0 if lines else 1


@cli.command()
@click.argument(
    "week_end",
    required=False,
    type=_Date(timestamp=False, week=True),
    help="last day of the week reported: a day or an ISO week (default: today, UTC)",
)
@click.option("--no-mail", is_flag=True, help="write the files only")
@click.option("--resend", is_flag=True, help="mail again although this week was mailed")
def report(week_end: date | None, no_mail: bool, resend: bool) -> int:
    """Write (and mail, if configured) the weekly report.

    Writes SLW_REPORTS_DIR/<ISO week>/ (HTML, PDF, CSV figures) for the 7 days ending on
    WEEK_END (7 days that end before their week's Sunday, once it has come:
    <ISO week>_to_<WEEK_END>/), from the published serving copy only, and mails it through
    the Airflow connection slw_smtp to SLW_REPORT_EMAILS unless that week was mailed
    already. WEEK_END is a day, YYYY-MM-DD, or an ISO week as the folders are named,
    YYYY-Www, for its Sunday.
    """
    from social_leadership.reports.weekly import (
        NO_SMTP_CONNECTION,
        ReportError,
        write_weekly_report,
    )

    settings = load_settings()
    if not settings.serving_lake_path.exists():
        # The scheduled run reports "not enough data" before the first publish; asked for
        # here, it was a wrong data folder that mailed that report, exiting 0.
        print(
            f"error: no published serving copy at {settings.serving_lake_path}\n{_RUN_FIRST}",
            file=sys.stderr,
        )
        return 2
    week_end = week_end or datetime.now(UTC).date()
    try:
        written = write_weekly_report(settings, week_end, mail=not no_mail, resend=resend)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Weekly report {written.week.heading}:")
    print(f"  html       {written.html}\n  pdf        {written.pdf}")
    if not written.enough_data:
        print("  not enough data: the report says so (see its first page)")
    if written.kept_mailed:
        print(f"  {written.kept_mailed}")
    if written.mailed_to:
        print(f"  mailed to  {', '.join(written.mailed_to)}")
    elif written.mail_skipped == NO_SMTP_CONNECTION:
        # Mail was wanted (SLW_REPORT_EMAILS is set) but cannot be sent: the user's to fix.
        print(
            "error: not mailed: SLW_REPORT_EMAILS is set but the Airflow connection slw_smtp "
            "is not defined\n  fix: set AIRFLOW_CONN_SLW_SMTP (README, Alerts) or add it in "
            "the Airflow UI, then run slw report again; --no-mail writes the files only",
            file=sys.stderr,
        )
        return 1
    else:
        print(f"  not mailed: {written.mail_skipped}")
    return 0


@cli.command("import-history")
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=_existing_file(),
    help="follower history files, CSV or Parquet (columns: README, History import)",
)
def import_history(paths: tuple[Path, ...]) -> int:
    """Import follower history files into raw.imported_metrics.

    Rows that are not valid are rejected, named on stderr and kept in SLW_QUARANTINE_DIR;
    exit code 1 if any row was rejected. The executives must be in the roster
    (SLW_ROSTER_PATH).
    """
    from social_leadership.follower_imports import HistoryFileError, ImportOutcome
    from social_leadership.follower_imports import import_history as import_file
    from social_leadership.roster import load_roster
    from social_leadership.warehouse import connect
    from social_leadership.warehouse_backend import (
        describe_working,
        holds_no_warehouse,
        retry_conflicts,
    )

    settings = load_settings()
    roster = load_roster(settings.roster_path)
    if holds_no_warehouse(settings):
        # Importing before the first run is allowed; into a mistyped SLW_DATA_DIR it made a
        # new warehouse unsaid, and the history never reached the pipeline's.
        print(
            f"no warehouse at {describe_working(settings)} yet: this import makes a new one"
            " (a wrong SLW_DATA_DIR? slw settings shows the SLW_* paths in force)"
        )
    failed = False
    seen: dict[Path, Path] = {}
    for index, path in enumerate(paths):
        if (first := seen.setdefault(path.resolve(), path)) is not path:
            # Imported twice, it was two imports and two quarantine folders, unsaid.
            also = f" (as {first})" if str(first) != str(path) else ""
            print(f"{path}: given again{also}, imported once")
            continue

        def imported(path: Path = path) -> ImportOutcome:
            # A whole transaction on a connection of its own: on a DuckLake another writer's
            # commit (a build, a load) may refuse it, and it is run again.
            with connect(settings.warehouse_path) as con:
                return import_file(con, path, roster, settings.quarantine_dir)

        try:
            outcome = retry_conflicts(imported)
        except HistoryFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        except OSError as exc:
            # A fault of this file's own (its quarantine folder cannot be written, the file
            # went away): the import was rolled back; the files after it are still imported.
            message, _ = explain(exc)
            print(f"{message}\n  {path}: not imported, none of its rows loaded", file=sys.stderr)
            failed = True
            continue
        except Exception:
            # The warehouse's fault (locked, full, out of memory) would fail every file the
            # same: the import stops, naming the files it leaves, and main says why.
            if rest := [str(later) for later in paths[index + 1 :]]:
                print(f"not imported: {', '.join(rest)} (stopped at {path})", file=sys.stderr)
            raise
        # The first rows by name; the quarantine's report has every one (a file of 100,000
        # rows of US dates printed 100,000 lines).
        for error in outcome.errors[:REJECTED_ROWS_SHOWN]:
            print(f"rejected {error}", file=sys.stderr)
        if len(outcome.errors) > REJECTED_ROWS_SHOWN:
            more = len(outcome.errors) - REJECTED_ROWS_SHOWN
            where = f" (every one in {outcome.quarantine_path})" if outcome.quarantine_path else ""
            print(f"... and {more} more rejected rows{where}", file=sys.stderr)
        print(
            f"{path}: {counted(outcome.rows_loaded, 'row')} loaded,"
            f" {outcome.rows_rejected} rejected"
            + (f" (kept in {outcome.quarantine_path})" if outcome.quarantine_path else "")
        )
        if not_counted := outcome.rows_not_counted():
            print(f"  {not_counted}")
        failed = failed or outcome.rows_rejected > 0
    return 1 if failed else 0


# How many rejected rows ``slw import-history`` names on stderr.
REJECTED_ROWS_SHOWN = 20


def _local_airflow_environment() -> dict[str, str]:
    from social_leadership.local_airflow import airflow_environment, default_airflow_home

    settings = load_settings()
    settings.ensure_dirs()
    return airflow_environment(default_airflow_home(), for_a_run_by_hand(settings).as_env())


@cli.group()
def dags() -> None:
    """Run one DAG through real Airflow, or list its runs.

    Airflow with this project's Airflow home (AIRFLOW_HOME, default airflow_home/), DAGs
    folder and SLW_* settings; the metadata DB is migrated first. Platform connections come
    from the environment (AIRFLOW_CONN_SLW_*) or the metadata DB; no sandbox is started.
    """


# How a DAG file names its DAG: dag_id="..." (DAG(...) or @dag(...)), DAG("..."), or the
# name of the function @dag decorates when it gives no dag_id.
_NAMED_DAG = re.compile(r"""dag_id\s*=\s*["']([^"']+)["']|\bDAG\(\s*["']([^"']+)["']""")
_DECORATED_DAG = re.compile(r"@dag\b(\((?:[^()]|\([^()]*\))*\))?\s*def\s+(\w+)")


def _dag_ids(text: str) -> set[str]:
    """The DAG ids a DAG file's text defines."""
    found = {named or called for named, called in _NAMED_DAG.findall(text)}
    found |= {name for args, name in _DECORATED_DAG.findall(text) if "dag_id" not in args}
    return found


def _dag_id(ctx: click.Context, param: click.Parameter, dag_id: str) -> str:
    """``dag_id`` if a file of the DAGs folder names it; else a usage error at once, before
    Airflow starts (its start-up logs would hide the one line that matters)."""
    from social_leadership.local_airflow import DAGS_FOLDER

    texts = [path.read_text(encoding="utf-8") for path in sorted(DAGS_FOLDER.glob("*.py"))]
    defined = sorted({dag for text in texts for dag in _dag_ids(text)})
    if dag_id in defined:
        return dag_id
    raise click.BadParameter(
        f"unknown DAG id {dag_id!r}; the DAGs folder defines: {', '.join(defined)}", ctx, param
    )


@dags.command("test")
@click.argument(
    "dag_id",
    callback=_dag_id,
    help="survey_ingest, platform_metrics, warehouse_build, weekly_report",
)
@click.argument(
    "logical_date",
    required=False,
    type=_Date(timestamp=True),
    help="YYYY-MM-DD (midnight UTC) or an ISO timestamp; default now. A past date makes "
    "platform_metrics skip extraction: APIs only give current counts",
)
def dags_test(dag_id: str, logical_date: str | None) -> int:
    """Run one DAG now, as airflow dags test does.

    A real DAG run, tasks in this process, recorded in the metadata DB. Exit code 0 when
    the run succeeds, 1 when it fails, 2 for an unknown DAG id, a bad date (one after
    tomorrow too) or, for platform_metrics, a roster file that cannot be read.
    """
    from social_leadership.local_airflow import run_one_dag
    from social_leadership.roster import RosterFileError, load_roster

    if dag_id == "platform_metrics":
        # Said in two lines, exit 2, as slw run does: the run failed its first task, the
        # cause in Airflow's traceback, exit 1. A file caught while being written is left to
        # the task, which waits for it.
        try:
            load_roster(load_settings().roster_path)
        except RosterFileError as exc:
            if not exc.may_pass_later:
                raise
    return run_one_dag(dag_id, _local_airflow_environment(), logical_date=logical_date)


@dags.command("list-runs")
@click.argument(
    "dag_id", callback=_dag_id, help="the DAG whose runs are listed, e.g. platform_metrics"
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="runs shown"
)
def dags_list_runs(dag_id: str, limit: int) -> int:
    """List a DAG's runs from the metadata DB, newest first."""
    from social_leadership.local_airflow import list_dag_runs

    return list_dag_runs(dag_id, _local_airflow_environment(), limit=limit)


@cli.command()
@click.option("--full", is_flag=True, help="dbt build --full-refresh: every day of history")
@click.option(
    "--accept-shorter-history",
    is_flag=True,
    help="publish even though a daily fact holds less than half the serving copy's days "
    "(you started over on purpose); otherwise that publish is refused",
)
def rebuild(full: bool, accept_shorter_history: bool) -> int:
    """Run warehouse_build now: dbt build, quality gate, publish.

    Through real Airflow, as slw dags test warehouse_build does. A build recomputes from
    the first day of the raw rows loaded since the last one; --full recomputes every day.
    """
    from social_leadership.local_airflow import run_one_dag

    conf = {"full_refresh": full, "accept_shorter_history": accept_shorter_history}
    return run_one_dag("warehouse_build", _local_airflow_environment(), conf=conf)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="port to listen on; 0 picks a free one",
)
@click.option(
    "--roster",
    type=_existing_file(),
    help="roster CSV of the accounts served (default: SLW_ROSTER_PATH)",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the base URL to this file once listening (for a supervisor or a test)",
)
@click.option(
    "--token",
    help="bearer token of every platform route that takes one (default: SLW_SANDBOX_TOKEN, "
    "else the sandbox's fixed demo token)",
)
@click.option(
    "--youtube-key",
    help="API key YouTube's route takes (key=), where the others take the token (default: "
    "SLW_SANDBOX_YOUTUBE_KEY, else the sandbox's fixed demo key, sandbox-key)",
)
@click.option(
    "--connections-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write an Airflow connection slw_<platform> to the sandbox for every platform, as "
    "AIRFLOW_CONN_* lines a shell reads (set -a; . FILE; set +a), for slw dags test "
    "platform_metrics; readable by you alone (it holds the token), removed when the "
    "sandbox stops",
)
def sandbox(
    host: str,
    port: int,
    roster: Path | None,
    ready_file: Path | None,
    token: str | None,
    youtube_key: str | None,
    connections_file: Path | None,
) -> int:
    """Serve the sandbox platform API (synthetic counts).

    Until Ctrl-C or SIGTERM. The same server as python -m social_leadership.sandbox;
    point the slw_* connections at it to run platform_metrics without real credentials
    (README, Airflow UI).

    On a platform where the roster has no account it serves, it serves synthetic stand-ins
    and says so at startup: Facebook Pages sandbox_page_1, sandbox_page_2, sandbox_page_3;
    Instagram business accounts sandbox_business_1, sandbox_business_2, sandbox_business_3;
    LinkedIn organizations urn:li:organization:1001, urn:li:organization:1002,
    urn:li:organization:1003.
    """
    from social_leadership.sandbox.__main__ import YOUTUBE_KEY_ENV, serve
    from social_leadership.sandbox.server import SANDBOX_TOKEN, SANDBOX_YOUTUBE_KEY

    token = token or os.environ.get("SLW_SANDBOX_TOKEN") or SANDBOX_TOKEN
    youtube_key = youtube_key or os.environ.get(YOUTUBE_KEY_ENV) or SANDBOX_YOUTUBE_KEY
    try:
        return serve(
            host=host,
            port=port,
            roster=roster,
            ready_file=ready_file,
            token=token,
            youtube_key=youtube_key,
            connections_file=connections_file,
        )
    except OSError as exc:
        raise _port_taken(exc, port, "choose another with --port (0 picks a free one)") from None


def _not_one_query(con: Any, sql: str) -> str | None:
    """Why ``sql`` is not the one read-only query ``slw bi --sql`` runs (several statements,
    or one that attaches, writes or copies: the connection is read-only, but ATTACH and COPY
    reach other files); None when it is one."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    if len(statements) != 1:
        kinds = [statement.type for statement in statements]
        if kinds == [duckdb.StatementType.CREATE, duckdb.StatementType.SELECT] and re.search(
            r"\bpivot\b", sql, re.IGNORECASE
        ):
            # DuckDB makes a PIVOT without its values a type of them, then the query.
            return (
                "--sql runs one query; a PIVOT without its values first creates a type of "
                "them: name them, PIVOT ... ON b IN ('x', 'y') USING ..."
            )
        return f"--sql runs one query; this gives {len(statements)} statements"
    kind = statements[0].type
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs what it explains: a COPY ... TO writes its file.
        explained = _EXPLAINED.sub("", statements[0].query, count=1)
        try:
            inner = con.extract_statements(explained)
        except duckdb.Error:
            inner = []
        if len(inner) != 1 or inner[0].type != duckdb.StatementType.SELECT:
            return "--sql explains a SELECT only; this explains another statement"
        return None
    if kind != duckdb.StatementType.SELECT:
        return f"--sql runs a read-only query; {kind.name} is none"
    return None


# The head of an EXPLAIN: the keyword, ANALYZE, and DuckDB's options in parentheses.
_EXPLAINED = re.compile(r"^\s*explain\s+(analy[sz]e\s+)?(\([^)]*\)\s*)?", re.IGNORECASE)


def _missing_database(exc: Exception) -> str | None:
    """The error and its fix when ``exc`` (DuckDB's, or a driver's wrapping it) is a
    database or DuckLake catalog that is not there yet; None for any other error."""
    text = str(exc)
    found = _DUCKDB_MISSING.search(text)
    what = "DuckDB database"
    if found is None:
        found = _DUCKLAKE_MISSING.search(text)
        what = "DuckLake catalog"
    if found is None:
        return None
    return f"error: no {what} at {found['path']}\n{_RUN_FIRST}"


# DuckDB's postgres_scanner failing to connect to a lake's catalog (the connection string
# carries no password: settings refuse one in it).
_POSTGRES_UNREACHABLE = re.compile(r"Unable to connect to Postgres at \"[^\"]*\": (?P<why>[^\n]+)")
# httpfs's refusals by an S3 store (a lake's data path): writing ("Unable to connect to URL
# s3://...: Forbidden (HTTP code 403)", whatever the code) and reading ("HTTP GET error
# reading 's3://...' in region '...' (HTTP 404 Not Found)"); and a store it cannot reach.
_S3_ANSWERED = re.compile(
    r"URL (?P<url>s3://\S+): (?P<reason>[^(\n]+?) \(HTTP code (?P<code>\d{3})\)"
    r"|reading '(?P<read>s3://[^']+)'[^(\n]*\(HTTP (?P<read_code>\d{3}) ?(?P<read_reason>[^)\n]*)\)"
)
_S3_UNREACHABLE = re.compile(r"Could not connect to server error for HTTP \w+ to '(?P<url>[^']+)'")
_S3_FIX = {
    "403": "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN, AWS_REGION: "
    "credentials come from these variables only) and what the key may do in the bucket",
    "404": "check the bucket of SLW_DUCKLAKE_DATA_PATH (it must exist) and AWS_ENDPOINT_URL",
}


# The fix of a database, catalog or serving copy that is not there yet.
_RUN_FIRST = (
    "  fix: run the pipeline first (make run), or set the SLW_* path that names it (slw "
    "settings shows them)"
)


def _port_taken(exc: OSError, port: int, fix: str) -> Exception:
    """A server's port in use said with its number and how to choose another; any other
    error as it was."""
    if exc.errno != errno.EADDRINUSE:
        return exc
    return click.ClickException(
        f"port {port} is in use (another slw docs, slw sandbox or program listens on it)\n"
        f"  fix: stop it, or {fix}"
    )


def _debug_wanted(args: Sequence[str]) -> bool:
    """``--debug`` before the command, or SLW_DEBUG on (read here, not through the settings:
    a bad setting is one of the errors it is for)."""
    options = list(
        args[: next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))]
    )
    return "--debug" in options or os.environ.get("SLW_DEBUG", "").strip().lower() in _TRUE


def explain(exc: Exception) -> tuple[str, int]:
    """What went wrong and how to fix it, in one or two lines, and the exit code."""
    import duckdb

    from social_leadership.roster import RosterFileError
    from social_leadership.warehouse_backend import WarehouseSettingError, write_conflict

    if isinstance(exc, SettingsError):
        lines = [
            f"error: {variable}={value!r} is not allowed: it must be {allowed}"
            for variable, value, allowed in exc.problems
        ]
        lines.append("  fix: set an allowed value, or unset it for the default (README, Settings)")
        return "\n".join(lines), 2
    if isinstance(exc, WarehouseSettingError):
        return f"error: {exc.problem}\n  fix: {exc.fix}", 2
    if isinstance(exc, RosterFileError):
        return (
            f"error: {exc}\n  fix: point SLW_ROSTER_PATH at a roster CSV (README, The roster); "
            "slw settings shows the path in force",
            2,
        )
    if isinstance(exc, duckdb.IOException) and (locked := _DUCKDB_LOCK.search(str(exc))):
        holder = f"process {locked['pid']}" if locked["pid"] else "another process"
        return (
            f"error: {locked['path']} is locked by {holder} (a pipeline task is writing it, or "
            "another DuckDB session holds it)\n  fix: wait until that run ends (or close that "
            "session), then run this command again",
            1,
        )
    if (conflict := write_conflict(exc)) is not None:
        return (
            "error: another process was writing the warehouse (a DuckLake commit refused: "
            f"{conflict[:200]}); nothing of this command was kept\n  fix: run this "
            "command again, or when the running warehouse_build or load has ended",
            1,
        )
    if isinstance(exc, duckdb.Error) and (missing := _missing_database(exc)):
        return missing, 2
    if isinstance(exc, duckdb.Error) and (unreachable := _POSTGRES_UNREACHABLE.search(str(exc))):
        return (
            "error: the DuckLake catalog's PostgreSQL refused the connection or cannot be "
            f"reached: {unreachable['why']}\n"
            "  fix: start the server, or correct SLW_DUCKLAKE_CATALOG, the password (PGPASSWORD, "
            ".pgpass) and the PG* variables (slw settings shows the catalog); then run this "
            "command again",
            1,
        )
    if isinstance(exc, duckdb.Error) and (s3 := _object_store_said(str(exc))):
        return s3, 1
    if isinstance(
        exc, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError
    ):
        return (
            f"error: {exc.filename or exc}: {exc.strerror or 'cannot open'}\n  fix: check the "
            "path (slw settings shows the SLW_* paths in force)",
            2,
        )
    if isinstance(exc, OSError) and exc.errno in _FULL_OR_READ_ONLY:
        where = f"{exc.filename}: " if exc.filename else ""
        return (
            f"error: {where}{exc.strerror or os.strerror(exc.errno or 0)}\n  fix: free space on, "
            "or mount writable, the disk of the data folder (slw settings shows SLW_DATA_DIR)",
            1,
        )
    if isinstance(exc, duckdb.IOException) and _DUCKDB_DISK.search(str(exc)):
        said = (str(exc).strip().splitlines() or [""])[0]
        return (
            f"error: {said}\n  fix: free space on, or mount writable, the disk of the data "
            "folder (slw settings shows SLW_DATA_DIR)",
            1,
        )
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"error: {type(exc).__name__}: {first_line}\n  {_DEBUG_HINT}", 1


def _object_store_said(text: str) -> str | None:
    """A lake's S3 store refusing or out of reach, in two lines; None for another error."""
    if answered := _S3_ANSWERED.search(text):
        url = answered["url"] or answered["read"]
        code = answered["code"] or answered["read_code"]
        reason = (answered["reason"] or answered["read_reason"] or "").strip()
        fix = _S3_FIX.get(
            code, "check SLW_DUCKLAKE_DATA_PATH, AWS_ENDPOINT_URL and the AWS_* credentials"
        )
        return (
            f"error: the lake's object store answered HTTP {code}"
            + (f" ({reason})" if reason else "")
            + f" for {url}\n  fix: {fix}; then run this command again"
        )
    if unreachable := _S3_UNREACHABLE.search(text):
        return (
            f"error: the lake's object store cannot be reached ({unreachable['url']})\n"
            "  fix: start it, or correct AWS_ENDPOINT_URL; then run this command again"
        )
    return None


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` comes of an interrupt (Ctrl-C): DuckDB stops a query on it and
    raises ``RuntimeError('Query interrupted')`` from the KeyboardInterrupt."""
    import duckdb

    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt | duckdb.InterruptException):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


# A disk that is full or mounted read-only: a fault of the machine, said as one.
_FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)
_DUCKDB_DISK = re.compile(r"No space left on device|Read-only file system")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``slw`` with ``argv`` (default: the process's arguments); return the exit code.

    ``--help`` and ``--version`` raise SystemExit(0), a usage error SystemExit(2) after
    two lines on stderr, as argparse did.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # A copy: click's parser consumes the list it is given, --debug is looked up later.
        with cli.make_context("slw", list(args)) as ctx:
            result = cli.invoke(ctx)
        # Here, not at exit: a reader gone away is then the BrokenPipeError handled below.
        sys.stdout.flush()
    except click.exceptions.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "slw"
        print(
            f"{command}: {exc.format_message()}\n  see: {command} --help",
            file=sys.stderr,
        )
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (slw summary | head): the rest of the output is not wanted.
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if _interrupted(exc):
            print("interrupted", file=sys.stderr)
            return 130
        message, code = explain(exc)
        if _debug_wanted(args):
            traceback.print_exc()
        print(message, file=sys.stderr)
        return code
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
