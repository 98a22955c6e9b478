"""The gate validates what changed: of the daily facts, only the days the dbt builds since
the last passing gate rebuilt (audit.incremental_windows), everything after a full refresh
and every SLW_QUALITY_FULL_EVERY_DAYS days, plus whole-table invariants in SQL (the key
checked exactly on the days whose fingerprint changed). Real dbt
builds on a copy of the shared synthetic warehouse (conftest.py)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import duckdb
import pytest
from conftest import BUILD_WITHOUT_TESTS

from social_leadership.dbt_runner import run_dbt
from social_leadership.quality import MART_SUITES, check_marts
from social_leadership.settings import Settings
from social_leadership.warehouse import connect

DAILY = sorted(suite.table for suite in MART_SUITES if suite.sliced_by)
GX_ROW_COUNT = "expect_table_row_count_to_be_between"


def results(settings: Settings, run_id: str) -> list[dict[str, object]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        cursor = con.execute(
            "select table_name, expectation, is_critical, success, details, validated_from "
            "from audit.quality_results where run_id = ? order by table_name, expectation",
            [run_id],
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def sql(settings: Settings, statement: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(settings.warehouse_path)) as con:
        return con.execute(statement).fetchall()


def add_a_day_and_build(settings: Settings, *args: str) -> None:
    """The next day of counts for every account that had some on the last day, then the
    daily dbt build (``--full-refresh`` when asked): its models and snapshot, which write
    the marts and the rebuilt windows the gate reads; dbt's data tests are not the gate's
    concern (test_dbt_models.py runs them)."""
    sql(
        settings,
        "insert into raw.platform_metrics select * replace (snapshot_date + 1 as "
        "snapshot_date, observed_at + interval 1 day as observed_at, now() as loaded_at) "
        "from raw.platform_metrics where account_status = 'ok' and snapshot_date = "
        "(select max(snapshot_date) from raw.platform_metrics)",
    )
    run_dbt([*BUILD_WITHOUT_TESTS, *args], settings)


def rebuilt_from(settings: Settings) -> dict[str, date]:
    """The first day the last build rebuilt, per daily fact."""
    rows = sql(
        settings,
        "select model_name, rebuild_from from audit.incremental_windows where invocation_id = "
        "(select invocation_id from audit.incremental_windows order by recorded_at desc "
        "limit 1)",
    )
    windows = {model: first for model, first in rows if model in DAILY}
    assert set(windows) == set(DAILY)
    assert all(isinstance(first, date) for first in windows.values())
    return windows


def observed_rows(rows: list[dict[str, object]], table: str) -> int:
    [row] = [r for r in rows if r["table_name"] == table and r["expectation"] == GX_ROW_COUNT]
    return int(json.loads(str(row["details"]))["observed_value"])


def test_a_second_gate_after_a_daily_build_validates_only_the_rebuilt_window(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    first = check_marts(settings, "gate-1")
    assert first.critical_failures == []
    assert all(row["validated_from"] is None for row in results(settings, "gate-1"))
    assert set(first.validated) == set(DAILY)
    assert all(text.startswith("whole table: first gate") for text in first.validated.values())

    add_a_day_and_build(settings)
    windows = rebuilt_from(settings)
    window = windows["fct_executive_reach_daily"]
    sql(
        settings,
        "update marts.fct_executive_reach_daily set followers = -5 "
        f"where metric_date = date '{window}' and executive_id = 'us_one'",
    )
    failed = check_marts(settings, "gate-2")
    assert [
        (c.table_name, c.column_name, c.unexpected_count) for c in failed.critical_failures
    ] == [("fct_executive_reach_daily", "followers", 1)]
    sql(
        settings,
        "update marts.fct_executive_reach_daily set followers = 5 "
        f"where metric_date = date '{window}' and executive_id = 'us_one'",
    )
    # A failed gate leaves the cursor: the next gate validates the same days again.
    second = check_marts(settings, "gate-3")

    assert second.critical_failures == []
    assert second.validated == {
        table: f"from {windows[table]}: the days rebuilt since the last gate" for table in DAILY
    }
    for run_id in ("gate-2", "gate-3"):
        recorded = results(settings, run_id)
        for table in DAILY:
            gx = [r for r in recorded if r["table_name"] == table and r["validated_from"]]
            assert gx, table
            assert {r["validated_from"] for r in gx} == {windows[table]}
            [(in_window, whole)] = sql(
                settings,
                f"select count(*) filter (where metric_date >= date '{windows[table]}'), "
                f"count(*) from marts.{table}",
            )
            assert observed_rows(recorded, table) == in_window < whole
            # The SQL invariants cover the whole table on every gate.
            invariants = {
                r["expectation"]
                for r in recorded
                if r["table_name"] == table and r["validated_from"] is None
            }
            assert invariants - {
                "expect_observed_counts_to_have_followers",
                "expect_followers_within_100_times_the_day_before",
                "expect_a_platform_s_followers_to_change_from_the_day_before",
            } == {
                "expect_primary_key_to_be_unique",
                "expect_every_day_to_have_rows_up_to_the_latest_day",
                "expect_no_day_after_today",
            }
        # The other marts are small and validated whole.
        assert all(r["validated_from"] is None for r in recorded if r["table_name"] not in DAILY)

    # Nothing rebuilt since a passing gate: the daily facts are not read again.
    nothing = check_marts(settings, "gate-4")
    assert set(nothing.validated.values()) == {"not rebuilt since the last gate"}
    assert not [
        r
        for r in results(settings, "gate-4")
        if r["expectation"] == GX_ROW_COUNT and r["table_name"] in DAILY
    ]


def test_a_bad_row_outside_the_window_is_caught_by_the_weekly_full_validation(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    assert check_marts(settings, "gate-1").critical_failures == []
    # Day 5 lies long before the days a daily build rewrites, which keep it as it is.
    sql(
        settings,
        "update marts.fct_executive_reach_daily set followers = -5 "
        "where metric_date = date '2025-01-05' and executive_id = 'us_one'",
    )
    add_a_day_and_build(settings)
    assert min(rebuilt_from(settings).values()) > date(2025, 1, 5)

    assert check_marts(settings, "gate-2").critical_failures == []

    # A week later (the last whole validation moved back 7 days) everything is read.
    sql(
        settings,
        "update audit.quality_cursor set full_validated_at = full_validated_at - interval 7 day",
    )
    weekly = check_marts(settings, "gate-3")
    assert [
        (c.table_name, c.column_name, c.unexpected_count) for c in weekly.critical_failures
    ] == [("fct_executive_reach_daily", "followers", 1)]
    assert weekly.validated["fct_executive_reach_daily"] == (
        "whole table: full validation every 7 days"
    )
    assert all(r["validated_from"] is None for r in results(settings, "gate-3"))
    # SLW_QUALITY_FULL_EVERY_DAYS=0: every gate validates whole.
    always = dataclasses.replace(settings, quality_full_every_days=0)
    assert check_marts(always, "gate-4").critical_failures


def test_a_duplicate_key_outside_the_window_is_caught_by_the_sql_invariant(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    assert check_marts(settings, "gate-1").critical_failures == []
    sql(
        settings,
        "insert into marts.fct_reach_by_country_sector_daily select * from "
        "marts.fct_reach_by_country_sector_daily where metric_date = date '2025-01-03' limit 1",
    )

    report = check_marts(settings, "gate-2")

    # The day whose rows changed is validated again; the other facts are not read.
    assert report.validated.pop("fct_reach_by_country_sector_daily") == (
        "from 2025-01-03: days whose rows changed since the last passing gate"
    )
    assert set(report.validated.values()) == {"not rebuilt since the last gate"}
    assert [
        (c.table_name, c.expectation, c.unexpected_count) for c in report.critical_failures
    ] == [("fct_reach_by_country_sector_daily", "expect_primary_key_to_be_unique", 1)]
    [failed] = [r for r in results(settings, "gate-2") if not r["success"]]
    assert failed["validated_from"] is None
    assert "2025-01-03" in str(failed["details"])


def key_check(settings: Settings, run_id: str, table: str) -> dict[str, object]:
    [row] = [
        r
        for r in results(settings, run_id)
        if r["table_name"] == table and r["expectation"] == "expect_primary_key_to_be_unique"
    ]
    return row


def test_the_key_is_checked_exactly_only_on_days_whose_fingerprint_changed(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    table = "fct_executive_reach_daily"
    assert check_marts(settings, "gate-1").critical_failures == []
    first = json.loads(str(key_check(settings, "gate-1", table)["details"]))
    assert first["days_checked_exactly"] == "all"
    [(days,)] = sql(settings, f"select count(distinct metric_date) from marts.{table}")
    [(stored,)] = sql(
        settings, f"select count(*) from audit.key_fingerprints where table_name = '{table}'"
    )
    assert stored == days

    add_a_day_and_build(settings)
    assert check_marts(settings, "gate-2").critical_failures == []
    daily = json.loads(str(key_check(settings, "gate-2", table)["details"]))
    # The new day, and the rebuilt days whose rows changed: not the whole history.
    assert 1 <= daily["days_checked_exactly"] <= 11 < days

    # A key changed in place on an old day (same row count): another row's key, copied.
    sql(
        settings,
        f"update marts.{table} set executive_id = (select min(executive_id) from marts.{table} "
        "where metric_date = date '2025-01-04' and platform = 'x') "
        f"where metric_date = date '2025-01-04' and platform = 'x' and executive_id = "
        f"(select max(executive_id) from marts.{table} where metric_date = date '2025-01-04' "
        "and platform = 'x')",
    )
    report = check_marts(settings, "gate-3")

    assert [(c.table_name, c.expectation) for c in report.critical_failures] == [
        (table, "expect_primary_key_to_be_unique")
    ]
    caught = json.loads(str(key_check(settings, "gate-3", table)["details"]))
    assert caught["days_checked_exactly"] == 1
    assert "2025-01-04" in str(caught["partial_unexpected_list"])


def test_a_gap_in_a_daily_fact_is_recorded_as_a_warning(copied_built_warehouse: Settings) -> None:
    settings = copied_built_warehouse
    sql(
        settings,
        "delete from marts.fct_reach_by_country_sector_all_platforms_daily "
        "where metric_date = date '2025-01-10'",
    )

    report = check_marts(settings, "gate-gap")

    assert report.critical_failures == []
    [gap] = report.failed
    assert (gap.table_name, gap.expectation, gap.unexpected_count) == (
        "fct_reach_by_country_sector_all_platforms_daily",
        "expect_every_day_to_have_rows_up_to_the_latest_day",
        1,
    )
    assert "2025-01-10" in str(gap.details)


def test_a_full_refresh_validates_everything(copied_built_warehouse: Settings) -> None:
    settings = copied_built_warehouse
    assert check_marts(settings, "gate-1").critical_failures == []

    add_a_day_and_build(settings, "--full-refresh")
    report = check_marts(settings, "gate-2")

    assert report.validated == {table: "whole table: rebuilt whole by dbt" for table in DAILY}
    recorded = results(settings, "gate-2")
    assert all(r["validated_from"] is None for r in recorded)
    for table in DAILY:
        [(whole,)] = sql(settings, f"select count(*) from marts.{table}")
        assert observed_rows(recorded, table) == whole


def test_results_of_a_warehouse_from_before_validated_from_are_kept(tmp_path) -> None:
    path = tmp_path / "old.duckdb"
    with connect(path) as con:
        con.execute("alter table audit.quality_results drop column build_attempt")
        con.execute("alter table audit.quality_results drop column validated_from")
        con.execute(
            "insert into audit.quality_results values "
            "('old-run', 's', 't', 'e', null, true, true, null, null, now())"
        )
    with connect(path) as con:
        rows = con.execute("select run_id, validated_from from audit.quality_results").fetchall()
    assert rows == [("old-run", None)]


@pytest.mark.parametrize("value", ["-1", "weekly"])
def test_a_bad_full_validation_interval_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from social_leadership.settings import SettingsError, load_settings

    monkeypatch.setenv("SLW_QUALITY_FULL_EVERY_DAYS", value)
    with pytest.raises(SettingsError, match="SLW_QUALITY_FULL_EVERY_DAYS"):
        load_settings()


@pytest.mark.parametrize("max_rows", [1, 2, 100])
def test_window_slices_hold_the_days_from_its_first_and_the_undated_rows_once(
    max_rows: int,
) -> None:
    from social_leadership.quality import _slice_filters

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_executive_reach_daily as select * from (values "
        "('2024-01-01'::date), ('2024-01-02'::date), ('2024-01-03'::date), "
        "('2024-01-03'::date), ('2024-01-04'::date), (null), ('infinity'::date)) as t(metric_date)"
    )

    filters = _slice_filters(
        con, "fct_executive_reach_daily", "metric_date", max_rows, date(2024, 1, 3)
    )
    counts = [
        con.execute(
            f"select count(*) from marts.fct_executive_reach_daily where {condition}"
        ).fetchone()[0]
        for condition in filters
    ]

    # 2024-01-03 twice, 2024-01-04, infinity and the row without a day; not the first days.
    assert sum(counts) == 5
    assert max(counts) <= max(max_rows, 2)
