"""BI readers of the published marts, through the clients BI tools use (docs/bi.md).

* SQLAlchemy with the dialect pinned in the ``bi`` extra reflects the single-file copy's
  columns, comments, primary keys and foreign keys (what Superset and Metabase read).
* A plain duckdb connection and a SQLAlchemy pool held open across publishes of the DuckLake
  serving catalog see each publication on their next transaction, one publication inside a
  transaction, and never block the publish (the publisher is another process).
* DuckDB 1.1 (its own venv, made by ``make test``) opens the single-file copy and reads
  every mart.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from slw_testing import PUBLISH_SCRIPT, package_env, probe_single_file_keys

from social_leadership import bi
from social_leadership.serving import publish
from social_leadership.serving_contracts import read_contracts
from social_leadership.settings import Settings
from social_leadership.warehouse import MARTS_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
# Made by `make test` (Makefile target old-duckdb), never downloaded by a test.
OLD_DUCKDB_PYTHON = REPO_ROOT / ".venv-duckdb-1.1" / "bin" / "python"
# A publish that does not finish in this time is taken as blocked by a reader.
PUBLISH_TIMEOUT_SECONDS = 60


# --- reflection of the single-file copy -------------------------------------------------


def _catalog_truth(path: Path) -> dict[str, dict[str, object]]:
    """What DuckDB itself says about each marts table: columns with comments and
    nullability, the primary key, the foreign keys (columns -> table)."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {
            name: {"comment": comment, "columns": {}, "primary_key": [], "foreign_keys": set()}
            for name, comment in con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = ?",
                [MARTS_SCHEMA],
            ).fetchall()
        }
        for table, column, comment, nullable in con.execute(
            "select table_name, column_name, comment, is_nullable from duckdb_columns() "
            "where schema_name = ? order by table_name, column_index",
            [MARTS_SCHEMA],
        ).fetchall():
            tables[table]["columns"][column] = (comment, nullable)
        for table, kind, columns, referenced in con.execute(
            "select table_name, constraint_type, constraint_column_names, referenced_table "
            "from duckdb_constraints() where schema_name = ? "
            "and constraint_type in ('PRIMARY KEY', 'FOREIGN KEY')",
            [MARTS_SCHEMA],
        ).fetchall():
            if kind == "PRIMARY KEY":
                tables[table]["primary_key"] = list(columns)
            else:
                tables[table]["foreign_keys"].add((tuple(columns), referenced))
    return tables


def _reflected(path: Path) -> dict[str, dict[str, object]]:
    """The same, as a BI tool sees it: reflected through SQLAlchemy from a read-only file."""
    engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True})
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine, schema=MARTS_SCHEMA)
        return {
            table.name: {
                "comment": table.comment,
                "columns": {c.name: (c.comment, c.nullable) for c in table.columns},
                "primary_key": [c.name for c in table.primary_key.columns],
                "foreign_keys": {
                    (
                        tuple(element.parent.name for element in key.elements),
                        key.elements[0].column.table.name,
                    )
                    for key in table.foreign_key_constraints
                },
            }
            for table in metadata.tables.values()
        }
    finally:
        engine.dispose()


def _star_file(path: Path) -> Path:
    """A small DuckDB file declared as the serving copy is: comments, NOT NULL, a composite
    primary key, foreign keys, storage version 1.1."""
    with duckdb.connect() as con:
        con.execute(f"attach '{path}' as star (storage_version 'v1.1.0')")
        con.execute("use star")
        con.execute(f"create schema {MARTS_SCHEMA}")
        con.execute(
            "create table marts.dim_country "
            "(country_code varchar primary key, country_name varchar not null)"
        )
        con.execute("create table marts.dim_platform (platform varchar primary key, label varchar)")
        con.execute(
            "create table marts.fct_reach_daily ("
            " country_code varchar not null references marts.dim_country (country_code),"
            " platform varchar not null references marts.dim_platform (platform),"
            " reach_date date not null, total_followers bigint, active_pct double,"
            " primary key (country_code, platform, reach_date))"
        )
        for table in ("dim_country", "dim_platform", "fct_reach_daily"):
            con.execute(f"comment on table marts.{table} is 'grain of {table}'")
            for (column,) in con.execute(
                "select column_name from duckdb_columns() where table_name = ?", [table]
            ).fetchall():
                con.execute(f"comment on column marts.{table}.{column} is 'about {column}'")
        con.execute("insert into marts.dim_country values ('DE', 'Germany')")
        con.execute("insert into marts.dim_platform values ('x', 'X')")
        con.execute("insert into marts.fct_reach_daily values ('DE', 'x', '2025-01-01', 5, 50)")
    return path


def test_sqlalchemy_reflects_columns_comments_and_keys_of_a_duckdb_file(tmp_path: Path) -> None:
    path = _star_file(tmp_path / "star.duckdb")

    reflected = _reflected(path)

    assert reflected == _catalog_truth(path)
    fact = reflected["fct_reach_daily"]
    assert fact["primary_key"] == ["country_code", "platform", "reach_date"]
    assert fact["foreign_keys"] == {
        (("country_code",), "dim_country"),
        (("platform",), "dim_platform"),
    }
    assert fact["columns"]["reach_date"] == ("about reach_date", False)
    assert fact["comment"] == "grain of fct_reach_daily"


def test_sqlalchemy_reflects_the_published_copy_with_every_comment_and_key(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    publish(settings, "run-reflect", synthetic=True)

    reflected = _reflected(settings.serving_path)

    assert reflected == _catalog_truth(settings.serving_path)
    marts = {name: table for name, table in reflected.items() if name != "publication"}
    assert marts
    uncommented = [
        f"{name}.{column}"
        for name, table in marts.items()
        for column, (comment, _) in table["columns"].items()
        if not comment
    ]
    assert uncommented == []
    assert [name for name, table in marts.items() if not table["comment"]] == []
    assert [name for name, table in marts.items() if not table["primary_key"]] == []
    # Every foreign key the dbt contract declares reaches the reflection (a BI tool infers
    # the joins from them): the dimensions' and the yearly facts' (the daily facts list
    # theirs in their comments; see _marts__models.yml).
    contracts = read_contracts(settings.dbt_target_dir / "manifest.json")
    for name, contract in contracts.items():
        declared = {(k.columns, k.references) for k in contract.foreign_keys if k.declared}
        assert marts[name]["foreign_keys"] == declared, name
    assert (("country_code",), "dim_country") in marts["fct_country_comparison_yearly"][
        "foreign_keys"
    ]


# --- readers held open across publishes of the DuckLake catalog ------------------------

# A stand-in publisher in its own process, committing to a DuckLake catalog the way the
# serving design does: the whole publication in one transaction, the catalog in WAL mode.
LAKE_WRITER = """
import sqlite3, sys, time
from pathlib import Path
import duckdb
from social_leadership.serving_lake import LAKE_EXTENSIONS, extension_path

catalog, data_dir, number = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
new = not catalog.exists()
started = time.monotonic()
con = duckdb.connect()
for name in LAKE_EXTENSIONS:
    con.execute(f"load '{extension_path(name)}'")
con.execute(f"attach 'ducklake:sqlite:{catalog}' as serving (data_path '{data_dir}')")
if new:
    # Readers must never block the publish: WAL lets SQLite readers and the writer overlap.
    con.execute("detach serving")
    sqlite3.connect(catalog).execute("pragma journal_mode=wal").fetchall()
    con.execute(f"attach 'ducklake:sqlite:{catalog}' as serving (data_path '{data_dir}')")
    con.execute("create schema serving.marts")
    con.execute("create table serving.marts.publication (publication_number integer not null)")
    con.execute(
        "create table serving.marts.fct_rows (publication_number integer not null, n integer)"
    )
con.execute("begin")
con.execute("delete from serving.marts.publication")
con.execute("delete from serving.marts.fct_rows")
con.execute("insert into serving.marts.publication values (?)", [number])
con.execute(
    "insert into serving.marts.fct_rows select ?, range from range(?)", [number, 10 * number]
)
con.execute("commit")
print(time.monotonic() - started)
"""


def _publish_to_lake(settings: Settings, number: int) -> float:
    """Publication ``number`` by the stand-in publisher; its seconds. Fails if it does not
    finish within PUBLISH_TIMEOUT_SECONDS (a reader blocking it)."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LAKE_WRITER,
            str(settings.serving_lake_path),
            str(settings.serving_lake_data_dir),
            str(number),
        ],
        env=package_env(),
        capture_output=True,
        text=True,
        timeout=PUBLISH_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return float(result.stdout.split()[-1])


def _publication_seen(rows_of) -> int:
    """The publication a reader sees, checking that the fact it reads is of the same one
    (``rows_of(sql)`` runs a query on the reader)."""
    ((number,),) = rows_of("select publication_number from marts.publication")
    fact = rows_of("select publication_number, count(*) from marts.fct_rows group by all")
    assert fact == [(number, 10 * number)], f"publication {number} beside fact rows {fact}"
    return number


def _lake_settings(settings: Settings) -> Settings:
    settings.serving_lake_path.parent.mkdir(parents=True, exist_ok=True)
    settings.serving_lake_data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def test_a_duckdb_connection_held_open_sees_each_publication_on_its_next_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import settings_for_data_dir

    settings = _lake_settings(settings_for_data_dir(monkeypatch, tmp_path / "data"))
    _publish_to_lake(settings, 1)
    reader = bi.connect_serving(settings)

    def rows_of(sql: str) -> list[tuple]:
        return reader.execute(sql).fetchall()

    try:
        assert _publication_seen(rows_of) == 1
        reader.execute("begin")
        assert _publication_seen(rows_of) == 1
        _publish_to_lake(settings, 2)  # finishes while the reader's transaction is open
        assert _publication_seen(rows_of) == 1  # one snapshot inside a transaction
        reader.execute("commit")
        assert _publication_seen(rows_of) == 2
        _publish_to_lake(settings, 3)
        assert _publication_seen(rows_of) == 3
    finally:
        reader.close()


def _engine_attaching_on_connect(settings: Settings, _: Path) -> sa.Engine:
    return bi.sqlalchemy_engine(settings, pool_size=2)


def _engine_by_url(settings: Settings, extension_directory: Path) -> sa.Engine:
    # What Superset is given: a URL, the extensions installed once beforehand.
    bi.install_extensions(extension_directory)
    return sa.create_engine(
        bi.lake_sqlalchemy_url(settings, extension_directory), pool_size=2, max_overflow=0
    )


@pytest.mark.parametrize("make_engine", [_engine_attaching_on_connect, _engine_by_url])
def test_a_sqlalchemy_pool_held_open_sees_each_publication_on_its_next_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_engine
) -> None:
    from conftest import settings_for_data_dir

    settings = _lake_settings(settings_for_data_dir(monkeypatch, tmp_path / "data"))
    _publish_to_lake(settings, 1)
    engine = make_engine(settings, tmp_path / "extensions")
    opened: list[object] = []
    sa.event.listen(engine, "connect", lambda dbapi_connection, _: opened.append(dbapi_connection))

    def reader(connection: sa.Connection):
        return lambda sql: [tuple(row) for row in connection.execute(sa.text(sql))]

    try:
        first, second = engine.connect(), engine.connect()
        transaction = first.begin()
        assert _publication_seen(reader(first)) == 1
        with second.begin():
            assert _publication_seen(reader(second)) == 1
        _publish_to_lake(settings, 2)  # finishes while first's transaction is open
        assert _publication_seen(reader(first)) == 1  # one snapshot inside a transaction
        transaction.commit()
        for connection in (first, second):
            with connection.begin():
                assert _publication_seen(reader(connection)) == 2
        first.close()
        second.close()
        assert engine.pool.checkedin() == 2

        _publish_to_lake(settings, 3)
        again = [engine.connect(), engine.connect()]
        for connection in again:
            with connection.begin():
                assert _publication_seen(reader(connection)) == 3
            connection.close()
        assert len(opened) == 2, "the pool reconnected instead of keeping its connections"
    finally:
        engine.dispose()


def _publish_elsewhere(settings: Settings, run_id: str) -> None:
    """serving.publish in its own process, as Airflow runs it beside the BI tools."""
    result = subprocess.run(
        [sys.executable, "-c", PUBLISH_SCRIPT, run_id],
        env=package_env(**settings.as_env()),
        capture_output=True,
        text=True,
        timeout=PUBLISH_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _served_state(rows_of) -> tuple[str, int]:
    """The publication rows as text and the reach fact's row count, read by one reader."""
    publication = sorted(map(str, rows_of("select * from marts.publication")))
    ((reach_rows,),) = rows_of("select count(*) from marts.fct_executive_reach_daily")
    return "\n".join(publication), reach_rows


def test_readers_held_open_see_each_serving_publish_on_their_next_transaction(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    _publish_elsewhere(settings, "run-first")
    plain = bi.connect_serving(settings)
    engine = bi.sqlalchemy_engine(settings, pool_size=2)
    pooled = engine.connect()

    def plain_rows(sql: str) -> list[tuple]:
        return plain.execute(sql).fetchall()

    def pooled_rows(sql: str) -> list[tuple]:
        return [tuple(row) for row in pooled.execute(sa.text(sql))]

    try:
        plain.execute("begin")
        transaction = pooled.begin()
        before = _served_state(plain_rows)
        assert "run-first" in before[0]
        assert _served_state(pooled_rows) == before
        _publish_elsewhere(settings, "run-second")  # while both readers hold a transaction
        assert _served_state(plain_rows) == before
        assert _served_state(pooled_rows) == before
        plain.execute("commit")
        transaction.commit()
        after = _served_state(plain_rows)
        assert "run-second" in after[0]
        with pooled.begin():
            assert _served_state(pooled_rows) == after
    finally:
        pooled.close()
        engine.dispose()
        plain.close()


# --- an old client on the single-file copy ---------------------------------------------

OLD_CLIENT_READS_EVERY_MART = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tables = [name for (name,) in con.execute(
    "select table_name from duckdb_tables() where schema_name = 'marts' order by 1").fetchall()]
counts = {
    name: con.execute(f'select count(*) from marts."{name}"').fetchone()[0] for name in tables
}
for name in tables:
    con.execute(f'select * from marts."{name}"').fetchall()
print(json.dumps({"version": duckdb.__version__, "counts": counts}))
"""


def test_duckdb_1_1_opens_the_published_copy_and_reads_every_mart(
    copied_built_warehouse: Settings,
) -> None:
    if not OLD_DUCKDB_PYTHON.is_file():
        pytest.fail(f"{OLD_DUCKDB_PYTHON} is missing: `make old-duckdb` (part of make test)")
    settings = copied_built_warehouse
    publish(settings, "run-old-client", synthetic=True)
    # The next day's publish updates the file in place (rows merged on their keys): the old
    # client must read that file too, not only one built whole.
    with duckdb.connect(str(settings.warehouse_path)) as con:
        (last,) = con.execute(
            "select max(metric_date) from marts.fct_executive_reach_daily"
        ).fetchone()
        con.execute(
            "update marts.fct_executive_reach_daily set followers = followers + 1 "
            "where metric_date = ?",
            [last],
        )
        con.execute(
            "insert into audit.incremental_windows (invocation_id, model_name, rebuild_from, "
            "recorded_at) values ('daily-build', 'fct_executive_reach_daily', ?, now())",
            [last],
        )
    assert not publish(settings, "run-old-client-2", synthetic=True).serving_file_rebuilt
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        expected = {
            name: con.execute(f'select count(*) from marts."{name}"').fetchone()[0]
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        }

    result = subprocess.run(
        [str(OLD_DUCKDB_PYTHON), "-c", OLD_CLIENT_READS_EVERY_MART, str(settings.serving_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "")},
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["version"].startswith("1.1.")
    assert expected
    assert seen["counts"] == expected


def test_duckdb_1_1_still_refuses_repeated_keys_after_a_rerun_and_a_daily_publish(
    copied_built_warehouse: Settings, tmp_path: Path
) -> None:
    """A rerun with nothing rebuilt, then a daily publish, each updating a copy of the
    current single file in place: DuckDB 1.1 still finds every key in the file's indexes.
    A file DuckDB 1.5.5 had written without naming its storage version let DuckDB 1.1.3
    insert a repeated key without an error (README, Serving)."""
    if not OLD_DUCKDB_PYTHON.is_file():
        pytest.fail(f"{OLD_DUCKDB_PYTHON} is missing: `make old-duckdb` (part of make test)")
    settings = dataclasses.replace(copied_built_warehouse, serving_file_spare=False)
    publish(settings, "run-first", synthetic=True)
    assert not publish(settings, "run-rerun", synthetic=True).serving_file_rebuilt
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "update marts.fct_executive_reach_daily set followers = followers + 1 "
            "where metric_date = (select max(metric_date) from marts.fct_executive_reach_daily)"
        )
    assert not publish(settings, "run-daily", synthetic=True).serving_file_rebuilt
    scratch = tmp_path / "scratch.duckdb"
    shutil.copyfile(settings.serving_path, scratch)

    version, outcomes = probe_single_file_keys(
        str(OLD_DUCKDB_PYTHON),
        scratch,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "")},
    )

    assert version.startswith("1.1.")
    assert "fct_executive_reach_daily" in outcomes
    assert len(outcomes) > 3
    assert set(outcomes.values()) == {"refused"}, outcomes


# --- slw bi ----------------------------------------------------------------------------


def test_slw_bi_prints_the_paths_and_checks_what_bi_tools_reflect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import settings_for_data_dir

    from social_leadership.cli import main

    settings = _lake_settings(settings_for_data_dir(monkeypatch, tmp_path / "data"))
    _star_file(settings.serving_path)
    _publish_to_lake(settings, 2)

    assert main(["bi"]) == 0
    guide = capsys.readouterr().out
    assert f"attach 'ducklake:sqlite:{settings.serving_lake_path}' as serving (read_only)" in guide
    assert str(settings.serving_path) in guide
    # The Parquet set through its pointer, resolved once: a glob through `current` can mix
    # two publications of a multi-file table.
    assert str(settings.serving_parquet_dir / "CURRENT") in guide
    assert "current/<table>" not in guide

    assert main(["bi", "--check", "--single-file"]) == 0
    assert (
        "marts.fct_reach_daily: 5 columns (5 commented), primary key (country_code, platform, "
        "reach_date), references dim_country, dim_platform"
    ) in capsys.readouterr().out.splitlines()

    assert main(["bi", "--sql", "select publication_number from marts.publication"]) == 0
    assert capsys.readouterr().out.splitlines() == ["publication_number", "2"]
    # One read-only query: ATTACH or COPY would reach files beside the published data.
    elsewhere = tmp_path / "elsewhere.duckdb"
    written = tmp_path / "written.csv"
    explains_another = "--sql explains a SELECT only; this explains another statement"
    for sql, said in (
        (f"attach '{elsewhere}' as other", "--sql runs a read-only query; ATTACH is none"),
        ("select 1; select 2", "--sql runs one query; this gives 2 statements"),
        # Empty (a script's variable unset): it printed the connection guide, exit 0.
        ("", "--sql runs one query; this gives 0 statements"),
        # DuckDB makes a PIVOT without its values a CREATE TYPE and a SELECT: said so.
        (
            "pivot marts.publication on publication_number using count(*)",
            "--sql runs one query; a PIVOT without its values first creates a type of them: "
            "name them, PIVOT ... ON b IN ('x', 'y') USING ...",
        ),
        # EXPLAIN ANALYZE runs what it explains.
        (f"explain analyze copy (select 1) to '{written}'", explains_another),
        ("EXPLAIN ANALYZE create table t as select 1", explains_another),
    ):
        assert main(["bi", "--sql", sql]) == 2
        assert capsys.readouterr().err.splitlines()[0] == f"error: {said}"
    assert not elsewhere.exists()
    assert not written.exists()
    for sql in (
        "explain select 1",
        "EXPLAIN ANALYZE select 1",
        "explain (format json) select 1",
        "pivot marts.publication on publication_number in (2) using count(*)",
    ):
        assert main(["bi", "--sql", sql]) == 0, sql
        capsys.readouterr()

    settings.serving_path.unlink()
    assert main(["bi", "--check", "--single-file"]) == 2
    assert f"no DuckDB database at {settings.serving_path}" in capsys.readouterr().err


def _swap_in_a_copy_with_france(tmp_path: Path, settings: Settings) -> None:
    """A new single file (the star's, France added) swapped in as a publish does."""
    replacement = _star_file(tmp_path / "replacement.duckdb")
    with duckdb.connect() as con:
        # Named: a v1.1.0 file written without its storage version can break its keys.
        con.execute(f"attach '{replacement}' as star (storage_version 'v1.1.0')")
        con.execute("insert into star.marts.dim_country values ('FR', 'France')")
    os.replace(replacement, settings.serving_path)


def test_the_single_file_engine_reads_a_swapped_copy_once_its_connections_are_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What docs/bi.md says of the copy: a kept connection stays on the file it opened,
    the engine (no pool) reads the new one as soon as nothing holds the old one."""
    from conftest import settings_for_data_dir

    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    _star_file(settings.serving_path)
    engine = bi.sqlalchemy_engine(settings, lake=False)
    countries = "select string_agg(country_code, ',' order by country_code) from marts.dim_country"
    try:
        kept = engine.connect()
        assert kept.execute(sa.text(countries)).scalar() == "DE"
        _swap_in_a_copy_with_france(tmp_path, settings)

        with engine.connect() as other:
            assert other.execute(sa.text(countries)).scalar() == "DE"  # the old file, still open
        assert kept.execute(sa.text(countries)).scalar() == "DE"
        kept.close()
        with engine.connect() as fresh:
            assert fresh.execute(sa.text(countries)).scalar() == "DE,FR"
    finally:
        engine.dispose()


# A folder whose name SQLAlchemy would read otherwise: %XX decoded, a # ending the path (a
# ? too, but DuckDB itself cannot write a file under one: it puts its WAL file elsewhere).
@pytest.mark.parametrize("folder", ["data", "100%20 q#1 é"])
def test_the_single_file_url_slw_bi_prints_reads_each_swapped_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], folder
) -> None:
    """The URL a Superset user copies from ``slw bi``: each query, its connection closed,
    reads the copy in place now (a kept pool served the first copy for ever)."""
    from conftest import settings_for_data_dir

    from social_leadership.cli import main

    settings = settings_for_data_dir(monkeypatch, tmp_path / folder)
    _star_file(settings.serving_path)
    assert main(["bi"]) == 0
    guide = capsys.readouterr().out.splitlines()
    single = guide.index(next(line for line in guide if line.startswith("Single-file copy")))
    url = next(line for line in guide[single:] if "SQLAlchemy" in line).split()[-1]
    engine = sa.create_engine(url)
    countries = "select string_agg(country_code, ',' order by country_code) from marts.dim_country"
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text(countries)).scalar() == "DE"
        _swap_in_a_copy_with_france(tmp_path, settings)

        with engine.connect() as connection:
            assert connection.execute(sa.text(countries)).scalar() == "DE,FR"
    finally:
        engine.dispose()


@pytest.mark.parametrize("engine_first", [False, True], ids=["connection-first", "engine-first"])
def test_a_duckdb_connection_and_the_engine_read_one_form_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine_first: bool
) -> None:
    """A notebook opens the copy both ways: ``connect_serving`` (or the
    ``duckdb.connect(path, read_only=True)`` docs/bi.md shows) and the engine for pandas.
    DuckDB refuses a second connection to an open file with another configuration, so the
    engine must open the file as they do; the lake forms are each in-memory databases."""
    from conftest import settings_for_data_dir

    settings = _lake_settings(settings_for_data_dir(monkeypatch, tmp_path / "data"))
    _star_file(settings.serving_path)
    _publish_to_lake(settings, 1)
    countries = "select count(*) from marts.dim_country"
    for lake, query in ((False, countries), (True, "select count(*) from marts.publication")):
        engine = bi.sqlalchemy_engine(settings, lake=lake)
        try:
            if engine_first:
                held = engine.connect()
                assert held.execute(sa.text(query)).scalar() == 1
            with bi.connect_serving(settings, lake=lake) as con:
                assert con.sql(query).fetchone() == (1,)
                if not lake:
                    with duckdb.connect(str(settings.serving_path), read_only=True) as plain:
                        assert plain.sql(query).fetchone() == (1,)
                with engine.connect() as connection:
                    assert connection.execute(sa.text(query)).scalar() == 1
            if engine_first:
                held.close()
        finally:
            engine.dispose()


def test_the_bi_guide_states_the_duckdb_the_catalog_needs_and_the_pin_meets_it() -> None:
    """An older DuckDB cannot read the catalog, whatever extension files it gets (1.4.4's
    ducklake refuses it): the guide says which version it needs, and sends older clients
    to the single file, which DuckDB 1.1 opens."""
    import re

    guide = (REPO_ROOT / "docs" / "bi.md").read_text()
    (needed,) = set(re.findall(r"The catalog needs DuckDB (\d+\.\d+) or later", guide))
    pinned = re.search(
        r"^duckdb==(\d+)\.(\d+)\.", (REPO_ROOT / "requirements.txt").read_text(), re.M
    )
    assert tuple(map(int, needed.split("."))) <= (int(pinned[1]), int(pinned[2]))
    assert tuple(map(int, needed.split("."))) > (1, 4)
    assert "Older clients read the single-file copy" in guide


def test_the_bi_guide_names_only_real_settings_options_and_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/bi.md stays true to the code: its SLW_* names are settings, its `slw bi`
    options exist, its DuckLake URL is the one the tested engine uses."""
    import re

    from conftest import settings_for_data_dir

    from social_leadership.cli import main
    from social_leadership.settings import ENV_PREFIX, SETTING_DOCS

    guide = (REPO_ROOT / "docs" / "bi.md").read_text()
    named = set(re.findall(r"\bSLW_[A-Z_]+\b", guide))
    assert named
    assert named <= {ENV_PREFIX + name for name in SETTING_DOCS}
    with pytest.raises(SystemExit):
        main(["bi", "--help"])
    options = set(re.findall(r"--[a-z-]+", capsys.readouterr().out))
    assert set(re.findall(r"slw bi (--[a-z-]+)", guide)) <= options
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    documented = bi.lake_sqlalchemy_url(settings).replace(
        str(settings.serving_lake_path), "/abs/path/data/serving/lake/serving.sqlite"
    )
    assert documented in guide
    assert "docs/bi.md" in (REPO_ROOT / "README.md").read_text()
