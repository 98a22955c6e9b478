"""A DAG run's key figures in one place: the ``run_summary`` task's XCom (shown by the
Airflow UI on that task's XCom tab, no log to open) and a row of ``audit.runs``.

The Task SDK cannot set a DAG run's note (Airflow 3.3 lets a note be given only when a run
is triggered), so each DAG ends with a ``run_summary`` teardown task: it runs whatever
happened upstream, never changes the run's state, and gathers the figures from the other
tasks' XComs and the audit tables. Every figure a DAG does not produce stays empty (null).

Figures: rows loaded per source (each API platform, history imports, survey files),
accounts not found, files quarantined, rows quarantined (rejected roster and history rows),
dbt nodes passed/warned/failed, quality checks passed/failed, and the publication id (the
Parquet set published).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from social_leadership.dbt_runner import STATUS_BUCKETS
from social_leadership.domain import API_PLATFORMS
from social_leadership.warehouse import transaction

log = logging.getLogger(__name__)

# The DAGs whose runs audit.runs records (each ends in a run_summary teardown): the ones
# writing the warehouse. weekly_report writes none and records its runs in Airflow alone.
RECORDED_DAGS = frozenset({"platform_metrics", "survey_ingest", "warehouse_build"})

# platform_metrics' last task: it fails the run when another task failed.
RUN_CHECK_TASK = "check_platforms"

# The tasks whose XComs hold figures (only theirs are read: a DAG may hold many more).
FIGURE_TASKS = frozenset(
    {
        "load_roster",
        *(f"load_{platform}" for platform in API_PLATFORMS),
        "import_history",
        "ingest_surveys",
        "dbt_build",
        "publish",
    }
)


@dataclass(frozen=True)
class RunSummary:
    """One DAG run's figures. ``None``: the DAG does not produce that figure (or the task
    that would was not reached)."""

    dag_id: str
    run_id: str
    outcome: str  # success, or failed when any other task of the run failed
    failed_tasks: str = ""  # comma-separated task ids
    rows_loaded_by_source: dict[str, int] = field(default_factory=dict)
    accounts_not_found: int | None = None
    files_quarantined: int | None = None
    rows_quarantined: int | None = None
    dbt_passed: int | None = None
    dbt_warned: int | None = None
    dbt_failed: int | None = None
    checks_passed: int | None = None
    checks_failed: int | None = None
    publication_id: str | None = None
    # marts.publication's id of it: the Parquet folder's name joins nothing there.
    serving_publication_id: int | None = None
    # The run's logical date (or when it was due, for a run without one): not a figure, so
    # not in its XCom.
    logical_date: datetime | None = None

    @property
    def rows_loaded(self) -> int | None:
        return sum(self.rows_loaded_by_source.values()) if self.rows_loaded_by_source else None

    def to_xcom(self) -> dict[str, Any]:
        """A flat dict (one figure a key, rows per source as ``rows_loaded.<source>``)
        without the figures this DAG does not produce: what the UI's XCom tab shows."""
        flat: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key == "logical_date":
                continue
            if key == "rows_loaded_by_source":
                flat["rows_loaded"] = self.rows_loaded
                flat.update({f"rows_loaded.{s}": n for s, n in sorted(value.items())})
            else:
                flat[key] = value
        return {key: value for key, value in flat.items() if value is not None}


def _int(value: Any) -> int:
    return int(value or 0)


def summarise(
    dag_id: str,
    run_id: str,
    xcoms: Mapping[str, Any],
    failed_tasks: list[str],
    *,
    checks: tuple[int, int] | None = None,
    dbt_statuses: list[str] | None = None,
) -> RunSummary:
    """The figures of a run from its tasks' XComs (task id -> return value).

    ``checks`` (passed, failed) comes from ``audit.quality_results`` (a failed gate returns
    no XCom); ``dbt_statuses`` from ``run_results.json`` when the dbt task returned none
    (a failed build raises).
    """
    rows: dict[str, int] = {}
    not_found: int | None = None
    files_quarantined: int | None = None
    rows_quarantined: int | None = None
    for platform in API_PLATFORMS:
        load = xcoms.get(f"load_{platform}")
        if isinstance(load, dict) and load.get("status") != "not_configured":
            rows[platform] = _int(load.get("accounts_loaded"))
            # Accounts the platform said are not found, in a load it kept: not every account
            # of a platform that failed (accounts_missing), nor those of a load refused as
            # "every account not found" (a wrong host), each read as a broken roster handle.
            kept = load.get("status") == "loaded"
            not_found = (not_found or 0) + (_int(load.get("not_found")) if kept else 0)
    if isinstance(roster := xcoms.get("load_roster"), dict):
        rows_quarantined = (rows_quarantined or 0) + _int(roster.get("rows_rejected"))
    if isinstance(history := xcoms.get("import_history"), dict):
        rows["history_import"] = _int(history.get("rows_loaded"))
        rows_quarantined = (rows_quarantined or 0) + _int(history.get("rows_rejected"))
        files_quarantined = (files_quarantined or 0) + _int(history.get("files_quarantined"))
    if isinstance(surveys := xcoms.get("ingest_surveys"), dict):
        rows["surveys"] = _int(surveys.get("rows_loaded"))
        files_quarantined = (files_quarantined or 0) + _int(surveys.get("files_quarantined"))

    dbt = xcoms.get("dbt_build")
    dbt_counts: tuple[int | None, int | None, int | None] = (None, None, None)
    if isinstance(dbt, dict):
        dbt_counts = (_int(dbt.get("passed")), _int(dbt.get("warned")), _int(dbt.get("errored")))
    elif dbt_statuses is not None:
        buckets = [STATUS_BUCKETS.get(status, "error") for status in dbt_statuses]
        dbt_counts = (buckets.count("pass"), buckets.count("warn"), buckets.count("error"))
    publication = xcoms.get("publish")
    publication_id, serving_publication_id = None, None
    if isinstance(publication, dict) and publication.get("parquet_dir"):
        publication_id = Path(str(publication["parquet_dir"])).name
        number = publication.get("publication_id")
        serving_publication_id = int(number) if number is not None else None
    return RunSummary(
        dag_id=dag_id,
        run_id=run_id,
        outcome="failed" if failed_tasks else "success",
        failed_tasks=", ".join(failed_tasks),
        rows_loaded_by_source=rows,
        accounts_not_found=not_found,
        files_quarantined=files_quarantined,
        rows_quarantined=rows_quarantined,
        dbt_passed=dbt_counts[0],
        dbt_warned=dbt_counts[1],
        dbt_failed=dbt_counts[2],
        checks_passed=checks[0] if checks else None,
        checks_failed=checks[1] if checks else None,
        publication_id=publication_id,
        serving_publication_id=serving_publication_id,
    )


def quality_counts(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, int] | None:
    """(passed, failed) checks the run's quality gate recorded, or None if it recorded none."""
    row = con.execute(
        "select count(*) filter (where success), count(*) filter (where not success), count(*) "
        "from audit.quality_results where run_id = ?",
        [run_id],
    ).fetchone()
    return (int(row[0]), int(row[1])) if row and row[2] else None


def dbt_statuses_since(run_results: Path, since: datetime) -> list[str] | None:
    """The node statuses of ``run_results.json`` if dbt wrote it at or after ``since``
    (this run's build), else None: an older file is another run's."""
    try:
        written = datetime.fromtimestamp(run_results.stat().st_mtime, tz=UTC)
        if written < since:
            return None
        payload = json.loads(run_results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return [str(node.get("status", "")).lower() for node in payload.get("results", [])]


def logical_date_of(dag_run: Any) -> datetime | None:
    """A DAG run's logical date, or when it was due for a run without one (Airflow 3 gives
    an asset-triggered run none)."""
    return getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None)


def mark_failed(con: duckdb.DuckDBPyConnection, summary: RunSummary) -> None:
    """The run failed in ``audit.runs``: its row, if its summary was recorded before it was
    stopped, now says so (its figures kept); else ``summary``'s row."""
    with transaction(con):
        updated = con.execute(
            "update audit.runs set outcome = 'failed', failed_tasks = coalesce(failed_tasks, ?),"
            " recorded_at = ? where dag_id = ? and run_id = ? returning 1",
            [summary.failed_tasks or None, datetime.now(UTC), summary.dag_id, summary.run_id],
        ).fetchall()
    if not updated:
        record(con, summary)


# Where a run's row waits when the warehouse could not take it (held by another process,
# read-only): under the data folder, until the next run that writes audit.runs adds it.
UNRECORDED_DIR = "unrecorded_runs"


def keep_unrecorded(data_dir: Path, summary: RunSummary, *, quiet: bool = False) -> Path | None:
    """Keep the row ``audit.runs`` could not take in a file of its own, so ``slw summary``
    shows the run (failed, most often: what held the warehouse failed it too) and the next
    run that writes ``audit.runs`` adds it. Left out, the summary showed the run before it,
    green. Returns the file, or None when the data folder cannot take it either (said).
    ``quiet``: kept before the warehouse is tried, not yet a row it could not take."""
    from social_leadership.landing import safe_run_id

    folder = data_dir / UNRECORDED_DIR
    path = folder / f"{safe_run_id(summary.dag_id)}__{safe_run_id(summary.run_id)}.json"
    row = {**asdict(summary), "recorded_at": datetime.now(UTC).isoformat()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(row, default=str), encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        log.warning("run %s of %s kept nowhere: %s", summary.run_id, summary.dag_id, exc)
        return None
    if quiet:
        return path
    log.warning(
        "run %s of %s kept in %s until audit.runs can take it", summary.run_id, summary.dag_id, path
    )
    return path


def unrecorded(data_dir: Path) -> list[tuple[RunSummary, datetime, Path]]:
    """The rows kept by :func:`keep_unrecorded`: each summary, when it was kept, its file.
    A file that cannot be read is passed over."""
    kept = []
    for path in sorted((data_dir / UNRECORDED_DIR).glob("*.json")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
            recorded_at = datetime.fromisoformat(row.pop("recorded_at"))
            logical = row.get("logical_date")
            row["logical_date"] = datetime.fromisoformat(logical) if logical else None
            kept.append((RunSummary(**row), recorded_at, path))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("%s passed over: %s", path, exc)
    return kept


def record_unrecorded(con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
    """Add to ``audit.runs`` each kept row newer than its run's row there (none, or one a
    try before it recorded), then forget it: a kept summary (a green retry of a failed
    try) replaces the row; a failure kept over a recorded row (a green run interrupted
    after its summary) turns that row failed, its figures kept, as :func:`mark_failed`
    does. A later try recorded since wins over the kept row."""
    for summary, recorded_at, path in unrecorded(data_dir):
        found = con.execute(
            "select recorded_at from audit.runs where dag_id = ? and run_id = ?",
            [summary.dag_id, summary.run_id],
        ).fetchone()
        if found is None or (found[0] < recorded_at and summary.outcome == "success"):
            if summary.checks_passed is None and (checks := quality_counts(con, summary.run_id)):
                # Kept before its try read the warehouse (a try stopped as it waited for it):
                # the checks its run's gate recorded, as the summary would have said them.
                summary = replace(summary, checks_passed=checks[0], checks_failed=checks[1])
            record(con, summary, recorded_at=recorded_at)
        elif found[0] < recorded_at:
            with transaction(con):
                con.execute(
                    "update audit.runs set outcome = ?, failed_tasks = coalesce(?, "
                    "failed_tasks), recorded_at = ? where dag_id = ? and run_id = ?",
                    [
                        summary.outcome,
                        summary.failed_tasks or None,
                        recorded_at,
                        summary.dag_id,
                        summary.run_id,
                    ],
                )
        path.unlink(missing_ok=True)


def record(
    con: duckdb.DuckDBPyConnection, summary: RunSummary, *, recorded_at: datetime | None = None
) -> None:
    """Write the run's row of ``audit.runs``, replacing the row of an earlier try."""
    with transaction(con):
        con.execute(
            "delete from audit.runs where dag_id = ? and run_id = ?",
            [summary.dag_id, summary.run_id],
        )
        con.execute(
            "insert into audit.runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                summary.dag_id,
                summary.run_id,
                summary.outcome,
                summary.failed_tasks or None,
                summary.rows_loaded,
                json.dumps(summary.rows_loaded_by_source, sort_keys=True)
                if summary.rows_loaded_by_source
                else None,
                summary.accounts_not_found,
                summary.files_quarantined,
                summary.rows_quarantined,
                summary.dbt_passed,
                summary.dbt_warned,
                summary.dbt_failed,
                summary.checks_passed,
                summary.checks_failed,
                summary.publication_id,
                recorded_at or datetime.now(UTC),
                summary.serving_publication_id,
                summary.logical_date,
            ],
        )


def _tasks_that_failed(states: dict[str, str | None], *, exclude: str) -> list[str]:
    """The run's failed tasks, without those that did not run because one failed (a roster
    refused whole listed the 17 tasks after it, the one that failed lost among them) and
    without the run's check (``check_platforms``), which fails for the others; each only
    when nothing else failed."""
    from social_leadership.tasks import failed_tasks

    either = failed_tasks(states, exclude=exclude)
    failed = [task_id for task_id in either if str(states[task_id]) == "failed"] or either
    return [task_id for task_id in failed if task_id != RUN_CHECK_TASK] or failed


def run_summary_task(context: dict[str, Any]) -> dict[str, Any]:
    """The ``run_summary`` task: gather, record in ``audit.runs``, return the flat figures."""
    from social_leadership.tasks import run_task_states, task_settings
    from social_leadership.warehouse import connect

    ti = context["ti"]
    run_id = str(context["run_id"])
    states = run_task_states(context)
    others = [task_id for task_id in context["dag"].task_ids if task_id != ti.task_id]
    xcoms = {
        task_id: ti.xcom_pull(task_ids=task_id) for task_id in others if task_id in FIGURE_TASKS
    }
    settings = task_settings()
    dbt_statuses = None
    if "dbt_build" in others and not isinstance(xcoms.get("dbt_build"), dict):
        dbt_statuses = dbt_statuses_since(
            settings.dbt_target_dir / "run_results.json", context["dag_run"].run_after
        )

    def summary_of(checks: tuple[int, int] | None) -> RunSummary:
        summary = summarise(
            ti.dag_id,
            run_id,
            xcoms,
            _tasks_that_failed(states, exclude=ti.task_id),
            checks=checks,
            dbt_statuses=dbt_statuses,
        )
        return replace(summary, logical_date=logical_date_of(context["dag_run"]))

    # Kept before the warehouse is tried, forgotten once audit.runs has the row: kept after a
    # failure alone, the row was lost when DuckDB's write had filled the disk, or when the
    # try was stopped as it waited for a held warehouse (its time-out, a killed worker). The
    # kept row lacks the checks, which the warehouse holds.
    kept = keep_unrecorded(settings.data_dir, summary_of(None), quiet=True)
    summary = None
    try:
        with connect(settings.warehouse_path) as con:
            summary = summary_of(quality_counts(con, run_id) if "quality_gate" in others else None)
            record(con, summary)
            try:
                if kept is not None:
                    kept.unlink(missing_ok=True)
                record_unrecorded(con, settings.data_dir)
            except (duckdb.Error, OSError) as exc:
                # This run is recorded: what an earlier one kept waits for the next.
                log.warning("rows kept in %s not recorded: %s", UNRECORDED_DIR, exc)
    except (duckdb.Error, OSError):
        # The warehouse held or read-only: the row is kept for slw summary and the next run.
        keep_unrecorded(settings.data_dir, summary or summary_of(None))
        raise
    return summary.to_xcom()
