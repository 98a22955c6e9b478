"""The dbt project built for real over the synthetic raw dataset of conftest.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from conftest import shared_build_root

from social_leadership.dbt_runner import DbtError, run_dbt
from social_leadership.settings import load_settings
from social_leadership.summary import country_comparison_lines

if TYPE_CHECKING:
    from conftest import BuiltWarehouse

# The dataset's calendar, as documented in conftest.py: day 0 is 2025-01-01.
LAST_DAY = 34


def day(number: int) -> date:
    return date.fromordinal(date(2025, 1, 1).toordinal() + number)


@pytest.fixture(scope="module")
def marts(synthetic_built_warehouse: BuiltWarehouse) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(synthetic_built_warehouse.settings.warehouse_path), read_only=True)
    yield con
    con.close()


def reach_row(con: duckdb.DuckDBPyConnection, executive_id: str, number: int) -> dict[str, Any]:
    cursor = con.execute(
        "select * from marts.fct_executive_reach_daily "
        "where executive_id = ? and platform = 'x' and metric_date = ?",
        [executive_id, day(number)],
    )
    columns = [description[0] for description in cursor.description]
    rows = cursor.fetchall()
    assert len(rows) <= 1
    return dict(zip(columns, rows[0], strict=True)) if rows else {}


def group_row(
    con: duckdb.DuckDBPyConnection, country: str, sector: str, platform: str, number: int
) -> dict[str, Any]:
    """A row of the per-platform aggregate, or with platform "all" of the rollup mart."""
    if platform == "all":
        cursor = con.execute(
            "select * from marts.fct_reach_by_country_sector_all_platforms_daily "
            "where country_code = ? and sector = ? and metric_date = ?",
            [country, sector, day(number)],
        )
    else:
        cursor = con.execute(
            "select * from marts.fct_reach_by_country_sector_daily "
            "where country_code = ? and sector = ? and platform = ? and metric_date = ?",
            [country, sector, platform, day(number)],
        )
    columns = [description[0] for description in cursor.description]
    rows = cursor.fetchall()
    assert len(rows) == 1
    return dict(zip(columns, rows[0], strict=True))


def test_build_passes_every_node_including_unit_tests(
    synthetic_built_warehouse: BuiltWarehouse,
) -> None:
    build = synthetic_built_warehouse.build
    assert build.returncode == 0
    assert build.errored == 0
    assert build.warned == 0
    # dbt reports exposures as skipped: they are documentation, not something it runs.
    skipped = {
        node for node, status in build.statuses.items() if status in {"skip", "skipped", "no-op"}
    }
    assert skipped == {
        "exposure.social_leadership.serving_copy",
        "exposure.social_leadership.weekly_report",
    }
    assert build.passed == build.total - len(skipped) > 50
    unit_tests = [node for node in build.statuses if node.startswith("unit_test.")]
    assert len(unit_tests) >= 5
    assert "snapshot.social_leadership.snp_roster__executives" in build.statuses


def test_the_build_gives_no_dbt_warning(synthetic_built_warehouse: BuiltWarehouse) -> None:
    # dbt-duckdb's snapshot clock, a local TIMESTAMP, made dbt warn on every build that it
    # differs from the snapshot's loaded_at (an instant): the project's clock is an instant.
    log = synthetic_built_warehouse.settings.logs_dir / "dbt_json" / "dbt.log"
    events = [json.loads(line)["info"] for line in log.read_text(encoding="utf-8").splitlines()]
    # The log is the build's, snapshot included.
    assert any("snp_roster__executives" in event["msg"] for event in events)
    warnings = [f"{e['name']}: {e['msg']}" for e in events if e["level"] in {"warn", "error"}]
    assert warnings == []


def test_dataset_calendar_matches_conftest(synthetic_built_warehouse: BuiltWarehouse) -> None:
    assert synthetic_built_warehouse.last_day == LAST_DAY
    assert synthetic_built_warehouse.day(LAST_DAY) == day(LAST_DAY)


def test_schemas_are_named_without_target_prefix(marts: duckdb.DuckDBPyConnection) -> None:
    schemas = {
        row[0]
        for row in marts.execute(
            "select distinct table_schema from information_schema.tables"
        ).fetchall()
    }
    assert {"raw", "audit", "staging", "intermediate", "marts"} <= schemas
    assert not any(schema.startswith("main_") for schema in schemas)


def test_reach_mart_columns(marts: duckdb.DuckDBPyConnection) -> None:
    columns = [
        row[0] for row in marts.execute("describe marts.fct_executive_reach_daily").fetchall()
    ]
    assert columns == [
        "executive_id",
        "platform",
        "metric_date",
        "account_handle",
        "company_id",
        "company_name",
        "country_code",
        "sector",
        "followers",
        "following",
        "posts",
        "followers_change_1d",
        "followers_change_7d",
        "followers_change_28d",
        "is_observed",
        "observed_at",
        "source",
        "is_synthetic",
        "executive_version_id",
    ]


def test_two_day_gap_is_carried_forward_unobserved(marts: duckdb.DuckDBPyConnection) -> None:
    before = reach_row(marts, "us_one", 19)
    for number in (20, 21):
        carried = reach_row(marts, "us_one", number)
        assert carried["is_observed"] is False
        assert carried["followers"] == 1190
        assert carried["observed_at"] == before["observed_at"]
    assert reach_row(marts, "us_one", 22)["is_observed"] is True


def test_gap_longer_than_fill_window_stops_the_series(marts: duckdb.DuckDBPyConnection) -> None:
    carried = [reach_row(marts, "us_two", number) for number in range(10, 17)]
    assert all(row["is_observed"] is False and row["followers"] == 3045 for row in carried)
    assert [reach_row(marts, "us_two", number) for number in (17, 18, 19)] == [{}, {}, {}]
    resumed = reach_row(marts, "us_two", 20)
    assert resumed["is_observed"] is True
    assert resumed["followers_change_1d"] is None


def test_changes_use_calendar_days_across_gaps(marts: duckdb.DuckDBPyConnection) -> None:
    assert reach_row(marts, "us_one", 22)["followers_change_7d"] == 1220 - 1150
    # Seven days back from day 27 is carried day 20 (1190, from day 19).
    assert reach_row(marts, "us_one", 27)["followers_change_7d"] == 1270 - 1190
    assert reach_row(marts, "us_two", 23)["followers_change_7d"] == 3115 - 3045
    assert reach_row(marts, "us_two", 25)["followers_change_7d"] is None
    assert reach_row(marts, "us_one", LAST_DAY)["followers_change_28d"] == 1340 - 1060
    assert reach_row(marts, "us_one", 5)["followers_change_28d"] is None


def test_latest_observation_of_a_day_wins(marts: duckdb.DuckDBPyConnection) -> None:
    row = reach_row(marts, "us_one", 10)
    assert row["followers"] == 1100
    assert row["source"] == "sandbox"


def test_status_without_counts_counts_as_a_gap(marts: duckdb.DuckDBPyConnection) -> None:
    row = reach_row(marts, "fr_one", 30)
    assert row["is_observed"] is False
    assert row["followers"] == 700


def test_series_ends_at_latest_raw_snapshot(marts: duckdb.DuckDBPyConnection) -> None:
    last = marts.execute("select max(metric_date) from marts.fct_executive_reach_daily").fetchone()
    assert last == (day(LAST_DAY),)
    assert reach_row(marts, "de_two", 12)["is_observed"] is False
    assert reach_row(marts, "de_two", 13) == {}


def test_group_with_inactive_executives(marts: duckdb.DuckDBPyConnection) -> None:
    early = group_row(marts, "DE", "Industrials", "x", 3)
    assert early["executives_tracked"] == 3
    assert early["executives_active"] == 2
    assert early["active_share_pct"] == pytest.approx(100 * 2 / 3)
    assert early["total_followers"] == 503 + 50
    assert early["median_followers"] == pytest.approx((503 + 50) / 2)

    late = group_row(marts, "DE", "Industrials", "x", LAST_DAY)
    assert (late["executives_active"], late["total_followers"]) == (1, 534)
    assert late["active_share_pct"] == pytest.approx(100 / 3)
    assert late["median_followers"] == pytest.approx(534)

    us = group_row(marts, "US", "Information Technology", "x", 18)
    assert (us["executives_tracked"], us["executives_active"]) == (2, 1)
    assert us["active_share_pct"] == pytest.approx(50.0)


def test_group_without_any_account_on_a_platform_has_share_zero(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    row = group_row(marts, "FR", "Financials", "bluesky", LAST_DAY)
    assert (row["executives_tracked"], row["executives_active"]) == (1, 0)
    assert row["active_share_pct"] == 0.0
    assert row["total_followers"] == 0
    assert row["median_followers"] is None


def test_all_platforms_row_sums_each_executive_first(marts: duckdb.DuckDBPyConnection) -> None:
    early = group_row(marts, "DE", "Industrials", "all", 3)
    assert early["executives_active"] == 2
    assert early["total_followers"] == (503 + 206) + 50
    assert early["median_followers"] == pytest.approx(((503 + 206) + 50) / 2)

    late = group_row(marts, "DE", "Industrials", "all", LAST_DAY)
    assert late["total_followers"] == 534 + 268
    assert late["median_followers"] == pytest.approx(534 + 268)
    assert late["followers_change_28d"] == 28 + 56
    assert (late["executives_tracked"], late["executives_active"]) == (3, 1)
    assert late["active_share_pct"] == pytest.approx(100 / 3)


def test_per_platform_aggregate_holds_no_cross_platform_rows(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    # Summing a day over platforms must not count anything twice: every row is a platform
    # of dim_platform, and the sum over platforms equals the executives' own sum.
    outside = marts.execute(
        "select count(*) from marts.fct_reach_by_country_sector_daily "
        "where platform not in (select platform from marts.dim_platform)"
    ).fetchone()
    assert outside == (0,)
    sums = marts.execute(
        """
        select
            (select sum(total_followers) from marts.fct_reach_by_country_sector_daily
                where metric_date = $day),
            (select sum(followers) from marts.fct_executive_reach_daily
                where metric_date = $day),
            (select sum(total_followers)
                from marts.fct_reach_by_country_sector_all_platforms_daily
                where metric_date = $day)
        """,
        {"day": day(LAST_DAY)},
    ).fetchone()
    assert sums is not None
    assert sums[0] == sums[1] == sums[2]


def test_synthetic_share_counts_synthetic_executives_and_counts(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    # conftest: us_one is a real executive with synthetic counts, us_two wholly real, every
    # other executive is from the demo roster.
    us_one = reach_row(marts, "us_one", 5)
    us_two = reach_row(marts, "us_two", 5)
    assert (us_one["is_synthetic"], us_two["is_synthetic"]) == (True, False)
    for platform in ("x", "all"):
        row = group_row(marts, "US", "Information Technology", platform, 5)
        assert row["synthetic_executives_pct"] == pytest.approx(50.0)
    # Demo executives are synthetic whether active or not (de_three has no account).
    assert group_row(marts, "DE", "Industrials", "all", LAST_DAY)[
        "synthetic_executives_pct"
    ] == pytest.approx(100.0)
    comparison = marts.execute(
        "select country_code, synthetic_executives_pct from marts.fct_country_comparison_yearly"
    ).fetchall()
    assert dict(comparison) == {"US": 50.0, "DE": 100.0, "FR": 100.0}


def test_aggregate_mart_columns_and_types(marts: duckdb.DuckDBPyConnection) -> None:
    described = {
        row[0]: row[1]
        for row in marts.execute("describe marts.fct_reach_by_country_sector_daily").fetchall()
    }
    assert list(described) == [
        "country_code",
        "sector",
        "platform",
        "metric_date",
        "executives_tracked",
        "executives_active",
        "active_share_pct",
        "total_followers",
        "median_followers",
        "followers_change_28d",
        "synthetic_executives_pct",
    ]
    assert described["active_share_pct"] == "DOUBLE"
    assert described["total_followers"] == "BIGINT"


def test_survey_interval(marts: duckdb.DuckDBPyConnection) -> None:
    row = marts.execute(
        "select ci_lower, ci_upper, is_published_aggregate from marts.fct_survey_results "
        "where scope = 'DE'"
    ).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(60.1)
    assert row[1] == pytest.approx(65.9)
    assert row[2] is True


def test_dimensions_from_seeds(marts: duckdb.DuckDBPyConnection) -> None:
    assert marts.execute("select count(*) from marts.dim_sector").fetchone() == (11,)
    assert marts.execute(
        "select country_name from marts.dim_country where country_code = 'DE'"
    ).fetchone() == ("Germany",)


@pytest.mark.dbt
def test_dbt_failure_raises_with_output_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "no_project").mkdir()
    monkeypatch.setenv("SLW_DBT_PROJECT_DIR", str(tmp_path / "no_project"))
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_WAREHOUSE_PATH", str(tmp_path / "data" / "warehouse.duckdb"))
    settings = load_settings()
    with pytest.raises(DbtError) as raised:
        run_dbt(["parse"], settings, log_path=settings.logs_dir / "parse.log")
    assert raised.value.result.returncode != 0
    assert "dbt_project.yml" in str(raised.value)
    assert (settings.logs_dir / "parse.log").is_file()


def test_dimensions_of_the_star(marts: duckdb.DuckDBPyConnection) -> None:
    assert marts.execute(
        "select count(*), count(*) filter (where is_current), count(distinct executive_id) "
        "from marts.dim_executive"
    ).fetchone() == (6, 6, 6)
    assert marts.execute("select count(*) from marts.dim_company").fetchone() == (6,)
    assert marts.execute(
        "select follower_source from marts.dim_platform where platform = 'linkedin'"
    ).fetchone() == ("import",)
    assert marts.execute(
        "select calendar_year, iso_day_of_week, is_weekend from marts.dim_date "
        "where date_day = date '2025-01-04'"
    ).fetchone() == (2025, 6, True)
    orphans = marts.execute(
        "select count(*) from marts.fct_executive_reach_daily as f "
        "left join marts.dim_executive as d using (executive_version_id) "
        "where d.executive_id is null"
    ).fetchone()
    assert orphans == (0,)


def test_country_comparison_answers_does_germany_lag(marts: duckdb.DuckDBPyConnection) -> None:
    rows = {
        row[0]: row[1:]
        for row in marts.execute(
            "select country_code, executives_tracked, executives_active, active_share_pct, "
            "median_followers, expectation_share_pct, is_country_expectation "
            "from marts.fct_country_comparison_yearly where calendar_year = 2025"
        ).fetchall()
    }
    # On the last day (day 34): de_one is active on x (534) and bluesky (268); de_two's
    # series has ended and de_three has no account.
    assert rows["DE"] == (3, 1, pytest.approx(100 / 3), 534 + 268, 63.0, True)
    # The US has no figure of its own, so the global one stands in, flagged.
    assert rows["US"] == (2, 2, 100.0, (1340 + 3170) / 2, 76.0, False)
    lagging = marts.execute(
        "select de.active_share_pct < us.active_share_pct "
        "from marts.fct_country_comparison_yearly as de "
        "inner join marts.fct_country_comparison_yearly as us using (calendar_year) "
        "where de.country_code = 'DE' and us.country_code = 'US'"
    ).fetchone()
    assert lagging == (True,)


def test_summary_prints_the_country_comparison(marts: duckdb.DuckDBPyConnection) -> None:
    lines = country_comparison_lines(marts)
    assert lines[0].startswith("Country comparison 2025")
    by_country = {line.split()[0]: line for line in lines[2:]}
    assert set(by_country) == {"DE", "US", "FR"}
    assert "33%" in by_country["DE"]
    assert "63% (own 2019)" in by_country["DE"]
    assert "76% (global 2019)" in by_country["US"]


def test_the_xdist_workers_share_one_build(
    synthetic_built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Under `make test` (pytest-xdist) one worker builds, the others read the same files.
    root = shared_build_root(tmp_path_factory)
    if root is None:
        assert "PYTEST_XDIST_WORKER" not in os.environ
        assert synthetic_built_warehouse.settings.data_dir.is_relative_to(
            tmp_path_factory.getbasetemp()
        )
    else:
        assert synthetic_built_warehouse.settings.data_dir == root / "data"
        assert (root / "made.json").is_file()


def test_every_expectation_question_has_its_row_with_a_figure_or_without(
    marts: duckdb.DuckDBPyConnection,
) -> None:
    # Questions came from the figures: one no survey had a figure for vanished, where the
    # mart promises it with has_figure false.
    asked = ["ceo_clear_stand", "ceo_lead_change", "ceo_top_management_matter"]
    country_years = marts.execute(
        "select count(*) from marts.fct_country_comparison_yearly"
    ).fetchone()[0]
    rows = marts.execute(
        "select question_id, count(*), bool_or(has_figure), bool_and(has_figure) "
        "from marts.fct_country_expectations_yearly group by 1 order by 1"
    ).fetchall()
    assert [row[0] for row in rows] == asked
    assert all(row[1] == country_years for row in rows)
    # The synthetic surveys have figures for ceo_clear_stand only.
    assert [(row[0], row[2]) for row in rows] == [
        ("ceo_clear_stand", True),
        ("ceo_lead_change", False),
        ("ceo_top_management_matter", False),
    ]


@pytest.mark.parametrize(
    ("today", "last_day"),
    [(date(2026, 12, 7), date(2040, 12, 31)), (date(2041, 1, 2), date(2051, 12, 31))],
)
def test_the_calendar_runs_ten_years_past_today_and_never_ends_before_2041(
    today: date, last_day: date
) -> None:
    # It ended on 2040-12-31: from the next day every build failed the facts' relationship
    # tests to dim_date, and nothing was published again.
    model = Path(__file__).resolve().parents[2] / "dbt_project/models/marts/dim_date.sql"
    sql = model.read_text(encoding="utf-8").replace("{{ utc_today() }}", f"date '{today}'")
    assert "{{" not in sql

    with duckdb.connect() as con:
        first, last, days = con.execute(
            f"select min(date_day), max(date_day), count(*) from ({sql})"
        ).fetchone()

    assert (first, last) == (date(2000, 1, 1), last_day)
    assert days == (last_day - first).days + 1
