"""When the warehouse build must be a full refresh instead of incremental."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from social_leadership.dbt_runner import DbtResult, plan_build, record_build
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


def test_after_a_build_the_next_is_incremental(con):
    record_build(con, "r1", plan_build(con), T0, _result())
    plan = plan_build(con)
    assert not plan.full_refresh
    assert plan.args == ["build"]


def test_history_imported_after_the_last_build_forces_a_full_refresh(con):
    _import_at(con, T0 - timedelta(days=1))
    record_build(con, "r1", plan_build(con), T0, _result())
    assert not plan_build(con).full_refresh
    _import_at(con, T0 + timedelta(hours=1))
    plan = plan_build(con)
    assert plan.full_refresh
    assert "history imported" in plan.reason
