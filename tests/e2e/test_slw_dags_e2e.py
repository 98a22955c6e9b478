"""``slw dags test`` and ``slw dags list-runs``: one DAG through real Airflow for a new user.

A new user's ``airflow dags test survey_ingest`` fails ("Database migration required",
then "Dag not found"): the Airflow home is not migrated and the DAGs folder is not
configured. ``slw dags test`` brings both, with the environment's connections and no
sandbox.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import duckdb
import psutil
import pytest
from slw_testing import clear_of_midnight, run_slw

from social_leadership.sandbox.server import SandboxServer
from social_leadership.warehouse import ensure_schema

pytestmark = pytest.mark.e2e

ROSTER = """executive_id,full_name,title,company,country,sector,is_synthetic,x
e1,Ada Example,CEO,Example Co,DE,Industrials,true,ada_example
e2,Ben Sample,CEO,Sample Co,US,Financials,true,ben_sample
"""


def _slw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_slw(*args, env=env, timeout=600)


@pytest.fixture
def new_user_env(tmp_path: Path) -> dict[str, str]:
    """A fresh Airflow home and data folder; no platform connection configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLW_", "AIRFLOW_CONN_"))}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow_home")
    env["SLW_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "include")
    return env


def _dag_runs(airflow_home: str, dag_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(Path(airflow_home) / "airflow.db") as meta:
        return meta.execute(
            "select run_id, state from dag_run where dag_id = ?", [dag_id]
        ).fetchall()


def test_dags_test_runs_one_dag_in_a_new_airflow_home_and_list_runs_shows_it(new_user_env):
    ran = _slw("dags", "test", "survey_ingest", env=new_user_env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    # No warning of Airflow's imports that concerns no run (graphviz, Starlette's httpx).
    assert "[warning" not in ran.stdout + ran.stderr
    runs = _dag_runs(new_user_env["AIRFLOW_HOME"], "survey_ingest")
    assert [state for _, state in runs] == ["success"]
    warehouse = Path(new_user_env["SLW_DATA_DIR"]) / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (published,) = con.execute("select count(*) from raw.survey_results").fetchone()
    assert published > 0

    listed = _slw("dags", "list-runs", "survey_ingest", env=new_user_env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    run_id = runs[0][0]
    line = next(line for line in listed.stdout.splitlines() if line.startswith(run_id))
    assert "success" in line.split()


def test_dags_test_uses_the_environments_connections_and_starts_no_sandbox(new_user_env, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    new_user_env["SLW_ROSTER_PATH"] = str(roster)
    with SandboxServer(roster, token="env-token") as sandbox:
        new_user_env["AIRFLOW_CONN_SLW_X"] = json.dumps(
            {"conn_type": "http", "host": sandbox.base_url, "password": "env-token"}
        )
        clear_of_midnight(300)  # The run loads today's counts: not across midnight (UTC).
        ran = _slw("dags", "test", "platform_metrics", env=new_user_env)
        requests = sandbox.requests_to("/2/users/by")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert requests == 1
    warehouse = Path(new_user_env["SLW_DATA_DIR"]) / "warehouse" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        statuses = dict(con.execute("select platform, status from audit.platform_loads").fetchall())
        loaded = con.execute(
            "select account_handle from raw.platform_metrics where account_status = 'ok' order by 1"
        ).fetchall()
    assert statuses["x"] == "loaded"
    assert {status for platform, status in statuses.items() if platform != "x"} == {
        "not_configured"
    }
    assert loaded == [("ada_example",), ("ben_sample",)]


def test_list_runs_shows_when_a_past_dated_run_really_ran_and_for_how_long(new_user_env):
    # dag.test() records a run's start_date as its logical date: a run for a past day
    # showed that day as its start and months as its duration.
    ran = _slw("dags", "test", "survey_ingest", "2026-01-05", env=new_user_env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]

    listed = _slw("dags", "list-runs", "survey_ingest", env=new_user_env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["run_id", "state", "logical_date", "started", "duration"]
    _, state, logical_date, started, duration = row.split()
    assert (state, logical_date) == ("success", "2026-01-05T00:00:00+00:00")
    assert datetime.fromisoformat(started) > datetime.now(UTC) - timedelta(hours=1)
    assert float(duration.removesuffix("s")) < 600


def _running_tasks(airflow_home: str) -> int:
    try:
        with sqlite3.connect(Path(airflow_home) / "airflow.db") as meta:
            return meta.execute(
                "select count(*) from task_instance where state = 'running'"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def _slw_dags_test_with_a_task_running(env: dict[str, str], **options) -> subprocess.Popen:
    """``slw dags test survey_ingest`` in a process of its own, returned once a task runs."""
    slw = subprocess.Popen(
        [sys.executable, "-m", "social_leadership", "dags", "test", "survey_ingest"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )
    deadline = time.monotonic() + 300
    while not _running_tasks(env["AIRFLOW_HOME"]):
        assert slw.poll() is None, slw.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return slw


def _assert_run_marked_failed_and_all_stopped(
    env: dict[str, str], err: str, started: list[psutil.Process]
) -> None:
    ((run_id, state),) = _dag_runs(env["AIRFLOW_HOME"], "survey_ingest")
    assert state == "failed"
    assert f"survey_ingest run {run_id} interrupted: marked failed" in err
    assert _running_tasks(env["AIRFLOW_HOME"]) == 0
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, [p.cmdline() for p in alive]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_slw_stops_the_run_and_all_it_started_and_marks_the_run_failed(new_user_env, stop):
    # Before: slw exited while Airflow went on running the DAG's other tasks without it
    # (Airflow passes a signal to the running task only), or was killed with its run left
    # "running" in the metadata DB for ever.
    slw = _slw_dags_test_with_a_task_running(
        new_user_env,
        # As a terminal's shell starts it: Ctrl-C's signal not ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    started = psutil.Process(slw.pid).children(recursive=True)
    assert started

    slw.send_signal(stop)
    _, err = slw.communicate(timeout=120)

    assert slw.returncode == 130, err[-2000:]
    assert "interrupted: stopping the run and marking it failed (a few seconds)" in err
    _assert_run_marked_failed_and_all_stopped(new_user_env, err, started)


class _Webhook(BaseHTTPRequestHandler):
    calls: ClassVar[list[dict]] = []

    def do_POST(self):
        _Webhook.calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_an_airflow_process_killed_under_slw_fails_its_run_and_says_so(new_user_env):
    # The kernel's out-of-memory killer or a kill -9 of Airflow (not of slw): slw exited
    # 247 without a word and the run read "running" for ever; then, marked failed, it sent
    # no alert and slw summary showed the run before it, green.
    _Webhook.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook = {"conn_type": "http", "host": f"http://127.0.0.1:{server.server_address[1]}/hook"}
    new_user_env["AIRFLOW_CONN_SLW_WEBHOOK"] = json.dumps(webhook)
    # A warehouse of earlier runs (a run stopped before its first write makes none).
    warehouse = Path(new_user_env["SLW_DATA_DIR"]) / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        ensure_schema(con)
    try:
        slw = _slw_dags_test_with_a_task_running(new_user_env)
        [airflow] = psutil.Process(slw.pid).children()
        started = psutil.Process(slw.pid).children(recursive=True)

        airflow.kill()
        _, err = slw.communicate(timeout=120)
    finally:
        server.shutdown()

    assert slw.returncode == 1, err[-2000:]
    assert "the Airflow process was killed by SIGKILL (out of memory, or kill -9)" in err
    _assert_run_marked_failed_and_all_stopped(new_user_env, err, started)
    ((run_id, _),) = _dag_runs(new_user_env["AIRFLOW_HOME"], "survey_ingest")
    [alert] = _Webhook.calls
    assert (alert["slw"]["dag_id"], alert["slw"]["run_id"]) == ("survey_ingest", run_id)
    assert alert["slw"]["state"] == "failed"
    assert [item["what"] for item in alert["slw"]["items"]] == [
        "run interrupted: its Airflow process was killed by SIGKILL (out of memory, or kill -9)"
    ]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        recorded = con.execute(
            "select outcome, failed_tasks from audit.runs where run_id = ?", [run_id]
        ).fetchall()
    assert [outcome for outcome, _ in recorded] == ["failed"]
    assert recorded[0][1]


def test_slw_killed_alone_stops_its_run_and_marks_it_failed(new_user_env):
    # A kill -9 of slw (a supervisor's or CI job's time-out kills that process alone): the
    # Airflow process, in a session of its own, went on with the run unseen, holding the
    # warehouse, and recorded it a success.
    warehouse = Path(new_user_env["SLW_DATA_DIR"]) / "warehouse" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        ensure_schema(con)
    # Held by this process until the run is over, the warehouse keeps the run's intake
    # waiting: killed while it runs, not after a quick run ended green (a race on an idle
    # machine).
    holder = duckdb.connect(str(warehouse))
    try:
        slw = _slw_dags_test_with_a_task_running(new_user_env)
        started = psutil.Process(slw.pid).children(recursive=True)
        assert started

        slw.kill()
        slw.communicate(timeout=60)

        deadline = time.monotonic() + 120
        while _dag_runs(new_user_env["AIRFLOW_HOME"], "survey_ingest")[0][1] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        holder.close()
    ((run_id, state),) = _dag_runs(new_user_env["AIRFLOW_HOME"], "survey_ingest")
    assert state == "failed"
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert _running_tasks(new_user_env["AIRFLOW_HOME"]) == 0
    deadline = time.monotonic() + 60
    recorded: list = []
    while not recorded and time.monotonic() < deadline:
        # The marking process records it after the metadata DB, holding the file a moment.
        with (
            contextlib.suppress(duckdb.IOException),
            duckdb.connect(str(warehouse), read_only=True) as con,
        ):
            recorded = con.execute(
                "select outcome from audit.runs where run_id = ?", [run_id]
            ).fetchall()
        time.sleep(0.5)
    assert recorded == [("failed",)]


def test_list_runs_of_a_metadata_db_it_cannot_reach_fails_saying_so(new_user_env, tmp_path):
    # It said "no runs recorded yet", exit 0: an on-call engineer was told nothing had run.
    env = {
        **new_user_env,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/no/such/folder/airflow.db",
    }

    listed = _slw("dags", "list-runs", "survey_ingest", env=env)

    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert "no runs recorded yet" not in listed.stdout
    assert "error: Airflow's metadata DB cannot be read (" in listed.stderr
    assert "unable to open database file" in listed.stderr
    assert "Traceback" not in listed.stderr
