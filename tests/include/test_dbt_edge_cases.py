"""Edge cases of the dbt models, each built for real (found by a second read of the models).

* A first build before any platform data leaves the incremental fact empty: the daily
  builds that follow must still load every day (an empty target is a full build).
* A version that ends before the executive's first day in the fact (Siemens 2013-2021
  against history from 2025) is never in the fact: it must not send every daily build
  back to the first day.
* Editing a version declared for a future date keeps it on its declared date.
* A published index (measure ``index``) may lie outside 0-100: it builds, and its
  interval is not clipped as a share's would be.
* An executive who leaves the roster and comes back, and an account renamed or dropped,
  give the same gap-filled series, facts and aggregates incrementally as a full refresh.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import BUILD_WITHOUT_TESTS, settings_for_data_dir

from social_leadership.dbt_runner import run_dbt
from social_leadership.settings import Settings
from social_leadership.warehouse import connect, transaction

pytestmark = pytest.mark.dbt


DAY_ZERO = date(2025, 3, 1)

Executive = tuple[str, str, str, str, str, date | None]  # id, title, company, country, sector


def day(number: int) -> date:
    return DAY_ZERO + timedelta(days=number)


def loaded(number: int) -> datetime:
    return datetime.combine(day(number), datetime.min.time(), tzinfo=UTC) + timedelta(hours=3)


def write_roster(
    settings: Settings,
    executives: list[Executive],
    load_day: int,
    accounts: list[tuple[str, str, str]] | None = None,
) -> None:
    """The whole roster as of ``load_day``; ``accounts`` (executive, platform, handle)
    default to one x account per executive, ``<id>_x``."""
    with connect(settings.warehouse_path) as con, transaction(con):
        con.execute("delete from raw.roster_executives")
        con.execute("delete from raw.roster_accounts")
        for executive_id, title, company, country, sector, valid_from in executives:
            con.execute(
                "insert into raw.roster_executives values (?, ?, ?, ?, ?, ?, true, ?, ?, ?)",
                [
                    executive_id,
                    executive_id.title(),
                    title,
                    company,
                    country,
                    sector,
                    valid_from,
                    "roster.csv",
                    loaded(load_day),
                ],
            )
        if accounts is None:
            accounts = [(e, "x", f"{e}_x") for e in sorted({e[0] for e in executives})]
        for executive_id, platform, handle in accounts:
            con.execute(
                "insert into raw.roster_accounts values (?, ?, ?, ?)",
                [executive_id, platform, handle, loaded(load_day)],
            )


def write_days(
    settings: Settings, executive_id: str, days: range, platform: str = "x", handle: str = ""
) -> None:
    handle = handle or f"{executive_id}_x"
    with connect(settings.warehouse_path) as con, transaction(con):
        for number in days:
            observed = loaded(number) + timedelta(hours=3)
            con.execute(
                "insert into raw.platform_metrics values "
                "(?, ?, ?, ?, 'ok', ?, 10, ?, ?, 'api', null, ?, false)",
                [
                    platform,
                    day(number),
                    handle,
                    f"id-{handle}",
                    1000 + number,
                    number,
                    observed,
                    observed,
                ],
            )


# The last build of each scenario, whose state the test asserts on, runs the data tests
# too; without the unit tests, which read no warehouse data (fixed inputs in the YAML) and
# pass once per session in the shared build (test_dbt_models.py's
# test_build_passes_every_node_including_unit_tests).
BUILD = ["build", "--exclude-resource-type", "unit_test"]
# The builds before it (the days leading up to the state asserted on) run the models, seeds
# and the snapshot alone: the ~100 data tests are about a quarter of a build's CPU.
STEP = BUILD_WITHOUT_TESTS


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    """The test's folder: its warehouse in ``data``, the full-refresh copy in ``full``. dbt
    reads the session's saved parse of the project in both (tests/conftest.py)."""
    return tmp_path


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def full_refresh_of(settings: Settings, build_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the warehouse rebuilt with --full-refresh, to compare with."""
    copy = settings_for_data_dir(monkeypatch, build_dir / "full")
    copy.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(settings.warehouse_path, copy.warehouse_path)
    # The reference only has to hold the full refresh's rows, which the test compares with
    # the incremental build's (whose data tests ran), as test_dbt_incremental.py's does.
    run_dbt([*STEP, "--full-refresh"], copy)
    return copy.warehouse_path


FACT = (
    "select executive_id, metric_date, company_name, followers "
    "from marts.fct_executive_reach_daily order by 1, 2"
)


def test_daily_builds_after_an_empty_first_build_load_every_day(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(
        settings,
        [
            ("k", "CEO", "Siemens", "DE", "Industrials", date(2020, 1, 1)),
            ("k", "Chair", "Siemens Energy", "DE", "Energy", day(20)),
        ],
        0,
    )
    run_dbt([*STEP, "--full-refresh"], settings)  # before any platform data
    for number in range(4):
        write_days(settings, "k", range(number, number + 1))
        run_dbt(BUILD if number == 3 else STEP, settings)

    rows = query(settings.warehouse_path, FACT)

    assert [row[1] for row in rows] == [day(n) for n in range(4)]
    assert rows == query(full_refresh_of(settings, build_dir, monkeypatch), FACT)


def test_a_version_before_the_history_does_not_rebuild_from_the_first_day(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(
        settings,
        [
            ("k", "CEO", "Siemens", "DE", "Industrials", date(2013, 8, 1)),
            ("k", "Chair", "Siemens Energy", "DE", "Energy", date(2021, 2, 3)),
        ],
        0,
    )
    write_days(settings, "k", range(40))
    run_dbt(STEP, settings)
    write_days(settings, "k", range(40, 41))

    run_dbt(BUILD, settings)

    compiled = next(settings.dbt_target_dir.rglob("compiled/**/fct_executive_reach_daily.sql"))
    lookback = settings.gap_fill_days + settings.late_data_days
    assert f"reach_with_changes.metric_date >= date '{day(39 - lookback)}'" in compiled.read_text()
    rows = query(settings.warehouse_path, FACT)
    assert len(rows) == 41
    assert {row[2] for row in rows} == {"Siemens Energy"}


def test_editing_a_future_version_keeps_its_declared_start(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    current = ("k", "CEO", "Old Co", "DE", "Industrials", date(2020, 1, 1))
    write_roster(settings, [current, ("k", "CEO-designate", "New Co", "US", "Energy", day(30))], 10)
    write_days(settings, "k", range(11))
    run_dbt(STEP, settings)
    # Day 15: the future version's title is corrected, its declared start unchanged.
    write_roster(settings, [current, ("k", "CEO", "New Co", "US", "Energy", day(30))], 15)
    write_days(settings, "k", range(11, 16))

    run_dbt(BUILD, settings)

    versions = query(
        settings.warehouse_path,
        "select title, company_name, valid_from from marts.dim_executive order by valid_from",
    )
    assert versions == [("CEO", "Old Co", date(2020, 1, 1)), ("CEO", "New Co", day(30))]
    assert {row[2] for row in query(settings.warehouse_path, FACT)} == {"Old Co"}


def test_a_declared_start_moved_later_moves_the_version_and_the_facts_before_it(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mistyped start corrected in the roster (day 10, then day 20): the snapshot kept the
    # first declared start (only attribute changes make it a new row), so the version held
    # from day 10, in dim_executive and the facts, even after a full refresh. Moved
    # earlier, it was applied.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    old = ("k", "CEO", "Old Co", "DE", "Industrials", date(2020, 1, 1))
    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(10))], 25)
    write_days(settings, "k", range(30))
    run_dbt(STEP, settings)
    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(20))], 30)
    write_days(settings, "k", range(30, 32))

    run_dbt(BUILD, settings)

    versions = query(
        settings.warehouse_path,
        "select company_name, valid_from from marts.dim_executive order by valid_from",
    )
    assert versions == [("Old Co", date(2020, 1, 1)), ("New Co", day(20))]
    companies = {row[1]: row[2] for row in query(settings.warehouse_path, FACT)}
    assert {companies[day(n)] for n in range(20)} == {"Old Co"}
    assert {companies[day(n)] for n in range(20, 32)} == {"New Co"}
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_roster_no_longer_giving_a_start_keeps_the_one_it_gave(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A roster of one row per executive, re-exported without its valid_from column: the
    # version in force kept its declared start (day 10), not the day of that load.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(settings, [("k", "CEO", "Old Co", "DE", "Industrials", date(2020, 1, 1))], 5)
    write_days(settings, "k", range(6))
    run_dbt(STEP, settings)
    write_roster(settings, [("k", "CEO", "New Co", "US", "Energy", day(10))], 25)
    write_days(settings, "k", range(6, 26))
    run_dbt(STEP, settings)
    write_roster(settings, [("k", "CEO", "New Co", "US", "Energy", None)], 30)
    write_days(settings, "k", range(26, 31))

    run_dbt(BUILD, settings)

    versions = query(
        settings.warehouse_path,
        "select company_name, valid_from from marts.dim_executive order by valid_from",
    )
    assert versions == [("Old Co", date(2020, 1, 1)), ("New Co", day(10))]


def test_a_corrected_start_holds_once_a_newer_version_comes_and_when_corrected_again(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start of New Co, declared day 10, corrected to day 14. Then the roster adds a newer
    # version (day 24): the New Co version, no longer the current one, went back to day 10,
    # the first start the snapshot saw. A later correction of that (no longer current)
    # version, to day 16, was ignored.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    old = ("k", "CEO", "Old Co", "DE", "Industrials", date(2020, 1, 1))
    chair = ("k", "Chair", "New Co", "US", "Energy", day(24))
    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(10))], 12)
    write_days(settings, "k", range(13))
    run_dbt(STEP, settings)
    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(14))], 20)
    write_days(settings, "k", range(13, 21))
    run_dbt(STEP, settings)
    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(14)), chair], 25)
    write_days(settings, "k", range(21, 26))
    run_dbt(STEP, settings)

    dim = "select title, company_name, valid_from from marts.dim_executive order by valid_from"
    assert query(settings.warehouse_path, dim) == [
        ("CEO", "Old Co", date(2020, 1, 1)),
        ("CEO", "New Co", day(14)),
        ("Chair", "New Co", day(24)),
    ]

    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(16)), chair], 27)
    write_days(settings, "k", range(26, 28))
    run_dbt(BUILD, settings)

    assert query(settings.warehouse_path, dim) == [
        ("CEO", "Old Co", date(2020, 1, 1)),
        ("CEO", "New Co", day(16)),
        ("Chair", "New Co", day(24)),
    ]
    companies = {row[1]: row[2] for row in query(settings.warehouse_path, FACT)}
    assert {companies[day(n)] for n in range(16)} == {"Old Co"}
    assert {companies[day(n)] for n in range(16, 28)} == {"New Co"}
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_roster_no_longer_giving_a_start_keeps_the_last_one_it_gave(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Declared day 10, corrected to day 14, then re-exported without its valid_from column:
    # the version went back to day 10, the first start the snapshot saw.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    old = ("k", "CEO", "Old Co", "DE", "Industrials", date(2020, 1, 1))
    write_roster(settings, [old], 5)
    write_days(settings, "k", range(6))
    run_dbt(STEP, settings)
    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(10))], 12)
    write_days(settings, "k", range(6, 13))
    run_dbt(STEP, settings)
    write_roster(settings, [old, ("k", "CEO", "New Co", "US", "Energy", day(14))], 20)
    write_days(settings, "k", range(13, 21))
    run_dbt(STEP, settings)
    write_roster(settings, [("k", "CEO", "New Co", "US", "Energy", None)], 25)
    write_days(settings, "k", range(21, 26))

    run_dbt(BUILD, settings)

    versions = query(
        settings.warehouse_path,
        "select company_name, valid_from from marts.dim_executive order by valid_from",
    )
    assert versions == [("Old Co", date(2020, 1, 1)), ("New Co", day(14))]
    companies = {row[1]: row[2] for row in query(settings.warehouse_path, FACT)}
    assert {companies[day(n)] for n in range(14)} == {"Old Co"}
    assert {companies[day(n)] for n in range(14, 26)} == {"New Co"}


def test_a_version_that_comes_back_keeps_its_first_time_when_only_the_snapshot_saw_between(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Old Co (declared), New Co (a roster without starts, seen on its load day), Old Co again
    # declared from day 20: the first Old Co, taken for a re-dated copy of the declared one,
    # was dropped, and New Co held every day before day 20.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    old = ("k", "CEO", "Old Co", "DE", "Industrials", date(2020, 1, 1))
    write_roster(settings, [old], 5)
    write_days(settings, "k", range(6))
    run_dbt(STEP, settings)
    write_roster(settings, [("k", "CEO", "New Co", "US", "Energy", None)], 12)
    write_days(settings, "k", range(6, 13))
    run_dbt(STEP, settings)
    write_roster(settings, [("k", "CEO", "Old Co", "DE", "Industrials", day(20))], 25)
    write_days(settings, "k", range(13, 26))

    run_dbt(BUILD, settings)

    versions = query(
        settings.warehouse_path,
        "select company_name, valid_from from marts.dim_executive order by valid_from",
    )
    assert versions == [("Old Co", date(2020, 1, 1)), ("New Co", day(12)), ("Old Co", day(20))]
    companies = {row[1]: row[2] for row in query(settings.warehouse_path, FACT)}
    assert [companies[day(n)] for n in (0, 11, 12, 19, 20, 25)] == [
        "Old Co",
        "Old Co",
        "New Co",
        "New Co",
        "Old Co",
        "Old Co",
    ]
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_start_corrected_onto_the_previous_versions_start_rewrites_it(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # New Co declared from day 8, then corrected to day 3, the start Old Co was given: taken
    # for an in-place edit keeping its date, New Co started on its load day (12).
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(settings, [("k", "CEO", "Old Co", "DE", "Industrials", day(3))], 5)
    write_days(settings, "k", range(6))
    run_dbt(STEP, settings)
    write_roster(settings, [("k", "CEO", "New Co", "US", "Energy", day(8))], 12)
    write_days(settings, "k", range(6, 13))
    run_dbt(STEP, settings)
    write_roster(settings, [("k", "CEO", "New Co", "US", "Energy", day(3))], 20)
    write_days(settings, "k", range(13, 21))

    run_dbt(BUILD, settings)

    versions = query(
        settings.warehouse_path,
        "select company_name, valid_from from marts.dim_executive order by valid_from",
    )
    assert versions == [("New Co", day(3))]
    assert {row[2] for row in query(settings.warehouse_path, FACT)} == {"New Co"}
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_published_index_outside_0_to_100_builds_with_its_own_interval(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(settings, [("a", "CEO", "A", "DE", "Financials", None)], 0)
    write_days(settings, "a", range(1))
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into raw.survey_results values ('acme', 'Acme', 2024, 'DE', 'trust_index', "
            "'Trust index', 'index', -12, 1150, 2.9, true, 'Acme 2024', 'f.csv', 'sha', now()), "
            "('acme', 'Acme', 2024, 'DE', 'ceo_lead', 'Lead', 'share_pct', 98.5, 1150, 2.9, "
            "true, 'Acme 2024', 'f.csv', 'sha', now())"
        )

    run_dbt(BUILD, settings)

    rows = query(
        settings.warehouse_path,
        "select measure, value, ci_lower, ci_upper from marts.fct_survey_results "
        "where survey_source_id = 'acme' order by measure",
    )
    assert [row[:2] for row in rows] == [("index", -12.0), ("share_pct", 98.5)]
    assert rows[0][2:] == pytest.approx((-14.9, -9.1))
    assert rows[1][2:] == pytest.approx((95.6, 100.0))


MARTS_COMPARED = {
    "intermediate.int_executive_reach_gap_filled": (
        "executive_id, platform, account_handle, metric_date, followers, is_observed"
    ),
    "marts.fct_executive_reach_daily": (
        "executive_id, platform, account_handle, metric_date, followers, followers_change_7d"
    ),
    "marts.fct_reach_by_country_sector_daily": "*",
    "marts.fct_reach_by_country_sector_all_platforms_daily": "*",
    "marts.fct_country_comparison_yearly": "*",
}


def assert_same_as_full_refresh(
    settings: Settings, build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = full_refresh_of(settings, build_dir, monkeypatch)
    for table, columns in MARTS_COMPARED.items():
        statement = f"select {columns} from {table} order by all"
        incremental = query(settings.warehouse_path, statement)
        assert incremental, table
        assert incremental == query(full, statement), table
    # The summary the daily check for changed accounts reads instead of the whole model.
    series = "select executive_id, platform, account_handle, {} from {} order by all"
    assert query(
        settings.warehouse_path, series.format("first_date", "audit.reach_series_starts")
    ) == query(
        settings.warehouse_path,
        series.format(
            "min(metric_date)", "intermediate.int_executive_reach_gap_filled group by all"
        ),
    )


US = ("a", "CEO", "A", "US", "Financials", None)
DE = ("b", "CEO", "B", "DE", "Industrials", None)


def test_an_executive_who_leaves_and_comes_back_keeps_their_history(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(settings, [US, DE], 29)
    for executive in ("a", "b"):
        write_days(settings, executive, range(30))
    run_dbt(STEP, settings)
    write_roster(settings, [DE], 39)  # a leaves the roster
    write_days(settings, "b", range(30, 40))
    run_dbt(STEP, settings)
    write_roster(settings, [US, DE], 49)  # and comes back
    for executive in ("a", "b"):
        write_days(settings, executive, range(40, 50))

    run_dbt(BUILD, settings)

    days_of_a = query(
        settings.warehouse_path,
        "select count(*), min(metric_date) from marts.fct_executive_reach_daily "
        "where executive_id = 'a'",
    )
    assert days_of_a[0][1] == day(0)
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_renamed_or_dropped_account_leaves_no_stale_series(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    before = [("a", "x", "a_old"), ("b", "x", "b_x"), ("b", "bluesky", "b_bs")]
    write_roster(settings, [US, DE], 29, before)
    for executive, platform, handle in before:
        write_days(settings, executive, range(30), platform, handle)
    run_dbt(STEP, settings)
    # Day 30: a's x handle is renamed, b drops bluesky.
    after = [("a", "x", "a_new"), ("b", "x", "b_x")]
    write_roster(settings, [US, DE], 30, after)
    for executive, platform, handle in after:
        write_days(settings, executive, range(30, 40), platform, handle)

    run_dbt(BUILD, settings)

    handles = query(
        settings.warehouse_path,
        "select distinct account_handle from marts.fct_executive_reach_daily order by 1",
    )
    assert handles == [("a_new",), ("b_x",)]
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_handle_whose_case_changes_keeps_its_history_under_the_roster_s_spelling(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A roster re-exported with a profile link lowercased (x.com/AnnaMueller, then
    # x.com/annamueller) names the same account: handles are matched case-insensitively
    # everywhere else (the roster's duplicate check, history imports). The marts kept only
    # the days observed under the new spelling, on a green run.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(settings, [US, DE], 29, [("a", "x", "AnnaM"), ("b", "x", "b_x")])
    write_days(settings, "a", range(30), "x", "AnnaM")
    write_days(settings, "b", range(40), "x", "b_x")
    run_dbt(STEP, settings)
    write_roster(settings, [US, DE], 30, [("a", "x", "annam"), ("b", "x", "b_x")])
    # Day 30 observed under both spellings (a run before the roster changed, one after):
    # one account's day, counted once.
    write_days(settings, "a", range(30, 40), "x", "annam")
    write_days(settings, "a", range(30, 31), "x", "AnnaM")

    run_dbt(BUILD, settings)

    facts = query(
        settings.warehouse_path,
        "select account_handle, count(*), count(distinct metric_date), min(metric_date) "
        "from marts.fct_executive_reach_daily where executive_id = 'a' group by 1",
    )
    assert facts == [("annam", 40, 40, day(0))]
    [(asked,)] = query(
        settings.warehouse_path,
        "select accounts_asked from marts.fct_platform_coverage_daily "
        f"where platform = 'x' and metric_date = '{day(30)}'",
    )
    assert asked == 2  # a and b, a's two spellings once
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_days_a_rebuild_leaves_empty_lose_their_old_rows(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # b's account is the only one with counts on days 0-9. delete+insert by day deletes
    # only the days the new rows hold: once b left the roster, those days kept b's rows,
    # their executive version gone from dim_executive, and every build failed its tests.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    both = [("a", "x", "a_x"), ("b", "bluesky", "b_bs")]
    write_roster(settings, [US, DE], 29, both)
    write_days(settings, "b", range(10), "bluesky", "b_bs")
    write_days(settings, "a", range(20, 30), "x", "a_x")
    run_dbt(STEP, settings)
    write_roster(settings, [US], 30, both[:1])
    write_days(settings, "a", range(30, 31), "x", "a_x")

    run_dbt(BUILD, settings)

    assert query(
        settings.warehouse_path,
        "select count(*) from marts.fct_executive_reach_daily where executive_id = 'b'",
    ) == [(0,)]
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_corrected_name_or_synthetic_flag_reaches_every_version_and_the_facts(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The snapshot watches title, company, country and sector only: a name fixed or a flag
    # turned from demo to real kept its first value in dim_executive and the facts, even
    # after a full refresh.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(settings, [US, DE], 29)
    write_days(settings, "a", range(30))
    write_days(settings, "b", range(30))
    run_dbt(STEP, settings)
    with connect(settings.warehouse_path) as con:
        con.execute(
            "update raw.roster_executives set full_name = 'Ann Corrected', is_synthetic = false, "
            "loaded_at = ? where executive_id = 'a'",
            [loaded(30)],
        )
    write_days(settings, "a", range(30, 31))
    write_days(settings, "b", range(30, 31))

    run_dbt(BUILD, settings)

    assert query(
        settings.warehouse_path,
        "select executive_id, full_name, is_synthetic from marts.dim_executive order by 1",
    ) == [("a", "Ann Corrected", False), ("b", "B", True)]
    assert query(
        settings.warehouse_path,
        "select executive_id, bool_or(is_synthetic), bool_and(is_synthetic) "
        "from marts.fct_executive_reach_daily group by 1 order by 1",
    ) == [("a", False, False), ("b", True, True)]
    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_a_version_declared_to_start_later_is_not_current_yet(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    today = datetime.now(UTC).date()
    write_roster(
        settings,
        [
            ("a", "CEO", "A", "DE", "Industrials", date(2020, 1, 1)),
            ("a", "Chair", "A", "FR", "Industrials", today + timedelta(days=90)),
            ("b", "CEO", "B", "US", "Financials", today + timedelta(days=30)),
        ],
        29,
    )
    write_days(settings, "a", range(30))
    write_days(settings, "b", range(30))

    run_dbt(BUILD, settings)

    # b's only version covers the days before its start too (as the facts attribute them).
    assert query(
        settings.warehouse_path,
        "select executive_id, title, is_current from marts.dim_executive order by 1, valid_from",
    ) == [("a", "CEO", True), ("a", "Chair", False), ("b", "CEO", True)]


def test_two_executives_swapping_country_on_a_back_dated_day_rebuild_the_aggregate(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The aggregate's tracked counts per group stay equal, but its followers do not: the
    # fact's rebuild window (re-attribution) must reach the aggregate.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    germany = ("a", "CEO", "A", "DE", "Industrials", None)
    france = ("b", "CEO", "B", "FR", "Industrials", None)
    write_roster(settings, [germany, france], 29)
    write_days(settings, "a", range(30))
    with connect(settings.warehouse_path) as con:  # b's audience is ten times a's
        con.execute("update raw.platform_metrics set followers = followers * 10")
    write_days(settings, "b", range(30))
    run_dbt(STEP, settings)
    write_roster(
        settings,
        [
            ("a", "CEO", "A", "DE", "Industrials", date(2020, 1, 1)),
            ("a", "CEO", "A", "FR", "Industrials", day(5)),
            ("b", "CEO", "B", "FR", "Industrials", date(2020, 1, 1)),
            ("b", "CEO", "B", "DE", "Industrials", day(5)),
        ],
        30,
    )
    write_days(settings, "a", range(30, 31))
    write_days(settings, "b", range(30, 31))

    run_dbt(BUILD, settings)

    assert_same_as_full_refresh(settings, build_dir, monkeypatch)


def test_an_x_account_landed_as_protected_with_its_counts_is_counted(
    build_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # X sends a protected account's counts (they are public); landed as protected before
    # that was read as ok, they were left out of every mart, the executive's reach gone.
    settings = settings_for_data_dir(monkeypatch, build_dir / "data")
    write_roster(settings, [US, DE], 9)
    for executive in ("a", "b"):
        write_days(settings, executive, range(10))
    with connect(settings.warehouse_path) as con, transaction(con):
        con.execute(
            "update raw.platform_metrics set account_status = 'protected' "
            "where account_handle = 'a_x' and snapshot_date >= ?",
            [day(5)],
        )
        # Protected with no counts (X refused to show them): a day without data, as before.
        con.execute(
            "update raw.platform_metrics set account_status = 'protected', followers = null "
            "where account_handle = 'b_x' and snapshot_date = ?",
            [day(9)],
        )

    run_dbt(STEP, settings)

    rows = query(
        settings.warehouse_path,
        "select executive_id, count(*) filter (where is_observed) "
        "from marts.fct_executive_reach_daily group by 1 order by 1",
    )
    assert rows == [("a", 10), ("b", 9)]
    # The coverage says so too: with counts, not private, but for b's day without them.
    coverage = query(
        settings.warehouse_path,
        "select sum(accounts_ok), sum(accounts_private) from marts.fct_platform_coverage_daily",
    )
    assert coverage == [(19, 1)]
