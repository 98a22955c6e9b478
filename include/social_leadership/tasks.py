"""Task bodies for the DAGs: read settings and the Airflow context, call the pure modules.

Each returns a small JSON-able dict (it becomes the task's XCom, visible in the UI).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import UTC, date, datetime
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


def extract_task(platform: str, handles: list[str], context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.loading import extract_platform
    from social_leadership.orchestration import platform_endpoint

    settings = load_settings()
    endpoint = platform_endpoint(platform)
    outcome = extract_platform(
        platform,
        handles,
        endpoint.base_url,
        endpoint.credentials,
        settings.landing_dir,
        _run_id(context),
        context["logical_date"],
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
        else:
            outcome = load_platform_day(
                con,
                settings.landing_dir,
                extract.platform,
                extract.snapshot_date,
                _run_id(context),
            )
    log.info("load %s: %s", extract.platform, outcome)
    return _jsonable(outcome)


def ingest_surveys_task() -> dict[str, Any]:
    from social_leadership.surveys import ingest_folder
    from social_leadership.warehouse import connect

    settings = load_settings()
    settings.ensure_dirs()
    with connect(settings.warehouse_path) as con:
        outcomes = ingest_folder(con, settings.survey_dir, settings.quarantine_dir)
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
                "survey file %s: %s, %d rows", outcome.file, outcome.status, outcome.rows_loaded
            )
    return {
        "files_loaded": sum(o.status == "loaded" for o in outcomes),
        "files_unchanged": sum(o.status == "unchanged" for o in outcomes),
        "files_quarantined": sum(o.status == "quarantined" for o in outcomes),
        "rows_loaded": sum(o.rows_loaded for o in outcomes),
    }


def dbt_build_task(context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.dbt_runner import run_dbt

    settings = load_settings()
    settings.ensure_dirs()
    result = run_dbt(["build"], settings, log_path=settings.logs_dir / "dbt-build.log")
    log.info("dbt build output (end):\n%s", result.output_tail)
    # The per-node statuses and output are in the task log and target/run_results.json.
    return _jsonable(result, drop=("statuses", "output_tail"))


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
