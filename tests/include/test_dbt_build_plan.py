"""What the next warehouse build recomputes: from which day, or everything."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
from conftest import settings_for_data_dir
from slw_testing import PARSE_SEED_VARIABLE, import_while_a_build_plans

from social_leadership.dbt_runner import (
    DBT_TEMP_DIRECTORY_ENV,
    DBT_WAREHOUSE_PATH_ENV,
    PARSED_PROJECT_FILE,
    REBUILD_WINDOWS_ENV,
    BuildPlan,
    DbtResult,
    dbt_env,
    forget_parse_of_moved_project,
    plan_build,
    record_build,
    run_dbt,
)
from social_leadership.settings import load_settings
from social_leadership.warehouse import ensure_schema

T0 = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


def _result() -> DbtResult:
    return DbtResult(args=("build",), returncode=0, passed=10)


def _import_at(con, moment: datetime) -> None:
    con.execute(
        "insert into raw.history_imports values (nextval('raw.history_import_ids'),"
        " 'h.csv', 1, 1, 0, ?, false)",
        [moment],
    )


def test_first_build_is_a_full_refresh(con):
    plan = plan_build(con)
    assert plan.full_refresh
    assert plan.args == ["build", "--full-refresh"]
    assert plan.env == {}


def test_after_a_build_the_next_is_incremental(con):
    record_build(con, "r1", plan_build(con), T0, _result())
    plan = plan_build(con)
    assert not plan.full_refresh
    assert plan.args == ["build"]
    assert plan.env == {}


def test_a_changed_gap_fill_setting_plans_a_full_refresh_and_is_recorded(con):
    # Built incrementally, the kept days followed the old gap fill and the rebuilt days the
    # new one, unsaid.
    record_build(con, "r1", plan_build(con, gap_fill_days=7), T0, _result())
    assert not plan_build(con, gap_fill_days=7).full_refresh

    plan = plan_build(con, gap_fill_days=3)

    assert plan.full_refresh
    assert (
        plan.reason == "SLW_GAP_FILL_DAYS is 3, the last build filled gaps of 7 days: full refresh"
    )
    record_build(con, "r2", plan, T0 + timedelta(hours=1), _result())
    assert con.execute(
        "select run_id, gap_fill_days from audit.dbt_builds order by started_at"
    ).fetchall() == [("r1", 7), ("r2", 3)]
    assert not plan_build(con, gap_fill_days=3).full_refresh
    # A build of an earlier version recorded none: it filled gaps by the default (7), so a
    # setting changed with the upgrade is seen.
    con.execute("update audit.dbt_builds set gap_fill_days = null")
    assert not plan_build(con, gap_fill_days=7).full_refresh
    assert plan_build(con, gap_fill_days=5).reason == (
        "SLW_GAP_FILL_DAYS is 5, the last build filled gaps of 7 days: full refresh"
    )
    # A retry runs the failed build's plan, read back from its run folder.
    assert BuildPlan.from_dict(plan.as_dict()) == plan


def _imported_rows(con, import_at: datetime, first: date, days: int) -> None:
    _import_at(con, import_at)
    con.executemany(
        "insert into raw.imported_metrics values (currval('raw.history_import_ids'), 'x', ?, "
        "'someone', 10, 1, 1)",
        [[first + timedelta(days=number)] for number in range(days)],
    )


def test_history_imported_after_the_last_build_rebuilds_its_days_only(con):
    _imported_rows(con, T0 - timedelta(days=1), date(2024, 1, 1), 5)
    record_build(con, "r1", plan_build(con), T0, _result())
    assert plan_build(con).rebuild_from is None
    # A month of history inside older years, imported after the last build.
    _imported_rows(con, T0 + timedelta(hours=1), date(2025, 3, 1), 31)

    plan = plan_build(con)

    assert not plan.full_refresh
    assert plan.rebuild_windows == ((date(2025, 3, 1), date(2025, 3, 31)),)
    assert plan.rebuild_from == date(2025, 3, 1)
    assert plan.args == ["build"]
    assert plan.env == {"SLW_DBT_REBUILD_WINDOWS": '[["2025-03-01", "2025-03-31"]]'}
    assert "2025-03-01..2025-03-31" in plan.reason
    record_build(con, "r2", plan, T0 + timedelta(hours=2), _result())
    recorded = con.execute(
        "select rebuild_from, rebuild_windows from audit.dbt_builds where run_id = 'r2'"
    ).fetchone()
    assert recorded == (date(2025, 3, 1), "2025-03-01..2025-03-31")


def test_dbt_gets_the_windows_of_its_own_build_only_never_an_inherited_value(monkeypatch, tmp_path):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(REBUILD_WINDOWS_ENV, '[["2020-01-01", "2020-01-31"]]')
    settings = load_settings()

    assert REBUILD_WINDOWS_ENV not in dbt_env(settings)
    windows = {REBUILD_WINDOWS_ENV: '[["2025-03-01", "2025-03-31"]]'}
    assert dbt_env(settings, windows)[REBUILD_WINDOWS_ENV] == windows[REBUILD_WINDOWS_ENV]


def test_dbt_gets_the_warehouse_and_its_spill_folder_relative_to_the_data_folder(
    monkeypatch, tmp_path
):
    env = dbt_env(settings_for_data_dir(monkeypatch, tmp_path / "data"))
    assert env[DBT_WAREHOUSE_PATH_ENV] == "warehouse/warehouse.duckdb"
    assert env[DBT_TEMP_DIRECTORY_ENV] == "tmp/duckdb/dbt"
    # A warehouse kept outside the data folder is named as it is.
    elsewhere = tmp_path / "elsewhere" / "w.duckdb"
    monkeypatch.setenv("SLW_WAREHOUSE_PATH", str(elsewhere))
    assert dbt_env(load_settings())[DBT_WAREHOUSE_PATH_ENV] == str(elsewhere)


def test_a_saved_parse_made_for_the_project_in_another_folder_is_not_reused(monkeypatch, tmp_path):
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    saved = settings.dbt_target_dir / "partial_parse.msgpack"
    saved.write_bytes(b"parse")
    forget_parse_of_moved_project(settings)
    # A first command, or one in the same project: the saved parse stays.
    forget_parse_of_moved_project(settings)
    assert saved.read_bytes() == b"parse"

    moved = dataclasses.replace(settings, dbt_project_dir=tmp_path / "new-checkout" / "dbt")
    forget_parse_of_moved_project(moved)
    assert not saved.exists()
    assert (settings.dbt_target_dir / PARSED_PROJECT_FILE).read_text() == str(moved.dbt_project_dir)


@pytest.mark.dbt
def test_a_copied_data_folder_keeps_dbts_saved_parse(monkeypatch, tmp_path):
    # dbt's own saved parse, not the test session's (tests/conftest.py).
    monkeypatch.delenv(PARSE_SEED_VARIABLE, raising=False)
    first = settings_for_data_dir(monkeypatch, tmp_path / "first")
    run_dbt(["parse"], first, log_path=tmp_path / "first.log")
    shutil.copytree(first.data_dir, tmp_path / "copy")
    run_dbt(
        ["parse"],
        settings_for_data_dir(monkeypatch, tmp_path / "copy"),
        log_path=tmp_path / "copy.log",
    )

    # dbt says when it parses the whole project (a new folder has nothing to reuse)...
    assert "Unable to do partial parsing" in (tmp_path / "first.log").read_text()
    # ...and the copy's profile, naming its own folder, did not void the saved parse.
    assert "Unable to do partial parsing" not in (tmp_path / "copy.log").read_text()


def test_days_far_apart_are_separate_windows_and_close_ones_one(con):
    record_build(con, "r1", plan_build(con), T0, _result())
    _imported_rows(con, T0 + timedelta(hours=1), date(2024, 6, 1), 2)
    # 20 days after the first run ends: within WINDOW_MERGE_DAYS, one window.
    _imported_rows(con, T0 + timedelta(hours=1), date(2024, 6, 22), 1)
    # A year later: a window of its own.
    _imported_rows(con, T0 + timedelta(hours=1), date(2025, 6, 1), 3)

    plan = plan_build(con)

    assert plan.rebuild_windows == (
        (date(2024, 6, 1), date(2024, 6, 22)),
        (date(2025, 6, 1), date(2025, 6, 3)),
    )


def test_history_imported_on_a_worker_whose_clock_is_behind_the_build_s_is_rebuilt(con):
    # The build's worker runs 20 minutes fast: an import right after the build, stamped by
    # its own worker's clock, seemed loaded before that build started, and no build
    # rebuilt its days until a full refresh.
    record_build(con, "r1", plan_build(con), T0 + timedelta(minutes=20), _result())
    _imported_rows(con, T0, date(2025, 3, 1), 3)

    assert plan_build(con).rebuild_windows == ((date(2025, 3, 1), date(2025, 3, 3)),)


def test_history_committed_after_a_build_planned_is_rebuilt_by_the_next(tmp_path, monkeypatch):
    # On a DuckLake with a PostgreSQL catalog an import and a build run at once: the build
    # planned while the import, stamped when it began, had not committed, and the next
    # build took the imports loaded since that build started. Here the build is planned
    # and recorded on a second connection while the import's transaction is open.
    importer = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(importer)
    builder = duckdb.connect(str(tmp_path / "w.duckdb"))
    record_build(builder, "r1", plan_build(builder), T0, _result())

    def plan_and_record() -> BuildPlan:
        plan = plan_build(builder)
        record_build(builder, "r2", plan, datetime.now(UTC), _result())
        return plan

    outcome, plans = import_while_a_build_plans(monkeypatch, importer, tmp_path, plan_and_record)

    assert outcome.rows_loaded == 2
    # The build planned in the middle of the import did not see it...
    assert [plan.rebuild_windows for plan in plans] == [()]
    # ...and the next one rebuilds its days.
    assert plan_build(builder).rebuild_windows == ((date(2025, 3, 1), date(2025, 3, 2)),)
    importer.close()
    builder.close()


def test_a_build_of_an_earlier_version_leaves_the_imports_loaded_since_it_started(con):
    # It recorded no newest import: the imports stamped after its start are rebuilt.
    _imported_rows(con, T0 - timedelta(hours=1), date(2024, 1, 1), 2)
    record_build(con, "r1", plan_build(con), T0, _result())
    con.execute("update audit.dbt_builds set imports_seen = null")
    _imported_rows(con, T0 + timedelta(hours=1), date(2025, 3, 1), 2)

    assert plan_build(con).rebuild_windows == ((date(2025, 3, 1), date(2025, 3, 2)),)


def test_a_late_api_row_rebuilds_from_its_day(con):
    record_build(con, "r1", plan_build(con), T0, _result())
    con.execute(
        "insert into raw.platform_metrics (platform, snapshot_date, account_handle, "
        "account_status, observed_at, source, loaded_at, is_synthetic) "
        "values ('x', date '2026-03-02', 'someone', 'ok', ?, 'api', ?, false)",
        [T0, T0 + timedelta(hours=1)],
    )

    plan = plan_build(con)

    assert not plan.full_refresh
    assert plan.rebuild_windows == ((date(2026, 3, 2), date(2026, 3, 2)),)


def test_a_full_refresh_is_only_done_when_asked(con):
    record_build(con, "r1", plan_build(con), T0, _result())
    _imported_rows(con, T0 + timedelta(hours=1), date(2020, 1, 1), 3)
    assert not plan_build(con).full_refresh

    plan = plan_build(con, full_refresh_asked=True)

    assert plan.full_refresh
    assert "slw rebuild --full" in plan.reason


def test_incremental_models_are_found_with_their_built_columns():
    from social_leadership.dbt_columns import incremental_model_columns
    from social_leadership.settings import DBT_PROJECT_DIR

    columns = incremental_model_columns(DBT_PROJECT_DIR)
    assert set(columns) == {
        ("intermediate", "int_account_metrics_deduplicated"),
        ("intermediate", "int_executive_reach_gap_filled"),
        ("marts", "fct_executive_reach_daily"),
        ("marts", "fct_reach_by_country_sector_daily"),
        ("marts", "fct_reach_by_country_sector_all_platforms_daily"),
        ("marts", "fct_platform_coverage_daily"),
    }
    assert "is_synthetic" in columns[("marts", "fct_executive_reach_daily")]


def test_an_incremental_table_built_with_other_columns_forces_a_full_refresh(con):
    from social_leadership.dbt_columns import incremental_model_columns
    from social_leadership.settings import DBT_PROJECT_DIR

    record_build(con, "r1", plan_build(con), T0, _result())
    expected = sorted(
        incremental_model_columns(DBT_PROJECT_DIR)[("marts", "fct_executive_reach_daily")]
    )
    con.execute("create schema marts")
    # As this version builds it: no reason for a full refresh.
    con.execute(
        "create table marts.fct_executive_reach_daily ("
        + ", ".join(f"{column} varchar" for column in expected)
        + ")"
    )
    assert not plan_build(con).full_refresh
    # As an earlier version built it, before the synthetic flag.
    con.execute("alter table marts.fct_executive_reach_daily drop column is_synthetic")
    plan = plan_build(con)
    assert plan.full_refresh
    assert "marts.fct_executive_reach_daily" in plan.reason


def test_the_dag_parameter_full_refresh_reaches_the_build(copied_built_warehouse):
    from social_leadership.tasks import dbt_build_task

    context = {"params": {"full_refresh": True}, "run_id": "manual__rebuild", "ti": None}
    summary = dbt_build_task(context)

    assert summary["full_refresh"] is True
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        row = con.execute(
            "select full_refresh, reason from audit.dbt_builds where run_id = 'manual__rebuild'"
        ).fetchone()
    assert row == (
        True,
        "full refresh asked for (the full_refresh parameter, as slw rebuild --full sets)",
    )
