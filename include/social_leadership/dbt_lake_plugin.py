"""dbt-duckdb plugin of the ``lake`` target (dbt_project/profiles.yml): loads the DuckLake
extensions from their wheels before dbt-duckdb attaches the working lake, and makes the
lake every cursor's default database.

dbt-duckdb's own ``extensions:`` list would ``INSTALL`` them, which downloads; the plugin
hook runs after the connection opens and before the profile's ``attach:`` entries. The
project's macros name dbt's bookkeeping tables without a database (``audit.*``), as the
pipeline's own SQL does: with the lake the default, they land in it, not in the in-memory
database dbt starts from.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from social_leadership.settings import load_settings
from social_leadership.sql import quote_identifier
from social_leadership.warehouse_backend import (
    LAKE_ALIAS,
    configure_object_store,
    load_lake_extensions,
    prepare_lake_storage,
)


class Plugin(BasePlugin):
    """Named by module in the profile; dbt-duckdb instantiates it (``BasePlugin.create``)."""

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        # The settings dbt_runner passed in the environment (SLW_*), as for every process.
        settings = load_settings()
        prepare_lake_storage(settings)
        load_lake_extensions(conn, settings)
        configure_object_store(conn, settings)

    def configure_cursor(self, cursor: DuckDBPyConnection) -> DuckDBPyConnection:
        cursor.execute(f"use {quote_identifier(LAKE_ALIAS)}")
        return cursor
