"""Task bodies for the DAGs: read settings and the Airflow context, call the pure modules.

Each returns a small JSON-able dict (it becomes the task's XCom, visible in the UI), the
dump of a typed payload (task_payloads.py) that the reading task validates back.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from social_leadership.formatting import counted
from social_leadership.settings import SettingsError, load_settings
from social_leadership.task_payloads import (
    Attention,
    HistoryImportSummary,
    PlatformRunCheck,
    QualityGateSummary,
    RosterLoadSummary,
    SurveyIntakeSummary,
    from_xcom,
    to_xcom,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import duckdb

    from social_leadership.platform_metrics import ExtractOutcome, LoadOutcome
    from social_leadership.roster import Account, Roster
    from social_leadership.settings import Settings

log = logging.getLogger(__name__)


def _run_id(context: dict[str, Any]) -> str:
    return str(context["run_id"])


def task_settings() -> Settings:
    """The settings; a setting that is not allowed fails the task at once, since each
    retry would read the same environment and fail the same way, minutes later, as does a
    backend other than the one the data folder's warehouse was made with (a switch)."""
    from social_leadership.warehouse_backend import backend_mismatch

    try:
        settings = load_settings()
    except SettingsError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        # One line: an alert quotes an error's first line.
        raise AirflowFailException("; ".join(exc.each_said)) from exc
    if (mismatch := backend_mismatch(settings)) is not None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(mismatch)) from mismatch
    if (unwritable := _read_only_data_dir(settings.data_dir)) is not None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(unwritable)
    return settings


def _read_only_data_dir(data_dir: Path) -> str | None:
    """Why the data folder cannot be written, when no retry would change it (a read-only
    file system, no permission): each task's three tries failed on it minutes apart (284 s
    for one run of survey_ingest), its summary's too. A full disk is left to the retries:
    space may be freed."""
    return _read_only_folder("SLW_DATA_DIR", data_dir, data_dir, "a folder")


def _read_only_serving(settings: Settings) -> str | None:
    """Why a serving path cannot be written, when no retry would change it: each may be a
    mount of its own, apart from the data folder (a publish's three tries failed on it,
    minutes apart, with a bare OSError)."""
    lake_path, parquet_dir, lake_data = (
        settings.serving_lake_path,
        settings.serving_parquet_dir,
        settings.serving_lake_data_dir,
    )
    paths = (
        ("SLW_SERVING_PATH", settings.serving_path, settings.serving_path.parent, "a file"),
        ("SLW_SERVING_PARQUET_DIR", parquet_dir, parquet_dir, "a folder"),
        ("SLW_SERVING_LAKE_PATH", lake_path, lake_path.parent, "a file"),
        ("SLW_SERVING_LAKE_DATA_DIR", lake_data, lake_data, "a folder"),
    )
    for setting, path, folder, kind in paths:
        if (said := _read_only_folder(setting, path, folder, kind)) is not None:
            return said
    return None


def _read_only_folder(setting: str, path: Path, folder: Path, kind: str) -> str | None:
    """Why ``folder`` (``setting``'s ``path``, or the folder of that file) cannot be
    written, when no retry would change it; None if it can, or the cause may pass."""
    import errno
    import tempfile

    # Not made yet: the folder it would be made in (ensure_dirs failed there, retried).
    existing = next((p for p in (folder, *folder.parents) if p.is_dir()), None)
    if existing is None:
        return None
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            if existing == path:
                where = ""
            elif existing == folder:
                where = f" in its folder {folder}"
            else:
                where = f" (nor can {existing}, where it would be made)"
            return (
                f"{setting} {path} cannot be written{where} ({exc.strerror}): mount it "
                f"writable, or give {setting} {kind} the Airflow worker may write; a retry "
                "would fail the same way"
            )
    return None


def load_roster_task(context: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate and store the roster, quarantine its rejected rows; return the handles to
    fetch per platform with the load's figures (:class:`RosterLoadSummary`).

    A roster file refused whole fails the task, and the roster stored before stays: its
    handles are pushed as the task's XCom first (``context``'s task instance), so that the
    extract tasks still fetch the day's counts of the accounts stored."""
    from social_leadership.alerts import report_attention
    from social_leadership.roster import (
        RosterFileError,
        load_roster,
        platform_columns_lost,
        quarantine_rejected_rows,
        write_roster,
    )
    from social_leadership.warehouse import connect

    settings = task_settings()
    try:
        _wait_for_roster_to_settle(settings.roster_path, settings.intake_settle_seconds)
        roster = load_roster(settings.roster_path)
    except RosterFileError as exc:
        _hand_on_stored_roster(context, settings, str(exc))
        if exc.may_pass_later:
            raise
        from airflow.sdk.exceptions import AirflowFailException

        # A wrong SLW_ROSTER_PATH, a workbook, an unknown encoding: each retry would fail
        # the same way, minutes later.
        raise AirflowFailException(str(exc)) from exc
    if roster.header_row > 1:
        log.warning(
            "roster %s: the header is line %d, the lines above it are ignored (%s)",
            roster.file,
            roster.header_row,
            repr(roster.above_header[:80])
            if roster.above_header
            else "blank, or Excel's sep= line",
        )
    for warning in roster.warnings:
        log.warning("roster column ignored: %s", warning)
    for error in roster.errors:
        log.warning("roster row skipped: %s", error)
    if not roster.executives:
        # A roster of nobody is never meant (a header-only export, every row refused):
        # stored, it would empty the roster and each platform load would replace the day
        # with nothing. The stored roster stays; the rejected rows go to quarantine.
        quarantine = quarantine_rejected_rows(roster, settings.quarantine_dir)
        refused = RosterFileError(
            f"{roster.file}: no valid executive row"
            + (
                f" ({counted(len(roster.rejected_rows), 'row')} rejected, see {quarantine})"
                if quarantine
                else " (the file holds none)"
            )
            + "; the roster stored before is kept",
            # A header-only file may be one caught while being written.
            may_pass_later=True,
        )
        _hand_on_stored_roster(
            context,
            settings,
            str(refused),
            rows_rejected=len(roster.rejected_rows),
            quarantine=quarantine,
        )
        raise refused
    with connect(settings.warehouse_path) as con:
        lost = platform_columns_lost(con, roster)
        if lost:
            from airflow.sdk.exceptions import AirflowFailException

            ignored = [warning.column for warning in roster.warnings]
            refusal = (
                f"{roster.file}: the roster has no column for "
                + ", ".join(
                    f"{platform} (the stored roster lists {count} account(s))"
                    for platform, count in lost.items()
                )
                + ": read so, each account would be left out of the marts with its history"
                + (f" (header cells ignored: {', '.join(map(repr, ignored))})" if ignored else "")
                + ". Correct the header, or keep the column and empty it to stop tracking the"
                " platform; the roster stored before is kept"
            )
            _hand_on_stored_roster(context, settings, refusal, con)
            raise AirflowFailException(refusal)
        kept = write_roster(con, roster, str(settings.roster_path), datetime.now(UTC))
    # Only once the valid rows are stored, as for history imports.
    quarantine = quarantine_rejected_rows(roster, settings.quarantine_dir)
    kept_ids = sorted({executive for executive, _, _ in kept})
    skipped = [e for e in roster.skipped_executive_ids() if e not in set(kept_ids)]
    if quarantine is not None:
        what = _rejected_roster_rows(roster.file, len(roster.rejected_rows), skipped, kept_ids)
        report_attention(
            [
                Attention(
                    task_id="load_roster",
                    what=what,
                    rows_kept_out=len(roster.rejected_rows),
                    where=str(quarantine),
                )
            ]
        )
    log.info(
        # Executives as slw summary counts them; a row may hold several errors.
        "roster: %d executives (%d versions), %d accounts, %s skipped%s",
        len({executive.executive_id for executive in roster.executives}),
        len(roster.executives),
        len(roster.accounts),
        counted(len(roster.rejected_rows), "row"),
        f" (quarantine {quarantine}; executives left out: {', '.join(skipped) or 'none'}"
        + (f"; kept as stored before: {', '.join(kept_ids)}" if kept_ids else "")
        + ")"
        if quarantine
        else "",
    )
    held = set(kept_ids)
    handles = _handles_by_platform(a for a in roster.accounts if a.executive_id not in held)
    # The executives kept as stored are still asked for, by their stored accounts.
    for _, platform, handle in kept:
        if platform:
            handles.setdefault(platform, []).append(handle)
    return RosterLoadSummary(
        handles=handles,
        rows_loaded=len(roster.executives),
        rows_rejected=len(roster.rejected_rows),
        executives_skipped=skipped,
        columns_ignored=[warning.column for warning in roster.warnings],
        quarantine_path=str(quarantine) if quarantine else None,
    ).to_xcom()


def _hand_on_stored_roster(
    context: dict[str, Any] | None,
    settings: Settings,
    refusal: str,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    rows_rejected: int = 0,
    quarantine: Path | None = None,
) -> None:
    """Push the handles of the roster stored before as ``load_roster``'s XCom, the file
    being refused (``refusal``): the APIs give current counts only, so a day whose extracts
    waited for a mended file lost every executive's counts. Nothing is pushed without a
    stored roster (a first run) or outside an Airflow run."""
    if context is None or (ti := context.get("ti")) is None:
        return
    from airflow.sdk import BaseXCom

    from social_leadership.roster import another_roster, stored_roster_file
    from social_leadership.warehouse import connect
    from social_leadership.warehouse_backend import uses_lake

    if con is None and not uses_lake(settings) and not settings.warehouse_path.exists():
        log.warning("no warehouse yet: with the roster file refused, nothing is extracted")
        return
    try:
        if con is None:
            with connect(settings.warehouse_path, settings=settings) as stored:
                handles = _handles_by_platform(_loaded_roster(stored).accounts)
                stored_file = stored_roster_file(stored)
        else:
            handles = _handles_by_platform(_loaded_roster(con).accounts)
            stored_file = stored_roster_file(con)
    except Exception as exc:  # a warehouse held or out of reach: the refusal is still said
        log.warning("the roster stored before cannot be read, nothing is extracted: %s", exc)
        return
    if not handles:
        log.warning("no roster was stored before: with the file refused, nothing is extracted")
        return
    if another_roster(stored_file, str(settings.roster_path)):
        # The demo's roster (real accounts) left for one's own: not fetched on its tokens.
        log.warning(
            "the roster stored before is another roster (%s): with the file refused, "
            "nothing is extracted",
            stored_file,
        )
        return
    log.warning(
        "roster file refused: the extract tasks fetch the %s of the roster stored before",
        counted(sum(map(len, handles.values())), "account"),
    )
    summary = RosterLoadSummary(
        handles=handles,
        rows_loaded=0,
        rows_rejected=rows_rejected,
        executives_skipped=[],
        columns_ignored=[],
        quarantine_path=str(quarantine) if quarantine else None,
        refused=refusal,
    )
    # A raise returns no XCom: pushed before it, as load_task does for a failed platform.
    ti.xcom_push(BaseXCom.XCOM_RETURN_KEY, summary.to_xcom())


def _handles_by_platform(accounts: Iterable[Account]) -> dict[str, list[str]]:
    """The handles of ``accounts`` per platform, as the extract tasks fetch them."""
    handles: dict[str, list[str]] = {}
    for account in accounts:
        handles.setdefault(account.platform, []).append(account.account_handle)
    return handles


# An alert line names this many executives at most; the XCom and report.json name all.
NAMED_SKIPPED_EXECUTIVES = 20


# How many times the roster task watches a roster changed within the settle time, and
# for how long at most each time: a save or a copy takes seconds, and the task holds the
# warehouse's one pool slot meanwhile (a settle time of hours is for large survey uploads).
ROSTER_SETTLE_WAITS = 3
ROSTER_SETTLE_WAIT_SECONDS = 30


def _wait_for_roster_to_settle(path: Path, settle_seconds: int) -> None:
    """Wait while the roster changes: changed less than ``settle_seconds`` ago (the
    intakes' SLW_INTAKE_SETTLE_SECONDS), it is watched for up to
    :data:`ROSTER_SETTLE_WAIT_SECONDS` and read once it did not change meanwhile. Caught
    while being saved or copied, its rows up to the cut loaded as the whole roster, the
    executives below it left out of the marts on a green run. Changing at each of
    :data:`ROSTER_SETTLE_WAITS` watches, the task fails for Airflow's retry."""
    from social_leadership.intake import SETTLE_SETTING, modified_within
    from social_leadership.roster import RosterFileError

    def seen() -> tuple[int, int] | None:
        try:
            found = path.stat()
        except OSError:
            return None  # the roster reader says what is wrong with it
        return found.st_size, found.st_mtime_ns

    age = modified_within([path], settle_seconds, time.time())
    if age is None:
        return
    said = (
        f"roster {path} changed {max(age, 0):.0f} s ago, less than {SETTLE_SETTING}="
        f"{settle_seconds} s: it may still be being written"
    )
    first = said
    for _ in range(ROSTER_SETTLE_WAITS):
        before = seen()
        wait = min(ROSTER_SETTLE_WAIT_SECONDS, max(1.0, settle_seconds - max(age, 0)))
        log.info("%s; read once it has not changed for %.0f s", said, wait)
        time.sleep(wait)
        if seen() == before:
            return
        age = 0.0
        said = f"roster {path} changed again while watched: it may still be being written"
    raise RosterFileError(
        f"{first}, and it changed at each of {ROSTER_SETTLE_WAITS} watches; left to the "
        "task's retry",
        may_pass_later=True,
    )


def _rejected_roster_rows(file: str, rows: int, skipped: list[str], kept: list[str]) -> str:
    def named(ids: list[str]) -> str:
        text = ", ".join(ids[:NAMED_SKIPPED_EXECUTIVES])
        more = len(ids) - NAMED_SKIPPED_EXECUTIVES
        return text + (f" and {more} more" if more > 0 else "")

    left_out = f"; executives left out: {named(skipped)}" if skipped else ""
    if kept:
        left_out += (
            f"; executives kept as stored before (a row of theirs rejected, their other rows "
            f"not loaded): {named(kept)}"
        )
    return f"roster file {file}: {counted(rows, 'row')} rejected (quarantined){left_out}"


def roster_handles(context: dict[str, Any], platform: str) -> list[str]:
    """The handles on ``platform`` in ``load_roster``'s XCom: the file's, or those of the
    roster stored before when it refused the file (it failed, and the run fails with it).
    Fails when it handed on none: it failed with no roster stored before."""
    from airflow.sdk.exceptions import AirflowFailException

    pushed = context["ti"].xcom_pull(task_ids="load_roster")
    if pushed is None:
        raise AirflowFailException(
            f"nothing to extract for {platform}: load_roster failed and handed on no roster "
            "stored before to fetch instead (none was stored yet, or it failed before reading "
            "the file): mend what its log names and run again"
        )
    roster = RosterLoadSummary.from_xcom(pushed)
    if roster.refused is not None:
        log.warning(
            "the roster file was refused (%s): fetching the accounts of the roster stored before",
            roster.refused,
        )
    return roster.handles.get(platform, [])


def _loaded_roster(con: duckdb.DuckDBPyConnection) -> Roster:
    """The roster as this run's ``load_roster`` stored it in raw: the file is read once per
    run, and may have changed since."""
    from social_leadership.roster import Account, Executive, Roster

    executives = con.execute(
        "select executive_id, full_name, title, company_name, country_code, sector, "
        "is_synthetic, valid_from from raw.roster_executives "
        "order by executive_id, valid_from nulls first"
    ).fetchall()
    accounts = con.execute(
        "select executive_id, platform, account_handle from raw.roster_accounts "
        "order by executive_id, platform"
    ).fetchall()
    return Roster(
        executives=[Executive(*row) for row in executives],
        accounts=[Account(*row) for row in accounts],
    )


def import_history_task() -> dict[str, Any]:
    """Import the history files dropped into ``<landing>/history/``; with ``SLW_DEMO`` on,
    seed the demo's synthetic history first into a warehouse without imports."""
    from social_leadership.demo_hook import demo_inputs
    from social_leadership.follower_imports import import_folder
    from social_leadership.warehouse import connect

    settings = task_settings()
    demo = demo_inputs(settings)
    history_dir = settings.landing_dir / "history"
    outcomes = []
    with connect(settings.warehouse_path) as con:
        roster = _loaded_roster(con)
        if demo is not None:
            seeded = demo.seed_history(con, roster, history_dir / "demo", settings.quarantine_dir)
            if seeded is not None:
                log.info("demo history (synthetic) imported: %d rows", seeded.rows_loaded)
                outcomes.append(seeded)
        outcomes.extend(
            import_folder(
                con,
                history_dir,
                roster,
                settings.quarantine_dir,
                settle_seconds=settings.intake_settle_seconds,
            )
        )
    from social_leadership.alerts import report_attention

    refused = [o for o in outcomes if o.refused]
    report_attention(
        [
            Attention(
                task_id="import_history",
                what=(
                    f"history file {o.file}: {counted(o.rows_rejected, 'row')} rejected"
                    " (quarantined)"
                    + (f"; of the rows loaded, {not_counted}" if not_counted else "")
                ),
                rows_kept_out=o.rows_rejected,
                where=str(o.quarantine_path) if o.quarantine_path else None,
            )
            for o in outcomes
            if o.rows_rejected
            for not_counted in [o.rows_not_counted()]
        ]
        + [
            # Loaded, in raw.imported_metrics, but not what the marts will show: the alert
            # said nothing of them, the task log "loaded".
            Attention(
                task_id="import_history",
                what=f"history file {o.file}: {counted(o.rows_loaded, 'row')} loaded; "
                f"{not_counted}",
                rows_kept_out=0,
                where=None,
            )
            for o in outcomes
            if not o.rows_rejected and (not_counted := o.rows_not_counted())
        ]
        + [
            Attention(
                task_id="import_history",
                what=f"history file {o.file} not imported: {o.errors[0].reason} (quarantined)",
                rows_kept_out=None,
                where=o.quarantine_path,
            )
            for o in refused
        ]
    )
    for outcome in outcomes:
        log.info(
            "history %s: %d rows loaded, %d rejected%s%s",
            outcome.file,
            outcome.rows_loaded,
            outcome.rows_rejected,
            f" (quarantine {outcome.quarantine_path})" if outcome.quarantine_path else "",
            f"; {not_counted}" if (not_counted := outcome.rows_not_counted()) else "",
        )
    return HistoryImportSummary(
        files=len(outcomes),
        rows_loaded=sum(o.rows_loaded for o in outcomes),
        rows_rejected=sum(o.rows_rejected for o in outcomes),
        files_quarantined=len(refused),
    ).to_xcom()


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
    if not arrived:
        # No build follows: its freshness check, the only one, would not say a platform
        # gone stale while every run brings nothing.
        from social_leadership.alerts import report_attention
        from social_leadership.domain import PLATFORMS
        from social_leadership.freshness import stale_without_a_build

        facts = stale_without_a_build(
            task_settings(), _run_id(context), list(PLATFORMS), context["ti"].task_id
        )
        for fact in facts:
            log.warning("%s", fact.what)
        report_attention(facts)
    return bool(arrived)


def extract_task(platform: str, handles: list[str], context: dict[str, Any]) -> dict[str, Any]:
    """Extract and land one platform; the outcome (XCom) tells its load task what to do.

    Not configured: skipped (nothing sent; the load task records why). A refused request
    (bad token, missing permission): a ``failed`` outcome, which the load task audits and
    fails on, without retry. Gave up on transient faults: raises so that Airflow retries
    the extract while tries remain; the last try returns a ``failed`` outcome instead, so
    what it fetched is still loaded.
    """
    from airflow.sdk.exceptions import AirflowException, AirflowSkipException

    from social_leadership.orchestration import platform_endpoint
    from social_leadership.platform_metrics import (
        ExtractOutcome,
        accounts_to_ask,
        extract_platform,
        observation_date,
    )
    from social_leadership.platforms.base import PlatformError

    settings = task_settings()
    # A manually triggered Airflow 3 run may have no logical date: it runs for now.
    logical_date = context.get("logical_date") or context["dag_run"].run_after
    try:
        endpoint = platform_endpoint(platform)
        outcome = extract_platform(
            platform,
            handles,
            endpoint.base_url,
            endpoint.credentials,
            settings.landing_dir,
            _run_id(context),
            logical_date,
            login=endpoint.login,
            max_wait_seconds=settings.platform_max_wait_seconds,
            **endpoint.options,
        )
    except PlatformError as exc:
        # Permanent (bad token, missing permission, refused request, a connection that
        # cannot be read): a retry would meet the same answer. The load task records it
        # in the audit and fails visibly.
        # extract_platform has scrubbed the credential from the message.
        # What the batches before the refusal read is landed (exc.landing_dir): loaded,
        # and not asked for again by a later try of the run.
        day = observation_date(logical_date) or logical_date.date()
        outcome = ExtractOutcome(
            platform,
            day,
            "failed",
            accounts_requested=len(set(accounts_to_ask(platform, handles))),
            requests_sent=exc.requests_sent,
            landing_dir=exc.landing_dir,
            message=str(exc),
        )
    if outcome.status == "not_configured":
        raise AirflowSkipException(outcome.message)
    if outcome.transient and _tries_remain(context):
        raise AirflowException(f"{outcome.message} (Airflow retries the extract)")
    return to_xcom(outcome)


def _tries_remain(context: dict[str, Any]) -> bool:
    ti = context.get("ti")
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    return isinstance(try_number, int) and isinstance(max_tries, int) and try_number <= max_tries


def run_task_states(context: dict[str, Any]) -> dict[str, Any]:
    """Each task's state in the running DAG run, by task id (Airflow's own record)."""
    ti = context["ti"]
    run_id = _run_id(context)
    return ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})


def _extract_state(context: dict[str, Any], platform: str) -> str | None:
    """The state of this run's ``extract_<platform>`` (None outside an Airflow run)."""
    if not hasattr(context.get("ti"), "get_task_states"):
        return None
    state = run_task_states(context).get(f"extract_{platform}")
    return None if state is None else str(state)


def load_task(
    platform: str, extract_outcome: dict[str, Any] | None, context: dict[str, Any]
) -> dict[str, Any]:
    """Load what the extract landed and audit it; fail when the platform failed.

    ``extract_outcome`` is None when the extract was skipped, which it is only for a
    platform without connection: that is audited ``not_configured`` and skipped too. An
    extract that succeeded without one was marked success by hand: the load fails.
    """
    from airflow.sdk import BaseXCom
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from social_leadership.platform_metrics import (
        ExtractOutcome,
        load_platform_day,
        not_configured_message,
        observation_date,
        record_skipped,
    )
    from social_leadership.warehouse import connect
    from social_leadership.warehouse_backend import retry_conflicts

    settings = task_settings()
    if extract_outcome is None and _extract_state(context, platform) == "success":
        # An extract that ran returns its outcome: a success without one was marked so by
        # hand (the UI's "Mark success" on a failed extract). It was audited and skipped as
        # not configured, the run went green with the platform not loaded and the alert
        # blaming a connection that is there.
        raise AirflowFailException(
            f"extract_{platform} succeeded without an outcome (marked success by hand?): "
            f"none of {platform}'s counts of this run are loaded. Clear extract_{platform} "
            "to run it"
        )
    if extract_outcome is None:
        logical_date = context.get("logical_date") or context["dag_run"].run_after
        day = observation_date(logical_date) or logical_date.date()
        extract = ExtractOutcome(
            platform, day, "not_configured", message=not_configured_message(platform)
        )
    else:
        extract = from_xcom(ExtractOutcome, extract_outcome)

    def load_once() -> LoadOutcome:
        with connect(settings.warehouse_path, settings=settings) as con:
            if extract.landing_dir:
                return load_platform_day(
                    con,
                    settings.landing_dir,
                    extract.platform,
                    extract.snapshot_date,
                    _run_id(context),
                    run_dir=Path(extract.landing_dir),
                )
            return record_skipped(con, extract, _run_id(context))

    # On a DuckLake the platforms load at once: a load that lost a write conflict to
    # another runs again (it replaces its day, so a second run is safe).
    outcome = retry_conflicts(load_once)
    log.info("load %s: %s", extract.platform, outcome)
    if outcome.status == "failed":
        # The rows it did load are in raw all the same: its outcome stays readable, so that
        # anything_loaded signals the warehouse for them (a raise returns no XCom).
        if (ti := context.get("ti")) is not None:
            ti.xcom_push(BaseXCom.XCOM_RETURN_KEY, to_xcom(outcome))
            from social_leadership.alerts import report_attention

            report_attention(
                [
                    Attention(
                        task_id=ti.task_id,
                        what=f"platform {extract.platform} failed: {outcome.message}",
                        rows_kept_out=max(outcome.accounts_requested - outcome.accounts_loaded, 0),
                        where="audit.platform_loads",
                    )
                ]
            )
        # Loading again would load the same landing: only a new extract can do better.
        raise AirflowFailException(f"{extract.platform} failed: {outcome.message}")
    if outcome.status == "not_configured":
        raise AirflowSkipException(outcome.message)
    if (ti := context.get("ti")) is not None:
        from social_leadership.alerts import report_attention

        # One call: each pushes the task's one attention XCom.
        report_attention(_load_attention(ti.task_id, extract, outcome))
    return to_xcom(outcome)


def _load_attention(task_id: str, extract: ExtractOutcome, outcome: LoadOutcome) -> list[Attention]:
    """What a green platform load says for the run's alert: accounts not found, answered
    without counts it could read, deferred by the API's limit or answered after the day
    ended."""
    facts = []
    named_accounts = [
        # Green all the same (an account may go), but said: a handle renamed or mistyped in
        # the roster went unsaid, day after day, its counts missing.
        (
            outcome.not_found,
            outcome.not_found_examples,
            "not found (renamed, deleted or mistyped in the roster?)",
            "not_found",
        ),
        # A reply without its counts (or with counts in no readable form) keeps the day's
        # earlier counts: said nowhere, the account's counts went missing day after day.
        (
            outcome.errors,
            outcome.error_examples,
            "answered without counts it could read (the day's earlier counts kept)",
            "error",
        ),
        # Loaded (a new account of the executive's is as likely), but said: a handle freed
        # by a rename and taken by someone else gave the executive that person's counts.
        (
            outcome.changed,
            outcome.changed_examples,
            "answered by another account than before (the handle taken by someone else, or "
            "an account made anew? check the roster)",
            "ok",
        ),
        # Counted by the account it moved to, as the old one's counts stopped when it
        # moved; the roster should name the new one.
        (
            outcome.moved,
            outcome.moved_examples,
            "moved to another account (counted by the new one under the roster's handle, "
            "which keeps the series: a new handle in the roster starts a new one)",
            "ok",
        ),
    ]
    for count, examples, what, status in named_accounts:
        if not count:
            continue
        more = count - len(examples)
        facts.append(
            Attention(
                task_id=task_id,
                what=f"platform {extract.platform}: {count} of {outcome.accounts_requested} "
                f"accounts {what}: {', '.join(examples)}" + (f" and {more} more" if more else ""),
                rows_kept_out=0,
                where=f"raw.platform_metrics (account_status {status})",
            )
        )
    if extract.deferred or outcome.read_late:
        # A green run all the same (the API's limit, not a fault), but that day's counts of
        # these accounts are missing: with every platform throttled, the run was green, no
        # alert went out and no build ran to find the data stale. Likewise for accounts
        # answered only after the day had ended.
        said = []
        if extract.deferred:
            said.append(f"{extract.deferred} deferred by the API's limit")
        if outcome.read_late:
            said.append(f"{outcome.read_late} answered after {outcome.snapshot_date} ended")
        facts.append(
            Attention(
                task_id=task_id,
                what=f"platform {extract.platform}: of {extract.accounts_requested} "
                f"accounts {' and '.join(said)}, {outcome.accounts_loaded} loaded"
                + (f" ({extract.message})" if extract.message else ""),
                rows_kept_out=extract.deferred + outcome.read_late,
                where="audit.platform_loads",
            )
        )
    return facts


def failed_tasks(states: dict[str, str | None], *, exclude: str) -> list[str]:
    """The task ids (but ``exclude``) whose state is failed or upstream_failed, sorted."""
    from social_leadership.alerts import FAILED_STATES

    return sorted(
        task_id
        for task_id, state in states.items()
        if task_id != exclude and str(state) in FAILED_STATES
    )


def check_platforms_task(context: dict[str, Any]) -> dict[str, Any]:
    """The run's last word: fail it when any task failed (a platform that failed, above
    all), once every platform has loaded what it could and the warehouse was signalled.

    Without this leaf the run would end ``success``: its other leaves come after an
    ``all_done`` gate. Platforms without connection are skipped, which is not a failure.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from social_leadership.domain import API_PLATFORMS

    ti = context["ti"]
    states = run_task_states(context)
    failed = failed_tasks(states, exclude=ti.task_id)
    skipped = [p for p in API_PLATFORMS if str(states.get(f"load_{p}")) == "skipped"]
    if skipped:
        log.info("not configured (skipped): %s", ", ".join(skipped))
        from social_leadership.alerts import report_attention

        report_attention(
            [
                Attention(
                    task_id=f"load_{platform}",
                    what=f"platform {platform} is not configured (no connection "
                    f"slw_{platform}): nothing extracted",
                    where="audit.platform_loads",
                )
                for platform in skipped
            ]
        )
    if failed:
        # A task that never ran (an upstream one failed) did not fail, nor did its platform.
        ran = [task for task in failed if str(states.get(task)) == "failed"]
        not_run = [task for task in failed if task not in ran]
        platforms = [p for p in API_PLATFORMS if {f"extract_{p}", f"load_{p}"} & set(ran)]
        said = [f"tasks failed: {', '.join(ran)}"] if ran else []
        if platforms:
            said.append(f"platforms failed: {', '.join(platforms)} (see audit.platform_loads)")
        if not_run:
            said.append(f"{counted(len(not_run), 'task')} did not run: an upstream task failed")
        from social_leadership.alerts import RUN_CHECK

        raise AirflowFailException(f"{RUN_CHECK}: {'; '.join(said)}")
    return PlatformRunCheck(failed=[], not_configured=skipped).to_xcom()


def ingest_surveys_task() -> dict[str, Any]:
    """Load the bundled published figures (with ``SLW_DEMO`` on, the demo's synthetic
    microdata too) and the landed survey files. A bad file is quarantined and counted, never
    raised: a retry would meet the same file. Only a fault of the warehouse or the machine (a
    held lock, a full disk) or an unusable pseudonym key raises, for Airflow to retry."""
    from social_leadership.progress import step

    settings = task_settings()
    step(
        "loading the survey files: the bundled published figures, "
        + ("the demo's synthetic microdata, " if settings.demo else "")
        + f"the files landed in {settings.survey_dir}"
    )
    from social_leadership.demo_hook import demo_inputs
    from social_leadership.surveys import ingest_folder
    from social_leadership.surveys.limits import IntakeLimits
    from social_leadership.warehouse import connect

    settings.ensure_dirs()
    demo = demo_inputs(settings)
    with connect(settings.warehouse_path) as con:
        # The pseudonym key (the settings') is read only if a microdata file needs it, and
        # never logged.
        outcomes = ingest_folder(
            con,
            settings.survey_dir,
            settings.quarantine_dir,
            extra_bundled=demo.survey_files() if demo is not None else (),
            limits=IntakeLimits.from_settings(settings),
            settle_seconds=settings.intake_settle_seconds,
        )
        unbuilt = _survey_files_no_build_saw(con)
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
    from social_leadership.alerts import report_attention

    report_attention(
        [
            Attention(
                task_id="ingest_surveys",
                what=f"survey file {o.file} quarantined, the whole file kept out "
                f"({len(o.issues)} problem(s), first: {o.issues[0] if o.issues else '-'})",
                where=o.report_path,
            )
            for o in outcomes
            if o.status == "quarantined"
        ]
        # A correction that drops a wave deletes it: said in the log alone, the wave was
        # gone from the marts with nobody told.
        + [
            Attention(
                task_id="ingest_surveys",
                what=f"survey file {o.file} replaced its earlier version, which held what it "
                f"does not: removed {'; '.join(o.removed)} (a file of another wave keeps its "
                "own under a name of its own)",
                where="raw.survey_files",
            )
            for o in outcomes
            if o.removed
        ]
        # Rows other files had loaded, replaced: a correction under another name, or one
        # stray row of another country deleting that country's whole file from the marts.
        + [
            Attention(
                task_id="ingest_surveys",
                what=f"survey file {o.file} replaced what other files had loaded: "
                f"{'; '.join(o.replaced)} (if not meant, as a stray row of another country or "
                "wave: correct this file and land it again, then land each other file again "
                "changed, as a new export: an unchanged file is taken as loaded)",
                where="raw.survey_files",
            )
            for o in outcomes
            if o.replaced
        ]
        # Files in a folder of the landing folder (an export unzipped there) are not read:
        # said in the log alone, the run was green and nobody learned they never loaded.
        + [
            Attention(
                task_id="ingest_surveys",
                what=f"survey folder {folder.name}/ holds {count} survey file(s), which are "
                f"not read: only the files at the top of {settings.survey_dir} are; move them "
                "there (said again when its files change)",
                where=str(folder),
            )
            for folder, count in _unread_folders_to_alert(settings)
        ]
    )
    loaded = [o for o in outcomes if o.status == "loaded"]
    return SurveyIntakeSummary(
        files_loaded=len(loaded),
        files_unchanged=sum(o.status == "unchanged" for o in outcomes),
        files_quarantined=sum(o.status == "quarantined" for o in outcomes),
        rows_loaded=sum(o.rows_loaded for o in outcomes),
        published_rows_loaded=sum(o.rows_loaded for o in loaded if o.shape == "published"),
        respondents_loaded=sum(o.rows_loaded for o in loaded if o.shape == "microdata"),
        files_unbuilt=unbuilt,
    ).to_xcom()


def _unread_folders_to_alert(settings: Settings) -> list[tuple[Path, int]]:
    """The folders of the survey landing folder holding survey files, not alerted before
    as they are now (each run logs them all: surveys.ingest_folder)."""
    from social_leadership.surveys.boundary import folders_to_alert, unread_folders

    try:
        return folders_to_alert(
            unread_folders(settings.survey_dir), settings.quarantine_dir / "surveys"
        )
    except OSError as exc:  # a warning's look-up: it never stops the intake
        log.warning("the unread folders in %s were not alerted: %s", settings.survey_dir, exc)
        return []


def _survey_files_no_build_saw(con: Any) -> int:
    """How many survey files were loaded after the last warehouse_build run was due (or
    the last try of a build began; every one before the first), once there is platform data
    to build. A run that died between its load and its signal to warehouse_build left them
    loaded and unsignalled: the next run found them unchanged, signalled nothing, and they
    waited, unpublished, for a platform run's build, which a failed platform may never
    signal. A build run that failed, even before its dbt build began, had them in reach:
    its own alert says so, and it is not asked again every five minutes."""
    from social_leadership.freshness import holds_platform_data

    if not holds_platform_data(con):
        return 0  # the build skips until then (source_freshness)
    row = con.execute(
        "select count(*) from raw.survey_files where loaded_at > greatest("
        "coalesce((select max(started_at) from audit.dbt_build_attempts), '-infinity'),"
        "coalesce((select max(logical_date) from audit.runs "
        "where dag_id = 'warehouse_build'), '-infinity'))"
    ).fetchone()
    return int(row[0]) if row else 0


def dbt_build_task(context: dict[str, Any]) -> dict[str, Any]:
    """One ``dbt build`` (or, on a later try of the same DAG run, ``dbt retry`` of what
    failed or was skipped); its XCom lists every node with its status, also on failure."""
    from airflow.sdk import BaseXCom

    from social_leadership.dbt_nodes import build_or_retry, merged_result
    from social_leadership.dbt_runner import (
        DbtError,
        plan_build,
        record_build,
        record_build_attempt,
    )
    from social_leadership.warehouse import connect

    settings = task_settings()
    settings.ensure_dirs()
    # dbt opens the warehouse itself: this connection must be closed before it runs.
    with connect(settings.warehouse_path) as con:
        plan = plan_build(
            con,
            settings.dbt_project_dir,
            full_refresh_asked=bool(context["params"].get("full_refresh", False)),
            gap_fill_days=settings.gap_fill_days,
        )
        record_build_attempt(con, _run_id(context))
    from social_leadership.progress import step

    full = " --full-refresh" if plan.full_refresh else ""
    step(f"dbt build{full} of every model, seed, snapshot and test: {plan.reason}")
    attempt = build_or_retry(settings, _run_id(context), plan, datetime.now(UTC))
    result = attempt.result
    log.info(
        "dbt %s (try %d): %s",
        "retry of the failed and skipped nodes" if attempt.retried else "build",
        attempt.attempt,
        "an earlier try of this run left nodes to rerun" if attempt.retried else plan.reason,
    )
    log.info("dbt output (end):\n%s", result.output_tail)
    log.info("this run's dbt artefacts and per-node logs: %s", attempt.run_dir)
    # The run's counts, over every try: a retry's own cover only what it ran again.
    counted = merged_result(result, attempt.nodes)
    # A retry ran the failed build's plan: that is what the run reports and records.
    plan = attempt.plan
    summary = to_xcom(counted, drop=("statuses", "output_tail"))
    summary.update(
        full_refresh=plan.full_refresh,
        rebuild_from=plan.rebuild_from.isoformat() if plan.rebuild_from else None,
        rebuild_windows=plan.windows_text,
        retried=attempt.retried,
        run_dir=str(attempt.run_dir),
        nodes=attempt.nodes,
    )
    if not attempt.succeeded:
        # A raise returns no XCom: pushed first, so the node list is readable all the same.
        context["ti"].xcom_push(BaseXCom.XCOM_RETURN_KEY, summary)
        # Airflow's retry (or the task cleared once the cause is fixed) runs `dbt retry`.
        raise DbtError(result)
    with connect(settings.warehouse_path) as con:
        record_build(con, _run_id(context), plan, attempt.started_at, counted)
    return summary


def dbt_nodes_task(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The instances of the per-node view from this run's merged node list, whatever the
    build's outcome: each model, seed or snapshot (with its tests) that needs a look on
    its own, the ones that passed together in one."""
    from social_leadership.dbt_nodes import node_units, read_nodes, run_folder, view_units

    units = node_units(read_nodes(run_folder(task_settings(), _run_id(context))))
    views = view_units(units)
    log.info("%d dbt units to show in %d instances", len(units), len(views))
    return views


def dbt_node_task(unit: dict[str, Any]) -> dict[str, Any]:
    """One instance of the per-node view (``unit``: a view of :func:`view_units`, one unit
    needing a look or the units that passed): labels it, logs each node's dbt log and each
    test's result, and ends in the worst state of its nodes (failed, skipped, or success;
    a warning is logged as one)."""
    from airflow.sdk import BaseXCom, get_current_context
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from social_leadership.dbt_nodes import report_view, run_folder

    context = get_current_context()
    report = report_view(unit, run_folder(task_settings(), _run_id(context)))
    # Rendered by the task's map_index_template: the instance's name in the UI.
    context["node_label"] = report.label  # type: ignore[typeddict-unknown-key]
    log.info("\n".join(report.lines))
    # The XCom keeps the log lines too: readable from the UI and the REST API at once.
    shown = {
        "label": report.label,
        "state": report.state,
        "group": unit.get("group"),
        "nodes": [
            {
                "node": {key: value for key, value in member.items() if key != "tests"},
                "tests": member.get("tests", []),
            }
            for member in unit["units"]
        ],
        "log": report.lines,
    }
    if report.state in ("failed", "skipped"):
        # A raise returns no XCom: pushed first, so the instances that need a look have
        # theirs as README says (they alone had none).
        context["ti"].xcom_push(BaseXCom.XCOM_RETURN_KEY, shown)
    if report.state == "failed":
        raise AirflowFailException(report.label)
    if report.state == "skipped":
        raise AirflowSkipException(report.label)
    if report.state == "warn":
        log.warning("%s", report.label)
    return shown


def quality_gate_task(context: dict[str, Any]) -> dict[str, Any]:
    """Validate the marts; a failed critical expectation fails the task without retries."""
    from social_leadership.progress import step

    # Before the imports: Great Expectations takes seconds to import.
    step("quality gate: validating the marts with Great Expectations")
    from social_leadership.docs_site import pending_gx_dir
    from social_leadership.quality import QualityGateError, check_marts

    settings = task_settings()
    docs = pending_gx_dir(settings, _run_id(context))
    report = check_marts(settings, _run_id(context), data_docs_dir=docs)
    # Where a reader sees this gate's results: a failed gate's Data Docs stay pending (the
    # published ones are the last good run's); the checks made in SQL are in the table only.
    places = ("audit.quality_results", str(docs / "index.html"))
    summary = QualityGateSummary(
        passed=len(report.passed),
        failed=len(report.failed),
        critical_failures=len(report.critical_failures),
        validated=report.validated,
    ).to_xcom()
    from social_leadership.alerts import report_attention

    if report.failed:
        critical = len(report.critical_failures)
        shown = "; ".join(check.describe() for check in report.failed[:5])
        report_attention(
            [
                Attention(
                    task_id="quality_gate",
                    what=(
                        f"quality gate failed: {critical} critical check(s), publication "
                        "stopped (the serving copy stays the last one published)"
                        if critical
                        else "quality gate warned, the marts published all the same"
                    )
                    + f"; {len(report.failed)} check(s) failed: {shown}",
                    # The rows the critical checks found wrong, whose publication is held
                    # back; a warning holds back nothing (its counts may be days, not rows).
                    rows_kept_out=sum(c.unexpected_count or 0 for c in report.critical_failures),
                    where=places[0],
                    also_where=places[1],
                )
            ]
        )
    try:
        report.raise_if_critical()
    except QualityGateError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        # Deterministic: a retry would check the same marts and fail the same way, while
        # holding the warehouse pool. Errors raised by check_marts itself (a locked file,
        # a full disk) are left to Airflow's retries.
        raise AirflowFailException(
            f"{exc}\nEvery result: {places[0]}; this run's GX Data Docs: {places[1]}"
        ) from exc
    return summary


def publish_task(context: dict[str, Any]) -> dict[str, Any]:
    from social_leadership.progress import step

    step("publishing the marts: the DuckLake catalog, the serving file and the Parquet set")
    from social_leadership.serving import (
        ACCEPT_SHORTER_HISTORY,
        HistoryLostError,
        publish,
        publish_refusal,
    )
    from social_leadership.serving_lake import CatalogError
    from social_leadership.warehouse import connect, holds_synthetic_executives

    settings = task_settings()
    if (unwritable := _read_only_serving(settings)) is not None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(unwritable)
    # Not the roster file again: it may have changed since this run's roster load.
    with connect(settings.warehouse_path, read_only=True) as con:
        refusal = publish_refusal(con, _run_id(context))
        synthetic = holds_synthetic_executives(con)
    if refusal is not None:
        from airflow.sdk.exceptions import AirflowFailException

        # A retry would find the same marts and the same verdict.
        raise AirflowFailException(refusal)
    accept = bool((context.get("params") or {}).get(ACCEPT_SHORTER_HISTORY, False))
    try:
        publication = publish(
            settings, _run_id(context), synthetic=synthetic, accept_shorter_history=accept
        )
    except (HistoryLostError, CatalogError) as error:
        from airflow.sdk.exceptions import AirflowFailException

        # A retry would find the same history missing, or the same file in the catalog's place.
        raise AirflowFailException(str(error)) from error
    log.info(
        "publication %d: %d tables to the DuckLake catalog %s, the single file %s (%s) and "
        "the Parquet set %s",
        publication.publication_id,
        publication.tables_published,
        publication.lake_path,
        publication.serving_path,
        "rebuilt" if publication.serving_file_rebuilt else "updated",
        publication.parquet_dir,
    )
    for table, change in publication.changes.items():
        log.info("  %s: %s", table, change)
    return to_xcom(publication)


def weekly_report_task(context: dict[str, Any]) -> dict[str, Any]:
    """Write (and mail, if configured) the report of the 7 days before the run's data
    interval ends; returns where its files are."""
    from social_leadership.orchestration import refuse_unknown_params
    from social_leadership.reports.data import ReportWeek, week_end_day
    from social_leadership.reports.weekly import NO_SMTP_CONNECTION, write_weekly_report

    refuse_unknown_params(context)
    params = context["params"]
    if params.get("week_end"):
        week = ReportWeek(week_end_day(params["week_end"]))
    else:
        # A run triggered without a logical date (Airflow 3's default for a manual run, by
        # the CLI or the REST API) has no data interval: the week before the run's time.
        moment = context.get("data_interval_end") or context["dag_run"].run_after
        week = ReportWeek.ending_before(moment)
    if week.end > datetime.now(UTC).date():
        from airflow.sdk.exceptions import AirflowFailException

        # No retry makes the week end sooner.
        raise AirflowFailException(
            f"week_end {week.end} has not come yet: the weekly report is of a past week "
            "(a report of this one would be mailed as the whole week)"
        )
    resend = bool(params.get("resend", False))
    # A retry of a resend run goes on with that resend: it mails only those not reached yet.
    report = write_weekly_report(
        task_settings(), week.end, resend=resend, resend_run=str(context["run_id"])
    )
    if report.mail_skipped == NO_SMTP_CONNECTION:
        from airflow.sdk.exceptions import AirflowFailException

        # Mail was asked for and cannot be sent: a green run would hide, every week, that
        # nobody got the report. No retry adds the connection; clearing the task once it
        # is added mails the report (it is not mailed twice).
        raise AirflowFailException(
            f"the weekly report {week.heading} is written ({report.folder}) but not mailed: "
            f"SLW_REPORT_EMAILS is set and the Airflow connection slw_smtp is not defined; "
            "add it (AIRFLOW_CONN_SLW_SMTP or the Airflow UI, README: Alerts), then clear "
            "this task"
        )
    return {
        "week": week.label,
        "start": week.start.isoformat(),
        "end": week.end.isoformat(),
        "enough_data": report.enough_data,
        "html": str(report.html),
        "pdf": str(report.pdf),
        "mailed_to": len(report.mailed_to),
        "not_mailed": report.mail_skipped,
    }


def source_freshness_task(context: dict[str, Any]) -> dict[str, Any]:
    """Run ``dbt source freshness`` and compute each platform's "data as of"; record both in
    the audit (published with the marts). Stale data is reported for the run's alert, once
    a day per platform, and never fails the task: the build goes on with what there is.

    Before the first platform data (a new deployment, whose ``survey_ingest`` ends before
    its first ``platform_metrics``): skipped, and the build with it, saying so. The gate
    would fail every daily fact as empty: a red run and an alert on the first day."""
    from airflow.sdk.exceptions import AirflowSkipException

    from social_leadership.orchestration import refuse_unknown_params
    from social_leadership.progress import step

    refuse_unknown_params(context)
    step("dbt source freshness: how recent each platform's raw data is")
    from social_leadership.alerts import report_attention
    from social_leadership.domain import PLATFORMS
    from social_leadership.freshness import check_freshness, platform_data_loaded

    settings = task_settings()
    settings.ensure_dirs()
    if not platform_data_loaded(settings):
        raise AirflowSkipException(
            "no platform data loaded yet (raw.platform_metrics and raw.imported_metrics are "
            "empty): nothing to build or publish; platform_metrics' first load starts the build"
        )
    facts = check_freshness(settings, _run_id(context), list(PLATFORMS))
    for fact in facts:
        log.warning("%s", fact.what)
    report_attention(facts)
    return {"needs_attention": len(facts)}
