"""End to end through real Airflow: what a failed platform did load still reaches the
warehouse. A Mastodon instance that refuses fails the platform (and the run), while the
accounts of the instance that answered are loaded; ``signal_warehouse`` must fire for them
even when no other platform brought rows."""

from __future__ import annotations

import json
import sqlite3

import duckdb
import pytest
from slw_testing import clear_of_midnight

from social_leadership.local_airflow import AirflowCommandError, airflow_environment, run_dags
from social_leadership.sandbox.server import SandboxServer
from social_leadership.settings import load_settings

pytestmark = pytest.mark.e2e

TOKEN = "alpha-instance-token-5e2a"
ROSTER = """executive_id,full_name,title,company,country,sector,is_synthetic,mastodon
e1,Ada Example,CEO,Example Co,DE,Industrials,true,ada@alpha.example
e2,Ben Sample,CEO,Sample Co,US,Financials,true,ben@beta.example
"""


def test_a_failed_platforms_loaded_rows_still_signal_the_warehouse(tmp_path, monkeypatch):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
    settings = load_settings()
    settings.ensure_dirs()
    airflow_home = tmp_path / "airflow_home"
    # beta.example wants a login; the token may go to alpha.example only.
    with SandboxServer(roster, token=TOKEN, mastodon_requires_login=True) as sandbox:
        mastodon = {
            "conn_type": "http",
            "host": sandbox.base_url + "/mastodon/{instance}",
            "password": TOKEN,
            "extra": {"allowed_instances": ["alpha.example"]},
        }
        env = airflow_environment(airflow_home, settings.as_env())
        for name in [n for n in env if n.startswith("AIRFLOW_CONN_SLW_")]:
            del env[name]
        env["AIRFLOW_CONN_SLW_MASTODON"] = json.dumps(mastodon)
        # The run loads today's counts: it may not cross midnight (UTC).
        clear_of_midnight(300)
        with pytest.raises(AirflowCommandError):
            run_dags(["platform_metrics"], env, settings.logs_dir)

    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        tasks = dict(meta.execute("select task_id, state from task_instance").fetchall())
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        statuses = dict(
            con.execute(
                "select account_handle, account_status from raw.platform_metrics"
            ).fetchall()
        )
        (audit,) = con.execute(
            "select status from audit.platform_loads where platform = 'mastodon'"
        ).fetchall()
    assert statuses == {"ada@alpha.example": "ok", "ben@beta.example": "deferred"}
    assert audit == ("failed",)
    assert tasks["load_mastodon"] == "failed"
    assert tasks["check_platforms"] == "failed"
    assert tasks["signal_warehouse"] == "success"
