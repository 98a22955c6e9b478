"""Quoting for SQL the project writes itself (DuckDB dialect): the one place that does it.

Values the driver can bind (``?`` and ``$name`` parameters) are bound. What cannot be bound
is quoted here: a file path given to ``read_csv`` or ``COPY ... TO``, a database to
``ATTACH``, a table comment, a column name taken from a file's header.
"""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """``name`` as a DuckDB identifier: in double quotes, a double quote in it doubled, so a
    header cell such as ``Anteil "gesamt"`` or ``Land; drop table x`` is one column name."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``text`` as a DuckDB string literal: in single quotes, a single quote in it doubled."""
    return "'" + text.replace("'", "''") + "'"


def qualified_name(schema: str, table: str) -> str:
    """``schema.table``, each part quoted."""
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"
