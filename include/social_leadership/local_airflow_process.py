"""The process :mod:`social_leadership.local_airflow` starts: inside Airflow, it runs DAGs
as ``airflow dags test`` does, without paying Airflow's start-up once per DAG, and lists a
DAG's runs.

Each DAG is taken from the DAG bag exactly as ``airflow dags test`` takes it and run with
``dag.test()`` (what that command calls): a real DAG run, recorded in the metadata DB,
tasks executed in-process, each task instance's log written to Airflow's own per-task log
file (:mod:`social_leadership.task_logs`) for the UI to show. Must be started with
AIRFLOW_HOME and the DAGs folder already in the environment (see
:mod:`social_leadership.local_airflow`), since Airflow reads its configuration at import.

Prints one machine-readable line per DAG: ``SLW_DAG_RESULT <dag_id> <state> <seconds>``;
with ``--progress``, also one per DAG and task instance as it starts and ends
(:mod:`social_leadership.progress`).
Exit codes: 0 every run succeeded, 1 a run did not succeed, 2 an unknown DAG id.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

RESULT_PREFIX = "SLW_DAG_RESULT"
EXIT_UNKNOWN_DAG = 2

# Warnings Airflow's own imports raise that are no concern of a run (nothing here renders
# a graph, nor uses Starlette's test client's httpx): each was the first lines a user saw.
QUIET_WARNINGS = (
    r"Could not import graphviz",
    r"Using `httpx` with `starlette\.testclient` is deprecated",
)


def prepare(pool: str, pool_description: str) -> None:
    """Create or migrate the metadata DB and (re)create the one-slot warehouse pool."""
    from airflow.models.pool import Pool
    from airflow.utils.db import upgradedb

    upgradedb()
    Pool.create_or_update_pool(
        name=pool, slots=1, description=pool_description, include_deferred=False
    )


def _dag_bag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag()


def _names_dag(path: str, dag_id: str) -> bool:
    """Whether the DAG file ``path`` defines ``dag_id`` (``dag_id="..."``), as far as its
    text can be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return False
    return re.search(rf"""dag_id\s*=\s*["']{re.escape(dag_id)}["']""", text) is not None


def _unknown(dag_id: str, bag: Any = None) -> int:
    bag = bag or _dag_bag()
    failed = {path: error for path, error in bag.import_errors.items() if _names_dag(path, dag_id)}
    if failed:
        # Its file names it: the DAG is known, its file failed to import (a setting a DAG is
        # built with, out of range), which "unknown DAG id" hid below the tracebacks.
        for path, error in failed.items():
            last = str(error).strip().splitlines()[-1] if str(error).strip() else "?"
            print(f"DAG {dag_id!r} failed to import from {path}: {last}", file=sys.stderr)
        sys.stderr.flush()
        return EXIT_UNKNOWN_DAG
    print(
        f"unknown DAG id {dag_id!r}; the DAGs folder defines: {', '.join(sorted(bag.dag_ids))}",
        file=sys.stderr,
        flush=True,
    )
    for path, error in bag.import_errors.items():
        print(f"DAG file {path} failed to import: {error}", file=sys.stderr, flush=True)
    return EXIT_UNKNOWN_DAG


def commit_without_fsync() -> None:
    """Let this process's SQLite metadata DB commit without waiting for the disk.

    Airflow opens SQLite in WAL mode; with ``synchronous=NORMAL`` a commit no longer syncs
    the WAL to disk: a crash of this process loses nothing, a power cut may lose the last
    commits of a local, re-creatable metadata DB. ``dag.test()`` commits several times per
    task instance (measured here: about a quarter of each mapped instance's cost).
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _no_fsync(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()


def serve_only_this_sdks_api_version() -> None:
    """Make the Execution API that ``dag.test()`` runs inside this process serve only the
    version this process's Task SDK speaks.

    Airflow builds that API (Cadwyn) with the routes of every version it still serves to
    older workers, nine in Airflow 3.3: 2.7 s of CPU in each process before its first task,
    against 0.3 s for the one version its own tasks ask for (measured here); the routes of
    that version are the same. Nothing else calls this in-process API. Left as Airflow
    builds it when its newest version is not the SDK's, and built as Airflow builds it
    (with a warning) when the one-version API cannot be built (a later Airflow or Cadwyn).
    Calling it again changes nothing.
    """
    try:
        from airflow.api_fastapi.execution_api import app as execution_app
        from airflow.api_fastapi.execution_api import versions
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from cadwyn import HeadVersion, Version, VersionBundle
        from cadwyn.route_generation import _DELETED_ROUTE_TAG
    except ImportError:
        return
    build = execution_app.create_task_execution_api_app
    every_version = versions.bundle
    if getattr(build, "one_version", False) or every_version.versions[0].value != API_VERSION:
        return

    def one_version(*args: Any, **kwargs: Any) -> Any:
        versions.bundle = VersionBundle(HeadVersion(), Version(API_VERSION))
        try:
            app = build(*args, **kwargs)
        finally:
            versions.bundle = every_version
        # Routes kept only for older versions: none here to keep them for.
        router = app._latest_version_router
        router.routes[:] = [
            route for route in router.routes if _DELETED_ROUTE_TAG not in getattr(route, "tags", ())
        ]
        app._cadwyn_initialize()
        return app

    def build_one_version(*args: Any, **kwargs: Any) -> Any:
        try:
            return one_version(*args, **kwargs)
        except Exception:  # any failure: the API as Airflow builds it
            logging.getLogger(__name__).warning(
                "the Execution API for Task SDK version %s alone could not be built; "
                "building every version's, as Airflow does",
                API_VERSION,
                exc_info=True,
            )
            return build(*args, **kwargs)

    build_one_version.one_version = True  # type: ignore[attr-defined]
    execution_app.create_task_execution_api_app = build_one_version


def run(
    dag_ids: Sequence[str],
    logical_date: str | None,
    mark_success: str | None = None,
    confs: Mapping[str, dict[str, Any]] | None = None,
) -> int:
    import pendulum
    from airflow.cli.commands.dag_command import get_bagged_dag
    from airflow.exceptions import AirflowException
    from airflow.utils.state import DagRunState

    from social_leadership import progress

    when = pendulum.parse(logical_date) if logical_date else None
    for dag_id in dag_ids:
        started = time.perf_counter()
        try:
            dag = get_bagged_dag(bundle_names=None, dag_id=dag_id)
        except AirflowException:
            return _unknown(dag_id)
        progress.dag_started(dag_id)
        # dag.test() cannot end a successful run of a DAG with a deadline alert (Airflow
        # 3.3.2: the run's DAG holds the alerts' definitions where the success path looks
        # up their ids); a deadline is watched by the scheduler and the triggerer anyway,
        # which dag.test() does not run.
        dag.deadline = None
        options: dict[str, Any] = {"mark_success_pattern": mark_success} if mark_success else {}
        if confs and dag_id in confs:
            options["run_conf"] = confs[dag_id]
        dag_run = dag.test(logical_date=when, **options) if when else dag.test(**options)
        state = str(dag_run.state) if dag_run else "missing"
        seconds = time.perf_counter() - started
        if dag_run is not None:
            _report_tasks_not_run(dag_run)
        progress.dag_ended(dag_id, state, seconds)
        print(f"{RESULT_PREFIX} {dag_id} {state} {seconds:.3f}", flush=True)
        if dag_run is None or dag_run.state != DagRunState.SUCCESS:
            return 1
    return 0


def _report_tasks_not_run(dag_run: Any) -> None:
    """Name the run's task instances that ended without running (a platform without
    connection, a branch not taken, an upstream failure)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from social_leadership import progress

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state)
            .where(TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        ).all()
    progress.tasks_not_run(dag_run.dag_id, [(task, index, state) for task, index, state in rows])


def list_runs(dag_id: str, limit: int) -> int:
    """Print the DAG's most recent runs from the metadata DB, newest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    bag = _dag_bag()
    if dag_id not in bag.dag_ids:
        return _unknown(dag_id, bag)
    try:
        with create_session() as session:
            runs = session.scalars(
                select(DagRun)
                .where(DagRun.dag_id == dag_id)
                .order_by(DagRun.run_after.desc())
                .limit(limit)
            ).all()
    except OperationalError as exc:
        if "no such table" not in str(exc.orig):
            # Unreachable, refused, unreadable: "no runs recorded yet" told an on-call
            # engineer that nothing had run. The driver's own words, no URL (no password).
            said = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "?"
            print(
                f"error: Airflow's metadata DB cannot be read ({type(exc.orig).__name__}: "
                f"{said[:300]})\n  fix: start it, or correct AIRFLOW_HOME or "
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN (slw settings shows AIRFLOW_HOME)",
                file=sys.stderr,
            )
            return 1
        # A metadata DB that was never migrated has no dag_run table: nothing ran yet.
        runs = []
    rows = []
    for run in runs:
        started = _started(run)
        rows.append(
            (
                run.run_id,
                str(run.state),
                run.logical_date.isoformat(timespec="seconds") if run.logical_date else "-",
                started.isoformat(timespec="seconds") if started else "-",
                f"{(run.end_date - started).total_seconds():.1f}s"
                if started and run.end_date
                else "-",
            )
        )
    if not rows:
        print(f"{dag_id}: no runs recorded yet (start one with: slw dags test {dag_id})")
        return 0
    header = ("run_id", "state", "logical_date", "started", "duration")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


# How often a run checks that the process that started it is still there, and where that
# process gives its id (read at start, it may already be gone then).
ORPHAN_POLL_SECONDS = 1.0
LAUNCHER_PID_ENV = "SLW_LAUNCHER_PID"
ORPHANED_WHY = "its slw process was killed (kill -9, or a supervisor's time-out)"


def stop_when_orphaned(dag_ids: Sequence[str], poll_seconds: float = ORPHAN_POLL_SECONDS) -> None:
    """Watch, in a daemon thread, the process that started this one (``slw``, which starts
    it in a session of its own so that Ctrl-C reaches ``slw`` alone): once it is gone (a
    ``kill -9``, a supervisor's or CI job's time-out killing it alone), stop the run as
    ``slw`` does on Ctrl-C: this session killed (dbt with it) and the runs of ``dag_ids``
    marked failed, recorded and alerted by a process of their own that waits for it. Left
    alone, the run went on unseen and held the warehouse. Only as a session's leader: run
    from a shell, killing the session would kill the shell's."""
    if os.getsid(0) != os.getpid():
        return
    given = os.environ.get(LAUNCHER_PID_ENV, "")
    parent = int(given) if given.isdigit() else os.getppid()
    since = datetime.now().astimezone().isoformat()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        marker = [sys.executable, "-m", "social_leadership.local_airflow_process"]
        subprocess.Popen(
            [*marker, "--fail-interrupted", since, "--why", ORPHANED_WHY,
             "--after-pid", str(os.getpid()), *dag_ids],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        os.killpg(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="slw-orphan-watch", daemon=True).start()


def _wait_until_gone(pid: int, seconds: float = 60) -> None:
    """Return once process ``pid`` is gone (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(0.1)


def fail_interrupted(dag_ids: Sequence[str], since: str, why: str = "interrupted") -> int:
    """Mark failed the runs of ``dag_ids`` still running (or queued) that began at or after
    ``since``: their process was stopped (Ctrl-C), and nothing else ends them, so they read
    ``running`` for ever. Their tasks that were running end failed, those not yet started
    skipped, as Airflow's "mark failed" leaves them. Prints a line per run.

    The run's own end (its summary in ``audit.runs``, its alert) died with its process:
    each run is recorded failed and alerted here, saying ``why``."""
    from datetime import UTC

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import select

    from social_leadership.run_summary import logical_date_of

    began = datetime.fromisoformat(since)
    now = datetime.now(UTC)
    not_started = {None, TaskInstanceState.SCHEDULED}
    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(
                DagRun.dag_id.in_(list(dag_ids)),
                DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]),
                DagRun.run_after >= began,
            )
        ).all()
        # Each run's failed tasks, and its logical date.
        stopped: dict[tuple[str, str], tuple[list[str], datetime | None]] = {}
        for dag_run in runs:
            failed, _ = stopped.setdefault(
                (dag_run.dag_id, dag_run.run_id), ([], logical_date_of(dag_run))
            )
            for ti in session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
                )
            ):
                if ti.state in not_started:
                    ti.state = TaskInstanceState.SKIPPED
                elif ti.state not in State.finished:
                    ti.state = TaskInstanceState.FAILED
                    ti.end_date = now
                    failed.append(ti.task_id)
            dag_run.state = DagRunState.FAILED
            dag_run.end_date = now
            print(f"{dag_run.dag_id} run {dag_run.run_id} interrupted: marked failed", flush=True)
    for (dag_id, run_id), (failed, logical_date) in stopped.items():
        _record_interrupted(dag_id, run_id, failed, why, logical_date)
    return 0


def _record_interrupted(
    dag_id: str, run_id: str, failed: list[str], why: str, logical_date: datetime | None = None
) -> None:
    """The interrupted run failed in ``audit.runs`` (its figures kept, if its summary ran;
    a DAG whose runs it does not record, weekly_report, is left out) and alerted. Either may
    fail (a warehouse held by another process): said, not raised, since the run is marked
    failed already."""
    from social_leadership.alerts import Alert, deliver, run_item
    from social_leadership.run_summary import (
        RECORDED_DAGS,
        RunSummary,
        keep_unrecorded,
        mark_failed,
    )
    from social_leadership.settings import load_settings
    from social_leadership.warehouse import connect
    from social_leadership.warehouse_backend import uses_lake

    said = f"run interrupted: {why}"
    settings = load_settings()
    summary = RunSummary(
        dag_id, run_id, "failed", ", ".join(sorted(failed)), logical_date=logical_date
    )
    try:
        # Not a warehouse made for it: a run stopped before its first write leaves none.
        # A weekly_report row was never replaced by its next green run: slw summary stayed
        # red.
        if dag_id in RECORDED_DAGS and (uses_lake(settings) or settings.warehouse_path.exists()):
            with connect(settings.warehouse_path, settings=settings) as con:
                mark_failed(con, summary)
    except Exception as exc:  # said: the run is marked failed already
        print(f"{dag_id} run {run_id}: not recorded in audit.runs: {exc}", flush=True)
        # Kept for slw summary and the next run (its figures, if its summary ran, are in
        # the warehouse no one could open).
        keep_unrecorded(settings.data_dir, summary)
    try:
        sent = deliver(Alert(dag_id, run_id, "failed", [run_item(dag_id, run_id, said)]))
    except Exception as exc:  # said: the run is marked failed already
        print(f"{dag_id} run {run_id}: alert not sent: {type(exc).__name__}", flush=True)
    else:
        print(f"{dag_id} run {run_id}: alerted by {', '.join(sent) or 'no channel'}", flush=True)


def _started(run: Any) -> Any:
    """When the run really started. ``dag.test()`` records a run's logical date as its
    ``start_date`` (a past day for ``slw dags test DAG_ID 2026-01-05``, tomorrow for one of
    tomorrow): such a run started at its ``run_after``, which ``dag.test()`` sets to the
    moment it was called. A run started otherwise (a scheduler) keeps its ``start_date``."""
    if run.start_date is None or run.start_date == run.logical_date:
        return run.run_after
    return run.start_date


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dag_ids", nargs="*", help="DAG ids, run in this order")
    parser.add_argument("--logical-date", help="ISO timestamp (default: now)")
    parser.add_argument("--prepare-pool", help="migrate the DB and create this one-slot pool")
    parser.add_argument(
        "--mark-success", help="regex of task ids marked success instead of run (benchmarks)"
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="DAG_ID=JSON",
        help="the run conf of one DAG's run (repeatable)",
    )
    parser.add_argument(
        "--progress", action="store_true", help="a line per DAG and task as it starts and ends"
    )
    parser.add_argument("--list-runs", metavar="DAG_ID", help="list this DAG's runs instead")
    parser.add_argument(
        "--fail-interrupted",
        metavar="SINCE",
        help="instead: mark failed the runs of the DAGs given that are still running and "
        "began at or after this ISO timestamp (a run whose process was stopped)",
    )
    parser.add_argument(
        "--after-pid",
        type=int,
        help="with --fail-interrupted: first wait until this process is gone",
    )
    parser.add_argument("--limit", type=int, default=20, help="runs listed (default 20)")
    parser.add_argument(
        "--why", default="interrupted", help="with --fail-interrupted: what stopped the runs"
    )
    args = parser.parse_args(argv)
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    if args.fail_interrupted:
        if args.after_pid:
            _wait_until_gone(args.after_pid)
        return fail_interrupted(args.dag_ids, args.fail_interrupted, args.why)
    if not args.list_runs:
        # First: slw killed while this process starts (Airflow's import, the migration).
        stop_when_orphaned(args.dag_ids)
    if not args.list_runs:
        from social_leadership import task_logs

        # Before Airflow configures its loggers: they keep the stream they start with.
        tee = task_logs.install()
        if args.progress:
            from social_leadership import progress

            # Installed after the log files' wrapper: its lines stay out of task logs.
            progress.install(tee.write_console)
    commit_without_fsync()
    if args.prepare_pool:
        prepare(args.prepare_pool, "Single writer to the DuckDB warehouse")
    if args.list_runs:
        return list_runs(args.list_runs, args.limit)
    serve_only_this_sdks_api_version()
    confs = {}
    for item in args.conf:
        dag_id, _, text = item.partition("=")
        confs[dag_id] = json.loads(text)
    return run(args.dag_ids, args.logical_date, args.mark_success, confs)


if __name__ == "__main__":
    sys.exit(main())
