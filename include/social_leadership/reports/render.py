"""The weekly report's files: HTML (Jinja, inline SVG), PDF (fpdf2) and CSV figures.

Both documents come from one :class:`~social_leadership.reports.data.WeeklyReportData` and
the same charts. Nothing in them depends on when or where they are rendered: the same
serving data gives byte-identical HTML and CSV files, and a PDF with the same text (its
creation date is the report's last day). The HTML as mailed is the same page with each
chart a PNG shown by its Content-ID (:func:`content_id`), drawn only for a mail.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import jinja2
import matplotlib
from fpdf import FPDF

from social_leadership.formatting import compact_count, counted, half_up, whole_percent
from social_leadership.reports.charts import Chart, all_charts
from social_leadership.reports.data import (
    FOCUS_COUNTRIES,
    MIN_DAYS_OF_DATA,
    CountryHeadline,
    Coverage,
    Expectation,
    WeeklyReportData,
)
from social_leadership.safe_csv import write_csv
from social_leadership.settings import FONT_SUFFIXES

TEMPLATES = Path(__file__).resolve().parent / "templates"
HTML_NAME = "weekly_report.html"
PDF_NAME = "weekly_report.pdf"
# Typography of the report's figures: an en dash for "no value" and in ranges.
EN_DASH = "\u2013"
NO_VALUE = EN_DASH
CAVEAT_MARKS = {"carried": " †", "imported": " ‡", "carried/imported": " †‡"}
# DejaVu Sans ships with matplotlib: the PDF's font covers Latin, Greek and Cyrillic names.
# Other scripts (a name in Chinese, Japanese or Korean) take fallback fonts: SLW_REPORT_FONTS,
# then those fontconfig finds (:func:`_pdf_fonts`).
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_FONT = "DejaVu"
_FONT_FILE = _FONT_DIR / "DejaVuSans.ttf"
_SVG_TITLE = re.compile(r"<title>.*?</title>", re.S)
log = logging.getLogger(__name__)
# fontTools logs each font subset at INFO: under Airflow's root logger (INFO) that was about
# 150 lines a report, in `slw report` and the task log alike.
# Set unless someone set it already (the root logger's level comes later, from Airflow).
if logging.getLogger("fontTools").level == logging.NOTSET:
    logging.getLogger("fontTools").setLevel(logging.WARNING)


@dataclass(frozen=True)
class RenderedReport:
    html: str
    # The HTML as mailed: each chart the PNG :meth:`inline_images` gives by its Content-ID.
    mail_html: str
    pdf: bytes
    # File name -> (header, rows): the figures behind each chart and table.
    figures: dict[str, tuple[tuple[str, ...], list[tuple]]]
    subject: str
    text: str
    # Content-ID -> the chart it shows.
    charts: dict[str, Chart] = field(default_factory=dict, repr=False, compare=False)

    def inline_images(self) -> dict[str, bytes]:
        """The PNG of each chart the mailed HTML shows, by Content-ID (drawn now: only a
        report that is mailed needs them)."""
        return {cid: chart.png() for cid, chart in self.charts.items()}


def pct(value: float | None) -> str:
    """A share in whole percent (:func:`~social_leadership.formatting.whole_percent`)."""
    return whole_percent(value, missing=NO_VALUE)


def pts(value: float | None) -> str:
    if value is None:
        return NO_VALUE
    tenths = half_up(value, 1)
    # No "-0.0 pts": a change that rounds to nothing is no fall.
    return f"{tenths.copy_abs() if tenths.is_zero() else tenths:+.1f} pts"


def compact(value: float | None) -> str:
    return compact_count(value, missing=NO_VALUE)


def signed(value: int | None) -> str:
    return NO_VALUE if value is None else f"{'+' if value > 0 else ''}{compact(value)}"


def interval(figure: Expectation) -> str:
    if figure.ci_lower_pct is None or figure.ci_upper_pct is None:
        return "not published"
    return f"{figure.ci_lower_pct:.1f}{EN_DASH}{figure.ci_upper_pct:.1f}%"


def sample_size(figure: Expectation) -> str:
    """The respondents behind a share, grouped in thousands ("1,150")."""
    return "not published" if figure.sample_size is None else f"{figure.sample_size:,}"


def expectation_brief(figure: Expectation) -> str:
    """A figure as the PDF's headline table shows it: share, interval and sample size, and
    whether the global figure stands in, by its source's number."""
    # Said when not published: the column's head promises a sample size.
    respondents = (
        f", n {sample_size(figure)}"
        if figure.sample_size is None
        else (f", n = {sample_size(figure)}")
    )
    scope = "" if figure.is_country_figure else "; global figure"
    return f"{pct(figure.share_pct)} ({interval(figure)}{respondents}{scope}) [{figure.ref}]"


def expectation(figure: Expectation) -> str:
    scope = "" if figure.is_country_figure else ", global figure"
    # As the PDF's cell says it: README lists the sample size for this cell.
    respondents = (
        ", n not published" if figure.sample_size is None else f", n = {sample_size(figure)}"
    )
    return (
        f"{pct(figure.share_pct)} ({interval(figure)}{respondents}; {figure.source_name} "
        f"{figure.wave}{scope}) [{figure.ref}]"
    )


def data_as_of(row: Coverage) -> str:
    """A platform's last observed day, and how far behind the report's last day it is."""
    if row.data_as_of is None:
        return "no data"
    if not row.days_behind:
        return row.data_as_of.isoformat()
    days = "day" if row.days_behind == 1 else "days"
    return f"{row.data_as_of.isoformat()} ({row.days_behind} {days} behind)"


def count_or_unknown(value: int | None) -> str:
    return "not recorded" if value is None else str(value)


def content_id(chart_name: str, week_end: date) -> str:
    """The Content-ID the mailed HTML shows a chart's PNG by: the chart and the report's
    last day, as no other report's."""
    return f"{chart_name}.{week_end.isoformat()}.chart@social-leadership"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        pct=pct,
        pts=pts,
        compact=compact,
        signed=signed,
        interval=interval,
        sample_size=sample_size,
        expectation=expectation,
        expectation_brief=expectation_brief,
        count_or_unknown=count_or_unknown,
        data_as_of=data_as_of,
        caveat_mark=lambda caveat: CAVEAT_MARKS.get(caveat, ""),
        content_id=content_id,
    )
    return environment


def _tracked_before(row: CountryHeadline) -> str:
    before = row.executives_tracked_week_before
    if before is None or before == row.executives_tracked:
        return ""
    return f", of {before} tracked leaders a week before"


def headline_lines(report: WeeklyReportData) -> list[str]:
    """The answer to the report's question in two or three sentences."""
    rows = {row.country_code: row for row in report.headline}
    lines = []
    for code in FOCUS_COUNTRIES:
        row = rows.get(code)
        if row is None:
            lines.append(f"{code}: no tracked leaders in the roster.")
            continue
        change = (
            f" ({pts(row.active_share_change_pts)} on the week{_tracked_before(row)})"
            if row.active_share_change_pts is not None
            else ""
        )
        lines.append(
            f"{row.country_name}: {pct(row.active_share_pct)} of {row.executives_tracked} "
            f"tracked leaders active on social platforms{change}; median reach "
            f"{compact(row.median_followers)} followers."
        )
    de, us = rows.get("DE"), rows.get("US")
    if de and us:
        # One decimal, rounded half up, as the week's changes are shown: a gap of 0.2
        # points is no "0". The verdict is on the share active, and says so: the reach
        # follows, for a reader to weigh (a share alike hides a reach six times smaller).
        gap = half_up(us.active_share_pct - de.active_share_pct, 1)
        points = "percentage point" if abs(gap) == 1 else "percentage points"
        if gap.is_zero():
            comparison = (
                "Germany does not lag the US in the share of leaders active: the same share"
            )
        else:
            comparison = (
                f"Germany {'lags' if gap > 0 else 'does not lag'} the US in the share of "
                f"leaders active: {abs(gap):.1f} {points} {'fewer' if gap > 0 else 'more'}"
            )
        lines.append(
            comparison
            + (
                f"; median reach {compact(de.median_followers)} in Germany vs "
                f"{compact(us.median_followers)} in the US."
                if de.median_followers is not None and us.median_followers is not None
                else "."
            )
        )
    note = platforms_note(report)
    if note:
        lines.append(note)
    return lines


def platforms_note(report: WeeklyReportData) -> str:
    """What the headline says when a platform has follower counts on only one of the two
    days its change on the week compares (an outage longer than the gap fill, a platform
    added): the figures of the last day leave out a platform gone, and no change on the
    week is given, as it would be a platform's coming or going, not the leaders'."""
    day = report.data_through
    if day is None or not (report.platforms_only_week_before or report.platforms_only_on_last_day):
        return ""
    names = report.platform_names
    parts = []
    gone = [names.get(p, p) for p in report.platforms_only_week_before]
    if gone:
        parts.append(
            f"No follower counts of {_and_list(gone)} on {day.isoformat()} (see Coverage and "
            "trust): the figures of that day leave " + ("it" if len(gone) == 1 else "them") + " out"
        )
    new = [names.get(p, p) for p in report.platforms_only_on_last_day]
    if new:
        before = (day - timedelta(days=7)).isoformat()
        parts.append(f"no follower counts of {_and_list(new)} on {before}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + ": no change on the week is shown."


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def observed_note(report: WeeklyReportData) -> str:
    """What a week with days of no observed counts says of them: its figures are of the
    last day with data, which may carry counts observed before the week; and of its days
    after that one, which nothing published had (no build, or none that passed its checks)."""
    notes = []
    covered, observed = report.days_covered, report.days_observed
    if observed is not None and report.data_through is not None and observed < covered:
        days = f"{report.week.start.isoformat()} to {report.data_through.isoformat()}"
        if observed == 0:
            notes.append(
                f"No follower counts were observed from {days}: every figure carries counts "
                "observed before the week forward (Coverage and trust gives each platform's "
                "last observed day)."
            )
        else:
            notes.append(
                f"Follower counts were observed on {observed} of the {covered} days from "
                f"{days}; the other days carry earlier counts forward or have none."
            )
    without = report.days_without_data
    if report.enough_data and without is not None:
        first, last = without
        days = first.isoformat() if first == last else f"{first.isoformat()} to {last}"
        through = report.data_through.isoformat()
        if report.data_after_week:
            notes.append(
                f"The serving copy has no reach data for {days}, though its data go on after "
                f"the week: the figures are of {through}, the week's last day with data."
            )
        else:
            notes.append(
                f"No data had been published for {days} when this report was made: its "
                f"figures are of {through}, the last day published."
            )
    return " ".join(notes)


def audit_note(report: WeeklyReportData) -> str:
    """Whose quarantined files and quality checks the report counts: the builds published
    (a build that failed its checks published nothing). No time of publication: a rerun of
    a mailed week after another publication would differ by it alone."""
    if report.checks_passed is None:
        return ""
    return (
        "Quarantined files and quality checks of the builds published: a build that fails "
        "its checks publishes nothing, so its checks are not counted here; its alert and slw "
        "summary name them."
    )


def tracked_change_note(report: WeeklyReportData) -> str:
    """The countries whose tracked leaders changed in number on the week (leaders joined,
    left or moved): their change on the week is partly that, not their leaders' activity."""
    changed = [
        f"{row.country_name} {row.executives_tracked_week_before} to {row.executives_tracked}"
        for row in report.headline
        if row.active_share_change_pts is not None
        and row.executives_tracked_week_before is not None
        and row.executives_tracked_week_before != row.executives_tracked
    ]
    if not changed:
        return ""
    return (
        f"Leaders tracked a week before and on {report.data_through.isoformat()}: "
        f"{_and_list(changed)}. Leaders joined, left or moved: the change on the week is "
        "partly theirs."
    )


def headline_statement(report: WeeklyReportData) -> str:
    """The answer the headline table's public expectation is the share giving (the survey's
    wording of the headline question, as its first figure has it)."""
    return next((row.expectation.question_text for row in report.headline if row.expectation), "")


def synthetic_notice(report: WeeklyReportData) -> str:
    if not report.synthetic_parts:
        return ""
    return (
        "Figures in this report include " + ", ".join(report.synthetic_parts) + ": they are "
        "invented for the demo and say nothing about real people or companies."
    )


def not_enough_data(report: WeeklyReportData) -> str:
    begins = report.data_begins
    if report.data_through is None and begins is not None and begins > report.week.end:
        return (
            f"The serving copy's reach data begin on {begins.isoformat()}, after the week "
            f"{report.week.start.isoformat()} to {report.week.end.isoformat()}: this week has "
            "no figures to report (an import of older follower history can add some)."
        )
    week = f"{report.week.start.isoformat()} to {report.week.end.isoformat()}"
    if _begins_within(report):
        # The days before the first are no gap in the data: there were none yet.
        return (
            f"The serving copy's reach data begin on {begins.isoformat()}, within the week "
            f"{week}: it has reach data on {counted(report.days_with_data, 'day')} of the "
            "week, and a weekly report needs at least two days of the week to compare."
        )
    if _a_gap(report):
        # Days before the last published one: never filled by a later run.
        some = report.days_with_data
        held = (
            f"reach data on {counted(some, 'day')} of the week {week}"
            if some
            else f"no reach data for the week {week}"
        )
        return (
            f"The serving copy has {held}, though its data go on to {report.data_ends}: no "
            f"follower counts were observed on {'the others' if some else 'its days'} "
            "(the platforms' APIs give only the day's counts, so later runs do not fill "
            "them), and a weekly report needs at least two days of the week to compare."
        )
    if report.data_through is None and report.days_with_data == 0:
        return (
            f"The serving copy has no reach data for the week {week}: the warehouse has not "
            "published any day of it yet."
        )
    return (
        f"The serving copy has reach data on {counted(report.days_with_data, 'day')} between "
        f"{(report.week.start).isoformat()} and {report.week.end.isoformat()}; a weekly report "
        "needs at least two days of the week to compare."
    )


def _begins_within(report: WeeklyReportData) -> bool:
    """Whether the data begin on a day of the week after its first, and the week has data
    on every day since (up to the last it may have): its days without data are those
    before the data, no gap."""
    begins, ends = report.data_begins, report.data_ends
    if begins is None or ends is None or not report.week.start < begins <= report.week.end:
        return False
    return report.days_with_data == (min(ends, report.week.end) - begins).days + 1


def _a_gap(report: WeeklyReportData) -> bool:
    """Whether the week lacks data the warehouse will not publish later: its data go past
    the week's last day, so its days without data were never observed."""
    ends = report.data_ends
    return ends is not None and ends > report.week.end


def not_enough_next(report: WeeklyReportData) -> str:
    """What a reader of a report without enough data may do."""
    begins = report.data_begins
    if report.data_through is None and begins is not None and begins > report.week.end:
        first = begins + timedelta(days=MIN_DAYS_OF_DATA - 1)
        return (
            f"The first week with enough data ends on {first.isoformat()}: ask for it, or a "
            f"later one, once its last day has ended (slw report {first.isoformat()})."
        )
    # The next scheduled run is of the next week: this one is asked for again by its end.
    end = report.week.end.isoformat()
    ends = report.data_ends
    if _begins_within(report) and ends is not None and ends >= report.week.end:
        # No later run adds a day of this week: only the history before the data can.
        first = report.data_begins + timedelta(days=MIN_DAYS_OF_DATA - 1)
        return (
            f"The first week with enough data ends on {first.isoformat()} (slw report "
            f"{first.isoformat()}); an import of the follower history of the days before "
            f"{report.data_begins.isoformat()} (slw import-history) gives this week its "
            f"figures: then slw report {end}."
        )
    if _a_gap(report):
        return (
            "An import of the follower history of those days (slw import-history) gives "
            f"the week its figures: then slw report {end}, or the weekly_report DAG with "
            f"week_end {end}."
        )
    return (
        "Once the warehouse has published more of its days, this week's report is written "
        f"again with its figures, and mailed: slw report {end}, or the weekly_report DAG "
        f"with week_end {end}."
    )


def _title(report: WeeklyReportData) -> str:
    """An ISO week's title when the report is of one (Monday to Sunday); else its last day
    (a week-to-date report: titled by that day's ISO week, 25 to 31 December 2024 was
    "week 2025-W01")."""
    if report.week.is_iso_week:
        return f"Social leadership weekly briefing, week {report.week.label}"
    return f"Social leadership weekly briefing, the 7 days to {report.week.end.isoformat()}"


def _subject_caveat(report: WeeklyReportData) -> str:
    """What a reader should see in the subject alone: a report without figures, or one
    whose last days had no data published."""
    if not report.enough_data:
        return ": not enough data"
    if report.days_without_data is not None:
        return f": data through {report.data_through.isoformat()}"
    return ""


def _period(report: WeeklyReportData) -> str:
    return f"{report.week.start.strftime('%d %b %Y')} to {report.week.end.strftime('%d %b %Y')}"


def _through(report: WeeklyReportData) -> str:
    """The header's "data through", after the period."""
    through = report.data_through
    return f" \N{MIDDLE DOT} data through {through.isoformat()}" if through else ""


def _movers_rows(report: WeeklyReportData) -> list[tuple]:
    rows = []
    for entry in report.movers:
        for kind, days, movers in (
            ("executive", 7, entry.executives_7d),
            ("executive", 28, entry.executives_28d),
            ("company", 7, entry.companies_7d),
            ("company", 28, entry.companies_28d),
        ):
            # Ranked as in a competition: equal changes share a rank (1, 2, 2, 4).
            seen: Counter[str] = Counter()
            ranks: dict[tuple[str, int], int] = {}
            for mover in movers:
                direction = "gain" if mover.change > 0 else "loss"
                seen[direction] += 1
                rank = ranks.setdefault((direction, mover.change), seen[direction])
                name = mover.name if kind == "executive" else None
                rows.append(
                    (
                        entry.platform,
                        kind,
                        days,
                        rank,
                        name,
                        mover.company,
                        mover.country_code,
                        mover.change,
                        mover.followers,
                        mover.caveat or None,
                        direction,
                    )
                )
    return rows


def figures(
    report: WeeklyReportData, charts: list[Chart]
) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    found = {f"{chart.name}.csv": (chart.header, chart.rows) for chart in charts}
    if report.enough_data:
        found["movers.csv"] = (
            ("platform", "kind", "days", "rank", "executive", "company", "country_code",
             "followers_change", "followers", "caveat", "direction"),
            _movers_rows(report),
        )  # fmt: skip
        found["coverage.csv"] = (
            ("platform", "days_asked", "accounts_asked", "accounts_ok", "accounts_not_found",
             "accounts_suspended", "accounts_private", "accounts_deferred", "accounts_error",
             "data_as_of", "days_behind"),
            [(c.platform, c.days_asked, c.accounts_asked, c.accounts_ok, c.accounts_not_found,
              c.accounts_suspended, c.accounts_private, c.accounts_deferred, c.accounts_error,
              c.data_as_of.isoformat() if c.data_as_of else None, c.days_behind)
             for c in report.coverage],
        )  # fmt: skip
        found["sources.csv"] = (
            ("ref", "source", "wave", "question_id", "statement", "citation", "is_synthetic"),
            [(s.ref, s.source_name, s.wave, s.question_id, s.question_text, s.citation,
              s.is_synthetic) for s in report.sources],
        )  # fmt: skip
    # A file passed around on its own says what the HTML and the PDF say on every page: which
    # figures are synthetic (empty when none is). Last, so positional readers keep theirs.
    notice = synthetic_notice(report) or None
    return {
        name: ((*header, "synthetic_notice"), [(*row, notice) for row in rows])
        for name, (header, rows) in found.items()
    }


def render(report: WeeklyReportData, fonts: Sequence[Path] = ()) -> RenderedReport:
    """The report's documents; ``fonts``: the PDF's fallback fonts (SLW_REPORT_FONTS), before
    those fontconfig finds for what DejaVu Sans and they lack."""
    charts = all_charts(report) if report.enough_data else []
    by_name = {chart.name: chart for chart in charts}
    context = {
        "report": report,
        "title": _title(report),
        # The header's dates, and the last day with data: the HTML, the PDF and the mail's
        # text say it alike.
        "period_line": _period(report) + _through(report),
        "synthetic_notice": synthetic_notice(report),
        "not_enough_data": "" if report.enough_data else not_enough_data(report),
        "not_enough_next": "" if report.enough_data else not_enough_next(report),
        "headline_lines": headline_lines(report) if report.enough_data else [],
        "observed_note": observed_note(report),
        "tracked_change_note": tracked_change_note(report) if report.enough_data else "",
        "audit_note": audit_note(report),
        "headline_statement": headline_statement(report) if report.enough_data else "",
        "charts": by_name,
        "trend_charts": [
            by_name[n]
            for n in ("trend_active_share", "trend_median_reach", "platform_mix")
            if n in by_name
        ],
        "focus_names": " and ".join(FOCUS_COUNTRIES),
        "mail": False,
    }
    template = _environment().get_template("weekly.html.j2")
    html = template.render(context)
    # The plain-text part says what the HTML's header says (a week to date: its last day
    # with data) and, without enough data, what a reader may do.
    text_lines = [_title(report), context["period_line"]]
    if context["synthetic_notice"]:
        text_lines.append(context["synthetic_notice"])
    if context["observed_note"]:
        text_lines.append(context["observed_note"])
    text_lines.extend(
        context["headline_lines"] or [context["not_enough_data"], context["not_enough_next"]]
    )
    if context["tracked_change_note"]:
        text_lines.append(context["tracked_change_note"])
    return RenderedReport(
        html=html,
        mail_html=template.render({**context, "mail": True}),
        pdf=_pdf(report, context, charts, fonts),
        figures=figures(report, charts),
        # A reader sees from the subject alone that a report has no figures.
        subject=f"{_title(report)} ({_period(report)})" + _subject_caveat(report),
        text="\n\n".join(text_lines) + "\n",
        charts={content_id(chart.name, report.week.end): chart for chart in charts},
    )


@functools.cache
def _characters_of(font_file: Path) -> frozenset[int]:
    """The characters ``font_file`` (the first font of a collection) has glyphs for; none
    when it cannot be read as a font."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        with TTFont(font_file, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or ())
    except (OSError, TTLibError) as exc:
        log.warning("report font %s cannot be read (%s): not used", font_file, exc)
        return frozenset()


def _lacking(text: str, fonts: Sequence[Path]) -> str:
    """The characters of ``text`` (each once, in code point order) none of ``fonts`` has."""
    have = [_characters_of(font) for font in fonts]
    return "".join(
        sorted(
            {
                character
                for character in text
                if character.isprintable()
                and not character.isspace()
                and not any(ord(character) in font for font in have)
            }
        )
    )


# At most this many fontconfig lookups a report: one finds a font for a whole script; the
# characters still lacking after that many are those no font on the machine has.
_FONTCONFIG_LOOKUPS = 16


def _fontconfig_fonts(lacking: str, found: Sequence[Path] = ()) -> list[Path]:
    """Fonts fontconfig's ``fc-match`` names for the characters of ``lacking`` that none of
    ``found`` has, each checked to have the character it was named for (fc-match names its
    best font even when none has it)."""
    program = shutil.which("fc-match")
    fonts: list[Path] = []
    lookups = 0
    # A page of 256 code points that fontconfig had no font for is not asked again.
    pages_without: set[int] = set()
    for character in _lookup_order(lacking) if program else []:
        if lookups >= _FONTCONFIG_LOOKUPS:
            break
        page = ord(character) >> 8
        if page in pages_without or any(
            ord(character) in _characters_of(font) for font in [*found, *fonts]
        ):
            continue
        lookups += 1
        try:
            named = subprocess.run(
                [program, "--format=%{file}", f":charset={ord(character):x}"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            break
        font = Path(named)
        if (
            named
            and font.suffix.lower() in FONT_SUFFIXES
            and font.is_file()
            and ord(character) in _characters_of(font)
        ):
            fonts.append(font)
        else:
            pages_without.add(page)
    return fonts


def _lookup_order(characters: str) -> list[str]:
    """``characters`` with the first of each page of 256 code points (about a script each)
    first, then the second of each, and so on: a few lookups reach every script, however
    many characters of one script no font has come before the others."""
    taken: Counter[int] = Counter()
    ranked = []
    for character in sorted(characters):
        page = ord(character) >> 8
        ranked.append((taken[page], character))
        taken[page] += 1
    return [character for _, character in sorted(ranked)]


def _pdf_fonts(text: str, given: Sequence[Path]) -> tuple[list[Path], str]:
    """The fallback fonts the PDF of ``text`` needs (of ``given``, then of fontconfig's for
    what those lack; only those that have a character DejaVu Sans lacks) and the characters
    still lacking."""
    lacking = _lacking(text, [_FONT_FILE])
    if not lacking:
        return [], ""
    fonts = [
        font
        for font in given
        if any(ord(character) in _characters_of(font) for character in lacking)
    ]
    fonts += _fontconfig_fonts(lacking, fonts)
    return fonts, _lacking(lacking, fonts)


def lacking_glyphs_notice(lacking: str) -> str:
    """What the PDF says when it has no font for some characters (shown by code point: the
    characters themselves it cannot draw)."""
    shown = ", ".join(f"U+{ord(character):04X}" for character in lacking[:8])
    more = f" and {len(lacking) - 8} more" if len(lacking) > 8 else ""
    return (
        f"Characters in none of this PDF's fonts are left out ({shown}{more}): the HTML "
        "report shows them. SLW_REPORT_FONTS names fonts that have them, or install one "
        "that fontconfig finds."
    )


class _ReportPdf(FPDF):
    def __init__(self, title: str, notice: str, fallback: Sequence[Path] = ()) -> None:
        super().__init__(format="A4")
        self.report_title = title
        self.notice = notice
        self.set_margins(15, 18, 15)
        self.set_auto_page_break(auto=True, margin=18)
        for style, suffix in (("", ""), ("B", "-Bold"), ("I", "-Oblique"), ("BI", "-BoldOblique")):
            self.add_font(_FONT, style, str(_FONT_DIR / f"DejaVuSans{suffix}.ttf"))
        families = []
        for number, font in enumerate(fallback):
            families.append(f"Fallback{number}")
            self.add_font(families[-1], "", str(font))
        if families:
            # Any style: a bold name is drawn in the fallback's one weight, not left out.
            self.set_fallback_fonts(families, exact_match=False)
        self.set_font(_FONT, size=9)

    def header(self) -> None:
        self.set_font(_FONT, size=7)
        self.set_text_color(90, 99, 110)
        self.set_y(8)
        self.cell(0, 4, self.report_title, align="L")
        if self.notice:
            self.set_y(12)
            self.set_fill_color(255, 248, 197)
            self.set_text_color(60, 50, 0)
            self.multi_cell(0, 3.5, "SYNTHETIC DATA: " + self.notice, fill=True, align="L")
        self.set_text_color(31, 35, 40)
        self.set_y(max(self.get_y() + 2, 18))
        self.set_font(_FONT, size=9)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=7)
        self.set_text_color(90, 99, 110)
        self.cell(0, 4, f"Page {self.page_no()} of {{nb}}", align="C")


def _pdf(
    report: WeeklyReportData, context: dict, charts: list[Chart], fonts: Sequence[Path] = ()
) -> bytes:
    source = (
        _environment()
        .get_template("weekly_pdf.html.j2")
        .render({**context, "pdf_charts": {chart.name: chart for chart in charts}})
    )
    fallback, lacking = _pdf_fonts(
        f"{context['title']} {context['synthetic_notice']} {source}", fonts
    )
    pdf = _ReportPdf(context["title"], context["synthetic_notice"], fallback)
    pdf.set_title(context["title"])
    pdf.set_author("Social leadership warehouse")
    pdf.set_creator("social_leadership.reports")
    pdf.set_creation_date(datetime.combine(report.week.end, time(), tzinfo=UTC))
    pdf.add_page()
    if lacking:
        log.warning("weekly report PDF: %s", lacking_glyphs_notice(lacking))
        pdf.set_font(_FONT, "I", 8)
        pdf.multi_cell(0, 3.5, lacking_glyphs_notice(lacking), align="L")
        pdf.ln(2)
        pdf.set_font(_FONT, size=9)
    by_name = {chart.name: chart for chart in charts}
    for part in source.split("<!--chart:"):
        name, marker, rest = part.partition("-->")
        if marker and name in by_name:
            chart = by_name[name]
            # fpdf2 draws the SVG's shapes; the <title> (for screen readers) it cannot.
            svg = _SVG_TITLE.sub("", chart.svg)
            pdf.image(io.BytesIO(svg.encode("utf-8")), w=chart_width(chart, pdf.epw, pdf.eph))
            pdf.set_font(_FONT, "I", 7)
            pdf.multi_cell(0, 3.5, f"{chart.title}. {chart.description} Figures: {chart.name}.csv")
            pdf.ln(2)
            pdf.set_font(_FONT, size=9)
            part = rest
        if part.strip():
            pdf.write_html(part, font_family=_FONT)
    return bytes(pdf.output())


# Room a chart leaves on its page for its caption (mm): three lines of 3.5 mm and the gap.
_CAPTION_ROOM = 14.0


def chart_width(chart: Chart, page_width: float, page_height: float) -> float:
    """The width to draw ``chart`` at in the PDF: the page's, unless the chart would then be
    taller than a page with its caption (a headline of 44 countries ran off the page, its
    last countries, axis and legend cut off): then as wide as fits that height."""
    width, height = chart.figure.get_size_inches()
    return min(page_width, (page_height - _CAPTION_ROOM) * width / height)


def write_files(rendered: RenderedReport, folder: Path) -> dict[str, Path]:
    """Write the report into ``folder`` (which must exist); return its files by name."""
    paths = {}
    html = folder / HTML_NAME
    html.write_text(rendered.html, encoding="utf-8")
    paths[HTML_NAME] = html
    pdf = folder / PDF_NAME
    pdf.write_bytes(rendered.pdf)
    paths[PDF_NAME] = pdf
    for name, (header, rows) in rendered.figures.items():
        paths[name] = write_csv(folder / name, header, rows)
    return paths
