"""The marts' keys and comments, as the publish reads them: ``config.meta`` of each mart in
dbt's manifest (grain, primary_key, foreign_keys), proven by dbt tests and by the built
data, and the YAML descriptions persisted as comments (``persist_docs``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from social_leadership.serving_contracts import columns_tested_not_null

if TYPE_CHECKING:
    from conftest import BuiltWarehouse


@pytest.fixture(scope="module")
def manifest(synthetic_built_warehouse: BuiltWarehouse) -> dict[str, Any]:
    path = synthetic_built_warehouse.settings.dbt_target_dir / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def marts(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }


@pytest.fixture(scope="module")
def warehouse(synthetic_built_warehouse: BuiltWarehouse) -> duckdb.DuckDBPyConnection:
    path = synthetic_built_warehouse.settings.warehouse_path
    with duckdb.connect(str(path), read_only=True) as con:
        yield con


def _meta(node: dict[str, Any]) -> dict[str, Any]:
    return node["config"].get("meta") or {}


def _tests_of(manifest: dict[str, Any], model: str) -> list[tuple[str, tuple[str, ...]]]:
    """Each data test on ``model`` as (test name, the columns it names)."""
    tests = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test":
            continue
        if (node.get("attached_node") or "").rsplit(".", 1)[-1] != model:
            continue
        metadata = node.get("test_metadata") or {}
        kwargs = metadata.get("kwargs", {})
        # A test limited by a where (only current versions, say) proves nothing of the key.
        if node["config"].get("where"):
            continue
        if metadata.get("name") == "not_null_columns":
            # One test a model checks every column that must not be null: a not_null each.
            tests += [("not_null", (column,)) for column in columns_tested_not_null(node)]
            continue
        if kwargs.get("combination_of_columns"):
            columns = tuple(kwargs["combination_of_columns"])
        else:
            columns = (node.get("column_name") or "",)
        tests.append((metadata.get("name", ""), columns))
    return tests


def test_every_mart_declares_grain_primary_key_and_foreign_keys(
    marts: dict[str, dict[str, Any]],
) -> None:
    assert len(marts) == 13
    for name, node in marts.items():
        meta = _meta(node)
        assert isinstance(meta.get("grain"), str), name
        assert meta["grain"].strip(), name
        assert isinstance(meta.get("primary_key"), list), name
        assert meta["primary_key"], name
        assert isinstance(meta.get("foreign_keys"), list), name


def test_primary_keys_are_tested_unique_and_not_null(
    manifest: dict[str, Any], marts: dict[str, dict[str, Any]]
) -> None:
    unproven = []
    for name, node in marts.items():
        key = tuple(_meta(node)["primary_key"])
        tests = _tests_of(manifest, name)
        if ("unique", key) not in tests and ("unique_combination_of_columns", key) not in tests:
            unproven.append(f"{name}: no uniqueness test of {key}")
        unproven += [
            f"{name}.{column}: no not_null test"
            for column in key
            if ("not_null", (column,)) not in tests
        ]
    assert unproven == []


def test_foreign_keys_reference_a_dimension_primary_key_and_are_tested(
    manifest: dict[str, Any], marts: dict[str, dict[str, Any]]
) -> None:
    wrong = []
    for name, node in marts.items():
        tests = _tests_of(manifest, name)
        for foreign_key in _meta(node)["foreign_keys"]:
            target = marts.get(foreign_key["references"])
            if target is None:
                wrong.append(f"{name}: references unknown {foreign_key['references']}")
                continue
            if foreign_key["referenced_columns"] != _meta(target)["primary_key"]:
                wrong.append(f"{name} -> {target['name']}: not its primary key")
            if len(foreign_key["columns"]) != len(foreign_key["referenced_columns"]):
                wrong.append(f"{name} -> {target['name']}: column counts differ")
            if len(foreign_key["columns"]) == 1:
                if ("relationships", (foreign_key["columns"][0],)) not in tests:
                    wrong.append(f"{name}.{foreign_key['columns'][0]}: no relationships test")
                if ("not_null", (foreign_key["columns"][0],)) not in tests:
                    wrong.append(f"{name}.{foreign_key['columns'][0]}: no not_null test")
    assert wrong == []
    # The star's joins: each fact reaches its dimensions by their keys.
    reach = {fk["references"] for fk in _meta(marts["fct_executive_reach_daily"])["foreign_keys"]}
    assert {"dim_executive", "dim_platform", "dim_date", "dim_country", "dim_sector"} <= reach


def test_keys_hold_on_the_built_data(
    warehouse: duckdb.DuckDBPyConnection, marts: dict[str, dict[str, Any]]
) -> None:
    # What the serving tables' PRIMARY KEY and FOREIGN KEY constraints will demand.
    for name, node in marts.items():
        key = ", ".join(_meta(node)["primary_key"])
        duplicates = warehouse.execute(
            f"select count(*) from (select {key} from marts.{name} group by all "
            "having count(*) > 1)"
        ).fetchone()
        assert duplicates == (0,), name
        for foreign_key in _meta(node)["foreign_keys"]:
            on = " and ".join(
                f"f.{column} = d.{referenced}"
                for column, referenced in zip(
                    foreign_key["columns"], foreign_key["referenced_columns"], strict=True
                )
            )
            orphans = warehouse.execute(
                f"select count(*) from marts.{name} as f "
                f"anti join marts.{foreign_key['references']} as d on {on}"
            ).fetchone()
            assert orphans == (0,), (name, foreign_key)


def test_every_mart_table_and_column_carries_its_description_as_a_comment(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    uncommented = warehouse.execute(
        "select count(*) from duckdb_columns() where schema_name = 'marts' and comment is null"
    ).fetchone()
    assert uncommented == (0,)
    tables = warehouse.execute(
        "select count(*), count(comment) from duckdb_tables() where schema_name = 'marts'"
    ).fetchone()
    assert tables == (13, 13)


def test_the_columns_a_test_proves_not_null() -> None:
    def test(name: str, column: str | None = None, **config: Any) -> dict[str, Any]:
        kwargs = {"column_names": ["a", "b"]} if name == "not_null_columns" else {}
        return {
            "test_metadata": {"name": name, "kwargs": kwargs},
            "column_name": column,
            "config": config,
        }

    assert columns_tested_not_null(test("not_null_columns")) == ("a", "b")
    assert columns_tested_not_null(test("not_null", "c")) == ("c",)
    assert columns_tested_not_null(test("unique", "c")) == ()
    # Limited to some rows, it proves nothing of the others.
    assert columns_tested_not_null(test("not_null_columns", where="is_current")) == ()
    assert columns_tested_not_null(test("not_null", "c", where="is_current")) == ()
