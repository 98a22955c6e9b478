"""Publish the marts to the serving data that BI tools read.

BI tools never open the working warehouse: DuckDB allows one writer or many readers, never
both, so a dashboard holding the working file open would block the next pipeline run. Each
publish writes three things from the working warehouse, all from the same plan:

- **The DuckLake catalog** (``SLW_SERVING_LAKE_PATH``, see ``serving_lake``): the path for
  BI tools and connection pools. A publish is one DuckLake commit: a reader's next
  transaction sees it, one transaction never sees a mix of two publications, and the
  publish never waits for a reader.
- **The single-file copy** (``SLW_SERVING_PATH``) for clients that cannot load extensions:
  real tables with PRIMARY KEY, NOT NULL and FOREIGN KEY declarations, in storage version
  v1.1.0 so older DuckDB clients open it. It is built beside its final path and swapped in
  with ``os.replace`` (atomic on one filesystem); a client that holds the old file open
  keeps reading it until it reconnects. The replaced file is kept as the spare
  (``SLW_SERVING_FILE_SPARE``): the next publish brings it up to date in place, unless
  somebody may still read it, instead of copying the current file.
- **The Parquet set**: a folder per publication in ``SLW_SERVING_PARQUET_DIR`` with a folder
  per table (monthly files for the daily facts) and per publication table. Once the folder
  is complete a pointer moves to it in one atomic step: the ``current`` symlink and, for
  readers that cannot follow symlinks, the ``CURRENT`` file. A replaced folder stays for
  ``SLW_SERVING_PARQUET_RETENTION_MINUTES`` after it stopped being current.

Only what the build changed is published. The daily facts' dbt builds record the first day
they recomputed in ``audit.incremental_windows``; a publish replaces those days (the
earliest over every build since the previous publication) and leaves the rest: the
DuckLake commit holds only those rows, the single file is an earlier one (the spare, or a
copy of the current one) plus the rows changed since, and the Parquet set hard-links the
months that did not change. Small tables are replaced whole; a table whose definition
changed, a full dbt refresh or the first publish rewrites the table. A count check after
each change falls back to rewriting a table whose row count differs from the working
warehouse, so a missed window cannot go unnoticed.

Comments, keys and metadata come from the dbt YAML through the manifest
(``serving_contracts``); ``marts.publication`` and ``marts.publication_data_as_of`` say
when, from which build, with how many rows and with data as of which day each publication
was made.

A publish killed mid-way (an OOM kill, a lost worker) leaves temporary files behind; the
next publish removes them before it starts, under a lock that keeps two publishes apart.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from social_leadership.freshness import copy_to_serving as copy_freshness_to_serving
from social_leadership.landing import safe_run_id, write_atomic
from social_leadership.rebuilt_days import INCREMENTAL_WINDOWS, RebuiltDays, rebuilt_since, recorded
from social_leadership.serving_contracts import (
    ContractError,
    MartContract,
    check_contracts,
    read_contracts,
    referenced_tables,
)
from social_leadership.serving_lake import (
    LAKE_EXTENSIONS,
    attach_lake,
    ensure_catalog,
    open_with_extensions,
)
from social_leadership.settings import Settings
from social_leadership.sql import quote_identifier, quote_literal
from social_leadership.warehouse import MARTS_SCHEMA, connect, transaction
from social_leadership.warehouse_backend import (
    attach_working,
    describe_working,
    lake_extensions,
    uses_lake,
)

log = logging.getLogger(__name__)

WORKING_ALIAS = "working"
LAKE_ALIAS = "lake"
_WORKING_WINDOWS = f"{WORKING_ALIAS}.{INCREMENTAL_WINDOWS}"
FILE_ALIAS = "single_file"
# The oldest DuckDB whose clients must open the single-file copy (tested with 1.1.x). Every
# attach of the file names it (:func:`_attach_file`).
FILE_STORAGE_VERSION = "v1.1.0"
# The single file's format, recorded in its ``audit.serving_file_format``: a file of another
# (or no) format is built whole, never brought up to date in place. Format 2: every write
# attaches the file with its storage version. Files written before (no format recorded)
# were updated without it, which can leave a broken key index (:func:`_attach_file`).
FILE_FORMAT = 2
FILE_FORMAT_TABLE = "serving_file_format"
# The column the daily facts' rebuilt windows are counted in (dbt's incremental macros).
DATE_COLUMN = "metric_date"
# The working warehouse's run records copied into every serving form's ``audit`` schema.
RUN_HISTORY_TABLES = {
    "quality_results": "Every quality check of every run of the warehouse (GX gate).",
    "runs": "One row per DAG run: outcome, rows loaded, files and rows quarantined, checks.",
}

SYNTHETIC_NOTICE = (
    "SYNTHETIC DEMO DATA: generated for demonstration, not real figures about real people."
)

CURRENT_LINK = "current"
CURRENT_FILE = "CURRENT"
# Written into a publication folder when the pointers move off it: when it stopped being
# current (its retention counts from then) and which folder replaced it.
REPLACED_FILE = "replaced_at.json"
# Written into every publication folder: which publication it holds and its tables' files.
FOLDER_MANIFEST = "publication.json"
# Key-value metadata of every exported Parquet file.
RUN_ID_KEY = "slw_run_id"
PUBLISHED_AT_KEY = "slw_published_at"
PUBLICATION_ID_KEY = "slw_publication_id"
GRAIN_KEY = "slw_grain"
DESCRIPTION_KEY = "slw_description"
SYNTHETIC_KEY = "slw_contains_synthetic_data"
PRIMARY_KEY_KEY = "slw_primary_key"
FOREIGN_KEYS_KEY = "slw_joins"
COLUMN_DESCRIPTION_KEY = b"description"
VERSION_PREFIX = "publication-"
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_VERSION_NAME = re.compile(rf"^{VERSION_PREFIX}(?P<stamp>\d{{8}}T\d{{12}}Z)-.+$")
# Every temporary name a publish creates carries this marker; nothing else does.
TEMPORARY_MARKER = ".tmp-"

# How a table of the plan is published.
FULL = "full"
CHANGED_DAYS = "changed days"
UNCHANGED = "unchanged"


@dataclass(frozen=True)
class PublicationColumn:
    name: str
    data_type: str
    description: str
    required: bool = True


PUBLICATION_TABLE = "publication"
PUBLICATION_DATA_AS_OF_TABLE = "publication_data_as_of"
# Tables publish adds to schema marts beside dbt's marts: (columns, primary key, comment).
PUBLICATION_TABLES: dict[str, tuple[tuple[PublicationColumn, ...], tuple[str, ...], str]] = {
    PUBLICATION_TABLE: (
        (
            PublicationColumn("publication_id", "integer", "Sequence number of the publication."),
            PublicationColumn(
                "published_at",
                "timestamp with time zone",
                "When its publish began (UTC); readers saw it once the publish committed, "
                "the catalog's snapshot 'publication <publication_id>' (docs/bi.md).",
            ),
            PublicationColumn("run_id", "varchar", "Airflow run id of the publish."),
            PublicationColumn(
                "build_run_id", "varchar", "Airflow run id of the dbt build published.", False
            ),
            PublicationColumn(
                "build_finished_at",
                "timestamp with time zone",
                "When that dbt build finished (UTC).",
                False,
            ),
            PublicationColumn("table_name", "varchar", "Mart table (schema marts)."),
            PublicationColumn("row_count", "bigint", "Rows of the table in this publication."),
            PublicationColumn(
                "publish_mode",
                "varchar",
                "How the table was published: 'full' (rewritten), 'changed days' (the days "
                "the build recomputed, from republished_from on) or 'unchanged'.",
            ),
            PublicationColumn(
                "republished_from",
                "date",
                "First day republished when publish_mode is 'changed days'.",
                False,
            ),
            PublicationColumn(
                "contains_synthetic_data",
                "boolean",
                "True when the table holds synthetic (demo) rows.",
            ),
        ),
        ("publication_id", "table_name"),
        "Each publication of the marts, one row per table: when, from which dbt build, how "
        "many rows and how each table was published. Grain: publication x table.",
    ),
    PUBLICATION_DATA_AS_OF_TABLE: (
        (
            PublicationColumn("publication_id", "integer", "Publication (marts.publication)."),
            PublicationColumn("platform", "varchar", "Platform id."),
            PublicationColumn(
                "data_as_of",
                "date",
                "Day the platform's newest published counts describe; null when none loaded.",
                False,
            ),
            PublicationColumn(
                "days_behind",
                "integer",
                "Days between data_as_of and the build's freshness check, as of this "
                "publication (never updated: behind today is today in UTC - data_as_of).",
                False,
            ),
            PublicationColumn(
                "is_stale",
                "boolean",
                "True when older than SLW_STALE_PLATFORM_DAYS at the build's freshness "
                "check, as of this publication (never updated).",
                False,
            ),
        ),
        ("publication_id", "platform"),
        "Data as of per platform in each publication (from the build's freshness check). "
        "Grain: publication x platform.",
    ),
}


@dataclass(frozen=True)
class TableChange:
    """How one table is published: ``mode`` is FULL, CHANGED_DAYS (from ``since``) or
    UNCHANGED; ``reason`` says why, for the log and the audit."""

    table: str
    mode: str
    since: date | None = None
    reason: str = ""
    definition_changed: bool = False

    def describe(self) -> str:
        if self.mode == CHANGED_DAYS:
            return f"{self.mode} from {self.since}"
        return self.mode


@dataclass(frozen=True)
class Publication:
    run_id: str
    publication_id: int
    serving_path: Path
    lake_path: Path
    parquet_dir: Path
    # Each table's folder of Parquet files in this publication.
    parquet_paths: dict[str, Path]
    tables: tuple[str, ...]
    synthetic: bool
    published_at: datetime
    # Table -> how it was published ("full", "changed days from 2026-11-20", "unchanged").
    changes: dict[str, str] = field(default_factory=dict)
    # Whether the single file was rebuilt from scratch rather than updated from an earlier
    # one (the spare, or a copy of the last).
    serving_file_rebuilt: bool = True
    # Seconds the copy of the last single file took (on its own thread, beside the Parquet
    # staging): the one step of a daily publish that grows with history. None: nothing
    # copied (the spare updated, no file to copy, the file built whole from the start) or
    # the copy failed. A copy made and then set aside (the file built whole after a failed
    # update) still has its time.
    serving_file_copy_seconds: float | None = None
    # Whether the single file was updated from the spare (the file before last, kept at
    # the previous publish, see SLW_SERVING_FILE_SPARE) instead of a copy of the last.
    serving_file_from_spare: bool = False

    @property
    def tables_published(self) -> int:
        return len(self.tables)


@dataclass(frozen=True)
class _Previous:
    publication_id: int
    windows_recorded_until: datetime | None
    definitions: dict[str, str]
    # Which publication of which catalog: its run id and time (None: not recorded).
    stamp: tuple[str, datetime] | None = None
    # A single file's FILE_FORMAT (None: not recorded, or the catalog).
    file_format: int | None = None


@dataclass
class _Context:
    """What one publish knows once it has read the working warehouse and the catalog."""

    run_id: str
    published_at: datetime
    publication_id: int
    columns: dict[str, tuple[tuple[str, str], ...]]
    contracts: dict[str, MartContract]
    definitions: dict[str, str]
    partitioned: frozenset[str]
    counts: dict[str, int]
    synthetic_tables: dict[str, bool]
    windows_recorded_until: datetime | None
    # Tables of the working warehouse's audit schema, and each mart's column comments:
    # read before the catalog is attached, whose listing is slow.
    working_audit: frozenset[str]
    column_comments: dict[str, dict[str, str]]
    previous: _Previous | None = None
    plan: dict[str, TableChange] = field(default_factory=dict)
    # Per daily fact published by changed days: where its changed months' rows were read
    # into, once (the working table is scanned once, however many outputs need them).
    staged: dict[str, str] = field(default_factory=dict)

    def source(self, table: str) -> str:
        """Where to read ``table``'s rows to publish: the staged changed months, or all."""
        return self.staged.get(table) or _mart(WORKING_ALIAS, table)


def _temporary_path(final_path: Path, run_id: str) -> Path:
    # Airflow run ids hold ':' and '+'; keep the temporary name portable.
    return final_path.with_name(f"{final_path.name}{TEMPORARY_MARKER}{safe_run_id(run_id)}")


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _remove_duckdb_file(path: Path) -> None:
    """Remove a DuckDB file and the WAL beside it, if any."""
    _remove_quietly(path, Path(f"{path}.wal"))


def version_folder_name(run_id: str, became_current_at: datetime) -> str:
    """The folder of one publication's Parquet files, named by when it became current."""
    stamp = became_current_at.astimezone(UTC).strftime(_STAMP_FORMAT)
    return f"{VERSION_PREFIX}{stamp}-{safe_run_id(run_id)}"


def _became_current_at(name: str) -> datetime | None:
    match = _VERSION_NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], _STAMP_FORMAT).replace(tzinfo=UTC)


@contextmanager
def _publish_lock(settings: Settings) -> Iterator[None]:
    """Only one publish at a time: the debris sweep must never take a live publish's files.

    The pool already serialises publishes in Airflow; this also covers ``slw`` commands run
    beside it. The kernel drops the lock of a killed process.
    """
    lock_path = settings.serving_path.parent / f".{settings.serving_path.name}.publish-lock"
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_publish_debris(settings: Settings) -> list[Path]:
    """Remove what a killed publish left: temporary serving files (and their WAL) and
    temporary Parquet files and folders. Call only while holding the publish lock."""
    serving = settings.serving_path
    serving_prefix = f"{serving.name}{TEMPORARY_MARKER}"
    candidates = list(
        dict.fromkeys(
            [
                *(p for p in serving.parent.iterdir() if p.name.startswith(serving_prefix)),
                *(p for p in settings.serving_parquet_dir.iterdir() if _is_parquet_debris(p)),
            ]
        )
    )
    # A set renamed into place by a publish killed before either pointer moved to it: no
    # reader ever found it, and left there it would pass for the one that replaced the
    # current set, whose retention would count from the killed publish.
    candidates += never_current_sets(settings.serving_parquet_dir)
    for path in candidates:
        _remove_quietly(path)
    if candidates:
        log.warning(
            "removed %d leftover(s) of an interrupted publish: %s",
            len(candidates),
            ", ".join(sorted(p.name for p in candidates)),
        )
    return candidates


# The temporary names a publish gives what it writes in the Parquet folder (the set, the
# two pointers), and those of the flat layout before it (<table>.parquet.tmp-<run>). Other
# files in the folder are someone else's.
_PARQUET_DEBRIS = re.compile(
    rf"^(publication|{CURRENT_LINK}|{CURRENT_FILE}){re.escape(TEMPORARY_MARKER)}"
    rf"|\.parquet{re.escape(TEMPORARY_MARKER)}"
)


def _is_parquet_debris(path: Path) -> bool:
    return _PARQUET_DEBRIS.search(path.name) is not None


def _remove_flat_parquet_files(parquet_dir: Path, tables: tuple[str, ...]) -> None:
    # Versions before the versioned layout wrote <table>.parquet straight into the folder;
    # left there they would look current to a reader forever. Only the marts' names are
    # theirs: other Parquet files in the folder are someone else's.
    flat = [parquet_dir / f"{table}.parquet" for table in tables]
    stale = [p for p in flat if p.is_file() and not p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d Parquet file(s) of the old flat layout", len(stale))


def _publication_folders(parquet_dir: Path) -> list[str]:
    """The publication folders in ``parquet_dir``, oldest first (their names sort so)."""
    return sorted(
        path.name
        for path in parquet_dir.iterdir()
        if path.is_dir() and not path.is_symlink() and _became_current_at(path.name) is not None
    )


def pointer_targets(parquet_dir: Path) -> set[str]:
    """The publication folders ``current`` and ``CURRENT`` name: one, or two when a publish
    died between moving the one and the other; none before the first publish."""
    targets = set()
    link, pointer = parquet_dir / CURRENT_LINK, parquet_dir / CURRENT_FILE
    # One unreadable (a CURRENT someone rewrote in another encoding) names nothing: the
    # publish writes it anew.
    with suppress(OSError):
        targets.add(Path(os.readlink(link)).name)
    with suppress(OSError, ValueError):
        named = pointer.read_text(encoding="utf-8").strip()
        if named:
            targets.add(Path(named).name)
    return targets


def never_current_sets(parquet_dir: Path) -> list[Path]:
    """Publication folders a publish renamed into place and died before moving a pointer
    to: newer, by name, than every publication folder a pointer names (the pointers only
    move forward), and never recorded as replaced. None when no pointer names one (the
    folder was laid out by hand, or both pointers are gone): nothing tells then."""
    if not parquet_dir.is_dir():
        return []
    folders = _publication_folders(parquet_dir)
    named = pointer_targets(parquet_dir) & set(folders)
    if not named:
        return []
    newest = max(named)
    # A folder recorded as replaced was current: after it by name only because a clock
    # went back between two publishes.
    return [
        parquet_dir / name
        for name in folders
        if name > newest and not (parquet_dir / name / REPLACED_FILE).exists()
    ]


def _mark_replaced(parquet_dir: Path, folders: set[str], by: str, at: datetime) -> None:
    """Record in each of ``folders`` that the pointers left it for ``by`` at ``at``."""
    record = json.dumps({"replaced_at": at.astimezone(UTC).isoformat(), "replaced_by": by})
    for name in sorted(folders):
        target = parquet_dir / name / REPLACED_FILE
        temporary = _temporary_path(target, by)
        try:
            temporary.write_text(record, encoding="utf-8")
            os.replace(temporary, target)
        except OSError as error:
            # Its retention then counts from when the next folder was made, as before.
            log.warning("%s: not recorded as replaced (%s)", name, error)
            _remove_quietly(temporary)


def _replaced_at(folder: Path) -> datetime | None:
    """When the pointers left ``folder``, as recorded there (None: not recorded)."""
    try:
        record = json.loads((folder / REPLACED_FILE).read_text(encoding="utf-8"))
        return datetime.fromisoformat(record["replaced_at"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def prune_parquet_versions(
    parquet_dir: Path, current: str, retention: timedelta, now: datetime
) -> list[str]:
    """Remove publication folders that stopped being current more than ``retention`` ago.

    A folder stopped being current when the pointers left it (recorded in its
    :data:`REPLACED_FILE`); one replaced before that record existed, when the next folder
    (by name, which sorts by the time it was made) was made. A publication made long ago
    but replaced a minute ago stays for the whole retention, for the readers still reading
    it. ``current`` is never removed. Returns the names removed.
    """
    removed = []
    for name, successor in itertools.pairwise(_publication_folders(parquet_dir)):
        replaced_at = _replaced_at(parquet_dir / name) or _became_current_at(successor)
        if name == current or replaced_at is None or now - replaced_at <= retention:
            continue
        shutil.rmtree(parquet_dir / name, ignore_errors=True)
        removed.append(name)
    return removed


def _switch_current(parquet_dir: Path, version: str, run_id: str) -> None:
    """Point ``current`` and ``CURRENT`` at ``version``, each with one atomic rename."""
    link = parquet_dir / CURRENT_LINK
    new_link = _temporary_path(link, run_id)
    _remove_quietly(new_link)
    # Relative, so the folder can be moved or mounted elsewhere as a whole.
    new_link.symlink_to(version, target_is_directory=True)
    os.replace(new_link, link)
    pointer = parquet_dir / CURRENT_FILE
    new_pointer = _temporary_path(pointer, run_id)
    with new_pointer.open("w", encoding="utf-8") as handle:
        handle.write(version + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(new_pointer, pointer)


def _mart(alias: str, table: str) -> str:
    return f"{alias}.{MARTS_SCHEMA}.{quote_identifier(table)}"


def _column_list(columns: tuple[str, ...] | list[str]) -> str:
    return ", ".join(quote_identifier(column) for column in columns)


def _table_columns(
    con: duckdb.DuckDBPyConnection, alias: str
) -> dict[str, tuple[tuple[str, str], ...]]:
    rows = con.execute(
        "select table_name, column_name, data_type from duckdb_columns() "
        "where database_name = ? and schema_name = ? order by table_name, column_index",
        [alias, MARTS_SCHEMA],
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        tables.setdefault(table, []).append((column, data_type))
    return {table: tuple(columns) for table, columns in tables.items()}


def table_definition(
    columns: tuple[tuple[str, str], ...], contract: MartContract | None, *, keys: bool = True
) -> str:
    """The column list of a serving table's CREATE TABLE: NOT NULL where the contract
    requires it and, with ``keys``, its primary and foreign keys (DuckLake has none)."""
    required = contract.required_columns() if contract else frozenset()
    parts = [
        f"{quote_identifier(name)} {data_type}{' not null' if name in required else ''}"
        for name, data_type in columns
    ]
    if keys and contract and contract.primary_key:
        parts.append(f"primary key ({_column_list(contract.primary_key)})")
    if keys and contract:
        parts.extend(
            f"foreign key ({_column_list(key.columns)}) references "
            f"{quote_identifier(key.references)} ({_column_list(key.referenced_columns)})"
            for key in contract.foreign_keys
            if key.declared
        )
    return ", ".join(parts)


def _fingerprint(definition: str) -> str:
    return hashlib.sha256(definition.encode()).hexdigest()[:16]


def _publication_contracts() -> dict[str, MartContract]:
    return {
        table: MartContract(
            name=table,
            description=comment,
            primary_key=key,
            not_null=frozenset(column.name for column in columns if column.required),
            column_descriptions={column.name: column.description for column in columns},
        )
        for table, (columns, key, comment) in PUBLICATION_TABLES.items()
    }


def _publication_columns(table: str) -> tuple[tuple[str, str], ...]:
    return tuple((column.name, column.data_type) for column in PUBLICATION_TABLES[table][0])


def _schema_tables(con: duckdb.DuckDBPyConnection, alias: str, schema: str) -> frozenset[str]:
    rows = con.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = ?",
        [alias, schema],
    ).fetchall()
    return frozenset(row[0] for row in rows)


def _previous(con: duckdb.DuckDBPyConnection, alias: str) -> _Previous | None:
    """The publication ``alias`` (the catalog or a copy of the single file) holds, or None."""
    try:
        row = con.execute(
            f"select publication_id, windows_recorded_until from {alias}.audit.publish_cursor"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    if row is None:
        return None
    definitions = dict(
        con.execute(f"select table_name, definition from {alias}.audit.published_tables").fetchall()
    )
    recorded = None
    # Only a single file records its format: the catalog is not asked for a missing table.
    if alias == FILE_ALIAS:
        try:
            recorded = con.execute(
                f"select format from {alias}.audit.{FILE_FORMAT_TABLE}"
            ).fetchone()
        except duckdb.CatalogException:
            recorded = None
    return _Previous(
        int(row[0]),
        row[1],
        definitions,
        _stamp(con, alias, int(row[0])),
        int(recorded[0]) if recorded else None,
    )


def _stamp(
    con: duckdb.DuckDBPyConnection, alias: str, publication_id: int
) -> tuple[str, datetime] | None:
    """Publication ``publication_id``'s run id and time as ``alias`` records them."""
    try:
        row = con.execute(
            f"select run_id, published_at from {_mart(alias, PUBLICATION_TABLE)} "
            "where publication_id = ? limit 1",
            [publication_id],
        ).fetchone()
    except duckdb.CatalogException:
        return None
    return (row[0], row[1]) if row else None


def _windowed_tables(
    con: duckdb.DuckDBPyConnection,
    columns: dict[str, tuple[tuple[str, str], ...]],
    working_audit: frozenset[str],
) -> tuple[frozenset[str], datetime | None]:
    """The daily facts (marts whose dbt builds record the days they rebuilt, by
    ``metric_date``) and the newest record: a publish consumes the records up to it."""
    if "incremental_windows" not in working_audit:
        return frozenset(), None
    models, until = recorded(con, _WORKING_WINDOWS)
    partitioned = frozenset(
        table
        for table, table_columns in columns.items()
        if table in models and DATE_COLUMN in {name for name, _ in table_columns}
    )
    return partitioned, until


def plan_publication(
    definitions: dict[str, str],
    partitioned: frozenset[str],
    windows: dict[str, RebuiltDays],
    previous: _Previous | None,
) -> dict[str, TableChange]:
    """How each table is published, given what the catalog holds (``previous``)."""
    plan = {}
    for table, definition in definitions.items():
        if previous is None:
            plan[table] = TableChange(table, FULL, reason="first publication")
        elif previous.definitions.get(table) != _fingerprint(definition):
            plan[table] = TableChange(
                table, FULL, reason="new or changed table definition", definition_changed=True
            )
        elif table not in partitioned:
            plan[table] = TableChange(table, FULL, reason="replaced whole (not a daily fact)")
        elif table not in windows:
            plan[table] = TableChange(table, UNCHANGED, reason="not rebuilt since")
        elif windows[table].whole:
            plan[table] = TableChange(table, FULL, reason="rebuilt in full by dbt")
        else:
            plan[table] = TableChange(
                table, CHANGED_DAYS, since=windows[table].first_day, reason="days dbt recomputed"
            )
    return plan


def _holds_synthetic(
    con: duckdb.DuckDBPyConnection, table: str, columns: tuple[tuple[str, str], ...]
) -> bool | None:
    """Whether ``table`` shows synthetic data, by its own flags: an ``is_synthetic*``
    boolean that is true somewhere or a ``*synthetic*_pct``/``_ratio`` share above 0.
    None for a table without such flags (the publication's own flag then applies)."""
    checks = [
        f"bool_or({quote_identifier(name)})"
        for name, data_type in columns
        if name.startswith("is_synthetic") and data_type == "BOOLEAN"
    ] + [
        f"max({quote_identifier(name)}) > 0"
        for name, _ in columns
        if "synthetic" in name and name.endswith(("_pct", "_ratio"))
    ]
    if not checks:
        return None
    row = con.execute(
        f"select coalesce({' or '.join(checks)}, false) from {_mart(WORKING_ALIAS, table)}"
    ).fetchone()
    return bool(row and row[0])


def table_comment(
    table: str,
    contract: MartContract | None,
    run_id: str,
    published_at: datetime,
    *,
    synthetic: bool,
) -> str:
    """The comment each served table carries: what it is, its grain, whether synthetic
    data is inside, and where and when it was published."""
    parts = [SYNTHETIC_NOTICE] if synthetic else []
    if contract and contract.description:
        parts.append(contract.description)
    if contract and contract.grain:
        parts.append(f"Grain: {contract.grain.rstrip('.')}.")
    if contract and contract.primary_key:
        parts.append(f"Key: {', '.join(contract.primary_key)}.")
    if contract and contract.foreign_keys:
        parts.append(f"Joins: {'; '.join(key.describe() for key in contract.foreign_keys)}.")
    if not synthetic:
        parts.append("Holds no synthetic data.")
    parts.append(
        f"marts.{table} published by social_leadership run {run_id} "
        f"at {published_at.isoformat(timespec='seconds')}."
    )
    return " ".join(parts)


def _read_column_comments(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Each mart's column comments in the working warehouse (dbt's persist_docs)."""
    comments: dict[str, dict[str, str]] = {}
    for table, column, comment in con.execute(
        "select table_name, column_name, comment from duckdb_columns() "
        "where database_name = ? and schema_name = ? and comment is not null",
        [WORKING_ALIAS, MARTS_SCHEMA],
    ).fetchall():
        comments.setdefault(table, {})[column] = comment
    return comments


def _column_descriptions(ctx: _Context, table: str) -> dict[str, str]:
    """Each column's dbt description: the manifest's, else the working warehouse's comment."""
    contract = ctx.contracts.get(table)
    described = contract.column_descriptions if contract else {}
    stored = ctx.column_comments.get(table, {})
    return {
        column: described.get(column) or stored[column]
        for column, _ in ctx.columns[table]
        if described.get(column) or stored.get(column)
    }


def _comment_all(con: duckdb.DuckDBPyConnection, alias: str, ctx: _Context) -> None:
    contracts = {**ctx.contracts, **_publication_contracts()}
    for table in [*ctx.columns, *PUBLICATION_TABLES]:
        contract = contracts.get(table)
        synthetic = ctx.synthetic_tables.get(table, False)
        comment = table_comment(table, contract, ctx.run_id, ctx.published_at, synthetic=synthetic)
        con.execute(f"comment on table {_mart(alias, table)} is {quote_literal(comment)}")
        described = (
            contract.column_descriptions
            if table in PUBLICATION_TABLES and contract
            else _column_descriptions(ctx, table)
        )
        for column, text in described.items():
            con.execute(
                f"comment on column {_mart(alias, table)}.{quote_identifier(column)} "
                f"is {quote_literal(text)}"
            )


def _working_counts(con: duckdb.DuckDBPyConnection, tables: list[str]) -> dict[str, int]:
    return {
        table: int(con.execute(f"select count(*) from {_mart(WORKING_ALIAS, table)}").fetchone()[0])
        for table in tables
    }


def _latest_build(
    con: duckdb.DuckDBPyConnection, ctx: _Context
) -> tuple[str | None, datetime | None, bool | None]:
    if "dbt_builds" not in ctx.working_audit:
        return None, None, None
    row = con.execute(
        f"select run_id, finished_at, full_refresh from {WORKING_ALIAS}.audit.dbt_builds "
        "order by finished_at desc limit 1"
    ).fetchone()
    return (row[0], row[1], row[2]) if row else (None, None, None)


def _record_publication(con: duckdb.DuckDBPyConnection, alias: str, ctx: _Context) -> None:
    """Add this publication's rows to ``marts.publication*`` and move the cursor."""
    build_run_id, build_finished_at, _ = _latest_build(con, ctx)
    for table, change in ctx.plan.items():
        con.execute(
            f"insert into {_mart(alias, PUBLICATION_TABLE)} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ctx.publication_id,
                ctx.published_at,
                ctx.run_id,
                build_run_id,
                build_finished_at,
                table,
                ctx.counts[table],
                change.mode,
                change.since,
                ctx.synthetic_tables.get(table, False),
            ],
        )
    if "platform_data_as_of" in ctx.working_audit:
        source = f"{WORKING_ALIAS}.audit.platform_data_as_of"
        con.execute(
            f"insert into {_mart(alias, PUBLICATION_DATA_AS_OF_TABLE)} "
            f"select {ctx.publication_id}, platform, max(data_as_of), min(days_behind), "
            f"bool_or(is_stale) from {source} "
            f"where checked_at = (select max(checked_at) from {source}) group by platform"
        )
    con.execute(f"create schema if not exists {alias}.audit")
    con.execute(
        f"create or replace table {alias}.audit.publish_cursor "
        "(publication_id integer not null, windows_recorded_until timestamp with time zone)"
    )
    con.execute(
        f"insert into {alias}.audit.publish_cursor values (?, ?)",
        [ctx.publication_id, ctx.windows_recorded_until],
    )
    con.execute(
        f"create or replace table {alias}.audit.published_tables "
        "(table_name varchar not null, definition varchar not null)"
    )
    for table, definition in ctx.definitions.items():
        con.execute(
            f"insert into {alias}.audit.published_tables values (?, ?)",
            [table, _fingerprint(definition)],
        )
    copy_freshness_to_serving(con, WORKING_ALIAS, alias)
    _copy_run_history(con, alias, ctx)


def _record_file_format(con: duckdb.DuckDBPyConnection) -> None:
    """Record :data:`FILE_FORMAT` in the single file (attached as ``FILE_ALIAS``)."""
    table = f"{FILE_ALIAS}.audit.{FILE_FORMAT_TABLE}"
    con.execute(f"create or replace table {table} (format integer not null)")
    con.execute(f"insert into {table} values (?)", [FILE_FORMAT])
    con.execute(
        f"comment on table {table} is "
        + quote_literal(
            "The format of this file, for the publish that brings it up to date (a file of "
            "another format is built whole)."
        )
    )


def _attach_file(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Attach the single file at ``path`` (new or not) as ``FILE_ALIAS``, for writing.

    Always with :data:`FILE_STORAGE_VERSION`: DuckDB 1.5.5 (1.5.6 and 2.0.1 too) attaching
    a v1.1.0 file without naming its storage version, then checkpointing it while a
    table's primary-key index is left unchanged (a write to another table, a comment),
    breaks that index: the next insert into the table fails ('node without metadata in
    ARTOperator::Insert') or crashes the process.
    """
    con.execute(
        f"attach {quote_literal(str(path))} as {FILE_ALIAS} "
        f"(storage_version {quote_literal(FILE_STORAGE_VERSION)})"
    )


def _copy_run_history(con: duckdb.DuckDBPyConnection, alias: str, ctx: _Context) -> None:
    """Replace the serving copy's :data:`RUN_HISTORY_TABLES` with the working warehouse's,
    whole: readers of the serving copy alone (the weekly report) count quality checks and
    quarantined files of any past week from them. Each grows by a few rows per run."""
    for table, comment in RUN_HISTORY_TABLES.items():
        con.execute(f"drop table if exists {alias}.audit.{table}")
        if table not in ctx.working_audit:
            continue
        con.execute(
            f"create table {alias}.audit.{table} as select * from {WORKING_ALIAS}.audit.{table}"
        )
        con.execute(f"comment on table {alias}.audit.{table} is {quote_literal(comment)}")


def _ensure_publication_tables(con: duckdb.DuckDBPyConnection, alias: str, *, keys: bool) -> None:
    contracts = _publication_contracts()
    for table in PUBLICATION_TABLES:
        definition = table_definition(_publication_columns(table), contracts[table], keys=keys)
        con.execute(f"create table if not exists {_mart(alias, table)} ({definition})")


def _replace_rows(
    con: duckdb.DuckDBPyConnection, ctx: _Context, alias: str, table: str, change: TableChange
) -> None:
    target, source = _mart(alias, table), ctx.source(table)
    if change.mode == CHANGED_DAYS:
        date_column = quote_identifier(DATE_COLUMN)
        con.execute(f"delete from {target} where {date_column} >= ?", [change.since])
        con.execute(
            f"insert into {target} by name select * from {source} where {date_column} >= ?",
            [change.since],
        )
    elif change.mode == FULL:
        con.execute(f"delete from {target}")
        con.execute(f"insert into {target} by name select * from {source}")


def _count(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> int:
    return int(con.execute(f"select count(*) from {_mart(alias, table)}").fetchone()[0])


# Each publication's snapshot of the catalog is committed under this author, with the
# message "publication <id>" (and its id and data day as JSON in the extra info): readers
# find a publication's snapshot by it (docs/bi.md, time travel), and the next publish finds
# what other sessions committed since.
LAKE_COMMIT_AUTHOR = "social-leadership-warehouse"
# What the catalog's own maintenance commits (merge_adjacent_files, rewrite_data_files,
# flush_inlined_data): files rewritten, no row of any table changed.
_MAINTENANCE_CHANGES = frozenset({"merge_adjacent", "rewrite_delete", "flushed_inlined"})


@dataclass(frozen=True)
class ForeignCommit:
    """A snapshot of the serving catalog that no publish made: a session that attached it
    without ``(read_only)`` and changed it."""

    snapshot_id: int
    author: str | None
    changes: tuple[str, ...]

    def describe(self) -> str:
        by = f" by {self.author}" if self.author else ""
        return f"snapshot {self.snapshot_id}{by} ({', '.join(self.changes)})"


def foreign_commits(con: duckdb.DuckDBPyConnection, alias: str) -> list[ForeignCommit]:
    """The snapshots of the catalog attached as ``alias`` since its last publication that
    no publish made (none before the first publication that named itself). An UPDATE of a
    mart keeps its row count, all a publish compares, and the days outside the rebuild
    window are never written again: such a change stayed served for good."""
    rows = con.execute(
        f"""
        with snapshots as (select * from ducklake_snapshots({quote_literal(alias)})),
        ours as (
            select max(snapshot_id) as last from snapshots
            where author = $author and starts_with(commit_message, 'publication ')
        )
        select snapshot_id, author, map_keys(changes)
        from snapshots, ours
        where snapshot_id > ours.last
        order by snapshot_id
        """,
        {"author": LAKE_COMMIT_AUTHOR},
    ).fetchall()
    return [
        ForeignCommit(int(snapshot), author, tuple(changes or ()))
        for snapshot, author, changes in rows
        if not set(changes or ()) <= _MAINTENANCE_CHANGES
    ]


def _publish_to_lake(con: duckdb.DuckDBPyConnection, ctx: _Context) -> None:
    """Apply the plan to the catalog in one transaction: one new snapshot for readers,
    committed as this publication's (:data:`LAKE_COMMIT_AUTHOR`). A catalog another session
    changed since the last publication (:func:`foreign_commits`) has every table rewritten
    from the warehouse, saying so."""
    foreign = foreign_commits(con, LAKE_ALIAS)
    if foreign:
        log.warning(
            "the serving catalog was changed since the last publication by a session that "
            "attached it without (read_only): %s; every table of it is rewritten from the "
            "warehouse (readers attach it read-only: docs/bi.md)",
            "; ".join(commit.describe() for commit in foreign),
        )
    extra = json.dumps(
        {"publication_id": ctx.publication_id, "published_at": ctx.published_at.isoformat()}
    )
    with transaction(con):
        con.execute(
            "call ducklake_set_commit_message(?, ?, ?, extra_info => ?)",
            [LAKE_ALIAS, LAKE_COMMIT_AUTHOR, f"publication {ctx.publication_id}", extra],
        )
        con.execute(f"create schema if not exists {LAKE_ALIAS}.{MARTS_SCHEMA}")
        served = set(ctx.previous.definitions) if ctx.previous else set()
        for table in served - set(ctx.columns):
            con.execute(f"drop table if exists {_mart(LAKE_ALIAS, table)}")
        if foreign:
            _drop_foreign_relations(con, ctx)
        for table, planned in ctx.plan.items():
            change = planned
            if foreign:
                # From the warehouse's table, not the rows staged for the changed days.
                ctx.staged.pop(table, None)
                change = TableChange(table, FULL, reason="catalog changed by another session")
            # Created anew after another session's change: a column added, the table
            # dropped or its comments changed.
            if planned.definition_changed or table not in served or foreign:
                definition = table_definition(
                    ctx.columns[table], ctx.contracts.get(table), keys=False
                )
                con.execute(f"drop table if exists {_mart(LAKE_ALIAS, table)}")
                con.execute(f"create table {_mart(LAKE_ALIAS, table)} ({definition})")
            _replace_rows(con, ctx, LAKE_ALIAS, table, change)
            if _count(con, LAKE_ALIAS, table) != ctx.counts[table]:
                log.warning(
                    "serving catalog's %s did not match the warehouse after %s: rewriting it",
                    table,
                    change.describe(),
                )
                ctx.staged.pop(table, None)
                _replace_rows(con, ctx, LAKE_ALIAS, table, TableChange(table, FULL))
        _ensure_publication_tables(con, LAKE_ALIAS, keys=False)
        _record_publication(con, LAKE_ALIAS, ctx)
        _comment_all(con, LAKE_ALIAS, ctx)


def _drop_foreign_relations(con: duckdb.DuckDBPyConnection, ctx: _Context) -> None:
    """Drop the tables and views of the catalog's marts that no publish makes (another
    session's): readers would take them for published marts."""
    ours = set(ctx.columns) | set(PUBLICATION_TABLES)
    for name, kind in con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_catalog = ? and table_schema = ?",
        [LAKE_ALIAS, MARTS_SCHEMA],
    ).fetchall():
        if name not in ours:
            what = "view" if kind == "VIEW" else "table"
            log.warning("dropping %s marts.%s, which no publish made", what, name)
            con.execute(f"drop {what} if exists {_mart(LAKE_ALIAS, name)}")


def _maintain_lake(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Keep the catalog small: merge the small files daily publishes add, and drop
    snapshots (and the files only they use) older than the time-travel retention.

    Runs after the publication is complete: a failure here is logged, and the next
    publish tries again, but never fails a publication that readers already see."""
    try:
        _compact_lake(con, settings)
    except duckdb.Error as error:
        log.warning("serving catalog maintenance failed (the next publish retries): %s", error)


def _compact_lake(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    older_than = datetime.now(tz=UTC) - timedelta(days=settings.serving_snapshot_retention_days)
    con.execute(f"call ducklake_merge_adjacent_files({quote_literal(LAKE_ALIAS)})")
    con.execute(
        f"call ducklake_expire_snapshots({quote_literal(LAKE_ALIAS)}, older_than => ?)",
        [older_than],
    )
    con.execute(
        f"call ducklake_cleanup_old_files({quote_literal(LAKE_ALIAS)}, older_than => ?)",
        [older_than],
    )


def _creation_order(ctx: _Context) -> list[str]:
    """Every table after the tables its foreign keys reference (a dimension may reference
    another: an executive version its company), so each reference exists when declared."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(table: str) -> None:
        if table in ordered or table not in ctx.columns:
            return
        if table in visiting:
            raise ContractError(f"foreign keys form a cycle through {table}")
        visiting.add(table)
        contract = ctx.contracts.get(table)
        for key in contract.foreign_keys if contract else ():
            visit(key.references)
        visiting.discard(table)
        ordered.append(table)

    for table in sorted(ctx.columns):
        visit(table)
    return ordered


def _build_file(con: duckdb.DuckDBPyConnection, ctx: _Context) -> None:
    """Create and fill every table of a new single file, inside the caller's transaction;
    on an error the caller leaves the file's schema (``use memory``)."""
    con.execute(f"create schema {FILE_ALIAS}.{MARTS_SCHEMA}")
    con.execute(f"use {FILE_ALIAS}.{MARTS_SCHEMA}")
    # A table other marts reference is created with its keys: DuckDB 1.5 fails an insert
    # that checks a foreign key against a primary key added by ALTER TABLE in the same
    # transaction (an internal error). A table that declares a foreign key keeps its keys in
    # its CREATE TABLE too (DuckDB cannot add a foreign key later).
    referenced = referenced_tables(ctx.contracts)
    for table in _creation_order(ctx):
        contract = ctx.contracts.get(table)
        # A primary key added once the rows are in costs about a third less than one kept
        # up row by row (3-year bench warehouse: the daily fact's 11 million rows 15-20 s
        # against 26-28 s, insert and commit). DuckDB checks it at commit.
        key_after = (
            contract is not None
            and bool(contract.primary_key)
            and table not in referenced
            and not contract.declares_foreign_key
        )
        definition = table_definition(ctx.columns[table], contract, keys=not key_after)
        con.execute(f"create table {quote_identifier(table)} ({definition})")
        con.execute(
            f"insert into {_mart(FILE_ALIAS, table)} by name "
            f"select * from {_mart(WORKING_ALIAS, table)}"
        )
        if key_after:
            con.execute(
                f"alter table {quote_identifier(table)} "
                f"add primary key ({_column_list(contract.primary_key)})"
            )
    _ensure_publication_tables(con, FILE_ALIAS, keys=True)
    con.execute("use memory")
    if ctx.previous is not None:
        for table in PUBLICATION_TABLES:
            con.execute(
                f"insert into {_mart(FILE_ALIAS, table)} select * from {_mart(LAKE_ALIAS, table)}"
            )


class DuplicateKeyError(duckdb.ConstraintException):
    """A mart of the working warehouse repeats its primary key: no serving file can hold
    it, so the publish stops without building the file again."""


def _duplicate_key(con: duckdb.DuckDBPyConnection, ctx: _Context) -> str | None:
    """The first mart of the working warehouse whose rows repeat a primary key, with one
    repeated key; None when every key is unique, or when the search itself fails (logged:
    the caller then raises the error it had). Asked only once a write failed."""
    try:
        for table, contract in sorted(ctx.contracts.items()):
            if not contract.primary_key:
                continue
            columns = _column_list(contract.primary_key)
            duplicate = con.execute(
                f"select {columns} from {_mart(WORKING_ALIAS, table)} group by all "
                "having count(*) > 1 order by all limit 1"
            ).fetchone()
            if duplicate is not None:
                return (
                    f"{table}: duplicate key ({', '.join(contract.primary_key)}) = "
                    f"({', '.join(map(repr, duplicate))}) in "
                    f"{WORKING_ALIAS}.{MARTS_SCHEMA}.{table}: "
                    "a mart's primary key must be unique (its dbt tests say so too)"
                )
    except duckdb.Error as error:
        log.warning("could not look for a repeated key in the marts: %s", error)
    return None


def _update_file(con: duckdb.DuckDBPyConnection, ctx: _Context) -> None:
    """Bring an earlier single file (attached as ``FILE_ALIAS``) up to this publication in
    place, as ``ctx.plan`` says (planned from the publication the file holds).

    A table others reference (a dimension) cannot be emptied while facts point at it, so it
    is upserted on its key and loses only the keys the warehouse no longer has; the facts
    lose their changed rows before that and get the new ones after.
    """
    referenced = referenced_tables(ctx.contracts)
    facts = [t for t in ctx.plan if t not in referenced]
    dimensions = [t for t in _creation_order(ctx) if t in referenced]
    # A fact keyed by day has its changed days merged row by row (most of a rebuilt
    # window's rows come back as they were, and each row deleted and inserted again costs
    # its key's index, which grows with history); another's are replaced. Not one with a
    # declared foreign key: its rows kept until the upsert would still reference the
    # dimension keys deleted before it.
    merged = {
        t
        for t in facts
        if ctx.plan[t].mode == CHANGED_DAYS
        and (contract := ctx.contracts.get(t)) is not None
        and DATE_COLUMN in contract.primary_key
        and not contract.declares_foreign_key
    }
    for table in facts:
        change = ctx.plan[table]
        target = _mart(FILE_ALIAS, table)
        if table in merged:
            _delete_missing_keys(con, table, ctx, since=change.since)
        elif change.mode == CHANGED_DAYS:
            con.execute(
                f"delete from {target} where {quote_identifier(DATE_COLUMN)} >= ?", [change.since]
            )
        elif change.mode == FULL:
            con.execute(f"delete from {target}")
    # Keys gone from a dimension go once nothing references them any more (its referrers'
    # stale rows first), new and changed rows come in before the rows that reference them.
    for table in reversed(dimensions):
        _delete_missing_keys(con, table, ctx)
    for table in dimensions:
        _upsert_changed_rows(con, table, ctx)
    for table in facts:
        change = ctx.plan[table]
        source, target = ctx.source(table), _mart(FILE_ALIAS, table)
        if table in merged:
            _upsert_changed_rows(con, table, ctx, since=change.since)
        elif change.mode == CHANGED_DAYS:
            con.execute(
                f"insert into {target} by name select * from {source} "
                f"where {quote_identifier(DATE_COLUMN)} >= ?",
                [change.since],
            )
        elif change.mode == FULL:
            con.execute(f"insert into {target} by name select * from {source}")


def _delete_missing_keys(
    con: duckdb.DuckDBPyConnection, table: str, ctx: _Context, *, since: date | None = None
) -> None:
    """Delete the rows of ``table`` in the file whose key the warehouse no longer has (of
    the days from ``since`` only, when given)."""
    key = ctx.contracts[table].primary_key
    source, target = _mart(WORKING_ALIAS, table), _mart(FILE_ALIAS, table)
    matches = " and ".join(
        f"kept.{quote_identifier(c)} = served.{quote_identifier(c)}" for c in key
    )
    if since is None:
        con.execute(
            f"delete from {target} as served where not exists "
            f"(select 1 from {source} as kept where {matches})"
        )
        return
    source, day = ctx.source(table), quote_identifier(DATE_COLUMN)
    con.execute(
        f"delete from {target} as served where served.{day} >= $since and not exists "
        f"(select 1 from {source} as kept where kept.{day} >= $since and {matches})",
        {"since": since},
    )


def _upsert_changed_rows(
    con: duckdb.DuckDBPyConnection, table: str, ctx: _Context, *, since: date | None = None
) -> None:
    """Insert or update the rows of ``table`` (of the days from ``since`` only, when
    given) that differ from the file's on its key."""
    key = ctx.contracts[table].primary_key
    names = [name for name, _ in ctx.columns[table]]
    others = [name for name in names if name not in key]
    source, target = _mart(WORKING_ALIAS, table), _mart(FILE_ALIAS, table)
    params: dict[str, object] = {}
    if since is not None:
        day = quote_identifier(DATE_COLUMN)
        source = f"(select * from {ctx.source(table)} where {day} >= $since)"
        target = f"(select * from {target} where {day} >= $since)"
        params["since"] = since
    update = (
        "do update set "
        + ", ".join(f"{quote_identifier(c)} = excluded.{quote_identifier(c)}" for c in others)
        if others
        else "do nothing"
    )
    # Only the rows that differ: rewriting an unchanged row that others reference is
    # needless work and, for DuckDB, a delete of a referenced key.
    columns = _column_list(names)
    con.execute(
        f"insert into {_mart(FILE_ALIAS, table)} ({columns}) select {columns} from "
        f"(select {columns} from {source} except select {columns} from {target}) "
        f"on conflict ({_column_list(key)}) {update}",
        params,
    )


def _add_publications_since(con: duckdb.DuckDBPyConnection, publication_id: int) -> None:
    """Give a file that holds publication ``publication_id`` the catalog's records of the
    publications after it (this one's are added by ``_record_publication``)."""
    for table in PUBLICATION_TABLES:
        con.execute(
            f"insert into {_mart(FILE_ALIAS, table)} select * from {_mart(LAKE_ALIAS, table)} "
            "where publication_id > ?",
            [publication_id],
        )


class _FileMismatchError(RuntimeError):
    """The updated single file does not match the warehouse; it is rebuilt whole."""


class _FileCopy:
    """The current single file copied to the staging path on a thread of its own, started
    once the publication is planned and no spare could be used: the copy (a read and a
    write of the whole file, the one step of a daily publish that grows with history) runs
    while the publish writes the Parquet set, instead of before the update that needs it."""

    def __init__(self, source: Path, target: Path) -> None:
        self.target = target
        self.seconds: float | None = None
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        self._held: bool | None = None
        if source.is_file():
            self._thread = threading.Thread(
                target=self._copy, args=(source,), name="serving-file-copy", daemon=True
            )
            self._thread.start()

    def _copy(self, source: Path) -> None:
        started = time.perf_counter()
        try:
            shutil.copyfile(source, self.target)
            self.seconds = time.perf_counter() - started
            size_mib = self.target.stat().st_size / 2**20
        except Exception as error:  # reported by wait(), which the publish always calls
            self._error = error
            self.seconds = None
            return
        log.info("copied the serving file (%.0f MiB) in %.2f s", size_mib, self.seconds)

    def wait(self) -> bool:
        """Wait for the copy to end; True when the staging path holds it."""
        if self._held is None:
            if self._thread is not None:
                self._thread.join()
            if self._error is not None:
                log.warning("copying the serving file failed (%s): building it whole", self._error)
            self._held = self._thread is not None and self._error is None
        return self._held

    def discard(self) -> None:
        """Wait for the copy to end and remove it (the file is built whole instead)."""
        self.wait()
        _remove_duckdb_file(self.target)


def spare_path(serving_path: Path) -> Path:
    """Where the replaced single file is kept for the next publish to update in place."""
    return serving_path.with_name(f".{serving_path.name}.spare")


# What changes a published single file: a BI session that opened it read-write (DuckDB's
# command line and most drivers do unless told read-only) and wrote to it.
_WRITTEN_BY = "a session that opened it read-write"


def _stamp_path(serving_path: Path) -> Path:
    """Where the last publish recorded the single file and the spare as it left them."""
    return serving_path.with_name(f".{serving_path.name}.stamp")


def _identity(path: Path) -> list[int] | None:
    """The file at ``path`` as a publish leaves it: size and modification time (a write
    changes the time; not the inode, which a FUSE or SMB mount may number anew each time);
    None if there is none."""
    try:
        found = path.stat()
    except OSError:
        return None
    return [found.st_size, found.st_mtime_ns]


def _read_stamp(settings: Settings) -> dict[str, Any]:
    """What the last publish recorded (empty before the first, or if unreadable)."""
    try:
        stamp = json.loads(_stamp_path(settings.serving_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _write_stamp(
    settings: Settings, publication_id: int, file: list[int] | None, spare: list[int] | None
) -> None:
    """Record the single file and the spare as this publish left them (``file``, ``spare``:
    their identities taken before the swap, so that a write right after it is a change),
    for the next publish to tell whether somebody wrote to either since. Never fails the
    publish (it is done): a stamp not written only means the next publish cannot tell."""
    stamp = {"publication_id": publication_id, "file": file, "spare": spare}
    path = _stamp_path(settings.serving_path)
    temporary = path.with_name(f"{path.name}{TEMPORARY_MARKER}stamp")
    try:
        write_atomic(path, json.dumps(stamp).encode(), partial=temporary)
    except OSError as error:
        log.warning("could not record the serving file's stamp in %s: %s", path, error)


def _stray_wal(settings: Settings) -> Path:
    """The write-ahead log DuckDB keeps beside the single file for a session writing to
    it: never the publish's own (it writes the file under another name)."""
    return Path(f"{settings.serving_path}.wal")


def _touched(settings: Settings) -> str | None:
    """How the current single file differs from the one the last publish left, or None:
    a write-ahead log beside it (changes a session has not yet written into the file,
    which every reader opening it would replay), or a write into the file itself."""
    wal = _stray_wal(settings)
    if wal.exists():
        return f"{_WRITTEN_BY} left its write-ahead log {wal.name} beside it"
    current = _identity(settings.serving_path)
    if current is None:
        return None
    return _changed(current, _read_stamp(settings).get("file"), "its publish")


def _changed(current: list[int] | None, recorded: Any, since: str) -> str | None:
    """How a file whose identity is ``current`` changed since ``since`` (the publish that
    recorded it as ``recorded``), or None (unchanged, or nothing recorded). Which of the
    two changed it, size and time cannot tell."""
    if not isinstance(recorded, list) or current == recorded:
        return None
    return f"it changed after {since} ({_WRITTEN_BY}, or another file put in its place)"


def _write_protect(path: Path) -> None:
    """Take the write permissions off the single file before it is published: a client
    that opens it without read_only (DuckDB's default, JDBC's and ODBC's unless told) is
    then refused at once, where its session locked every other reader out, and what it
    wrote after the next publish went into the new file's log, which readers replay. (A
    process of root still opens it so; the publish gives its owner write permission back
    when it takes the file as its spare.)"""
    try:
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) & ~_WRITE_PERMISSIONS)
    except OSError as error:  # a file system without permissions (some mounts)
        log.info("could not write-protect %s: %s", path, error)


_WRITE_PERMISSIONS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def _replace_write_protected(source: Path, target: Path) -> None:
    """``os.replace`` onto a write-protected file: a file system that takes its permissions
    for the DOS read-only attribute (SMB without Unix extensions, WSL's drives) refuses
    that, and the file is given its owner's write permission back for the rename alone."""
    try:
        os.replace(source, target)
    except PermissionError:
        if not target.is_file():
            raise
        _give_owner_write(target)
        os.replace(source, target)


def _give_owner_write(path: Path) -> None:
    """Give a write-protected file (:func:`_write_protect`) its owner's write permission."""
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)


def _discard_stray_wal(settings: Settings) -> None:
    """Remove a session's write-ahead log from beside the single file: readers opening the
    file would apply its changes to whatever file has that name, the new publication too.
    The session keeps its own view of the old file."""
    wal = _stray_wal(settings)
    with suppress(FileNotFoundError):
        size = wal.stat().st_size
        wal.unlink()
        log.warning(
            "removed %s (%d bytes): %s wrote to the serving file; its changes are in no "
            "publication (BI tools must open it read-only)",
            wal,
            size,
            _WRITTEN_BY,
        )


def _held_open(path: Path) -> bool | None:
    """Whether any process of this host, this one included, holds ``path``'s file open
    (through any of its names); None when this cannot be told here.

    Asked with a write lease, which Linux grants only on a file nobody else has open, and
    given back at once. DuckDB's own file lock does not tell it: a POSIX lock belongs to a
    process and goes when that process closes any descriptor of the file (a client that
    opened it in two DuckDB instances and closed one still reads it, unlocked), and it
    never stops the process that holds it. Without leases (another system, a network file
    system, ``fs.leases-enable`` off) the answer is None.
    """
    set_lease = getattr(fcntl, "F_SETLEASE", None)
    if set_lease is None:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        # An open by another process breaks the lease and signals its holder, with SIGIO
        # by default, which would end this process: SIGURG instead, ignored by default.
        fcntl.fcntl(descriptor, fcntl.F_SETSIG, signal.SIGURG)
        try:
            fcntl.fcntl(descriptor, set_lease, fcntl.F_WRLCK)
        except OSError as error:
            return True if error.errno in (errno.EAGAIN, errno.EBUSY) else None
        # An open that came while the lease was held is breaking it: the file is held.
        broken = fcntl.fcntl(descriptor, fcntl.F_GETLEASE) != fcntl.F_WRLCK
        fcntl.fcntl(descriptor, set_lease, fcntl.F_UNLCK)
        return broken
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _leases_tell(settings: Settings) -> bool:
    """Whether this file system can tell that nobody holds a file: a write lease on a new
    file of the serving folder is granted (not on a network file system, which refuses or
    lacks leases, nor where the publishing user may not take them)."""
    probe = _temporary_path(settings.serving_path, "lease-probe")
    try:
        probe.write_bytes(b"")
        return _held_open(probe) is False
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)


class _SpareFile:
    """The file before last, moved to the staging path to be updated in place: nothing
    to copy. Same interface as :class:`_FileCopy`."""

    seconds: float | None = None

    def __init__(self, target: Path) -> None:
        self.target = target

    def wait(self) -> bool:
        return True

    def discard(self) -> None:
        _remove_duckdb_file(self.target)


def _spare_held(target: Path, recorded: list[int] | None) -> tuple[_Previous | None, str | None]:
    """The publication the spare (moved to ``target``) holds, or why it cannot be used.
    ``recorded``: its identity when the last publish kept it (None: not recorded)."""
    if target.stat().st_nlink > 1:
        return None, "it has another name (a hard link)"
    if (changed := _changed(_identity(target), recorded, "it was replaced")) is not None:
        return None, changed
    held_open = _held_open(target)
    if held_open is None:
        return None, "this system cannot tell whether a reader holds it (no file lease)"
    if held_open:
        return None, "a reader still has it open"
    try:
        # Published write-protected (_write_protect): its owner may write it again, once
        # it is known to be the spare alone (not the current file under another name).
        _give_owner_write(target)
    except OSError as error:
        return None, f"it cannot be made writable again ({error})"
    con = duckdb.connect()
    try:
        _attach_file(con, target)
        held = _previous(con, FILE_ALIAS)
    except duckdb.Error as error:
        return None, f"it cannot be opened for writing ({str(error).splitlines()[0]})"
    finally:
        con.close()
    return (held, None) if held is not None else (None, "it holds no publication")


def _take_spare(
    settings: Settings, target: Path, con: duckdb.DuckDBPyConnection, ctx: _Context
) -> _SpareFile | None:
    """The spare moved to ``target`` when it can be brought up to this publication there,
    else None (the spare is then removed, and the caller copies the current file).

    Never a file somebody still reads: a client that opened the single file before the
    last publish, and has not reconnected, still holds the spare (:func:`_held_open`). Nor
    a file with another name (a hard link made by hand, or the current file itself after a
    publish killed between keeping the spare and the swap), nor a symbolic link.
    """
    spare = spare_path(settings.serving_path)
    if not settings.serving_file_spare:
        if spare.exists() or spare.is_symlink():
            log.info("SLW_SERVING_FILE_SPARE is off: removing %s", spare)
            _remove_quietly(spare)
        return None
    if spare.is_symlink():
        held, reason = None, "it is a symbolic link"
        _remove_quietly(spare)
    elif not spare.is_file():
        return None
    else:
        try:
            os.replace(spare, target)
            held, reason = _spare_held(target, _read_stamp(settings).get("spare"))
        except OSError as error:
            held, reason = None, f"it cannot be moved or read ({error})"
    if held is not None:
        try:
            brought_up = _file_context(con, ctx, held) is not None
        except duckdb.Error as error:
            log.warning("could not plan the spare serving file's update: %s", error)
            brought_up = False
        if not brought_up:
            reason = f"it holds publication {held.publication_id}, which cannot be brought up"
    if reason is not None:
        log.info(
            "not updating the spare serving file in place: %s; copying the current one", reason
        )
        # Unlinked only: a reader that holds it keeps reading it.
        _remove_duckdb_file(target)
        return None
    assert held is not None
    log.info("updating the spare serving file (publication %d) in place", held.publication_id)
    return _SpareFile(target)


def _earlier_file(
    settings: Settings,
    target: Path,
    con: duckdb.DuckDBPyConnection,
    ctx: _Context,
    touched: str | None,
) -> _FileCopy | _SpareFile | None:
    """The earlier single file this publication updates, at ``target``: the spare, else a
    copy of the current file (on its own thread); None when the file is built whole (the
    first publication, a changed definition, a current file written since the last
    publish: ``touched`` says how)."""
    if not _same_tables(ctx):
        return None
    if touched is not None:
        log.warning(
            "the serving file %s is not as the last publish left it: %s; building it whole "
            "from the warehouse, without those changes (BI tools must open it read-only)",
            settings.serving_path,
            touched,
        )
        return None
    return _take_spare(settings, target, con, ctx) or _FileCopy(settings.serving_path, target)


def _same_tables(ctx: _Context) -> bool:
    """Whether this publication has the previous one's tables, each defined as it was: the
    single file can then be an earlier one brought up to date."""
    previous = ctx.previous
    return previous is not None and previous.definitions == {
        table: _fingerprint(definition) for table, definition in ctx.definitions.items()
    }


def _keep_spare(settings: Settings, ctx: _Context, touched: str | None) -> None:
    """Keep the single file about to be replaced as the spare (a second name for it), when
    the next publish can use it: the spare setting is on, this publication has the same
    tables as the file (else the next publish would refuse it), nobody wrote to it since
    its publish (``touched`` None), and the file system can tell whether a reader holds
    it. Never fails the publish (the catalog is committed by then): a spare not kept only
    means a copy next time."""
    spare = spare_path(settings.serving_path)
    try:
        _remove_quietly(spare)
        if (
            not settings.serving_file_spare
            or not settings.serving_path.is_file()
            or not _same_tables(ctx)
            or touched is not None
        ):
            return
        if not _leases_tell(settings):
            log.info(
                "keeping no spare serving file: this file system cannot tell whether a "
                "reader holds a file (no file leases)"
            )
            return
        os.link(settings.serving_path, spare)
    except OSError as error:  # a file system without hard links: the next publish copies
        log.info("keeping no spare serving file: %s", error)


def _widened_by_publications(
    con: duckdb.DuckDBPyConnection, plan: dict[str, TableChange], after: int, until: int
) -> dict[str, TableChange]:
    """``plan`` widened by what the catalog's publications after ``after`` (up to
    ``until``) did, as ``marts.publication`` records it: a file that missed them gets at
    least as much. A table one of them rewrote whole (say, while it was not yet a daily
    fact) is rewritten whole; one they republished from an earlier day, from that day."""
    rows = con.execute(
        f"select table_name, bool_or(publish_mode = ?), "
        f"min(republished_from) filter (where publish_mode = ?) "
        f"from {_mart(LAKE_ALIAS, PUBLICATION_TABLE)} "
        "where publication_id > ? and publication_id <= ? group by table_name",
        [FULL, CHANGED_DAYS, after, until],
    ).fetchall()
    widened = dict(plan)
    for table, rewritten, earliest in rows:
        change = plan.get(table)
        if change is None or change.mode == FULL:
            continue
        if rewritten:
            widened[table] = TableChange(
                table, FULL, reason="rewritten whole by a publication the file missed"
            )
        elif earliest is not None and (change.since is None or earliest < change.since):
            widened[table] = TableChange(
                table,
                CHANGED_DAYS,
                since=earliest,
                reason="days republished by a publication the file missed",
            )
    return widened


def _file_context(
    con: duckdb.DuckDBPyConnection, ctx: _Context, held: _Previous | None
) -> _Context | None:
    """How to bring a single file holding publication ``held`` up to this one: ``ctx``
    itself when it holds the catalog's previous publication, a context with its own plan
    (the days rebuilt since ``held``'s cursor) when it holds an earlier one, or None when
    it cannot be brought up (it must be built whole)."""
    previous = ctx.previous
    if held is None or previous is None or set(held.definitions) != set(ctx.definitions):
        return None
    if held.file_format != FILE_FORMAT:
        log.info(
            "not updating a serving file of format %s in place (this version writes format "
            "%d; an earlier version's update in place can leave a broken key index)",
            held.file_format,
            FILE_FORMAT,
        )
        return None
    # The same publication of the same catalog (a catalog made anew counts from 1 again).
    if held.stamp is None or held.stamp != _stamp(con, LAKE_ALIAS, held.publication_id):
        return None
    if held.publication_id == previous.publication_id:
        return ctx if held.definitions == previous.definitions else None
    if held.publication_id > previous.publication_id:
        return None
    windows = rebuilt_since(
        con, _WORKING_WINDOWS, held.windows_recorded_until, ctx.windows_recorded_until
    )
    plan = plan_publication(ctx.definitions, ctx.partitioned, windows, held)
    if any(change.definition_changed for change in plan.values()):
        return None
    plan = _widened_by_publications(con, plan, held.publication_id, previous.publication_id)
    # A staged table holds its changed months from the catalog plan's first day: enough for
    # this plan only when it starts no earlier; else the rows come from the warehouse.
    staged = {
        table: relation
        for table, relation in ctx.staged.items()
        if plan[table].mode == CHANGED_DAYS
        and plan[table].since is not None
        and (since := ctx.plan[table].since) is not None
        and plan[table].since >= since.replace(day=1)
    }
    return replace(ctx, plan=plan, staged=staged)


def _stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    ctx: _Context,
    *,
    update: _FileCopy | _SpareFile | None,
) -> bool:
    """Write this publication's single file to ``path``; True when built from scratch.

    With ``update`` (an earlier single file at ``path``: a copy of the current one, or the
    spare), that file is brought up to date when it holds the catalog's previous
    publication or an earlier one (then with the days rebuilt since its own cursor) and no
    table's definition changed; else (or without ``update``) the file is built whole.
    """
    incremental = (
        update is not None
        and ctx.previous is not None
        and not any(change.definition_changed for change in ctx.plan.values())
        and update.wait()
    )
    file_ctx: _Context | None = None
    if not incremental:
        if update is not None:
            update.discard()
    else:
        try:
            _attach_file(con, path)
        except duckdb.Error as error:
            # A file of a newer storage version (put there by hand) cannot be lowered to
            # FILE_STORAGE_VERSION: built whole instead of failing every publish.
            log.warning("cannot update the serving file in place, rebuilding it: %s", error)
            _remove_duckdb_file(path)
            incremental = False
        else:
            held = _previous(con, FILE_ALIAS)
            file_ctx = _file_context(con, ctx, held)
            if file_ctx is None:
                log.info(
                    "the serving file holds no publication it can be brought up from: rebuilding it"
                )
                con.execute(f"detach {FILE_ALIAS}")
                _remove_duckdb_file(path)
                incremental = False
    if not incremental:
        _attach_file(con, path)
    try:
        try:
            with transaction(con):
                if file_ctx is not None:
                    _update_file(con, file_ctx)
                    if file_ctx is not ctx:
                        _add_publications_since(con, held.publication_id)
                else:
                    _build_file(con, ctx)
                _record_publication(con, FILE_ALIAS, ctx)
                _record_file_format(con)
                _comment_all(con, FILE_ALIAS, ctx)
        except (duckdb.ConstraintException, duckdb.TransactionException) as error:
            # DuckDB names the key but not the table (and a key added after the insert
            # fails only the commit): say which mart repeats which key.
            duplicate = _duplicate_key(con, ctx)
            if duplicate is None:
                raise
            raise DuplicateKeyError(duplicate) from error
        mismatched = [t for t in ctx.plan if _count(con, FILE_ALIAS, t) != ctx.counts[t]]
        if mismatched:
            # A merge on the key keeps one of a mart's repeated rows: no rebuild would help.
            duplicate = _duplicate_key(con, ctx)
            if duplicate is not None:
                raise DuplicateKeyError(duplicate)
            raise _FileMismatchError(
                f"serving file rows differ from the warehouse for {', '.join(mismatched)}"
            )
        # Everything must be in the main file before the swap: a WAL left beside the
        # temporary name would not follow it.
        con.execute(f"checkpoint {FILE_ALIAS}")
    finally:
        # Out of the file's schema (which _build_file entered) whatever happened: the
        # default database cannot be detached.
        con.execute("use memory")
        con.execute(f"detach {FILE_ALIAS}")
    return not incremental


def _month_file(table: str, month: date) -> str:
    return f"{table}-{month:%Y-%m}.parquet"


def _contract_of(ctx: _Context, table: str) -> MartContract | None:
    """A mart's contract (from dbt) or a publication table's own."""
    return ctx.contracts.get(table) or _publication_contracts().get(table)


def _arrow_schema_metadata(ctx: _Context, table: str) -> dict[bytes, bytes]:
    contract = _contract_of(ctx, table)
    values = {
        RUN_ID_KEY: ctx.run_id,
        PUBLISHED_AT_KEY: ctx.published_at.isoformat(),
        PUBLICATION_ID_KEY: str(ctx.publication_id),
        GRAIN_KEY: contract.grain if contract else "",
        DESCRIPTION_KEY: contract.description if contract else "",
        PRIMARY_KEY_KEY: ",".join(contract.primary_key) if contract else "",
        FOREIGN_KEYS_KEY: "; ".join(k.describe() for k in contract.foreign_keys)
        if contract
        else "",
        SYNTHETIC_KEY: "true" if ctx.synthetic_tables.get(table) else "false",
    }
    return {key.encode(): value.encode() for key, value in values.items()}


def _write_parquet(
    con: duckdb.DuckDBPyConnection,
    ctx: _Context,
    table: str,
    source: str,
    target: Path,
    descriptions: dict[str, str],
    month: date | None = None,
) -> None:
    """One Parquet file of ``table`` read from ``source`` (one month of it for a daily fact),
    rows in key order, each field described by its column's description and the file by
    the table's."""
    contract = _contract_of(ctx, table)
    where, params = "", []
    if month is not None:
        date_column = quote_identifier(DATE_COLUMN)
        where = f" where {date_column} >= ? and {date_column} < ? + interval 1 month"
        params = [month, month]
    order = (
        f" order by {_column_list(contract.primary_key)}"
        if contract and contract.primary_key
        else ""
    )
    arrow = con.execute(f"select * from {source}{where}{order}", params).fetch_arrow_table()
    schema = _described_schema(arrow.schema, descriptions).with_metadata(
        _arrow_schema_metadata(ctx, table)
    )
    pq.write_table(pa.Table.from_arrays(arrow.columns, schema=schema), target, compression="zstd")


def _described_schema(schema: pa.Schema, descriptions: dict[str, str]) -> pa.Schema:
    """``schema`` with each field described by its column's description."""
    return pa.schema(
        [
            field.with_metadata({COLUMN_DESCRIPTION_KEY: descriptions.get(field.name, "").encode()})
            for field in schema
        ]
    )


def _fields(schema: pa.Schema) -> list[tuple[str, pa.DataType, bool, dict | None]]:
    return [(field.name, field.type, field.nullable, field.metadata) for field in schema]


def _schema_fingerprint(con: duckdb.DuckDBPyConnection, ctx: _Context, table: str) -> str:
    """A hash of the fields (names, types, time zones, descriptions) a rewrite of ``table``'s
    Parquet files would give them now, and of what the files say of the table (its
    description, grain, keys, joins and synthetic flag), kept in the folder manifest of the
    set.

    The previous set's files of a table are hard-linked only when its manifest holds the
    same hash (:func:`_stage_parquet`): a file written by an earlier version of the
    publish, or whose descriptions changed since, differs, and linked beside rewritten
    months it would leave one table folder with two schemas, which readers of the folder
    (Polars, Spark) refuse. A set without hashes (written before them) is rewritten once.
    Read from the manifest, not the files: a file per month would make every daily
    publish read more footers as history grows."""
    fields = _fields(
        _described_schema(
            con.execute(f"select * from {_mart(WORKING_ALIAS, table)} limit 0")
            .fetch_arrow_table()
            .schema,
            _column_descriptions(ctx, table),
        )
    )
    # What the files say of the table, without what names the publication that wrote one.
    table_metadata = {
        key: value
        for key, value in _arrow_schema_metadata(ctx, table).items()
        if key.decode() not in (RUN_ID_KEY, PUBLISHED_AT_KEY, PUBLICATION_ID_KEY)
    }
    return hashlib.sha256(repr((fields, sorted(table_metadata.items()))).encode()).hexdigest()


def _previous_parquet(parquet_dir: Path, ctx: _Context) -> Path | None:
    """The current publication folder, when it holds the catalog's previous publication."""
    if ctx.previous is None:
        return None
    current = parquet_dir / CURRENT_LINK
    manifest = current / FOLDER_MANIFEST
    if not manifest.is_file():
        return None
    held = json.loads(manifest.read_text(encoding="utf-8"))
    if held.get("publication_id") != ctx.previous.publication_id:
        return None
    return current.resolve()


def _month_of(table: str, name: str) -> date | None:
    """The month a daily fact's Parquet file holds, from its name; None for another file."""
    stem = name.removeprefix(f"{table}-").removesuffix(".parquet")
    try:
        return date.fromisoformat(f"{stem}-01")
    except ValueError:
        return None


def _stage_monthly_files(
    con: duckdb.DuckDBPyConnection,
    ctx: _Context,
    table: str,
    table_dir: Path,
    previous: Path | None,
) -> list[str]:
    """A daily fact's month files (:func:`_month_files`), or, when it has no rows, one file
    ``<table>.parquet`` of none: a folder without files has no schema to read (DuckDB's
    ``<table>/*.parquet`` finds no file, pandas reads no column)."""
    names = _month_files(con, ctx, table, table_dir, previous)
    if names:
        return names
    name = f"{table}.parquet"
    _write_parquet(
        con,
        ctx,
        table,
        _mart(WORKING_ALIAS, table),
        table_dir / name,
        _column_descriptions(ctx, table),
    )
    return [name]


def _month_files(
    con: duckdb.DuckDBPyConnection,
    ctx: _Context,
    table: str,
    table_dir: Path,
    previous: Path | None,
) -> list[str]:
    """A daily fact's month files; with ``previous`` (the last set, same definition), the
    months before the first changed day (every month, when the table did not change) are
    hard-linked from it, and only the later months are read from the warehouse."""
    change = ctx.plan[table]
    kept: list[date] = []
    rewrite_from: date | None = None
    if previous is not None and change.mode in (CHANGED_DAYS, UNCHANGED):
        first_changed = change.since.replace(day=1) if change.since else None
        for path in sorted((previous / table).glob("*.parquet")):
            month = _month_of(table, path.name)
            if month is not None and (first_changed is None or month < first_changed):
                os.link(path, table_dir / path.name)
                kept.append(month)
        if first_changed is None:
            return [_month_file(table, month) for month in kept]
        rewrite_from = first_changed
    # Only the changed months are read, from where they were staged; else the whole table.
    source = ctx.source(table) if rewrite_from is not None else _mart(WORKING_ALIAS, table)
    date_column = quote_identifier(DATE_COLUMN)
    months = [
        row[0]
        for row in con.execute(
            f"select distinct cast(date_trunc('month', {date_column}) as date) "
            f"from {source} where ? is null or {date_column} >= ? "
            "order by 1",
            [rewrite_from, rewrite_from],
        ).fetchall()
    ]
    descriptions = _column_descriptions(ctx, table)
    for month in months:
        target = table_dir / _month_file(table, month)
        _write_parquet(con, ctx, table, source, target, descriptions, month)
    return [_month_file(table, month) for month in [*kept, *months]]


def _stage_publication_tables(
    con: duckdb.DuckDBPyConnection, folder: Path, ctx: _Context, staged_file: Path
) -> dict[str, list[str]]:
    """``marts.publication`` and ``marts.publication_data_as_of`` (every publication up to
    this one) into ``folder``, one file each, read from the staged single file: Parquet
    readers put them on their dashboards as the other forms' readers do."""
    alias = "staged_publications"
    con.execute(f"attach {quote_literal(str(staged_file))} as {alias} (read_only)")
    try:
        for table in PUBLICATION_TABLES:
            (folder / table).mkdir()
            _write_parquet(
                con,
                ctx,
                table,
                _mart(alias, table),
                folder / table / f"{table}.parquet",
                _publication_contracts()[table].column_descriptions,
            )
    finally:
        con.execute(f"detach {alias}")
    return {table: [f"{table}.parquet"] for table in PUBLICATION_TABLES}


@dataclass(frozen=True)
class _ParquetFiles:
    """The marts' files of a Parquet set being staged (table: file names) and the hash of
    each table's fields (:func:`_schema_fingerprint`)."""

    files: dict[str, list[str]]
    schemas: dict[str, str]


def _stage_parquet(
    con: duckdb.DuckDBPyConnection, folder: Path, parquet_dir: Path, ctx: _Context
) -> _ParquetFiles:
    """Write the marts of this publication's Parquet set into ``folder``: unchanged files
    (whole tables, or the months of a daily fact before the first changed day) are
    hard-linked from the previous set, the rest written from the warehouse.
    :func:`_complete_parquet` adds the publication tables and the manifest."""
    folder.mkdir()
    previous = _previous_parquet(parquet_dir, ctx)
    previous_schemas = (
        json.loads((previous / FOLDER_MANIFEST).read_text(encoding="utf-8")).get("schemas", {})
        if previous is not None
        else {}
    )
    files: dict[str, list[str]] = {}
    schemas: dict[str, str] = {}
    for table, change in ctx.plan.items():
        table_dir = folder / table
        table_dir.mkdir()
        schemas[table] = _schema_fingerprint(con, ctx, table)
        reusable = (
            previous is not None
            and not change.definition_changed
            and change.mode != FULL
            and previous_schemas.get(table) == schemas[table]
        )
        descriptions = _column_descriptions(ctx, table)
        if table not in ctx.partitioned:
            if reusable and (previous / table / f"{table}.parquet").is_file():
                os.link(previous / table / f"{table}.parquet", table_dir / f"{table}.parquet")
            else:
                target = table_dir / f"{table}.parquet"
                _write_parquet(con, ctx, table, _mart(WORKING_ALIAS, table), target, descriptions)
            files[table] = [f"{table}.parquet"]
            continue
        files[table] = _stage_monthly_files(
            con, ctx, table, table_dir, previous if reusable else None
        )
        written = sum(pq.read_metadata(table_dir / name).num_rows for name in files[table])
        if written != ctx.counts[table]:
            log.warning(
                "Parquet files of %s did not match the warehouse after %s: rewriting them",
                table,
                change.describe(),
            )
            shutil.rmtree(table_dir)
            table_dir.mkdir()
            files[table] = _stage_monthly_files(con, ctx, table, table_dir, None)
    return _ParquetFiles(files, schemas)


def _complete_parquet(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    ctx: _Context,
    staged: _ParquetFiles,
    staged_file: Path,
) -> None:
    """Add the publication tables, read from the staged single file (``staged_file``), and
    the manifest to the Parquet set :func:`_stage_parquet` staged in ``folder``."""
    files = {**staged.files, **_stage_publication_tables(con, folder, ctx, staged_file)}
    (folder / FOLDER_MANIFEST).write_text(
        json.dumps(
            {
                "publication_id": ctx.publication_id,
                "run_id": ctx.run_id,
                "published_at": ctx.published_at.isoformat(),
                "tables": files,
                "schemas": staged.schemas,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
        encoding="utf-8",
    )


def _record(settings: Settings, publication: Publication) -> None:
    with connect(settings.warehouse_path) as con, transaction(con):
        con.execute("delete from audit.publications where run_id = ?", [publication.run_id])
        con.execute(
            "insert into audit.publications values (?, ?, ?, ?, ?)",
            [
                publication.run_id,
                str(publication.serving_path),
                str(publication.parquet_dir),
                publication.tables_published,
                publication.published_at,
            ],
        )


def _read_working(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    published_at: datetime,
    *,
    synthetic: bool,
) -> _Context:
    """Everything the publish needs from the working warehouse (attached as ``working``)."""
    columns = _table_columns(con, WORKING_ALIAS)
    if not columns:
        raise RuntimeError(
            f"no tables in schema {MARTS_SCHEMA} of {describe_working(settings)}; "
            "run dbt build before publishing"
        )
    clash = sorted(set(columns) & set(PUBLICATION_TABLES))
    if clash:
        raise ContractError(f"marts {', '.join(clash)} clash with the publication's own tables")
    manifest = settings.dbt_target_dir / "manifest.json"
    contracts = {name: c for name, c in read_contracts(manifest).items() if name in columns}
    if not contracts:
        log.warning("no dbt manifest at %s: publishing without keys or descriptions", manifest)
    problems = check_contracts(contracts, {t: tuple(n for n, _ in c) for t, c in columns.items()})
    if problems:
        raise ContractError("; ".join(problems))
    working_audit = _schema_tables(con, WORKING_ALIAS, "audit")
    partitioned, until = _windowed_tables(con, columns, working_audit)
    return _Context(
        run_id=run_id,
        published_at=published_at,
        publication_id=1,
        columns=columns,
        contracts=contracts,
        definitions={
            table: table_definition(table_columns, contracts.get(table))
            for table, table_columns in columns.items()
        },
        partitioned=partitioned,
        counts=_working_counts(con, list(columns)),
        synthetic_tables={
            table: flagged
            if (flagged := _holds_synthetic(con, table, c)) is not None
            else synthetic
            for table, c in columns.items()
        },
        windows_recorded_until=until,
        working_audit=working_audit,
        column_comments=_read_column_comments(con),
    )


def _stage_changed_rows(con: duckdb.DuckDBPyConnection, ctx: _Context) -> None:
    """Read each daily fact's changed months once, into a temporary table: the catalog,
    the single file and the Parquet months are then written from it."""
    for table, change in ctx.plan.items():
        if change.mode != CHANGED_DAYS or change.since is None:
            continue
        staged = f"memory.main.{quote_identifier('changed__' + table)}"
        con.execute(
            f"create or replace table {staged} as select * from {_mart(WORKING_ALIAS, table)} "
            f"where {quote_identifier(DATE_COLUMN)} >= ?",
            [change.since.replace(day=1)],
        )
        ctx.staged[table] = staged


def _plan_against(con: duckdb.DuckDBPyConnection, ctx: _Context) -> None:
    """Plan the publication against what the catalog (attached as ``lake``) holds."""
    ctx.previous = _previous(con, LAKE_ALIAS)
    if ctx.previous is not None:
        ctx.publication_id = ctx.previous.publication_id + 1
    since = ctx.previous.windows_recorded_until if ctx.previous else None
    windows = rebuilt_since(con, _WORKING_WINDOWS, since, ctx.windows_recorded_until)
    ctx.plan = plan_publication(ctx.definitions, ctx.partitioned, windows, ctx.previous)


def _go_on_from_served(settings: Settings, ctx: _Context) -> None:
    """A catalog without publications while the single file holds some (the catalog made
    anew: lost, or moved away): number this publication after the file's last, so that
    readers who take what is newer than the last publication they saw miss none."""
    try:
        with duckdb.connect(str(settings.serving_path), read_only=True) as served:
            (last,) = served.execute(
                f"select max(publication_id) from {MARTS_SCHEMA}.{PUBLICATION_TABLE}"
            ).fetchone()
    except (duckdb.Error, OSError):
        return
    if last is None:
        return
    ctx.publication_id = int(last) + 1
    log.warning(
        "the serving catalog %s holds no publication, the single file %s holds up to %d: the "
        "catalog was made anew (its time travel begins with this publication %d)",
        settings.serving_lake_path,
        settings.serving_path,
        last,
        ctx.publication_id,
    )


class HistoryLostError(RuntimeError):
    """The working warehouse holds fewer days of history than the serving copy readers
    have: publishing would replace that history with less."""


# What a publish that would shorten the history readers have names as the way through.
ACCEPT_SHORTER_HISTORY = "accept_shorter_history"


def _first_day(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> date | None:
    return con.execute(
        f"select min({quote_identifier(DATE_COLUMN)}) from {_mart(alias, table)}"
    ).fetchone()[0]


def _days_held(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> int:
    return con.execute(
        f"select count(distinct {quote_identifier(DATE_COLUMN)}) from {_mart(alias, table)}"
    ).fetchone()[0]


# A daily fact covering fewer than this share of the days the serving copy's covers, and
# beginning later, lost its history (a warehouse recreated empty holds the days since).
HISTORY_KEPT_SHARE = 0.5


def history_lost(con: duckdb.DuckDBPyConnection, ctx: _Context) -> list[str]:
    """The daily facts whose history the working warehouse lost against the publication
    the catalog (attached as ``lake``) holds: they begin later and cover fewer than half
    its days (a warehouse recreated empty, its catalog database dropped, say). A table of
    the latest days only begins later with as many days; a roster change that drops the
    executives of the first days drops those days, rarely half of them."""
    if ctx.previous is None:
        return []
    lost = []
    for table in sorted(ctx.columns):
        names = {name for name, _ in ctx.columns[table]}
        if DATE_COLUMN not in names or table not in ctx.previous.definitions:
            continue
        first = _first_day(con, LAKE_ALIAS, table)
        now_first = _first_day(con, WORKING_ALIAS, table)
        # The days are counted only for a fact that begins later (a daily publish's facts
        # begin where they did: two scans of a date column, not four).
        if first is None or (now_first is not None and now_first <= first):
            continue
        days = _days_held(con, LAKE_ALIAS, table)
        now_days = _days_held(con, WORKING_ALIAS, table) if now_first is not None else 0
        if now_days < days * HISTORY_KEPT_SHARE:
            now = f"{now_days} day(s) from {now_first}" if now_first else "no rows"
            lost.append(f"{table} holds {now}, the serving copy {days} day(s) from {first}")
    return lost


def _refuse_shorter_history(lost: list[str], settings: Settings) -> None:
    raise HistoryLostError(
        "publish refused: the working warehouse holds less than half the history the "
        f"serving copy's readers have ({'; '.join(lost)}). Was {describe_working(settings)} "
        "recreated empty (a deleted file, a catalog database dropped or recreated)? Restore "
        "it from its backup (README: Backups) and run warehouse_build again; the serving "
        "copy stays as it was. To publish the shorter history on purpose (you started over, "
        "or took the executives of the first days off the roster), run "
        f'warehouse_build with {{"{ACCEPT_SHORTER_HISTORY}": true}} '
        "(slw rebuild --accept-shorter-history)"
    )


def _publish_extensions(settings: Settings) -> tuple[str, ...]:
    """The extensions a publish loads: the serving catalog's, and the working lake's."""
    working = lake_extensions(settings) if uses_lake(settings) else ()
    return tuple(dict.fromkeys((*LAKE_EXTENSIONS, *working)))


def publish_refusal(con: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    """Why run ``run_id`` must not publish the marts now; None when it may: the newest try
    of a dbt build (``audit.dbt_build_attempts``) is this run's, and this run's quality
    gate checked that try's marts and found no critical failure.

    Airflow's order of tasks holds within one run only: the publish of an earlier green run
    cleared and run again (to refresh the serving copy) copied the marts of whatever build
    came last, one whose gate had failed, or a build that failed half way, to every reader.
    There is no way round it by hand (marking ``quality_gate`` success lets nothing through).
    The gate names the try it checked by its number, so workers whose clocks differ agree;
    tries and gates an earlier version recorded without numbers are compared by time. A
    warehouse whose builds were never recorded (made by an earlier version, the table
    perhaps not there yet: a read-only connection creates nothing) is judged by this run's
    own gate alone.
    """
    from social_leadership.dbt_runner import newest_build_attempt

    latest = newest_build_attempt(con)
    gate = (
        "select count(*), count_if(is_critical and not success), min(checked_at), {0} "
        "from audit.quality_results where run_id = ?"
    )
    try:
        checks, critical, checked_at, checked_try = con.execute(
            gate.format("min(build_attempt)"), [run_id]
        ).fetchone()
    except duckdb.BinderException:  # a gate's table not yet given its try's number
        checks, critical, checked_at, checked_try = con.execute(
            gate.format("null"), [run_id]
        ).fetchone()
    failed = (
        f"this run's quality gate found {critical} critical failure(s) "
        "(audit.quality_results): the serving copy stays the last one published"
    )
    if latest is None:
        return failed if critical else None
    started = f"{latest.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if latest.run_id != run_id:
        return (
            f"the marts are now those of run {latest.run_id}'s build (started {started}), "
            "not this run's: publishing here would copy marts this run's quality gate never "
            f"checked. Publish with run {latest.run_id} (its quality_gate, then publish), or "
            "trigger warehouse_build"
        )
    if latest.number is not None and checked_try is not None:
        checked = checked_try == latest.number
    else:
        checked = bool(checks) and checked_at >= latest.started_at
    if not checked:
        return (
            "this run's quality gate has not checked the marts of its latest dbt_build try "
            f"(started {started}): run quality_gate first"
        )
    return failed if critical else None


def publish(
    settings: Settings, run_id: str, *, synthetic: bool, accept_shorter_history: bool = False
) -> Publication:
    """Publish the marts: one DuckLake commit, the single file swapped in, a Parquet set.

    Must run when no other process holds the working warehouse for writing (the
    single-slot pool guarantees that in the DAGs). Removes the leftovers of an interrupted
    publish first, and replaced Parquet sets past their retention last. Raises if the
    warehouse has no marts, leaving the previous publication untouched everywhere.
    ``synthetic`` (the warehouse shows synthetic executives) marks the tables that carry
    no synthetic flag of their own; a table with flags is marked by what they say.
    Raises HistoryLostError, publishing nothing, when a daily fact would begin later and
    cover less than half the days of the serving copy's (``history_lost``), unless
    ``accept_shorter_history``.
    """
    settings.serving_path.parent.mkdir(parents=True, exist_ok=True)
    parquet_dir = settings.serving_parquet_dir
    parquet_dir.mkdir(parents=True, exist_ok=True)
    with _publish_lock(settings):
        remove_publish_debris(settings)
        ensure_catalog(settings)
        published_at = datetime.now(tz=UTC)
        staging_path = _temporary_path(settings.serving_path, run_id)
        staging_parquet = _temporary_path(parquet_dir / "publication", run_id)
        con = open_with_extensions(settings, _publish_extensions(settings))
        file_source: _FileCopy | _SpareFile | None = None
        try:
            # No progress bar: a long copy would draw it on the task's (or caller's) stdout.
            con.execute("set enable_progress_bar = false")
            # Arrow tags timestamps with a time zone in the session's zone, which DuckDB takes
            # from the host: the Parquet files must say UTC whatever host publishes them.
            con.execute("set TimeZone = 'UTC'")
            attach_working(con, settings, WORKING_ALIAS, read_only=True)
            ctx = _read_working(con, settings, run_id, published_at, synthetic=synthetic)
            attach_lake(con, settings, LAKE_ALIAS, read_only=False)
            _plan_against(con, ctx)
            if ctx.previous is None:
                _go_on_from_served(settings, ctx)
            if not accept_shorter_history and (lost := history_lost(con, ctx)):
                _refuse_shorter_history(lost, settings)
            # The spare, or a copy of the current file started now, on its own thread, while
            # the Parquet set is written; always waited for (finally) before the staging
            # path is removed.
            touched = _touched(settings)
            file_source = _earlier_file(settings, staging_path, con, ctx, touched)
            _stage_changed_rows(con, ctx)
            for change in ctx.plan.values():
                log.info("%s: %s (%s)", change.table, change.describe(), change.reason)
            # The marts' Parquet files first, while the current single file is copied.
            parquet_files = _stage_parquet(con, staging_parquet, parquet_dir, ctx)
            try:
                rebuilt = _stage_file(con, staging_path, ctx, update=file_source)
            except DuplicateKeyError:
                # The warehouse's rows, not the copy, are at fault: a whole build fails too.
                raise
            except (duckdb.ConstraintException, _FileMismatchError) as error:
                log.warning("updating the serving file failed (%s): rebuilding it", error)
                _remove_duckdb_file(staging_path)
                rebuilt = _stage_file(con, staging_path, ctx, update=None)
            _complete_parquet(con, staging_parquet, ctx, parquet_files, staging_path)
            _publish_to_lake(con, ctx)
            _keep_spare(settings, ctx, touched)
            spare = spare_path(settings.serving_path)
            kept = _identity(spare) if spare.is_file() and not spare.is_symlink() else None
            written = _identity(staging_path)
            _write_protect(staging_path)
            _discard_stray_wal(settings)
            _replace_write_protected(staging_path, settings.serving_path)
            # A session that wrote to the file just replaced, between the two, wrote its log
            # under the file's name: the new file's readers would replay it.
            _discard_stray_wal(settings)
            _write_stamp(settings, ctx.publication_id, written, kept)
            became_current_at = datetime.now(tz=UTC)
            version = version_folder_name(run_id, became_current_at)
            os.replace(staging_parquet, parquet_dir / version)
            replaced = pointer_targets(parquet_dir) - {version}
            _switch_current(parquet_dir, version, run_id)
            _mark_replaced(parquet_dir, replaced, version, datetime.now(tz=UTC))
            _maintain_lake(con, settings)
        finally:
            con.close()
            if file_source is not None:
                file_source.wait()
            _remove_quietly(staging_path, Path(f"{staging_path}.wal"), staging_parquet)
        _remove_flat_parquet_files(parquet_dir, tuple(ctx.columns))
        removed = prune_parquet_versions(
            parquet_dir,
            version,
            timedelta(minutes=settings.serving_parquet_retention_minutes),
            became_current_at,
        )
        if removed:
            log.info("removed %d Parquet set(s) past their retention", len(removed))

    tables = tuple(sorted(ctx.columns))
    publication = Publication(
        run_id=run_id,
        publication_id=ctx.publication_id,
        serving_path=settings.serving_path,
        lake_path=settings.serving_lake_path,
        parquet_dir=parquet_dir / version,
        parquet_paths={table: parquet_dir / version / table for table in tables},
        tables=tables,
        synthetic=synthetic,
        published_at=published_at,
        changes={table: change.describe() for table, change in sorted(ctx.plan.items())},
        serving_file_rebuilt=rebuilt,
        serving_file_copy_seconds=file_source.seconds if file_source is not None else None,
        serving_file_from_spare=isinstance(file_source, _SpareFile) and not rebuilt,
    )
    _record(settings, publication)
    return publication
