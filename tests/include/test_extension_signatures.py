"""Extensions load with their signatures checked once per process, never skipped.

The pipeline's lake connections are opened with ``allow_unsigned_extensions`` so that DuckDB
does not hash the 71 MB of DuckLake and its SQLite scanner on every publish and reader;
``serving_lake.load_extensions`` gives them only files DuckDB checked in this process.

Good extension files are loaded here only from the wheel's own path: a second copy of the
same extension loaded into one process (from another path) can crash it. The changed copies
are refused before DuckDB loads them, or loaded in a process of their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from slw_testing import package_env

from social_leadership import serving_lake
from social_leadership.duckdb_limits import open_duckdb
from social_leadership.serving_lake import extension_path, load_extensions
from social_leadership.settings import load_settings

REFUSED = "signature is either missing or invalid"


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))


def tampered(into: Path) -> Path:
    """The DuckLake extension with one byte of its code changed: its signature fails."""
    shutil.copyfile(extension_path("ducklake"), into)
    with into.open("r+b") as file:
        file.seek(1_000_000)
        byte = file.read(1)
        file.seek(1_000_000)
        file.write(bytes([byte[0] ^ 0xFF]))
    return into


def loaded(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "select loaded from duckdb_extensions() where extension_name = 'ducklake'"
    ).fetchone()
    return bool(row and row[0])


def checked_connection() -> duckdb.DuckDBPyConnection:
    return open_duckdb(load_settings(), extensions_checked=True)


def test_a_connection_that_skips_duckdb_s_check_still_refuses_an_unsigned_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tampered(tmp_path / "ducklake.duckdb_extension")
    monkeypatch.setattr(serving_lake, "extension_path", lambda name: bad)
    with checked_connection() as con:
        assert con.execute("select current_setting('allow_unsigned_extensions')").fetchone()[0]
        with pytest.raises(duckdb.IOException, match=REFUSED):
            load_extensions(con, ["ducklake"])
        assert not loaded(con)


REPLACED_AFTER_ITS_CHECK = """
import os, shutil, sys
from pathlib import Path
import duckdb
from social_leadership import serving_lake
from social_leadership.duckdb_limits import open_duckdb
from social_leadership.settings import load_settings

copy, bad = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copyfile(serving_lake.extension_path("ducklake"), copy)
serving_lake.extension_path = lambda name: copy
with open_duckdb(load_settings(), extensions_checked=True) as con:
    serving_lake.load_extensions(con, ["ducklake"])
    print("first: loaded")
os.replace(bad, copy)
with open_duckdb(load_settings(), extensions_checked=True) as con:
    try:
        serving_lake.load_extensions(con, ["ducklake"])
        print("second: loaded")
    except duckdb.IOException as error:
        print("second: refused:", error)
"""


def test_a_file_replaced_after_its_check_is_checked_again(tmp_path: Path) -> None:
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            REPLACED_AFTER_ITS_CHECK,
            str(tmp_path / "ducklake.duckdb_extension"),
            str(tampered(tmp_path / "bad")),
        ],
        env=package_env(SLW_DATA_DIR=os.environ["SLW_DATA_DIR"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    first, second = ran.stdout.splitlines()
    assert first == "first: loaded"
    assert second.startswith("second: refused:")
    assert REFUSED in second


def test_each_file_is_checked_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving_lake, "_SIGNATURES_CHECKED", set())
    connects: list[object] = []
    connect = duckdb.connect

    def counting_connect(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        connects.append(kwargs.get("config"))
        return connect(*args, **kwargs)

    monkeypatch.setattr(serving_lake.duckdb, "connect", counting_connect)
    for _ in range(3):
        with checked_connection() as con:
            load_extensions(con, ["ducklake"])
            assert loaded(con)
    # Three checked connections and one with DuckDB's default configuration, which checked.
    assert len(connects) == 3 + 1
    assert [config for config in connects if not config] == [None]


def test_a_connection_with_duckdb_s_own_check_loads_without_the_process_s_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(serving_lake, "check_signature", lambda path: pytest.fail("checked"))
    with duckdb.connect() as con:
        load_extensions(con, ["ducklake"])
        assert loaded(con)
    bad = tampered(tmp_path / "ducklake.duckdb_extension")
    monkeypatch.setattr(serving_lake, "extension_path", lambda name: bad)
    with duckdb.connect() as con, pytest.raises(duckdb.IOException, match=REFUSED):
        load_extensions(con, ["ducklake"])


def test_a_checked_connection_does_not_load_an_extension_for_a_function_by_itself(
    tmp_path: Path,
) -> None:
    """DuckDB would autoload DuckLake from its extension folder for one of its functions."""
    with duckdb.connect() as con:
        (platform,) = con.execute("pragma platform").fetchone()
    folder = tmp_path / "extensions"
    installed = folder / f"v{duckdb.__version__}" / platform / "ducklake.duckdb_extension"
    installed.parent.mkdir(parents=True)
    # The wheel's own file, so that the process loads one DuckLake library only.
    installed.symlink_to(extension_path("ducklake"))
    call = "select * from ducklake_snapshots('no_lake')"
    with duckdb.connect(config={"extension_directory": str(folder)}) as con:
        with pytest.raises(duckdb.BinderException, match="no_lake"):
            con.execute(call)
        assert loaded(con)
    with checked_connection() as con:
        con.execute(f"set extension_directory = '{folder}'")
        with pytest.raises(duckdb.CatalogException, match="exists in the ducklake extension"):
            con.execute(call)
        assert not loaded(con)
