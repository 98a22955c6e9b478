"""Publish the marts to the serving copy that BI tools read.

BI tools never open the working warehouse: DuckDB allows one writer or many readers, never
both, so a dashboard holding the working file open would block the next pipeline run. The
serving copy is written to a temporary file next to its final path and swapped in with
``os.replace``, which is atomic on one filesystem: a reader sees the old file or the new one,
never a half-written one.

The Parquet export is swapped as one set. Each publication writes every table into a new
folder of ``SLW_SERVING_PARQUET_DIR``; only once the folder is complete does a pointer
move to it, in one atomic step: the ``current`` symlink and, for readers that cannot follow
symlinks, the ``CURRENT`` file naming the folder. A reader that resolves the pointer once
reads all its tables from one publication, and each file names its publication in its
key-value metadata (:data:`RUN_ID_KEY`). A replaced folder stays for
``SLW_SERVING_PARQUET_RETENTION_MINUTES`` after it stopped being current, so a reader in
the middle of a read still finds its files.

A publish killed mid-way (an OOM kill, a lost worker) leaves temporary files behind; the
next publish removes them before it starts, under a lock that keeps two publishes apart.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from social_leadership.freshness import copy_to_serving as copy_freshness_to_serving
from social_leadership.landing import safe_run_id
from social_leadership.settings import Settings
from social_leadership.sql import quote_identifier, quote_literal
from social_leadership.warehouse import MARTS_SCHEMA, connect, transaction

log = logging.getLogger(__name__)

WORKING_ALIAS = "working"

SYNTHETIC_NOTICE = (
    "SYNTHETIC DEMO DATA: generated for demonstration, not real figures about real people."
)

CURRENT_LINK = "current"
CURRENT_FILE = "CURRENT"
# Key-value metadata of every exported Parquet file.
RUN_ID_KEY = "slw_run_id"
PUBLISHED_AT_KEY = "slw_published_at"
VERSION_PREFIX = "publication-"
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_VERSION_NAME = re.compile(rf"^{VERSION_PREFIX}(?P<stamp>\d{{8}}T\d{{12}}Z)-.+$")
# Every temporary name a publish creates carries this marker; nothing else does.
TEMPORARY_MARKER = ".tmp-"


@dataclass(frozen=True)
class Publication:
    run_id: str
    serving_path: Path
    parquet_dir: Path
    parquet_paths: dict[str, Path]
    tables: tuple[str, ...]
    synthetic: bool
    published_at: datetime

    @property
    def tables_published(self) -> int:
        return len(self.tables)


def _temporary_path(final_path: Path, run_id: str) -> Path:
    # Airflow run ids hold ':' and '+'; keep the temporary name portable.
    return final_path.with_name(f"{final_path.name}{TEMPORARY_MARKER}{safe_run_id(run_id)}")


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def version_folder_name(run_id: str, became_current_at: datetime) -> str:
    """The folder of one publication's Parquet files, named by when it became current."""
    stamp = became_current_at.astimezone(UTC).strftime(_STAMP_FORMAT)
    return f"{VERSION_PREFIX}{stamp}-{safe_run_id(run_id)}"


def _became_current_at(name: str) -> datetime | None:
    match = _VERSION_NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], _STAMP_FORMAT).replace(tzinfo=UTC)


def table_comment(table: str, run_id: str, published_at: datetime, *, synthetic: bool) -> str:
    """The comment each served table carries, so any client can see where the data is from."""
    provenance = (
        f"marts.{table} published by social_leadership run {run_id} "
        f"at {published_at.isoformat(timespec='seconds')}."
    )
    return f"{SYNTHETIC_NOTICE} {provenance}" if synthetic else provenance


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


def prune_parquet_versions(
    parquet_dir: Path, current: str, retention: timedelta, now: datetime
) -> list[str]:
    """Remove publication folders that stopped being current more than ``retention`` ago.

    A folder stopped being current when the next one (by name, which sorts by the time it
    became current) did: a publication made long ago but replaced a minute ago stays for
    the whole retention, for the readers still reading it. ``current`` is never removed.
    Returns the names removed.
    """
    versions = sorted(
        (path.name for path in parquet_dir.iterdir() if path.is_dir() and not path.is_symlink()),
    )
    versions = [name for name in versions if _became_current_at(name) is not None]
    removed = []
    for name, successor in itertools.pairwise(versions):
        replaced_at = _became_current_at(successor)
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


@contextmanager
def _staging_file(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    _remove_quietly(path, Path(f"{path}.wal"))
    con = duckdb.connect(str(path))
    try:
        yield con
    finally:
        con.close()


def _copy_marts(
    con: duckdb.DuckDBPyConnection,
    warehouse_path: Path,
    run_id: str,
    published_at: datetime,
    *,
    synthetic: bool,
) -> tuple[str, ...]:
    con.execute(f"attach {quote_literal(str(warehouse_path))} as {WORKING_ALIAS} (read_only)")
    try:
        tables = tuple(
            row[0]
            for row in con.execute(
                "select table_name from duckdb_tables() "
                "where database_name = ? and schema_name = ? order by table_name",
                [WORKING_ALIAS, MARTS_SCHEMA],
            ).fetchall()
        )
        con.execute(f"create schema if not exists {MARTS_SCHEMA}")
        for table in tables:
            name = f"{MARTS_SCHEMA}.{quote_identifier(table)}"
            con.execute(f"create table {name} as select * from {WORKING_ALIAS}.{name}")
            comment = table_comment(table, run_id, published_at, synthetic=synthetic)
            con.execute(f"comment on table {name} is {quote_literal(comment)}")
        # Beside the marts, not among them: "data as of" per platform for dashboards.
        copy_freshness_to_serving(con, WORKING_ALIAS)
    finally:
        con.execute(f"detach {WORKING_ALIAS}")
    return tables


def _export_parquet(
    con: duckdb.DuckDBPyConnection,
    tables: tuple[str, ...],
    folder: Path,
    run_id: str,
    published_at: datetime,
) -> None:
    folder.mkdir()
    metadata = (
        f"{{{RUN_ID_KEY}: {quote_literal(run_id)}, "
        f"{PUBLISHED_AT_KEY}: {quote_literal(published_at.isoformat())}}}"
    )
    for table in tables:
        target = folder / f"{table}.parquet"
        con.execute(
            f"copy {MARTS_SCHEMA}.{quote_identifier(table)} "
            f"to {quote_literal(str(target))} (format parquet, kv_metadata {metadata})"
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


def publish(settings: Settings, run_id: str, *, synthetic: bool) -> Publication:
    """Copy every table of schema marts to the serving DuckDB file and to a new Parquet set.

    Must run when no other process holds the working warehouse for writing (the
    single-slot pool guarantees that in the DAGs). Removes the leftovers of an interrupted
    publish first, and replaced Parquet sets past their retention last. Raises if the
    warehouse has no marts, leaving the previous serving copy and Parquet set untouched.
    """
    settings.serving_path.parent.mkdir(parents=True, exist_ok=True)
    parquet_dir = settings.serving_parquet_dir
    parquet_dir.mkdir(parents=True, exist_ok=True)
    with _publish_lock(settings):
        remove_publish_debris(settings)
        published_at = datetime.now(tz=UTC)
        staging_path = _temporary_path(settings.serving_path, run_id)
        staging_parquet = _temporary_path(parquet_dir / "publication", run_id)
        try:
            with _staging_file(staging_path) as con:
                tables = _copy_marts(
                    con, settings.warehouse_path, run_id, published_at, synthetic=synthetic
                )
                if not tables:
                    raise RuntimeError(
                        f"no tables in schema {MARTS_SCHEMA} of {settings.warehouse_path}; "
                        "run dbt build before publishing"
                    )
                _export_parquet(con, tables, staging_parquet, run_id, published_at)
                # Everything must be in the main file before the swap: a WAL left beside
                # the temporary name would not follow it.
                con.execute("checkpoint")
            os.replace(staging_path, settings.serving_path)
            became_current_at = datetime.now(tz=UTC)
            version = version_folder_name(run_id, became_current_at)
            os.replace(staging_parquet, parquet_dir / version)
            _switch_current(parquet_dir, version, run_id)
        finally:
            _remove_quietly(staging_path, Path(f"{staging_path}.wal"), staging_parquet)
        _remove_flat_parquet_files(parquet_dir, tables)
        removed = prune_parquet_versions(
            parquet_dir,
            version,
            timedelta(minutes=settings.serving_parquet_retention_minutes),
            became_current_at,
        )
        if removed:
            log.info("removed %d Parquet set(s) past their retention", len(removed))

    publication = Publication(
        run_id=run_id,
        serving_path=settings.serving_path,
        parquet_dir=parquet_dir / version,
        parquet_paths={table: parquet_dir / version / f"{table}.parquet" for table in tables},
        tables=tables,
        synthetic=synthetic,
        published_at=published_at,
    )
    _record(settings, publication)
    return publication
