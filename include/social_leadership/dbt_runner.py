"""Run dbt as a subprocess with the pipeline's settings.

dbt runs in its own process rather than through ``dbtRunner`` so that its global state
(adapters, logging, the DuckDB connection) never leaks into an Airflow worker, and so a
crash in dbt cannot take the task's process with it. With ``SLW_DBT_WARM_START`` on (the
default) that process is forked from a helper that has imported dbt already
(:mod:`social_leadership.dbt_warm`): the second and later commands of a process skip
dbt's 1.5 s import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from social_leadership.dbt_columns import changed_incremental_models
from social_leadership.dbt_warm import WARM
from social_leadership.settings import (
    DBT_PROJECT_DIR,
    DEFAULT_GAP_FILL_DAYS,
    NO_TELEMETRY_ENV,
    Settings,
)

OUTPUT_TAIL_LINES = 60

# dbt result statuses grouped into the four counts the pipeline reports.
STATUS_BUCKETS: dict[str, str] = {
    "pass": "pass",
    "success": "pass",
    "warn": "warn",
    "error": "error",
    "fail": "error",
    "runtime error": "error",
    "skipped": "skip",
    "skip": "skip",
    "no-op": "skip",
}


@dataclass(frozen=True)
class DbtResult:
    """Outcome of one dbt invocation, counted from ``target/run_results.json``.

    ``dbt source freshness`` is counted from ``target/sources.json``.
    """

    args: tuple[str, ...]
    returncode: int
    passed: int = 0
    warned: int = 0
    errored: int = 0
    skipped: int = 0
    elapsed_seconds: float | None = None
    failing_nodes: tuple[str, ...] = ()
    output_tail: str = ""
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.passed + self.warned + self.errored + self.skipped


# What DuckDB says when a build ran out of memory or of disk to spill to: the cause the
# first line (which alerts quote) names, not only the output's tail.
_RESOURCE_ERRORS = ("Out of Memory Error", "No space left on device")


class DbtError(RuntimeError):
    """dbt exited non-zero; carries what an operator needs to see first."""

    def __init__(self, result: DbtResult) -> None:
        self.result = result
        nodes = ", ".join(result.failing_nodes) or "none reported in run_results.json"
        said = next((error for error in _RESOURCE_ERRORS if error in result.output_tail), None)
        cause = (
            f"; DuckDB said {said!r}: raise SLW_DUCKDB_MEMORY_LIMIT, or free space on the "
            "disk of SLW_DATA_DIR (the warehouse, and where dbt spills), then clear the task"
            if said
            else ""
        )
        super().__init__(
            f"dbt {' '.join(result.args)} exited with {result.returncode}; "
            f"failing nodes: {nodes}{cause}\n--- output tail ---\n{result.output_tail}"
        )


def dbt_command() -> list[str]:
    """The dbt executable of this interpreter's environment, not whatever is first on PATH."""
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return [str(candidate)]
    return [sys.executable, "-m", "dbt.cli.main"]


# This environment's dbt, as dbt_command gives it unless replaced (the benchmarks replace it
# with a wrapper that measures dbt's memory): only this one is started warm.
_ENVIRONMENT_DBT = dbt_command()


def _start(
    command: list[str], settings: Settings, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the dbt command line in the data folder and wait: forked warm when it is this
    environment's dbt and the setting allows, else (or when the warm starter is busy with
    another thread's command) as a new process."""
    entry = len(_ENVIRONMENT_DBT)
    if settings.dbt_warm_start and command[:entry] == _ENVIRONMENT_DBT:
        warm = WARM.run(["dbt", *command[entry:]], settings.data_dir, env)
        if warm is not None:
            return warm
    return subprocess.run(
        command,
        cwd=settings.data_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


# The rebuild windows of one `dbt build` (BuildPlan.env), read by the daily models' macros
# when they run (macros/incremental_rebuild_from.sql). Not passed with `--vars`: dbt parses
# the whole project again whenever its vars change, and they would change every day.
REBUILD_WINDOWS_ENV = "SLW_DBT_REBUILD_WINDOWS"


# The warehouse file and dbt's spill folder as profiles.yml gives them to dbt: relative to
# the data folder, dbt's working directory, when they are inside it (as by default). dbt
# keeps its saved parse (target/partial_parse.msgpack) only while the profile it renders is
# the same, so with absolute paths a copied or moved data folder (a restored backup, a
# benchmark's or a test's copy) made the next dbt command parse the whole project again:
# 2.7 s of CPU against 0.3 s, measured on the demo project. (The DuckLake target's catalog
# and data path stay absolute: its saved parse still belongs to one folder.)
DBT_WAREHOUSE_PATH_ENV = "SLW_DBT_WAREHOUSE_PATH"
DBT_TEMP_DIRECTORY_ENV = "SLW_DBT_TEMP_DIRECTORY"
DBT_LOG_LEVEL_FILE_ENV = "DBT_LOG_LEVEL_FILE"


def _seen_from_data_dir(settings: Settings, path: Path) -> str:
    """``path`` relative to the data folder when inside it, else as it is (absolute)."""
    try:
        return str(path.relative_to(settings.data_dir))
    except ValueError:
        return str(path)


def dbt_env(settings: Settings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for dbt: the caller's, the SLW_* settings, telemetry off, logs in logs_dir,
    the paths dbt opens as seen from the data folder (its working directory, see
    :func:`run_dbt`), then ``extra`` (the rebuild windows of this invocation, if any: never
    inherited)."""
    env = dict(os.environ)
    env.pop(REBUILD_WINDOWS_ENV, None)
    env.update(settings.as_env())
    env.update(NO_TELEMETRY_ENV)
    env["DBT_LOG_PATH"] = str(settings.logs_dir / "dbt")
    # dbt's own file log (dbt.log in DBT_LOG_PATH) writes every debug line as text: 6% of
    # the CPU of the dbt edge-case tests' builds, and unread (the console output goes to
    # run_dbt's log_path, a DAG build's nodes to its JSON log). Off unless
    # DBT_LOG_LEVEL_FILE asks for it.
    env.setdefault(DBT_LOG_LEVEL_FILE_ENV, "none")
    env[DBT_WAREHOUSE_PATH_ENV] = _seen_from_data_dir(settings, settings.warehouse_path)
    env[DBT_TEMP_DIRECTORY_ENV] = _seen_from_data_dir(settings, settings.duckdb_temp_dir / "dbt")
    env.update(extra or {})
    return env


def _parse_run_results(path: Path) -> tuple[Counter[str], list[str], dict[str, str], float | None]:
    counts: Counter[str] = Counter()
    failing: list[str] = []
    statuses: dict[str, str] = {}
    if not path.is_file():
        return counts, failing, statuses, None
    try:
        payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return counts, failing, statuses, None
    for node in payload.get("results", []):
        status = str(node.get("status", "")).lower()
        unique_id = str(node.get("unique_id", "?"))
        statuses[unique_id] = status
        bucket = STATUS_BUCKETS.get(status, "error")
        counts[bucket] += 1
        if bucket == "error":
            failing.append(unique_id)
    elapsed = payload.get("elapsed_time")
    return counts, failing, statuses, float(elapsed) if elapsed is not None else None


# The project folder that a target folder's saved parse was made for. dbt reuses a saved
# parse wherever the project now is (it compares the files, not their folder), and a seed
# keeps the folder it was parsed in: dbt-duckdb loads the CSV from there. After the project
# moved (a new checkout beside a kept data folder) the seeds would load from the old
# checkout, or fail once it is gone.
PARSED_PROJECT_FILE = "slw_parsed_project.txt"


def forget_parse_of_moved_project(settings: Settings) -> None:
    """Remove the target folder's saved parse when it was made for the project in another
    folder; record the project's folder for the next command."""
    target = settings.dbt_target_dir
    marker = target / PARSED_PROJECT_FILE
    project = str(settings.dbt_project_dir)
    if marker.is_file() and marker.read_text(encoding="utf-8") != project:
        (target / "partial_parse.msgpack").unlink(missing_ok=True)
    marker.write_text(project, encoding="utf-8")


def dbt_invocation(args: list[str], settings: Settings) -> list[str]:
    """The command line of ``dbt <args>`` on the project, profile and target folder of
    ``settings`` (run in :attr:`Settings.data_dir` with :func:`dbt_env`)."""
    return [
        *dbt_command(),
        *args,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_profiles_dir),
        "--target-path",
        str(settings.dbt_target_dir),
    ]


def run_dbt(
    args: list[str],
    settings: Settings,
    *,
    log_path: Path | None = None,
    json_log_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> DbtResult:
    """Run ``dbt <args>`` against the warehouse in ``settings``, with ``env`` added to its
    environment (:attr:`BuildPlan.env`).

    ``log_path``, when given, receives the full console output; ``json_log_dir``, when
    given, receives dbt's own log file (``dbt.log``) as JSON lines at info level, each
    node's lines tagged with its ``node_info.unique_id`` (dbt's default file log holds every
    debug line as text: formatting them costs a build seconds, and no one reads them).
    Raises :class:`DbtError` on a non-zero exit.
    Counts come from run_results.json of this invocation: a stale file from an earlier run
    is removed first so it can never be mistaken for this one.
    """
    settings.dbt_target_dir.mkdir(parents=True, exist_ok=True)
    forget_parse_of_moved_project(settings)
    (settings.logs_dir / "dbt").mkdir(parents=True, exist_ok=True)
    # dbt's working directory: the profile's paths are relative to it (dbt_env).
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # `dbt source freshness` reports to sources.json instead of run_results.json.
    results_name = "sources.json" if args[:2] == ["source", "freshness"] else "run_results.json"
    run_results = settings.dbt_target_dir / results_name
    run_results.unlink(missing_ok=True)

    command = dbt_invocation(args, settings)
    if json_log_dir is not None:
        json_log_dir.mkdir(parents=True, exist_ok=True)
        command += [
            "--log-path",
            str(json_log_dir),
            "--log-format-file",
            "json",
            "--log-level-file",
            "info",
        ]
    completed = _start(command, settings, dbt_env(settings, env))
    output = completed.stdout + (completed.stderr or "")
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(output, encoding="utf-8")

    counts, failing, statuses, elapsed = _parse_run_results(run_results)
    result = DbtResult(
        args=tuple(args),
        returncode=completed.returncode,
        passed=counts["pass"],
        warned=counts["warn"],
        errored=counts["error"],
        skipped=counts["skip"],
        elapsed_seconds=elapsed,
        failing_nodes=tuple(failing),
        output_tail="\n".join(output.splitlines()[-OUTPUT_TAIL_LINES:]),
        statuses=statuses,
    )
    if completed.returncode != 0:
        raise DbtError(result)
    return result


# Raw days at most this many days apart are rebuilt as one window: the days derived from
# a raw day (gap fill, 28-day changes) reach about as far, and one scan beats two.
WINDOW_MERGE_DAYS = 28


@dataclass(frozen=True)
class BuildPlan:
    """Whether the next ``dbt build`` must be a full refresh, and why; for an incremental
    one, the days of raw rows loaded since the last build (``rebuild_windows``: first and
    last day of each run of them), which the daily models recompute with the days derived
    from them, besides the late-data lookback."""

    full_refresh: bool
    reason: str
    rebuild_windows: tuple[tuple[date, date], ...] = ()
    # The gap fill the build applies (SLW_GAP_FILL_DAYS), recorded with it; None: not known.
    gap_fill_days: int | None = None
    # The newest history import committed when the plan was made (None: none yet), recorded
    # with the build: the next plan rebuilds the days of the imports numbered above it.
    imports_seen: int | None = None

    @property
    def rebuild_from(self) -> date | None:
        """The first day of raw rows loaded since the last build (None: none)."""
        return self.rebuild_windows[0][0] if self.rebuild_windows else None

    @property
    def windows_text(self) -> str | None:
        """The windows as ``first..last`` joined by ``, `` (None: none)."""
        return _windows_text(self.rebuild_windows) if self.rebuild_windows else None

    @property
    def args(self) -> list[str]:
        return ["build", "--full-refresh"] if self.full_refresh else ["build"]

    @property
    def env(self) -> dict[str, str]:
        """The environment dbt runs with besides its args: the rebuild windows, if any, as
        ``[["yyyy-mm-dd", "yyyy-mm-dd"], ...]`` in :data:`REBUILD_WINDOWS_ENV`."""
        if self.full_refresh or not self.rebuild_windows:
            return {}
        return {REBUILD_WINDOWS_ENV: json.dumps(self.as_dict()["rebuild_windows"])}

    def as_dict(self) -> dict[str, Any]:
        """The plan as JSON values (windows as ``yyyy-mm-dd`` pairs): :meth:`from_dict`."""
        windows = [[first.isoformat(), last.isoformat()] for first, last in self.rebuild_windows]
        return {
            "full_refresh": self.full_refresh,
            "reason": self.reason,
            "rebuild_windows": windows,
            "gap_fill_days": self.gap_fill_days,
            "imports_seen": self.imports_seen,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BuildPlan:
        windows = tuple(
            (date.fromisoformat(first), date.fromisoformat(last))
            for first, last in values["rebuild_windows"]
        )
        return cls(
            values["full_refresh"],
            values["reason"],
            windows,
            values.get("gap_fill_days"),
            values.get("imports_seen"),
        )


# The days of the raw rows loaded since the last build: imported history files numbered
# above the newest one it saw ($seen; null: a build of an earlier version, which did not
# record it: those loaded since it started) and API observations (a late row, a
# backfilled day) loaded since it started, each run of days at most WINDOW_MERGE_DAYS
# apart as one window. Imports go by number, not by time: an import stamps its rows when
# it starts and may commit after a build on another connection (a DuckLake on PostgreSQL)
# planned, or run on a worker whose clock is behind the build's; numbers are the
# warehouse's own. API rows of recent days are rebuilt by the lookback whatever their time.
_NEW_RAW_WINDOWS = f"""
with days as (
    select distinct metrics.snapshot_date as day
    from raw.imported_metrics as metrics
    inner join raw.history_imports as imports on metrics.import_id = imports.import_id
    where
        case
            when $seen is null then imports.loaded_at >= $since
            else imports.import_id > $seen
        end
    union
    select distinct snapshot_date from raw.platform_metrics where loaded_at >= $since
),
runs as (
    select day, coalesce(day - lag(day) over (order by day) > {WINDOW_MERGE_DAYS}, true) as starts
    from days
),
numbered as (
    select day, sum(cast(starts as integer)) over (order by day) as run from runs
)
select min(day), max(day) from numbered group by run order by 1
"""


def plan_build(
    con: duckdb.DuckDBPyConnection,
    project_dir: Path | None = None,
    *,
    full_refresh_asked: bool = False,
    gap_fill_days: int | None = None,
) -> BuildPlan:
    """Incremental by default: the late-data lookback, and the days of the raw rows loaded
    since the last successful build (an imported history file or a late API row reaches
    further back than the lookback) with the days derived from them, as windows with an
    end (roster changes the models find themselves). A full refresh only
    when asked (``slw rebuild --full``), when no build has succeeded yet, when an
    incremental table of the warehouse has other columns than the dbt project in
    ``project_dir`` builds (an upgrade changed them), or when ``gap_fill_days`` (the
    setting this build fills gaps with) differs from the last build's: the days kept would
    follow one rule and the days rebuilt another."""
    # Read before the windows: an import committed between the two reads is rebuilt by this
    # build and the next, never by neither.
    # 0: no import yet (None is a build of an earlier version).
    newest_import = con.execute(
        "select coalesce(max(import_id), 0) from raw.history_imports"
    ).fetchone()
    plan = _plan(con, project_dir, full_refresh_asked, gap_fill_days)
    imports_seen = int(newest_import[0]) if newest_import else None
    return replace(plan, gap_fill_days=gap_fill_days, imports_seen=imports_seen)


def _plan(
    con: duckdb.DuckDBPyConnection,
    project_dir: Path | None,
    full_refresh_asked: bool,
    gap_fill_days: int | None,
) -> BuildPlan:
    if full_refresh_asked:
        # Either way it is the DAG's parameter: a run triggered from the UI or the REST API
        # with it was recorded as a slw rebuild --full.
        return BuildPlan(
            True, "full refresh asked for (the full_refresh parameter, as slw rebuild --full sets)"
        )
    row = con.execute(
        "select started_at, gap_fill_days, imports_seen from audit.dbt_builds "
        "order by started_at desc limit 1"
    ).fetchone()
    if row is None:
        return BuildPlan(True, "no successful build recorded yet: full refresh")
    last_build, last_gap_fill_days, last_imports_seen = row
    if last_gap_fill_days is None:
        # Built by a version that did not record it: the default, unless it was set then
        # (a needless full refresh at worst, never a build mixing two gap fills).
        last_gap_fill_days = DEFAULT_GAP_FILL_DAYS
    changed = changed_incremental_models(con, project_dir or DBT_PROJECT_DIR)
    if changed:
        return BuildPlan(
            True, f"columns of {', '.join(changed)} changed in this version: full refresh"
        )
    if gap_fill_days is not None and gap_fill_days != last_gap_fill_days:
        return BuildPlan(
            True,
            f"SLW_GAP_FILL_DAYS is {gap_fill_days}, the last build filled gaps of "
            f"{last_gap_fill_days} days: full refresh",
        )
    windows = tuple(
        (first, last)
        for first, last in con.execute(
            _NEW_RAW_WINDOWS, {"since": last_build, "seen": last_imports_seen}
        ).fetchall()
    )
    if not windows:
        return BuildPlan(False, "incremental: the late-data lookback (no raw rows since)")
    days = sum((last - first).days + 1 for first, last in windows)
    return BuildPlan(
        False,
        f"incremental: the late-data lookback and {len(windows)} window(s) of {days} day(s) of "
        f"raw rows loaded since the last build ({_windows_text(windows, shown=3)}), with the "
        "days derived from them",
        rebuild_windows=windows,
    )


def _windows_text(windows: tuple[tuple[date, date], ...], shown: int | None = None) -> str:
    """``first..last`` per window, joined by ``, ``; past ``shown`` windows, how many more."""
    text = ", ".join(f"{first}..{last}" for first, last in windows[:shown])
    if shown is None or len(windows) <= shown:
        return text
    return f"{text} and {len(windows) - shown} more"


def record_build_attempt(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Remember that a try of ``run_id``'s build starts now, before dbt changes any mart:
    a publish copies the marts only when the newest try is its run's and that run's
    quality gate checked that try's marts and passed
    (:func:`social_leadership.serving.publish_refusal`).

    Tries are numbered in the warehouse, not ordered by the time: the tasks of one run may
    run on workers whose clocks differ. The scheduler's builds never overlap (one active
    run of warehouse_build, one writer slot), so the count cannot be taken twice; a build
    of ``slw rebuild`` beside one on a DuckLake (README: a full rebuild in a deployment)
    may number after it, and the older build then refuses to publish."""
    con.execute(
        "insert into audit.dbt_build_attempts (run_id, started_at, attempt) "
        "select ?, ?, coalesce(max(attempt), 0) + 1 from audit.dbt_build_attempts",
        [run_id, datetime.now(UTC)],
    )


@dataclass(frozen=True)
class BuildAttempt:
    """One try of warehouse_build's dbt_build (``audit.dbt_build_attempts``)."""

    run_id: str
    started_at: datetime
    number: int | None  # None: recorded by an earlier version, which numbered none


def newest_build_attempt(con: duckdb.DuckDBPyConnection) -> BuildAttempt | None:
    """The newest try of a dbt build: the highest number, or the latest time among tries
    an earlier version recorded unnumbered. None when no try is recorded, also when the
    table or its number is not there yet (a read-only connection to a warehouse of an
    earlier version creates and adds nothing)."""
    newest = (
        "select run_id, started_at, {0} as attempt from audit.dbt_build_attempts "
        "order by attempt desc nulls last, started_at desc limit 1"
    )
    try:
        row = con.execute(newest.format("attempt")).fetchone()
    except duckdb.CatalogException:
        return None
    except duckdb.BinderException:
        row = con.execute(newest.format("null")).fetchone()
    return None if row is None else BuildAttempt(*row)


def record_build(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    plan: BuildPlan,
    started_at: datetime,
    result: DbtResult,
) -> None:
    """Remember a successful build (the next plan compares imports against it)."""
    con.execute(
        "insert into audit.dbt_builds (run_id, full_refresh, reason, started_at, finished_at, "
        "nodes_passed, rebuild_from, rebuild_windows, gap_fill_days, imports_seen) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            plan.full_refresh,
            plan.reason,
            started_at,
            datetime.now(UTC),
            result.passed,
            plan.rebuild_from,
            plan.windows_text,
            plan.gap_fill_days,
            plan.imports_seen,
        ],
    )
