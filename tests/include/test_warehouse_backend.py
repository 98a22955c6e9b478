"""The working warehouse on DuckLake (SLW_WAREHOUSE_BACKEND=ducklake) against the DuckDB file.

The catalogs here are a SQLite and a DuckDB file (``make test`` needs only Python); a
PostgreSQL catalog takes the same code with the postgres_scanner extension (README
"Warehouse backend"). The marts test builds the shared synthetic dataset on a DuckLake
with real dbt, runs the real GX gate and publish on it, and compares every mart with the
session's build on the DuckDB file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from conftest import BUILD_WITHOUT_TESTS, BuiltWarehouse, load_synthetic_raw, settings_for_data_dir
from slw_testing import PARSE_SEED_VARIABLE
from test_follower_imports import GOOD_AND_BAD, ROSTER, TODAY, write_csv

from social_leadership.dbt_runner import dbt_env, dbt_invocation, run_dbt
from social_leadership.follower_imports import import_history
from social_leadership.freshness import PlatformDataAsOf, record_platform_data_as_of
from social_leadership.orchestration import DEFAULT_POOL, WAREHOUSE_POOL, platform_load_pool
from social_leadership.quality import check_marts
from social_leadership.serving import publish
from social_leadership.settings import REPO_ROOT, Settings, SettingsError, load_settings
from social_leadership.warehouse import connect, transaction
from social_leadership.warehouse_backend import (
    BACKEND_RECORD,
    CATALOG_RECORD,
    LAKE_ALIAS,
    WarehouseSettingError,
    backend_mismatch,
    catalog_identity,
    configure_object_store,
    holds_no_warehouse,
    is_lake_connection,
    lake_extensions,
    load_lake_extensions,
    open_working,
    retry_conflicts,
)


def lake_settings(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, catalog: str | None = None
) -> Settings:
    """Settings of a DuckLake under ``data_dir`` (the default SQLite catalog, or ``catalog``)."""
    # dbt's own saved parse: the lake's profile is not the shared parse's (tests/conftest.py).
    monkeypatch.delenv(PARSE_SEED_VARIABLE, raising=False)
    for name in ("DUCKLAKE_CATALOG", "DUCKLAKE_DATA_PATH"):
        monkeypatch.delenv(f"SLW_{name}", raising=False)
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    if catalog is not None:
        monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", catalog)
    return settings_for_data_dir(monkeypatch, data_dir)


def contract_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, str]]:
    return con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema in ('raw', 'audit') "
        "order by all"
    ).fetchall()


def test_the_backend_setting_is_checked_and_no_catalog_password_is_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "lake")
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", "postgres:dbname=lake user=slw password=hunter2")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "SLW_WAREHOUSE_BACKEND='lake'" in message
    assert "one of duckdb, ducklake" in message
    assert "SLW_DUCKLAKE_CATALOG" in message
    assert "PGPASSWORD" in message
    assert "hunter2" not in message

    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", "/srv/catalog.sqlite")
    with pytest.raises(SettingsError, match="postgres:<libpq connection string>, sqlite:"):
        load_settings()


@pytest.mark.parametrize(
    "catalog",
    [
        "postgres:postgresql://slw:hunter2@db/slw_lake",
        "postgres:postgres://slw:hunter2@db:5432/slw_lake?sslmode=require",
        "postgres:postgresql://db/slw_lake?user=slw&password=hunter2",
        "postgres:dbname=slw_lake password='correct hunter2 staple' host=db",
        "postgres:dbname=slw_lake PASSWORD = hunter2",
    ],
)
def test_a_catalog_holding_a_password_in_any_form_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, catalog: str
) -> None:
    # A URI's user:password@ passed the check, and its password was printed by slw settings
    # and in every error naming the catalog; a quoted one was shown from its first space.
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", catalog)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "a catalog without a password" in message
    assert "hunter2" not in message
    assert "staple" not in message


def test_a_relative_local_catalog_and_data_path_are_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Left relative, the tasks and dbt (run in the data folder) used two different lakes.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    for catalog, data_path, expected in (
        ("sqlite:lake/catalog.sqlite", "lake/files/", (tmp_path / "lake", "/")),
        ("duckdb:~/lake/catalog.duckdb", "~/lake/files", (tmp_path / "home" / "lake", "")),
    ):
        monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", catalog)
        monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", data_path)
        settings = load_settings()
        folder, slash = expected
        kind = catalog.split(":", 1)[0]
        assert settings.ducklake_catalog == f"{kind}:{folder / Path(catalog).name}"
        assert settings.ducklake_data_path == f"{folder / 'files'}{slash}"
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", "postgres:dbname=lake host=db")
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", "s3://bucket/lake/")
    settings = load_settings()
    assert (settings.ducklake_catalog, settings.ducklake_data_path) == (
        "postgres:dbname=lake host=db",
        "s3://bucket/lake/",
    )


def test_a_catalog_uri_without_a_password_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", "postgres:postgresql://slw@db/slw_lake")
    assert load_settings().ducklake_catalog == "postgres:postgresql://slw@db/slw_lake"


def test_the_default_is_the_duckdb_file_and_a_lake_defaults_to_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SLW_WAREHOUSE_BACKEND", raising=False)
    settings = settings_for_data_dir(monkeypatch, tmp_path)
    assert settings.warehouse_backend == "duckdb"
    with connect(settings.warehouse_path) as con:
        assert not is_lake_connection(con)
    assert settings.warehouse_path.is_file()

    lake = lake_settings(monkeypatch, tmp_path / "lake")
    assert lake.ducklake_catalog == f"sqlite:{tmp_path / 'lake' / 'warehouse/lake/catalog.sqlite'}"
    assert lake.ducklake_data_path == f"{tmp_path / 'lake' / 'warehouse/lake/files'}/"


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_the_raw_contract_lives_in_the_lake_with_the_file_s_columns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str
) -> None:
    file_settings = settings_for_data_dir(monkeypatch, tmp_path / "file")
    with connect(file_settings.warehouse_path) as con:
        expected = contract_columns(con)
    catalog = tmp_path / "lake" / f"catalog.{kind}"
    settings = lake_settings(monkeypatch, tmp_path / "lake", f"{kind}:{catalog}")

    with connect(settings.warehouse_path) as con:
        assert is_lake_connection(con)
        assert con.execute("select current_database()").fetchone() == (LAKE_ALIAS,)
        assert contract_columns(con) == expected
    # Nothing went to a DuckDB file: the catalog and the lake's folder hold it.
    assert catalog.is_file()
    assert not settings.warehouse_path.exists()
    with connect(settings.warehouse_path, read_only=True) as con:
        assert contract_columns(con) == expected


def test_history_imports_are_numbered_and_replaced_on_a_lake(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The sequence's stand-in (no sequences in DuckLake): each import a higher number, and
    a re-import still replaces the older import's rows."""
    settings = lake_settings(monkeypatch, tmp_path / "data")
    path = write_csv(tmp_path, GOOD_AND_BAD)
    with connect(settings.warehouse_path) as con:
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)
        import_history(con, path, ROSTER, tmp_path / "q", today=TODAY)
        numbers = con.execute(
            "select import_id from raw.history_imports order by import_id"
        ).fetchall()
        kept = con.execute("select distinct import_id from raw.imported_metrics").fetchall()
    assert numbers == [(1,), (2,)]
    assert kept == [(2,)]


def test_a_lake_switched_on_over_a_data_folder_s_duckdb_file_is_refused_not_started_empty(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Switched on a folder that has run, the backend built a new, empty lake, green, and
    its first publish replaced every reader's marts with it."""
    from airflow.sdk.exceptions import AirflowFailException

    from social_leadership.tasks import task_settings

    monkeypatch.delenv("SLW_WAREHOUSE_BACKEND", raising=False)
    data = tmp_path / "data"
    file_settings = settings_for_data_dir(monkeypatch, data)
    with connect(file_settings.warehouse_path):
        pass
    assert (data / BACKEND_RECORD).read_text(encoding="utf-8") == "duckdb\n"
    settings = lake_settings(monkeypatch, data)
    catalog = Path(settings.ducklake_catalog.partition(":")[2])

    said = (
        f"SLW_WAREHOUSE_BACKEND is ducklake, but data folder {data} holds a duckdb warehouse "
        f"(as {data / BACKEND_RECORD} records): a new, empty one would be built"
    )
    for read_only in (False, True):
        with (
            pytest.raises(WarehouseSettingError, match=re.escape(said)),
            connect(settings.warehouse_path, read_only=read_only),
        ):
            pass
    # A task fails at once, not retried for minutes: each try reads the same folder.
    with pytest.raises(AirflowFailException, match="set SLW_WAREHOUSE_BACKEND=duckdb to go on"):
        task_settings()
    assert not catalog.exists()


def test_a_duckdb_file_switched_back_on_over_a_data_folder_s_lake_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with connect(lake_settings(monkeypatch, data).warehouse_path):
        pass
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "duckdb")
    settings = load_settings()

    said = f"SLW_WAREHOUSE_BACKEND is duckdb, but data folder {data} holds a ducklake warehouse"
    with (
        pytest.raises(WarehouseSettingError, match=re.escape(said)),
        connect(settings.warehouse_path),
    ):
        pass
    assert not settings.warehouse_path.exists()
    # The record decides, whatever else the folder holds: an empty file a tool made there
    # (dbt run by hand creates its database) no longer turns the check off.
    duckdb.connect(str(settings.warehouse_path)).close()
    with (
        pytest.raises(WarehouseSettingError, match=re.escape(said)),
        connect(settings.warehouse_path),
    ):
        pass


def test_a_lake_folder_given_another_catalog_is_refused_not_started_empty(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """SLW_DUCKLAKE_CATALOG changed on a folder that has run (the README's PostgreSQL
    settings over a SQLite lake): a new, empty lake was built, green, and published over
    every reader's marts (probe lake63)."""
    from airflow.sdk.exceptions import AirflowFailException

    from social_leadership.tasks import task_settings

    data = tmp_path / "data"
    first = lake_settings(monkeypatch, data)
    with connect(first.warehouse_path):
        pass
    recorded = catalog_identity(first.ducklake_catalog)
    # The backend's record as versions before read it; the catalog in a file of its own.
    assert (data / BACKEND_RECORD).read_text(encoding="utf-8") == "ducklake\n"
    assert (data / CATALOG_RECORD).read_text(encoding="utf-8") == f"{recorded}\n"
    other = tmp_path / "elsewhere" / "catalog.sqlite"
    settings = lake_settings(monkeypatch, data, f"sqlite:{other}")

    said = (
        f"SLW_DUCKLAKE_CATALOG names the catalog sqlite:{other}, but data folder {data} holds "
        f"the lake of catalog {recorded} (as {data / CATALOG_RECORD} records): a new, empty "
        "one would be built"
    )
    for read_only in (False, True):
        with (
            pytest.raises(WarehouseSettingError, match=re.escape(said)),
            connect(settings.warehouse_path, read_only=read_only),
        ):
            pass
    with pytest.raises(AirflowFailException, match="set SLW_DUCKLAKE_CATALOG back"):
        task_settings()
    assert not other.exists()
    # The same lake's catalog moved on purpose: the record says so, and it is opened.
    first_catalog = Path(first.ducklake_catalog.partition(":")[2])
    other.parent.mkdir()
    first_catalog.rename(other)
    (data / CATALOG_RECORD).write_text(f"sqlite:{other}\n", encoding="utf-8")
    with connect(settings.warehouse_path, read_only=True) as con:
        assert con.execute("select count(*) from raw.platform_metrics").fetchone() == (0,)


def test_a_lake_recorded_before_its_catalog_was_is_told_by_its_default_catalog(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A folder an earlier version made records no catalog: its first write with another
    # catalog file built a new lake, green, and recorded that one (probe upg63).
    data = tmp_path / "data"
    settings = lake_settings(monkeypatch, data)
    with connect(settings.warehouse_path):
        pass
    (data / CATALOG_RECORD).unlink()
    other = replace(settings, ducklake_catalog=f"sqlite:{tmp_path / 'other.sqlite'}")

    refused = backend_mismatch(other)
    assert refused is not None
    assert "(as the lake at its default place says)" in refused.problem
    # Beside a PostgreSQL catalog, whose lake cannot be seen, the default one decides
    # nothing (an upgraded deployment on PostgreSQL was refused for a first try's file).
    assert backend_mismatch(replace(settings, ducklake_catalog="postgres:dbname=x")) is None

    with connect(settings.warehouse_path):
        pass

    identity = catalog_identity(settings.ducklake_catalog)
    assert (data / CATALOG_RECORD).read_text(encoding="utf-8") == f"{identity}\n"
    assert backend_mismatch(replace(settings, ducklake_catalog="postgres:dbname=x")) is not None


def test_a_lake_folder_started_again_as_readme_says_records_its_new_catalog(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Its records and lake deleted (README), the first write with another catalog went
    # green, the catalog's record was kept, and every write after it was refused
    # (review rev63c).
    data = tmp_path / "data"
    first = lake_settings(monkeypatch, data)
    with connect(first.warehouse_path):
        pass
    (data / BACKEND_RECORD).unlink()
    shutil.rmtree(data / "warehouse" / "lake")
    again = lake_settings(monkeypatch, data, f"sqlite:{tmp_path / 'new.sqlite'}")

    for _ in range(2):
        with connect(again.warehouse_path):
            pass

    assert (data / CATALOG_RECORD).read_text(encoding="utf-8") == (
        f"sqlite:{tmp_path / 'new.sqlite'}\n"
    )


def test_what_a_catalog_record_cannot_tell_refuses_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = lake_settings(monkeypatch, data)
    elsewhere = replace(settings, ducklake_catalog=f"sqlite:{tmp_path / 'real.sqlite'}")
    # A folder of an earlier version whose default catalog a failed first try made
    # without tables: its lake is elsewhere.
    data.mkdir(exist_ok=True)
    (data / BACKEND_RECORD).write_text("ducklake\n", encoding="utf-8")
    default = Path(settings.ducklake_catalog.partition(":")[2])
    default.parent.mkdir(parents=True, exist_ok=True)
    default.touch()
    assert backend_mismatch(elsewhere) is None
    # A record written by hand the way the setting is, not as a refusal gives it.
    (data / CATALOG_RECORD).write_text("postgres:dbname=x host=db\n", encoding="utf-8")
    assert backend_mismatch(replace(settings, ducklake_catalog="postgres:dbname=x")) is None
    # A recorded catalog file that is gone (the data folder moved whole) keeps no lake.
    (data / CATALOG_RECORD).write_text(f"sqlite:{tmp_path / 'gone.sqlite'}\n", encoding="utf-8")
    assert backend_mismatch(elsewhere) is None


def test_catalogs_are_told_apart_by_kind_and_file_not_by_postgresql_s_connection_string(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # One PostgreSQL database has many connection strings (quoting, spaces, PG* variables,
    # a service file, localhost or its address): none refuses another. A switch between a
    # file catalog and PostgreSQL, or between two files, is refused.
    data = tmp_path / "data"
    data.mkdir()
    # As a lake on a PostgreSQL catalog records itself.
    (data / BACKEND_RECORD).write_text("ducklake\n", encoding="utf-8")
    (data / CATALOG_RECORD).write_text("postgres\n", encoding="utf-8")
    settings = lake_settings(monkeypatch, data)
    for same in (
        "postgres:dbname=lake host=db port=5432 user=slw",
        "postgres:dbname = 'lake' host=127.0.0.1",
        "postgres:service=slw",
        "postgres:postgresql://slw@db/lake",
    ):
        assert backend_mismatch(replace(settings, ducklake_catalog=same)) is None, same
    file_catalog = f"sqlite:{tmp_path / 'catalog.sqlite'}"
    refused = backend_mismatch(replace(settings, ducklake_catalog=file_catalog))
    assert refused is not None
    assert "holds the lake of catalog postgres" in refused.problem
    assert catalog_identity("sqlite:lake/../lake/catalog.sqlite") == catalog_identity(
        f"sqlite:{Path('lake/catalog.sqlite').resolve()}"
    )


def test_a_sqlite_catalog_without_tables_is_no_lake_whatever_its_file_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A first lake attempt that failed before writing (an S3 bucket refused) leaves a
    catalog without tables: no lake to go on with. Told by the catalog's kind, not by a
    file name ending in .sqlite."""
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "duckdb")
    catalog = tmp_path / "data" / "warehouse" / "lake" / "catalog.db"
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", f"sqlite:{catalog}")
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    catalog.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(catalog)) as db:
        db.execute("create table ducklake_table (table_id bigint)")

    assert backend_mismatch(settings) is None


@pytest.mark.parametrize("record", [True, False], ids=["recorded", "from_before_the_record"])
def test_a_warehouse_or_catalog_outside_the_data_folder_is_not_the_folder_s(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, record: bool
) -> None:
    """Another folder's lake named by SLW_DUCKLAKE_CATALOG is not this folder's warehouse:
    a new folder on the file backend was refused, told to move that lake's catalog."""
    with connect(lake_settings(monkeypatch, tmp_path / "lake").warehouse_path):
        pass
    catalog = load_settings().ducklake_catalog
    if not record:
        (tmp_path / "lake" / BACKEND_RECORD).unlink()
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "duckdb")
    settings = settings_for_data_dir(monkeypatch, tmp_path / "fresh")
    monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", catalog)

    with connect(settings.warehouse_path):
        pass

    assert (tmp_path / "fresh" / BACKEND_RECORD).read_text(encoding="utf-8") == "duckdb\n"


def test_a_folder_from_before_the_record_is_told_by_the_warehouse_it_holds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    monkeypatch.delenv("SLW_WAREHOUSE_BACKEND", raising=False)
    with connect(settings_for_data_dir(monkeypatch, data).warehouse_path):
        pass
    (data / BACKEND_RECORD).unlink()
    settings = lake_settings(monkeypatch, data)

    with (
        pytest.raises(WarehouseSettingError, match=r"holds a duckdb warehouse \(as the warehouse"),
        connect(settings.warehouse_path),
    ):
        pass
    # Beside a PostgreSQL catalog, whose lake cannot be seen, a file left there decides
    # nothing: the upgraded deployment went on being refused, told to use the file.
    assert backend_mismatch(replace(settings, ducklake_catalog="postgres:dbname=lake")) is None


def test_a_data_path_other_than_the_catalog_s_is_said_with_the_setting_and_the_path_it_records(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # It said to set DuckLake's OVERRIDE_DATA_PATH, no setting of slw's, with exit code 1.
    from social_leadership.cli import explain

    settings = lake_settings(monkeypatch, tmp_path / "data")
    with connect(settings.warehouse_path) as con:
        con.execute("create table raw.kept as select 1 as n")  # a row there
    recorded = f"{settings.ducklake_data_path.rstrip('/')}/"
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", str(tmp_path / "moved"))

    with pytest.raises(WarehouseSettingError) as refused, connect(load_settings().warehouse_path):
        pass

    said, code = explain(refused.value)
    assert code == 2
    assert said.splitlines() == [
        f"error: SLW_DUCKLAKE_DATA_PATH is {tmp_path / 'moved'}/, but the lake's catalog "
        f"records its data at {recorded}",
        f"  fix: set SLW_DUCKLAKE_DATA_PATH={recorded} (or unset it, if that is the default), "
        "or put the data back there: the catalog keeps the path it was made with (README, "
        "Warehouse backend)",
    ]


def test_a_lake_a_failed_first_run_left_without_data_says_it_can_start_again_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A first run on a bucket that does not exist left a catalog without data, its path the
    # wrong bucket: after the path was corrected, every task said to set it back or to put
    # the data (there was none) back there (probe lake63).
    settings = lake_settings(monkeypatch, tmp_path / "data")
    with connect(settings.warehouse_path):
        pass
    catalog = Path(settings.ducklake_catalog.partition(":")[2])
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", str(tmp_path / "right"))

    with pytest.raises(WarehouseSettingError) as refused, connect(load_settings().warehouse_path):
        pass

    assert refused.value.fix.endswith(
        f"; its lake holds no data yet (a first run that failed there?): remove {catalog} (and "
        f"its -wal and -shm files) to start again with {tmp_path / 'right'}/"
    )
    for made in (catalog, *(catalog.with_name(f"{catalog.name}-{e}") for e in ("wal", "shm"))):
        made.unlink(missing_ok=True)
    with connect(load_settings().warehouse_path) as con:
        con.execute("create table raw.kept as select 1 as n")
    with connect(load_settings().warehouse_path, read_only=True) as con:
        assert con.execute("select n from raw.kept").fetchall() == [(1,)]


def test_rows_kept_in_the_catalog_after_its_snapshots_expired_are_data_not_an_empty_lake(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # After ducklake_expire_snapshots, no snapshot said the rows were inserted: the hint
    # told to remove the catalog that held them (review rev63b).
    settings = lake_settings(monkeypatch, tmp_path / "data")
    with connect(settings.warehouse_path) as con:
        con.execute("create table raw.kept as select range as n from range(5)")
        con.execute("create table raw.later (n integer)")
        con.execute(
            "call ducklake_expire_snapshots('warehouse', older_than => now() + interval 1 day)"
        )
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", str(tmp_path / "moved"))

    with pytest.raises(WarehouseSettingError) as refused, connect(load_settings().warehouse_path):
        pass

    assert "holds no data yet" not in refused.value.fix


@pytest.mark.parametrize("backend", ["duckdb", "ducklake"])
def test_a_stale_platform_is_alerted_once_a_day_on_both_backends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str
) -> None:
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", backend)
    settings = settings_for_data_dir(monkeypatch, tmp_path)
    stale = PlatformDataAsOf("x", date(2026, 1, 1), None, 9, True)
    checked_at = datetime(2026, 1, 10, 8, tzinfo=UTC)
    with connect(settings.warehouse_path) as con:
        first = record_platform_data_as_of(con, "run-1", [stale], checked_at)
        again = record_platform_data_as_of(con, "run-2", [stale], checked_at)
        next_day = record_platform_data_as_of(con, "run-3", [stale], checked_at.replace(day=11))
    assert [row.platform for row in first] == ["x"]
    assert again == []
    assert [row.platform for row in next_day] == ["x"]


def test_a_write_conflict_on_a_lake_is_run_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two writers replacing their rows of one table at once: the second commit is refused
    (on this SQLite catalog by SQLite's lock; on PostgreSQL by DuckLake's conflict check,
    README "Warehouse backend"); retry_conflicts runs its whole transaction again and both
    end up loaded."""
    settings = lake_settings(monkeypatch, tmp_path / "data")
    with connect(settings.warehouse_path) as con:
        con.execute("insert into raw.survey_files values ('a', 'old', now()), ('b', 'old', now())")
    other = open_working(settings)
    tries = []

    def replace_b() -> None:
        tries.append(1)
        with connect(settings.warehouse_path, settings=settings) as con, transaction(con):
            con.execute("delete from raw.survey_files where file_sha256 = 'b'")
            if len(tries) == 1:
                # Another writer replaces its own rows and commits in between.
                with transaction(other):
                    other.execute("delete from raw.survey_files where file_sha256 = 'a'")
                    other.execute("insert into raw.survey_files values ('a', 'new', now())")
            con.execute("insert into raw.survey_files values ('b', 'new', now())")

    retry_conflicts(replace_b, first_wait=0.01)
    other.close()
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            "select file_sha256, file_name from raw.survey_files order by 1"
        ).fetchall()
    assert len(tries) == 2
    assert rows == [("a", "new"), ("b", "new")]


def test_a_conflict_is_raised_once_the_tries_are_used_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []

    def conflicting() -> None:
        calls.append(1)
        raise duckdb.TransactionException("Failed to commit: Transaction conflict - ...")

    with pytest.raises(duckdb.TransactionException):
        retry_conflicts(conflicting, attempts=3, first_wait=0.001)
    assert len(calls) == 3
    with pytest.raises(duckdb.TransactionException, match="other"):
        retry_conflicts(lambda: (_ for _ in ()).throw(duckdb.TransactionException("other")))


def _parse_platform_metrics_dag() -> object:
    spec = importlib.util.spec_from_file_location(
        "platform_metrics_dag_file", REPO_ROOT / "dags" / "platform_metrics.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.platform_metrics()


@pytest.mark.parametrize(
    ("backend", "catalog", "pool"),
    [
        ("duckdb", None, WAREHOUSE_POOL),
        ("ducklake", None, WAREHOUSE_POOL),
        ("ducklake", "postgres:dbname=slw_lake host=db user=slw", DEFAULT_POOL),
    ],
)
def test_platform_loads_share_the_warehouse_slot_unless_the_lake_takes_writers_at_once(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    backend: str,
    catalog: str | None,
    pool: str,
) -> None:
    """A DuckDB file and a SQLite catalog take one writer at a time; PostgreSQL several."""
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", backend)
    if catalog:
        monkeypatch.setenv("SLW_DUCKLAKE_CATALOG", catalog)
    settings_for_data_dir(monkeypatch, tmp_path)
    assert platform_load_pool() == pool

    dag = _parse_platform_metrics_dag()
    loads = [task for task in dag.tasks if task.task_id.startswith("load_")]
    assert {task.pool for task in loads if task.task_id != "load_roster"} == {pool}
    # The other writers keep the slot: roster, history imports, the summary.
    assert dag.get_task("load_roster").pool == WAREHOUSE_POOL
    assert dag.get_task("import_history").pool == WAREHOUSE_POOL


MARTS = (
    "select table_name from information_schema.tables where table_catalog = current_database() "
    "and table_schema = 'marts' and table_type = 'BASE TABLE' order by 1"
)


def _marts(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    tables = [row[0] for row in con.execute(MARTS).fetchall()]
    return {
        table: con.execute(f"select * from marts.{table} order by all").fetchall()
        for table in tables
    }


@pytest.mark.dbt
def test_the_marts_are_equal_on_a_ducklake_and_its_gate_and_publish_work(
    synthetic_built_warehouse: BuiltWarehouse,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    settings = lake_settings(monkeypatch, tmp_path / "data")
    load_synthetic_raw(settings.warehouse_path)

    # The models, seeds and snapshot; not dbt's 100-odd data tests, which the shared build
    # runs on the file (the suite's time limit; on a lake they pass too, README).
    build = run_dbt(
        BUILD_WITHOUT_TESTS,
        settings,
        log_path=settings.logs_dir / "dbt_build.log",
    )

    assert build.returncode == 0, build.output_tail
    assert build.errored == 0
    assert not settings.warehouse_path.exists()
    # The project's own generic test (an UNPIVOT over per-column counts) runs on a lake too.
    required = run_dbt(["test", "--select", "test_name:not_null_columns"], settings)
    assert required.passed >= 25, required.output_tail
    with connect(synthetic_built_warehouse.settings.warehouse_path, read_only=True) as con:
        expected = _marts(con)
    with connect(settings.warehouse_path, read_only=True) as con:
        got = _marts(con)
    assert sorted(got) == sorted(expected)
    assert len(expected) >= 10
    for table, rows in expected.items():
        assert got[table] == rows, table

    report = check_marts(settings, "run-lake")
    assert report.critical_failures == []
    assert report.failed == []

    publication = publish(settings, "run-lake", synthetic=True)
    assert publication.tables_published == len(expected)
    with duckdb.connect(str(settings.serving_path), read_only=True) as serving:
        published = _marts(serving)
    assert {table: published[table] for table in expected} == expected
    with connect(settings.warehouse_path, read_only=True) as con:
        recorded = con.execute("select run_id from audit.publications").fetchall()
    assert recorded == [("run-lake",)]


def test_an_s3_data_path_loads_httpfs_and_takes_the_sdk_endpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLW_DUCKLAKE_DATA_PATH", "s3://lake-bucket/warehouse/")
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    settings = settings_for_data_dir(monkeypatch, tmp_path)
    assert lake_extensions(settings) == ("ducklake", "sqlite_scanner", "httpfs")
    con = duckdb.connect()
    load_lake_extensions(con, settings)

    configure_object_store(con, settings)

    values = dict(
        con.execute(
            "select name, value from duckdb_settings() "
            "where name in ('s3_endpoint', 's3_use_ssl', 's3_url_style')"
        ).fetchall()
    )
    con.close()
    assert values == {
        "s3_endpoint": "127.0.0.1:9000",
        "s3_use_ssl": "false",
        "s3_url_style": "path",
    }


def test_slw_import_history_tries_a_file_again_when_another_writer_s_commit_refused_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a busy SQLite catalog another writer's commit (a build, a load) can refuse the
    import's: `slw import-history` failed with "TransactionException: ... Failed to commit"
    and no advice. Undone whole, the file is imported again, as the pipeline's writers do;
    past the tries, the error says what happened and what to do."""
    from social_leadership import follower_imports, warehouse_backend
    from social_leadership.cli import explain, main

    settings = lake_settings(monkeypatch, tmp_path / "data")
    header = "executive_id,account_handle,platform,date,followers,following,posts\n"
    path = write_csv(tmp_path, header + "elon-musk,elonmusk,x,2025-01-02,1001,10,20\n")
    refusal = duckdb.TransactionException(
        "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
        "Failed to write to SQLite catalog: database is locked"
    )
    real = follower_imports.import_history
    refused = iter([refusal])

    def refused_once(*args, **kwargs):
        if (error := next(refused, None)) is not None:
            real(*args, **kwargs)  # the work is done, then its commit is refused
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(follower_imports, "import_history", refused_once)
    monkeypatch.setattr(warehouse_backend.time, "sleep", lambda _: None)

    assert main(["import-history", str(path)]) == 0

    assert f"{path}: 1 row loaded" in capsys.readouterr().out
    with connect(settings.warehouse_path) as con:
        assert con.execute("select count(*) from raw.imported_metrics").fetchone() == (1,)
    said, code = explain(refusal)
    assert code == 1
    assert said.startswith("error: another process was writing the warehouse")
    assert "database is locked" in said
    assert "run this command again" in said


def test_slw_import_history_says_when_it_makes_a_new_lake(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Into a data folder without a warehouse the import made one, unsaid.
    from social_leadership.cli import main

    settings = lake_settings(monkeypatch, tmp_path / "data")
    header = "executive_id,account_handle,platform,date,followers,following,posts\n"
    path = write_csv(tmp_path, header + "elon-musk,elonmusk,x,2025-01-02,1001,10,20\n")
    assert holds_no_warehouse(settings)

    assert main(["import-history", str(path)]) == 0
    first = capsys.readouterr().out
    assert main(["import-history", str(path)]) == 0
    second = capsys.readouterr().out

    assert "this import makes a new one" in first
    assert first.startswith("no warehouse at DuckLake ")
    assert not holds_no_warehouse(settings)
    assert "new one" not in second


# --- a write waits for a reader's hold on the file to end --------------------------------

HOLD_READING = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("reading", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@contextlib.contextmanager
def _reading(settings: Settings, seconds: float) -> Iterator[subprocess.Popen[str]]:
    """The warehouse made, then held by a reader in another process for ``seconds``."""
    with connect(settings.warehouse_path):
        pass
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_READING, str(settings.warehouse_path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "reading"
        yield reader
    finally:
        reader.kill()
        reader.wait()


def test_a_write_waits_for_a_reader_such_as_slw_summary_to_let_go(tmp_path, monkeypatch):
    # A task that met `slw summary` reading failed its try ("Could not set lock").
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setattr("social_leadership.warehouse.LOCK_WAIT_SECONDS", 30.0)
    with _reading(settings, 1.5):
        started = time.monotonic()
        with connect(settings.warehouse_path) as con:
            con.execute("create table waited (x int)")
        assert time.monotonic() - started >= 1.0


def test_a_write_held_off_longer_than_the_wait_fails_naming_the_holder(tmp_path, monkeypatch):
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    monkeypatch.setattr("social_leadership.warehouse.LOCK_WAIT_SECONDS", 0.5)
    with _reading(settings, 60) as reader:
        held = pytest.raises(duckdb.IOException, match=f"Could not set lock.*PID {reader.pid}")
        with held, connect(settings.warehouse_path):
            pass


HOLD_UNTIL_TOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("reading", flush=True)
sys.stdin.read()
con.close()
"""


@pytest.mark.dbt
def test_dbt_waits_for_a_reader_such_as_slw_summary_to_let_go(tmp_path, monkeypatch):
    # A dbt build that met `slw summary` reading failed its try ("Could not set lock"): the
    # profile has dbt try again after 1, 3 and 7 s, as the pipeline's connections wait.
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    with connect(settings.warehouse_path):
        pass
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_UNTIL_TOLD, str(settings.warehouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "reading"
    dbt = subprocess.Popen(
        dbt_invocation(["show", "--inline", "select 42 as answer"], settings),
        cwd=settings.data_dir,
        env={**dbt_env(settings), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert dbt.stdout is not None
    seen = []
    try:
        # dbt says its concurrency, then opens the file: it meets the hold, which ends 2 s
        # later (between its tries at 1 and 3 s).
        for line in dbt.stdout:
            seen.append(line)
            if "Concurrency:" in line:
                break
        time.sleep(2.0)
        reader.stdin.close()
        reader.wait(timeout=30)
        seen.extend(dbt.stdout)
        assert dbt.wait(timeout=120) == 0, "".join(seen)
    finally:
        reader.kill()
        dbt.kill()
    assert "Could not set lock" not in "".join(seen)
    assert "42" in "".join(seen)
