"""What the weekly report shows, read from the serving copy for one week.

Every query is bounded by the report's own dates (the week, the 52 week-ends of the
trend lines, the days the 7- and 28-day changes compare), never by the whole history, so
the report costs the same on 30 days or 3 years of data (``bench report_growth``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

# The countries the founding question compares: always shown when tracked at all.
FOCUS_COUNTRIES = ("DE", "US")
TREND_WEEKS = 52
# A report needs the week's last day with data and one earlier day of the same week.
MIN_DAYS_OF_DATA = 2
# How far back "data as of" looks for a platform's last observed counts.
DATA_AS_OF_LOOKBACK_DAYS = 90


@dataclass(frozen=True)
class ReportWeek:
    """The seven days a report covers, ``end`` included; named by ``end``'s ISO week."""

    end: date

    @classmethod
    def ending_before(cls, moment: datetime) -> ReportWeek:
        """The week of a run whose data interval ends at ``moment``: the 7 whole days before
        ``moment``'s day (a Monday 06:00 run reports Monday to Sunday)."""
        return cls(moment.date() - timedelta(days=1))

    @property
    def start(self) -> date:
        return self.end - timedelta(days=6)

    @property
    def label(self) -> str:
        year, week, _ = self.end.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Expectation:
    """A published survey figure: the share of the public expecting something of CEOs."""

    country_code: str
    question_id: str
    question_text: str
    share_pct: float
    ci_lower_pct: float | None
    ci_upper_pct: float | None
    is_country_figure: bool
    wave: int
    source_name: str
    citation: str
    is_synthetic: bool
    ref: int = 0


@dataclass(frozen=True)
class CountryHeadline:
    country_code: str
    country_name: str
    executives_tracked: int
    executives_active: int
    active_share_pct: float
    active_share_change_pts: float | None
    median_followers: float | None
    synthetic_executives_pct: float
    expectation: Expectation | None


@dataclass(frozen=True)
class Mover:
    platform: str
    name: str
    company: str
    country_code: str
    followers: int | None
    change: int
    # Why the change may not be two observed counts: "carried" / "imported", or "".
    caveat: str
    is_synthetic: bool


@dataclass(frozen=True)
class PlatformMovers:
    platform: str
    executives_7d: list[Mover]
    executives_28d: list[Mover]
    companies_7d: list[Mover]
    companies_28d: list[Mover]


@dataclass(frozen=True)
class Coverage:
    platform: str
    platform_name: str
    days_asked: int
    accounts_asked: int
    accounts_ok: int
    accounts_not_found: int
    accounts_suspended: int
    accounts_private: int
    accounts_deferred: int
    accounts_error: int
    data_as_of: date | None
    days_behind: int | None


@dataclass(frozen=True)
class FailedCheck:
    suite: str
    expectation: str
    column: str | None
    is_critical: bool
    runs: int


@dataclass
class WeeklyReportData:
    week: ReportWeek
    data_through: date | None
    days_with_data: int
    min_executives: int
    headline: list[CountryHeadline] = field(default_factory=list)
    focus_expectations: list[Expectation] = field(default_factory=list)
    # (week end, country) -> value, for the 52-week lines.
    trend_active_share: dict[tuple[date, str], float] = field(default_factory=dict)
    trend_median_reach: dict[tuple[date, str], float] = field(default_factory=dict)
    # (country, platform) -> active executives on the platform.
    platform_mix: dict[tuple[str, str], int] = field(default_factory=dict)
    movers: list[PlatformMovers] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    files_quarantined: int | None = None
    rows_quarantined: int | None = None
    checks_passed: int | None = None
    checks_failed: int | None = None
    failed_checks: list[FailedCheck] = field(default_factory=list)
    synthetic_parts: list[str] = field(default_factory=list)

    @property
    def enough_data(self) -> bool:
        return self.data_through is not None and self.days_with_data >= MIN_DAYS_OF_DATA

    @property
    def countries(self) -> list[str]:
        return [row.country_code for row in self.headline]

    @property
    def sources(self) -> list[Expectation]:
        """Every survey figure the report shows, once, in reference order."""
        seen: dict[int, Expectation] = {}
        for figure in [*self.focus_expectations, *(h.expectation for h in self.headline)]:
            if figure is not None:
                seen.setdefault(figure.ref, figure)
        return [seen[ref] for ref in sorted(seen)]


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{schema}.{table}"
        for schema, table in con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database()"
        ).fetchall()
    }


def collect(
    con: duckdb.DuckDBPyConnection, week: ReportWeek, *, min_executives: int, movers: int
) -> WeeklyReportData:
    """Read the report's figures for ``week`` from a connection on the serving copy."""
    tables = _tables(con)
    if "marts.fct_reach_by_country_sector_all_platforms_daily" not in tables:
        return WeeklyReportData(week, None, 0, min_executives)
    through, days = con.execute(
        "select max(metric_date), count(distinct metric_date) "
        "from marts.fct_reach_by_country_sector_all_platforms_daily "
        "where metric_date between ? and ?",
        [week.end - timedelta(days=7), week.end],
    ).fetchone()
    report = WeeklyReportData(week, through, int(days), min_executives)
    if not report.enough_data or through < week.start:
        report.data_through = through if through and through >= week.start else None
        return report
    _headline(con, report)
    _trends(con, report)
    _platform_mix(con, report)
    _movers(con, report, movers)
    _coverage(con, report, tables)
    _run_history(con, report, tables)
    return report


def _headline(con: duckdb.DuckDBPyConnection, report: WeeklyReportData) -> None:
    day = report.data_through
    assert day is not None
    shares = {
        (row[0], row[1]): row[2:]
        for row in con.execute(
            """
            select country_code, metric_date, sum(executives_tracked), sum(executives_active),
                sum(synthetic_executives_pct * executives_tracked)
                    / nullif(sum(executives_tracked), 0)
            from marts.fct_reach_by_country_sector_all_platforms_daily
            where metric_date in (?, ?)
            group by all
            """,
            [day, day - timedelta(days=7)],
        ).fetchall()
    }
    medians = dict(
        con.execute(
            """
            with reach as (
                select executive_id, any_value(country_code) as country_code,
                    sum(followers) as followers
                from marts.fct_executive_reach_daily
                where metric_date = ? and followers is not null
                group by executive_id
            )
            select country_code, median(followers) from reach group by country_code
            """,
            [day],
        ).fetchall()
    )
    names = dict(con.execute("select country_code, country_name from marts.dim_country").fetchall())
    expectations = _expectations(con, day.year)
    primary = {
        row[0]: row[1]
        for row in con.execute(
            "select country_code, expectation_question_id from marts.fct_country_comparison_yearly "
            "where calendar_year = ? and expectation_question_id is not null",
            [day.year],
        ).fetchall()
    }
    refs: dict[tuple[str, str, int, str], int] = {}

    def referenced(figure: Expectation) -> Expectation:
        key = (figure.source_name, figure.question_id, figure.wave, figure.citation)
        ref = refs.setdefault(key, len(refs) + 1)
        return Expectation(**{**figure.__dict__, "ref": ref})

    for country in FOCUS_COUNTRIES:
        for figure in expectations.get(country, []):
            report.focus_expectations.append(referenced(figure))
    rows = []
    for (country, metric_date), (tracked, active, synthetic_pct) in shares.items():
        if metric_date != day or not tracked:
            continue
        if tracked < report.min_executives and country not in FOCUS_COUNTRIES:
            continue
        before = shares.get((country, day - timedelta(days=7)))
        share = 100.0 * active / tracked
        change = share - 100.0 * before[1] / before[0] if before and before[0] else None
        figure = next(
            (f for f in expectations.get(country, []) if f.question_id == primary.get(country)),
            None,
        )
        rows.append(
            CountryHeadline(
                country,
                names.get(country, country),
                int(tracked),
                int(active),
                share,
                change,
                medians.get(country),
                float(synthetic_pct or 0.0),
                referenced(figure) if figure else None,
            )
        )
    focus_first = {code: index for index, code in enumerate(FOCUS_COUNTRIES)}
    rows.sort(
        key=lambda r: (
            focus_first.get(r.country_code, len(FOCUS_COUNTRIES)),
            -r.executives_tracked,
            r.country_code,
        )
    )
    report.headline = rows
    if any(row.synthetic_executives_pct > 0 for row in rows):
        report.synthetic_parts.append("executives of the synthetic demo roster")
    if any(figure.is_synthetic for figure in report.sources):
        report.synthetic_parts.append("synthetic survey figures")


def _expectations(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, list[Expectation]]:
    found: dict[str, list[Expectation]] = defaultdict(list)
    for row in con.execute(
        """
        select country_code, question_id, question_text, expectation_share_pct, ci_lower_pct,
            ci_upper_pct, is_country_figure, wave, survey_source_name, citation, is_synthetic
        from marts.fct_country_expectations_yearly
        where calendar_year = ? and has_figure
        order by country_code, question_id
        """,
        [year],
    ).fetchall():
        found[row[0]].append(Expectation(*row))
    return found


def trend_days(through: date) -> list[date]:
    """The 52 week-ends of the trend lines: ``through`` and the same weekday before it."""
    return [through - timedelta(weeks=weeks) for weeks in range(TREND_WEEKS - 1, -1, -1)]


def _trends(con: duckdb.DuckDBPyConnection, report: WeeklyReportData) -> None:
    assert report.data_through is not None
    days = trend_days(report.data_through)
    countries = report.countries
    for day, country, share in con.execute(
        """
        select metric_date, country_code,
            100.0 * sum(executives_active) / nullif(sum(executives_tracked), 0)
        from marts.fct_reach_by_country_sector_all_platforms_daily
        where metric_date in ? and country_code in ?
        group by all
        """,
        [days, countries],
    ).fetchall():
        if share is not None:
            report.trend_active_share[(day, country)] = float(share)
    for day, country, median in con.execute(
        """
        with reach as (
            select metric_date, executive_id, any_value(country_code) as country_code,
                sum(followers) as followers
            from marts.fct_executive_reach_daily
            where metric_date in ? and followers is not null and country_code in ?
            group by metric_date, executive_id
        )
        select metric_date, country_code, median(followers) from reach group by all
        """,
        [days, countries],
    ).fetchall():
        report.trend_median_reach[(day, country)] = float(median)


def _platform_mix(con: duckdb.DuckDBPyConnection, report: WeeklyReportData) -> None:
    for country, platform, active in con.execute(
        """
        select country_code, platform, sum(executives_active)
        from marts.fct_reach_by_country_sector_daily
        where metric_date = ? and country_code in ?
        group by all
        having sum(executives_active) > 0
        """,
        [report.data_through, report.countries],
    ).fetchall():
        report.platform_mix[(country, platform)] = int(active)


def _caveat(
    end_observed: bool, end_source: str, start_observed: bool | None, start_source: str | None
) -> str:
    if not end_observed or start_observed is False:
        return "carried"
    if "import" in (end_source, start_source):
        return "imported"
    return ""


def _top(items: list[Mover], limit: int) -> list[Mover]:
    """The ``limit`` largest changes, gains and losses alike; ties by name."""
    return sorted(items, key=lambda m: (-abs(m.change), m.name, m.company))[:limit]


def _movers(con: duckdb.DuckDBPyConnection, report: WeeklyReportData, limit: int) -> None:
    day = report.data_through
    assert day is not None
    rows = con.execute(
        """
        with days as (
            select executive_id, platform, metric_date, followers, is_observed, source,
                followers_change_7d, followers_change_28d, company_name, country_code,
                executive_version_id
            from marts.fct_executive_reach_daily
            where metric_date in (?, ?, ?)
        ),
        latest as (select * from days where metric_date = ?),
        week_before as (select * from days where metric_date = ?),
        month_before as (select * from days where metric_date = ?)
        select l.platform, e.full_name, l.company_name, l.country_code, l.followers,
            l.followers_change_7d, l.followers_change_28d, l.is_observed, l.source,
            w.is_observed, w.source, m.is_observed, m.source, e.is_synthetic
        from latest as l
        inner join marts.dim_executive as e on l.executive_version_id = e.executive_version_id
        left join week_before as w on l.executive_id = w.executive_id and l.platform = w.platform
        left join month_before as m on l.executive_id = m.executive_id and l.platform = m.platform
        order by l.platform, e.full_name, l.company_name
        """,
        [
            day,
            day - timedelta(days=7),
            day - timedelta(days=28),
            day,
            day - timedelta(days=7),
            day - timedelta(days=28),
        ],
    ).fetchall()
    by_platform: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_platform[row[0]].append(row)
    synthetic = False
    for platform in sorted(by_platform):
        executives = {7: [], 28: []}
        companies: dict[int, dict[str, list]] = {7: {}, 28: {}}
        for (
            _,
            name,
            company,
            country,
            followers,
            c7,
            c28,
            obs,
            src,
            obs7,
            src7,
            obs28,
            src28,
            is_synthetic,
        ) in by_platform[platform]:
            for days, change, start_obs, start_src in (
                (7, c7, obs7, src7),
                (28, c28, obs28, src28),
            ):
                if change is None:
                    continue
                caveat = _caveat(obs, src, start_obs, start_src)
                executives[days].append(
                    Mover(
                        platform,
                        name,
                        company,
                        country,
                        followers,
                        int(change),
                        caveat,
                        bool(is_synthetic),
                    )
                )
                total = companies[days].setdefault(company, [0, 0, set(), country, False])
                total[0] += int(change)
                total[1] += followers or 0
                if caveat:
                    total[2].add(caveat)
                total[4] = total[4] or bool(is_synthetic)

        company_movers = {
            days: [
                Mover(
                    platform,
                    company,
                    company,
                    country,
                    followers,
                    change,
                    "/".join(sorted(caveats)),
                    is_synthetic,
                )
                for company, (change, followers, caveats, country, is_synthetic) in companies[
                    days
                ].items()
            ]
            for days in (7, 28)
        }
        entry = PlatformMovers(
            platform,
            _top(executives[7], limit),
            _top(executives[28], limit),
            _top(company_movers[7], limit),
            _top(company_movers[28], limit),
        )
        if any(entry.executives_7d + entry.executives_28d):
            report.movers.append(entry)
            synthetic = synthetic or any(
                m.is_synthetic for m in entry.executives_7d + entry.executives_28d
            )
    if synthetic and "executives of the synthetic demo roster" not in report.synthetic_parts:
        report.synthetic_parts.append("executives of the synthetic demo roster")


def _coverage(con: duckdb.DuckDBPyConnection, report: WeeklyReportData, tables: set[str]) -> None:
    day = report.data_through
    assert day is not None
    as_of = dict(
        con.execute(
            "select platform, max(metric_date) from marts.fct_executive_reach_daily "
            "where metric_date between ? and ? and is_observed group by platform",
            [day - timedelta(days=DATA_AS_OF_LOOKBACK_DAYS), report.week.end],
        ).fetchall()
    )
    answered: dict[str, tuple] = {}
    synthetic = False
    if "marts.fct_platform_coverage_daily" in tables:
        for row in con.execute(
            """
            select platform, count(*) over (partition by platform), accounts_asked, accounts_ok,
                accounts_not_found, accounts_suspended, accounts_private, accounts_deferred,
                accounts_error, bool_or(is_synthetic) over (partition by platform)
            from marts.fct_platform_coverage_daily
            where metric_date between ? and ?
            qualify row_number() over (partition by platform order by metric_date desc) = 1
            """,
            [report.week.start, report.week.end],
        ).fetchall():
            answered[row[0]] = row[1:9]
            synthetic = synthetic or bool(row[9])
    for platform, name in con.execute(
        "select platform, platform_name from marts.dim_platform order by platform"
    ).fetchall():
        counts = answered.get(platform, (0, 0, 0, 0, 0, 0, 0, 0))
        latest = as_of.get(platform)
        report.coverage.append(
            Coverage(
                platform,
                name,
                *(int(value) for value in counts),
                latest,
                (report.week.end - latest).days if latest else None,
            )
        )
    if synthetic:
        report.synthetic_parts.append("synthetic answers of the sandbox platform API")


def _run_history(
    con: duckdb.DuckDBPyConnection, report: WeeklyReportData, tables: set[str]
) -> None:
    bounds = [report.week.start, report.week.end]
    if "audit.runs" in tables:
        files, rows = con.execute(
            "select coalesce(sum(files_quarantined), 0), coalesce(sum(rows_quarantined), 0) "
            "from audit.runs where cast(recorded_at as date) between ? and ?",
            bounds,
        ).fetchone()
        report.files_quarantined, report.rows_quarantined = int(files), int(rows)
    if "audit.quality_results" in tables:
        passed, failed = con.execute(
            "select count(*) filter (where success), count(*) filter (where not success) "
            "from audit.quality_results where cast(checked_at as date) between ? and ?",
            bounds,
        ).fetchone()
        report.checks_passed, report.checks_failed = int(passed), int(failed)
        report.failed_checks = [
            FailedCheck(*row)
            for row in con.execute(
                """
                select suite_name, expectation, column_name, bool_or(is_critical),
                    count(distinct run_id)
                from audit.quality_results
                where not success and cast(checked_at as date) between ? and ?
                group by suite_name, expectation, column_name
                order by 4 desc, 5 desc, 1, 2, 3
                """,
                bounds,
            ).fetchall()
        ]
