"""How BI readers connect to the published marts (docs/bi.md is the guide for people).

Two published forms, both read-only for readers:

* The DuckLake catalog (``SLW_SERVING_LAKE_PATH``, SQLite in WAL mode, data files under
  ``SLW_SERVING_LAKE_DATA_DIR``). Every publish is one DuckLake commit, so a reader that
  keeps its connection open sees the new publication on its next transaction, sees one
  snapshot inside a transaction, and never blocks the publish. This is what pooled readers
  (Superset, a notebook, a dashboard server) should use.
* The single-file copy (``SLW_SERVING_PATH``), for clients that cannot load extensions
  (DuckDB 1.1 and later open it). It is swapped in by rename: DuckDB keeps one database
  instance per file and process while any connection to it is open, so a process sees a
  new copy only after closing every connection to the old one. Its engine therefore pools
  nothing by default.

DuckDB cannot download extensions on these machines: ``ducklake`` and ``sqlite_scanner``
are loaded from the ``duckdb-extension-*`` wheels pinned beside duckdb.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import duckdb

from social_leadership.serving_lake import (
    LAKE_EXTENSIONS,
    extension_path,
    lake_attach_url,
    open_with_extensions,
)
from social_leadership.settings import Settings
from social_leadership.sql import quote_literal

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# The name readers use for the attached catalog: `select * from serving.marts.dim_country`,
# or just `marts.dim_country` after `use serving`.
LAKE_ALIAS = "serving"


def lake_setup_statements(settings: Settings) -> list[str]:
    """The statements that make a fresh in-memory DuckDB read the serving catalog: load the
    extensions from their wheels, attach the catalog read-only as ``serving``, use it."""
    return [
        *(f"load {quote_literal(str(extension_path(name)))}" for name in LAKE_EXTENSIONS),
        *_attach_statements(settings),
    ]


def _attach_statements(settings: Settings) -> list[str]:
    return [
        f"attach {quote_literal(lake_attach_url(settings))} as {LAKE_ALIAS} (read_only)",
        f"use {LAKE_ALIAS}",
    ]


def install_extensions(extension_directory: Path) -> list[Path]:
    """Copy the lake's extensions from their wheels into a DuckDB extension directory (no
    download). A DuckDB of the same version that uses this directory (the CLI and Python
    use ``~/.duckdb/extensions`` by default; DBeaver and Superset too) then loads them by
    itself when it attaches or opens ``ducklake:sqlite:...``. Returns the installed files."""
    with duckdb.connect(config={"extension_directory": str(extension_directory)}) as con:
        for name in LAKE_EXTENSIONS:
            con.execute(f"install {quote_literal(str(extension_path(name)))}")
        return [
            Path(path)
            for (path,) in con.execute(
                "select install_path from duckdb_extensions() where extension_name in ?",
                [list(LAKE_EXTENSIONS)],
            ).fetchall()
        ]


def lake_sqlalchemy_url(settings: Settings, extension_directory: Path | None = None) -> str:
    """A SQLAlchemy URL that opens the DuckLake catalog itself as the database, read-only:
    for tools configured by URL alone (Superset). Needs the extensions installed in
    ``extension_directory`` (or DuckDB's default one) with :func:`install_extensions`."""
    query = {"access_mode": "read_only"}
    if extension_directory is not None:
        query["extension_directory"] = str(extension_directory)
    return f"duckdb:///{_url_database(lake_attach_url(settings))}?{urlencode(query)}"


def _url_database(text: str) -> str:
    """``text`` as a SQLAlchemy URL's database part: SQLAlchemy decodes %XX there and ends
    it at a ``?`` or ``#``; a path holding them (``100%20 q?x``) opened another file."""
    return quote(text, safe="/:")


def connect_serving(settings: Settings, *, lake: bool = True) -> duckdb.DuckDBPyConnection:
    """A read-only duckdb connection on the published marts (``marts.<table>`` resolves).

    ``lake=True``: the DuckLake catalog, fresh on every transaction. ``lake=False``: the
    single-file copy, fixed to the file that was current when the process first opened it.
    """
    if not lake:
        # DuckDB's defaults, not the pipeline's limits: DuckDB refuses a second connection
        # to an open file with another configuration, and readers open this file themselves
        # (docs/bi.md) in the same processes.
        return duckdb.connect(str(settings.serving_path), read_only=True)
    # Within the pipeline's limits: the weekly report reads through it on a worker.
    con = open_with_extensions(settings, LAKE_EXTENSIONS)
    try:
        for statement in _attach_statements(settings):
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


def sqlalchemy_url(settings: Settings, *, lake: bool = True) -> str:
    """The SQLAlchemy URL of :func:`sqlalchemy_engine` (the lake's is an in-memory database
    that attaches the catalog when a connection opens)."""
    return (
        "duckdb:///:memory:" if lake else f"duckdb:///{_url_database(str(settings.serving_path))}"
    )


def sqlalchemy_engine(
    settings: Settings, *, lake: bool = True, pool_size: int = 5, **engine_options: Any
) -> Engine:
    """A SQLAlchemy engine (duckdb-sqlalchemy, the ``bi`` extra) on the published marts.

    ``lake=True``: a queue pool of ``pool_size`` in-memory DuckDB connections, each
    attaching the catalog read-only when it opens; connections stay open and still see each
    new publication on their next transaction. ``lake=False``: the single-file copy opened
    read-only, without pooling (``NullPool``) so that a process sees a new copy once its
    open connections close. ``engine_options`` go to ``create_engine``.

    DuckDB keeps its defaults here, not ``SLW_DUCKDB_*``: the engine runs in the BI tool's
    process, sized by whoever runs it (``connect_args={"config": {...}}`` bounds it). The
    copy's connections are opened as :func:`connect_serving` opens them (a read-only
    ``duckdb.connect`` with that configuration), so both can be used in one process, as
    long as the engine is given no ``config`` of its own: DuckDB refuses a second
    connection to an open file with another configuration.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import NullPool, QueuePool

    if not lake:
        from duckdb_sqlalchemy import ConnectionWrapper

        engine_options.setdefault("poolclass", NullPool)
        config = dict(engine_options.pop("connect_args", {}).get("config", {}))
        path = str(settings.serving_path)

        def open_copy() -> ConnectionWrapper:
            # As connect_serving opens it: the dialect's own connect adds a user agent to
            # DuckDB's configuration, and DuckDB refuses a second connection to an open
            # file with another configuration, so one process could not use both.
            return ConnectionWrapper(duckdb.connect(path, read_only=True, config=config))

        return create_engine(
            sqlalchemy_url(settings, lake=False), creator=open_copy, **engine_options
        )
    engine_options.setdefault("poolclass", QueuePool)
    engine_options.setdefault("pool_size", pool_size)
    engine = create_engine(sqlalchemy_url(settings), **engine_options)
    statements = lake_setup_statements(settings)

    def attach_serving_catalog(dbapi_connection: Any, _record: Any) -> None:
        for statement in statements:
            dbapi_connection.execute(statement)

    event.listen(engine, "connect", attach_serving_catalog)
    return engine


def connection_guide(settings: Settings) -> str:
    """What ``slw bi`` prints: the paths and statements a BI tool is configured with."""
    try:
        setup = ";\n  ".join(lake_setup_statements(settings)) + ";"
    except FileNotFoundError as exc:
        setup = f"(cannot load the extensions: {exc})"
    parquet = settings.serving_parquet_dir / "current"
    # No pool: a pooled connection would keep the copy it opened after a publish.
    single_file_url = f"{sqlalchemy_url(settings, lake=False)}?access_mode=read_only&pool=null"
    return "\n".join(
        [
            "DuckLake catalog (pooled readers see each publication on their next transaction):",
            f"  catalog    {settings.serving_lake_path}",
            f"  data files {settings.serving_lake_data_dir}",
            f"  in an in-memory DuckDB {duckdb.__version__}:\n  {setup}",
            f"  SQLAlchemy {lake_sqlalchemy_url(settings)}",
            "             (after slw bi --install-extensions ~/.duckdb/extensions; docs/bi.md)",
            "Single-file copy (any DuckDB >= 1.1, read-only; reconnect after a publish):",
            f"  file       {settings.serving_path}",
            f"  SQLAlchemy {single_file_url}",
            "Parquet (one folder per table, field metadata holds the column descriptions):",
            f"  pointer    {parquet} (symlink), {settings.serving_parquet_dir / 'CURRENT'} (file)",
            f"  files      {settings.serving_parquet_dir}/<folder>/<table>/*.parquet, <folder>"
            " resolved once per read",
        ]
    )


def reflected_tables(engine: Engine) -> list[str]:
    """One line per table of schema marts as SQLAlchemy reflects it (what Superset and
    pandas see): columns, how many carry a comment, the primary key, foreign keys."""
    from sqlalchemy import MetaData

    metadata = MetaData()
    metadata.reflect(engine, schema="marts")
    lines = []
    for table in sorted(metadata.tables.values(), key=lambda table: table.name):
        commented = sum(1 for column in table.columns if column.comment)
        key = ", ".join(column.name for column in table.primary_key.columns) or "none"
        references = sorted(
            {constraint.referred_table.name for constraint in table.foreign_key_constraints}
        )
        lines.append(
            f"marts.{table.name}: {len(table.columns)} columns ({commented} commented), "
            f"primary key ({key}), references {', '.join(references) or 'none'}"
        )
    return lines
