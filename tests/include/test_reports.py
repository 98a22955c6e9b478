"""The weekly report, rendered for real from a published serving copy: sections, charts,
PDF pages and text, CSV figures, reproducibility, mail on loopback, too little data."""

from __future__ import annotations

import csv
import email
import html as html_module
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from conftest import LAST_DAY, BuiltWarehouse, day, settings_for_data_dir
from pypdf import PdfReader
from slw_testing import free_port, loopback_smtp, run_slw

from social_leadership.reports.charts import all_charts
from social_leadership.reports.data import (
    CountryHeadline,
    ReportWeek,
    WeeklyReportData,
    _movers,
    _run_history,
)
from social_leadership.reports.render import _movers_rows, headline_lines, render
from social_leadership.reports.weekly import ReportError, read_report_data, write_weekly_report
from social_leadership.serving import publish
from social_leadership.settings import Settings

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"
SECTIONS = {"headline", "trends", "movers", "coverage", "sources"}
CHARTS = {"headline", "trend_active_share", "trend_median_reach", "platform_mix"}


def _published_copy(
    built: BuiltWarehouse, data_dir: Path, monkeypatch: pytest.MonkeyPatch, *statements: str
) -> Settings:
    """A copy of the built warehouse, changed by ``statements``, published."""
    settings = settings_for_data_dir(monkeypatch, data_dir)
    shutil.copyfile(built.settings.warehouse_path, settings.warehouse_path)
    shutil.copyfile(
        built.settings.dbt_target_dir / "manifest.json", settings.dbt_target_dir / "manifest.json"
    )
    if statements:
        with duckdb.connect(str(settings.warehouse_path)) as con:
            for statement in statements:
                con.execute(statement)
    publish(settings, "test-report-publish", synthetic=False)
    return settings


@pytest.fixture(scope="module")
def published(synthetic_built_warehouse, tmp_path_factory) -> Settings:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _published_copy(
            synthetic_built_warehouse, tmp_path_factory.mktemp("report_data"), monkeypatch
        )


@pytest.fixture
def report_settings(published, monkeypatch, tmp_path) -> Settings:
    """The published copy, with this test's own reports folder."""
    settings_for_data_dir(monkeypatch, published.data_dir)
    monkeypatch.setenv("SLW_REPORTS_DIR", str(tmp_path / "reports"))
    from social_leadership.settings import load_settings

    return load_settings()


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: set[str] = set()
        self.svgs: list[str] = []
        # Each <img>: its src and alt.
        self.images: list[tuple[str, str]] = []
        self.external: list[str] = []
        self.tags: set[str] = set()
        self.viewport = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        self.tags.add(tag)
        if tag == "section" and values.get("id"):
            self.sections.add(values["id"])
        if tag == "svg":
            self.svgs.append(values.get("aria-label") or "")
        if tag == "img":
            self.images.append((values.get("src") or "", values.get("alt") or ""))
        if tag == "meta" and values.get("name") == "viewport":
            self.viewport = True
        for name in ("src", "href", "data", "srcset", "xlink:href"):
            value = values.get(name) or ""
            if value and not value.startswith("#"):
                self.external.append(f"{tag} {name}={value}")


def _parse(html: str) -> _Structure:
    structure = _Structure()
    structure.feed(html)
    structure.close()
    return structure


def test_report_has_every_section_and_chart_and_needs_nothing_from_outside(report_settings):
    report = write_weekly_report(report_settings, day(LAST_DAY), mail=False)

    assert report.enough_data
    # A past Tuesday's 7 days: a folder of their own, beside their ISO week's.
    assert report.folder == _last_day_folder(report_settings)
    html = report.html.read_text(encoding="utf-8")
    structure = _parse(html)
    assert structure.sections == SECTIONS
    assert len(structure.svgs) == len(CHARTS)
    # Self-contained: no stylesheet, script, image or font fetched from anywhere.
    assert structure.external == []
    assert not {"script", "link", "img", "iframe"} & structure.tags
    assert "@import" not in html
    # url() only for the charts' own clip paths, inside the document.
    assert all(ref.startswith("#") for ref in re.findall(r"url\((.*?)\)", html))
    # Readable on a phone and printable.
    assert structure.viewport
    assert "@media print" in html
    assert "Does Germany lag the US?" in html
    # The synthetic dataset's DE and US leaders, and the public's expectation with source.
    assert "Germany (DE)" in html
    assert "United States of America (US)" in html
    assert {f"{name}.csv" for name in CHARTS} <= set(report.files)


def test_sources_are_numbered_in_the_order_the_report_first_cites_them(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # A second statement for each country, listed after its headline figure in the survey
    # table below the headline table: numbered by that table first, the headline table's
    # figures were cited as [1] then [3], [2] coming later (DE's second statement).
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "insert into marts.fct_country_expectations_yearly "
        "select distinct on (country_code, calendar_year) * "
        "replace ('zz_second' as question_id, 'A second statement' as question_text) "
        "from marts.fct_country_expectations_yearly where has_figure",
        # Each country's figures cited apart (the synthetic US has the global figure).
        "update marts.fct_country_expectations_yearly "
        "set citation = citation || ' (' || country_code || ')'",
    )

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)
    html = report.html.read_text(encoding="utf-8")
    body, listed = html.split('<section id="sources">')

    cited = list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", body)))
    assert len(cited) >= 3
    assert cited == list(range(1, len(cited) + 1))
    # The list of sources gives each number cited, in that order.
    assert [int(n) for n in re.findall(r'<li value="(\d+)">', listed)] == cited


def test_every_csv_figure_says_what_is_synthetic_as_the_html_and_pdf_do(report_settings):
    # DESIGN: synthetic data say so wherever shown; the CSVs, passed around alone, did not
    # (sources.csv alone had is_synthetic).
    report = write_weekly_report(report_settings, day(LAST_DAY), mail=False)
    html = report.html.read_text(encoding="utf-8")
    names = sorted(name for name in report.files if name.endswith(".csv"))

    assert len(names) == 7
    for name in names:
        with (report.folder / name).open(encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            notices = {row["synthetic_notice"] for row in reader}
        assert reader.fieldnames[-1] == "synthetic_notice", name
        (notice,) = notices
        assert notice.startswith("Figures in this report include "), name
        assert "synthetic" in notice
        assert html_module.escape(notice, quote=False) in html, name


def test_headline_figures_match_the_marts(report_settings):
    report = write_weekly_report(report_settings, day(LAST_DAY), mail=False)
    with (report.folder / "headline.csv").open(encoding="utf-8") as handle:
        rows = {row["country_code"]: row for row in csv.DictReader(handle)}
    with duckdb.connect(str(report_settings.serving_path), read_only=True) as con:
        expected = dict(
            con.execute(
                "select country_code, 100.0 * sum(executives_active) / sum(executives_tracked) "
                "from marts.fct_reach_by_country_sector_all_platforms_daily "
                "where metric_date = ? group by all",
                [day(LAST_DAY)],
            ).fetchall()
        )
    assert set(rows) >= {"DE", "US"}
    for country, row in rows.items():
        assert float(row["active_share_pct"]) == pytest.approx(expected[country], abs=0.01)


def test_pdf_has_the_pages_text_and_first_page_chart(report_settings):
    report = write_weekly_report(report_settings, day(LAST_DAY), mail=False)
    reader = PdfReader(report.pdf)

    assert len(reader.pages) >= 3
    first = reader.pages[0].extract_text()
    assert "Social leadership weekly briefing" in first
    assert "Does Germany lag the US?" in first
    # The headline chart is drawn on page 1, as vector paths: one filled path per bar.
    assert "Figures: headline.csv" in first
    drawing = reader.pages[0].get_contents().get_data()
    fills = re.findall(rb"\sf\*?\s", drawing)
    curves = re.findall(rb"\sc\s", drawing)
    # Bars, markers and the glyphs of the axis labels (drawn as paths, not text).
    assert len(fills) >= 50
    assert len(curves) >= 100
    pages = [page.extract_text() for page in reader.pages]
    # The dataset's roster is partly synthetic: every page says so.
    assert all("SYNTHETIC DATA" in page for page in pages)
    text = "\n".join(pages)
    for heading in ("Trends", "Movers", "Coverage and trust", "Sources"):
        assert heading in text
    # What the HTML explains, the PDF (forwarded on its own) explains too: what "Active"
    # and "Median reach" mean, what coverage counts, where the figures come from.
    flat = " ".join(text.split())
    for note in (
        "Active: followers on any platform on",
        "Median reach: over active leaders, each one's followers summed across platforms.",
        "Accounts on the week's last day each platform's API was asked",
        "Platform figures: the warehouse's published marts",
        "Weekly share of tracked leaders active on any platform, per country.",
    ):
        assert note in flat
    if shutil.which("pdftoppm"):
        ARTEFACTS.mkdir(exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
             str(report.pdf), str(ARTEFACTS / "weekly_report_page1")],
            check=True,
        )  # fmt: skip
        assert (ARTEFACTS / "weekly_report_page1.png").stat().st_size > 0


def test_same_serving_data_gives_identical_html_csv_and_pdf_text(report_settings, tmp_path):
    first = write_weekly_report(report_settings, day(LAST_DAY), mail=False)
    kept = tmp_path / "first"
    shutil.copytree(first.folder, kept)
    second = write_weekly_report(report_settings, day(LAST_DAY), mail=False)

    assert sorted(p.name for p in kept.iterdir()) == sorted(second.files)
    for name, path in second.files.items():
        if name.endswith((".html", ".csv")):
            assert path.read_bytes() == (kept / name).read_bytes(), name
    texts = [
        [page.extract_text() for page in PdfReader(path).pages]
        for path in (kept / second.pdf.name, second.pdf)
    ]
    assert texts[0] == texts[1]
    # The charts as mailed too: the same PNG bytes, with no software named in them.
    data = read_report_data(report_settings, ReportWeek(day(LAST_DAY)))
    drawn = [[chart.png() for chart in all_charts(data)] for _ in range(2)]
    assert drawn[0] == drawn[1]
    assert not any(b"Software" in png or b"matplotlib" in png for png in drawn[0])


def test_a_rerun_replaces_the_week_folder(report_settings):
    report = write_weekly_report(report_settings, day(LAST_DAY), mail=False)
    stray = report.folder / "left_over.txt"
    stray.write_text("from an earlier run")

    again = write_weekly_report(report_settings, day(LAST_DAY), mail=False)

    assert again.folder == report.folder
    assert not stray.exists()
    assert [p.name for p in report.folder.parent.iterdir() if p.name.startswith(".")] == []


def test_other_days_of_an_ended_week_never_replace_that_week_s_report(report_settings):
    sunday = day(LAST_DAY) + timedelta(days=7 - day(LAST_DAY).isoweekday())
    if sunday == day(LAST_DAY):
        sunday += timedelta(days=7)
    week = write_weekly_report(report_settings, sunday, mail=False)
    # A run by hand on the Sunday (the 7 days to Saturday), and a past Thursday's report.
    saturday = write_weekly_report(report_settings, sunday - timedelta(days=1), mail=False)
    thursday = write_weekly_report(report_settings, sunday - timedelta(days=3), mail=False)

    label = ReportWeek(sunday).label
    assert week.folder.name == label
    assert saturday.folder.name == f"{label}_to_{sunday - timedelta(days=1)}"
    assert thursday.folder.name == f"{label}_to_{sunday - timedelta(days=3)}"
    assert f"week {label}" in week.html.read_text(encoding="utf-8")


def test_a_week_to_date_shares_its_week_s_folder_until_its_sunday():
    wednesday = date(2026, 12, 2)
    week = ReportWeek(wednesday)
    assert week.folder_name(today=wednesday) == "2026-W49"
    assert week.folder_name(today=date(2026, 12, 5)) == "2026-W49"
    assert week.folder_name(today=date(2026, 12, 6)) == "2026-W49_to_2026-12-02"
    assert ReportWeek(date(2026, 12, 6)).folder_name(today=date(2027, 1, 1)) == "2026-W49"


def test_csv_figures_neutralise_formulas(synthetic_built_warehouse, tmp_path, monkeypatch) -> None:
    _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        'update marts.dim_executive set full_name = \'=HYPERLINK("http://x","y")\' '
        "where executive_id = 'de_one'",
        "update marts.fct_executive_reach_daily set company_name = '@SUM(A1)' "
        "where executive_id = 'de_one'",
    )
    monkeypatch.setenv("SLW_REPORT_MOVERS", "50")
    from social_leadership.settings import load_settings

    report = write_weekly_report(load_settings(), day(LAST_DAY), mail=False)
    with (report.folder / "movers.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = {row["executive"] for row in rows} | {row["company"] for row in rows}
    assert '\'=HYPERLINK("http://x","y")' in names
    assert "'@SUM(A1)" in names
    assert not any(name.startswith(("=", "@", "+")) for name in names if name)


def test_movers_show_the_largest_losses_beside_the_largest_gains(
    synthetic_built_warehouse, tmp_path, monkeypatch
) -> None:
    # One leader loses followers on every platform, fewer than the others gain.
    _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "update marts.fct_executive_reach_daily set followers_change_7d = -1 "
        f"where executive_id = 'de_one' and metric_date = date '{day(LAST_DAY).isoformat()}'",
    )
    monkeypatch.setenv("SLW_REPORT_MOVERS", "1")
    from social_leadership.settings import load_settings

    report = write_weekly_report(load_settings(), day(LAST_DAY), mail=False)

    with (report.folder / "movers.csv").open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["days"] == "7"]
    shown = {
        platform: [
            (row["direction"], row["rank"], int(row["followers_change"]), row["country_code"])
            for row in rows
            if row["platform"] == platform and row["kind"] == "executive"
        ]
        for platform in ("x", "bluesky")
    }
    # The largest gain first, then the loss, each ranked on its own side.
    (gain, loss) = shown["x"]
    assert gain[:2] == ("gain", "1")
    assert gain[2] > 1
    assert loss == ("loss", "1", -1, "DE")
    # A platform with no gain shows its loss alone.
    assert shown["bluesky"] == [("loss", "1", -1, "DE")]
    html = report.html.read_text(encoding="utf-8")
    assert "Largest follower gains, then largest losses" in html


# (platform, executive, company, 7-day change) on the last day; names sort as their ids.
MOVES = [
    ("x", "a", "K", 5), ("x", "b", "K", -5), ("x", "c", "L", 0), ("x", "d", "L", None),
    ("x", "e", "M", 3), ("x", "f", "N", -7), ("x", "g", "O", 3), ("x", "h", "P", -2),
    ("x", "i", "P", 2),
    ("y", "a", "K", 4), ("y", "e", "M", 1),
    ("z", "b", "K", -1), ("z", "f", "N", -3),
    # Eight equal gains: listed up to three times the limit.
    *[("w", e, e.upper(), 1) for e in "abcdefgh"],
]  # fmt: skip


def test_movers_are_the_largest_gains_then_the_largest_losses_each_ranked_apart() -> None:
    last = date(2026, 11, 29)
    con = duckdb.connect()
    con.execute(
        "create schema marts; "
        "create table marts.dim_executive as select * from (values "
        "('a', 'A'), ('b', 'B'), ('c', 'C'), ('d', 'D'), ('e', 'E'), ('f', 'F'), ('g', 'G'), "
        "('h', 'H'), ('i', 'I')) as t (executive_version_id, full_name), "
        "(select false as is_synthetic); "
        "create table marts.fct_executive_reach_daily (metric_date date, platform varchar, "
        "executive_id varchar, executive_version_id varchar, company_name varchar, "
        "country_code varchar, followers bigint, followers_change_7d bigint, "
        "followers_change_28d bigint, is_observed boolean, source varchar, "
        "is_synthetic boolean)"
    )
    for platform, executive, company, change in MOVES:
        for metric_date in (last, last - timedelta(days=7), last - timedelta(days=28)):
            con.execute(
                "insert into marts.fct_executive_reach_daily values "
                "(?, ?, ?, ?, ?, 'DE', 100, ?, null, true, 'api', false)",
                [metric_date, platform, executive, executive, company, change],
            )
    report = WeeklyReportData(ReportWeek(last), last, 7, 1)

    _movers(con, report, 2)

    def said(movers):
        return [(mover.name, mover.change) for mover in movers]

    found = {entry.platform: entry for entry in report.movers}
    # No change (c), no figure (d) and a company whose changes sum to 0 (P) are no moves;
    # a tie at the limit shows both (G was left out, unsaid, for being after E); a loss of
    # 5 is as large as a gain of 5.
    assert said(found["x"].executives_7d) == [
        ("A", 5),
        ("E", 3),
        ("G", 3),
        ("F", -7),
        ("B", -5),
    ]
    assert said(found["x"].companies_7d) == [("M", 3), ("O", 3), ("N", -7)]
    assert said(found["y"].executives_7d) == [("A", 4), ("E", 1)]
    assert said(found["z"].executives_7d) == [("F", -3), ("B", -1)]
    assert said(found["w"].executives_7d) == [(name, 1) for name in "ABCDEF"]
    assert found["x"].executives_28d == []
    rows = [row for row in _movers_rows(report) if row[:3] == ("x", "executive", 7)]
    # rank (4th) and direction (last): each side ranked apart, equal changes ranked alike.
    assert [(row[3], row[-1]) for row in rows] == [
        (1, "gain"),
        (2, "gain"),
        (2, "gain"),
        (1, "loss"),
        (2, "loss"),
    ]


def test_no_serving_copy_gives_a_not_enough_data_report(tmp_path, monkeypatch):
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    assert not report.enough_data
    html = report.html.read_text(encoding="utf-8")
    assert _parse(html).sections == {"not-enough-data"}
    assert "Not enough data" in html
    assert "has not published any day" in html
    assert f"written again with its figures, and mailed: slw report {day(LAST_DAY)}" in html
    assert "Not enough data" in PdfReader(report.pdf).pages[0].extract_text()


def test_a_week_before_the_data_begin_says_when_they_begin_not_that_it_comes_later(
    report_settings,
):
    begins = day(0)  # the published copy's first day of reach data
    with duckdb.connect(str(report_settings.serving_path), read_only=True) as con:
        (first,) = con.execute(
            "select min(metric_date) from marts.fct_reach_by_country_sector_all_platforms_daily"
        ).fetchone()
    assert first == begins

    report = write_weekly_report(report_settings, begins - timedelta(days=30), mail=False)

    html = report.html.read_text(encoding="utf-8")
    assert f"reach data begin on {begins}, after the week" in html
    first = begins + timedelta(days=1)
    assert f"The first week with enough data ends on {first}" in html
    assert "written again with its figures" not in html
    pdf = PdfReader(report.pdf).pages[0].extract_text()
    assert "The first week with enough data ends on" in " ".join(pdf.split())


def test_a_week_the_data_begin_in_says_so_not_that_its_days_went_unobserved(report_settings):
    # The week ending on the data's first day read "no follower counts were observed on the
    # others (the platforms' APIs give only the day's counts...)": there were no data yet.
    begins = day(0)

    report = write_weekly_report(report_settings, begins, mail=False)

    assert not report.enough_data
    html = " ".join(report.html.read_text(encoding="utf-8").split())
    assert f"reach data begin on {begins}, within the week" in html
    assert "reach data on 1 day of the week" in html
    assert "were observed" not in html
    assert f"The first week with enough data ends on {begins + timedelta(days=1)}" in html
    assert f"of the days before {begins} (slw import-history)" in html


# The daily facts a report reads, each cut the same way to make a warehouse of fewer days.
DAILY_FACTS = (
    "fct_executive_reach_daily",
    "fct_reach_by_country_sector_daily",
    "fct_reach_by_country_sector_all_platforms_daily",
    "fct_platform_coverage_daily",
)


def test_a_week_the_data_begin_in_with_a_gap_after_says_the_gap(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # Data from a day of the week, then none to the week's end, then on after it: the days
    # after the first were not observed, and the day after it makes no week of enough data.
    week = ReportWeek(day(LAST_DAY - 7))
    begins, resumes = week.end - timedelta(days=3), week.end + timedelta(days=1)
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        *(
            f"delete from marts.{table} where metric_date < date '{begins}' "
            f"or metric_date between date '{begins + timedelta(days=1)}' and date '{week.end}'"
            for table in DAILY_FACTS
        ),
    )

    report = write_weekly_report(settings, week.end, mail=False)

    html = " ".join(report.html.read_text(encoding="utf-8").split())
    assert resumes <= day(LAST_DAY)
    assert "within the week" not in html
    assert "no follower counts were observed on the others" in html
    assert "The first week with enough data" not in html


def test_a_one_day_warehouse_gives_a_not_enough_data_report(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    last = day(LAST_DAY).isoformat()
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        *(f"delete from marts.{table} where metric_date <> date '{last}'" for table in DAILY_FACTS),
    )

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    assert not report.enough_data
    text = PdfReader(report.pdf).pages[0].extract_text()
    assert "Not enough data" in text
    # The day is the data's first: said so, with the next week that has enough.
    html = " ".join(report.html.read_text(encoding="utf-8").split())
    assert f"reach data begin on {day(LAST_DAY)}, within the week" in html
    assert "reach data on 1 day of the week" in html
    assert f"first week with enough data ends on {day(LAST_DAY + 1)}" in html
    assert render(read_report_data(settings, report.week)).subject.endswith(": not enough data")


def test_a_week_with_one_day_of_data_is_not_enough_whatever_the_day_before_it(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    week = ReportWeek(day(LAST_DAY))
    kept = f"date '{week.start - timedelta(days=1)}', date '{week.start}'"
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        *(f"delete from marts.{table} where metric_date not in ({kept})" for table in DAILY_FACTS),
    )

    report = write_weekly_report(settings, week.end, mail=False)

    assert not report.enough_data
    assert f"reach data on 1 day between {week.start}" in report.html.read_text("utf-8")


def _audit_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The serving copy's audit tables the report reads, as the publish copies them."""
    con.execute("create schema audit")
    con.execute(
        "create table audit.quality_results (suite_name varchar, expectation varchar, "
        "column_name varchar, is_critical boolean, run_id varchar, success boolean, "
        "checked_at timestamptz)"
    )
    con.execute(
        "create table audit.runs (files_quarantined int, rows_quarantined int, "
        "recorded_at timestamptz)"
    )


def test_audit_times_count_in_the_week_of_their_utc_day_whatever_the_session_zone():
    con = duckdb.connect()
    con.execute("set TimeZone = 'Pacific/Kiritimati'")  # UTC+14, as a machine's zone
    _audit_tables(con)
    week = ReportWeek(date(2026, 11, 29))
    # Late on the week's last UTC day (already the next day in the session's zone), and
    # early on the day after it (still the last day in a zone west of UTC).
    con.execute(
        "insert into audit.quality_results values "
        "('s', 'e', 'c', true, 'r1', false, timestamptz '2026-11-29 23:30:00+00'), "
        "('s', 'e', 'c', true, 'r2', true, timestamptz '2026-11-30 00:30:00+00')"
    )
    con.execute("insert into audit.runs values (1, 5, timestamptz '2026-11-29 23:30:00+00')")
    report = WeeklyReportData(week, week.end, 7, 1)

    _run_history(con, report, {"audit.quality_results", "audit.runs"})

    assert (report.checks_passed, report.checks_failed) == (0, 1)
    assert (report.files_quarantined, report.rows_quarantined) == (1, 5)


@pytest.mark.parametrize(
    ("de_share", "us_share", "verdict", "gap"),
    [
        (68.6, 69.4, "lags", "0.8 percentage points fewer"),
        (69.0, 70.0, "lags", "1.0 percentage point fewer"),
        (70.02, 70.0, "does not lag", "the same share"),
        (72.5, 60.0, "does not lag", "12.5 percentage points more"),
        # Half up, as the table's changes: 0.25 points is 0.3 there and here (Python's round
        # gave 0.2; 93.75 % is 15 of 16 leaders, 94 % 47 of 50).
        (93.75, 94.0, "lags", "0.3 percentage points fewer"),
    ],
)
def test_the_gap_between_germany_and_the_us_is_said_to_a_tenth_of_a_point(
    de_share, us_share, verdict, gap
):
    def row(code: str, share: float) -> CountryHeadline:
        return CountryHeadline(code, code, 10, 7, share, None, 1000.0, 0.0, None)

    week = ReportWeek(date(2026, 11, 29))
    report = WeeklyReportData(week, week.end, 7, 1)
    report.headline = [row("DE", de_share), row("US", us_share)]

    # The verdict names its measure: a share alike said "does not lag" beside a reach six
    # times smaller.
    assert headline_lines(report)[-1] == (
        f"Germany {verdict} the US in the share of leaders active: {gap}; median reach 1.0k "
        "in Germany vs 1.0k in the US."
    )


def test_week_of_a_scheduled_run_is_the_seven_days_before_it():
    from datetime import datetime

    # The Monday 06:00 UTC run of 2026-11-30 (and one at midnight): Monday 23 to Sunday
    # 29 November, ISO week 48.
    for moment in (
        datetime(2026, 11, 30, 6, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    ):
        week = ReportWeek.ending_before(moment)
        assert (week.start.isoformat(), week.end.isoformat(), week.label) == (
            "2026-11-23",
            "2026-11-29",
            "2026-W48",
        )


@pytest.fixture
def smtp(monkeypatch):
    with loopback_smtp(monkeypatch, from_email="briefing@example.org") as mailbox:
        yield mailbox


def _report_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.name[0] != "."}


def test_a_mailed_report_is_kept_when_a_rerun_of_its_week_differs(
    report_settings, smtp, monkeypatch, capsys
):
    # The week's folder was replaced before the mail was looked at: a rerun with other
    # figures (a history import, a rebuild since) left the report its readers have nowhere,
    # saying only "already mailed".
    from social_leadership.cli import main
    from social_leadership.settings import load_settings

    monkeypatch.setenv("SLW_REPORT_EMAILS", "boss@example.org")
    sunday = day(LAST_DAY - 2)
    mailed = write_weekly_report(load_settings(), sunday)
    assert mailed.mailed_to == ("boss@example.org",)
    as_mailed = _report_files(mailed.folder)

    # The same report again: the folder mailed is left as it is, its PDF too.
    pdf = mailed.pdf.stat()
    again = write_weekly_report(load_settings(), sunday)
    assert (again.kept_mailed, again.mailed_to) == ("", ())
    assert (mailed.pdf.stat().st_ino, mailed.pdf.stat().st_mtime_ns) == (
        pdf.st_ino,
        pdf.st_mtime_ns,
    )

    # Another report of the week (here fewer movers): the one mailed is kept apart.
    monkeypatch.setenv("SLW_REPORT_MOVERS", "2")
    assert main(["report", sunday.isoformat()]) == 0
    today = datetime.now(UTC).date()
    kept = mailed.folder.with_name(f"{mailed.folder.name}_mailed_{today}")
    printed = capsys.readouterr().out
    assert (
        f"  the report mailed on {today} to boss@example.org differs from this one: it is kept "
        f"in {kept}\n  not mailed: already mailed to boss@example.org (resend to mail again)"
    ) in printed
    assert _report_files(kept) == as_mailed
    assert _report_files(mailed.folder) != as_mailed

    # Mailed again (a resend), the new one is marked: a rerun after it keeps it in turn.
    resent = write_weekly_report(load_settings(), sunday, resend=True)
    assert resent.mailed_to == ("boss@example.org",)
    as_resent = _report_files(mailed.folder)
    monkeypatch.setenv("SLW_REPORT_MOVERS", "3")
    third = write_weekly_report(load_settings(), sunday)
    assert third.kept_mailed.endswith(f"it is kept in {kept}_2")
    assert _report_files(kept.with_name(f"{kept.name}_2")) == as_resent
    assert _report_files(kept) == as_mailed
    # Never mailed, the third is replaced by the next run as before.
    monkeypatch.setenv("SLW_REPORT_MOVERS", "4")
    assert write_weekly_report(load_settings(), sunday, mail=False).kept_mailed == ""
    assert sorted(p.name for p in mailed.folder.parent.iterdir() if p.name[0] != ".") == [
        mailed.folder.name,
        kept.name,
        f"{kept.name}_2",
    ]
    assert len(smtp.messages) == 2


def test_a_week_to_date_mail_does_not_stop_the_mail_of_the_whole_week(
    report_settings, smtp, monkeypatch
):
    # Recorded under the week alone, the mail of days 1-5 of a week (a run given a week_end
    # ahead of its data) answered "already mailed" to the run of the whole week.
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    from social_leadership.reports.weekly import _delivery_record
    from social_leadership.settings import load_settings

    settings = load_settings()
    ahead = write_weekly_report(settings, day(LAST_DAY) + timedelta(days=2))
    assert ahead.data_through == day(LAST_DAY)
    assert ahead.mailed_to == ("board@example.org",)

    # The record of the days mailed; the week's, once its data are in, is another.
    assert _delivery_record(settings, ahead).exists()
    assert not _delivery_record(settings, replace(ahead, data_through=ahead.week.end)).exists()
    # A whole week's record keeps its name (deliveries recorded before stay found).
    whole = write_weekly_report(settings, day(LAST_DAY))
    assert whole.mailed_to == ("board@example.org",)
    assert _delivery_record(settings, whole).name == (
        f"{whole.week.label}_{day(LAST_DAY).isoformat()}.json"
    )
    assert write_weekly_report(settings, day(LAST_DAY)).mailed_to == ()


def test_a_not_enough_data_mail_does_not_stop_the_mail_of_the_week_s_figures(
    published, smtp, monkeypatch, tmp_path
):
    # Recorded as the week's, the mail of an empty warehouse's report (a fresh deployment's
    # first Monday) answered "already mailed" to the report of the same week once its data
    # were published: its readers never got the figures.
    from social_leadership.settings import load_settings

    def settings_on(data_dir: Path) -> Settings:
        settings_for_data_dir(monkeypatch, data_dir)
        monkeypatch.setenv("SLW_REPORTS_DIR", str(tmp_path / "reports"))
        monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
        return load_settings()

    empty = settings_on(tmp_path / "empty")
    first = write_weekly_report(empty, day(LAST_DAY))
    assert not first.enough_data
    assert first.mailed_to == ("board@example.org",)
    # Its text part says what a reader may do, as its HTML does.
    text = _text_part(smtp.messages[0][1])
    assert f"written again with its figures, and mailed: slw report {day(LAST_DAY)}" in text
    # Again without data: not mailed twice.
    assert write_weekly_report(empty, day(LAST_DAY)).mailed_to == ()
    (record,) = (tmp_path / "reports" / ".deliveries").glob("*.json")
    assert record.name.endswith("_not_enough_data.json")
    assert json.loads(record.read_text(encoding="utf-8"))["enough_data"] is False

    filled = write_weekly_report(settings_on(published.data_dir), day(LAST_DAY))

    assert filled.enough_data
    assert filled.mailed_to == ("board@example.org",)
    assert len(smtp.messages) == 2
    assert not email.message_from_bytes(smtp.messages[1][1])["Subject"].endswith("not enough data")
    assert write_weekly_report(settings_on(published.data_dir), day(LAST_DAY)).mailed_to == ()


def test_an_address_mailed_in_other_capitals_is_not_mailed_again(
    report_settings, smtp, monkeypatch
):
    # The record was compared letter for letter: B@ mailed, b@ got the same report again.
    from social_leadership.settings import load_settings

    monkeypatch.setenv("SLW_REPORT_EMAILS", "B@example.org")
    assert write_weekly_report(load_settings(), day(LAST_DAY)).mailed_to == ("B@example.org",)

    monkeypatch.setenv("SLW_REPORT_EMAILS", "a@example.org; b@EXAMPLE.org")
    again = write_weekly_report(load_settings(), day(LAST_DAY))

    assert again.mailed_to == ("a@example.org",)
    assert [sorted(recipients) for recipients, _ in smtp.messages] == [
        ["B@example.org"],
        ["a@example.org"],
    ]


def test_a_week_to_date_mail_s_text_says_what_day_its_data_end(report_settings, smtp, monkeypatch):
    # The HTML said "data through"; the plain-text part, all some readers see, did not.
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    from social_leadership.settings import load_settings

    ahead = write_weekly_report(load_settings(), day(LAST_DAY) + timedelta(days=2))

    assert ahead.data_through == day(LAST_DAY)
    assert f"data through {day(LAST_DAY)}" in _text_part(smtp.messages[0][1])


def _text_part(raw: bytes) -> str:
    (text,) = [
        part
        for part in email.message_from_bytes(raw).walk()
        if part.get_content_type() == "text/plain"
    ]
    return text.get_payload(decode=True).decode()


def test_days_without_observed_counts_are_said_not_shown_as_a_whole_week(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # A week whose figures carried counts from days before it (platforms down, gap-filled)
    # read as a whole week observed; a week with nothing observed gave a full report too.
    week = ReportWeek(day(LAST_DAY))
    before = ReportWeek(week.start - timedelta(days=1))
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "update marts.fct_executive_reach_daily set is_observed = false where metric_date "
        f"between date '{before.start}' and date '{week.end - timedelta(days=2)}'",
    )

    full = render(read_report_data(settings, ReportWeek(week.end - timedelta(days=14))))
    assert "were observed" not in full.html
    assert "were observed" not in full.text

    partial = write_weekly_report(settings, week.end, mail=False)
    said = (
        f"Follower counts were observed on 2 of the 7 days from {week.start} to {week.end}; "
        "the other days carry earlier counts forward or have none."
    )
    assert said in partial.html.read_text(encoding="utf-8")
    assert said in " ".join(PdfReader(partial.pdf).pages[0].extract_text().split())
    assert said in render(read_report_data(settings, week)).text

    nothing = write_weekly_report(settings, before.end, mail=False)
    assert nothing.enough_data
    assert (
        f"No follower counts were observed from {before.start} to {before.end}: every figure "
        "carries counts observed before the week forward"
    ) in nothing.html.read_text(encoding="utf-8")


def test_days_after_the_last_published_are_said_in_the_report_and_its_subject(published):
    # A Monday report of a week whose builds failed from Wednesday on gave Tuesday's figures
    # under the whole week's title, five days unsaid but for "data through" in its header.
    last = day(LAST_DAY)
    week = ReportWeek(last + timedelta(days=3))

    rendered = render(read_report_data(published, week))

    said = (
        f"No data had been published for {last + timedelta(days=1)} to {week.end} when this "
        f"report was made: its figures are of {last}, the last day published."
    )
    assert said in rendered.html
    assert said in rendered.text
    pdf_text = " ".join(PdfReader(io.BytesIO(rendered.pdf)).pages[0].extract_text().split())
    assert said in pdf_text
    assert rendered.subject.endswith(f": data through {last}")
    one_day = render(read_report_data(published, ReportWeek(last + timedelta(days=1))))
    assert f"No data had been published for {last + timedelta(days=1)} when" in one_day.html
    whole = render(read_report_data(published, ReportWeek(last)))
    assert "No data had been published" not in whole.html
    assert "data through" not in whole.subject


def test_the_checks_counted_are_said_to_be_those_of_the_builds_published(published):
    # A build whose gate failed published nothing: "57 passed, 0 failed" read as the
    # week's every check, the failed ones of the weekend's builds unsaid.
    data = read_report_data(published, ReportWeek(day(LAST_DAY)))
    data.checks_passed, data.checks_failed = 57, 0
    rendered = render(data)

    said = (
        "Quarantined files and quality checks of the builds published: a build that fails its "
        "checks publishes nothing, so its checks are not counted here; its alert and slw "
        "summary name them."
    )
    assert said in rendered.html
    pdf_text = " ".join(
        " ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(rendered.pdf)).pages
    )
    assert said in pdf_text
    # A week before the first run recorded has no checks to speak of.
    data.checks_passed = data.checks_failed = None
    assert "of the builds published" not in render(data).html


def test_days_at_a_week_s_end_without_data_before_later_data_are_a_gap_not_unpublished(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # A past week whose last two days have no reach data while the data go on after it:
    # they were published, with nothing observed, not "not published yet".
    week = ReportWeek(day(LAST_DAY - 4))
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "delete from marts.fct_reach_by_country_sector_all_platforms_daily where metric_date "
        f"between date '{week.end - timedelta(days=1)}' and date '{week.end}'",
    )

    rendered = render(read_report_data(settings, week))

    through = week.end - timedelta(days=2)
    said = (
        f"The serving copy has no reach data for {week.end - timedelta(days=1)} to {week.end}, "
        f"though its data go on after the week: the figures are of {through}, the week's last "
        "day with data."
    )
    assert said in html_module.unescape(rendered.html)
    assert said in rendered.text
    assert "No data had been published" not in rendered.html
    assert rendered.subject.endswith(f": data through {through}")


def test_a_change_of_the_leaders_tracked_on_the_week_is_said_beside_the_change(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # A leader moving from the US to Germany read as Germany's leaders becoming more active
    # (+0.7 pts on the week), with 46 tracked a week before and 47 on the day, unsaid.
    last = day(LAST_DAY)
    week_before = last - timedelta(days=7)
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "update marts.fct_reach_by_country_sector_all_platforms_daily "
        "set executives_tracked = executives_tracked - 1, "
        "executives_active = executives_active - 1 "
        f"where country_code = 'DE' and metric_date = date '{week_before}' and sector = ("
        "select min(sector) from marts.fct_reach_by_country_sector_all_platforms_daily "
        f"where country_code = 'DE' and metric_date = date '{week_before}' "
        "and executives_active > 0)",
    )

    report = read_report_data(settings, ReportWeek(last))

    rows = {row.country_code: row for row in report.headline}
    germany = rows["DE"]
    assert germany.active_share_change_pts is not None
    assert germany.executives_tracked_week_before == germany.executives_tracked - 1
    assert all(
        row.executives_tracked_week_before == row.executives_tracked
        for code, row in rows.items()
        if code != "DE"
    )
    assert (
        f", of {germany.executives_tracked - 1} tracked leaders a week before)"
        in (headline_lines(report)[0])
    )
    rendered = render(report)
    note = (
        f"Leaders tracked a week before and on {last}: Germany "
        f"{germany.executives_tracked - 1} to {germany.executives_tracked}. Leaders joined, "
        "left or moved: the change on the week is partly theirs."
    )
    assert note in html_module.unescape(rendered.html)
    assert note in rendered.text
    pdf_text = " ".join(PdfReader(io.BytesIO(rendered.pdf)).pages[0].extract_text().split())
    assert note in pdf_text
    header, csv_rows = rendered.figures["headline.csv"]
    column = header.index("executives_tracked_week_before")
    by_country = {row[0]: row[column] for row in csv_rows}
    assert by_country["DE"] == germany.executives_tracked - 1


@pytest.mark.parametrize("missing_on", ["last day", "week before"])
def test_a_platform_without_counts_on_one_day_compared_gives_no_change_on_the_week(
    synthetic_built_warehouse, tmp_path, monkeypatch, missing_on
):
    # An outage of X longer than the gap fill read as the leaders' own fall: "-17.5 pts on
    # the week" for the US, and "+17.5 pts" the week after, with nothing saying why.
    last = day(LAST_DAY)
    gone = last if missing_on == "last day" else last - timedelta(days=7)
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "update marts.fct_executive_reach_daily set followers = null "
        f"where platform = 'x' and metric_date = date '{gone}'",
    )
    compared = read_report_data(settings, ReportWeek(last))
    assert compared.headline
    assert all(row.active_share_change_pts is None for row in compared.headline)
    if missing_on == "last day":
        said = (
            f"No follower counts of X (Twitter) on {last} (see Coverage and trust): the "
            "figures of that day leave it out: no change on the week is shown."
        )
    else:
        said = f"No follower counts of X (Twitter) on {gone}: no change on the week is shown."
    assert said in headline_lines(compared)
    report = write_weekly_report(settings, last, mail=False)
    assert said in html_module.unescape(report.html.read_text(encoding="utf-8"))
    pdf_text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(report.pdf).pages)
    assert said in pdf_text


def test_a_platform_with_counts_on_both_days_keeps_the_change_on_the_week(report_settings):
    compared = read_report_data(report_settings, ReportWeek(day(LAST_DAY)))
    assert any(row.active_share_change_pts is not None for row in compared.headline)
    assert not any("no change on the week" in line for line in headline_lines(compared))


def test_a_week_the_data_go_past_says_its_days_will_not_fill_and_how_to_fill_them(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # It said the warehouse had "not published any day of it yet" and that the report
    # would come once it had: the platforms' APIs give only the day's counts, so it never
    # would.
    week = ReportWeek(day(LAST_DAY) - timedelta(days=7))
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "delete from marts.fct_reach_by_country_sector_all_platforms_daily where metric_date "
        f"between date '{week.start}' and date '{week.end - timedelta(days=1)}'",
    )
    text = render(read_report_data(settings, week)).text
    assert (
        f"The serving copy has reach data on 1 day of the week {week.start} to {week.end}, "
        f"though its data go on to {day(LAST_DAY)}: no follower counts were observed on the "
        "others"
    ) in text
    assert "An import of the follower history of those days (slw import-history)" in text
    assert "has not published any day of it yet" not in text
    # None of its days (the probe's week of August).
    earlier = ReportWeek(week.start - timedelta(days=1))
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "delete from marts.fct_reach_by_country_sector_all_platforms_daily where metric_date "
            f"between date '{earlier.start}' and date '{earlier.end}'"
        )
    publish(settings, "test-report-publish-2", synthetic=False)
    text = render(read_report_data(settings, earlier)).text
    assert (
        f"The serving copy has no reach data for the week {earlier.start} to {earlier.end}, "
        f"though its data go on to {day(LAST_DAY)}: no follower counts were observed on its days"
    ) in text


def test_a_week_before_the_first_recorded_run_says_its_checks_are_not_recorded(
    report_settings,
):
    # It read "Quality checks this week: not recorded passed, not recorded failed."
    data = read_report_data(report_settings, ReportWeek(day(LAST_DAY)))
    data.checks_passed = data.checks_failed = None
    rendered = render(data)
    assert "Quality checks this week: not recorded." in rendered.html
    assert "not recorded passed" not in rendered.html


def test_a_week_before_the_first_recorded_run_has_its_checks_not_recorded():
    # History imported from before the pipeline ran read "0 passed, 0 failed".
    con = duckdb.connect()
    _audit_tables(con)
    con.execute(
        "insert into audit.quality_results values "
        "('s', 'e', 'c', true, 'r1', true, timestamptz '2026-12-01 06:00:00+00')"
    )
    con.execute("insert into audit.runs values (0, 0, timestamptz '2026-12-01 06:00:00+00')")
    tables = {"audit.quality_results", "audit.runs"}

    earlier = WeeklyReportData(ReportWeek(date(2026, 11, 29)), date(2026, 11, 29), 7, 1)
    _run_history(con, earlier, tables)
    assert (earlier.checks_passed, earlier.checks_failed, earlier.files_quarantined) == (
        None,
        None,
        None,
    )

    # The week of the first run counts from it; a quiet week after it has 0.
    first = WeeklyReportData(ReportWeek(date(2026, 12, 6)), date(2026, 12, 6), 7, 1)
    _run_history(con, first, tables)
    assert (first.checks_passed, first.checks_failed, first.files_quarantined) == (1, 0, 0)
    later = WeeklyReportData(ReportWeek(date(2026, 12, 20)), date(2026, 12, 20), 7, 1)
    _run_history(con, later, tables)
    assert (later.checks_passed, later.checks_failed, later.files_quarantined) == (0, 0, 0)


def test_no_report_of_a_week_not_ended_is_written_or_mailed(report_settings, monkeypatch):
    from social_leadership.settings import load_settings
    from social_leadership.tasks import weekly_report_task

    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with pytest.raises(ReportError, match="has not ended yet"):
        write_weekly_report(load_settings(), tomorrow)
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="has not come yet"):
        weekly_report_task({"params": {"week_end": tomorrow.isoformat()}, "run_id": "manual__1"})
    assert not any(load_settings().reports_dir.glob("*W*"))


def test_report_is_mailed_once_with_the_pdf_attached(report_settings, smtp, monkeypatch):
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org, comms@example.org")
    from social_leadership.settings import load_settings

    settings = load_settings()
    report = write_weekly_report(settings, day(LAST_DAY))

    assert report.mailed_to == ("board@example.org", "comms@example.org")
    # A message each, addressed to its reader alone: no reader learns who else gets it.
    assert [recipients for recipients, _ in smtp.messages] == [
        ["board@example.org"],
        ["comms@example.org"],
    ]
    for (recipient,), raw in smtp.messages:
        message = email.message_from_bytes(raw)
        assert message["To"] == recipient
        other = ({"board@example.org", "comms@example.org"} - {recipient}).pop()
        assert other.encode() not in raw
    message = email.message_from_bytes(smtp.messages[0][1])
    assert "weekly briefing" in message["Subject"]
    assert message["From"] == "briefing@example.org"
    parts = list(message.walk())
    html = [p for p in parts if p.get_content_type() == "text/html"]
    assert len(html) == 1
    assert "Does Germany lag the US?" in html[0].get_payload(decode=True).decode()
    # A text part for clients that show no HTML: the headline lines.
    (text,) = [p for p in parts if p.get_content_type() == "text/plain"]
    assert "Germany lags the US" in text.get_payload(decode=True).decode()
    # Seven days to a Tuesday: named by their days, not as their ISO week's report.
    name = f"weekly_report_{report.week.start}_to_{report.week.end}.pdf"
    attached = [p for p in parts if p.get_filename() == name]
    assert len(attached) == 1
    assert attached[0].get_content_type() == "application/pdf"
    assert attached[0].get_payload(decode=True) == report.pdf.read_bytes()
    assert message["Message-ID"]

    # The same week again: files replaced, no second mail unless asked.
    again = write_weekly_report(settings, day(LAST_DAY))
    assert again.mailed_to == ()
    assert "already mailed" in again.mail_skipped
    assert len(smtp.messages) == 2
    write_weekly_report(settings, day(LAST_DAY), resend=True)
    assert len(smtp.messages) == 4
    # Another week is another report.
    write_weekly_report(settings, day(LAST_DAY) - timedelta(days=7))
    assert len(smtp.messages) == 6
    # So is the same ISO week's folder for other days (a week-to-date report before it).
    earlier = day(LAST_DAY) - timedelta(days=1)
    assert ReportWeek(earlier).label == ReportWeek(day(LAST_DAY)).label
    write_weekly_report(settings, earlier)
    assert len(smtp.messages) == 8

    # Every recipient has the week: a run after the connection was removed has nothing to
    # mail, and is not failed as "not mailed" (a resend would be).
    from social_leadership.tasks import weekly_report_task

    monkeypatch.delenv("AIRFLOW_CONN_SLW_SMTP")
    done = weekly_report_task({"params": {"week_end": earlier.isoformat()}, "run_id": "r9"})
    assert "already mailed" in done["not_mailed"]
    resent = write_weekly_report(settings, earlier, resend=True)
    assert "slw_smtp" in resent.mail_skipped
    assert len(smtp.messages) == 8


# Gmail shows a message's first 102 KB of HTML and clips the rest behind a link.
GMAIL_CLIPS_AT = 102 * 1024


def test_the_mailed_report_shows_its_charts_as_images_mail_clients_show(
    report_settings, smtp, monkeypatch
):
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    from social_leadership.settings import load_settings

    report = write_weekly_report(load_settings(), day(LAST_DAY))

    ((_, raw),) = smtp.messages
    message = email.message_from_bytes(raw)
    (related,) = [p for p in message.walk() if p.get_content_type() == "multipart/related"]
    html_part, *images = related.get_payload()
    html = html_part.get_payload(decode=True).decode()
    assert html_part.get_content_type() == "text/html"
    # No inline SVG, which Gmail removes and Outlook does not draw; under Gmail's clipping.
    assert "<svg" not in html
    assert len(html.encode()) < GMAIL_CLIPS_AT
    shown = _parse(html).images
    by_id = {image["Content-ID"].strip("<>"): image for image in images}
    assert [source for source, _ in shown] == [f"cid:{content_id}" for content_id in by_id]
    assert len(shown) == 4  # the headline, two trends, the platform mix
    assert all(alt for _, alt in shown)
    for image in images:
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        png = image.get_payload(decode=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert int.from_bytes(png[16:20], "big") == 1080  # its width: 7.2 inches at 150 dpi
    # The written file keeps its charts as SVG for browsers and the PDF.
    assert report.html.read_text(encoding="utf-8").count("<svg") == 4


def test_two_mails_of_one_week_at_once_mail_each_recipient_once(report_settings, smtp, monkeypatch):
    # Each read the record before the other wrote it (a slw report started while the
    # Monday run was mailing): every recipient got the week twice.
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org, comms@example.org")
    from social_leadership.settings import load_settings

    settings = load_settings()
    smtp.data_delay = 1.0
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: write_weekly_report(settings, day(LAST_DAY)), [1, 2]))

    assert sorted(len(report.mailed_to) for report in reports) == [0, 2]
    assert sorted(recipients for recipients, _ in smtp.messages) == [
        ["board@example.org"],
        ["comms@example.org"],
    ]


def test_a_message_refused_for_one_recipient_does_not_stop_the_others(
    report_settings, smtp, monkeypatch
):
    # A mailbox full (552 after DATA) stopped the mail there: the recipients after it got
    # nothing, and each retry met the same one first and stopped again.
    monkeypatch.setenv("SLW_REPORT_EMAILS", "a@example.org, full@example.org, c@example.org")
    from social_leadership.settings import load_settings

    settings = load_settings()
    smtp.full = {"full@example.org"}
    with pytest.raises(ReportError) as refused:
        write_weekly_report(settings, day(LAST_DAY))
    assert "full@example.org (552)" in str(refused.value)
    assert [recipients for recipients, _ in smtp.messages] == [
        ["a@example.org"],
        ["c@example.org"],
    ]

    smtp.full = set()
    assert write_weekly_report(settings, day(LAST_DAY)).mailed_to == ("full@example.org",)


def test_a_failed_send_says_the_server_s_reply_and_a_time_out_says_so(
    report_settings, smtp, monkeypatch
):
    # Only the kind of error was said: "SMTPDataError", whether the message was too big or
    # taken for spam; a server too slow to answer read "SMTPServerDisconnected".
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    from social_leadership.settings import load_settings

    settings = load_settings()
    smtp.data_reply = "554 5.3.4 Message too big for system"
    with pytest.raises(ReportError) as rejected:
        write_weekly_report(settings, day(LAST_DAY))
    assert "not mailed: SMTPDataError 554: 5.3.4 Message too big for system from the SMTP" in str(
        rejected.value
    )

    connection = json.loads(os.environ["AIRFLOW_CONN_SLW_SMTP"])
    connection["extra"]["timeout"] = 1
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", json.dumps(connection))
    smtp.data_reply, smtp.data_delay = None, 3.0
    with pytest.raises(ReportError) as slow:
        write_weekly_report(settings, day(LAST_DAY))
    assert "the server did not answer within the connection's time-out" in str(slow.value)


def test_slw_report_without_an_airflow_home_set_up_creates_no_metadata_database(
    report_settings, tmp_path
):
    # Looking for slw_smtp in Airflow's database created one, empty (in ~/airflow when
    # AIRFLOW_HOME is not set).
    home = tmp_path / "airflow_home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env |= {"AIRFLOW_HOME": str(home), "SLW_REPORT_EMAILS": "board@example.org"}

    done = run_slw("report", day(LAST_DAY).isoformat(), env=env, timeout=300)

    assert done.returncode == 1
    assert "the Airflow connection slw_smtp is not defined" in done.stderr
    assert not (home / "airflow.db").exists()


def test_slw_report_mails_through_a_connection_kept_in_airflow_s_database(
    report_settings, smtp, monkeypatch, tmp_path
):
    # Its own error said to add the connection in the Airflow UI; added there (or with
    # airflow connections add), slw report still did not see it: outside a task Airflow's
    # task SDK reads only the environment.
    from social_leadership.local_airflow import airflow_environment

    connection = os.environ["AIRFLOW_CONN_SLW_SMTP"]
    monkeypatch.delenv("AIRFLOW_CONN_SLW_SMTP")
    env = airflow_environment(tmp_path / "airflow_home", {})
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    airflow = [str(Path(sys.executable).with_name("airflow"))]
    add = ["connections", "add", "slw_smtp", "--conn-json", connection]
    for command in (["db", "migrate"], add):
        subprocess.run([*airflow, *command], env=env, check=True, capture_output=True, timeout=300)

    report_env = {**env, "SLW_REPORT_EMAILS": "board@example.org"}
    report_env |= {name: os.environ[name] for name in ("SLW_DATA_DIR", "SLW_REPORTS_DIR")}
    done = run_slw("report", day(LAST_DAY).isoformat(), env=report_env, timeout=300)

    assert done.returncode == 0, done.stderr
    assert re.search(r"mailed to\s+board@example.org", done.stdout)
    assert [recipients for recipients, _ in smtp.messages] == [["board@example.org"]]


def test_a_refused_recipient_fails_the_mail_and_a_retry_mails_only_that_one(
    report_settings, smtp, monkeypatch
):
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org; gone@example.org")
    from social_leadership.settings import load_settings

    settings = load_settings()
    smtp.refuse = {"gone@example.org"}

    with pytest.raises(ReportError) as refused:
        write_weekly_report(settings, day(LAST_DAY))

    assert "was not mailed to all recipients" in str(refused.value)
    assert "gone@example.org (550)" in str(refused.value)
    assert "mailed to board@example.org" in str(refused.value)
    assert [recipients for recipients, _ in smtp.messages] == [["board@example.org"]]
    # The address mended on the server: the retry mails the one refused, not the board again.
    smtp.refuse = set()
    retried = write_weekly_report(settings, day(LAST_DAY))
    assert retried.mailed_to == ("gone@example.org",)
    assert [recipients for recipients, _ in smtp.messages][1:] == [["gone@example.org"]]
    again = write_weekly_report(settings, day(LAST_DAY))
    assert again.mailed_to == ()
    assert "already mailed to board@example.org, gone@example.org" in again.mail_skipped


def test_a_retry_of_a_resend_mails_only_those_its_first_try_did_not_reach(
    report_settings, smtp, monkeypatch
):
    from social_leadership.settings import load_settings
    from social_leadership.tasks import weekly_report_task

    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org, gone@example.org")
    settings = load_settings()
    write_weekly_report(settings, day(LAST_DAY))
    working = os.environ["AIRFLOW_CONN_SLW_SMTP"]

    def task_try(run_id: str) -> dict:
        params = {"week_end": day(LAST_DAY).isoformat(), "resend": True}
        return weekly_report_task({"params": params, "run_id": run_id})

    # The resend run's first try fails before it mails anyone (a broken connection): its
    # retry mails all, not "already mailed".
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", "smtp//broken")
    with pytest.raises(ReportError):
        task_try("manual__resend")
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", working)
    smtp.refuse = {"gone@example.org"}
    with pytest.raises(ReportError):
        task_try("manual__resend")
    # Its next retry goes on with that resend: only the one refused.
    smtp.refuse = set()
    assert task_try("manual__resend")["mailed_to"] == 1
    assert task_try("manual__resend")["mailed_to"] == 0
    # Another resend run mails all again.
    assert task_try("manual__resend_2")["mailed_to"] == 2

    assert [recipients for recipients, _ in smtp.messages] == [
        ["board@example.org"],
        ["gone@example.org"],
        ["board@example.org"],
        ["gone@example.org"],
        ["board@example.org"],
        ["gone@example.org"],
    ]


def test_lines_name_an_iso_week_by_it_and_other_7_days_by_their_days():
    # make run on Monday 2026-12-07 printed "Weekly report 2026-W50 (2026-12-01 to
    # 2026-12-07)": six of the seven days are in W49.
    assert ReportWeek(date(2026, 12, 7)).heading == "of 2026-12-01 to 2026-12-07"
    assert ReportWeek(date(2026, 12, 6)).heading == "2026-W49 (2026-11-30 to 2026-12-06)"


def test_a_report_of_an_iso_week_is_titled_by_it_and_one_to_another_day_by_that_day(
    report_settings,
):
    # A week-to-date report was titled by its last day's ISO week: 29 January to
    # 4 February 2025 was "week 2025-W06", a week it mostly is not.
    sunday = day(LAST_DAY - 2)
    assert sunday.weekday() == 6
    full = write_weekly_report(report_settings, sunday, mail=False)
    to_date = write_weekly_report(report_settings, day(LAST_DAY), mail=False)

    assert "<title>Social leadership weekly briefing, week 2025-W05" in full.html.read_text()
    assert (
        "<title>Social leadership weekly briefing, the 7 days to 2025-02-04"
        in to_date.html.read_text()
    )


def test_a_run_triggered_without_a_logical_date_reports_the_week_before_it(report_settings):
    # Airflow 3 triggers a manual run (CLI, REST API) without a logical date: it has no
    # data interval, and the task failed with a KeyError on every try.
    from types import SimpleNamespace

    from social_leadership.tasks import weekly_report_task

    run_after = datetime.combine(day(LAST_DAY + 1), time(9, 30), tzinfo=UTC)
    context = {
        "params": {},
        "run_id": "manual__no_date",
        "data_interval_end": None,
        "dag_run": SimpleNamespace(run_after=run_after, logical_date=None),
    }

    written = weekly_report_task(context)

    assert (written["start"], written["end"]) == (
        day(LAST_DAY - 6).isoformat(),
        day(LAST_DAY).isoformat(),
    )
    assert Path(written["pdf"]).exists()


def test_without_the_connection_the_report_is_only_written(report_settings, monkeypatch):
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    monkeypatch.delenv("AIRFLOW_CONN_SLW_SMTP", raising=False)
    from social_leadership.settings import load_settings

    report = write_weekly_report(load_settings(), day(LAST_DAY))

    assert report.mailed_to == ()
    assert "slw_smtp" in report.mail_skipped
    assert report.pdf.exists()


def test_a_scheduled_report_asked_to_mail_without_the_connection_fails_saying_so(
    report_settings, monkeypatch
):
    # The run was green every Monday: the reason in its XCom alone, nobody mailed.
    from airflow.sdk.exceptions import AirflowFailException

    from social_leadership.tasks import weekly_report_task

    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    monkeypatch.delenv("AIRFLOW_CONN_SLW_SMTP", raising=False)

    with pytest.raises(AirflowFailException) as failed:
        weekly_report_task({"params": {"week_end": day(LAST_DAY).isoformat()}, "run_id": "r1"})

    message = str(failed.value)
    assert "is written (" in message
    assert "not mailed: SLW_REPORT_EMAILS is set and the Airflow connection slw_smtp" in message
    assert "then clear this task" in message
    assert (_last_day_folder(report_settings) / "weekly_report.pdf").exists()


def test_report_reads_only_the_serving_copy(synthetic_built_warehouse, tmp_path, monkeypatch):
    settings = _published_copy(synthetic_built_warehouse, tmp_path / "data", monkeypatch)
    # No working warehouse at all (as on a host that only sees the serving copy), and no
    # single-file copy either: the report reads the DuckLake catalog.
    settings.warehouse_path.unlink()
    settings.serving_path.unlink()

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    assert report.enough_data
    assert not settings.warehouse_path.exists()


def _last_day_folder(settings: Settings) -> Path:
    """The folder of the 7 days to LAST_DAY, a past Tuesday: their own, not their week's."""
    return settings.reports_dir / f"{ReportWeek(day(LAST_DAY)).label}_to_{day(LAST_DAY)}"


def test_slw_report_writes_the_week_and_says_where(report_settings, capsys):
    from social_leadership.cli import main

    assert main(["report", day(LAST_DAY).isoformat(), "--no-mail"]) == 0
    out = capsys.readouterr().out
    folder = _last_day_folder(report_settings)
    assert f"html       {folder / 'weekly_report.html'}" in out
    assert f"pdf        {folder / 'weekly_report.pdf'}" in out
    assert (folder / "weekly_report.pdf").exists()


def test_slw_report_of_a_given_week_prints_only_where_its_files_are(report_settings):
    # Checking the date imported Airflow, whose logging then wrote an INFO line of the
    # report to stdout, ahead of what a script reads there.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLW_")}
    env.update(report_settings.as_env())
    week = ReportWeek(day(LAST_DAY))

    done = run_slw("report", day(LAST_DAY).isoformat(), "--no-mail", env=env, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (f"Weekly report {week.heading}:")
    assert "[info" not in done.stdout


def test_slw_report_says_how_to_add_a_missing_smtp_connection(report_settings, monkeypatch, capsys):
    from social_leadership.cli import main

    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    monkeypatch.delenv("AIRFLOW_CONN_SLW_SMTP", raising=False)

    assert main(["report", day(LAST_DAY).isoformat()]) == 1

    captured = capsys.readouterr()
    # The message is the last two lines (a library's own first-use notice, such as
    # matplotlib building its font cache, may come before them).
    error, fix = captured.err.strip().splitlines()[-2:]
    assert "SLW_REPORT_EMAILS is set but the Airflow connection slw_smtp is not defined" in error
    assert "AIRFLOW_CONN_SLW_SMTP" in fix
    assert "--no-mail" in fix
    assert "Traceback" not in captured.err
    folder = _last_day_folder(report_settings)
    assert (folder / "weekly_report.pdf").exists()  # written all the same


def test_slw_report_says_an_smtp_connection_airflow_cannot_read_is_broken(
    report_settings, monkeypatch, capsys
):
    from social_leadership.cli import main

    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", "smtp//mailer:pw-secret@127.0.0.1")

    assert main(["report", day(LAST_DAY).isoformat()]) == 1

    error = capsys.readouterr().err
    assert "AIRFLOW_CONN_SLW_SMTP is set but Airflow cannot read it as connection slw_smtp" in error
    assert "pw-secret" not in error
    assert "Traceback" not in error


@pytest.mark.parametrize("host", ["127.0.0.1", None])
def test_slw_report_names_the_smtp_server_that_failed(report_settings, monkeypatch, capsys, host):
    from social_leadership.cli import main

    port = free_port()  # nothing listens there
    monkeypatch.setenv("SLW_REPORT_EMAILS", "board@example.org")
    smtp = {"conn_type": "smtp", "host": host, "port": port}
    smtp["extra"] = {"disable_ssl": True, "disable_tls": True, "retry_limit": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", json.dumps(smtp))

    assert main(["report", day(LAST_DAY).isoformat()]) == 1

    error = capsys.readouterr().err.strip().splitlines()[-1]
    # Refused at the port named, or no server to talk to without a host.
    failure = "ConnectionRefusedError" if host else "SMTPServerDisconnected"
    server = f"{host}:{port}" if host else "the connection leaves unnamed"
    assert error.endswith(
        f"was not mailed: {failure} from the SMTP server {server} (connection slw_smtp)"
    )


def test_slw_report_refuses_a_bad_date(capsys):
    from social_leadership.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["report", "2026-13-01"])
    assert exit_info.value.code == 2
    assert "'2026-13-01' is no such day: month must be in 1..12" in capsys.readouterr().err


# Every mark of synthetic data in the marts turned off.
NOTHING_SYNTHETIC = (
    "update marts.dim_executive set is_synthetic = false",
    "update marts.fct_reach_by_country_sector_all_platforms_daily set synthetic_executives_pct = 0",
    "update marts.fct_platform_coverage_daily set is_synthetic = false",
    "update marts.fct_country_expectations_yearly set is_synthetic = false",
    "update marts.fct_executive_reach_daily set is_synthetic = false",
)


def test_no_synthetic_notice_when_nothing_shown_is_synthetic(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        *NOTHING_SYNTHETIC,
    )

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    html = report.html.read_text(encoding="utf-8")
    assert "Does Germany lag the US?" in html
    assert "Synthetic data." not in html
    assert not any("SYNTHETIC DATA" in page.extract_text() for page in PdfReader(report.pdf).pages)
    for name in (name for name in report.files if name.endswith(".csv")):
        with (report.folder / name).open(encoding="utf-8") as handle:
            assert {row["synthetic_notice"] for row in csv.DictReader(handle)} <= {""}, name


def test_a_mover_with_synthetic_counts_alone_brings_the_synthetic_notice(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # Only the 28-day leaders and the roster's flag were looked at: a real leader with
    # synthetic counts among the 7-day or company movers showed invented figures as real.
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        *NOTHING_SYNTHETIC,
        # The top mover of one platform: synthetic counts, a real roster entry.
        """update marts.fct_executive_reach_daily set is_synthetic = true
        where (executive_id, platform) = (
            select (executive_id, platform) from marts.fct_executive_reach_daily
            where followers_change_7d is not null order by abs(followers_change_7d) desc,
            executive_id limit 1)""",
    )

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    html = report.html.read_text(encoding="utf-8")
    assert "Synthetic data." in html
    assert "synthetic follower counts" in html
    assert "demo roster" not in html
    assert all("SYNTHETIC DATA" in page.extract_text() for page in PdfReader(report.pdf).pages)


def _report_of_real_leaders_with(built, tmp_path, monkeypatch, *updates: str):
    """The week's report of a published copy where nothing is synthetic but ``updates``."""
    settings = _published_copy(built, tmp_path / "data", monkeypatch, *NOTHING_SYNTHETIC, *updates)
    return write_weekly_report(settings, day(LAST_DAY), mail=False)


def test_synthetic_counts_of_real_leaders_bring_the_notice_in_a_week_without_such_movers(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # Counts a week's medians and trends are made of (the demo's seeded history) came
    # with no notice when no leader with them was listed among the movers.
    week_start = ReportWeek(day(LAST_DAY)).start
    report = _report_of_real_leaders_with(
        synthetic_built_warehouse,
        tmp_path,
        monkeypatch,
        "update marts.fct_executive_reach_daily set is_synthetic = true "
        f"where metric_date = date '{week_start}'",
    )

    html = report.html.read_text(encoding="utf-8")
    assert "synthetic follower counts" in html
    assert "demo roster" not in html
    assert all("SYNTHETIC DATA" in page.extract_text() for page in PdfReader(report.pdf).pages)


def test_synthetic_history_of_real_leaders_is_named_beside_the_sandbox_s_answers(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # The demo's generated history of real leaders (their movers' and trends' past) went
    # unsaid where the sandbox's answers were named: the notice named those alone.
    week_start = ReportWeek(day(LAST_DAY)).start
    report = _report_of_real_leaders_with(
        synthetic_built_warehouse,
        tmp_path,
        monkeypatch,
        "update marts.fct_platform_coverage_daily set is_synthetic = true",
        "update marts.fct_executive_reach_daily set is_synthetic = true, source = 'import' "
        f"where metric_date < date '{week_start}'",
    )

    html = report.html.read_text(encoding="utf-8")
    assert "synthetic answers of the sandbox platform API" in html
    assert "synthetic follower counts imported as the history of real executives" in html


def test_movers_of_imported_synthetic_history_alone_do_not_say_it_twice(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # Every count of the real leaders imported synthetic history: the notice said it, then
    # "synthetic follower counts" again for the movers made of it.
    report = _report_of_real_leaders_with(
        synthetic_built_warehouse,
        tmp_path,
        monkeypatch,
        "update marts.fct_executive_reach_daily set is_synthetic = true, source = 'import'",
    )

    html = " ".join(report.html.read_text(encoding="utf-8").split())
    assert "synthetic follower counts imported as the history of real executives" in html
    assert "real executives, synthetic follower counts" not in html


def test_a_report_names_platforms_days_behind_and_survey_shares_as_everywhere_else(
    report_settings,
):
    from social_leadership.reports.data import Coverage, Expectation
    from social_leadership.reports.render import data_as_of, expectation

    report = write_weekly_report(report_settings, day(LAST_DAY), mail=False)

    # Movers' headings and the platform-mix legend by name, as the coverage table has them.
    html = report.html.read_text(encoding="utf-8")
    assert "<h3>X (Twitter)</h3>" in html
    assert "<h3>x</h3>" not in html
    charts = all_charts(read_report_data(report_settings, report.week))
    [mix] = [chart for chart in charts if chart.name == "platform_mix"]
    legend = {text.get_text() for text in mix.figure.axes[0].get_legend().get_texts()}
    assert "X (Twitter)" in legend
    assert "x" not in legend
    # One day behind is a day; shares round as every other share of the report does.
    row = Coverage("x", "X (Twitter)", *(0,) * 8, day(LAST_DAY - 1), 1)
    assert data_as_of(row) == f"{day(LAST_DAY - 1)} (1 day behind)"
    figure = Expectation("DE", "q", "t", 74.5, 70.0, 79.0, None, True, 2025, "S", "c", False, 1)
    assert expectation(figure).startswith("75% (")
    assert expectation(replace(figure, share_pct=99.6)).startswith(">99% (")


def test_the_printed_report_lets_no_table_scroll_out_of_the_page():
    from social_leadership.reports import render

    template = (render.TEMPLATES / "weekly.html.j2").read_text(encoding="utf-8")
    printed = template[template.index("@media print") :]
    printed = printed[: printed.index("</style>")]
    assert re.search(r"\.table-wrap\s*\{\s*overflow:\s*visible;", printed)
    assert re.search(r"h2, h3\s*\{\s*break-after:\s*avoid;", printed)


def test_a_change_both_carried_and_imported_is_marked_both_ways(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        # Every change: today's count carried forward, the earlier one imported.
        "update marts.fct_executive_reach_daily set is_observed = false, source = 'import'",
    )

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    with (report.folder / "movers.csv").open(encoding="utf-8") as handle:
        movers = list(csv.DictReader(handle))
    assert movers
    assert {row["caveat"] for row in movers} == {"carried/imported"}
    assert "\u2020\u2021" in report.html.read_text(encoding="utf-8")


def test_every_pdf_table_heading_word_fits_its_column():
    # fpdf2 breaks a word wider than its cell between letters: "Suspende|d", "Countr|y".
    from social_leadership.reports import render

    pdf = render._ReportPdf("title", "notice")
    pdf.add_page()
    template = (render.TEMPLATES / "weekly_pdf.html.j2").read_text(encoding="utf-8")
    headings = re.findall(r'<th width="(\d+)%"[^>]*>([^<]+)</th>', template)
    assert len(headings) > 20
    pdf.set_font(render._FONT, "B", 9)
    too_wide = [
        (word, percent)
        for percent, label in headings
        for word in label.split()
        if pdf.get_string_width(word) + 2 * pdf.c_margin > pdf.epw * int(percent) / 100
    ]
    assert too_wide == []


def test_shares_round_half_up_and_never_read_all_or_none_unless_so():
    from social_leadership.reports.render import pct, pts

    # Python's format rounds half to even: 1 of 8 leaders read 12%.
    assert [pct(v) for v in (12.5, 37.5, 62.5, 87.5)] == ["13%", "38%", "63%", "88%"]
    # 499 of 500 active is not all of them; 1 of 500 is not none.
    assert [pct(99.8), pct(0.2), pct(100.0), pct(0.0), pct(None)] == [
        ">99%",
        "<1%",
        "100%",
        "0%",
        "\u2013",
    ]
    assert [pts(-0.04), pts(0.25), pts(-0.25)] == ["+0.0 pts", "+0.3 pts", "-0.3 pts"]


def test_a_global_figure_standing_in_for_a_country_s_is_said_in_the_pdf_and_csv(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # The HTML said "global figure"; the PDF and headline.csv showed it as the country's.
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "update marts.fct_country_expectations_yearly set is_country_figure = false",
    )

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    with (report.folder / "headline.csv").open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["expectation_share_pct"]]
    assert rows
    assert {row["expectation_is_country_figure"] for row in rows} == {"False"}
    assert all(row["expectation_wave"] for row in rows)
    text = " ".join(page.extract_text() for page in PdfReader(report.pdf).pages)
    assert "global figure) [" in text


def test_every_survey_share_shown_carries_its_sample_size(
    synthetic_built_warehouse, tmp_path, monkeypatch
):
    # DESIGN: a survey share is published with its sample size and its 95% interval; the
    # report showed the interval alone. A figure whose survey gives no size says so.
    settings = _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        "update marts.fct_country_expectations_yearly set sample_size = 1150",
        "update marts.fct_country_expectations_yearly set sample_size = null "
        "where country_code = 'DE'",
    )

    report = write_weekly_report(settings, day(LAST_DAY), mail=False)

    with (report.folder / "headline.csv").open(encoding="utf-8") as handle:
        rows = {r["country_code"]: r for r in csv.DictReader(handle) if r["expectation_share_pct"]}
    assert rows["DE"]["expectation_sample_size"] == ""
    assert rows["US"]["expectation_sample_size"] == "1150"
    # New columns come last: the others keep their places for positional readers. The
    # headline table's change on the week was in no file.
    header = (report.folder / "headline.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith(
        ",expectation_wave,expectation_sample_size,active_share_change_pts,"
        "executives_tracked_week_before,synthetic_notice"
    )
    changes = [row["active_share_change_pts"] for row in rows.values()]
    assert any(changes)
    assert all(abs(float(change)) <= 100 for change in changes if change)
    html = report.html.read_text(encoding="utf-8")
    assert "n = 1,150;" in html
    # DE's headline cell says its size is not published, as the PDF's does (it said nothing).
    assert re.search(r"\d+\.\d%, n not published; ", html)
    # The headline column names the answer its shares give (it named none).
    assert re.search(r"Public expectation: the share answering “[^”<]+”\.", html)
    assert '<td class="num">1,150</td>' in html
    assert '<td class="num">not published</td>' in html
    assert "effective sample size (Kish)" in html
    text = " ".join(page.extract_text() for page in PdfReader(report.pdf).pages)
    assert "Sample size" in text
    # The PDF's headline table too (it showed the share alone, the survey table only DE's
    # and the US's): share, interval and sample size of every country's figure.
    text = re.sub(r"\s+", " ", text)
    share = r"\d+% \(\d+\.\d\u2013\d+\.\d%"
    assert len(re.findall(share + r", n = 1,150(?:; global figure)?\) \[", text)) == 1  # US
    # DE: its size not published, said so (the column's head promises one).
    assert len(re.findall(share + r", n not published(?:; global figure)?\) \[", text)) == 1
    assert "effective sample size (Kish)" in text


def _font_with(path: Path, characters: str) -> Path:
    """A TrueType font whose only glyphs are squares for ``characters``."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    names = {ord(character): f"uni{ord(character):04X}" for character in characters}
    pen = TTGlyphPen(None)
    for x, y in ((100, 0), (100, 700), (900, 700), (900, 0)):
        (pen.lineTo if x != 100 or y != 0 else pen.moveTo)((x, y))
    pen.closePath()
    square = pen.glyph()
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder([".notdef", *names.values()])
    builder.setupCharacterMap(names)
    builder.setupGlyf({name: square for name in [".notdef", *names.values()]})
    builder.setupHorizontalMetrics({name: (1000, 100) for name in [".notdef", *names.values()]})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "SLW Test Squares", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=800, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    path.parent.mkdir(parents=True, exist_ok=True)
    builder.save(str(path))
    return path


CHINESE_NAME = "\u5b6b\u6b63\u7fa9"


@pytest.fixture
def chinese_names(synthetic_built_warehouse, tmp_path, monkeypatch) -> Settings:
    """A published copy where every leader has a name in Chinese characters."""
    return _published_copy(
        synthetic_built_warehouse,
        tmp_path / "data",
        monkeypatch,
        f"update marts.dim_executive set full_name = '{CHINESE_NAME} ' || executive_id",
    )


def _pdf_text(report) -> str:
    return " ".join(page.extract_text() for page in PdfReader(report.pdf).pages)


def test_a_name_no_pdf_font_has_is_said_to_be_left_out_of_the_pdf(chinese_names, monkeypatch):
    # DejaVu Sans has no Chinese, Japanese or Korean: such a name was left out of the PDF
    # (a blank where the mover's name was), said only in a log line of fpdf2's.
    monkeypatch.setenv("PATH", "")  # no fontconfig to find a font with

    report = write_weekly_report(chinese_names, day(LAST_DAY), mail=False)

    assert CHINESE_NAME in report.html.read_text(encoding="utf-8")
    text = _pdf_text(report)
    assert CHINESE_NAME not in text
    assert "left out (U+5B6B, U+6B63, U+7FA9): the HTML report shows them" in text
    assert "SLW_REPORT_FONTS" in text


def test_a_name_in_chinese_is_drawn_with_the_font_slw_report_fonts_names(
    chinese_names, tmp_path, monkeypatch
):
    monkeypatch.setenv("PATH", "")
    font = _font_with(tmp_path / "fonts" / "squares.ttf", CHINESE_NAME)
    # A font gone (an image rebuilt without it) is skipped: it stops neither the settings
    # (every DAG and command loads them) nor the report.
    gone = tmp_path / "fonts" / "gone.ttf"
    monkeypatch.setenv("SLW_REPORT_FONTS", f"{gone}{os.pathsep}{font}")
    from social_leadership.settings import load_settings

    report = write_weekly_report(load_settings(), day(LAST_DAY), mail=False)

    text = _pdf_text(report)
    assert f"{CHINESE_NAME} " in text
    assert "U+5B6B" not in text


def _fontconfig_of(folder: Path, monkeypatch) -> None:
    """fontconfig (fc-match) knowing the fonts of ``folder`` alone."""
    config = folder.parent / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>{folder}</dir><cachedir>{folder.parent / 'fc-cache'}</cachedir></fontconfig>",
        encoding="utf-8",
    )
    monkeypatch.setenv("FONTCONFIG_FILE", str(config))


needs_fontconfig = pytest.mark.skipif(
    shutil.which("fc-match") is None, reason="needs fontconfig (fc-match)"
)


@needs_fontconfig
def test_without_the_setting_a_font_fontconfig_knows_draws_the_name(
    chinese_names, tmp_path, monkeypatch
):
    _fontconfig_of(_font_with(tmp_path / "fonts" / "squares.ttf", CHINESE_NAME).parent, monkeypatch)

    report = write_weekly_report(chinese_names, day(LAST_DAY), mail=False)

    assert f"{CHINESE_NAME} " in _pdf_text(report)


@needs_fontconfig
def test_fontconfig_finds_what_the_fonts_named_lack_and_reaches_every_script(tmp_path, monkeypatch):
    from social_leadership.reports.render import _pdf_fonts

    # SLW_REPORT_FONTS has the first character; fontconfig knows a font with the others.
    given = _font_with(tmp_path / "given" / "first.ttf", CHINESE_NAME[0])
    known = _font_with(tmp_path / "known" / "rest.ttf", CHINESE_NAME[1:])
    _fontconfig_of(known.parent, monkeypatch)
    # 40 Ethiopic characters no font has, in code point order before the Chinese ones: the
    # lookups, at most 16, went to them first and never reached the name.
    ethiopic = "".join(chr(0x1200 + number) for number in range(40))

    fonts, lacking = _pdf_fonts(f"{ethiopic} {CHINESE_NAME}", [given])

    assert fonts == [given, known]
    assert lacking == ethiopic


def test_slw_report_fonts_takes_font_files_only(tmp_path, monkeypatch):
    from social_leadership.settings import SettingsError, load_settings

    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLW_REPORT_FONTS", __file__)
    with pytest.raises(SettingsError, match="SLW_REPORT_FONTS") as raised:
        load_settings()
    assert "is not a TrueType or OpenType font (.ttf, .otf, .ttc)" in str(raised.value)
    first = _font_with(tmp_path / "a.ttf", "x")
    second = _font_with(tmp_path / "b.otf", "y")
    monkeypatch.setenv("SLW_REPORT_FONTS", f"{first}{os.pathsep} {second}")
    assert load_settings().report_font_files == (first, second)


def test_a_report_logs_no_font_subsetting_lines(
    synthetic_built_warehouse, tmp_path, monkeypatch, caplog
):
    # Under Airflow's root logger (INFO), fontTools wrote ~150 lines a report to stdout.
    settings = _published_copy(synthetic_built_warehouse, tmp_path / "data", monkeypatch)
    caplog.set_level("INFO")

    write_weekly_report(settings, day(LAST_DAY), mail=False)

    assert not [r for r in caplog.records if r.name.startswith("fontTools")]


@pytest.mark.parametrize("countries", [3, 27, 44, 120])
def test_a_headline_chart_of_any_number_of_countries_fits_its_pdf_page(countries):
    # The headline chart grows with the countries: at 44 it was drawn 1,082 pt tall on an
    # 842 pt page, its last countries, axis and legend cut off and its caption a page on.
    from social_leadership.reports.charts import Chart, _figure
    from social_leadership.reports.render import chart_width

    figure = _figure(7.2, 0.32 * countries + 1.2)
    chart = Chart("headline", "t", "d", "<svg/>", figure, ("a",), [])
    page_width, page_height = 180.0, 267.0  # A4 less margins (mm)

    width = chart_width(chart, page_width, page_height)

    height = width * figure.get_figheight() / figure.get_figwidth()
    assert width <= page_width
    assert height <= page_height - 10
    # As wide as the page while that fits: a small chart is not shrunk.
    assert width == page_width or height >= page_height - 20
    if countries == 3:
        assert width == page_width


def test_a_trend_chart_of_many_countries_draws_each_in_a_colour_of_its_own():
    # 44 countries: 42 lines in 14 colours, three countries to each, the legend unreadable.
    from social_leadership.reports.charts import country_colours, drawn_countries

    countries = ["DE", "US", *(f"C{n:02d}" for n in range(42))]  # the headline's order

    drawn = drawn_countries(countries)

    colours = country_colours(drawn)
    assert len(set(colours.values())) == len(drawn)
    assert drawn[:2] == ["DE", "US"]
    assert drawn[2:] == countries[2 : len(drawn)]  # those tracking the most leaders
    assert len(drawn) > 10
    assert drawn_countries(countries[:9]) == countries[:9]


def test_every_platform_of_the_mix_chart_has_a_colour_told_apart_from_the_others():
    # Bluesky's, Facebook's and LinkedIn's brand blues, stacked side by side, read as one.
    from itertools import combinations

    from matplotlib.colors import to_rgb

    from social_leadership.domain import PLATFORMS
    from social_leadership.reports.charts import PLATFORM_COLOURS

    assert set(PLATFORMS) <= set(PLATFORM_COLOURS)
    for one, other in combinations(sorted(PLATFORM_COLOURS), 2):
        pairs = zip(to_rgb(PLATFORM_COLOURS[one]), to_rgb(PLATFORM_COLOURS[other]), strict=True)
        distance = sum((a - b) ** 2 for a, b in pairs) ** 0.5
        # At least a quarter of the way from black to white on one channel (the brand blues
        # of Bluesky and Facebook were 0.13 apart).
        assert distance >= 0.25, (one, other)


def test_the_pdf_headline_cell_says_a_sample_size_not_published():
    # The column's head promises a sample size: a figure without one showed nothing there.
    from dataclasses import replace

    from social_leadership.reports.data import Expectation
    from social_leadership.reports.render import expectation_brief

    figure = Expectation(
        "DE", "ceo_clear_stand", "q", 76.0, 73.1, 78.9, None, True, 2019, "Edelman", "c", False, 1
    )

    assert expectation_brief(figure) == "76% (73.1\u201378.9%, n not published) [1]"
    assert expectation_brief(replace(figure, sample_size=1150)) == (
        "76% (73.1\u201378.9%, n = 1,150) [1]"
    )
