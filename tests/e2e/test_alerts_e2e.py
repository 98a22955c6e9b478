"""End to end through real Airflow (``dag.test()``, as ``airflow dags test``): alerts reach a
real SMTP server (aiosmtpd) and a real HTTP receiver on loopback, once per run.

Runs, sharing both receivers: a ``survey_ingest`` run with a bad file (quarantined, the
run succeeds) and then, in the same Airflow process, a ``platform_metrics`` run whose
``load_roster`` fails on every one of its three tries; a ``survey_ingest`` run without the
connections (nothing is sent, the run still succeeds); and a ``warehouse_build`` run whose
quality gate fails.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from slw_testing import Mailbox, free_port

from social_leadership import progress
from social_leadership.local_airflow import AirflowCommandError, airflow_environment, run_dags
from social_leadership.local_airflow_process import RESULT_PREFIX as RESULT
from social_leadership.settings import load_settings

pytestmark = pytest.mark.e2e

RECIPIENTS = ["oncall@example.org", "data-team@example.org"]
WEBHOOK_TOKEN = "T000-B000-sEcReTwEbHoOkToKeN"
SMTP_PASSWORD = "smtp-pa55-sentinel"


class AuthMailbox(Mailbox):
    """The mailbox of an SMTP server that asks for a login (the connection's password)."""

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[bytes, bool]] = []

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        accepted = auth_data.password == SMTP_PASSWORD.encode()
        self.logins.append((auth_data.login, accepted))
        return AuthResult(success=accepted)


class Receiver(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.calls.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def run(dag_ids: str | list[str], env: dict[str, str], logs_dir: Path) -> str:
    try:
        # With its console lines, as slw run shows them (kept in the log too).
        run_dags(
            [dag_ids] if isinstance(dag_ids, str) else dag_ids,
            env,
            logs_dir,
            progress=lambda line: None,
        )
    except AirflowCommandError:
        return "failed"
    return "success"


def _mail_dag(raw: bytes) -> str:
    """The DAG id an alert mail is about (its subject: ``[social-leadership] <dag_id> ...``)."""
    return message_from_bytes(raw)["Subject"].split()[1]


def write_bad_survey(survey_dir: Path, name: str) -> None:
    survey_dir.mkdir(parents=True, exist_ok=True)
    (survey_dir / name).write_text("this,is,not\na,survey,file\n")


@pytest.fixture(scope="module")
def alerts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alerts")
    mailbox = AuthMailbox()
    # Plain-text AUTH is allowed on loopback only, for the test.
    smtp = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    Receiver.calls = []
    connections = {
        "AIRFLOW_CONN_SLW_SMTP": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp.port,
                "login": "alerts",
                "password": SMTP_PASSWORD,
                "extra": {
                    "disable_ssl": True,
                    "disable_tls": True,
                    "from_email": "slw@example.org",
                    "retry_limit": 1,
                },
            }
        ),
        "AIRFLOW_CONN_SLW_WEBHOOK": json.dumps(
            {
                "conn_type": "http",
                "host": f"http://127.0.0.1:{http.server_address[1]}/services/{WEBHOOK_TOKEN}",
            }
        ),
    }
    seen: dict[str, tuple[list, list]] = {}
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLW_DATA_DIR", str(tmp / "data"))
            mp.setenv("SLW_ALERT_EMAILS", ",".join(RECIPIENTS))
            mp.setenv("SLW_TASK_RETRY_DELAY_SECONDS", "1")
            for name in [n for n in __import__("os").environ if n.startswith("AIRFLOW_CONN_")]:
                mp.delenv(name)
            settings = load_settings()
            settings.ensure_dirs()
            airflow_home = tmp / "airflow_home"
            base_env = airflow_environment(airflow_home, settings.as_env())
            env = {**base_env, **connections}

            def observe(label, dag_id, run_env, logs):
                mails, calls = len(mailbox.messages), len(Receiver.calls)
                state = run(dag_id, run_env, logs)
                seen[label] = (
                    state,
                    mailbox.messages[mails:],
                    Receiver.calls[calls:],
                    (logs / "airflow-dags-test.log").read_text(errors="replace"),
                )

            def observe_each(labels: dict[str, str], run_env, logs):
                """The DAGs (label: DAG id) run one after another in one Airflow process
                (its start-up paid once), each DAG's alerts told apart by its id."""
                mails, calls = len(mailbox.messages), len(Receiver.calls)
                run(list(labels.values()), run_env, logs)
                log = (logs / "airflow-dags-test.log").read_text(errors="replace")
                states = dict(
                    line.split()[1:3] for line in log.splitlines() if line.startswith(RESULT)
                )
                new_mails, new_calls = mailbox.messages[mails:], Receiver.calls[calls:]
                for label, dag_id in labels.items():
                    seen[label] = (
                        "success" if states.get(dag_id) == "success" else "failed",
                        [m for m in new_mails if _mail_dag(m[1]) == dag_id],
                        [c for c in new_calls if c[1]["slw"]["dag_id"] == dag_id],
                        log,
                    )
                # Every alert is about one of these DAGs: none is left out of the tests.
                assert sum(len(seen[label][1]) for label in labels) == len(new_mails)
                assert sum(len(seen[label][2]) for label in labels) == len(new_calls)

            # A quarantined file (survey_ingest succeeds), then a roster whose header is cut
            # short, as a file caught while being written (platform_metrics' load_roster
            # fails on every try: each is retried, in case the file was being written).
            write_bad_survey(settings.survey_dir, "broken_wave.csv")
            cut_roster = tmp / "cut_roster.csv"
            cut_roster.write_text("executive_id,full_name,tit", encoding="utf-8")
            observe_each(
                {"quarantine": "survey_ingest", "failed_task": "platform_metrics"},
                {**env, "SLW_ROSTER_PATH": str(cut_roster)},
                settings.logs_dir / "quarantine_and_fail",
            )

            write_bad_survey(settings.survey_dir, "another_broken_wave.csv")
            observe("no_connections", "survey_ingest", base_env, settings.logs_dir / "noconn")

            # A warehouse whose raw data passes dbt's tests but not the GX gate.
            fixtures = _include_fixtures()
            gate = fixtures.settings_for_data_dir(mp, tmp / "gate_data")
            fixtures.load_synthetic_raw(gate.warehouse_path)
            with duckdb.connect(str(gate.warehouse_path)) as con:
                con.execute(
                    "update raw.platform_metrics set followers = -5 "
                    "where account_handle = 'us_one_x' and followers is not null"
                )
            gate_env = {
                **airflow_environment(airflow_home, gate.as_env()),
                **connections,
                "SLW_ALERT_EMAILS": ",".join(RECIPIENTS),
            }
            observe("failed_gate", "warehouse_build", gate_env, gate.logs_dir / "gate")
        yield seen, settings, mailbox, airflow_home, tmp
    finally:
        smtp.stop()
        http.shutdown()


def _include_fixtures():
    """The synthetic raw dataset of tests/include/conftest.py (the one the gate tests use)."""
    path = Path(__file__).resolve().parents[1] / "include" / "conftest.py"
    spec = importlib.util.spec_from_file_location("include_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _mail_text(raw: bytes) -> str:
    message = message_from_bytes(raw)
    parts = [message] if not message.is_multipart() else list(message.walk())
    body = "".join(
        part.get_payload(decode=True).decode(errors="replace")
        for part in parts
        if part.get_content_maintype() == "text"
    )
    return f"{message['Subject']}\n{body}"


def test_a_failed_task_sends_one_mail_and_one_webhook_call_despite_retries(alerts):
    seen, _, _, airflow_home, _ = alerts
    state, mails, calls, log = seen["failed_task"]
    assert state == "failed"
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        tries = meta.execute(
            "select try_number, state from task_instance "
            "where dag_id = 'platform_metrics' and task_id = 'load_roster'"
        ).fetchall()
    # load_roster ran three times (two retries): still one alert, when the run ended.
    assert tries == [(3, "failed")]
    assert log.count("Executing on_failure dag callback") == 1
    assert len(mails) == 1
    assert len(calls) == 1
    recipients, raw = mails[0]
    assert sorted(recipients) == sorted(RECIPIENTS)
    text = _mail_text(raw)
    path, payload = calls[0]
    assert path == f"/services/{WEBHOOK_TOKEN}"
    assert payload["text"]
    assert payload["blocks"]
    details = payload["slw"]
    assert details["dag_id"] == "platform_metrics"
    assert details["state"] == "failed"
    assert details["run_id"].startswith("manual__")
    failed = [item for item in details["items"] if item["task_id"] == "load_roster"]
    assert failed
    assert failed[0]["kind"] == "task_failed"
    assert failed[0]["what"].startswith("task failed")
    # Why, as its last try's error said (the task-level failure callback kept it).
    assert "cut_roster.csv: roster header lacks required column(s): title," in failed[0]["what"]
    assert "rows_kept_out" in failed[0]
    assert any(
        "dag_id=platform_metrics" in where and "task_id=load_roster" in where
        for where in failed[0]["look_at"]
    )
    assert any(where.startswith("UI http") for where in failed[0]["look_at"])
    for needle in ("platform_metrics", details["run_id"], "load_roster", "task failed"):
        assert needle in text
        assert needle in payload["text"]


def test_the_console_says_why_each_try_of_a_failed_task_failed(alerts):
    # "load_roster: up_for_retry in 0.1s", and nothing said of why.
    seen, *_ = alerts
    log = seen["failed_task"][3]
    said = [
        event["text"]
        for event in map(progress.parse, log.splitlines())
        if event and event.get("event") == "step" and event.get("task") == "load_roster"
    ]
    why = "RosterFileError: "
    assert [text.split(why)[0] for text in said] == [
        "try failed, retried: ",
        "try failed, retried: ",
        "failed: ",
    ]
    assert all("cut_roster.csv: roster header lacks required column(s)" in t for t in said)


def test_a_quarantined_file_sends_one_alert_and_the_run_succeeds(alerts):
    seen, settings, *_ = alerts
    state, mails, calls, _ = seen["quarantine"]
    assert state == "success"
    assert len(mails) == 1
    assert len(calls) == 1
    items = calls[0][1]["slw"]["items"]
    assert [item["task_id"] for item in items] == ["ingest_surveys"]
    assert "broken_wave.csv quarantined" in items[0]["what"]
    report = items[0]["look_at"][0]
    assert report.startswith(str(settings.quarantine_dir))
    assert Path(report).is_file()
    assert "broken_wave.csv quarantined" in _mail_text(mails[0][1])


def test_a_failed_quality_gate_sends_one_alert_saying_what_failed(alerts):
    seen, *_ = alerts
    state, mails, calls, _ = seen["failed_gate"]
    assert state == "failed"
    assert len(mails) == 1
    assert len(calls) == 1
    details = calls[0][1]["slw"]
    assert details["dag_id"] == "warehouse_build"
    gate = [item for item in details["items"] if item["what"].startswith("quality gate failed")]
    assert len(gate) == 1
    assert gate[0]["task_id"] == "quality_gate"
    assert "publication stopped" in gate[0]["what"]
    assert gate[0]["rows_kept_out"] > 0
    assert gate[0]["look_at"][0] == "audit.quality_results"
    # The failed gate's own Data Docs (the published ones are the last good run's).
    docs = Path(gate[0]["look_at"][1])
    assert docs.name == "index.html"
    assert docs.is_file()
    assert "pending" in docs.parts
    failed = [item["task_id"] for item in details["items"] if item["kind"] == "task_failed"]
    # The failed task first, then those that did not run for it.
    assert failed == ["quality_gate", "publish", "publish_docs"]
    # The synthetic raw data is from 2025: its sources are stale too, in the same alert.
    assert any("freshness error" in item["what"] for item in details["items"])
    assert "quality gate failed" in _mail_text(mails[0][1])


def test_without_connections_nothing_is_sent_and_the_run_succeeds(alerts):
    seen, *_ = alerts
    state, mails, calls, log = seen["no_connections"]
    assert state == "success"
    assert mails == []
    assert calls == []
    assert "not sent: no channel configured" in log


def test_secrets_never_reach_the_logs_or_the_metadata_db(alerts):
    seen, _, mailbox, airflow_home, tmp = alerts
    # The mail server was logged in to, with the connection's password.
    assert mailbox.logins
    assert all(accepted for _, accepted in mailbox.logins)
    secrets = (WEBHOOK_TOKEN.encode(), SMTP_PASSWORD.encode())
    for _, _, _, log in seen.values():
        assert not any(secret.decode() in log for secret in secrets)
    # Every file the runs wrote: logs (the pipeline's and Airflow's), the metadata DB,
    # the warehouses, quarantine reports.
    written = [p for p in [*tmp.rglob("*"), *airflow_home.rglob("*")] if p.is_file()]
    assert any(p.name == "airflow.db" for p in written)
    for path in written:
        content = path.read_bytes()
        assert not any(secret in content for secret in secrets), path
