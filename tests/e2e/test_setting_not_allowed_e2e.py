"""End to end through real Airflow: an ``SLW_*`` value that is not allowed stopped the DAG
files' import, which Airflow only lists: no run, no task to fail, no alert, day after day.
The DAGs now import with its default; each task fails at once naming it, and the run is
alerted."""

from __future__ import annotations

import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from social_leadership.local_airflow import AirflowCommandError, airflow_environment, run_dags
from social_leadership.settings import load_settings

pytestmark = pytest.mark.e2e

SAID = "SLW_GAP_FILL_DAYS='abc': not allowed, must be a whole number from 0 to 3650"


class _Webhook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        _Webhook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_setting_not_allowed_fails_each_task_at_once_and_the_run_is_alerted(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    settings.ensure_dirs()
    airflow_home = tmp_path / "airflow_home"
    env = airflow_environment(airflow_home, settings.as_env())
    env["SLW_GAP_FILL_DAYS"] = "abc"
    _Webhook.bodies = []
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    hook = {"conn_type": "http", "host": f"http://127.0.0.1:{http.server_address[1]}/h"}
    env["AIRFLOW_CONN_SLW_WEBHOOK"] = json.dumps(hook)
    try:
        with pytest.raises(AirflowCommandError) as failed:
            run_dags(["survey_ingest"], env, settings.logs_dir)
    finally:
        http.shutdown()

    assert "import error" not in str(failed.value).lower()
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        tasks = {
            task_id: (state, tries)
            for task_id, state, tries in meta.execute(
                "select task_id, state, try_number from task_instance"
            ).fetchall()
        }
    assert tasks["ingest_surveys"] == ("failed", 1)
    assert tasks["run_summary"] == ("failed", 1)
    assert len(_Webhook.bodies) == 1
    alert = _Webhook.bodies[0]["text"]
    assert "survey_ingest failed" in alert
    assert (
        f"task ingest_surveys: task failed, not retried (a retry would fail the same way): {SAID}"
        in alert
    )
