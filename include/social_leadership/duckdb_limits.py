"""DuckDB's memory limit, threads and spill folder, for every DuckDB the pipeline opens.

Left alone, DuckDB takes 80% of the machine's memory and every core, and an in-memory
database spills to ``.tmp`` in the working directory. Every connection the pipeline opens
(warehouse.connect, the publish, the summary, the reports' serving reader) is made by
:func:`open_duckdb` with :func:`duckdb_config`; dbt gets the same values through its
profile (dbt_project/profiles.yml, from the ``SLW_*`` variables dbt_runner passes).

Spilled blocks go to ``<data>/tmp/duckdb`` (``Settings.duckdb_temp_dir``), one folder per
process and database below it. DuckDB names its spill files alike in every process
(``duckdb_temp_storage_DEFAULT-0.tmp``), so two processes sharing a folder would overwrite
each other's; and a process that opens one database file twice must use the same folder
both times, as DuckDB refuses a second configuration for an open file. DuckDB creates the
folder when it first spills and removes it on close; :func:`spill_dir` removes those left
by processes of this host that died (killed, out of memory) before they could. dbt spills
to ``<data>/tmp/duckdb/dbt``: the warehouse's write lock lets one dbt run at a time.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import socket
from collections.abc import Mapping
from pathlib import Path

import duckdb

from social_leadership.settings import Settings

_in_memory_databases = itertools.count(1)


def _process_prefix() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-"


def _remove_dead_processes_folders(root: Path) -> None:
    host_prefix = f"{socket.gethostname()}-"
    for folder in root.iterdir():
        pid, _, tag = folder.name.removeprefix(host_prefix).partition("-")
        if not folder.name.startswith(host_prefix) or not pid.isdigit() or not tag:
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            # Alive, another user's.
            continue


def spill_dir(settings: Settings, database: Path | None = None) -> Path:
    """This process's spill folder for ``database`` (a new one for each in-memory database).

    Not created: DuckDB creates it when it first spills (and then removes it on close)."""
    root = settings.duckdb_temp_dir
    root.mkdir(parents=True, exist_ok=True)
    _remove_dead_processes_folders(root)
    if database is None:
        tag = f"memory{next(_in_memory_databases)}"
    else:
        tag = hashlib.sha256(str(database.resolve()).encode()).hexdigest()[:16]
    return root / f"{_process_prefix()}{tag}"


def duckdb_config(settings: Settings, database: Path | None = None) -> dict[str, str]:
    """The ``config`` of ``duckdb.connect`` for ``database`` (None: in-memory)."""
    return {
        "memory_limit": settings.duckdb_memory_limit,
        "threads": str(settings.duckdb_threads),
        "temp_directory": str(spill_dir(settings, database)),
    }


def open_duckdb(
    settings: Settings,
    database: Path | None = None,
    *,
    read_only: bool = False,
    config: Mapping[str, str] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection within the settings' limits: on ``database``, or in memory;
    ``config``: more of DuckDB's settings, as it starts."""
    return duckdb.connect(
        str(database) if database is not None else ":memory:",
        read_only=read_only,
        config={**duckdb_config(settings, database), **(config or {})},
    )
