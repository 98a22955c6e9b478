"""``slw summary``: failed and not configured platforms stand out, with the reason."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from social_leadership.domain import PLATFORMS
from social_leadership.settings import load_settings
from social_leadership.summary import (
    build_summary,
    platform_load_lines,
    top_reach_lines,
)
from social_leadership.warehouse import connect

DAY = date(2026, 3, 2)
AT = datetime(2026, 3, 2, 6, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    settings.ensure_dirs()
    rows = [
        ("bluesky", "loaded", 40, 38, 2, 2, None),
        ("youtube", "failed", 12, 0, 12, 4, "youtube: HTTP 503 from ...; gave up after 4 attempts"),
        ("threads", "not_configured", 0, 0, 0, 0, "threads is not configured"),
        ("x", "loaded", 50, 25, 25, 1, "x: rate limited; reset in 900s exceeds the 60s"),
    ]
    with connect(settings.warehouse_path) as con:
        for platform, status, requested, loaded, missing, requests, message in rows:
            con.execute(
                "insert into audit.platform_loads values (?, ?, 'run', ?, ?, ?, ?, ?, ?, ?, ?)",
                [platform, DAY, status, requested, loaded, missing, requests, message, AT, AT],
            )
    return settings


def test_failed_and_not_configured_platforms_are_named_with_the_reason(settings):
    with connect(settings.warehouse_path, read_only=True) as con:
        text = "\n".join(platform_load_lines(con))

    assert "FAILED: youtube" in text
    assert "gave up after 4 attempts" in text
    assert "Not configured (no connection, nothing sent): threads (connection slw_threads)" in text
    bluesky = next(line.split() for line in text.splitlines() if line.split()[:1] == ["bluesky"])
    assert bluesky == ["bluesky", "2026-03-02", "loaded", "38", "2", "2", "40"]


def test_the_summary_works_before_anything_was_published(settings):
    text = build_summary(settings)

    assert "FAILED: youtube" in text
    assert "not published yet" in text


def _cells(line: str) -> list[tuple[int, int]]:
    """Where each cell of a table line starts and ends (cells are two or more spaces apart)."""
    return [m.span() for m in re.finditer(r"\S+(?: \S+)*", line)]


def _assert_aligned(table: list[str], right: set[int]) -> None:
    """Every cell starts where its header does, or ends there for a right-aligned column."""
    header = _cells(table[0])
    for line in table[1:]:
        cells = _cells(line)
        assert len(cells) == len(header), line
        for column, ((start, end), (head_start, head_end)) in enumerate(
            zip(cells, header, strict=True)
        ):
            if column in right:
                assert end == head_end, "\n".join(table)
            else:
                assert start == head_start, "\n".join(table)


def test_the_platform_table_is_aligned_for_every_platform(tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    settings.ensure_dirs()
    assert "instagram" in PLATFORMS
    with connect(settings.warehouse_path) as con:
        for number, platform in enumerate(PLATFORMS):
            # Counts of 1 to 4 digits, so that right-aligned columns must line up.
            loaded, missing = 10 ** (number % 4), 7 * 10 ** ((number + 2) % 4)
            con.execute(
                "insert into audit.platform_loads values (?, ?, 'run', 'loaded', ?, ?, ?, ?, "
                "null, ?, ?)",
                [platform, DAY, loaded + missing, loaded, missing, number + 1, AT, AT],
            )
        table = platform_load_lines(con)[1:]

    assert table[0].split()[:3] == ["platform", "day", "status"]
    assert [line.split()[0] for line in table[1:]] == sorted(PLATFORMS)
    _assert_aligned(table, right={3, 4, 5, 6})


def test_the_top_reach_table_is_aligned_for_long_names():
    rows = [
        ("DE", "Ada Example", "Example Co", 1_234_567, "x+bluesky"),
        ("DE", "Bartholomew Quite-A-Bit-Longer-Name Example", "Sample Co", 12, "instagram"),
        ("US", "Zed", "Q", None, "x"),
    ]
    table = top_reach_lines(rows)

    assert [line.split()[0] for line in table] == ["country", "DE", "Bartholomew", "US"]
    assert "1.2M" in table[1]
    # The second DE row names no country: its cells are the executive's onwards.
    _assert_aligned([table[0], table[1], table[3]], right={3})
    assert table[2].index("Sample Co") == table[0].index("company")


def test_the_top_reach_table_is_aligned_on_a_terminal_for_names_in_chinese():
    # Padded by characters, a name of three wide characters shifted the columns after it.
    import unicodedata

    rows = [
        ("CN", "王传福", "比亚迪", 2_300_000, "x"),
        ("TH", "สมศักดิ์", "ปตท.", 12_000, "x"),  # three marks drawn on the letters before
        ("DE", "Ada Example", "Example Co", 1_234, "bluesky"),
    ]
    table = top_reach_lines(rows)

    def on_a_terminal(line: str) -> str:  # a wide character takes two columns, a mark none
        return "".join(
            c * 2
            if unicodedata.east_asian_width(c) == "W"
            else ""
            if unicodedata.category(c) == "Mn"
            else c
            for c in line
        )

    _assert_aligned([on_a_terminal(line) for line in table], right={3})


def _record_run(
    settings, dag_id: str, run_id: str, outcome: str, failed: str, at, logical_date=None
) -> None:
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.runs (dag_id, run_id, outcome, failed_tasks, recorded_at, "
            "logical_date) values (?, ?, ?, ?, ?, ?)",
            [dag_id, run_id, outcome, failed or None, at, logical_date],
        )


def test_a_failed_latest_run_is_named_first_and_fails_slw_summary(settings, capsys):
    # The summary read the platform loads alone: a platform_metrics run failed by a roster
    # refused whole left the earlier loads, and the summary said loaded, exit 0.
    from social_leadership.cli import main

    earlier = datetime(2026, 3, 1, 6, tzinfo=UTC)
    _record_run(settings, "platform_metrics", "run-0", "failed", "load_x", earlier)
    _record_run(settings, "platform_metrics", "run-1", "success", "", earlier.replace(day=2))
    _record_run(settings, "warehouse_build", "run-2", "success", "", AT)
    assert main(["summary"]) == 0
    capsys.readouterr()
    _record_run(
        settings,
        "platform_metrics",
        "run-3",
        "failed",
        "load_roster, check_platforms",
        AT.replace(hour=7),
    )

    assert main(["summary"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        "Latest run per DAG writing the warehouse (weekly_report: slw dags list-runs):",
        "  FAILED: platform_metrics (run-3, 2026-03-02 07:00 UTC): failed tasks load_roster, "
        "check_platforms",
        "  warehouse_build: success (run-2, 2026-03-02 06:00 UTC)",
    ]


RUN_DAY = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_a_warehouse_of_an_earlier_version_is_summarised_before_any_task_upgrades_it(
    settings, capsys
):
    # Only a writing task adds audit.runs.logical_date: slw summary, run first after an
    # upgrade as an operator does, failed on a column not found.
    from social_leadership.cli import main

    with connect(settings.warehouse_path) as con:
        con.execute("alter table audit.runs drop column logical_date")
        con.execute(
            "insert into audit.runs (dag_id, run_id, outcome, failed_tasks, recorded_at) "
            "values ('platform_metrics', 'run-1', 'success', null, ?)",
            [AT],
        )

    assert main(["summary"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [
        "Latest run per DAG writing the warehouse (weekly_report: slw dags list-runs):",
        "  platform_metrics: success (run-1, 2026-03-02 06:00 UTC)",
    ]


def test_a_backfill_after_todays_failed_run_leaves_the_failure_shown(settings, capsys):
    # The latest run recorded was shown: a past day's backfill after today's failed run
    # read green, and slw summary exited 0.
    from social_leadership.cli import main

    _record_run(settings, "platform_metrics", "today", "failed", "load_x", AT, RUN_DAY)
    _record_run(
        settings, "platform_metrics", "backfill", "success", "", AT.replace(hour=9), RUN_DAY - WEEK
    )

    assert main(["summary"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [
        "Latest run per DAG writing the warehouse (weekly_report: slw dags list-runs):",
        "  FAILED: platform_metrics for 2026-03-02 (today, 2026-03-02 06:00 UTC): failed tasks "
        "load_x",
    ]
    assert "(backfill," not in "\n".join(lines)


def test_a_backfill_that_failed_after_todays_run_is_shown_beside_it(settings, capsys):
    from social_leadership.cli import main

    _record_run(settings, "platform_metrics", "today", "success", "", AT, RUN_DAY)
    _record_run(
        settings,
        "platform_metrics",
        "backfill",
        "failed",
        "load_x",
        AT.replace(hour=9),
        RUN_DAY - WEEK,
    )
    _record_run(
        settings,
        "platform_metrics",
        "older",
        "failed",
        "load_x",
        AT.replace(hour=5),
        RUN_DAY - WEEK,
    )

    assert main(["summary"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [
        "  FAILED: platform_metrics, another date's run since, for 2026-02-23 (backfill, "
        "2026-03-02 09:00 UTC): failed tasks load_x",
        "  platform_metrics: success for 2026-03-02 (today, 2026-03-02 06:00 UTC)",
    ]
    assert "(older," not in "\n".join(lines)


def test_a_rerun_that_mended_a_day_shows_it_mended(settings, capsys):
    from social_leadership.cli import main

    _record_run(settings, "platform_metrics", "first", "failed", "load_x", AT, RUN_DAY)
    _record_run(settings, "platform_metrics", "rerun", "success", "", AT.replace(hour=9), RUN_DAY)
    # An earlier version's row, with no logical date: read as of when it was recorded.
    _record_run(settings, "warehouse_build", "old", "failed", "dbt_build", AT.replace(hour=5))
    _record_run(settings, "warehouse_build", "new", "success", "", AT.replace(hour=8), RUN_DAY)

    assert main(["summary"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [
        "  platform_metrics: success for 2026-03-02 (rerun, 2026-03-02 09:00 UTC)",
        "  warehouse_build: success for 2026-03-02 (new, 2026-03-02 08:00 UTC)",
    ]


def test_a_failure_recorded_by_an_earlier_version_is_not_hidden_by_a_backfill(settings, capsys):
    # At the upgrade: today's failed run, recorded without a logical date, then a backfill
    # of a past day that succeeded, which ranks above it.
    from social_leadership.cli import main

    _record_run(settings, "platform_metrics", "old", "failed", "load_x", AT.replace(hour=1))
    _record_run(
        settings, "platform_metrics", "backfill", "success", "", AT.replace(hour=9), RUN_DAY - WEEK
    )

    assert main(["summary"]) == 1
    text = capsys.readouterr().out
    assert (
        "  FAILED: platform_metrics, another date's run since (old, 2026-03-02 01:00 UTC)" in text
    )


def test_a_run_for_a_day_still_to_come_leaves_todays_failure_shown(settings, capsys):
    # slw dags test platform_metrics for tomorrow (which observes nothing) after today's
    # failed run: the summary read green, and its platform table showed tomorrow's
    # skipped loads in place of today's failure.
    from social_leadership.cli import main

    _record_run(settings, "platform_metrics", "today", "failed", "load_x", AT, RUN_DAY)
    tomorrow = RUN_DAY + timedelta(days=1)
    _record_run(settings, "platform_metrics", "ahead", "success", "", AT.replace(hour=9), tomorrow)
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.platform_loads (platform, snapshot_date, run_id, status, "
            "accounts_requested, accounts_loaded, accounts_missing, requests_sent, message, "
            "started_at, finished_at) select platform, ?, 'ahead', 'skipped_backfill', 0, 0, "
            "0, 0, 'not today', ?, ? from audit.platform_loads where snapshot_date = ?",
            [tomorrow.date(), AT.replace(hour=9), AT.replace(hour=9), DAY],
        )

    assert main(["summary"]) == 1
    text = capsys.readouterr().out
    assert "  FAILED: platform_metrics for 2026-03-02 (today, " in text
    assert "FAILED: youtube on 2026-03-02" in text
    assert "skipped_backfill" not in text


def test_a_green_run_says_what_it_quarantined(settings, capsys):
    # A survey file quarantined: the alert said so, the summary said only "success".
    from social_leadership.cli import main

    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.runs (dag_id, run_id, outcome, recorded_at, logical_date, "
            "files_quarantined, rows_quarantined) values "
            "('survey_ingest', 'in', 'success', ?, ?, 1, null), "
            "('platform_metrics', 'pm', 'success', ?, ?, 0, 1)",
            [AT, RUN_DAY, AT, RUN_DAY],
        )

    assert main(["summary"]) == 0
    text = capsys.readouterr().out
    assert (
        "  survey_ingest: success for 2026-03-02 (in, 2026-03-02 06:00 UTC); quarantined: "
        "1 file\n" in text
    )
    assert "(pm, 2026-03-02 06:00 UTC); quarantined: 1 row\n" in text


def test_a_platform_whose_newest_counts_are_too_old_is_said_stale():
    # The top reach showed six-day-old figures as current, and nothing said so.
    from social_leadership.summary import stale_lines
    from social_leadership.warehouse import ensure_schema

    con = duckdb.connect()
    ensure_schema(con)
    today = date(2026, 3, 8)
    for platform, day in (("bluesky", date(2026, 3, 2)), ("x", today), ("x", date(2026, 3, 1))):
        con.execute(
            "insert into raw.platform_metrics (platform, account_handle, snapshot_date, "
            "account_status, followers, observed_at, loaded_at, source, is_synthetic) "
            "values (?, 'a', ?, 'ok', 1, ?, ?, 'api', false)",
            [platform, day, AT, AT],
        )

    assert stale_lines(con, 3, today) == [
        "  STALE: bluesky: newest counts of 2026-03-02, 6 days old (SLW_STALE_PLATFORM_DAYS=3): "
        "the figures below are of that day"
    ]
    assert stale_lines(con, 6, today) == []


def test_the_synthetic_notice_names_only_what_is_synthetic(settings, capsys):
    # Counts from another API than the sandbox were called sandbox counts whenever the
    # roster held a synthetic executive.
    from social_leadership.cli import main

    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into raw.roster_executives values "
            "('e1', 'Ada', 'CEO', 'Acme', 'DE', 'Energy', true, null, 'r.csv', ?)",
            [AT],
        )
        con.execute(
            "insert into raw.platform_metrics (platform, account_handle, snapshot_date, "
            "account_status, followers, observed_at, loaded_at, source, is_synthetic) "
            "values ('x', 'ada', ?, 'ok', 1, ?, ?, 'api', false)",
            [DAY, AT, AT],
        )

    main(["summary"])

    notice = [line for line in capsys.readouterr().out.splitlines() if "SYNTHETIC" in line]
    assert notice == [
        "SYNTHETIC DEMO DATA: executives of the demo roster: generated, not real (README, "
        '"The warehouse (contracts)": Synthetic data).'
    ]


def _comparison_mart() -> duckdb.DuckDBPyConnection:
    """An in-memory database holding an empty ``marts.fct_country_comparison_yearly``."""
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_country_comparison_yearly (country_code varchar, "
        "calendar_year int, executives_tracked int, active_share_pct double, "
        "median_followers double, synthetic_executives_pct double, "
        "expectation_share_pct double, is_country_expectation boolean, "
        "expectation_wave int, is_synthetic_expectation boolean)"
    )
    return con


def test_the_country_comparison_always_shows_germany_and_the_us_and_says_what_it_left_out():
    # 15 countries of 20 leaders each (DE and US last by name): the first 12 alone were
    # shown, the US not among them, and nothing said 3 were left out.
    from social_leadership.summary import country_comparison_lines

    con = _comparison_mart()
    countries = [
        "AE",
        "AT",
        "AU",
        "BE",
        "BR",
        "CA",
        "CH",
        "CN",
        "DK",
        "ES",
        "FR",
        "GB",
        "JP",
        "DE",
        "US",
    ]
    for number, country in enumerate(countries):
        con.execute(
            "insert into marts.fct_country_comparison_yearly "
            "values (?, 2026, ?, 80, 1e6, 0, null, null, null, null)",
            [country, 40 - number],
        )

    lines = country_comparison_lines(con)

    shown = [line.split()[0] for line in lines[2:-1]]
    assert len(shown) == 12
    assert {"DE", "US"} <= set(shown)
    # The others are those tracking the most leaders, in the table's order.
    assert shown == [c for c in countries if c in shown]
    assert shown[:10] == countries[:10]
    assert lines[-1] == "  ... and 3 more countries (marts.fct_country_comparison_yearly)"
    assert not [line for line in country_comparison_lines(con, max_countries=20) if "more" in line]


def test_the_country_comparison_rounds_shares_as_the_weekly_report_does():
    # The summary rounded half to even and read 99.6 as "100%": a US figure of 74.5 was
    # "74%" in the summary and "75%" in the report of the same run.
    from social_leadership.reports.render import pct
    from social_leadership.summary import country_comparison_lines

    con = _comparison_mart()
    con.execute(
        "insert into marts.fct_country_comparison_yearly values "
        "('US', 2026, 8, 62.5, 1e6, 0.4, 74.5, true, 2025, false), "
        "('DE', 2026, 7, 99.6, 1e6, 12.5, 50.5, false, 2025, false)"
    )

    lines = country_comparison_lines(con)

    by_country = {line.split()[0]: line.split() for line in lines[2:]}
    assert by_country["US"][2:4] == ["63%", "1.0M"]
    assert by_country["US"][4:6] == ["<1%", "75%"]
    assert by_country["DE"][2] == ">99%"
    assert by_country["DE"][4:6] == ["13%", "51%"]
    assert [pct(v) for v in (62.5, 0.4, 74.5, 99.6, 12.5, 50.5)] == [
        "63%",
        "<1%",
        "75%",
        ">99%",
        "13%",
        "51%",
    ]


def _lines_after_a_load(settings, status: str, message: str, *, days_before: int) -> str:
    """The platform lines once bluesky has a load of ``status`` of an earlier day, finished
    after today's."""
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.platform_loads values "
            "('bluesky', ?, 'rerun', ?, 40, 0, 40, 1, ?, ?, ?)",
            [DAY - timedelta(days=days_before), status, message, *[AT + timedelta(hours=3)] * 2],
        )
        return "\n".join(platform_load_lines(con))


def _row_of(text: str, platform: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [platform])


def test_a_backfill_after_today_s_run_leaves_today_s_loads_shown(settings):
    # "Latest" was the latest to finish: README's own backfill example, run after today's
    # run, hid today's loads behind rows of an earlier day skipped as a backfill.
    text = _lines_after_a_load(settings, "skipped_backfill", "a backfill", days_before=5)

    assert "skipped_backfill" not in text
    assert _row_of(text, "bluesky")[:3] == ["bluesky", "2026-03-02", "loaded"]


def test_a_long_failure_message_keeps_its_start_and_the_fix_at_its_end(settings):
    # It was cut mid-word at 200 characters, the fix at its end dropped.
    fix = "correct it (JSON or URI, as Airflow's docs give them) or unset it"
    url = "https://api.x.com/2/users/by?" + "&".join(f"usernames=u{n}" for n in range(60))
    message = f"HTTPError: {url} AIRFLOW_CONN_SLW_X is set but Airflow cannot read it; {fix}"
    with connect(settings.warehouse_path) as con:
        con.execute(
            "update audit.platform_loads set message = ? where platform = 'youtube'", [message]
        )
        [line] = [line for line in platform_load_lines(con) if "FAILED" in line]

    assert line.startswith("  FAILED: youtube on 2026-03-02: HTTPError: https://api.x.com/2/")
    assert line.endswith(f"{fix} (whole message: audit.platform_loads)")
    assert " ... " in line
    assert len(line) < 400


def test_a_load_that_failed_after_the_newest_day_s_is_still_named(settings):
    # Today's X load, then a rerun of an earlier day that failed: the summary showed today's
    # load alone, the failure and its reason gone.
    text = _lines_after_a_load(settings, "failed", "401 token expired", days_before=10)

    assert "  FAILED: bluesky on 2026-02-20: 401 token expired" in text
    assert _row_of(text, "bluesky")[:3] == ["bluesky", "2026-03-02", "loaded"]
    # Once that day's rerun loaded, it is no failure to name.
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.platform_loads values "
            "('bluesky', ?, 'rerun2', 'loaded', 40, 40, 0, 1, null, ?, ?)",
            [DAY - timedelta(days=10), *[AT + timedelta(hours=4)] * 2],
        )
        assert "FAILED: bluesky" not in "\n".join(platform_load_lines(con))


def test_a_later_run_without_the_connection_leaves_the_day_s_load_shown_and_is_said(settings):
    # make run loaded the day; the Airflow UI's scheduler, started without the connections,
    # ran the day again: the summary said bluesky not configured (its data there all the
    # same), under the run line of the run that had loaded it (probe docs63).
    text = _lines_after_a_load(settings, "not_configured", "no connection", days_before=0)

    assert _row_of(text, "bluesky")[:4] == ["bluesky", "2026-03-02", "loaded", "38"]
    assert (
        "  Not configured in a later run of the same day (no connection, nothing sent; the "
        "day's earlier load below stands): bluesky (connection slw_bluesky)"
    ) in text
    assert "Not configured (no connection, nothing sent): threads (connection slw_threads)" in text
    # A load after it is the day's again, with nothing more said.
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.platform_loads values "
            "('bluesky', ?, 'rerun2', 'loaded', 40, 40, 0, 1, null, ?, ?)",
            [DAY, *[AT + timedelta(hours=4)] * 2],
        )
        text = "\n".join(platform_load_lines(con))
    assert _row_of(text, "bluesky")[:4] == ["bluesky", "2026-03-02", "loaded", "40"]
    assert "later run of the same day" not in text


def test_a_platform_loaded_with_no_account_asked_is_said_to_have_none_to_ask(settings):
    # "facebook loaded 0 0 0 0" read as a platform that answered nobody.
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.platform_loads values "
            "('linkedin', ?, 'run', 'loaded', 0, 0, 0, 0, null, ?, ?)",
            [DAY, AT, AT],
        )
        text = "\n".join(platform_load_lines(con))

    assert "  Nothing asked of linkedin: the roster gives no account there" in text
    assert "Nothing asked of bluesky" not in text


_HOLD_WRITER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


class _Build:
    """A warehouse_build run as its run_summary task sees it: dbt_build failed."""

    dag_id = "warehouse_build"
    task_id = "run_summary"
    task_ids = ("dbt_build", "quality_gate", "publish", "run_summary")

    def __init__(self, at: datetime) -> None:
        self.run_after = self.logical_date = at

    def xcom_pull(self, task_ids: str) -> None:
        return None

    def get_task_states(self, *, dag_id: str, run_ids: list[str]) -> dict:
        return {run_ids[0]: {"dbt_build": "failed", "quality_gate": "upstream_failed"}}


def test_a_run_the_held_warehouse_could_not_record_is_shown_failed_then_recorded(
    settings, monkeypatch, capsys
):
    import subprocess
    import sys

    from social_leadership.cli import main
    from social_leadership.run_summary import UNRECORDED_DIR, run_summary_task

    _record_run(settings, "warehouse_build", "run-1", "success", "", AT, logical_date=AT)
    monkeypatch.setattr("social_leadership.warehouse.LOCK_WAIT_SECONDS", 0.2)
    later = AT + timedelta(hours=1)
    run = _Build(later)
    context = {"ti": run, "run_id": "run-2", "dag": run, "dag_run": run}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITER, str(settings.warehouse_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException):
            run_summary_task(context)
    finally:
        holder.kill()
        holder.wait()

    # slw summary: the failed run, not the green one before it.
    assert main(["summary"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  FAILED: warehouse_build for 2026-03-02 (run-2, ")
    assert lines[1].endswith("failed tasks dbt_build")  # not quality_gate, which did not run

    # The next run that writes audit.runs records it, and forgets the kept row.
    _record_run(settings, "warehouse_build", "run-3", "success", "", later, logical_date=later)
    other = _Build(later + timedelta(hours=1))
    other.get_task_states = lambda *, dag_id, run_ids: {run_ids[0]: {}}  # type: ignore[method-assign]
    run_summary_task({"ti": other, "run_id": "run-4", "dag": other, "dag_run": other})
    with connect(settings.warehouse_path, read_only=True) as con:
        recorded = con.execute(
            "select run_id, outcome, failed_tasks from audit.runs order by run_id"
        ).fetchall()
    assert ("run-2", "failed", "dbt_build") in recorded
    assert not list((settings.data_dir / UNRECORDED_DIR).iterdir())


_SUMMARY_OF_A_FAILED_BUILD = """
import logging
import sys
from datetime import datetime

from social_leadership.run_summary import run_summary_task


class Build:
    dag_id = "warehouse_build"
    task_id = "run_summary"
    task_ids = ("source_freshness", "dbt_build", "quality_gate", "publish", "run_summary")
    run_after = logical_date = datetime.fromisoformat(sys.argv[1])

    def xcom_pull(self, task_ids):
        return None

    def get_task_states(self, *, dag_id, run_ids):
        return {run_ids[0]: {"source_freshness": "failed", "dbt_build": "upstream_failed"}}


run = Build()
# Says when it waits for the held warehouse.
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s", force=True)
run_summary_task({"ti": run, "run_id": "run-2", "dag": run, "dag_run": run})
"""


def test_a_summary_stopped_while_it_waits_for_the_held_warehouse_keeps_its_run(settings):
    # A try stopped as it waited for the warehouse (its time-out, a killed worker, a disk
    # DuckDB's write filled) kept nothing: the failed run was missing from audit.runs for
    # good, the success before it its DAG's newest row.
    import subprocess
    import sys

    from social_leadership.run_summary import UNRECORDED_DIR, record_unrecorded, run_summary_task

    later = AT + timedelta(hours=1)
    _record_run(settings, "warehouse_build", "run-1", "success", "", AT, logical_date=AT)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITER, str(settings.warehouse_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        summary = subprocess.Popen(
            [sys.executable, "-c", _SUMMARY_OF_A_FAILED_BUILD, later.isoformat()],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert summary.stdout is not None
        for line in summary.stdout:  # until it waits (up to LOCK_WAIT_SECONDS, 15 s)
            if "is held by another process: waiting for it" in line:
                break
        assert summary.poll() is None
        summary.kill()
        summary.wait()
    finally:
        holder.kill()
        holder.wait()
    assert [p.name for p in (settings.data_dir / UNRECORDED_DIR).iterdir()] == [
        "warehouse_build__run-2.json"
    ]

    # The next run of any DAG that writes audit.runs records it, once.
    run = _Build(later + timedelta(hours=1))
    run.dag_id = "survey_ingest"
    run.get_task_states = lambda *, dag_id, run_ids: {run_ids[0]: {}}  # type: ignore[method-assign]
    run_summary_task({"ti": run, "run_id": "run-3", "dag": run, "dag_run": run})
    run_summary_task({"ti": run, "run_id": "run-3", "dag": run, "dag_run": run})  # a rerun
    with connect(settings.warehouse_path) as con:
        record_unrecorded(con, settings.data_dir)
        recorded = con.execute(
            "select dag_id, run_id, outcome, failed_tasks, logical_date from audit.runs "
            "order by run_id"
        ).fetchall()
    assert recorded == [
        ("warehouse_build", "run-1", "success", None, AT),
        ("warehouse_build", "run-2", "failed", "source_freshness", later),
        ("survey_ingest", "run-3", "success", None, later + timedelta(hours=1)),
    ]
    assert not list((settings.data_dir / UNRECORDED_DIR).iterdir())


def test_a_row_kept_before_its_try_read_the_warehouse_keeps_the_run_s_checks(settings):
    # Kept before the warehouse was tried (no check counts read yet), a stopped try's row
    # replaced the run's complete row recorded by an earlier try: its checks gone.
    from social_leadership.run_summary import (
        RunSummary,
        keep_unrecorded,
        record,
        record_unrecorded,
    )

    with connect(settings.warehouse_path) as con:
        for success in (True, True, False):
            con.execute(
                "insert into audit.quality_results values "
                "('run-1', 'marts.dim_country', 'dim_country', 'expect_c', null, false, ?, "
                "null, null, ?, null, null)",
                [success, AT],
            )
        record(
            con,
            RunSummary("warehouse_build", "run-1", "success", checks_passed=2, checks_failed=1),
            recorded_at=AT,
        )
    keep_unrecorded(settings.data_dir, RunSummary("warehouse_build", "run-1", "success"))

    with connect(settings.warehouse_path) as con:
        record_unrecorded(con, settings.data_dir)
        assert con.execute(
            "select outcome, checks_passed, checks_failed from audit.runs where run_id = 'run-1'"
        ).fetchall() == [("success", 2, 1)]


def test_a_failure_kept_after_the_run_was_recorded_green_turns_it_failed(settings, capsys):
    # A green run interrupted after its summary, by a process that could not write the
    # warehouse: its kept failure stands for the green row, in slw summary and then there.
    from social_leadership.cli import main
    from social_leadership.run_summary import (
        RunSummary,
        keep_unrecorded,
        record,
        record_unrecorded,
    )

    green = RunSummary("warehouse_build", "run-2", "success", files_quarantined=1)
    failed = RunSummary("warehouse_build", "run-2", "failed", "dbt_build")
    with connect(settings.warehouse_path) as con:
        record(con, green, recorded_at=AT)
    keep_unrecorded(settings.data_dir, failed)

    assert main(["summary"]) == 1
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("  FAILED: warehouse_build (run-2, ")
    assert line.endswith(": failed tasks dbt_build; quarantined: 1 file")  # the run's figures
    with connect(settings.warehouse_path) as con:
        record_unrecorded(con, settings.data_dir)
        assert con.execute(
            "select outcome, failed_tasks, files_quarantined from audit.runs"
        ).fetchall() == [("failed", "dbt_build", 1)]

    # A green retry the held warehouse could not take: kept whole, over the failed row.
    keep_unrecorded(settings.data_dir, replace(green, files_quarantined=5))
    assert main(["summary"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("; quarantined: 5 files")
    with connect(settings.warehouse_path) as con:
        record_unrecorded(con, settings.data_dir)
        assert con.execute(
            "select outcome, failed_tasks, files_quarantined from audit.runs"
        ).fetchall() == [("success", None, 5)]

    # A later try recorded since the row was kept wins over it.
    keep_unrecorded(settings.data_dir, failed)
    with connect(settings.warehouse_path) as con:
        record(con, green)
    assert main(["summary"]) == 0
    with connect(settings.warehouse_path) as con:
        record_unrecorded(con, settings.data_dir)
        assert con.execute("select outcome from audit.runs").fetchall() == [("success",)]


def test_an_interrupted_weekly_report_is_alerted_but_never_a_row_of_audit_runs(settings, capsys):
    # A killed weekly_report was recorded failed in audit.runs, which no green run of it
    # (it records its runs in Airflow alone) ever replaced: slw summary stayed red.
    from social_leadership.cli import main
    from social_leadership.local_airflow_process import _record_interrupted
    from social_leadership.run_summary import UNRECORDED_DIR

    _record_run(settings, "warehouse_build", "run-1", "success", "", AT, logical_date=AT)
    _record_interrupted("weekly_report", "run-2", ["write_report"], "killed", AT)
    assert "weekly_report run run-2: alerted by no channel" in capsys.readouterr().out
    _record_interrupted("warehouse_build", "run-3", ["publish"], "killed", AT)
    with connect(settings.warehouse_path, read_only=True) as con:
        recorded = con.execute("select dag_id, run_id, outcome from audit.runs order by 2")
        assert recorded.fetchall() == [
            ("warehouse_build", "run-1", "success"),
            ("warehouse_build", "run-3", "failed"),
        ]
    assert not list((settings.data_dir / UNRECORDED_DIR).glob("*.json"))

    # A row an earlier version wrote is not shown.
    _record_run(settings, "weekly_report", "run-4", "failed", "write_report", AT, logical_date=AT)
    with connect(settings.warehouse_path) as con:
        con.execute("delete from audit.runs where run_id = 'run-3'")
    main(["summary"])
    shown = capsys.readouterr().out
    assert "  warehouse_build: success for 2026-" in shown
    assert "weekly_report for" not in shown


def test_the_quality_line_names_the_checks_that_failed(settings):
    # "1 failed (0 critical)" named no check: a warning published all the same read as a
    # success everywhere else.
    checks = [
        ("fct_executive_reach_daily", "expect_b", None, False, False),
        ("fct_executive_reach_daily", "expect_a", "followers", True, False),
        ("dim_country", "expect_c", None, False, True),
        # A check failed on two slices of a table is named once.
        ("fct_executive_reach_daily", "expect_b", None, False, False),
    ]
    with connect(settings.warehouse_path) as con:
        for table, expectation, column, critical, success in checks:
            con.execute(
                "insert into audit.quality_results values "
                "('gate', ?, ?, ?, ?, ?, ?, null, null, ?, null, null)",
                [f"marts.{table}", table, expectation, column, critical, success, AT],
            )

    text = build_summary(settings)

    assert (
        "Quality checks (last run): 1 passed, 3 failed (1 critical): "
        "fct_executive_reach_daily expect_a (followers), fct_executive_reach_daily expect_b\n"
    ) in text
