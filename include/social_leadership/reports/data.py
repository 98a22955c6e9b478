"""What the weekly report shows, read from the serving copy for one week.

Every query is bounded by the report's own dates (the week, the 52 week-ends of the
trend lines, the days the 7- and 28-day changes compare), never by the whole history, so
the report costs the same on 30 days or 3 years of data (``bench report_growth``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import duckdb

# The countries the founding question compares: always shown when tracked at all.
FOCUS_COUNTRIES = ("DE", "US")
TREND_WEEKS = 52
# A report needs the week's last day with data and one earlier day of the same week.
MIN_DAYS_OF_DATA = 2
SYNTHETIC_ROSTER = "executives of the synthetic demo roster"
SYNTHETIC_COUNTS = "synthetic follower counts"
SYNTHETIC_HISTORY = "synthetic follower counts imported as the history of real executives"
SYNTHETIC_API = "synthetic answers of the sandbox platform API"
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

    @property
    def is_iso_week(self) -> bool:
        """Whether the 7 days are an ISO week (Monday to Sunday)."""
        return self.end.isoweekday() == 7

    @property
    def heading(self) -> str:
        """The week as a line names it: its ISO week when it is one (Monday to Sunday),
        ``2026-W49 (2026-11-30 to 2026-12-06)``, else its days, ``of 2026-12-01 to
        2026-12-07`` (as the report's title does: "2026-W50" named 7 days six of which
        are in W49)."""
        if self.is_iso_week:
            return f"{self.label} ({self.start} to {self.end})"
        return f"of {self.start} to {self.end}"

    def folder_name(self, today: date) -> str:
        """The report's folder under ``SLW_REPORTS_DIR``: its ISO week's, unless it is 7
        days that are not that week (they end before its Sunday) written once the week's
        Sunday has come, when the week's own report may be there: then a folder of its own,
        ``2026-W49_to_2026-12-05``. A week to date (make run, slw report mid-week) shares
        its week's folder, which the Monday run's whole week replaces; a later report of
        other days replaced the whole week, mailed and all."""
        sunday = self.end + timedelta(days=7 - self.end.isoweekday())
        if self.end < sunday <= today:
            return f"{self.label}_to_{self.end.isoformat()}"
        return self.label


def week_end_day(text: str) -> date:
    """The last day of a report's week given as ``YYYY-MM-DD``, or as an ISO week
    ``YYYY-Www`` (the name of its folder): its Sunday. Raises ValueError for anything
    else (Python's fromisoformat would read 2026-W48 as its Monday, and 20261129 too)."""
    iso_week = re.fullmatch(r"(\d{4})-W(\d{2})", text)
    if iso_week:
        year, week = int(iso_week[1]), int(iso_week[2])
        # The week of 28 December is a year's last: 52 or 53.
        weeks = date(year, 12, 28).isocalendar().week
        if not 1 <= week <= weeks:
            raise ValueError(f"{year} has ISO weeks W01 to W{weeks}")
        return date.fromisocalendar(year, week, 7)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{text!r} is neither YYYY-MM-DD nor an ISO week YYYY-Www")
    return date.fromisoformat(text)


@dataclass(frozen=True)
class Expectation:
    """A published survey figure: the share of the public expecting something of CEOs."""

    country_code: str
    question_id: str
    question_text: str
    share_pct: float
    ci_lower_pct: float | None
    ci_upper_pct: float | None
    # Respondents behind the share, where the survey says (DESIGN: the sample size is
    # published with every share).
    sample_size: int | None
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
    # The leaders tracked in the country seven days before (None: none then): another
    # number means leaders joined, left or moved, and the change on the week is partly that.
    executives_tracked_week_before: int | None = None


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
    # The first and last days the serving copy has reach data of, read only for a week
    # without enough of them.
    data_begins: date | None = None
    data_ends: date | None = None
    # Days from the week's first to data_through with counts observed that day (the others
    # carry earlier counts forward, up to SLW_GAP_FILL_DAYS, or have none).
    days_observed: int | None = None
    # Platforms with follower counts on the week's last day with data but not seven days
    # before it, and the other way round (an outage past the gap fill, a platform added):
    # no change on the week is given, as it would be of other platforms.
    platforms_only_on_last_day: list[str] = field(default_factory=list)
    platforms_only_week_before: list[str] = field(default_factory=list)
    # Whether the serving copy has reach data of a day after the week's last.
    data_after_week: bool = False

    @property
    def days_covered(self) -> int:
        """The week's days up to its last day with data (7 unless a week to date)."""
        if self.data_through is None:
            return 0
        return (self.data_through - self.week.start).days + 1

    @property
    def days_without_data(self) -> tuple[date, date] | None:
        """The week's days after its last day with data, first and last: not published yet
        when the report was made (a week's days are never after its making), or a gap in
        the data when later days have data (:attr:`data_after_week`)."""
        if self.data_through is None or self.data_through >= self.week.end:
            return None
        return self.data_through + timedelta(days=1), self.week.end

    @property
    def platform_names(self) -> dict[str, str]:
        """Each platform's name as the warehouse gives it (``x``: "X (Twitter)")."""
        return {row.platform: row.platform_name for row in self.coverage}

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
        [week.start, week.end],
    ).fetchone()
    report = WeeklyReportData(week, through, int(days), min_executives)
    if not report.enough_data:
        # Said in the report: a week before the data begin is never written with figures,
        # and a week the data go past (a gap: no counts were observed in it) is not filled
        # by later runs either.
        report.data_begins, report.data_ends = con.execute(
            "select min(metric_date), max(metric_date) "
            "from marts.fct_reach_by_country_sector_all_platforms_daily"
        ).fetchone() or (None, None)
        return report
    # Bounded by the week's end: the first later row is enough.
    report.data_after_week = bool(
        con.execute(
            "select count(*) from (select 1 from "
            "marts.fct_reach_by_country_sector_all_platforms_daily where metric_date > ? "
            "limit 1)",
            [week.end],
        ).fetchone()[0]
    )
    (report.days_observed,) = con.execute(
        "select count(distinct metric_date) from marts.fct_executive_reach_daily "
        "where metric_date between ? and ? and is_observed",
        [week.start, report.data_through],
    ).fetchone()
    _headline(con, report)
    _trends(con, report)
    _platform_mix(con, report)
    _movers(con, report, movers)
    _coverage(con, report, tables)
    if SYNTHETIC_API in report.synthetic_parts and SYNTHETIC_COUNTS in report.synthetic_parts:
        # The sandbox's answers are the movers' synthetic counts: said once.
        report.synthetic_parts.remove(SYNTHETIC_COUNTS)
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
    with_counts: dict[date, set[str]] = {day: set(), day - timedelta(days=7): set()}
    for metric_date, platform in con.execute(
        "select distinct metric_date, platform from marts.fct_executive_reach_daily "
        "where metric_date in (?, ?) and followers is not null",
        [day, day - timedelta(days=7)],
    ).fetchall():
        with_counts[metric_date].add(platform)
    on_day, week_before = with_counts[day], with_counts[day - timedelta(days=7)]
    # A day before the data begin has no counts at all: no change, as there is no share.
    if week_before:
        report.platforms_only_on_last_day = sorted(on_day - week_before)
        report.platforms_only_week_before = sorted(week_before - on_day)
    comparable = on_day == week_before
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
    rows = []
    for (country, metric_date), (tracked, active, synthetic_pct) in shares.items():
        if metric_date != day or not tracked:
            continue
        if tracked < report.min_executives and country not in FOCUS_COUNTRIES:
            continue
        before = shares.get((country, day - timedelta(days=7)))
        share = 100.0 * active / tracked
        change = (
            share - 100.0 * before[1] / before[0] if comparable and before and before[0] else None
        )
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
                figure,
                int(before[0]) if before and before[0] else None,
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
    # Sources numbered in the order the report shows them: the headline table's, then the
    # focus countries' survey table's.
    refs: dict[tuple[str, str, int, str], int] = {}

    def referenced(figure: Expectation) -> Expectation:
        key = (figure.source_name, figure.question_id, figure.wave, figure.citation)
        return replace(figure, ref=refs.setdefault(key, len(refs) + 1))

    report.headline = [
        replace(row, expectation=referenced(row.expectation)) if row.expectation else row
        for row in rows
    ]
    for country in FOCUS_COUNTRIES:
        for figure in expectations.get(country, []):
            report.focus_expectations.append(referenced(figure))
    if any(row.synthetic_executives_pct > 0 for row in rows):
        report.synthetic_parts.append(SYNTHETIC_ROSTER)
    # Real executives' counts that are synthetic (the demo's seeded history, the sandbox)
    # feed the week's medians and the trends' week-ends, whether or not any is a mover.
    [(counts, history)] = con.execute(
        """
        select
            coalesce(bool_or(
                reach.is_synthetic and not executive.is_synthetic and reach.source <> 'import'
            ), false),
            coalesce(bool_or(
                reach.is_synthetic and not executive.is_synthetic and reach.source = 'import'
            ), false)
        from marts.fct_executive_reach_daily as reach
        inner join marts.dim_executive as executive using (executive_version_id)
        where reach.metric_date between ? and ? or reach.metric_date in ?
        """,
        [report.week.start, day, trend_days(day)],
    ).fetchall()
    if counts:
        report.synthetic_parts.append(SYNTHETIC_COUNTS)
    # Said apart from the sandbox's answers: the movers' and trends' past of real leaders
    # (Elon Musk's 28-day gain) came from it, and the notice named the sandbox alone.
    if history:
        report.synthetic_parts.append(SYNTHETIC_HISTORY)
    if any(figure.is_synthetic for figure in report.sources):
        report.synthetic_parts.append("synthetic survey figures")


def _expectations(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, list[Expectation]]:
    found: dict[str, list[Expectation]] = defaultdict(list)
    for row in con.execute(
        """
        select country_code, question_id, question_text, expectation_share_pct, ci_lower_pct,
            ci_upper_pct, sample_size, is_country_figure, wave, survey_source_name, citation,
            is_synthetic
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


_MOVERS_SQL = """
with latest as (
    select * from marts.fct_executive_reach_daily where metric_date = $day
),
earlier as (
    select executive_id, platform, metric_date, is_observed, source
    from marts.fct_executive_reach_daily
    where metric_date in ($day - 7, $day - 28)
),
changes as (
    select
        l.platform,
        w.days,
        l.executive_id,
        e.full_name,
        l.company_name,
        l.country_code,
        l.followers,
        e.is_synthetic as is_synthetic_executive,
        -- The roster's flag, or counts from a synthetic source (the sandbox's answers).
        e.is_synthetic or coalesce(l.is_synthetic, false) as is_synthetic,
        case w.days when 7 then l.followers_change_7d else l.followers_change_28d end as change,
        -- Why the change may not be two observed counts: either reason, or both.
        nullif(concat_ws(
            '/',
            case when not l.is_observed or not coalesce(s.is_observed, true) then 'carried' end,
            case when l.source = 'import' or s.source = 'import' then 'imported' end
        ), '') as caveat
    from latest as l
    inner join marts.dim_executive as e on l.executive_version_id = e.executive_version_id
    cross join (values (7), (28)) as w (days)
    left join earlier as s
        on l.executive_id = s.executive_id
        and l.platform = s.platform
        and s.metric_date = $day - w.days
),
movers as (
    select 'executive' as kind, platform, days, full_name as name, company_name, country_code,
        followers, change, caveat, is_synthetic, is_synthetic_executive, executive_id
    from changes
    where change is not null
    union all
    select 'company', platform, days, company_name, company_name, any_value(country_code),
        sum(followers), sum(change),
        -- Each reason once: 'carried/imported' when the leaders' caveats hold both.
        nullif(concat_ws(
            '/',
            case when bool_or(contains(caveat, 'carried')) then 'carried' end,
            case when bool_or(contains(caveat, 'imported')) then 'imported' end
        ), ''),
        bool_or(is_synthetic), bool_or(is_synthetic_executive), null
    from changes
    where change is not null
    group by platform, days, company_name
)
-- The largest gains and, apart from them, the largest losses: a week of large gains
-- still shows who lost most. No change is no move. A change equal to the last one shown
-- is shown too (which of two equal changes made the list was the alphabet's choice), up
-- to three times the limit: counts rounded by their platform (YouTube's) tie often.
select platform, kind, days, name, company_name, country_code, followers, change,
    coalesce(caveat, ''), is_synthetic, is_synthetic_executive
from movers
where change != 0
qualify rank() over (
    partition by platform, kind, days, change > 0
    order by abs(change) desc
) <= $limit
and row_number() over (
    partition by platform, kind, days, change > 0
    order by abs(change) desc, name, company_name, executive_id
) <= 3 * $limit
order by platform, kind desc, days, change > 0 desc, abs(change) desc, name, company_name,
    executive_id
"""


def _movers(con: duckdb.DuckDBPyConnection, report: WeeklyReportData, limit: int) -> None:
    """Per platform, the ``limit`` largest 7- and 28-day gains of leaders and companies (a
    company's: the sum over its leaders on the platform), then the ``limit`` largest
    losses."""
    lists: dict[str, dict[tuple[str, int], list[Mover]]] = defaultdict(lambda: defaultdict(list))
    for (
        platform,
        kind,
        days,
        name,
        company,
        country,
        followers,
        change,
        caveat,
        synthetic,
        synthetic_executive,
    ) in con.execute(_MOVERS_SQL, {"day": report.data_through, "limit": limit}).fetchall():
        lists[platform][(kind, days)].append(
            Mover(platform, name, company, country, followers, int(change), caveat, synthetic)
        )
        # Every mover listed is shown: a synthetic one calls for the notice, whichever list.
        if synthetic:
            part = SYNTHETIC_ROSTER if synthetic_executive else SYNTHETIC_COUNTS
            # A real leader's imported synthetic history is said already (_headline).
            said = "imported" in caveat and SYNTHETIC_HISTORY in report.synthetic_parts
            if part not in report.synthetic_parts and not (part == SYNTHETIC_COUNTS and said):
                report.synthetic_parts.append(part)
    for platform in sorted(lists):
        found = lists[platform]
        report.movers.append(
            PlatformMovers(
                platform,
                found[("executive", 7)],
                found[("executive", 28)],
                found[("company", 7)],
                found[("company", 28)],
            )
        )


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
        report.synthetic_parts.append(SYNTHETIC_API)


def _run_history(
    con: duckdb.DuckDBPyConnection, report: WeeklyReportData, tables: set[str]
) -> None:
    # An audit time's day is its UTC day (the report's days are), whatever the session's
    # time zone (DuckDB's default is the machine's).
    bounds = [report.week.start, report.week.end]
    # A week that ended before the first run recorded (history imported from before the
    # pipeline ran) has no count to give: "not recorded", not 0.
    if "audit.runs" in tables and _recorded_by(con, "audit.runs", "recorded_at", report):
        files, rows = con.execute(
            "select coalesce(sum(files_quarantined), 0), coalesce(sum(rows_quarantined), 0) "
            "from audit.runs where cast(timezone('UTC', recorded_at) as date) between ? and ?",
            bounds,
        ).fetchone()
        report.files_quarantined, report.rows_quarantined = int(files), int(rows)
    if "audit.quality_results" in tables and _recorded_by(
        con, "audit.quality_results", "checked_at", report
    ):
        passed, failed = con.execute(
            "select count(*) filter (where success), count(*) filter (where not success) "
            "from audit.quality_results "
            "where cast(timezone('UTC', checked_at) as date) between ? and ?",
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
                where not success
                    and cast(timezone('UTC', checked_at) as date) between ? and ?
                group by suite_name, expectation, column_name
                order by 4 desc, 5 desc, 1, 2, 3
                """,
                bounds,
            ).fetchall()
        ]


def _recorded_by(
    con: duckdb.DuckDBPyConnection, table: str, column: str, report: WeeklyReportData
) -> bool:
    """Whether ``table`` (an audit table, small) has a record from the week's last day or
    before."""
    (first,) = con.execute(
        f"select min(cast(timezone('UTC', {column}) as date)) from {table}"
    ).fetchone()
    return first is not None and first <= report.week.end
