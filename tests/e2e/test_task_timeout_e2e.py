"""End to end through real Airflow (``dag.test()``, as ``airflow dags test``): a task that
hangs is stopped by its time-out (``SLW_TASK_TIMEOUT_SECONDS``), its run fails, and the
alert says what stopped it.

The sandbox holds every X reply back for longer than the whole test may take, and the
connector's own read time-out (30 s a request, then its retries) would keep ``extract_x``
busy for minutes; a try may take 12 s here.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time

import pytest
from slw_testing import clear_of_midnight

from social_leadership.alerts import FAILURE_XCOM_KEY
from social_leadership.local_airflow import AirflowCommandError, airflow_environment, run_dags
from social_leadership.sandbox.server import SandboxServer
from social_leadership.settings import load_settings

pytestmark = pytest.mark.e2e

TIMEOUT_SECONDS = 12
HEADER = ["executive_id", "full_name", "title", "company", "country", "sector"]


def test_a_hung_task_is_stopped_by_its_time_out_and_its_run_fails_saying_so(tmp_path, monkeypatch):
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*HEADER, "is_synthetic", "x"])
        writer.writerow(["hung-1", "Hung Exec", "CEO", "Hung Co", "DE", "Energy", "true", "Hung"])
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
    monkeypatch.setenv("SLW_TASK_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))
    monkeypatch.setenv("SLW_TASK_RETRY_DELAY_SECONDS", "1")
    settings = load_settings()
    settings.ensure_dirs()
    airflow_home = tmp_path / "airflow_home"
    with SandboxServer(roster) as sandbox:
        sandbox.set_fault("slow", platform="x", delay_seconds=3600)
        connections = {"AIRFLOW_CONN_SLW_X": sandbox.connection_env()["AIRFLOW_CONN_SLW_X"]}
        env = airflow_environment(airflow_home, {**settings.as_env(), **connections})
        for name in [n for n in env if n.startswith("AIRFLOW_CONN_SLW_")]:
            if name not in connections:
                del env[name]
        clear_of_midnight(300)
        started = time.perf_counter()
        with pytest.raises(AirflowCommandError):
            run_dags(["platform_metrics"], env, settings.logs_dir)
        seconds = time.perf_counter() - started

    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        [(run_state,)] = meta.execute("select state from dag_run").fetchall()
        tasks = dict(meta.execute("select task_id, state from task_instance").fetchall())
        tries = meta.execute(
            "select try_number from task_instance where task_id = 'extract_x'"
        ).fetchone()[0]
        [(why,)] = meta.execute(
            "select value from xcom where task_id = 'extract_x' and key = ?",
            [FAILURE_XCOM_KEY],
        ).fetchall()
    assert run_state == "failed"
    assert tasks["extract_x"] == "failed"
    assert tries == 3  # retried as any failure: 2 retries
    assert tasks["load_roster"] == "success"
    assert json.loads(why) == (
        f"AirflowTaskTimeout: stopped after {TIMEOUT_SECONDS} s, the time a try may take "
        "(SLW_TASK_TIMEOUT_SECONDS)"
    )
    # Three tries of 12 s, two short retry delays and Airflow's own time; one request
    # left alone would have taken 30 s, and the connector retries it.
    assert seconds < 3 * TIMEOUT_SECONDS + 60
