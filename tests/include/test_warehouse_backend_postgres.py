"""The DuckLake working warehouse on a real PostgreSQL catalog (a ``scale`` test).

Outside ``make test`` (CI's time limit): runs with ``SLW_TEST_SCALE=1`` on a machine with
PostgreSQL's server programs (``initdb``, ``pg_ctl``), started here on loopback in a
temporary folder (as the ``postgres`` user when run as root, as initdb refuses root), and
stopped afterwards (``scale_servers``: installed with apt-get when run as root; otherwise,
without them, it is skipped, saying so). ``make test-scale`` runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import BuiltWarehouse, load_synthetic_raw, settings_for_data_dir
from scale_servers import Postgres, marts, postgres_server

from social_leadership.dbt_runner import run_dbt
from social_leadership.orchestration import DEFAULT_POOL, platform_load_pool
from social_leadership.quality import check_marts
from social_leadership.serving import publish
from social_leadership.settings import REPO_ROOT, Settings
from social_leadership.warehouse import connect

pytestmark = [
    pytest.mark.scale,
    pytest.mark.skipif(
        os.environ.get("SLW_TEST_SCALE") != "1",
        reason="starts a PostgreSQL server: set SLW_TEST_SCALE=1 to run it",
    ),
]

PASSWORD = "lake-test-password"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with postgres_server((), PASSWORD) as server:
        yield server


@pytest.fixture
def postgres_catalog(postgres: Postgres, request: pytest.FixtureRequest) -> str:
    """A new database of the role ``slw`` (password authentication) on the module's
    PostgreSQL server; SLW_DUCKLAKE_CATALOG for it, no password in it. One per test: a
    DuckLake catalog keeps the data path it was made with."""
    database = f"slw_lake_{request.node.name.removeprefix('test_')[:40]}"
    postgres.create_database(database)
    return postgres.catalog(database)


def _lake_settings(monkeypatch: pytest.MonkeyPatch, data_dir: Path, catalog: str) -> Settings:
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", catalog)
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", str(data_dir / "shared" / "lake"))
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    return settings_for_data_dir(monkeypatch, data_dir)


@pytest.mark.dbt
def test_the_marts_are_equal_on_a_postgres_catalog(
    synthetic_built_warehouse: BuiltWarehouse,
    postgres_catalog: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    settings = _lake_settings(monkeypatch, tmp_path / "data", postgres_catalog)
    load_synthetic_raw(settings.warehouse_path)

    build = run_dbt(["build"], settings, log_path=settings.logs_dir / "dbt_build.log")

    assert build.returncode == 0, build.output_tail
    with connect(synthetic_built_warehouse.settings.warehouse_path, read_only=True) as con:
        expected = marts(con)
    with connect(settings.warehouse_path, read_only=True) as con:
        assert marts(con) == expected
    assert check_marts(settings, "run-pg").failed == []
    assert publish(settings, "run-pg", synthetic=True).tables_published == len(expected)
    assert not settings.warehouse_path.exists()
    # No password in anything the pipeline wrote.
    for path in settings.data_dir.rglob("*"):
        if path.is_file() and path.suffix in {".log", ".json", ".txt", ""}:
            assert PASSWORD not in path.read_text(errors="replace"), path


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, date, datetime
    from social_leadership.settings import load_settings
    from social_leadership.warehouse import connect, transaction
    from social_leadership.warehouse_backend import retry_conflicts

    platform, settings = sys.argv[1], load_settings()

    def replace_day(round_number):
        with connect(settings.warehouse_path, settings=settings) as con, transaction(con):
            con.execute(
                "delete from raw.platform_metrics where platform = ? and snapshot_date = ?",
                [platform, date(2026, 1, 1)],
            )
            now = datetime.now(UTC)
            con.executemany(
                "insert into raw.platform_metrics values "
                "(?, ?, ?, null, 'ok', ?, 1, 1, ?, 'api', null, ?, false)",
                [(platform, date(2026, 1, 1), f"h{k}", round_number, now, now) for k in range(20)],
            )

    for round_number in range(4):
        retry_conflicts(lambda: replace_day(round_number))
    """
)


def test_platform_loads_write_at_once_on_a_postgres_catalog(
    postgres_catalog: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Four processes replacing their platform's day at once, four times each: every
    commit lands (the conflicts DuckLake refuses are run again), nothing is lost or doubled."""
    settings = _lake_settings(monkeypatch, tmp_path / "data", postgres_catalog)
    assert platform_load_pool() == DEFAULT_POOL
    with connect(settings.warehouse_path):
        pass
    platforms = ["x", "bluesky", "mastodon", "youtube"]
    env = {
        **os.environ,
        **settings.as_env(),
        "PGPASSWORD": PASSWORD,
        "PYTHONPATH": str(REPO_ROOT / "include"),
    }
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, platform], env=env)
        for platform in platforms
    ]
    assert [writer.wait(timeout=600) for writer in writers] == [0, 0, 0, 0]
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            "select platform, count(*), min(followers), max(followers) "
            "from raw.platform_metrics group by all order by all"
        ).fetchall()
    assert rows == [(platform, 20, 3, 3) for platform in sorted(platforms)]
