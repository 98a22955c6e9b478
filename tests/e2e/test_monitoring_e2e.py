"""End to end, as a data engineer monitoring ``make run``'s runs finds them: the demo DAGs
through real Airflow (``dag.test()``), then Airflow's own API server on loopback, logged in
as README says (user admin, the generated password file in the Airflow home).

The DAGs are unpaused; every task instance's log is readable through the REST API and holds
that task's own lines; a later run does not overwrite an earlier one's log; each run's key
figures are the ``run_summary`` task's XCom and a row of ``audit.runs``; the publish leaves
dbt docs with their catalog and GX Data Docs in ``SLW_DOCS_DIR``, which the summary names.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote

import duckdb
import httpx
import pytest

pytestmark = pytest.mark.e2e

DEMO_DAGS = ("survey_ingest", "platform_metrics", "warehouse_build")


class AirflowApi:
    """The REST API of an ``airflow api-server`` on loopback, logged in as admin."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def get(self, path: str) -> dict:
        response = httpx.get(
            f"{self.base_url}{path}",
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after")["dag_runs"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        content = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{task_id}/logs/{try_number}"
        )["content"]
        return "\n".join(str(line.get("event", "")) for line in content)


@pytest.fixture(scope="module")
def monitored(shared_demo_run):
    # The session's demo run (tests/e2e/conftest.py): the DAGs, then survey_ingest again;
    # and its API server, logged in as admin with the generated password.
    run = shared_demo_run.unchanged()
    server = shared_demo_run.api_server()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLW_DATA_DIR", str(run.settings.data_dir))
        yield run.settings, run.airflow_home, AirflowApi(server.base_url, server.token)


def test_the_dags_are_unpaused_after_a_run(monitored):
    _, _, api = monitored
    for dag_id in DEMO_DAGS:
        assert api.get(f"/api/v2/dags/{dag_id}")["is_paused"] is False


def test_each_task_log_is_readable_through_the_api_with_its_own_lines(monitored):
    _, _, api = monitored
    [run] = api.runs("warehouse_build")
    dbt_log = api.task_log("warehouse_build", run["dag_run_id"], "dbt_build")
    gate_log = api.task_log("warehouse_build", run["dag_run_id"], "quality_gate")
    assert "dbt build (try 1)" in dbt_log
    assert "Done. Returned value was" in dbt_log
    # Its own lines, not the whole process's: the gate's log has none of dbt's.
    assert "dbt build (try 1)" not in gate_log
    assert "docs published: dbt" not in gate_log
    docs_log = api.task_log("warehouse_build", run["dag_run_id"], "publish_docs")
    assert "docs published: dbt" in docs_log
    assert "dbt build (try 1)" not in docs_log
    [platforms_run] = api.runs("platform_metrics")
    assert "load bluesky" in api.task_log(
        "platform_metrics", platforms_run["dag_run_id"], "load_bluesky"
    )


def test_a_later_run_does_not_overwrite_an_earlier_runs_log(monitored):
    _, airflow_home, api = monitored
    first, second = api.runs("survey_ingest")
    assert first["dag_run_id"] != second["dag_run_id"]
    logs = [
        api.task_log("survey_ingest", r["dag_run_id"], "ingest_surveys") for r in (first, second)
    ]
    # The first run loaded the bundled figures; the second found them unchanged.
    assert "loaded, 10 rows" in logs[0]
    assert "unchanged" in logs[1]
    assert "loaded, 10 rows" not in logs[1]
    files = sorted((airflow_home / "logs" / "dag_id=survey_ingest").glob("run_id=*"))
    assert len(files) == 2


def test_each_runs_figures_are_its_summary_tasks_xcom_and_in_audit_runs(monitored):
    settings, _, api = monitored
    figures = {}
    for dag_id in DEMO_DAGS:
        run = api.runs(dag_id)[0]
        entry = api.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}/"
            "taskInstances/run_summary/xcomEntries/return_value"
        )
        value = entry["value"]
        figures[dag_id] = json.loads(value) if isinstance(value, str) else value
        assert figures[dag_id]["run_id"] == run["dag_run_id"]
        assert figures[dag_id]["outcome"] == "success"
    platforms = figures["platform_metrics"]
    assert platforms["rows_loaded.bluesky"] > 0
    assert platforms["rows_loaded.history_import"] > 0
    assert platforms["accounts_not_found"] == 0
    assert figures["survey_ingest"]["files_quarantined"] == 0
    build = figures["warehouse_build"]
    assert build["dbt_passed"] > 100
    assert build["dbt_failed"] == 0
    assert build["checks_passed"] > 10
    assert build["checks_failed"] == 0
    assert build["publication_id"].startswith("publication-")

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select dag_id, run_id, outcome, rows_loaded, dbt_passed, checks_failed, "
            "publication_id, serving_publication_id from audit.runs"
        ).fetchall()
    by_run = {(dag_id, run_id): rest for dag_id, run_id, *rest in rows}
    # Both survey_ingest runs, one platform_metrics and one warehouse_build run.
    assert len(by_run) == 4
    build_row = by_run[("warehouse_build", build["run_id"])]
    assert build_row[:5] == ["success", None, build["dbt_passed"], 0, build["publication_id"]]
    # The run's publication as the serving copy names it (the folder's name joins nothing).
    with duckdb.connect(str(settings.serving_path), read_only=True) as serving:
        published = serving.execute(
            "select distinct run_id from marts.publication where publication_id = ?", [build_row[5]]
        ).fetchall()
    assert published == [(build["run_id"],)]
    assert by_run[("platform_metrics", platforms["run_id"])][1] == platforms["rows_loaded"]
    # Each run's logical date (an asset-triggered run has none: when it was due), by which
    # slw summary picks each DAG's latest run.
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        recorded = dict(con.execute("select run_id, logical_date from audit.runs").fetchall())
    for dag_id in DEMO_DAGS:
        run = api.runs(dag_id)[0]
        due = datetime.fromisoformat(run["logical_date"] or run["run_after"])
        assert recorded[run["dag_run_id"]] == due, dag_id


def test_the_publish_leaves_dbt_docs_with_catalog_and_gx_data_docs(monitored):
    settings, _, api = monitored
    [run] = api.runs("warehouse_build")
    current = settings.docs_dir / "current"
    catalog = json.loads((current / "dbt" / "catalog.json").read_text())
    mart = "model.social_leadership.fct_executive_reach_daily"
    assert catalog["nodes"][mart]["columns"]["followers"]["type"] == "BIGINT"
    manifest = json.loads((current / "dbt" / "manifest.json").read_text())
    assert manifest["nodes"][mart]["columns"]["followers"]["description"].startswith("Followers")
    page = (current / "dbt" / "index.html").read_text()
    # One offline file with the catalog inside; dbt's page tracking is off.
    assert '"send_anonymous_usage_stats": false' in page
    assert '"type": "BIGINT", "index"' in page
    # The site's front page says the demo's data are invented (DESIGN: wherever shown).
    assert (
        manifest["docs"]["doc.social_leadership.__overview__"]["block_contents"].count(
            "**Synthetic data.**"
        )
        == 1
    )
    gx_index = (current / "gx" / "index.html").read_text()
    assert "marts.fct_executive_reach_daily" in gx_index
    # The gate of this very run, named by its Airflow run id.
    [validation] = (
        current / "gx" / "validations" / "marts" / "fct_executive_reach_daily" / run["dag_run_id"]
    ).glob("*/*.html")
    text = " ".join(validation.read_text().split())
    assert "marts.fct_executive_reach_daily" in text
    assert "Succeeded" in text
    assert run["dag_run_id"] in text
    from social_leadership.summary import build_summary

    summary = build_summary(settings)
    assert f"{current / 'dbt' / 'index.html'}" in summary
    assert f"{current / 'gx' / 'index.html'}" in summary
    assert "not generated yet" not in summary
