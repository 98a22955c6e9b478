"""Task bodies for the DAGs: read settings and the Airflow context, call the pure modules.

Each returns a small JSON-able dict (it becomes the task's XCom, visible in the UI).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from social_leadership.settings import load_settings

log = logging.getLogger(__name__)


def _run_id(context: dict[str, Any]) -> str:
    return str(context["run_id"])


def _jsonable(outcome: object, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A dataclass as plain JSON types (dates and paths as strings) for XCom."""
    data = {k: v for k, v in asdict(outcome).items() if k not in drop}  # type: ignore[call-overload]
    return json.loads(json.dumps(data, default=str))


def load_roster_task() -> dict[str, list[str]]:
    """Validate and store the roster; return the handles to fetch per platform."""
    from social_leadership.roster import load_roster, write_roster
    from social_leadership.warehouse import connect

    settings = load_settings()
    roster = load_roster(settings.roster_path)
    for error in roster.errors:
        log.warning("roster row skipped: %s", error)
    with connect(settings.warehouse_path) as con:
        write_roster(con, roster, str(settings.roster_path), datetime.now(UTC))
    log.info(
        "roster: %d executives, %d accounts, %d rows skipped",
        len(roster.executives),
        len(roster.accounts),
        len(roster.errors),
    )
    handles: dict[str, list[str]] = {}
    for account in roster.accounts:
        handles.setdefault(account.platform, []).append(account.account_handle)
    return handles


def import_history_task() -> dict[str, Any]:
    """Seed the demo history into a warehouse without imports (bundled roster only), then
    import the history files dropped into ``<landing>/history/``."""
    from social_leadership.history import import_folder, seed_demo_history
    from social_leadership.roster import load_roster
    from social_leadership.settings import BUNDLED_DATA_DIR
    from social_leadership.warehouse import connect

    settings = load_settings()
    roster = load_roster(settings.roster_path)
    history_dir = settings.landing_dir / "history"
    outcomes = []
    with connect(settings.warehouse_path) as con:
        # Synthetic history belongs to the synthetic demo roster only, never to a real one.
        if settings.roster_path.resolve() == (BUNDLED_DATA_DIR / "roster" / "executives.csv"):
            seeded = seed_demo_history(con, roster, history_dir / "demo", settings.quarantine_dir)
            if seeded is not None:
                log.info("demo history (synthetic) imported: %d rows", seeded.rows_loaded)
                outcomes.append(seeded)
        outcomes.extend(import_folder(con, history_dir, roster, settings.quarantine_dir))
    for outcome in outcomes:
        log.info(
            "history %s: %d rows loaded, %d rejected%s",
            outcome.file,
            outcome.rows_loaded,
            outcome.rows_rejected,
            f" (quarantine {outcome.quarantine_path})" if outcome.quarantine_path else "",
        )
    return {
        "files": len(outcomes),
        "rows_loaded": sum(o.rows_loaded for o in outcomes),
        "rows_rejected": sum(o.rows_rejected for o in outcomes),
    }


def platform_rows_arrived(context: dict[str, Any]) -> bool:
    """Whether this run's loads or history import wrote any rows (read from their XComs)."""
    from social_leadership.domain import API_PLATFORMS

    task_ids = ["import_history", *(f"load_{platform}" for platform in API_PLATFORMS)]
    outcomes = context["ti"].xcom_pull(task_ids=task_ids) or []
    arrived = [
        outcome
        for outcome in outcomes
        if outcome and (outcome.get("accounts_loaded") or outcome.get("rows_loaded"))
    ]
    log.info("%d of %d loads brought rows", len(arrived), len(task_ids))
    return bool(arrived)


def extract_task(platform: str, handles: list[str], context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.loading import ExtractOutcome, extract_platform, observation_date
    from social_leadership.orchestration import platform_endpoint
    from social_leadership.platforms.base import PlatformError

    settings = load_settings()
    endpoint = platform_endpoint(platform)
    # A manually triggered Airflow 3 run may have no logical date: it runs for now.
    logical_date = context.get("logical_date") or context["dag_run"].run_after
    try:
        outcome = extract_platform(
            platform,
            handles,
            endpoint.base_url,
            endpoint.credentials,
            settings.landing_dir,
            _run_id(context),
            logical_date,
            login=endpoint.login,
        )
    except PlatformError as exc:
        # Permanent (bad token, missing permission, refused request): a retry would meet
        # the same answer. The load task records it in the audit and fails visibly.
        day = observation_date(logical_date) or logical_date.date()
        outcome = ExtractOutcome(
            platform, day, "failed", accounts_requested=len(set(handles)), message=str(exc)
        )
    return _jsonable(outcome)


def load_task(extract_outcome: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.loading import ExtractOutcome, load_platform_day, record_skipped
    from social_leadership.warehouse import connect

    settings = load_settings()
    extract = ExtractOutcome(**extract_outcome)
    extract.snapshot_date = date.fromisoformat(str(extract_outcome["snapshot_date"]))
    with connect(settings.warehouse_path) as con:
        if extract.status != "landed":
            outcome = record_skipped(con, extract, _run_id(context))
            if extract.status == "failed":
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(f"{extract.platform}: {extract.message}")
        else:
            outcome = load_platform_day(
                con,
                settings.landing_dir,
                extract.platform,
                extract.snapshot_date,
                _run_id(context),
                run_dir=Path(extract.landing_dir) if extract.landing_dir else None,
            )
    log.info("load %s: %s", extract.platform, outcome)
    return _jsonable(outcome)


def ingest_surveys_task() -> dict[str, Any]:
    from social_leadership.surveys import ingest_folder
    from social_leadership.surveys.pseudonym import load_pseudonym_key
    from social_leadership.warehouse import connect

    settings = load_settings()
    settings.ensure_dirs()
    with connect(settings.warehouse_path) as con:
        # The key is read only if a microdata file needs it, and never logged.
        outcomes = ingest_folder(
            con,
            settings.survey_dir,
            settings.quarantine_dir,
            pseudonym_key=lambda: load_pseudonym_key(settings),
        )
    for outcome in outcomes:
        if outcome.status == "quarantined":
            log.error(
                "survey file %s quarantined (report %s): %s",
                outcome.file,
                outcome.report_path,
                "; ".join(map(str, outcome.issues[:10])),
            )
        else:
            log.info(
                "survey file %s (%s): %s, %d rows",
                outcome.file,
                outcome.shape or "already loaded",
                outcome.status,
                outcome.rows_loaded,
            )
    loaded = [o for o in outcomes if o.status == "loaded"]
    return {
        "files_loaded": len(loaded),
        "files_unchanged": sum(o.status == "unchanged" for o in outcomes),
        "files_quarantined": sum(o.status == "quarantined" for o in outcomes),
        "rows_loaded": sum(o.rows_loaded for o in outcomes),
        "published_rows_loaded": sum(o.rows_loaded for o in loaded if o.shape == "published"),
        "respondents_loaded": sum(o.rows_loaded for o in loaded if o.shape == "microdata"),
    }


def dbt_build_task(context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.dbt_runner import plan_build, record_build, run_dbt
    from social_leadership.warehouse import connect

    settings = load_settings()
    settings.ensure_dirs()
    # dbt opens the warehouse itself: this connection must be closed before it runs.
    with connect(settings.warehouse_path) as con:
        plan = plan_build(con)
    log.info("dbt build plan: %s", plan.reason)
    started_at = datetime.now(UTC)
    result = run_dbt(plan.args, settings, log_path=settings.logs_dir / "dbt-build.log")
    log.info("dbt build output (end):\n%s", result.output_tail)
    with connect(settings.warehouse_path) as con:
        record_build(con, _run_id(context), plan, started_at, result)
    # The per-node statuses and output are in the task log and target/run_results.json.
    summary = _jsonable(result, drop=("statuses", "output_tail"))
    summary["full_refresh"] = plan.full_refresh
    return summary


def quality_gate_task(context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.quality import check_marts

    settings = load_settings()
    report = check_marts(settings, _run_id(context))
    summary = {
        "passed": len(report.passed),
        "failed": len(report.failed),
        "critical_failures": len(report.critical_failures),
    }
    report.raise_if_critical()
    return summary


def publish_task(context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.roster import load_roster
    from social_leadership.serving import publish

    settings = load_settings()
    roster = load_roster(settings.roster_path)
    synthetic = any(e.is_synthetic for e in roster.executives)
    publication = publish(settings, _run_id(context), synthetic=synthetic)
    return _jsonable(publication)
