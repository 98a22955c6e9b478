"""The DuckLake serving catalog: what BI readers with open connections read.

A DuckDB file cannot be rewritten while a reader holds it open, and a reader that opened
it keeps the inode it opened, so swapping in a new file never reaches a connection pool.
DuckLake keeps the tables as Parquet files plus a catalog database; every publish is one
catalog commit (a snapshot). A reader's next transaction sees the newest snapshot, one
transaction sees one snapshot (never a mix of two publications), and old snapshots stay
readable for time travel until they expire.

The catalog is a SQLite file in WAL mode. In SQLite's default rollback-journal mode a
reader inside an open transaction makes the publisher's commit fail with "database is
locked" (measured: ``bench/compare_serving.py``); in WAL mode readers never block the
writer and the writer never blocks readers.

DuckDB cannot download extensions on machines without internet access, so the ``ducklake``
and ``sqlite_scanner`` extensions come from their PyPI wheels
(``duckdb-extension-<name>``), loaded from the wheel's folder.
"""

from __future__ import annotations

import importlib.util
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import duckdb

from social_leadership.duckdb_limits import open_duckdb
from social_leadership.settings import Settings
from social_leadership.sql import quote_identifier, quote_literal

log = logging.getLogger(__name__)

LAKE_EXTENSIONS = ("ducklake", "sqlite_scanner")


class ExtensionMissingError(FileNotFoundError):
    """A DuckDB extension's wheel is not installed for this DuckDB version."""


class ExtensionChangedError(OSError):
    """A DuckDB extension file changed while it was checked or loaded."""


def extension_path(name: str) -> Path:
    """The extension file shipped by the ``duckdb-extension-<name>`` wheel for this DuckDB."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    version = f"v{duckdb.__version__}"
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        path = folder / "extensions" / version / f"{name}.duckdb_extension"
        if path.is_file():
            return path
    package = f"duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}"
    raise ExtensionMissingError(
        f"DuckDB extension {name!r} for DuckDB {duckdb.__version__} is not installed: "
        f"pip install {package} (it is in requirements.txt)"
    )


# The extension files whose signature DuckDB checked in this process, by what would change
# if the file were replaced or written to: (path, device, inode, size, mtime, ctime).
_SIGNATURES_CHECKED: set[tuple[str, int, int, int, int, int]] = set()

# How open_with_extensions opens its connection, until its extensions are loaded: DuckDB's
# check of each file is left out (done once per process instead), and DuckDB loads nothing
# by itself meanwhile.
_LOADING_CHECKED_FILES = {
    "allow_unsigned_extensions": "true",
    "autoload_known_extensions": "false",
    "autoinstall_known_extensions": "false",
}


def _file_identity(path: Path) -> tuple[str, int, int, int, int, int]:
    stat = path.stat()
    return (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def check_signature(path: Path) -> tuple[str, int, int, int, int, int]:
    """Have DuckDB check the signature of the extension file ``path`` (once per process
    while the file stays the same) and return what identifies the file checked; DuckDB's
    error when the file is not signed, :class:`ExtensionChangedError` when it changed while
    DuckDB checked it.

    The check loads the file in a connection of its own with DuckDB's default
    configuration, which refuses an extension without a valid signature (no query runs
    there, so it needs none of the pipeline's limits)."""
    identity = _file_identity(path)
    if identity in _SIGNATURES_CHECKED:
        return identity
    with duckdb.connect() as con:
        con.execute(f"load {quote_literal(str(path))}")
    _unchanged(path, identity)
    _SIGNATURES_CHECKED.add(identity)
    return identity


def _unchanged(path: Path, identity: tuple[str, int, int, int, int, int]) -> None:
    if _file_identity(path) != identity:
        raise ExtensionChangedError(
            f"DuckDB extension {path} changed while it was loaded: an install or upgrade in "
            "progress? Run again once it has finished."
        )


def open_with_extensions(settings: Settings, names: Iterable[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB within the limits of ``settings``, the extensions ``names``
    loaded from their wheels, each file's signature checked once per process.

    DuckDB checks an extension's signature on each ``LOAD`` into a new connection by hashing
    the whole file: 0.45 s of CPU for DuckLake and its SQLite scanner (71 MB), on every
    publish and reader the pipeline opens. Here each file passes :func:`check_signature`
    (once per process; again when the file was replaced or written to), then loads into a
    connection opened with ``allow_unsigned_extensions``, which skips DuckDB's hash; before
    the connection is returned, that setting is switched off for good (DuckDB cannot switch
    it on again) and autoloading is DuckDB's default again. Whoever uses the connection,
    the pipeline or a notebook (``bi.connect_serving``), has DuckDB's own check for any
    other extension. Each file is the one checked before its load and after it (device,
    inode, size, modification and change times), or :class:`ExtensionChangedError`.
    """
    checked = {path: check_signature(path) for path in map(extension_path, names)}
    con = open_duckdb(settings, config=_LOADING_CHECKED_FILES)
    try:
        for path, identity in checked.items():
            con.execute(f"load {quote_literal(str(path))}")
            _unchanged(path, identity)
        con.execute("set allow_unsigned_extensions = false")
        con.execute("reset autoload_known_extensions")
        con.execute("reset autoinstall_known_extensions")
    except BaseException:
        con.close()
        raise
    return con


def load_extensions(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> None:
    """Load the extensions ``names`` into ``con`` from their wheels, DuckDB checking each
    signature (an extension the connection has loaded already, as
    :func:`open_with_extensions` loads them, is not loaded or checked again)."""
    for name in names:
        con.execute(f"load {quote_literal(str(extension_path(name)))}")


def load_lake_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckLake and its SQLite catalog support into ``con`` from the wheels."""
    load_extensions(con, LAKE_EXTENSIONS)


class CatalogError(RuntimeError):
    """The serving catalog's file is no DuckLake catalog (another file in its place, or a
    damaged one): no retry mends it."""


def ensure_catalog(settings: Settings) -> bool:
    """Create the catalog file in WAL mode if there is none; True when it was created.

    WAL is a property of the SQLite file, so setting it once holds for every later
    connection, the readers' included. A catalog created by something else is switched to
    WAL on the next publish (``switch_to_wal``). Raises :class:`CatalogError` for a file
    that is no DuckLake catalog.
    """
    catalog = settings.serving_lake_path
    catalog.parent.mkdir(parents=True, exist_ok=True)
    settings.serving_lake_data_dir.mkdir(parents=True, exist_ok=True)
    created = not catalog.exists()
    try:
        switch_to_wal(catalog)
        if not created:
            follow_moved_data_dir(catalog, settings.serving_lake_data_dir)
    except sqlite3.DatabaseError as error:
        # A catalog another process holds (locked) is left to the retries.
        if isinstance(error, sqlite3.OperationalError) and "no such table" not in str(error):
            raise
        raise CatalogError(
            f"the serving catalog {catalog} (SLW_SERVING_LAKE_PATH) is no DuckLake catalog "
            f"({error}): restore it from a backup with its data folder "
            f"{settings.serving_lake_data_dir} (README, Backups), or move both away for the "
            "next publish to make a new catalog"
        ) from error
    return created


def follow_moved_data_dir(catalog: Path, data_dir: Path) -> None:
    """Record ``data_dir`` as the catalog's data path when it names another folder.

    DuckLake records the data path in the catalog when it creates it (``ducklake_metadata``
    in the DuckLake specification) and keeps each file's path relative to it, so a data
    folder moved or restored elsewhere (a backup, another mount point) is found again once
    the catalog names its new place. Readers take the path from the catalog.
    """
    wanted = f"{data_dir}/"
    with sqlite3.connect(catalog) as con:
        row = con.execute(
            "select value from ducklake_metadata where key = 'data_path' and scope is null"
        ).fetchone()
        if row is not None and row[0] != wanted:
            log.warning("serving catalog %s: data path %s is now %s", catalog, row[0], wanted)
            con.execute(
                "update ducklake_metadata set value = ? where key = 'data_path' and scope is null",
                [wanted],
            )
    con.close()


def switch_to_wal(catalog: Path) -> None:
    with sqlite3.connect(catalog) as con:
        mode = con.execute("pragma journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            con.execute("pragma journal_mode = wal")
    con.close()


def lake_attach_url(settings: Settings) -> str:
    """What ``ATTACH`` takes for the serving catalog: ``ducklake:sqlite:<catalog path>``."""
    return f"ducklake:sqlite:{settings.serving_lake_path}"


def attach_lake(
    con: duckdb.DuckDBPyConnection, settings: Settings, alias: str, *, read_only: bool
) -> None:
    """Attach the serving catalog to ``con`` as ``alias`` (the extensions loaded first).

    The data path is given only to the writer: DuckLake records it in the catalog when the
    catalog is created and readers take it from there.
    """
    load_lake_extensions(con)
    options = (
        ["read_only"]
        if read_only
        else [f"data_path {quote_literal(str(settings.serving_lake_data_dir) + '/')}"]
    )
    con.execute(
        f"attach {quote_literal(lake_attach_url(settings))} "
        f"as {quote_identifier(alias)} ({', '.join(options)})"
    )
