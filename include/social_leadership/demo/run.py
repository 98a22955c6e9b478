"""``slw run`` (``make run``): the whole pipeline for today, through real Airflow, against
the sandbox API, with the demo switch on.

Starts the sandbox platform API on a free loopback port, prepares a SQLite-backed Airflow
home, runs ``survey_ingest``, ``platform_metrics`` and ``warehouse_build`` as
``airflow dags test`` does (in that order: the order the asset schedule produces) with
``SLW_DEMO`` on, so they load the demo's synthetic survey microdata and history
(:mod:`.inputs`), then ``weekly_report`` for the week ending today, stops the sandbox and
prints a summary with the report's paths. Safe to run repeatedly: every load replaces its
day, the report its week.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from social_leadership.local_airflow import (
    AirflowCommandError,
    airflow_environment,
    default_airflow_home,
    run_dags,
)
from social_leadership.reports.data import ReportWeek
from social_leadership.sandbox.server import SandboxServer
from social_leadership.settings import Settings, for_a_run_by_hand, load_settings
from social_leadership.summary import build_summary

DEMO_DAGS = ("survey_ingest", "platform_metrics", "warehouse_build", "weekly_report")


def run_pipeline(
    settings: Settings,
    airflow_home: Path,
    *,
    dags: Sequence[str] = DEMO_DAGS,
    logical_date: str | None = None,
    echo: bool = True,
    progress: Callable[[str], None] | None = None,
    week: ReportWeek | None = None,
) -> dict[str, float]:
    """Run the DAGs against a fresh sandbox, demo switch on; return seconds per DAG and in
    total. ``weekly_report`` reports ``week`` (default: the week ending today, UTC).

    ``progress`` gets a line as each DAG and task starts and ends, while they run (see
    :func:`run_dags`); with ``echo`` and no ``progress``, the lines are printed."""
    if echo and progress is None:
        progress = functools.partial(print, flush=True)
    settings.ensure_dirs()
    # The sandbox's fixed demo tokens: loopback only, never real credentials.
    with SandboxServer() as sandbox:
        base_url = sandbox.base_url
        extra = dataclasses.replace(for_a_run_by_hand(settings), demo=True).as_env()
        # Every platform's connection, as its sandbox route declares it.
        extra.update(sandbox.connection_env())
        env = airflow_environment(airflow_home, extra)
        if echo:
            print(f"sandbox API on {base_url}; Airflow home {airflow_home}", flush=True)
            print(f"  Airflow log: {settings.logs_dir / 'airflow-dags-test.log'}", flush=True)
            print(f"  task logs:   {airflow_home / 'logs'} (also in the UI: make airflow-ui)")
            print("DAGs and tasks as they run (full output in the logs above):", flush=True)
        started = time.perf_counter()
        # The report of the week to date: today's counts were just loaded.
        confs = {"weekly_report": {"week_end": (week or report_week()).end.isoformat()}}
        timings = run_dags(
            dags,
            env,
            settings.logs_dir,
            logical_date=logical_date,
            confs=confs,
            progress=progress,
        )
        timings["total"] = time.perf_counter() - started
        if echo:
            print(f"all {len(dags)} DAGs ran in {timings['total']:.1f}s", flush=True)
    return timings


def main() -> int:
    settings = load_settings()
    if (refused := refusal(settings)) is not None:
        import sys

        print(refused, file=sys.stderr)
        return 2
    airflow_home = default_airflow_home()
    # Taken once: a run that crosses midnight (UTC) names the week it wrote.
    week = report_week()
    try:
        run_pipeline(settings, airflow_home, week=week)
    except AirflowCommandError as exc:
        print(f"pipeline failed: {exc}")
        return 1
    print()
    print(build_summary(settings))
    print(report_lines(settings, week))
    return 0


def refusal(settings: Settings) -> str | None:
    """Why ``slw run`` must not run with ``settings`` (None: it may), as an error and its
    fix. It is the demo: the sandbox's invented counts (for real people too), the demo's
    synthetic history and survey microdata, SLW_DEMO on. On a roster of one's own it put
    those into that roster's warehouse without a word, and on a warehouse of real counts it
    replaces the day's real counts with the sandbox's."""
    if not _holds_the_demo_roster(settings.roster_path):
        return (
            f"error: the roster {settings.roster_path} is not the bundled demo roster (another "
            "file, or the bundled one edited or not regenerated since its generator changed): "
            "slw run is the demo (the sandbox API's invented counts, synthetic history and "
            "survey microdata), never run on a roster of one's own\n  fix: for the demo, "
            "unset SLW_ROSTER_PATH (and restore include/data/roster/executives.csv: git "
            "checkout it, or python -m social_leadership.demo.roster --out it); run your "
            "roster with your connections: slw dags test platform_metrics (then survey_ingest, "
            "warehouse_build)"
        )
    try:
        own = _own_data(settings)
    except _WarehouseInUse as exc:
        return (
            f"error: the warehouse in {settings.data_dir} is in use by another process "
            f"({exc}): slw run cannot tell whether it holds real data\n  fix: run the demo "
            "when that process has ended, or in a data folder of its own: "
            "SLW_DATA_DIR=<another folder> slw run"
        )
    if own is not None:
        return (
            f"error: the warehouse in {settings.data_dir} holds {own}: slw run would add the "
            "demo's synthetic data to it and replace the day's counts with the sandbox's\n"
            "  fix: run the demo in a data folder of its own: SLW_DATA_DIR=<another folder> "
            "slw run"
        )
    return None


def _holds_the_demo_roster(path: Path) -> bool:
    """Whether the file at ``path`` is the demo roster, as :mod:`.roster` writes it:
    where it is does not tell, one's own may be written there."""
    from social_leadership.demo.roster import csv_text, generate_rows

    try:
        held = path.read_bytes()
    except OSError:
        return False
    # A checkout made with Windows line ends (git's autocrlf) holds it too.
    return held.replace(b"\r\n", b"\n") == csv_text(generate_rows()).encode("utf-8")


class _WarehouseInUse(Exception):
    """Another process holds the warehouse: what it holds cannot be read."""


def _own_data(settings: Settings) -> str | None:
    """What of one's own the warehouse holds, said shortly (None: nothing): a roster other
    than the demo's, or counts a real API answered. On either backend."""
    import duckdb

    from social_leadership.demo.follower_history import DEMO_HISTORY_PREFIX
    from social_leadership.roster import is_demo_roster, stored_roster_file
    from social_leadership.warehouse_backend import open_working, uses_lake

    if not uses_lake(settings) and not settings.warehouse_path.is_file():
        return None
    try:
        with open_working(settings, read_only=True) as con:
            stored = stored_roster_file(con)
            if (
                stored is not None
                and not is_demo_roster(stored)
                and not _holds_the_demo_roster(Path(stored))
            ):
                return f"the roster of {stored}, not the demo's"
            # The demo seeds its synthetic history into its warehouse: one without it was
            # never the demo's. Its rows flagged real are then real (a demo warehouse's
            # rows from before the flag were flagged real by the upgrade, sandbox's too).
            row = con.execute(
                "select count(*) from raw.platform_metrics where source = 'api' "
                "and not is_synthetic and followers is not null and not exists ("
                "select 1 from raw.history_imports where file_name like ?)",
                [f"%{DEMO_HISTORY_PREFIX}%"],
            ).fetchone()
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            raise _WarehouseInUse(str(exc).splitlines()[0][:200]) from exc
        # No lake yet, no table or flag yet (a warehouse of an older version): nothing of
        # one's own to read.
        return None
    if row and row[0]:
        return f"{row[0]:,} platform count(s) read from real APIs"
    return None


def report_week() -> ReportWeek:
    """The week ``make run``'s report covers: the 7 days ending today (UTC)."""
    return ReportWeek(datetime.now(UTC).date())


def report_lines(settings: Settings, week: ReportWeek | None = None) -> str:
    """Where the report of ``week`` is (default: the week ``weekly_report`` writes when run
    today)."""
    from social_leadership.reports.render import HTML_NAME, PDF_NAME

    week = week or report_week()
    folder = settings.reports_dir / week.folder_name(datetime.now(UTC).date())
    return (
        f"Weekly report {week.heading}:\n"
        f"  html       {folder / HTML_NAME}\n"
        f"  pdf        {folder / PDF_NAME}"
    )
