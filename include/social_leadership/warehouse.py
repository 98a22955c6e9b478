"""The working warehouse: connections and the raw/audit tables of raw_contract.py.

Every connection to it is opened by :func:`connect`, on the backend of
``SLW_WAREHOUSE_BACKEND`` (warehouse_backend.py). A DuckDB file allows one writer process:
every writer in the DAGs runs in the one-slot pool ``orchestration.WAREHOUSE_POOL``, opens
the file with :func:`connect`, and closes it before the task ends, so dbt (a separate
process) can open it afterwards. A DuckLake takes several writers at once.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from social_leadership import raw_contract
from social_leadership.duckdb_limits import open_duckdb
from social_leadership.settings import Settings, load_settings
from social_leadership.warehouse_backend import (
    check_backend,
    is_lake_connection,
    open_working,
    record_backend,
    uses_lake,
)

log = logging.getLogger(__name__)

# How long a write waits for another process's hold on the DuckDB file to end: a reader
# such as `slw summary` holds it for about a second, and a task that met it failed its try
# (the retry of a dbt build rebuilt everything). A writer holding it is met only by a
# command run beside the pipeline's tasks, which take turns (one-slot pool).
LOCK_WAIT_SECONDS = 15.0

# The schema BI tools read (published to the serving copy) and the quality gate checks.
MARTS_SCHEMA = "marts"

# The raw and audit tables the Python loaders write and dbt's sources read, rendered from
# the one statement of that contract (raw_contract.TABLES).
RAW_DDL = raw_contract.RAW_DDL


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit tables if they do not exist, and bring a warehouse made by an
    earlier version up to date (idempotent). A DuckLake gets the contract without sequences
    and keys, which it does not support.

    Runs on every writing connection: the migrations read the catalog once, together (one
    query of ``duckdb_columns()``: 2.4 ms on the demo warehouse, where each of the four
    ``information_schema`` queries it replaced took 3.6 ms). Each migration adds or changes
    columns that no other one looks for in that list."""
    if not is_lake_connection(con):
        con.execute(RAW_DDL)
    elif _lacks_contract_tables(con):
        # Only then: every statement is a catalog commit, and the tasks of several workers
        # connect at once.
        con.execute(raw_contract.LAKE_DDL)
    columns = _column_types(con)
    _migrate_respondent_keys(con, columns)
    _migrate_synthetic_flags(con, columns)
    _migrate_added_columns(con, columns)


def as_upgraded(con: duckdb.DuckDBPyConnection, qualified_name: str) -> str:
    """SQL naming the contract table ``qualified_name`` as this version has it, for a
    reader that may not write: a warehouse of an earlier version that no writing task of
    this one has opened yet (:func:`ensure_schema` adds the columns) lacks the later nullable
    columns, given here as nulls, as the upgrade makes them. (``slw summary`` right after an
    upgrade failed on a column not found.)"""
    table = next(t for t in raw_contract.TABLES if t.qualified_name == qualified_name)
    present = _column_types(con)
    missing = [
        c for c in table.columns if c.nullable and (table.schema, table.name, c.name) not in present
    ]
    if not missing:
        return qualified_name
    added = ", ".join(f"cast(null as {c.data_type}) as {c.name}" for c in missing)
    return f"(select *, {added} from {qualified_name})"


def _lacks_contract_tables(con: duckdb.DuckDBPyConnection) -> bool:
    existing = {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database()"
        ).fetchall()
    }
    return any(table.qualified_name not in existing for table in raw_contract.TABLES)


def _column_types(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], str]:
    """(schema, table, column) to data type, for every column of the default database."""
    return {
        (schema, table, column): data_type
        for schema, table, column, data_type in con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns() "
            "where database_name = current_database()"
        ).fetchall()
    }


def _migrate_added_columns(
    con: duckdb.DuckDBPyConnection, columns: dict[tuple[str, str, str], str]
) -> None:
    """Add the nullable columns a later version appended to a contract table (null for the
    rows already there: the fact was not recorded then)."""
    for table in raw_contract.TABLES:
        for column in table.columns:
            if column.nullable and (table.schema, table.name, column.name) not in columns:
                con.execute(
                    f"alter table {table.qualified_name} add column {column.name} "
                    f"{column.data_type}"
                )


def _migrate_respondent_keys(
    con: duckdb.DuckDBPyConnection, columns: dict[tuple[str, str, str], str]
) -> None:
    """Warehouses from before 64-bit pseudonyms hold hex HMAC strings: turn each into a
    64-bit hash of itself. Respondents stay distinct within their file (the only use of the
    key; a correction replaces a whole source and wave), and no id is needed or exposed."""
    if columns.get(("raw", "survey_respondent_answers", "respondent_key")) == "VARCHAR":
        con.execute(
            "alter table raw.survey_respondent_answers alter respondent_key "
            "set data type ubigint using hash(respondent_key)"
        )


# Raw tables that gained is_synthetic (last column): rows loaded before were all real or
# unlabelled, and false is what the loaders of that version wrote in effect.
_SYNTHETIC_FLAG_TABLES = ("raw.platform_metrics", "raw.history_imports")


def _migrate_synthetic_flags(
    con: duckdb.DuckDBPyConnection, columns: dict[tuple[str, str, str], str]
) -> None:
    """Warehouses from before the synthetic flag lack ``is_synthetic`` in the tables above:
    add it, false for the rows already there, and not null as the contract says."""
    for table in _SYNTHETIC_FLAG_TABLES:
        schema, name = table.split(".")
        if (schema, name, "is_synthetic") not in columns:
            con.execute(f"alter table {table} add column is_synthetic boolean default false")
            con.execute(f"alter table {table} alter column is_synthetic drop default")
            con.execute(f"alter table {table} alter column is_synthetic set not null")


def holds_synthetic_executives(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the marts show any synthetic (demo) executive, as ``dim_executive`` says:
    every output that shows them must say so. The roster was read once, when it was loaded;
    this is what it said, carried through dbt."""
    row = con.execute(
        f"select coalesce(bool_or(is_synthetic), false) from {MARTS_SCHEMA}.dim_executive"
    ).fetchone()
    return bool(row and row[0])


@contextmanager
def connect(
    path: Path, *, read_only: bool = False, settings: Settings | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, creating its folder and the raw contract on first write.

    Within the DuckDB limits of ``settings`` (default: the environment's, read now). On the
    DuckDB backend it opens the file ``path``; on the DuckLake backend, the lake the
    settings name (``path`` is the DuckDB file's and is not used), its default database."""
    settings = settings or load_settings()
    # The working warehouse of the settings (not a file of a test or a tool's own).
    working = uses_lake(settings) or path == settings.warehouse_path
    if working and not uses_lake(settings):
        check_backend(settings)  # open_working checks a lake's
    if uses_lake(settings):
        con = open_working(settings, read_only=read_only)
    elif read_only:
        con = open_duckdb(settings, path, read_only=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _open_for_writing(settings, path)
    try:
        if not read_only:
            ensure_schema(con)
            if working:
                record_backend(settings)
        yield con
    finally:
        con.close()


def _open_for_writing(settings: Settings, path: Path) -> duckdb.DuckDBPyConnection:
    """The DuckDB file opened to write, once no other process holds it, waiting up to
    :data:`LOCK_WAIT_SECONDS` (DuckDB's error, naming the holder, after that)."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.05
    while True:
        try:
            return open_duckdb(settings, path)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc) or time.monotonic() + pause > deadline:
                raise
            if pause == 0.05:
                log.info("%s is held by another process: waiting for it", path)
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: a crash or error inside leaves the previous state."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


# DuckDB's faults of the database itself: I/O (a full disk, a held lock), a fatal or
# internal error, a write conflict, memory, an interrupt. A file DuckDB reads that is bad
# is an InvalidInputException or a conversion error (the survey intake's files are read by
# pyarrow, whose errors inside a DuckDB scan arrive as InvalidInputException), so none of
# these is a landed file's fault.
_WAREHOUSE_ERRORS = (
    duckdb.OperationalError,
    duckdb.FatalException,
    duckdb.InternalError,
    duckdb.InterruptException,
)
# An OSError with one of these is the machine's (full or read-only disk, no memory, a
# failing device), whichever file it met.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.ENOMEM, errno.EIO}


def is_warehouse_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient fault of the warehouse or machine, not of a file: to
    be raised (Airflow retries it), never to quarantine the file being read. A task stopped
    while it read (its time-out, a signal) is one too, whatever DuckDB made of it."""
    if isinstance(exc, (*_WAREHOUSE_ERRORS, MemoryError)) or interruption(exc) is not None:
        return True
    return isinstance(exc, OSError) and exc.errno in _MACHINE_ERRNOS


def interruption(exc: BaseException) -> BaseException | None:
    """What stopped the task, when ``exc`` is, or was raised for, an interruption: Airflow's
    task time-out (``AirflowTaskTimeout``, a SIGALRM handler) or another signal's
    exception. DuckDB's client runs such a handler during a query, stops the query and
    raises ``RuntimeError('Query interrupted')`` instead, the interruption only its cause:
    caught as an error of the file being read, a good file was quarantined and the task,
    its one alarm spent, ran on without a limit."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if not isinstance(current, Exception):
            return current
        current = current.__cause__ or current.__context__
    return None
