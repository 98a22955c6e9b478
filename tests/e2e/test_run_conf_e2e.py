"""End to end through real Airflow (``dag.test()``, as ``airflow dags trigger --conf``): a
run's conf key that misses a parameter of its DAG by a slip left the parameter at its
default, and the run went green doing what was not asked (an incremental build for
``full_refersh``, last week's report for ``weekend``). It now fails at once, naming the
key (and the parameter meant), before anything is built, fetched or written; so does a
key that is no parameter at all."""

from __future__ import annotations

import json
import sqlite3

import pytest

from social_leadership.alerts import FAILURE_XCOM_KEY
from social_leadership.local_airflow import AirflowCommandError, airflow_environment, run_dags
from social_leadership.settings import load_settings

pytestmark = pytest.mark.e2e


def test_a_misspelt_parameter_in_a_run_s_conf_fails_the_run_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_REPORTS_DIR", str(tmp_path / "reports"))
    settings = load_settings()
    settings.ensure_dirs()
    airflow_home = tmp_path / "airflow_home"
    env = airflow_environment(airflow_home, settings.as_env())
    confs = {
        "warehouse_build": {"Full-Refresh": True, "note": "asked by the BI team"},
        "weekly_report": {"weekend": "2025-03-09"},
        "platform_metrics": {"snapshot_date": "2025-03-09"},
    }

    # One DAG a call: the runner stops at the first run that fails.
    for dag_id, conf in confs.items():
        with pytest.raises(AirflowCommandError):
            run_dags([dag_id], env, settings.logs_dir, confs={dag_id: conf})

    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        runs = dict(meta.execute("select dag_id, state from dag_run").fetchall())
        tasks = {
            (dag_id, task_id): (state, tries)
            for dag_id, task_id, state, tries in meta.execute(
                "select dag_id, task_id, state, try_number from task_instance"
            ).fetchall()
        }
        said = {
            dag_id: json.loads(value)
            for dag_id, value in meta.execute(
                "select dag_id, value from xcom where key = ? and task_id in "
                "('source_freshness', 'write_report', 'load_roster')",
                [FAILURE_XCOM_KEY],
            ).fetchall()
        }
    assert runs == {
        "warehouse_build": "failed",
        "weekly_report": "failed",
        "platform_metrics": "failed",
    }
    # Failed at once, not retried, and nothing after it ran.
    assert tasks[("warehouse_build", "source_freshness")] == ("failed", 1)
    assert tasks[("warehouse_build", "dbt_build")][0] == "upstream_failed"
    assert tasks[("weekly_report", "write_report")] == ("failed", 1)
    assert tasks[("platform_metrics", "load_roster")] == ("failed", 1)
    assert not list((tmp_path / "reports").rglob("*.pdf"))
    build = said["warehouse_build"]
    assert (
        "names no parameter of warehouse_build: 'Full-Refresh' (meant 'full_refresh'?), 'note'"
    ) in build
    assert "'weekend' (meant 'week_end'?)" in said["weekly_report"]
    assert "'snapshot_date'; nothing was done" in said["platform_metrics"]
