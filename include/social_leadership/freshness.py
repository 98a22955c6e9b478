"""How fresh the raw data is: ``dbt source freshness`` per raw table and "data as of" per
platform, recorded in ``audit.source_freshness`` and ``audit.platform_data_as_of`` (one row
per table or platform per ``warehouse_build`` run; a rerun of the run replaces its rows)
and published with the marts, so a dashboard can show how current each platform is.

The thresholds of the dbt check live in the raw contract (raw_contract.py, rendered into
the sources YAML). A platform is stale when its newest counts are more than
``SLW_STALE_PLATFORM_DAYS`` old; it is alerted at most once a day
(``audit.stale_platform_alerts``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from social_leadership.dbt_runner import DbtError, run_dbt
from social_leadership.task_payloads import Attention
from social_leadership.warehouse import connect, transaction

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb

    from social_leadership.settings import Settings

log = logging.getLogger(__name__)

TASK_ID = "source_freshness"


@dataclass(frozen=True)
class SourceFreshness:
    source_name: str
    table_name: str
    status: str  # pass | warn | error | runtime error
    max_loaded_at: datetime | None
    age_seconds: float | None
    warn_after: str | None
    error_after: str | None


def _threshold(criteria: dict[str, Any], key: str) -> str | None:
    rule = criteria.get(key) or {}
    if rule.get("count") is None or rule.get("period") is None:
        return None
    return f"{rule['count']} {rule['period']}"


def parse_sources_json(path: Path) -> list[SourceFreshness]:
    """dbt's ``sources.json`` (written by ``dbt source freshness``) as one row per table."""
    results = json.loads(path.read_text(encoding="utf-8")).get("results", [])
    rows = []
    for result in results:
        # unique_id: source.<project>.<source>.<table>
        _, _, source_name, table_name = result["unique_id"].split(".", 3)
        criteria = result.get("criteria") or {}
        loaded = result.get("max_loaded_at")
        # dbt's sentinel for a table without rows: the year 1 ("never" in an alert).
        if loaded and loaded.startswith("0001-"):
            loaded = None
        rows.append(
            SourceFreshness(
                source_name=source_name,
                table_name=table_name,
                status=str(result.get("status")),
                max_loaded_at=datetime.fromisoformat(loaded) if loaded else None,
                age_seconds=result.get("max_loaded_at_time_ago_in_s") if loaded else None,
                warn_after=_threshold(criteria, "warn_after"),
                error_after=_threshold(criteria, "error_after"),
            )
        )
    return sorted(rows, key=lambda row: (row.source_name, row.table_name))


def run_source_freshness(settings: Settings) -> list[SourceFreshness]:
    """Run ``dbt source freshness``; a stale source is a result (dbt exits 1), not a fault."""
    log_path = settings.logs_dir / "dbt-source-freshness.log"
    try:
        run_dbt(["source", "freshness"], settings, log_path=log_path)
    except DbtError:
        # dbt exits non-zero when a source is past error_after, and also when it could not
        # check at all; only the second leaves no sources.json behind.
        if not (settings.dbt_target_dir / "sources.json").exists():
            raise
    return parse_sources_json(settings.dbt_target_dir / "sources.json")


def record_source_freshness(
    con: duckdb.DuckDBPyConnection, run_id: str, rows: list[SourceFreshness], checked_at: datetime
) -> None:
    with transaction(con):
        con.execute("delete from audit.source_freshness where run_id = ?", [run_id])
        for row in rows:
            con.execute(
                "insert into audit.source_freshness values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    row.source_name,
                    row.table_name,
                    row.status,
                    row.max_loaded_at,
                    row.age_seconds,
                    row.warn_after,
                    row.error_after,
                    checked_at,
                ],
            )


@dataclass(frozen=True)
class PlatformDataAsOf:
    platform: str
    data_as_of: date | None
    last_loaded_at: datetime | None
    days_behind: int | None
    is_stale: bool


def platform_data_as_of(
    con: duckdb.DuckDBPyConnection, platforms: list[str], today: date, stale_after_days: int
) -> list[PlatformDataAsOf]:
    """Each platform's newest day with counts, fetched (its last good load) or imported
    (an import-only platform, LinkedIn members', has no other: it was never data as of any
    day, and never stale), and whether it is stale."""
    newest = {
        platform: (as_of, loaded_at)
        for platform, as_of, loaded_at in con.execute(
            """
            with days as (
                select platform, snapshot_date, loaded_at
                from raw.platform_metrics where account_status = 'ok'
                union all
                select metrics.platform, metrics.snapshot_date, imports.loaded_at
                from raw.imported_metrics as metrics
                join raw.history_imports as imports using (import_id)
            )
            select platform, max(snapshot_date), arg_max(loaded_at, snapshot_date)
            from days
            -- A day that has not come (a row written by hand) is no sign of fresh data:
            -- taken, it hid an outage for as long as it stayed.
            where snapshot_date <= $today
            group by platform
            """,
            {"today": today},
        ).fetchall()
    }
    rows = []
    for platform in platforms:
        as_of, loaded_at = newest.get(platform, (None, None))
        behind = (today - as_of).days if as_of is not None else None
        stale = behind is not None and behind > stale_after_days
        rows.append(PlatformDataAsOf(platform, as_of, loaded_at, behind, stale))
    return rows


def record_platform_data_as_of(
    con: duckdb.DuckDBPyConnection, run_id: str, rows: list[PlatformDataAsOf], checked_at: datetime
) -> list[PlatformDataAsOf]:
    """Record the rows; return the stale platforms not yet alerted today (marked alerted)."""
    today = checked_at.astimezone(UTC).date()
    to_alert = []
    with transaction(con):
        con.execute("delete from audit.platform_data_as_of where run_id = ?", [run_id])
        for row in rows:
            con.execute(
                "insert into audit.platform_data_as_of values (?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    row.platform,
                    row.data_as_of,
                    row.last_loaded_at,
                    row.days_behind,
                    row.is_stale,
                    checked_at,
                ],
            )
            if row.is_stale:
                # Not "on conflict ... returning": a DuckLake has neither keys nor RETURNING.
                alerted = con.execute(
                    "select count(*) from audit.stale_platform_alerts "
                    "where platform = ? and alert_date = ?",
                    [row.platform, today],
                ).fetchone()
                if not (alerted and alerted[0]):
                    con.execute(
                        "insert into audit.stale_platform_alerts values (?, ?, ?)",
                        [row.platform, today, run_id],
                    )
                    to_alert.append(row)
    return to_alert


def platform_data_loaded(settings: Settings) -> bool:
    """Whether the warehouse holds any platform data (observed or imported)."""
    with connect(settings.warehouse_path) as con:
        return holds_platform_data(con)


def holds_platform_data(con: duckdb.DuckDBPyConnection) -> bool:
    """:func:`platform_data_loaded` on an open connection."""
    (loaded,) = con.execute(
        "select exists (select 1 from raw.platform_metrics) "
        "or exists (select 1 from raw.imported_metrics)"
    ).fetchone()
    return bool(loaded)


def check_freshness(settings: Settings, run_id: str, platforms: list[str]) -> list[Attention]:
    """Check and record freshness; return what needs attention (stale sources, platforms
    stale and not yet alerted today)."""
    checked_at = datetime.now(UTC)
    sources = run_source_freshness(settings)
    with connect(settings.warehouse_path) as con:
        record_source_freshness(con, run_id, sources, checked_at)
        as_of = platform_data_as_of(con, platforms, checked_at.date(), settings.stale_platform_days)
        newly_stale = record_platform_data_as_of(con, run_id, as_of, checked_at)
    facts = [
        Attention(
            task_id=TASK_ID,
            what=f"source {row.source_name}.{row.table_name} freshness {row.status}: newest "
            f"row loaded {row.max_loaded_at or 'never'} (warn after {row.warn_after}, error "
            f"after {row.error_after})",
            where="audit.source_freshness",
        )
        for row in sources
        if row.status != "pass"
    ]
    return facts + [_stale(row, settings, TASK_ID) for row in newly_stale]


def _stale(row: PlatformDataAsOf, settings: Settings, task_id: str) -> Attention:
    return Attention(
        task_id=task_id,
        what=f"platform {row.platform} is stale: data as of {row.data_as_of} "
        f"({row.days_behind} days, more than SLW_STALE_PLATFORM_DAYS="
        f"{settings.stale_platform_days}); alerted once a day",
        where="audit.platform_data_as_of",
    )


def stale_without_a_build(
    settings: Settings, run_id: str, platforms: list[str], task_id: str
) -> list[Attention]:
    """The platforms newly stale (not alerted today), checked by a platform_metrics run that
    brought no rows: no build follows it, and the build's freshness check was the only one
    (every platform throttled, or none configured, day after day: no alert, while the
    dashboards' data aged)."""
    checked_at = datetime.now(UTC)
    with connect(settings.warehouse_path) as con:
        as_of = platform_data_as_of(con, platforms, checked_at.date(), settings.stale_platform_days)
        newly_stale = record_platform_data_as_of(con, run_id, as_of, checked_at)
    return [_stale(row, settings, task_id) for row in newly_stale]


SERVING_FRESHNESS_TABLES = ("source_freshness", "platform_data_as_of")


def copy_to_serving(con: duckdb.DuckDBPyConnection, working: str, target: str) -> None:
    """Copy the latest freshness check from the attached working warehouse (alias
    ``working``) into schema ``audit`` of the attached serving database ``target``,
    replacing the copy of the previous publication."""
    con.execute(f"create schema if not exists {target}.audit")
    present = {
        row[0]
        for row in con.execute(
            "select table_name from duckdb_tables() "
            "where database_name = ? and schema_name = 'audit'",
            [working],
        ).fetchall()
    }
    for table in SERVING_FRESHNESS_TABLES:
        source = f"{working}.audit.{table}"
        con.execute(f"drop table if exists {target}.audit.{table}")
        if table not in present:
            # A warehouse that never ran a freshness check (before its first build).
            continue
        con.execute(
            f"create table {target}.audit.{table} as select * from {source} "
            f"where checked_at = (select max(checked_at) from {source})"
        )
        con.execute(
            f"comment on table {target}.audit.{table} is 'Latest freshness check of the "
            "warehouse (social_leadership.freshness): data as of per platform and per raw "
            "table.'"
        )
