"""Where the working warehouse lives: a DuckDB file (default) or DuckLake.

``SLW_WAREHOUSE_BACKEND=duckdb`` (the default, what ``make run`` uses): one DuckDB file,
``SLW_WAREHOUSE_PATH``, which one process at a time may write (DuckDB's file lock), so
every writer in the DAGs runs in the one-slot pool ``orchestration.WAREHOUSE_POOL``.

``SLW_WAREHOUSE_BACKEND=ducklake``: a DuckLake, whose catalog is a database
(``SLW_DUCKLAKE_CATALOG``: PostgreSQL for a deployment on several hosts, or a SQLite or
DuckDB file on one) and whose tables are Parquet files under ``SLW_DUCKLAKE_DATA_PATH`` (a
folder every worker mounts, or ``s3://`` through httpfs). Every commit is a catalog
transaction, so several processes write at once (platform loads on several workers) and a
reader sees the latest committed snapshot. Each process opens an in-memory DuckDB,
attaches the lake as ``warehouse`` and makes it the default database, so the same
unqualified SQL (``raw.platform_metrics``, ``marts.dim_executive``) works on both. dbt
attaches it the same way (dbt_project/profiles.yml, target ``lake``).

DuckLake has no sequences, primary keys or unique constraints, and no ``RETURNING`` on
insert: the raw contract is created without them there (``raw_contract.render_ddl``) and
the few statements that used them have a form for both backends.

The extensions come from their PyPI wheels (``duckdb-extension-<name>``, pinned in
requirements.txt), never downloaded at run time.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import duckdb

from social_leadership.duckdb_limits import open_duckdb
from social_leadership.serving_lake import load_extensions, open_with_extensions, switch_to_wal
from social_leadership.settings import Settings, default_in, redact_catalog
from social_leadership.sql import quote_identifier, quote_literal

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DUCKDB = "duckdb"
DUCKLAKE = "ducklake"

# The attached lake's name in every process (dbt's database in the lake target).
LAKE_ALIAS = "warehouse"

# Data paths DuckDB reaches through httpfs rather than the local file system.
_REMOTE_SCHEMES = ("s3://", "s3a://", "s3n://", "r2://", "gcs://", "gs://", "http://", "https://")


def uses_lake(settings: Settings) -> bool:
    """Whether the working warehouse is a DuckLake (``SLW_WAREHOUSE_BACKEND=ducklake``)."""
    return settings.warehouse_backend == DUCKLAKE


def _catalog_kind(settings: Settings) -> str:
    return settings.ducklake_catalog.partition(":")[0]


def takes_concurrent_writers(settings: Settings) -> bool:
    """Whether several processes may write the working warehouse at once: a DuckLake on a
    PostgreSQL catalog. A DuckDB file, and a DuckLake on a DuckDB-file catalog, take one
    process at a time; on a SQLite catalog two commits at once fail with "database is
    locked" (measured: four processes replacing a day's rows, three failed), as DuckLake
    retries its own conflicts but not SQLite's busy snapshot."""
    return uses_lake(settings) and _catalog_kind(settings) == "postgres"


def _is_remote(data_path: str) -> bool:
    return data_path.lower().startswith(_REMOTE_SCHEMES)


def lake_extensions(settings: Settings) -> tuple[str, ...]:
    """The extensions the lake of ``settings`` needs: DuckLake, its catalog's scanner, and
    httpfs for a remote data path."""
    names = [DUCKLAKE]
    scanner = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}.get(
        _catalog_kind(settings)
    )
    if scanner:
        names.append(scanner)
    if _is_remote(settings.ducklake_data_path):
        names.append("httpfs")
    return tuple(names)


def load_lake_extensions(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Load :func:`lake_extensions` into ``con`` from their wheels (idempotent)."""
    load_extensions(con, lake_extensions(settings))


def configure_object_store(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Point httpfs at an S3-compatible store (MinIO, Ceph, R2) for a remote data path.

    httpfs reads the AWS SDK's credential variables itself (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``), so no key passes
    through the settings or SQL text; the endpoint variable of the SDK,
    ``AWS_ENDPOINT_URL``, it does not read: it is set here, with path-style URLs as such
    stores serve them. Without it, the data path is on AWS S3."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not _is_remote(settings.ducklake_data_path) or not endpoint:
        return
    parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    con.execute(f"set global s3_endpoint = {quote_literal(parsed.netloc)}")
    con.execute(f"set global s3_use_ssl = {str(parsed.scheme == 'https').lower()}")
    con.execute("set global s3_url_style = 'path'")


def lake_attach_url(settings: Settings) -> str:
    """What ``ATTACH`` takes: ``ducklake:`` and the catalog (``postgres:...``,
    ``sqlite:<file>`` or ``duckdb:<file>``), as dbt_project/profiles.yml writes it too."""
    return f"ducklake:{settings.ducklake_catalog}"


def data_path(settings: Settings) -> str:
    """The data path as DuckLake records it: a folder, always with its trailing slash."""
    path = settings.ducklake_data_path
    return path if path.endswith("/") else f"{path}/"


def prepare_lake_storage(settings: Settings) -> None:
    """Create a local catalog's folder and a local data folder (a remote one exists already).

    A SQLite catalog is created in WAL mode before DuckLake first opens it: in SQLite's
    default rollback-journal mode one process's open read transaction makes another's
    commit fail with "database is locked" (see serving_lake.py), and workers on one host
    share the file."""
    kind, _, rest = settings.ducklake_catalog.partition(":")
    if kind in ("sqlite", DUCKDB):
        Path(rest).parent.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        switch_to_wal(Path(rest))
    if not _is_remote(settings.ducklake_data_path):
        Path(settings.ducklake_data_path).mkdir(parents=True, exist_ok=True)


def attach_working(
    con: duckdb.DuckDBPyConnection, settings: Settings, alias: str, *, read_only: bool
) -> None:
    """Attach the working warehouse of ``settings`` to ``con`` as ``alias``."""
    if not uses_lake(settings):
        mode = " (read_only)" if read_only else ""
        con.execute(
            f"attach {quote_literal(str(settings.warehouse_path))} as "
            f"{quote_identifier(alias)}{mode}"
        )
        return
    if not read_only:
        prepare_lake_storage(settings)
    load_lake_extensions(con, settings)
    configure_object_store(con, settings)
    options = ["read_only"] if read_only else [f"data_path {quote_literal(data_path(settings))}"]
    try:
        con.execute(
            f"attach {quote_literal(lake_attach_url(settings))} as {quote_identifier(alias)} "
            f"({', '.join(options)})"
        )
    except duckdb.Error as exc:
        if (other := _OTHER_DATA_PATH.search(str(exc))) is None:
            raise
        fix = (
            f"set SLW_DUCKLAKE_DATA_PATH={other['recorded']} (or unset it, if that is the "
            "default), or put the data back there: the catalog keeps the path it was made "
            "with (README, Warehouse backend)"
        )
        catalog = _local_catalog(settings)
        if catalog is not None and _catalog_without_data(settings, catalog):
            fix += (
                f"; its lake holds no data yet (a first run that failed there?): remove "
                f"{catalog} (and its -wal and -shm files) to start again with {other['given']}"
            )
        raise WarehouseSettingError(
            f"SLW_DUCKLAKE_DATA_PATH is {other['given']}, but the lake's catalog records its "
            f"data at {other['recorded']}",
            fix,
        ) from exc


# DuckLake's refusal of a data path other than the one its catalog was made with, which
# says to set an option of its own that slw has no setting for.
_OTHER_DATA_PATH = re.compile(
    r'DATA_PATH parameter "(?P<given>[^"]*)" does not match existing data path in the '
    r'catalog "(?P<recorded>[^"]*)"'
)


def open_working(settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the working warehouse (within the DuckDB
    limits of ``settings``): the file itself, or an in-memory DuckDB using the lake.
    Refused when the data folder holds the other backend's instead (:func:`check_backend`)."""
    check_backend(settings)
    if not uses_lake(settings):
        if not read_only:
            settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        return open_duckdb(settings, settings.warehouse_path, read_only=read_only)
    con = open_with_extensions(settings, lake_extensions(settings))
    try:
        attach_working(con, settings, LAKE_ALIAS, read_only=read_only)
        con.execute(f"use {LAKE_ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


def is_lake_connection(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con``'s default database is a DuckLake (no sequences, keys or RETURNING)."""
    row = con.execute(
        "select type from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return bool(row and row[0] == DUCKLAKE)


class WarehouseSettingError(ValueError):
    """The warehouse settings name another warehouse than the one there: the data folder's
    is the other backend's (:func:`backend_mismatch`), or the lake's catalog records another
    data path. Said as ``problem`` and ``fix``."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}: {fix}")


# The backend a data folder's working warehouse was made with, recorded in the folder on its
# first write (:func:`record_backend`); a lake's catalog (:func:`catalog_identity`) in a
# file of its own, so that the backend's record stays as versions before read it.
BACKEND_RECORD = ".warehouse_backend"
CATALOG_RECORD = ".warehouse_catalog"


def catalog_identity(catalog: str) -> str:
    """Which lake catalog ``catalog`` (an ``SLW_DUCKLAKE_CATALOG``) names: a file's kind and
    absolute path; for PostgreSQL, the kind alone. A libpq connection string names one
    database in many ways (quoting, spaces, PG* variables, a service file, localhost or its
    address): two that differ are not told apart, only a switch between kinds."""
    kind, _, rest = catalog.partition(":")
    if kind == "postgres":
        return kind
    return f"{kind}:{Path(rest).expanduser().resolve()}"


def _read_record(record: Path) -> str | None:
    """What a record file holds (None: no file)."""
    try:
        return record.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def _local_catalog(settings: Settings) -> Path | None:
    """The file of a SQLite or DuckDB lake catalog; None for PostgreSQL's."""
    kind, _, rest = settings.ducklake_catalog.partition(":")
    return Path(rest) if kind in ("sqlite", DUCKDB) and rest else None


def _in_folder(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _lake_has_tables(settings: Settings, catalog: Path) -> bool:
    """Whether the lake of ``catalog`` holds tables (a first attempt that failed before
    writing any, an S3 bucket refused, leaves a catalog without); a DuckDB catalog, which
    another process may hold, is taken to."""
    if not settings.ducklake_catalog.startswith("sqlite:"):
        return True
    return _sqlite_lake_has_tables(catalog)


def _sqlite_lake_has_tables(catalog: Path, *, unknown: bool = True) -> bool:
    """Whether the SQLite lake catalog ``catalog`` holds tables (``unknown`` if it cannot
    tell: no file, or no DuckLake catalog in it)."""
    if not catalog.is_file():
        return unknown
    try:
        with _read_only(catalog) as db:
            row = db.execute("select count(*) from ducklake_table").fetchone()
    except sqlite3.Error:
        return unknown
    return bool(row and row[0])


def _read_only(catalog: Path) -> closing[sqlite3.Connection]:
    """The SQLite catalog file ``catalog``, opened to read only (closed on leaving)."""
    return closing(sqlite3.connect(f"{catalog.resolve().as_uri()}?mode=ro", uri=True))


def _catalog_without_data(settings: Settings, catalog: Path) -> bool:
    """Whether the lake of the SQLite catalog ``catalog`` holds no row: no data file, no
    delete file, no row kept in the catalog itself (DuckLake keeps small inserts there,
    with no file), and no snapshot that inserted or deleted any. False for another kind of
    catalog, or one it cannot read."""
    if not settings.ducklake_catalog.startswith("sqlite:"):
        return False
    try:
        with _read_only(catalog) as db:
            inlined = [
                name
                for (name,) in db.execute("select table_name from ducklake_inlined_data_tables")
            ]
            counts = [
                "(select count(*) from ducklake_data_file)",
                "(select count(*) from ducklake_delete_file)",
                "(select count(*) from ducklake_snapshot_changes "
                "where changes_made like '%insert%' or changes_made like '%delet%')",
                *(f"(select count(*) from {quote_identifier(name)})" for name in inlined),
            ]
            row = db.execute(f"select {' + '.join(counts)}").fetchone()
    except sqlite3.Error:
        return False
    return bool(row) and row[0] == 0


def _backend_found(settings: Settings) -> str | None:
    """The backend of a data folder from before :data:`BACKEND_RECORD`: the one whose
    warehouse, at its place in the folder, exists while the other's does not. None with a
    PostgreSQL catalog, whose lake cannot be seen from here (a DuckDB file left beside it
    from before would decide wrongly)."""
    folder, catalog = settings.data_dir, _local_catalog(settings)
    if catalog is None:
        return None
    database = settings.warehouse_path.exists() and _in_folder(settings.warehouse_path, folder)
    lake = catalog.exists() and _in_folder(catalog, folder) and _lake_has_tables(settings, catalog)
    if database and not lake:
        return DUCKDB
    if lake and not database:
        return DUCKLAKE
    return None


def backend_mismatch(settings: Settings) -> WarehouseSettingError | None:
    """Why the working warehouse may not be opened, or None: the data folder's warehouse is
    the other backend's (``SLW_WAREHOUSE_BACKEND`` switched on a folder that has run).
    Opening this backend's would build a new, empty warehouse, and its first publish would
    replace the marts every reader of the folder's serving copies has with it."""
    record = settings.data_dir / BACKEND_RECORD
    try:
        made_with = _read_record(record)
        told_by = f"as {record} records"
        if made_with is None:
            made_with = _backend_found(settings)
            told_by = "as the warehouse it holds says"
        if made_with == DUCKLAKE == settings.warehouse_backend:
            return _other_catalog(settings)
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("the data folder's warehouse records cannot be read, not checked: %s", exc)
        return None
    if made_with not in (DUCKDB, DUCKLAKE) or made_with == settings.warehouse_backend:
        return None
    return WarehouseSettingError(
        f"SLW_WAREHOUSE_BACKEND is {settings.warehouse_backend}, but data folder "
        f"{settings.data_dir} holds a {made_with} warehouse ({told_by}): a new, empty one "
        "would be built and published in its place",
        f"set SLW_WAREHOUSE_BACKEND={made_with} to go on with it, or give a new warehouse a "
        "data folder of its own (SLW_DATA_DIR; README, Warehouse backend)",
    )


def _other_catalog(settings: Settings) -> WarehouseSettingError | None:
    """The refusal of a lake catalog other than the one the data folder's lake was made
    with (``SLW_DUCKLAKE_CATALOG`` changed on a folder that has run), or None. A folder
    whose catalog is not recorded (made by an earlier version) is told by its default
    catalog, when that one holds a lake and the setting names another file; not when it
    names a PostgreSQL catalog, whose lake cannot be seen (an upgraded deployment on one,
    a default catalog left beside it from a first try, went on being refused). A recorded
    catalog file that is gone is no lake to keep (a data folder moved whole: DuckLake then
    says the data path moved)."""
    record = settings.data_dir / CATALOG_RECORD
    recorded = _read_record(record)
    told_by = f"as {record} records"
    if not recorded:
        if _local_catalog(settings) is None:
            return None
        default = str(default_in(settings.data_dir, "ducklake_catalog"))
        told_by = "as the lake at its default place says"
        if not _sqlite_lake_has_tables(Path(default.partition(":")[2]), unknown=False):
            return None
        recorded = default
    recorded = catalog_identity(recorded)
    identity = catalog_identity(settings.ducklake_catalog)
    kind, _, file = recorded.partition(":")
    if identity == recorded or (kind != "postgres" and not Path(file).exists()):
        return None
    return WarehouseSettingError(
        f"SLW_DUCKLAKE_CATALOG names the catalog {identity}, but data folder "
        f"{settings.data_dir} holds the lake of catalog {recorded} ({told_by}): a new, empty "
        "one would be built and published in its place",
        "set SLW_DUCKLAKE_CATALOG back to that catalog, or give a new warehouse a data "
        "folder of its own (SLW_DATA_DIR); if that lake's catalog moved to this address, "
        f"write `{identity}` in {record} (README, Warehouse backend)",
    )


def check_backend(settings: Settings) -> None:
    """Raise :func:`backend_mismatch`'s error, if any."""
    if (mismatch := backend_mismatch(settings)) is not None:
        raise mismatch


def record_backend(settings: Settings) -> None:
    """Record the backend in the data folder, once its warehouse has been written to; and a
    lake's catalog: with a new record of the backend (a folder started again, its records
    deleted), or beside one recorded before catalogs were."""
    backend = settings.data_dir / BACKEND_RECORD
    new_backend = not backend.exists()
    records = [(backend, settings.warehouse_backend)] if new_backend else []
    catalog = settings.data_dir / CATALOG_RECORD
    if uses_lake(settings) and (new_backend or not catalog.exists()):
        records.append((catalog, catalog_identity(settings.ducklake_catalog)))
    for record, value in records:
        partial = record.with_name(f"{record.name}.{os.getpid()}.tmp")
        try:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            partial.write_text(f"{value}\n", encoding="utf-8")
            partial.replace(record)
        except OSError as exc:
            # A folder it may not write: its backend is then told by which warehouse it holds.
            log.warning("could not record the warehouse in %s: %s", record, exc)


def holds_no_warehouse(settings: Settings) -> bool:
    """Whether the working warehouse is not there yet, so that opening it makes a new one:
    no DuckDB file, or a lake whose local catalog is missing or holds no table. A lake with
    a PostgreSQL catalog cannot be seen from here, and is taken to be there."""
    if not uses_lake(settings):
        return not settings.warehouse_path.exists()
    catalog = _local_catalog(settings)
    if catalog is None:
        return False
    if settings.ducklake_catalog.startswith("sqlite:"):
        return not _sqlite_lake_has_tables(catalog, unknown=False)
    return not catalog.exists()


def describe_working(settings: Settings) -> str:
    """The working warehouse in words, for messages and ``slw`` (no password shown)."""
    if not uses_lake(settings):
        return str(settings.warehouse_path)
    catalog = redact_catalog(settings.ducklake_catalog)
    return f"DuckLake {catalog} (data {data_path(settings)})"


# DuckLake's commit refuses a transaction that deleted from a table another transaction
# inserted into since it began (and the other way round), whatever the rows; on a SQLite
# catalog a commit racing another's fails on SQLite's lock instead.
_CONFLICTS = ("Transaction conflict", "database is locked")


def write_conflict(error: BaseException) -> str | None:
    """The line of ``error`` that names why a DuckLake commit was refused for another
    writer's (a conflict on a table, or a SQLite catalog busy with another commit: the
    work, undone whole, may be run again); None when it is no such refusal. (The first line
    only says "Failed to commit".)"""
    if not isinstance(error, duckdb.TransactionException):
        return None
    lines = [line.strip() for line in str(error).splitlines()]
    return next((line for line in lines if any(text in line for text in _CONFLICTS)), None)


def retry_conflicts(work: Callable[[], _T], *, attempts: int = 8, first_wait: float = 0.5) -> _T:
    """Run ``work`` (a whole transaction, idempotent: it opens its own connection), again
    after a DuckLake write conflict, waiting longer (with jitter) each time.

    Concurrent platform loads each replace their day of ``raw.platform_metrics``: a delete
    and an insert, which DuckLake's table-level conflict check refuses to commit side by
    side. The loser's work is undone whole, so running it again is safe. A DuckDB file
    never conflicts (one writer), so the wrapper changes nothing there."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except duckdb.TransactionException as error:
            if write_conflict(error) is None or attempt == attempts:
                raise
            wait = first_wait * 2 ** (attempt - 1) * random.uniform(1, 2)  # noqa: S311 - jitter, not a secret
            log.info("write conflict (attempt %d of %d), again in %.1f s", attempt, attempts, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")
