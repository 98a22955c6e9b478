"""Extensions load with their signatures checked once per process, never skipped.

``serving_lake.open_with_extensions`` (the publish, the lake warehouse, the serving reader)
loads its extensions into a connection that skips DuckDB's hash of each file, after
DuckDB checked the file in this process, and returns it with DuckDB's own check back on.

Good extension files are loaded here only from the wheel's own path: a second copy of the
same extension loaded into one process (from another path) can crash it. The changed
copies are refused before DuckDB loads them, or handled in a process of their own.
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
from social_leadership.serving_lake import extension_path, load_extensions, open_with_extensions
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


def in_own_process(script: str, *args: Path) -> list[str]:
    """The lines ``script`` printed, run by a Python process of its own."""
    ran = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        env=package_env(SLW_DATA_DIR=os.environ["SLW_DATA_DIR"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return ran.stdout.splitlines()


def test_an_unsigned_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tampered(tmp_path / "ducklake.duckdb_extension")
    monkeypatch.setattr(serving_lake, "extension_path", lambda name: bad)
    with pytest.raises(duckdb.IOException, match=REFUSED):
        open_with_extensions(load_settings(), ["ducklake"])


REPLACED_AFTER_ITS_CHECK = """
import os, shutil, sys
from pathlib import Path
import duckdb
from social_leadership import serving_lake
from social_leadership.settings import load_settings

copy, bad = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copyfile(serving_lake.extension_path("ducklake"), copy)
serving_lake.extension_path = lambda name: copy
with serving_lake.open_with_extensions(load_settings(), ["ducklake"]):
    print("first: loaded")
os.replace(bad, copy)
try:
    serving_lake.open_with_extensions(load_settings(), ["ducklake"])
    print("second: loaded")
except duckdb.IOException as error:
    print("second: refused:", error)
"""


def test_a_file_replaced_after_its_check_is_checked_again(tmp_path: Path) -> None:
    first, second = in_own_process(
        REPLACED_AFTER_ITS_CHECK,
        tmp_path / "ducklake.duckdb_extension",
        tampered(tmp_path / "bad"),
    )
    assert first == "first: loaded"
    assert second.startswith("second: refused:")
    assert REFUSED in second


def test_a_file_written_to_is_another_file_to_the_check(tmp_path: Path) -> None:
    path = tmp_path / "ducklake.duckdb_extension"
    path.write_bytes(b"a" * 100)
    # Times in the past, so that the write below moves them whatever the clock's tick.
    os.utime(path, ns=(0, 0))
    before = serving_lake._file_identity(path)
    with path.open("r+b") as file:
        file.write(b"b")
    assert serving_lake._file_identity(path) != before


@pytest.mark.parametrize(
    "changes_at",
    [2, 3],  # the 2nd look at the file: after its check; the 3rd: after its load
)
def test_a_file_that_changes_while_it_is_checked_or_loaded_is_refused(
    monkeypatch: pytest.MonkeyPatch, changes_at: int
) -> None:
    monkeypatch.setattr(serving_lake, "_SIGNATURES_CHECKED", set())
    identity = serving_lake._file_identity
    looks = iter(range(1, 10))

    def changing(path: Path) -> tuple[object, ...]:
        # Another change time from the look ``changes_at`` on.
        return (*identity(path)[:-1], int(next(looks) >= changes_at))

    opened: list[duckdb.DuckDBPyConnection] = []
    open_duckdb = serving_lake.open_duckdb

    def recording(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        opened.append(open_duckdb(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(serving_lake, "_file_identity", changing)
    monkeypatch.setattr(serving_lake, "open_duckdb", recording)
    with pytest.raises(serving_lake.ExtensionChangedError, match="changed while"):
        open_with_extensions(load_settings(), ["ducklake"])

    # Only a file that stayed the same through its check is taken as checked.
    assert len(serving_lake._SIGNATURES_CHECKED) == (changes_at - 2)
    # A change during the check comes before the connection is opened; one during the load,
    # after: the connection is closed.
    assert len(opened) == (changes_at - 2)
    for con in opened:
        with pytest.raises(duckdb.ConnectionException):
            con.execute("select 1")


def test_each_file_is_checked_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving_lake, "_SIGNATURES_CHECKED", set())
    connects: list[object] = []
    connect = duckdb.connect

    def counting_connect(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        connects.append(kwargs.get("config"))
        return connect(*args, **kwargs)

    # duckdb.connect itself, so that the connections open_duckdb opens count too.
    monkeypatch.setattr(serving_lake.duckdb, "connect", counting_connect)
    for _ in range(3):
        with open_with_extensions(load_settings(), ["ducklake"]) as con:
            assert loaded(con)
    # Three connections skipping DuckDB's check, one with its default configuration.
    assert len(connects) == 3 + 1
    assert [config for config in connects if not config] == [None]


DUCKDB_S_CHECK_AFTERWARDS = """
import sys
from pathlib import Path
import duckdb
from social_leadership import serving_lake
from social_leadership.settings import load_settings

bad = Path(sys.argv[1])
with serving_lake.open_with_extensions(load_settings(), ["ducklake"]) as con:
    print(con.execute(
        "select current_setting('allow_unsigned_extensions'), "
        "current_setting('autoload_known_extensions'), "
        "current_setting('autoinstall_known_extensions')"
    ).fetchone())
    try:
        con.execute(f"load '{bad}'")
        print("unsigned: loaded")
    except duckdb.IOException as error:
        print("unsigned: refused:", error)
"""


def test_the_connection_returned_checks_every_other_extension_as_duckdb_does(
    tmp_path: Path,
) -> None:
    settings, unsigned = in_own_process(
        DUCKDB_S_CHECK_AFTERWARDS, tampered(tmp_path / "bad.duckdb_extension")
    )
    # DuckDB's defaults: no unsigned extension, known ones loaded and installed by need.
    assert settings == "(False, True, True)"
    assert unsigned.startswith("unsigned: refused:")
    assert REFUSED in unsigned


def test_load_extensions_leaves_the_check_to_duckdb(
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
