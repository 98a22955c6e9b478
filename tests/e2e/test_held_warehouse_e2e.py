"""End to end through real Airflow (``dag.test()``, as ``airflow dags test``): a
``warehouse_build`` run on a warehouse another process holds for writing fails, and its
``run_summary`` fails on the same lock. The alert names the task that failed the run first,
``run_summary`` after it; the run's row waits beside the warehouse, and the next run that
writes ``audit.runs`` (a ``survey_ingest`` run) adds it there, failed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from slw_testing import loopback_smtp

from social_leadership.local_airflow import AirflowCommandError, airflow_environment, run_dags
from social_leadership.run_summary import UNRECORDED_DIR, RunSummary, record
from social_leadership.settings import load_settings
from social_leadership.warehouse import connect

pytestmark = pytest.mark.e2e

_HOLD_WRITER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(600)
"""


class _Webhook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        _Webhook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_build_failed_on_a_held_warehouse_is_alerted_by_its_cause_and_recorded_next_run(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_TASK_RETRY_DELAY_SECONDS", "1")
    monkeypatch.setenv("SLW_ALERT_EMAILS", "oncall@example.org")
    settings = load_settings()
    settings.ensure_dirs()
    with connect(settings.warehouse_path) as con:
        record(con, RunSummary("warehouse_build", "green-before", "success"))
    _Webhook.bodies = []
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    hook = {"conn_type": "http", "host": f"http://127.0.0.1:{http.server_address[1]}/h"}
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", json.dumps(hook))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITER, str(settings.warehouse_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        with loopback_smtp(monkeypatch) as mailbox:
            env = airflow_environment(tmp_path / "airflow_home", settings.as_env())
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "holding"
            with pytest.raises(AirflowCommandError):
                run_dags(["warehouse_build"], env, settings.logs_dir / "held")
            kept = sorted((settings.data_dir / UNRECORDED_DIR).glob("*.json"))
            assert [path.name.split("__")[0] for path in kept] == ["warehouse_build"]
    finally:
        holder.kill()
        holder.wait()
        http.shutdown()

    assert len(_Webhook.bodies) == 1
    assert len(mailbox.messages) == 1
    items = _Webhook.bodies[0]["slw"]["items"]
    failed = [item["task_id"] for item in items if item.get("state") == "failed"]
    assert len(failed) >= 2
    assert failed[-1] == "run_summary"  # the cause first: it came first by name
    assert "Could not set lock" in items[0]["what"]

    # The next run that writes audit.runs (the warehouse free again) adds the build's row.
    run_dags(["survey_ingest"], env, settings.logs_dir / "next")
    with connect(settings.warehouse_path, read_only=True) as con:
        runs = con.execute(
            "select dag_id, run_id, outcome, failed_tasks from audit.runs order by recorded_at desc"
        ).fetchall()
    builds = [row for row in runs if row[0] == "warehouse_build"]
    assert len(builds) == 2
    assert builds[0][2:] == ("failed", ", ".join(failed[:-1]))
    assert builds[0][1] != "green-before"
    assert [row[0] for row in runs].count("survey_ingest") == 1
    assert not list((settings.data_dir / UNRECORDED_DIR).glob("*.json"))
