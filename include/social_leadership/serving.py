"""Publish the marts to the serving copy that BI tools read.

BI tools never open the working warehouse: DuckDB allows one writer or many readers, never
both, so a dashboard holding the working file open would block the next pipeline run. The
serving copy is written to a temporary file next to its final path and swapped in with
``os.replace``, which is atomic on one filesystem: a reader sees the old file or the new one,
never a half-written one. The Parquet export follows the same rule per file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from social_leadership.landing import safe_run_id
from social_leadership.settings import Settings
from social_leadership.warehouse import MARTS_SCHEMA, connect, transaction

WORKING_ALIAS = "working"

SYNTHETIC_NOTICE = (
    "SYNTHETIC DEMO DATA: generated for demonstration, not real figures about real people."
)


@dataclass(frozen=True)
class Publication:
    run_id: str
    serving_path: Path
    parquet_paths: dict[str, Path]
    tables: tuple[str, ...]
    synthetic: bool
    published_at: datetime

    @property
    def tables_published(self) -> int:
        return len(self.tables)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quote_identifier(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _temporary_path(final_path: Path, run_id: str) -> Path:
    # Airflow run ids hold ':' and '+'; keep the temporary name portable.
    return final_path.with_name(f"{final_path.name}.tmp-{safe_run_id(run_id)}")


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def table_comment(table: str, run_id: str, published_at: datetime, *, synthetic: bool) -> str:
    """The comment each served table carries, so any client can see where the data is from."""
    provenance = (
        f"marts.{table} published by social_leadership run {run_id} "
        f"at {published_at.isoformat(timespec='seconds')}."
    )
    return f"{SYNTHETIC_NOTICE} {provenance}" if synthetic else provenance


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
    con.execute(f"attach {_quote_literal(str(warehouse_path))} as {WORKING_ALIAS} (read_only)")
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
            name = f"{MARTS_SCHEMA}.{_quote_identifier(table)}"
            con.execute(f"create table {name} as select * from {WORKING_ALIAS}.{name}")
            comment = table_comment(table, run_id, published_at, synthetic=synthetic)
            con.execute(f"comment on table {name} is {_quote_literal(comment)}")
    finally:
        con.execute(f"detach {WORKING_ALIAS}")
    return tables


def _export_parquet(
    con: duckdb.DuckDBPyConnection, tables: tuple[str, ...], parquet_dir: Path, run_id: str
) -> dict[str, Path]:
    temporary: dict[str, Path] = {}
    for table in tables:
        target = _temporary_path(parquet_dir / f"{table}.parquet", run_id)
        _remove_quietly(target)
        con.execute(
            f"copy {MARTS_SCHEMA}.{_quote_identifier(table)} "
            f"to {_quote_literal(str(target))} (format parquet)"
        )
        temporary[table] = target
    return temporary


def _record(settings: Settings, publication: Publication) -> None:
    with connect(settings.warehouse_path) as con, transaction(con):
        con.execute("delete from audit.publications where run_id = ?", [publication.run_id])
        con.execute(
            "insert into audit.publications values (?, ?, ?, ?, ?)",
            [
                publication.run_id,
                str(publication.serving_path),
                str(settings.serving_parquet_dir),
                publication.tables_published,
                publication.published_at,
            ],
        )


def publish(settings: Settings, run_id: str, *, synthetic: bool) -> Publication:
    """Copy every table of schema marts to the serving DuckDB file and to Parquet.

    Must run when no other process holds the working warehouse for writing (the
    single-slot pool guarantees that in the DAGs). Raises if the warehouse has no marts,
    leaving the previous serving copy untouched.
    """
    settings.serving_path.parent.mkdir(parents=True, exist_ok=True)
    settings.serving_parquet_dir.mkdir(parents=True, exist_ok=True)
    published_at = datetime.now(tz=UTC)
    staging_path = _temporary_path(settings.serving_path, run_id)
    temporary_parquet: dict[str, Path] = {}
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
            temporary_parquet = _export_parquet(con, tables, settings.serving_parquet_dir, run_id)
            # Everything must be in the main file before the swap: a WAL left beside the
            # temporary name would not follow it.
            con.execute("checkpoint")
        os.replace(staging_path, settings.serving_path)
        parquet_paths: dict[str, Path] = {}
        for table, temporary in temporary_parquet.items():
            final = settings.serving_parquet_dir / f"{table}.parquet"
            os.replace(temporary, final)
            parquet_paths[table] = final
    finally:
        _remove_quietly(staging_path, Path(f"{staging_path}.wal"), *temporary_parquet.values())

    publication = Publication(
        run_id=run_id,
        serving_path=settings.serving_path,
        parquet_paths=parquet_paths,
        tables=tables,
        synthetic=synthetic,
        published_at=published_at,
    )
    _record(settings, publication)
    return publication
