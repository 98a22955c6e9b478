"""dbt-project-evaluator's rules, checked on the manifest of a real build, plus SQLFluff and
``dbt docs generate``. dbt hub packages cannot be installed here, so the rules we hold the
project to are written out below.

Layers, in order: staging (and seeds) < intermediate (and snapshots, which record an
intermediate model over time) < marts. A model may reference its own layer or an earlier
one, never a later one; only staging models read sources; marts are dim_ or fct_ models.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from slw_testing import PARSE_SEED_VARIABLE

from social_leadership.dbt_runner import DbtError, run_dbt
from social_leadership.settings import Settings

if TYPE_CHECKING:
    from conftest import BuiltWarehouse

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "dbt_project"

NAME_RULES = {
    "staging": re.compile(r"^stg_[a-z0-9]+__[a-z0-9_]+s$"),
    "intermediate": re.compile(r"^int_[a-z0-9_]+_[a-z0-9]+ed$"),
    "marts": re.compile(r"^(dim|fct)_[a-z0-9_]+$"),
}
LAYER_RANK = {"seed": 0, "staging": 0, "snapshot": 1, "intermediate": 1, "marts": 2}


@pytest.fixture(scope="module")
def manifest(synthetic_built_warehouse: BuiltWarehouse) -> dict[str, Any]:
    path = synthetic_built_warehouse.settings.dbt_target_dir / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


def project_nodes(manifest: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == resource_type and node["package_name"] == "social_leadership"
    ]


def folder_of(node: dict[str, Any]) -> str:
    return Path(node["original_file_path"]).parts[1]


def layer_of(manifest: dict[str, Any], unique_id: str) -> int:
    node = manifest["nodes"][unique_id]
    if node["resource_type"] in ("seed", "snapshot"):
        return LAYER_RANK[node["resource_type"]]
    return LAYER_RANK[folder_of(node)]


def test_models_live_in_the_three_layers_with_their_prefixes(manifest: dict[str, Any]) -> None:
    misplaced = []
    for node in project_nodes(manifest, "model"):
        folder = folder_of(node)
        rule = NAME_RULES.get(folder)
        if rule is None or not rule.match(node["name"]):
            misplaced.append(f"{folder}/{node['name']}")
        if node["schema"] != folder:
            misplaced.append(f"{node['name']} builds in schema {node['schema']}")
    assert misplaced == []
    snapshots = [node["name"] for node in project_nodes(manifest, "snapshot")]
    assert snapshots
    assert all(name.startswith("snp_") for name in snapshots)


def test_only_staging_models_call_source(manifest: dict[str, Any]) -> None:
    offenders = [
        node["name"]
        for node in [*project_nodes(manifest, "model"), *project_nodes(manifest, "snapshot")]
        if folder_of(node) != "staging"
        and any(dep.startswith("source.") for dep in node["depends_on"]["nodes"])
    ]
    assert offenders == []


def test_no_model_references_a_later_layer(manifest: dict[str, Any]) -> None:
    offenders = []
    for node in [*project_nodes(manifest, "model"), *project_nodes(manifest, "snapshot")]:
        own = layer_of(manifest, node["unique_id"])
        for dep in node["depends_on"]["nodes"]:
            if dep.startswith(("model.", "snapshot.", "seed.")) and layer_of(manifest, dep) > own:
                offenders.append(f"{node['name']} -> {dep}")
    assert offenders == []


def test_staging_models_reference_no_models(manifest: dict[str, Any]) -> None:
    offenders = [
        node["name"]
        for node in project_nodes(manifest, "model")
        if folder_of(node) == "staging"
        and any(dep.startswith("model.") for dep in node["depends_on"]["nodes"])
    ]
    assert offenders == []


def test_every_model_and_column_is_described(
    manifest: dict[str, Any], synthetic_built_warehouse: BuiltWarehouse
) -> None:
    missing = []
    with duckdb.connect(
        str(synthetic_built_warehouse.settings.warehouse_path), read_only=True
    ) as con:
        for node in [
            *project_nodes(manifest, "model"),
            *project_nodes(manifest, "snapshot"),
            *project_nodes(manifest, "seed"),
        ]:
            if not node["description"].strip():
                missing.append(f"{node['name']}: no description")
            built = [
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ?",
                    [node["schema"], node["alias"]],
                ).fetchall()
            ]
            documented = {
                name: column["description"].strip() for name, column in node["columns"].items()
            }
            missing.extend(
                f"{node['name']}.{column}"
                for column in built
                if column not in documented or not documented[column]
            )
            missing.extend(
                f"{node['name']}.{column} documented but not built"
                for column in documented
                if built and column not in built
            )
    assert missing == []


def test_every_model_has_a_tested_unique_key(manifest: dict[str, Any]) -> None:
    keyed: set[str] = set()
    for node in manifest["nodes"].values():
        metadata = node.get("test_metadata") or {}
        if node["resource_type"] == "test" and metadata.get("name") in (
            "unique",
            "unique_combination_of_columns",
        ):
            keyed.update(node["depends_on"]["nodes"])
    unkeyed = [
        node["name"]
        for node in project_nodes(manifest, "model")
        if folder_of(node) != "staging" and node["unique_id"] not in keyed
    ]
    assert unkeyed == []


def test_required_columns_are_one_test_a_node_naming_documented_columns(
    manifest: dict[str, Any],
) -> None:
    """A model's, seed's or snapshot's required columns are one not_null_columns test
    (macros/tests/not_null_columns.sql), not a not_null test each: every dbt node costs a
    build its own work. It is named not_null_columns_<node> (the default name strings
    every column together), and the columns it lists exist in the node's YAML."""
    wrong = []
    per_node: dict[str, int] = {}
    for test in project_nodes(manifest, "test"):
        name = (test.get("test_metadata") or {}).get("name")
        attached = test.get("attached_node") or ""
        # Sources, and the snapshot defined in YAML (dbt-core issue 10903, see its YAML and
        # the partial parse test below), keep dbt's own not_null.
        if name == "not_null" and not attached.startswith(("source.", "snapshot.")):
            wrong.append(f"{test['name']}: a not_null test of one column")
        if name != "not_null_columns":
            continue
        per_node[attached] = per_node.get(attached, 0) + 1
        node = manifest["nodes"][attached]
        if test["name"] != f"not_null_columns_{node['name']}":
            wrong.append(f"{test['name']}: not named not_null_columns_{node['name']}")
        wrong.extend(
            f"{node['name']}.{column}: in not_null_columns, not in the YAML"
            for column in test["test_metadata"]["kwargs"]["column_names"]
            if column not in node["columns"]
        )
    wrong.extend(
        f"{node}: {count} not_null_columns tests" for node, count in per_node.items() if count > 1
    )
    assert len(per_node) > 20
    assert wrong == []


@pytest.mark.dbt
def test_a_not_null_columns_test_without_columns_stops_the_parse_saying_so(
    copied_built_warehouse: Settings, tmp_path: Path
) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    models = project / "models" / "marts" / "_marts__models.yml"
    listed = "column_names: [sector_code, sector_name]"
    assert listed in models.read_text(encoding="utf-8")
    models.write_text(
        models.read_text(encoding="utf-8").replace(listed, "column_names: []"), encoding="utf-8"
    )

    with pytest.raises(DbtError) as failed:
        run_dbt(["parse"], dataclasses.replace(copied_built_warehouse, dbt_project_dir=project))

    output = failed.value.result.output_tail
    assert "Compilation Error in test not_null_columns_dim_sector" in output
    assert "column_names must be a non-empty list of the columns to check" in output


@pytest.mark.dbt
def test_a_changed_project_test_macro_keeps_the_next_parse_whole(
    copied_built_warehouse: Settings, tmp_path: Path
) -> None:
    """dbt parses again only what a changed macro touches. A snapshot defined in YAML whose
    YAML used a project macro was lost from that partial parse (dbt-core issue 10903), so
    the next command failed ("depends on a node named 'snp_roster__executives' which was
    not found") until a full parse."""
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    settings = dataclasses.replace(copied_built_warehouse, dbt_project_dir=project)
    run_dbt(["parse"], settings)
    for macro in (project / "macros" / "tests").glob("*.sql"):
        macro.write_text(macro.read_text(encoding="utf-8") + "\n{#- changed -#}\n")

    run_dbt(["parse"], settings)

    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text("utf-8"))
    assert "snapshot.social_leadership.snp_roster__executives" in manifest["nodes"]


@pytest.mark.dbt
def test_dbt_s_own_debug_file_log_is_written_only_when_asked_for(
    copied_built_warehouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt writes every debug line to its file log (dbt.log) unless told otherwise: the
    pipeline's commands leave it off, and DBT_LOG_LEVEL_FILE turns it back on."""
    settings = copied_built_warehouse
    log = settings.logs_dir / "dbt" / "dbt.log"
    log.unlink(missing_ok=True)
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    run_dbt(["parse"], settings)
    assert not log.exists()

    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    run_dbt(["parse"], settings)
    assert "[debug]" in log.read_text(encoding="utf-8")


@pytest.mark.dbt
def test_seeds_load_from_a_project_under_a_folder_whose_name_holds_a_quote(
    copied_built_warehouse: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clone under /home/o'brien/: dbt-duckdb quoted the seed file's path as it was, and
    # every seed failed with a syntax error, so no warehouse_build ever built.
    # (The session's saved parse is the repository's project, its paths too: not read.)
    monkeypatch.delenv(PARSE_SEED_VARIABLE, raising=False)
    project = tmp_path / "o'brien" / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    settings = dataclasses.replace(copied_built_warehouse, dbt_project_dir=project)

    run_dbt(["seed", "--select", "gics_sectors", "--full-refresh"], settings)

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = con.execute("select count(*) from staging.gics_sectors").fetchone()
    assert loaded == (11,)


# The settings a compose container passes empty when .env leaves them so (their default).
EMPTY_IN_COMPOSE = (
    "SLW_DUCKDB_MEMORY_LIMIT",
    "SLW_DUCKDB_THREADS",
    "SLW_GAP_FILL_DAYS",
    "SLW_LATE_DATA_DAYS",
)


@pytest.mark.dbt
@pytest.mark.parametrize("empty_settings", [False, True], ids=["unset", "empty"])
def test_dbt_started_by_hand_needs_only_the_data_folder_and_warehouse_path(
    copied_built_warehouse: Settings, tmp_path: Path, empty_settings: bool
) -> None:
    # README ("Settings"): profiles.yml falls back to SLW_WAREHOUSE_PATH and SLW_DATA_DIR
    # for a dbt started by hand. With only those two exported, every dbt command stopped at
    # "Env var required but not provided: 'SLW_DUCKDB_MEMORY_LIMIT'" (probe docs63). An
    # empty setting is its default, as for the pipeline: in a compose container (which
    # passes every unset one empty) dbt failed "Could not convert string '' to INT64".
    settings = copied_built_warehouse
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "SLW_DATA_DIR": str(settings.data_dir),
        "SLW_WAREHOUSE_PATH": str(settings.warehouse_path),
    }
    if empty_settings:
        env.update(dict.fromkeys(EMPTY_IN_COMPOSE, ""))
    dbt = Path(sys.executable).with_name("dbt")
    shown = subprocess.run(
        [
            str(dbt),
            "show",
            "--inline",
            "select count(*) as sectors, {{ var('gap_fill_days') }} as gap_fill_days "
            "from marts.dim_sector",
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        cwd=DBT_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    assert re.search(r"\|\s*11\s*\|\s*7\s*\|", shown.stdout), shown.stdout[-2000:]


def test_the_profile_s_defaults_are_the_settings_defaults() -> None:
    profile = (DBT_PROJECT / "profiles.yml").read_text(encoding="utf-8")
    defaults = re.findall(r"env_var\('SLW_(DUCKDB_[A-Z_]+)', ''\) or '([^']*)'", profile)
    fields = {field.name: field.default for field in dataclasses.fields(Settings)}

    assert {name for name, _ in defaults} == {"DUCKDB_MEMORY_LIMIT", "DUCKDB_THREADS"}
    for name, default in defaults:
        assert default == str(fields[name.lower()]), name


def test_sources_declare_freshness(manifest: dict[str, Any]) -> None:
    fresh = {
        source["name"]
        for source in manifest["sources"].values()
        if source.get("loaded_at_field") and (source.get("freshness") or {}).get("error_after")
    }
    assert {"roster_executives", "roster_accounts", "platform_metrics"} <= fresh


def test_exposures_cover_serving_and_weekly_report(manifest: dict[str, Any]) -> None:
    exposures = {node["name"]: node for node in manifest["exposures"].values()}
    assert {"serving_copy", "weekly_report"} <= set(exposures)
    assert (
        "model.social_leadership.fct_country_comparison_yearly"
        in (exposures["weekly_report"]["depends_on"]["nodes"])
    )


def test_sqlfluff_finds_no_violations() -> None:
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    completed = subprocess.run(
        [str(sqlfluff), "lint", "models", "macros", "snapshots", "--nofail", "--format", "json"],
        cwd=DBT_PROJECT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.stdout, completed.stderr
    violations = [
        f"{result['filepath']}:{violation['start_line_no']} {violation['code']} "
        f"{violation['description']}"
        for result in json.loads(completed.stdout)
        for violation in result["violations"]
    ]
    assert violations == []


def test_docs_generate_writes_a_catalog(copied_built_warehouse: Settings) -> None:
    run_dbt(["docs", "generate"], copied_built_warehouse)
    catalog = json.loads(
        (copied_built_warehouse.dbt_target_dir / "catalog.json").read_text(encoding="utf-8")
    )
    dim = catalog["nodes"]["model.social_leadership.dim_executive"]
    assert {"valid_from", "valid_to", "is_current"} <= set(dim["columns"])
    assert (copied_built_warehouse.dbt_target_dir / "index.html").is_file()
