"""Which incremental models of the warehouse were built with other columns than this
version of the dbt project builds.

Incremental models fail on a schema change (``on_schema_change='fail'``: adding a column
to old rows would leave it null where the model gives it a value), so a warehouse built by
an earlier version (say, before ``fct_executive_reach_daily.is_synthetic``) needs one full
refresh. The columns are read from the models' YAML, which holds exactly the built columns
(tests/include/test_dbt_project_rules.py), so no dbt parse is needed to plan the build.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import yaml

_INCREMENTAL = re.compile(r"materialized\s*=\s*['\"]incremental['\"]")
# libyaml's loader when PyYAML has it (its wheels do): read before every build, the
# project's YAML took the pure-Python loader about 0.12 s of a build task's 0.4 s of own work.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def incremental_model_columns(project_dir: Path) -> dict[tuple[str, str], frozenset[str]]:
    """(schema, model) -> documented columns, for every incremental model of the project.

    A model's schema is its folder's name (the project's generate_schema_name)."""
    models_dir = project_dir / "models"
    incremental = {
        path.stem: path.parent.name
        for path in models_dir.rglob("*.sql")
        if _INCREMENTAL.search(path.read_text(encoding="utf-8"))
    }
    columns: dict[tuple[str, str], frozenset[str]] = {}
    for path in models_dir.rglob("*.yml"):
        text = path.read_text(encoding="utf-8")
        document = yaml.load(text, Loader=_SAFE_LOADER) or {}  # noqa: S506 - a safe loader
        for model in document.get("models") or []:
            name = model.get("name")
            if name in incremental:
                columns[(incremental[name], name)] = frozenset(
                    column["name"] for column in model.get("columns") or []
                )
    return columns


def changed_incremental_models(con: duckdb.DuckDBPyConnection, project_dir: Path) -> list[str]:
    """``schema.model`` of each incremental table in the warehouse whose columns differ from
    what the project builds now (a table not built yet is no change: dbt builds it whole)."""
    changed = []
    for (schema, name), expected in sorted(incremental_model_columns(project_dir).items()):
        built = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [schema, name],
            ).fetchall()
        }
        if built and built != expected:
            changed.append(f"{schema}.{name}")
    return changed
