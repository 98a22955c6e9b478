"""The raw contract is stated once: the DDL the loaders run. dbt's sources, the staging
models and the macros must agree with it, and a test fails as soon as one drifts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from social_leadership.warehouse import RAW_DDL

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "dbt_project"
SOURCES_YAML = DBT_PROJECT / "models" / "staging" / "_staging__sources.yml"
STAGING = DBT_PROJECT / "models" / "staging"


def _catalog() -> dict[str, list[tuple[str, str]]]:
    """(column, DuckDB type) per ``schema.table`` of the executed DDL, in column order."""
    con = duckdb.connect()
    con.execute(RAW_DDL)
    rows = con.execute(
        "select schema_name, table_name, column_name, data_type from duckdb_columns() "
        "where database_name = current_database() order by schema_name, table_name, "
        "column_index"
    ).fetchall()
    catalog: dict[str, list[tuple[str, str]]] = {}
    for schema, table, column, data_type in rows:
        catalog.setdefault(f"{schema}.{table}", []).append((column, data_type))
    return catalog


def _duckdb_type(declared: str) -> str:
    """How DuckDB names a type written in YAML or SQL (timestamptz, int, ...)."""
    con = duckdb.connect()
    con.execute(f"create table probe (value {declared})")
    row = con.execute("select data_type from duckdb_columns() where table_name = 'probe'")
    return str(row.fetchone()[0])  # type: ignore[index]


def _sources() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    document = yaml.safe_load(SOURCES_YAML.read_text(encoding="utf-8"))
    return [(source, table) for source in document["sources"] for table in source["tables"]]


def test_the_sources_yaml_states_each_raw_table_exactly_as_the_ddl_does() -> None:
    catalog = _catalog()
    drift = []
    for source, table in _sources():
        name = f"{source['schema']}.{table['name']}"
        declared = [
            (column["name"], _duckdb_type(column["data_type"]))
            for column in table.get("columns", [])
        ]
        if declared != catalog.get(name):
            drift.append(f"{name}: yaml {declared} != ddl {catalog.get(name)}")
        drift.extend(
            f"{name}.{column['name']}: no description"
            for column in table.get("columns", [])
            if not str(column.get("description") or "").strip()
        )
        if not str(table.get("description") or "").strip():
            drift.append(f"{name}: no description")
    assert drift == []


def test_every_raw_table_a_staging_model_reads_is_a_source() -> None:
    read = {
        match
        for path in STAGING.glob("stg_*.sql")
        for match in re.findall(r"source\('(\w+)',\s*'(\w+)'\)", path.read_text(encoding="utf-8"))
    }
    declared = {(source["name"], table["name"]) for source, table in _sources()}
    assert read <= declared


def test_the_sources_yaml_is_the_rendering_of_the_contract() -> None:
    from social_leadership.raw_contract import render_sources_yaml

    assert SOURCES_YAML.read_text(encoding="utf-8") == render_sources_yaml(), (
        "regenerate with: .venv/bin/python -m social_leadership.raw_contract"
    )


def test_no_macro_creates_a_table_of_the_raw_contract() -> None:
    contract = set(_catalog())
    created = {
        (path.name, name.lower())
        for path in (DBT_PROJECT / "macros").rglob("*.sql")
        for name in re.findall(
            r"create\s+table\s+(?:if\s+not\s+exists\s+)?[\"' ~]*([a-z_]+\.[a-z_]+)",
            re.sub(r"[\"']\s*~\s*[\"']", "", path.read_text(encoding="utf-8")),
            flags=re.IGNORECASE,
        )
    }
    assert [pair for pair in created if pair[1] in contract] == []


CAST = re.compile(r"cast\(\s*(\w+)\s+as\s+([\w\[\]]+)\s*\)", re.IGNORECASE)


@pytest.mark.parametrize("model", sorted(p.name for p in STAGING.glob("stg_*.sql")))
def test_staging_casts_only_what_the_ddl_does_not_already_type(model: str) -> None:
    text = (STAGING / model).read_text(encoding="utf-8")
    source = re.search(r"source\('(\w+)',\s*'(\w+)'\)", text)
    assert source is not None
    schema = next(s["schema"] for s, t in _sources() if s["name"] == source.group(1))
    raw_types = dict(_catalog()[f"{schema}.{source.group(2)}"])
    repeated = [
        f"cast({column} as {declared})"
        for column, declared in CAST.findall(text)
        if raw_types.get(column) == _duckdb_type(declared)
    ]
    assert repeated == []


def test_a_column_table_reads_types_nullability_continuations_and_shared_columns() -> None:
    from social_leadership.raw_contract import SHARED_COLUMNS, Column, _columns

    columns = _columns(
        """
        platform    varchar  Platform id.
        account_id  varchar? Platform's own id,
                             when returned.
        loaded_at
        """
    )

    assert columns == (
        Column("platform", "varchar", "Platform id."),
        Column("account_id", "varchar", "Platform's own id, when returned.", nullable=True),
        SHARED_COLUMNS["loaded_at"],
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("platform  varchar", "column 'platform': no description"),
        ("platfrom", "column 'platfrom': no type and no shared column of that name"),
    ],
)
def test_a_column_table_line_that_says_too_little_is_refused(table: str, message: str) -> None:
    from social_leadership.raw_contract import _columns

    with pytest.raises(ValueError, match=re.escape(message)):
        _columns(table)


def test_a_warehouse_from_before_the_synthetic_flags_is_migrated() -> None:
    import duckdb

    from social_leadership.raw_contract import RAW_DDL
    from social_leadership.warehouse import ensure_schema

    con = duckdb.connect()
    # The contract as it was: raw.platform_metrics and raw.history_imports without the flag.
    con.execute(RAW_DDL.replace(",\n    is_synthetic boolean not null\n);", "\n);"))
    assert con.execute(
        "select count(*) from duckdb_columns() where schema_name = 'raw' "
        "and column_name = 'is_synthetic' and table_name in ('platform_metrics', 'history_imports')"
    ).fetchone() == (0,)
    con.execute("insert into raw.history_imports values (1, 'h.csv', 1, 1, 0, now())")

    ensure_schema(con)
    ensure_schema(con)

    assert con.execute("select is_synthetic from raw.history_imports").fetchall() == [(False,)]
    flags = con.execute(
        "select table_name, is_nullable, column_default from duckdb_columns() "
        "where schema_name = 'raw' and column_name = 'is_synthetic' order by table_name"
    ).fetchall()
    assert ("history_imports", False, None) in flags
    assert ("platform_metrics", False, None) in flags


def test_a_nullable_column_a_later_version_added_is_added_whatever_else_is_attached() -> None:
    import duckdb

    from social_leadership.raw_contract import RAW_DDL
    from social_leadership.warehouse import ensure_schema

    con = duckdb.connect()
    con.execute(RAW_DDL)
    con.execute("alter table raw.survey_results drop column margin_of_error_pct")
    # Another database with the whole contract attached beside it: its columns are not
    # the warehouse's.
    con.execute("attach ':memory:' as other")
    con.execute("use other")
    con.execute(RAW_DDL)
    con.execute("use memory")

    ensure_schema(con)
    ensure_schema(con)

    assert con.execute(
        "select data_type, is_nullable from duckdb_columns() where database_name = 'memory' "
        "and table_name = 'survey_results' and column_name = 'margin_of_error_pct'"
    ).fetchall() == [("DOUBLE", True)]
