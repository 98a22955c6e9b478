"""End to end: every dbt node of a warehouse_build run, read through Airflow's REST API.

The session's demo pipeline run (tests/e2e/conftest.py) is read by the module; an
``airflow api-server`` on a loopback port reads the same Airflow home, as the UI would.
Then a run with a failing dbt test: its node's instance fails, the nodes after it are
skipped, and Airflow's retries of the build run ``dbt retry``: only what failed or was
skipped runs again.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

NODE_TYPES = ("model", "seed", "snapshot", "test", "unit_test")


@pytest.fixture
def pipeline(demo_run):
    """The session's demo run (tests/e2e/conftest.py)."""
    return demo_run.settings, demo_run.airflow_home


class RestApi:
    """A token-authenticated client of Airflow's /api/v2 on loopback."""

    def __init__(self, base_url: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=f"{base_url}/api/v2/",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=30,
        )

    def get(self, path: str, **params: object) -> dict:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def rest_api(shared_demo_run):
    """The session's ``airflow api-server`` on the demo run's Airflow home, as the UI would
    read it (tests/e2e/conftest.py), logged in as admin."""
    server = shared_demo_run.api_server()
    return RestApi(server.base_url, server.token)


def _latest_run_id(airflow_home: Path) -> str:
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        (run_id,) = meta.execute(
            "select run_id from dag_run where dag_id = 'warehouse_build' order by id desc limit 1"
        ).fetchone()
    return run_id


def _manifest_nodes(settings, run_id: str) -> set[str]:
    from social_leadership.dbt_nodes import run_folder

    manifest = json.loads((run_folder(settings, run_id) / "manifest.json").read_text())
    return {
        unique_id
        for unique_id, node in {**manifest["nodes"], **manifest["unit_tests"]}.items()
        if node["resource_type"] in NODE_TYPES
    }


def test_the_rest_api_shows_every_dbt_node_with_its_state(pipeline, rest_api):
    settings, airflow_home = pipeline
    run_id = _latest_run_id(airflow_home)
    run_path = f"dags/warehouse_build/dagRuns/{urllib.parse.quote(run_id, safe='')}"
    instances = rest_api.get(f"{run_path}/taskInstances", limit=200)["task_instances"]
    nodes = [ti for ti in instances if ti["task_id"] == "dbt_node"]
    assert len(nodes) == 1
    assert all(ti["state"] == "success" for ti in nodes)
    seen: dict[str, str] = {}
    for ti in nodes:
        xcom = rest_api.get(
            f"{run_path}/taskInstances/dbt_node/xcomEntries/return_value",
            map_index=ti["map_index"],
        )["value"]
        # A green build: one instance, named with its state, duration and tests; its log
        # lists each of its nodes and tests with status and duration.
        assert ti["rendered_map_index"] == xcom["label"]
        assert ti["rendered_map_index"].startswith(f"passed: {len(xcom['nodes'])} nodes success")
        assert xcom["group"] == "passed"
        # Listed layer by layer, a heading each, in the order the build runs them.
        headings = [line.split(":")[0] for line in xcom["log"] if line.startswith("== ")]
        layers = ["seeds", "snapshots", "staging", "intermediate", "marts"]
        assert headings == [f"== {layer}" for layer in layers]
        log = "\n".join(xcom["log"])
        for member in xcom["nodes"]:
            node = member["node"]
            seen[node["unique_id"]] = node["status"]
            if node["status"]:
                assert f"{node['resource_type']} {node['name']}: {node['status']} " in log
            for test in member["tests"]:
                seen[test["unique_id"]] = test["status"]
                assert f"{test['name']}: {test['status']}" in log
    # Every model, seed, snapshot, data test and unit test of the manifest, with its state.
    assert set(seen) == _manifest_nodes(settings, run_id)
    assert set(seen.values()) <= {"success", "pass"}
    build = rest_api.get(f"{run_path}/taskInstances/dbt_build/xcomEntries/return_value")
    assert {n["unique_id"] for n in build["value"]["nodes"]} == set(seen)


def _instances(airflow_home: Path, run_id: str) -> dict[tuple[str, int], tuple[str, str, int]]:
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        rows = meta.execute(
            "select task_id, map_index, state, rendered_map_index, try_number "
            "from task_instance where dag_id = 'warehouse_build' and run_id = ?",
            [run_id],
        ).fetchall()
    return {(task, index): (state, label, tries) for task, index, state, label, tries in rows}


def _results(path: Path) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in json.loads(path.read_text())["results"]}


@pytest.mark.changes_demo_run
def test_a_failing_dbt_test_fails_its_node_and_retries_rerun_only_the_rest(pipeline):
    from social_leadership.dbt_nodes import run_folder
    from social_leadership.local_airflow import (
        AirflowCommandError,
        airflow_environment,
        run_dags,
    )
    from social_leadership.warehouse import connect

    settings, airflow_home = pipeline
    # Airflow's retries of dbt_build come after 2 s at most instead of 30 s and more.
    env = airflow_environment(
        airflow_home, {**settings.as_env(), "AIRFLOW__CORE__MAX_TASK_RETRY_DELAY": "2"}
    )
    # An account of an executive the roster does not hold: a relationships test fails.
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into raw.roster_accounts values ('ghost', 'x', 'ghost_handle', ?)",
            [datetime.now(UTC)],
        )
    try:
        with pytest.raises(AirflowCommandError):
            run_dags(["warehouse_build"], env, settings.logs_dir)
    finally:
        with connect(settings.warehouse_path) as con:
            con.execute("delete from raw.roster_accounts where executive_id = 'ghost'")
    run_id = _latest_run_id(airflow_home)
    instances = _instances(airflow_home, run_id)
    assert instances[("dbt_build", -1)][0] == "failed"
    assert instances[("dbt_build", -1)][2] == 3  # the first try and Airflow's two retries
    assert instances[("quality_gate", -1)][0] == "upstream_failed"
    failed = {label for (_, _), (state, label, _) in instances.items() if state == "failed"}
    assert any(label and label.startswith("model stg_roster__accounts: ") for label in failed)
    folder = run_folder(settings, run_id)
    first = _results(folder / "try-1" / "run_results.json")
    # The models after the failed test were skipped, and so are their instances.
    skipped_models = {
        uid.split(".")[-1]
        for uid, s in first.items()
        if uid.startswith("model.") and s == "skipped"
    }
    assert skipped_models
    skipped = {label for (_, _), (state, label, _) in instances.items() if state == "skipped"}
    assert {f"model {name}: skipped" for name in skipped_models} <= {
        label.split(" 0.0s")[0] for label in skipped
    }
    succeeded = {uid for uid, status in first.items() if status in ("success", "pass")}
    to_rerun = {uid for uid, status in first.items() if status in ("fail", "skipped")}
    assert succeeded
    # Each retry ran `dbt retry`: what had failed or was skipped, never what succeeded.
    for attempt in (2, 3):
        rerun = _results(folder / f"try-{attempt}" / "run_results.json")
        assert set(rerun) == to_rerun
        assert not set(rerun) & succeeded
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        (value,) = meta.execute(
            "select value from xcom where dag_id = 'warehouse_build' and run_id = ? "
            "and task_id = 'dbt_build' and key = 'return_value'",
            [run_id],
        ).fetchone()
    build = json.loads(value)
    if isinstance(build, str):  # stored once more encoded by some backends
        build = json.loads(build)
    assert build["retried"] is True
    # The instances that need a look have their XCom too (a raise returned none): label,
    # state and the log lines README says the REST API gives.
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        shown = meta.execute(
            "select map_index, value from xcom where dag_id = 'warehouse_build' and run_id = ? "
            "and task_id = 'dbt_node' and key = 'return_value'",
            [run_id],
        ).fetchall()
    states = {}
    for index, stored in shown:
        node = json.loads(stored)
        node = json.loads(node) if isinstance(node, str) else node
        states[node["state"]] = states.get(node["state"], 0) + 1
        assert node["label"] == instances[("dbt_node", index)][1]
        assert node["log"]
    assert states.get("failed")
    assert states.get("skipped")
    assert len(shown) == len([key for key in instances if key[0] == "dbt_node"])
    assert {n["unique_id"] for n in build["nodes"]} == _manifest_nodes(settings, run_id)
