"""The weekly report's charts: matplotlib figures as SVG (and PNG for the mail), with the
figures behind each.

SVG output is made reproducible: a fixed hash salt for the ids matplotlib generates, no
date in the metadata, glyphs drawn as paths (no dependence on the reader's fonts), and the
XML prologue and metadata block removed so the SVG can sit inline in HTML. The same SVG is
drawn into the PDF (fpdf2 reads it as vector graphics). Mail clients show no inline SVG
(Gmail removes it, Outlook draws nothing), so the mailed report shows each chart as a PNG of
the same figure (:meth:`Chart.png`, drawn only for a mail), with no software name in its
metadata: the same data and matplotlib give the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import matplotlib

matplotlib.use("svg")

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from social_leadership.formatting import compact_count, counted
from social_leadership.reports.data import FOCUS_COUNTRIES, WeeklyReportData, trend_days

FOCUS_COLOURS = {"DE": "#b2182b", "US": "#2166ac"}
OTHER_COLOURS = (
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
    "#666666", "#17becf", "#bcbd22", "#8c564b", "#9467bd", "#ff7f0e", "#2ca02c",
)  # fmt: skip
# Okabe and Ito's palette, told apart also by colour-blind readers: the brands' own blues
# (Bluesky, Facebook, LinkedIn), stacked side by side, read as one.
PLATFORM_COLOURS = {
    "bluesky": "#56b4e9", "facebook": "#0072b2", "instagram": "#cc79a7", "linkedin": "#009e73",
    "mastodon": "#e69f00", "threads": "#666666", "x": "#000000", "youtube": "#d55e00",
}  # fmt: skip
_RC = {
    "svg.hashsalt": "social-leadership-weekly-report",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# The mailed charts' resolution: 1.5 times their size on screen (1080 pixels wide for a
# 720-pixel chart), sharp on high-density screens at about 35 KB a chart.
PNG_DPI = 150
_PROLOGUE = re.compile(r"\A.*?(?=<svg)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    # Text alternative for screen readers and the e-mail body's text part.
    description: str
    svg: str
    figure: Figure = field(repr=False, compare=False)
    header: tuple[str, ...]
    rows: list[tuple]

    def png(self) -> bytes:
        """The chart as mail clients show it (:data:`PNG_DPI`)."""
        buffer = io.BytesIO()
        with matplotlib.rc_context(_RC):
            self.figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
        return buffer.getvalue()


def _svg(figure: Figure, title: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Title": title})
    svg = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1), count=1)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attribute(title)}" ', 1)


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _focus(countries: Sequence[str]) -> list[str]:
    return [c for c in countries if c in FOCUS_COUNTRIES]


def drawn_countries(countries: Sequence[str]) -> list[str]:
    """The countries a trend chart draws, in ``countries``' order (the headline's: focus
    first, then by leaders tracked): the focus ones and as many others as there are colours
    (44 countries drew 42 lines in 14 colours, three countries to each; the chart's CSV
    still holds every country)."""
    focus = _focus(countries)
    others = [c for c in countries if c not in focus][: len(OTHER_COLOURS)]
    return [c for c in countries if c in focus or c in others]


def country_colours(countries: Sequence[str]) -> dict[str, str]:
    others = sorted(c for c in countries if c not in FOCUS_COLOURS)
    colours = {c: OTHER_COLOURS[i % len(OTHER_COLOURS)] for i, c in enumerate(others)}
    return {**colours, **{c: FOCUS_COLOURS[c] for c in countries if c in FOCUS_COLOURS}}


def headline_chart(report: WeeklyReportData) -> Chart:
    rows = report.headline
    title = "Leaders active on social platforms vs. the public's expectation of CEOs (%)"
    with matplotlib.rc_context(_RC):
        figure = _figure(7.2, 0.32 * len(rows) + 1.2)
        axes = figure.subplots()
        labels = [row.country_code for row in rows][::-1]
        shares = [row.active_share_pct for row in rows][::-1]
        colours = [FOCUS_COLOURS.get(label, "#9e9e9e") for label in labels]
        axes.barh(labels, shares, color=colours, height=0.6, label="leaders active")
        label = "public expecting it (95% interval)"
        for index, row in enumerate(rows[::-1]):
            figure_ = row.expectation
            if figure_ is None:
                continue
            low = figure_.share_pct - (figure_.ci_lower_pct or figure_.share_pct)
            high = (figure_.ci_upper_pct or figure_.share_pct) - figure_.share_pct
            axes.errorbar(
                figure_.share_pct, index, xerr=[[low], [high]], fmt="D", color="#000000",
                markersize=4, capsize=2, linewidth=0.8, label=label,
            )  # fmt: skip
            label = None
        axes.set_xlim(0, 100)
        axes.set_xlabel("% of tracked leaders active (bars); % of the public (diamonds)")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2, frameon=False)
    csv_rows = [
        (
            row.country_code,
            row.executives_tracked,
            row.executives_active,
            round(row.active_share_pct, 2),
            None if row.median_followers is None else round(row.median_followers, 1),
            row.expectation.question_id if row.expectation else None,
            row.expectation.share_pct if row.expectation else None,
            row.expectation.ci_lower_pct if row.expectation else None,
            row.expectation.ci_upper_pct if row.expectation else None,
            row.expectation.ref if row.expectation else None,
            # A global figure stands in where the country has none: said, as on the page.
            row.expectation.is_country_figure if row.expectation else None,
            row.expectation.wave if row.expectation else None,
            # Last: a reader taking the columns by position finds the others where they were.
            row.expectation.sample_size if row.expectation else None,
            # The headline table's "Week" column (the active share's change on the week).
            None if row.active_share_change_pts is None else round(row.active_share_change_pts, 2),
            # The leaders tracked a week before: another number than executives_tracked
            # means the change is partly leaders joining, leaving or moving.
            row.executives_tracked_week_before,
        )
        for row in rows
    ]
    return Chart(
        "headline",
        title,
        "Share of tracked leaders active on any platform per country, with the share of "
        "the public expecting CEOs to act where a survey figure exists.",
        _svg(figure, title),
        figure,
        ("country_code", "executives_tracked", "executives_active", "active_share_pct",
         "median_followers", "expectation_question_id", "expectation_share_pct",
         "expectation_ci_lower_pct", "expectation_ci_upper_pct", "source_ref",
         "expectation_is_country_figure", "expectation_wave", "expectation_sample_size",
         "active_share_change_pts", "executives_tracked_week_before"),
        csv_rows,
    )  # fmt: skip


def _trend_chart(
    report: WeeklyReportData,
    values: dict[tuple[date, str], float],
    *,
    name: str,
    title: str,
    description: str,
    column: str,
    log_scale: bool,
) -> Chart:
    assert report.data_through is not None
    days = trend_days(report.data_through)
    countries = drawn_countries(report.countries)
    colours = country_colours(countries)
    if len(countries) < len(report.countries):
        drawn_focus = _focus(countries)
        focus = " and ".join(drawn_focus)
        others = len(countries) - len(drawn_focus)
        drawn = counted(others, "country", "countries")
        title = (
            f"{title}: {focus + ' and ' if focus else ''}the {drawn} tracking "
            f"the most leaders, of {len(report.countries)}"
        )
    with matplotlib.rc_context(_RC):
        figure = _figure(7.2, 3.4)
        axes = figure.subplots()
        # Focus countries last, so they are drawn on top.
        for country in sorted(countries, key=lambda c: (c in FOCUS_COUNTRIES, c)):
            points = [(day, values[(day, country)]) for day in days if (day, country) in values]
            if not points:
                continue
            focus = country in FOCUS_COUNTRIES
            axes.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                color=colours[country],
                linewidth=2.2 if focus else 0.9,
                alpha=1.0 if focus else 0.75,
                label=country,
                marker="o" if len(points) == 1 else None,
                markersize=3,
            )
        if log_scale and any(v > 0 for v in values.values()):
            axes.set_yscale("log")
            axes.yaxis.set_major_formatter(
                FuncFormatter(lambda v, _: compact_count(v, scaled="g", whole="g"))
            )
        figure.autofmt_xdate(rotation=0, ha="center")
        axes.legend(ncols=min(7, max(1, len(countries))), fontsize=7, frameon=False,
                    loc="upper center", bbox_to_anchor=(0.5, -0.12))  # fmt: skip
    rows = [
        (day.isoformat(), country, round(values[(day, country)], 2))
        for day in days
        for country in report.countries
        if (day, country) in values
    ]
    return Chart(
        name,
        title,
        description,
        _svg(figure, title),
        figure,
        ("week_end", "country_code", column),
        rows,
    )


def trend_charts(report: WeeklyReportData) -> list[Chart]:
    return [
        _trend_chart(
            report,
            report.trend_active_share,
            name="trend_active_share",
            title="Leaders active on social platforms, last 52 weeks (%)",
            description="Weekly share of tracked leaders active on any platform, per country.",
            column="active_share_pct",
            log_scale=False,
        ),
        _trend_chart(
            report,
            report.trend_median_reach,
            name="trend_median_reach",
            title="Median reach of active leaders, last 52 weeks (followers, log scale)",
            description="Weekly median of active leaders' followers summed over platforms, "
            "per country.",
            column="median_followers",
            log_scale=True,
        ),
    ]


def platform_mix_chart(report: WeeklyReportData) -> Chart:
    countries = report.countries
    platforms = sorted({platform for _, platform in report.platform_mix})
    totals = {c: sum(v for (cc, _), v in report.platform_mix.items() if cc == c) for c in countries}
    title = "Which platforms leaders use: share of active leader accounts per platform (%)"
    with matplotlib.rc_context(_RC):
        figure = _figure(7.2, 0.32 * len(countries) + 1.4)
        axes = figure.subplots()
        labels = countries[::-1]
        left = [0.0] * len(labels)
        for platform in platforms:
            widths = [
                100.0 * report.platform_mix.get((c, platform), 0) / totals[c] if totals[c] else 0.0
                for c in labels
            ]
            name = report.platform_names.get(platform, platform)
            axes.barh(labels, widths, left=left, height=0.6, label=name,
                      color=PLATFORM_COLOURS.get(platform, "#999999"))  # fmt: skip
            left = [a + b for a, b in zip(left, widths, strict=True)]
        axes.set_xlim(0, 100)
        axes.legend(ncols=min(8, max(1, len(platforms))), fontsize=7, frameon=False,
                    loc="upper center", bbox_to_anchor=(0.5, -0.1))  # fmt: skip
    rows = [
        (c, p, report.platform_mix[(c, p)],
         round(100.0 * report.platform_mix[(c, p)] / totals[c], 2))
        for c in countries for p in platforms if (c, p) in report.platform_mix
    ]  # fmt: skip
    return Chart(
        "platform_mix",
        title,
        "Per country, how the active leader accounts divide between platforms.",
        _svg(figure, title),
        figure,
        ("country_code", "platform", "executives_active", "share_of_active_accounts_pct"),
        rows,
    )


def all_charts(report: WeeklyReportData) -> list[Chart]:
    return [headline_chart(report), *trend_charts(report), platform_mix_chart(report)]
