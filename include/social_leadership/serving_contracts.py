"""What each mart promises its readers, read from dbt's manifest.

The dbt YAML is the one place a mart is described: its description, each column's, and in
``config: meta:`` its grain, primary key and foreign keys. dbt's ``not_null_columns`` tests
(one a model, macros/tests/not_null_columns.sql) and any ``not_null`` test name the columns
that cannot be null. Publishing turns these into comments, NOT NULL, PRIMARY KEY and
FOREIGN KEY declarations of the serving tables and into Parquet metadata, so a BI tool sees
what the dbt docs say without reading them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from social_leadership.warehouse import MARTS_SCHEMA


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    references: str
    referenced_columns: tuple[str, ...]
    # False: documented (table comment, Parquet metadata) but not declared as a constraint
    # in the single file, where DuckDB keeps an index per foreign key: on a fact of
    # millions of rows each one costs its size again in the file and in every publish.
    declared: bool = True

    def describe(self) -> str:
        return (
            f"{', '.join(self.columns)} -> {self.references}.{', '.join(self.referenced_columns)}"
        )


@dataclass(frozen=True)
class MartContract:
    name: str
    description: str = ""
    grain: str = ""
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    not_null: frozenset[str] = frozenset()
    column_descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def declares_foreign_key(self) -> bool:
        """Whether one of its foreign keys is declared as a constraint."""
        return any(key.declared for key in self.foreign_keys)

    def required_columns(self) -> frozenset[str]:
        """Columns declared NOT NULL: the primary key's and those dbt tests as not null."""
        return self.not_null | frozenset(self.primary_key)


def columns_tested_not_null(test: dict[str, Any]) -> tuple[str, ...]:
    """The columns a dbt test node of the manifest proves not null: every column of a
    ``not_null_columns`` test, the column of a ``not_null`` test, none for other tests nor
    for a test limited by a ``where`` (it proves nothing of the other rows)."""
    metadata = test.get("test_metadata") or {}
    if (test.get("config") or {}).get("where"):
        return ()
    if metadata.get("name") == "not_null_columns":
        return tuple((metadata.get("kwargs") or {}).get("column_names") or ())
    if metadata.get("name") == "not_null" and test.get("column_name"):
        return (str(test["column_name"]),)
    return ()


class ContractError(ValueError):
    """The manifest declares keys that do not fit the marts (a typo in the dbt YAML)."""


def _meta(node: dict[str, Any]) -> dict[str, Any]:
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def _foreign_keys(model: str, raw: Any) -> tuple[ForeignKey, ...]:
    keys = []
    for entry in raw or ():
        try:
            columns = tuple(entry["columns"])
            referenced = tuple(entry.get("referenced_columns") or columns)
            declared = bool(entry.get("declared", True))
            keys.append(ForeignKey(columns, str(entry["references"]), referenced, declared))
        except (KeyError, TypeError) as error:
            raise ContractError(
                f"{model}: meta.foreign_keys entries need 'columns' and 'references' "
                f"(got {entry!r})"
            ) from error
    return tuple(keys)


def read_contracts(manifest_path: Path) -> dict[str, MartContract]:
    """Every model of schema ``marts`` in ``manifest_path`` by name; {} without a manifest
    (the tables are then published without keys or descriptions, and a warning says so)."""
    if not manifest_path.is_file():
        return {}
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    nodes = manifest.get("nodes", {})
    models = {
        node["unique_id"]: node
        for node in nodes.values()
        if node.get("resource_type") == "model" and node.get("schema") == MARTS_SCHEMA
    }
    not_null: dict[str, set[str]] = {unique_id: set() for unique_id in models}
    for node in nodes.values():
        attached = node.get("attached_node")
        if attached in not_null:
            not_null[attached].update(columns_tested_not_null(node))
    contracts = {}
    for unique_id, node in models.items():
        name = node.get("alias") or node["name"]
        meta = _meta(node)
        contracts[name] = MartContract(
            name=name,
            description=(node.get("description") or "").strip(),
            grain=str(meta.get("grain") or "").strip(),
            primary_key=tuple(meta.get("primary_key") or ()),
            foreign_keys=_foreign_keys(name, meta.get("foreign_keys")),
            not_null=frozenset(not_null[unique_id]),
            column_descriptions={
                column: (spec.get("description") or "").strip()
                for column, spec in (node.get("columns") or {}).items()
            },
        )
    return contracts


def check_contracts(
    contracts: dict[str, MartContract], columns: dict[str, tuple[str, ...]]
) -> list[str]:
    """Problems with the declared keys against the tables' real ``columns``; [] when none.

    A key naming a missing column or table would make the serving DDL fail half-way, so it
    is caught before anything is written.
    """
    problems = []
    for name, contract in sorted(contracts.items()):
        if name not in columns:
            continue
        present = set(columns[name])
        for column in sorted(set(contract.primary_key) - present):
            problems.append(f"{name}: primary key column {column!r} is not in the table")
        for key in contract.foreign_keys:
            for column in sorted(set(key.columns) - present):
                problems.append(f"{name}: foreign key column {column!r} is not in the table")
            target = contracts.get(key.references)
            if key.references not in columns or target is None:
                problems.append(f"{name}: foreign key references unknown mart {key.references}")
            elif tuple(target.primary_key) != key.referenced_columns:
                problems.append(
                    f"{name}: foreign key to {key.references}{list(key.referenced_columns)} "
                    f"must reference its primary key {list(target.primary_key)}"
                )
    return problems


def referenced_tables(contracts: dict[str, MartContract]) -> frozenset[str]:
    """Marts some other mart's foreign key points at (the dimensions)."""
    return frozenset(key.references for c in contracts.values() for key in c.foreign_keys)
