"""A short, human-readable account of the last pipeline run (printed by ``make run``)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from social_leadership.docs_site import DBT_SITE, GX_SITE, current_docs
from social_leadership.domain import PLATFORMS
from social_leadership.duckdb_limits import open_duckdb
from social_leadership.formatting import (
    compact_count,
    counted,
    display_width,
    shortened,
    whole_percent,
)
from social_leadership.reports.data import FOCUS_COUNTRIES
from social_leadership.serving import CURRENT_LINK
from social_leadership.settings import Settings
from social_leadership.warehouse import as_upgraded
from social_leadership.warehouse_backend import describe_working, open_working


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


@contextmanager
def _open_serving(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The serving copy, read-only, or None before the first publish."""
    if not settings.serving_path.exists():
        yield None
        return
    with open_duckdb(settings, settings.serving_path, read_only=True) as serving:
        yield serving


def aligned_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, right: Collection[int] = ()
) -> list[str]:
    """Header and rows as lines indented by two spaces, each column as wide as its widest
    cell (so any platform, country or name lines up); the columns in ``right`` (numbers)
    are right-aligned. The last column is not padded."""
    table = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    # By the columns a cell takes on a terminal: a name in Chinese shifted the columns after.
    widths = [max(display_width(line[column]) for line in table) for column in range(len(header))]
    lines = []
    for line in table:
        pads = [
            " " * (width - display_width(cell)) for cell, width in zip(line, widths, strict=True)
        ]
        cells = [
            pad + cell if column in right else cell + pad
            for column, (cell, pad) in enumerate(zip(line, pads, strict=True))
        ]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def country_comparison_lines(
    con: duckdb.DuckDBPyConnection, *, max_countries: int = 12
) -> list[str]:
    """The latest year of marts.fct_country_comparison_yearly as a short table: the
    ``max_countries`` tracking the most leaders, Germany and the US always among them (the
    comparison the warehouse is for; a roster of many countries left the US out), and how
    many more the mart holds."""
    every = con.execute(
        """
        select country_code, calendar_year, executives_tracked, active_share_pct,
            median_followers, synthetic_executives_pct, expectation_share_pct,
            is_country_expectation, expectation_wave, is_synthetic_expectation
        from marts.fct_country_comparison_yearly
        where calendar_year = (select max(calendar_year) from marts.fct_country_comparison_yearly)
        order by executives_tracked desc, country_code
        """
    ).fetchall()
    if not every:
        return []
    focus = [row for row in every if row[0] in FOCUS_COUNTRIES]
    others = [row for row in every if row[0] not in FOCUS_COUNTRIES]
    shown = {row[0] for row in focus + others[: max(max_countries - len(focus), 0)]}
    rows = [row for row in every if row[0] in shown]
    table = []
    for row in rows:
        country, _year, tracked, share, median, synthetic_pct = row[:6]
        expected, is_country, wave, synthetic = row[6:]
        if expected is None:
            expectation = "-"
        else:
            scope = "own" if is_country else "global"
            label = ", synthetic" if synthetic else ""
            expectation = f"{whole_percent(expected)} ({scope} {wave}{label})"
        table.append(
            (
                country,
                tracked,
                whole_percent(share),
                compact_count(median),
                whole_percent(synthetic_pct),
                expectation,
            )
        )
    header = ("country", "tracked", "active", "median reach", "synthetic", "expect CEOs")
    lines = [
        f"Country comparison {rows[0][1]} (leaders active on social platforms vs. public "
        "expectation that CEOs take a clear stand):",
        *aligned_table(header, table, right={1, 2, 3, 4}),
    ]
    if hidden := len(every) - len(rows):
        lines.append(
            f"  ... and {hidden} more {'country' if hidden == 1 else 'countries'} "
            "(marts.fct_country_comparison_yearly)"
        )
    return lines


def platform_load_lines(con: duckdb.DuckDBPyConnection, *, message_limit: int = 300) -> list[str]:
    """The load of each platform's newest day (its latest, if several); failed and not
    configured platforms named first."""
    # Each platform's days, newest first, each day's last load (a rerun replaces a try). A
    # run without the platform's connection sends nothing and changes nothing: a load of
    # the day before it is the day's, and the run after it is said (the Airflow UI's
    # scheduler without the connections `make run` had said every platform not configured
    # under the run line of the run that loaded them).
    days = con.execute(
        """
        select platform, snapshot_date, status, accounts_requested, accounts_loaded,
            accounts_missing, requests_sent, message, finished_at,
            max(finished_at) filter (where status = 'not_configured') over (
                partition by platform, snapshot_date
            ) as unconfigured_at
        from audit.platform_loads
        qualify row_number() over (
            partition by platform, snapshot_date
            order by status = 'not_configured', finished_at desc
        ) = 1
        order by platform, status = 'skipped_backfill', snapshot_date desc
        """
    ).fetchall()
    # The newest day's: a backfill run after today's (skipped, or loading imports) hid
    # today's loads. A day skipped (a run for a day not its own: a past one, or tomorrow)
    # is none, unless the platform has no other: a run for tomorrow hid today's failure.
    newest = {row[0]: row for row in reversed(days)}
    loads = [newest[platform][:8] for platform in sorted(newest)]
    lines = ["Platform loads (newest day per platform):"]
    # Failed: the newest day's load, or one that failed after it (a rerun of an earlier
    # day whose token had expired).
    failed = [
        (platform, day, message)
        for platform, day, status, *_, message, finished_at, _ in days
        if status == "failed" and (day == newest[platform][1] or finished_at > newest[platform][8])
    ]
    not_configured = [row[0] for row in loads if row[2] == "not_configured"]
    unconfigured_since = [
        platform
        for platform, (_, _, status, *_, finished_at, unconfigured_at) in sorted(newest.items())
        if status != "not_configured" and unconfigured_at and unconfigured_at > finished_at
    ]
    for platform, day, message in failed:
        reason = _shortened(message or "no reason recorded", message_limit)
        lines.append(f"  FAILED: {platform} on {day}: {reason}")
    if not_configured:
        named = ", ".join(f"{p} (connection slw_{p})" for p in not_configured)
        lines.append(f"  Not configured (no connection, nothing sent): {named}")
    if unconfigured_since:
        named = ", ".join(f"{p} (connection slw_{p})" for p in unconfigured_since)
        lines.append(
            "  Not configured in a later run of the same day (no connection, nothing sent; "
            f"the day's earlier load below stands): {named}"
        )
    table = [
        (platform, day, status, loaded, missing, requests, requested)
        for platform, day, status, requested, loaded, missing, requests, _ in loads
        if status != "not_configured"
    ]
    if table:
        header = (
            *("platform", "day", "status", "accounts loaded", "missing/deferred"),
            *("requests", "for accounts"),
        )
        lines.extend(aligned_table(header, table, right={3, 4, 5, 6}))
    # Loaded with nothing asked read as a platform that answered nobody.
    unasked = [row[0] for row in loads if row[2] == "loaded" and not row[3]]
    if unasked:
        lines.append(
            f"  Nothing asked of {', '.join(unasked)}: the roster gives no account there that "
            "its API answers for (accounts it cannot ask, such as LinkedIn members or "
            "Facebook profiles, come in by history import only)"
        )
    return lines


def undelivered_alert_lines(path: Path, *, newest: int = 3) -> list[str]:
    """The newest alerts a channel could not deliver (alerts.record_undelivered), if any."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    if not records:
        return []
    lines = [f"Alerts not delivered: {len(records)} (newest {min(newest, len(records))}; {path}):"]
    for record in records[-newest:][::-1]:
        failures = "; ".join(str(f) for f in record.get("failures") or [])
        lines.append(
            f"  {record.get('at', '?')} {record.get('dag_id', '?')} {record.get('run_id', '?')} "
            f"({record.get('state', '?')}): {failures}"
        )
    return lines


def stale_lines(
    con: duckdb.DuckDBPyConnection, stale_after_days: int, today: date | None = None
) -> list[str]:
    """A line per platform whose newest counts are older than ``stale_after_days`` (as
    warehouse_build's freshness check judges them): the top reach below shows its old
    figures as if current."""
    from social_leadership.freshness import platform_data_as_of

    day = today or datetime.now(UTC).date()
    rows = platform_data_as_of(con, list(PLATFORMS), day, stale_after_days)
    return [
        f"  STALE: {row.platform}: newest counts of {row.data_as_of}, {row.days_behind} days "
        f"old (SLW_STALE_PLATFORM_DAYS={stale_after_days}): the figures below are of that day"
        for row in rows
        if row.is_stale
    ]


def _shortened(message: str, limit: int) -> str:
    """``message`` at most about ``limit`` characters (:func:`shortened`), saying where the
    whole of it is."""
    short = shortened(message, limit)
    return short if short == message else f"{short} (whole message: audit.platform_loads)"


# What the summary's synthetic notice names, by where it is flagged: the roster's
# executives, the sandbox API's counts, the generated history imports.
SYNTHETIC_PARTS = (
    "executives of the demo roster",
    "counts of the sandbox API",
    "history imports of the demo",
)


# The columns of audit.runs the summary reads, in this order.
_RUN_COLUMNS = (
    "dag_id varchar, run_id varchar, outcome varchar, failed_tasks varchar, "
    "recorded_at timestamptz, files_quarantined bigint, rows_quarantined bigint, "
    "logical_date timestamptz"
)


def _runs_relation(con: duckdb.DuckDBPyConnection, data_dir: Path | None) -> str:
    """SQL naming ``audit.runs`` with the rows kept beside the warehouse when it could not
    take them (:func:`~social_leadership.run_summary.keep_unrecorded`) and no later try
    recorded: a build failed on a held warehouse was otherwise missing, the run before it
    shown green."""
    from social_leadership.run_summary import unrecorded

    runs = as_upgraded(con, "audit.runs")
    kept = unrecorded(data_dir) if data_dir is not None else []
    if not kept:
        return runs
    con.execute(f"create or replace temp table unrecorded_runs ({_RUN_COLUMNS})")
    con.executemany(
        "insert into unrecorded_runs values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                s.dag_id,
                s.run_id,
                s.outcome,
                s.failed_tasks or None,
                recorded_at,
                s.files_quarantined,
                s.rows_quarantined,
                s.logical_date,
            ]
            for s, recorded_at, _ in kept
        ],
    )
    names = ", ".join(column.split()[0] for column in _RUN_COLUMNS.split(", "))

    # A kept row newer than its run's row stands for it as the next run records it
    # (run_summary.record_unrecorded): a kept summary whole, a kept failure (a green run
    # interrupted after its summary) with the recorded row's figures.
    def kept_or_recorded(column: str) -> str:
        return f"case when u.outcome = 'success' then u.{column} else r.{column} end"

    return f"""(
        select r.dag_id, r.run_id, coalesce(u.outcome, r.outcome) as outcome,
            case when u.outcome = 'success' then u.failed_tasks
                else coalesce(u.failed_tasks, r.failed_tasks) end as failed_tasks,
            coalesce(u.recorded_at, r.recorded_at) as recorded_at,
            {kept_or_recorded("files_quarantined")} as files_quarantined,
            {kept_or_recorded("rows_quarantined")} as rows_quarantined,
            case when u.outcome = 'success' then u.logical_date
                else coalesce(r.logical_date, u.logical_date) end as logical_date
        from {runs} as r
        left join unrecorded_runs as u
            on u.dag_id = r.dag_id and u.run_id = r.run_id and u.recorded_at > r.recorded_at
        union all
        select {names} from unrecorded_runs as u
        where not exists (
            select 1 from audit.runs as r where r.dag_id = u.dag_id and r.run_id = u.run_id
        )
    )"""


def run_lines(
    con: duckdb.DuckDBPyConnection, data_dir: Path | None = None
) -> tuple[list[str], bool]:
    """The latest run of each DAG (``audit.runs``): the run of its newest logical date (not
    one still to come when it ran), and after it any run of another date that failed since,
    failed ones first with their failed tasks; and whether any of them failed. (By the time
    recorded alone, a backfill of a past day after today's failed run hid the failure. Read
    from the platform loads alone, a failed run read as loaded: a roster refused whole fails
    the run, and the loads before stay.)"""
    from social_leadership.run_summary import RECORDED_DAGS

    rows = con.execute(
        f"""
        with each_date as (
            -- A date's latest run: a rerun that mended a day replaces its failure.
            select dag_id, run_id, outcome, failed_tasks, recorded_at, files_quarantined,
                rows_quarantined, coalesce(logical_date, recorded_at) as run_for,
                logical_date is not null as has_logical_date,
                logical_date > recorded_at as is_future
            from {_runs_relation(con, data_dir)} as runs
            -- An interrupted weekly_report's row, which earlier versions wrote and no green
            -- run of it replaces.
            where dag_id in ({", ".join(f"'{d}'" for d in sorted(RECORDED_DAGS))})
            qualify row_number() over (
                partition by dag_id, coalesce(logical_date, recorded_at)
                order by recorded_at desc
            ) = 1
        ),
        newest as (
            -- A row of an earlier version (no logical date) is older than any that has one;
            -- a run for a date still to come when it ran (slw dags test for tomorrow, which
            -- observes nothing) is no newer than any other.
            select *, row_number() over (
                partition by dag_id
                order by is_future is true, has_logical_date desc, run_for desc,
                    recorded_at desc
            ) as position
            from each_date
        )
        select newest.dag_id, newest.run_id, newest.outcome, newest.failed_tasks,
            newest.recorded_at, newest.position > 1 as is_other_date,
            case when newest.has_logical_date then newest.run_for end as logical_date,
            newest.files_quarantined, newest.rows_quarantined
        from newest
        inner join newest as shown on shown.dag_id = newest.dag_id and shown.position = 1
        where newest.position = 1
            -- A failure since, or one of an earlier version (no logical date, so ranked
            -- below any with one) recorded on a later day than the shown run was for.
            or (
                newest.outcome != 'success'
                and (
                    newest.recorded_at > shown.recorded_at
                    or (
                        not newest.has_logical_date
                        and cast(timezone('UTC', newest.run_for) as date)
                        > cast(timezone('UTC', shown.run_for) as date)
                    )
                )
            )
        order by newest.outcome = 'success', newest.dag_id, newest.position
        """
    ).fetchall()
    if not rows:
        return [], False
    lines = ["Latest run per DAG writing the warehouse (weekly_report: slw dags list-runs):"]
    for dag_id, run_id, outcome, failed_tasks, recorded_at, is_other_date, day, *kept in rows:
        # DuckDB gives a timestamptz in the machine's zone: said in UTC, as labelled.
        when = f"{recorded_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if recorded_at else "no time"
        # The day the run was for: a run id names when it was started, not its date.
        run_for = f" for {day.astimezone(UTC):%Y-%m-%d}" if day else ""
        # What a green run kept out (its alert said so): the summary said only "success".
        files, rows_out = kept
        quarantined = [
            counted(files, "file") if files else "",
            counted(rows_out, "row") if rows_out else "",
        ]
        said = " and ".join(part for part in quarantined if part)
        out = f"; quarantined: {said}" if said else ""
        if outcome == "success":
            lines.append(f"  {dag_id}: success{run_for} ({run_id}, {when}){out}")
        else:
            named = f"{dag_id}, another date's run since" if is_other_date else dag_id
            named += f",{run_for}" if is_other_date and run_for else run_for
            tasks = f": failed tasks {failed_tasks}" if failed_tasks else ""
            lines.append(f"  FAILED: {named} ({run_id}, {when}){tasks}{out}")
    return lines, any(outcome != "success" for _, _, outcome, *_ in rows)


def _publication(serving: duckdb.DuckDBPyConnection) -> str:
    """Which publication the serving marts are, when it was made and its last day: a build
    failed since leaves them as they were (the run's line above says FAILED), and this says
    how old they are."""
    if not _table_exists(serving, "marts", "publication"):
        return ""
    row = serving.execute(
        """
        select publication.publication_id, publication.published_at,
            (select max(metric_date) from marts.fct_executive_reach_daily)
        from marts.publication as publication
        order by publication.publication_id desc
        limit 1
        """
    ).fetchone()
    if row is None:
        return ""
    number, published_at, through = row
    made = published_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f" (publication {number} of {made}, data through {through})"


def top_reach_lines(rows: Sequence[tuple[str, str, str, float, str]]) -> list[str]:
    """(country, executive, company, followers, platforms) rows, ordered by country, as a
    table naming each country once."""
    table = []
    current = None
    for country, executive, company, followers, platforms in rows:
        table.append(
            (
                country if country != current else "",
                executive,
                company[:26],
                compact_count(followers),
                f"({platforms})",
            )
        )
        current = country
    header = ("country", "executive", "company", "followers", "platforms")
    return aligned_table(header, table, right={3})


def docs_lines(settings: Settings) -> list[str]:
    """Where the docs of the last publish are (``make docs`` serves them)."""
    current = current_docs(settings)
    pages = (
        ("dbt docs", current / DBT_SITE / "index.html"),
        ("GX docs", current / GX_SITE / "index.html"),
    )
    return [
        f"  {label:<10} {page}" + ("" if page.is_file() else "  (not generated yet)")
        for label, page in pages
    ]


def build_summary(settings: Settings, *, top_per_country: int = 3) -> str:
    return summarise(settings, top_per_country=top_per_country)[0]


def summarise(settings: Settings, *, top_per_country: int = 3) -> tuple[str, bool]:
    """The summary's text, and whether the latest run of any DAG failed."""
    lines: list[str] = []
    with open_working(settings, read_only=True) as con:
        runs, failed = run_lines(con, settings.data_dir)
        lines.extend(runs)
        lines.extend(platform_load_lines(con))
        lines.extend(stale_lines(con, settings.stale_platform_days))
        lines.extend(undelivered_alert_lines(settings.undelivered_alerts_path))
        raw_counts = con.execute(
            """
            select
                (select count(*) from raw.platform_metrics),
                (select count(*) from raw.imported_metrics),
                (select count(distinct executive_id) from raw.roster_executives),
                (select count(*) from raw.survey_results),
                (select count(*) from raw.survey_respondent_answers)
            """
        ).fetchone()
        assert raw_counts is not None
        # What is synthetic, each said: counts from another API than the sandbox were
        # called sandbox counts whenever the roster held a synthetic executive.
        synthetic_row = con.execute(
            """
            select
                (select count(*) filter (where is_synthetic) from raw.roster_executives),
                (select count(*) filter (where is_synthetic) from raw.platform_metrics),
                (select count(*) filter (where is_synthetic) from raw.history_imports)
            """
        ).fetchone()
        assert synthetic_row is not None
        synthetic = [
            part for part, count in zip(SYNTHETIC_PARTS, synthetic_row, strict=True) if count
        ]
        lines.append(
            f"Raw rows: {raw_counts[0]:,} API observations, {raw_counts[1]:,} imported history "
            f"rows, {raw_counts[2]} executives, {raw_counts[3]} published survey figures, "
            f"{raw_counts[4]:,} survey respondents"
        )
        checks = con.execute(
            """
            select count(*) filter (where success), count(*) filter (where not success),
                count(*) filter (where not success and is_critical),
                list(distinct table_name || ' ' || expectation
                    || coalesce(' (' || column_name || ')', ''))
                    filter (where not success and is_critical),
                list(distinct table_name || ' ' || expectation
                    || coalesce(' (' || column_name || ')', ''))
                    filter (where not success and not is_critical)
            from audit.quality_results
            where run_id = (
                select run_id from audit.quality_results order by checked_at desc limit 1
            )
            """
        ).fetchone()
        assert checks is not None
        # The failed ones by name (a warning published all the same reads as a success
        # everywhere else): the first three, critical first.
        failed_checks = sorted(checks[3] or []) + sorted(checks[4] or [])
        named = f": {', '.join(failed_checks[:3])}" + (
            f" and {len(failed_checks) - 3} more" if len(failed_checks) > 3 else ""
        )
        lines.append(
            f"Quality checks (last run): {checks[0]} passed, {checks[1]} failed "
            f"({checks[2]} critical){named if failed_checks else ''}"
        )

    with _open_serving(settings) as serving:
        if serving is None:
            lines.append("Serving marts: not published yet (warehouse_build has not run)")
        elif _table_exists(serving, "marts", "fct_executive_reach_daily"):
            sizes = serving.execute(
                """
                select
                    (select count(*) from marts.fct_executive_reach_daily),
                    (select count(*) from marts.fct_reach_by_country_sector_daily)
                """
            ).fetchone()
            assert sizes is not None
            lines.append(
                f"Serving marts: fct_executive_reach_daily {sizes[0]} rows, "
                f"fct_reach_by_country_sector_daily {sizes[1]} rows{_publication(serving)}"
            )
            top = serving.execute(
                """
                with latest as (
                    select max(metric_date) as metric_date from marts.fct_executive_reach_daily
                ),
                reach as (
                    select f.executive_id, f.country_code, f.company_name, e.full_name,
                        sum(f.followers) as followers,
                        string_agg(f.platform, '+' order by f.platform) as platforms
                    from marts.fct_executive_reach_daily as f
                    inner join latest on f.metric_date = latest.metric_date
                    inner join marts.dim_executive as e
                        on f.executive_version_id = e.executive_version_id
                    where f.followers is not null
                    group by all
                )
                select country_code, full_name, company_name, followers, platforms
                from reach
                qualify row_number() over (
                    partition by country_code order by followers desc, executive_id
                ) <= ?
                order by country_code, followers desc
                """,
                [top_per_country],
            ).fetchall()
            lines.append(f"Top executives by reach per country (top {top_per_country}):")
            lines.extend(top_reach_lines(top))
            if _table_exists(serving, "marts", "fct_country_comparison_yearly"):
                lines.extend(country_comparison_lines(serving))
    if synthetic:
        lines.append(
            f"SYNTHETIC DEMO DATA: {', '.join(synthetic)}: generated, not real (README, "
            '"The warehouse (contracts)": Synthetic data).'
        )
    lines.append("Paths:")
    lines.append(f"  warehouse  {describe_working(settings)}")
    lines.append(f"  lake       {settings.serving_lake_path}  (BI: slw bi, docs/bi.md)")
    lines.append(f"  serving    {settings.serving_path}")
    # The current set only: the folder also holds replaced sets kept for their readers.
    lines.append(f"  parquet    {settings.serving_parquet_dir / CURRENT_LINK}")
    lines.append(f"  logs       {settings.logs_dir}")
    lines.extend(docs_lines(settings))
    return "\n".join(lines), failed
