"""DuckDB's memory limit, threads and spill folder: settings that reach dbt and every
connection the pipeline opens."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from social_leadership.bi import connect_serving
from social_leadership.dbt_runner import run_dbt
from social_leadership.duckdb_limits import open_duckdb, spill_dir
from social_leadership.settings import ENV_PREFIX, Settings, SettingsError, load_settings
from social_leadership.warehouse import connect

LIMITS = ("memory_limit", "threads", "temp_directory")


@pytest.fixture(autouse=True)
def small_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_DUCKDB_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("SLW_DUCKDB_THREADS", "1")


def limits_of(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    row = con.execute(
        "select " + ", ".join(f"current_setting('{name}')" for name in LIMITS)
    ).fetchone()
    assert row is not None
    return dict(zip(LIMITS, map(str, row), strict=True))


def duckdb_says(memory_limit: str) -> str:
    """How DuckDB itself shows a memory limit (300MB -> 286.1 MiB)."""
    with duckdb.connect(config={"memory_limit": memory_limit}) as con:
        return limits_of(con)["memory_limit"]


def test_defaults_suit_a_4_gib_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SLW_DUCKDB_MEMORY_LIMIT")
    monkeypatch.delenv("SLW_DUCKDB_THREADS")
    settings = load_settings()

    assert (settings.duckdb_memory_limit, settings.duckdb_threads) == ("2GB", 2)
    assert settings.duckdb_temp_dir == tmp_path / "data" / "tmp" / "duckdb"
    settings.ensure_dirs()
    assert settings.duckdb_temp_dir.is_dir()


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("SLW_DUCKDB_MEMORY_LIMIT", "lots", "a memory size (a positive number"),
        ("SLW_DUCKDB_MEMORY_LIMIT", "80%", "a memory size (a positive number"),
        ("SLW_DUCKDB_MEMORY_LIMIT", "2", "a memory size (a positive number"),
        ("SLW_DUCKDB_MEMORY_LIMIT", "0GB", "a memory size (a positive number"),
        ("SLW_DUCKDB_MEMORY_LIMIT", "2GB; drop table x", "a memory size (a positive number"),
        ("SLW_DUCKDB_THREADS", "0", "a whole number of at least 1"),
        ("SLW_DUCKDB_THREADS", "two", "a whole number of at least 1"),
    ],
)
def test_a_bad_limit_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert refused.value.variables == (variable,)
    assert f"{variable}={value!r}" in str(refused.value)
    assert allowed in str(refused.value)


@pytest.mark.parametrize(
    "value", ["512MB", "1.5GB", "2 GiB", "4gb", "2G", "512m", "2 gigabytes", "1 terabyte", "1T"]
)
def test_duckdb_syntax_is_accepted(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SLW_DUCKDB_MEMORY_LIMIT", value)

    with open_duckdb(load_settings()) as con:
        assert limits_of(con)["memory_limit"] == duckdb_says(value)


def test_warehouse_connections_get_the_limits(tmp_path: Path) -> None:
    settings = load_settings()
    path = tmp_path / "warehouse.duckdb"

    with connect(path) as con:
        limits = limits_of(con)
        # A second connection to the open file in the same process: same configuration.
        with connect(path, read_only=False) as again:
            assert limits_of(again) == limits

    assert limits["memory_limit"] == duckdb_says("300MB")
    assert limits["threads"] == "1"
    spill = Path(limits["temp_directory"])
    assert spill.parent == settings.duckdb_temp_dir
    assert spill.name.startswith(f"{socket.gethostname()}-{os.getpid()}-")


def test_in_memory_databases_spill_apart_within_the_limit(tmp_path: Path) -> None:
    settings = load_settings()

    with open_duckdb(settings) as first, open_duckdb(settings) as second:
        folders = {limits_of(first)["temp_directory"], limits_of(second)["temp_directory"]}
        # More than the limit, held at once: it must spill to the folder, not fail.
        first.execute("set preserve_insertion_order = false")
        spilled = first.execute(
            "select count(*), count(distinct s) from ("
            "select md5(cast(i as varchar)) || md5(cast(i + 1 as varchar)) as s "
            "from range(4000000) as t (i) order by s)"
        ).fetchone()

    assert len(folders) == 2
    assert spilled == (4_000_000, 4_000_000)


def test_the_serving_reader_of_the_pipeline_gets_the_limits(
    copied_built_warehouse: Settings,
) -> None:
    from social_leadership.serving import publish

    settings = copied_built_warehouse
    publish(settings, "limits-run", synthetic=True)

    with connect_serving(settings) as con:
        assert limits_of(con)["memory_limit"] == duckdb_says("300MB")
        # A notebook's reader too: its extensions were loaded without DuckDB's hash, and
        # DuckDB's own check is back on for any other (serving_lake.open_with_extensions).
        assert con.execute(
            "select current_setting('allow_unsigned_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchone() == (False, True)


def test_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    settings = load_settings()
    root = settings.duckdb_temp_dir
    root.mkdir(parents=True)
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    host = socket.gethostname()
    dead = root / f"{host}-{exited.stdout.strip()}-memory1"
    alive = root / f"{host}-{os.getpid()}-memory9"
    other_host = root / f"not-{host}-{exited.stdout.strip()}-memory1"
    dbt = root / "dbt"
    for folder in (dead, alive, other_host, dbt):
        folder.mkdir()
        (folder / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"x")

    spill_dir(settings)

    assert {p.name for p in root.iterdir()} == {alive.name, other_host.name, dbt.name}


@pytest.mark.dbt
def test_dbt_runs_within_the_limits(tmp_path: Path) -> None:
    settings = load_settings()
    settings.ensure_dirs()
    query = (
        "select current_setting('memory_limit') as memory_limit, "
        "current_setting('threads') as threads, "
        "current_setting('temp_directory') as temp_directory"
    )

    result = run_dbt(
        ["show", "--inline", query, "--output", "json", "--log-format", "text"], settings
    )

    shown = json.loads(result.output_tail[result.output_tail.index("{") :])["show"][0]
    assert shown["memory_limit"] == duckdb_says("300MB")
    assert str(shown["threads"]) == "1"
    # Relative to the data folder, dbt's working directory (dbt_runner.dbt_env): there,
    # settings.duckdb_temp_dir / "dbt".
    assert shown["temp_directory"] == "tmp/duckdb/dbt"
