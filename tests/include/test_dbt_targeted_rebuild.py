"""An imported month inside three years of history: the next build recomputes that month
and the days derived from it (gap fill, 28-day changes) besides the late-data lookback, not
every day since, and no full refresh; its result equals a ``--full-refresh`` of the same
data.

The builds go the way ``warehouse_build`` runs them: :func:`plan_build` decides from the
raw data, ``dbt build`` runs with the plan's arguments and environment (its windows),
:func:`record_build` records it.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import BUILD_WITHOUT_TESTS, settings_for_data_dir
from slw_testing import PARSE_SEED_VARIABLE

from social_leadership.dbt_runner import (
    REBUILD_WINDOWS_ENV,
    BuildPlan,
    DbtError,
    plan_build,
    record_build,
    run_dbt,
)
from social_leadership.settings import Settings
from social_leadership.warehouse import connect, transaction

pytestmark = pytest.mark.dbt


FIRST_DAY = date(2023, 12, 1)
LAST_DAY = date(2026, 11, 30)
# The month a second history file brings, after the first builds.
MONTH = (date(2025, 3, 1), date(2025, 3, 31))
EXECUTIVES = [
    ("de_a", "Anna Beispiel", "CEO", "Beispiel Werke", "DE", "Industrials"),
    ("de_b", "Bernd Muster", "CEO", "Muster Bank", "DE", "Financials"),
    ("us_a", "Cara Example", "CEO", "Example Soft", "US", "Information Technology"),
]
ACCOUNTS = [
    ("de_a", "x", "de_a_x"),
    ("de_a", "bluesky", "de-a.bsky.social"),
    ("de_b", "x", "de_b_x"),
    ("us_a", "x", "us_a_x"),
]
FACT_KEY = ["executive_id", "platform", "metric_date"]
GROUP_KEY = ["country_code", "sector", "metric_date"]
TABLES = {
    "intermediate.int_account_metrics_deduplicated": [
        "platform",
        "account_handle",
        "snapshot_date",
    ],
    "intermediate.int_executive_reach_gap_filled": FACT_KEY,
    "marts.fct_executive_reach_daily": FACT_KEY,
    "marts.fct_reach_by_country_sector_daily": [*GROUP_KEY, "platform"],
    "marts.fct_reach_by_country_sector_all_platforms_daily": GROUP_KEY,
    "marts.fct_country_comparison_yearly": ["country_code", "calendar_year"],
}


def _followers(handle: str, day: date) -> int:
    # A smooth, distinct path per account; a weekly dip so 7-day changes are not constant.
    base = 1_000 * (1 + sum(map(ord, handle)) % 7)
    number = (day - FIRST_DAY).days
    return base + 3 * number - (25 if day.weekday() == 6 else 0)


def _import(con: duckdb.DuckDBPyConnection, loaded_at: datetime, days: list[date]) -> None:
    (import_id,) = con.execute("select nextval('raw.history_import_ids')").fetchone()
    rows = [
        (import_id, platform, day, handle, _followers(handle, day), 10, 100)
        for day in days
        for _, platform, handle in ACCOUNTS
    ]
    con.execute(
        "insert into raw.history_imports values (?, 'history.csv', ?, ?, 0, ?, false)",
        [import_id, len(rows), len(rows), loaded_at],
    )
    con.executemany("insert into raw.imported_metrics values (?, ?, ?, ?, ?, ?, ?)", rows)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _build(
    settings: Settings, *, expect_full: bool, data_tests: bool = False
) -> tuple[BuildPlan, str]:
    """One build as warehouse_build runs it (unit tests skipped, and data tests unless
    asked, to keep the module fast); its plan and dbt's output."""
    with connect(settings.warehouse_path) as con:
        plan = plan_build(con, settings.dbt_project_dir)
    assert plan.full_refresh is expect_full, plan.reason
    started = datetime.now(UTC)
    log_path = settings.logs_dir / f"build_{started.timestamp()}.log"
    result = run_dbt(
        [*plan.args, "--exclude-resource-type", *(() if data_tests else ("test",)), "unit_test"],
        settings,
        log_path=log_path,
        env=plan.env,
    )
    with connect(settings.warehouse_path) as con:
        record_build(con, f"run-{started.timestamp()}", plan, started, result)
    return plan, log_path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Builds:
    targeted: Settings
    full_refresh: Settings
    plan: BuildPlan
    compiled_fact_sql: str
    first_output: str
    output: str


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    loaded = datetime(2026, 11, 30, 6, tzinfo=UTC)
    with pytest.MonkeyPatch.context() as monkeypatch:
        # dbt's own parse, without the session's saved one (tests/conftest.py): the first
        # build says that it had nothing to reuse, the message the last test looks for.
        monkeypatch.delenv(PARSE_SEED_VARIABLE, raising=False)
        settings = settings_for_data_dir(monkeypatch, tmp_path_factory.mktemp("targeted"))
        with connect(settings.warehouse_path) as con, transaction(con):
            con.executemany(
                "insert into raw.roster_executives values (?, ?, ?, ?, ?, ?, false, null, "
                "'roster.csv', ?)",
                [(*executive, loaded) for executive in EXECUTIVES],
            )
            con.executemany(
                "insert into raw.roster_accounts values (?, ?, ?, ?)",
                [(*account, loaded) for account in ACCOUNTS],
            )
            # Three years of history without March 2025 (the gap fill carries 7 days).
            _import(
                con,
                loaded,
                [d for d in _days(FIRST_DAY, LAST_DAY) if not MONTH[0] <= d <= MONTH[1]],
            )
        _, first_output = _build(settings, expect_full=True)
        # The missing month arrives in a second file.
        with connect(settings.warehouse_path) as con, transaction(con):
            _import(con, datetime.now(UTC), _days(*MONTH))
        plan, output = _build(settings, expect_full=False, data_tests=True)
        compiled = (
            settings.dbt_target_dir
            / "compiled/social_leadership/models/marts/fct_executive_reach_daily.sql"
        ).read_text(encoding="utf-8")
        full = settings_for_data_dir(monkeypatch, tmp_path_factory.mktemp("full"))
        full.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings.warehouse_path, full.warehouse_path)
        run_dbt(
            [*BUILD_WITHOUT_TESTS, "--full-refresh"],
            full,
            log_path=full.logs_dir / "full.log",
        )
        yield Builds(settings, full, plan, compiled, first_output, output)


def _read(warehouse: Path, table: str, key: list[str]) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        frame = con.sql(f"select * from {table}").df()
    return frame.sort_values(key).reset_index(drop=True)


def test_the_imported_month_and_the_days_derived_from_it_are_rebuilt_not_all(
    builds: Builds,
) -> None:
    assert builds.plan.rebuild_windows == (MONTH,)
    # The month, then 7 days of gap fill and 28 days of follower changes derived from it.
    derived_until = MONTH[1] + timedelta(days=7 + 28)
    window = re.search(
        r"\(reach_with_changes\.metric_date >= date '([\d-]+)' "
        r"and reach_with_changes\.metric_date <= date '([\d-]+)'\)",
        builds.compiled_fact_sql,
    )
    assert window is not None, "the second build did not rebuild a window with an end"
    assert (date.fromisoformat(window.group(1)), date.fromisoformat(window.group(2))) == (
        MONTH[0],
        derived_until,
    )
    with duckdb.connect(str(builds.targeted.warehouse_path), read_only=True) as con:
        recorded = con.execute(
            "select full_refresh, rebuild_from, rebuild_windows from audit.dbt_builds "
            "order by started_at"
        ).fetchall()
        windows = con.execute(
            "select rebuild_from, rebuild_to from audit.incremental_windows "
            "where model_name = 'fct_executive_reach_daily' order by recorded_at desc, "
            "rebuild_from limit 2"
        ).fetchall()
    assert recorded == [(True, None, None), (False, MONTH[0], f"{MONTH[0]}..{MONTH[1]}")]
    # The month's window, and the late-data lookback before the last day (7 + 3 days).
    assert windows == [(MONTH[0], derived_until), (LAST_DAY - timedelta(days=10), None)]


def test_the_windows_reach_dbt_without_making_it_parse_the_project_again(
    builds: Builds,
) -> None:
    # Passed with --vars they would: dbt's partial parse is void whenever its vars change,
    # and a daily build's windows change every day (2.7 s of each small build, measured).
    assert "Unable to do partial parsing" not in builds.output
    # dbt says so in this output: the first build, in a new folder, had nothing to reuse.
    assert "Unable to do partial parsing because saved manifest not found" in (builds.first_output)


def test_windows_that_are_not_json_stop_the_build_naming_the_variable(
    builds: Builds, tmp_path: Path
) -> None:
    # In a target folder of its own (the module's is read by the other tests), with the
    # saved parse of the module's builds, so dbt does not parse the project again.
    settings = dataclasses.replace(builds.targeted, dbt_target_dir=tmp_path / "target")
    settings.dbt_target_dir.mkdir()
    saved_parse = builds.targeted.dbt_target_dir / "partial_parse.msgpack"
    shutil.copyfile(saved_parse, settings.dbt_target_dir / saved_parse.name)
    with pytest.raises(DbtError) as raised:
        run_dbt(
            ["compile", "--select", "int_account_metrics_deduplicated"],
            settings,
            env={REBUILD_WINDOWS_ENV: "2025-03-01..2025-03-31"},
        )
    assert "SLW_DBT_REBUILD_WINDOWS is not JSON: 2025-03-01..2025-03-31" in str(raised.value)


def test_the_key_test_of_the_fact_reads_the_rebuilt_days_only(builds: Builds) -> None:
    compiled = builds.targeted.dbt_target_dir / "compiled/social_leadership/models/marts"
    [key_test] = [
        text
        for path in compiled.glob("_marts__models.yml/*.sql")
        if "duplicate_rows" in (text := path.read_text(encoding="utf-8"))
        and '"fct_executive_reach_daily"' in text
    ]
    derived_until = MONTH[1] + timedelta(days=7 + 28)
    assert (
        f"(metric_date >= date '{MONTH[0]}' and metric_date <= date '{derived_until}') "
        f"or (metric_date >= date '{LAST_DAY - timedelta(days=10)}')"
    ) in key_test


@pytest.mark.parametrize("table", sorted(TABLES))
def test_targeted_rebuild_equals_a_full_refresh(builds: Builds, table: str) -> None:
    targeted = _read(builds.targeted.warehouse_path, table, TABLES[table])
    full = _read(builds.full_refresh.warehouse_path, table, TABLES[table])
    assert len(targeted) > 0
    pd.testing.assert_frame_equal(targeted, full)


def test_the_month_is_observed_not_carried(builds: Builds) -> None:
    with duckdb.connect(str(builds.targeted.warehouse_path), read_only=True) as con:
        (carried,) = con.execute(
            "select count(*) from marts.fct_executive_reach_daily "
            "where metric_date between ? and ? and not is_observed",
            list(MONTH),
        ).fetchone()
    assert carried == 0
