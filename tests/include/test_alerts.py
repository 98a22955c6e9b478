"""Alerts outside a DAG run: the DAGs carry the run callbacks and the deadline alert with the
configured interval; the deadline callback, run as Airflow's triggerer runs it, reaches a
real SMTP server and a real HTTP receiver on loopback; settings refuse bad addresses."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import threading
import time
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from slw_testing import free_port, loopback_smtp

from social_leadership.alerts import (
    ATTENTION_XCOM_KEY,
    FAILURE_XCOM_KEY,
    Alert,
    RunAlertNotifier,
    build_alert,
    deliver,
    failure_text,
    run_item,
    task_states,
    webhook_url,
)
from social_leadership.settings import SettingsError, load_settings
from social_leadership.task_payloads import Attention

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(autouse=True)
def _own_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test's alerts a channel could not deliver are recorded in a data folder of its
    own: with the default one, the repository's data/ (make run's), `slw summary` showed
    the tests' failed deliveries."""
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))


def _dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_every_dag_alerts_once_per_run_and_platform_metrics_has_its_deadline(monkeypatch):
    from airflow.sdk import AsyncCallback
    from airflow.sdk.definitions.deadline import DagRunLogicalDateDeadline

    monkeypatch.setenv("SLW_PLATFORM_METRICS_DEADLINE_HOURS", "5")
    bag = _dag_bag()
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        assert isinstance(dag.on_success_callback, RunAlertNotifier), dag.dag_id
        assert isinstance(dag.on_failure_callback, RunAlertNotifier), dag.dag_id
    deadlines = bag.dags["platform_metrics"].deadline
    deadlines = deadlines if isinstance(deadlines, list) else [deadlines]
    assert len(deadlines) == 1
    deadline = deadlines[0]
    assert isinstance(deadline.reference, DagRunLogicalDateDeadline)
    assert deadline.interval == timedelta(hours=5)
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == "social_leadership.alerts.deadline_missed"


class _Recorder(BaseHTTPRequestHandler):
    """Keeps each POST's path with its query, its Authorization header and its JSON, and
    answers with the next of ``answers`` (status, Retry-After), 200 when none is left."""

    seen: ClassVar[list[tuple[str, str | None, dict]]] = []
    bodies: ClassVar[list[dict]] = []
    answers: ClassVar[list[tuple[int, str | None]]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Recorder.seen.append((self.path, self.headers.get("Authorization"), body))
        _Recorder.bodies.append(body)
        status, retry_after = _Recorder.answers.pop(0) if _Recorder.answers else (200, None)
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receivers(monkeypatch):
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    _Recorder.seen, _Recorder.answers, _Recorder.bodies = [], [], []
    monkeypatch.setenv("SLW_ALERT_EMAILS", "oncall@example.org")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLW_WEBHOOK",
        json.dumps({"conn_type": "http", "host": f"http://127.0.0.1:{http.server_address[1]}/h"}),
    )
    try:
        with loopback_smtp(monkeypatch) as mailbox:
            yield mailbox, _Recorder.bodies
    finally:
        http.shutdown()


def _missed_deadline(context: dict) -> list:
    """What the triggerer runs for an AsyncCallback of a missed deadline; its events."""
    from airflow.triggers.callback import CallbackTrigger

    trigger = CallbackTrigger(
        callback_path="social_leadership.alerts.deadline_missed",
        callback_kwargs={"context": context},
    )

    async def run() -> list:
        return [event async for event in trigger.run()]

    return asyncio.run(run())


def test_the_deadline_callback_delivers_through_both_channels(receivers):
    from airflow.triggers.callback import PAYLOAD_STATUS_KEY

    mailbox, calls = receivers
    context = {
        "dag_run": {
            "dag_id": "platform_metrics",
            "dag_run_id": "scheduled__2026-12-01T00:00:00+00:00",
            "logical_date": "2026-12-01T00:00:00Z",
            "queued_at": "2026-12-01T00:00:02.52Z",
            "run_after": "2026-12-01T00:00:00Z",
            "state": "running",
        },
        "deadline": {"id": "d-1", "deadline_time": "2026-12-01T06:00:00Z"},
    }

    events = _missed_deadline(context)
    assert [str(event.payload[PAYLOAD_STATUS_KEY]) for event in events] == ["running", "success"]
    assert len(mailbox.messages) == 1
    assert mailbox.messages[0][0] == ["oncall@example.org"]
    mail = message_from_bytes(mailbox.messages[0][1])
    body = "".join(
        part.get_payload(decode=True).decode()
        for part in mail.walk()
        if part.get_content_maintype() == "text"
    )
    assert "platform_metrics" in mail["Subject"]
    assert "has not succeeded by its deadline 2026-12-01T06:00:00Z" in body
    assert len(calls) == 1
    details = calls[0]["slw"]
    assert details["dag_id"] == "platform_metrics"
    assert details["run_id"] == "scheduled__2026-12-01T00:00:00+00:00"
    assert details["state"] == "deadline missed"
    assert [item["kind"] for item in details["items"]] == ["run"]
    assert "has not succeeded by its deadline" in calls[0]["text"]
    run_page = details["items"][0]["look_at"]
    assert run_page == [
        "UI http://127.0.0.1:8080/dags/platform_metrics/runs/"
        "scheduled__2026-12-01T00%3A00%3A00%2B00%3A00"
    ]


def _deadline_context(queued_at: str | None, run_after: str) -> dict:
    return {
        "dag_run": {
            "dag_id": "platform_metrics",
            "dag_run_id": "manual__2026-12-05T21:23:10+00:00",
            "logical_date": "2026-12-01T00:00:00Z",
            "queued_at": queued_at,
            "run_after": run_after,
            "state": "running",
        },
        "deadline": {"id": "d-2", "deadline_time": "2026-12-01T06:00:00Z"},
    }


@pytest.mark.parametrize(
    ("queued_at", "run_after"),
    [
        # A backfill of a past day, triggered days later.
        ("2026-12-05T21:23:10Z", "2026-12-05T21:23:10Z"),
        # No queued moment (a run created as it started): when it was due to run.
        (None, "2026-12-02T00:00:00Z"),
    ],
    ids=["backfill", "run-after"],
)
def test_a_backfill_of_a_past_day_sends_no_deadline_alert(receivers, queued_at, run_after):
    # Each alerted at once, for a run that ended green (a backfill only skips).
    mailbox, calls = receivers

    _missed_deadline(_deadline_context(queued_at, run_after))

    assert mailbox.messages == []
    assert calls == []


def test_a_run_of_its_own_day_queued_late_is_alerted(receivers):
    # The scheduler down overnight: today's run is created after its deadline, and with
    # catchup off no other run says the day's data are late.
    mailbox, calls = receivers

    _missed_deadline(_deadline_context("2026-12-01T07:10:00Z", "2026-12-01T00:00:00Z"))

    assert len(mailbox.messages) == 1
    assert len(calls) == 1


def test_a_run_still_failed_at_its_deadline_is_alerted_again(receivers):
    # Its failure was alerted when it ended (by its callback; a run marked failed by hand
    # runs none); at its deadline the day's data are still late, and it is said again.
    mailbox, calls = receivers
    context = _deadline_context("2026-12-01T00:00:02Z", "2026-12-01T00:00:00Z")
    context["dag_run"]["state"] = "failed"

    _missed_deadline(context)

    assert len(mailbox.messages) == 1
    assert "state failed" in calls[0]["text"]


def test_a_channel_whose_variable_airflow_cannot_read_is_logged_and_the_other_still_sent(
    receivers, monkeypatch, caplog
):
    """Airflow skips an AIRFLOW_CONN_ value it cannot parse and reports the connection as not
    defined; the alert says the channel is set but broken, and still goes by mail."""
    mailbox, calls = receivers
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", '{"conn_type": "http", host: "hook-secret"}')
    alert = build_alert("survey_ingest", "r1", "failed", {"ingest_surveys": "failed"}, [])

    assert deliver(alert) == ["email"]

    assert len(mailbox.messages) == 1
    assert calls == []
    [error] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert error.startswith(
        "alert channel slw_webhook not used: AIRFLOW_CONN_SLW_WEBHOOK is set but Airflow "
        "cannot read it as connection slw_webhook: it is not valid JSON (Expecting property "
        "name enclosed in double quotes"
    )
    assert "hook-secret" not in caplog.text


def test_a_channel_that_fails_is_named_with_its_server(receivers, monkeypatch, caplog):
    _, calls = receivers
    port = free_port()  # nothing listens there
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": port}
    smtp["extra"] = {"disable_ssl": True, "disable_tls": True, "retry_limit": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", json.dumps(smtp))
    alert = build_alert("survey_ingest", "r1", "failed", {"ingest_surveys": "failed"}, [])

    assert deliver(alert) == ["webhook"]

    assert len(calls) == 1
    assert (
        f"alert e-mail (SMTP server 127.0.0.1:{port}) not delivered: ConnectionRefusedError"
        in caplog.text
    )


def test_a_recipient_the_server_refuses_is_logged_by_address_and_the_others_mailed(
    receivers, monkeypatch, caplog
):
    mailbox, calls = receivers
    mailbox.refuse = {"gone@example.org"}
    monkeypatch.setenv("SLW_ALERT_EMAILS", "oncall@example.org;gone@example.org")
    alert = build_alert("survey_ingest", "r1", "failed", {"ingest_surveys": "failed"}, [])

    assert deliver(alert) == ["webhook"]

    assert [recipients for recipients, _ in mailbox.messages] == [["oncall@example.org"]]
    assert len(calls) == 1
    assert "alert e-mail (SMTP server 127.0.0.1:" in caplog.text
    assert (
        "not delivered to every recipient: the SMTP server refused gone@example.org (550); "
        "delivered to oncall@example.org"
    ) in caplog.text
    mail = message_from_bytes(mailbox.messages[0][1])
    (text,) = [p for p in mail.walk() if p.get_content_type() == "text/plain"]
    assert "ingest_surveys" in text.get_payload(decode=True).decode()


def test_the_webhook_goes_first_so_an_smtp_server_that_never_answers_delays_only_the_mail(
    receivers, monkeypatch, caplog
):
    _, calls = receivers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # takes connections, never says a word
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": silent.getsockname()[1]}
    smtp["extra"] = {"disable_ssl": True, "disable_tls": True, "retry_limit": 0, "timeout": 1}
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", json.dumps(smtp))
    alert = build_alert("survey_ingest", "r1", "failed", {"ingest_surveys": "failed"}, [])
    calls_when_mail_was_tried = []
    from social_leadership import mail

    send = mail.send_message

    def send_noting_the_webhook_calls(*args, **kwargs):
        calls_when_mail_was_tried.append(len(calls))
        return send(*args, **kwargs)

    monkeypatch.setattr(mail, "send_message", send_noting_the_webhook_calls)
    try:
        assert deliver(alert) == ["webhook"]
    finally:
        silent.close()

    assert calls_when_mail_was_tried == [1]
    assert "alert e-mail (SMTP server 127.0.0.1:" in caplog.text


def test_a_mapped_task_with_one_failed_instance_is_failed_whatever_the_order():
    instances = [("dbt_node", "success"), ("dbt_node", "failed"), ("dbt_node", "skipped")]
    for order in (instances, instances[::-1]):
        assert task_states([*order, ("publish", "upstream_failed")]) == {
            "dbt_node": "failed",
            "publish": "upstream_failed",
        }
    assert task_states([("a", None), ("a", "upstream_failed")]) == {"a": "upstream_failed"}


def test_a_failed_task_is_said_with_why_it_failed_its_secrets_masked():
    from airflow.sdk.log import mask_secret

    mask_secret("pw-sentinel-123")
    error = RuntimeError("login pw-sentinel-123 refused\nTraceback line " + "x" * 400)
    assert failure_text(error) == "RuntimeError: login *** refused"
    assert len(failure_text(RuntimeError("y" * 1000))) == 450
    # A secret across the cut is masked whole, not cut into a part the masker misses.
    mask_secret("xoxb-SECRETTOKEN-0123456789abcdef")
    text = failure_text(RuntimeError("a" * 420 + " token=xoxb-SECRETTOKEN-0123456789abcdef"))
    assert "SECRETTOKEN" not in text

    alert = build_alert(
        "platform_metrics",
        "r1",
        "failed",
        {"load_roster": "failed", "extract_x": "upstream_failed"},
        [],
        {"load_roster": "RosterFileError: r.csv: no valid executive row"},
    )
    assert alert is not None
    assert [(i["what"], i["state"]) for i in alert.items] == [
        (
            "task failed (after its retries): RosterFileError: r.csv: no valid executive row",
            "failed",
        ),
        ("task did not run: an upstream task failed", "upstream_failed"),
    ]
    assert alert.subject == (
        "[social-leadership] platform_metrics failed: 1 task(s) failed, 1 did not run"
    )


def test_a_task_failed_without_retries_is_said_so_and_why_without_the_exception_type():
    from airflow.sdk.exceptions import AirflowFailException

    reason = failure_text(AirflowFailException("/r/roster.csv: cannot read roster file (gone)"))
    alert = build_alert(
        "platform_metrics", "r1", "failed", {"load_roster": "failed"}, [], {"load_roster": reason}
    )

    assert alert is not None
    assert alert.items[0]["what"] == (
        "task failed, not retried (a retry would fail the same way): "
        "/r/roster.csv: cannot read roster file (gone)"
    )


def test_the_run_check_is_said_to_fail_the_run_not_to_be_not_retried():
    # check_platforms only sums up the others: "not retried (a retry would fail the same
    # way)" sent the reader to mend it.
    from airflow.sdk.exceptions import AirflowFailException

    reason = failure_text(
        AirflowFailException("the run's check failed the run: tasks failed: load_x")
    )
    alert = build_alert(
        "platform_metrics",
        "r1",
        "failed",
        {"load_x": "failed", "check_platforms": "failed"},
        [],
        {"check_platforms": reason, "load_x": "HTTPError: 500"},
    )

    assert alert is not None
    said = {item["task_id"]: item["what"] for item in alert.items}
    assert said["check_platforms"] == "the run's check failed the run: tasks failed: load_x"
    assert said["load_x"] == "task failed (after its retries): HTTPError: 500"


def test_a_long_problem_keeps_its_start_and_the_fix_at_its_end_in_its_alert_line():
    long = (
        "platform x failed: GET http://x/2/users/by?usernames="
        + ",".join(["h"] * 800)
        + ": 401 Unauthorized; renew the token of the connection slw_x"
    )
    alert = build_alert(
        "platform_metrics", "r1", "failed", {}, [Attention(task_id="load_x", what=long)]
    )
    assert alert is not None
    what = alert.items[0]["what"]
    assert len(what) <= 500
    assert what.startswith("platform x failed: GET http://x/2/users/by?usernames=h,h,")
    assert " ... " in what
    assert what.endswith("401 Unauthorized; renew the token of the connection slw_x")


def test_an_alert_whose_channels_cannot_be_read_is_said_unsent_as_an_error(monkeypatch, caplog):
    # Said "not sent: no channel configured", at info level, beside the error.
    from social_leadership.alerts import Alert, deliver, run_item

    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", '{"conn_type": "http", "host": "h", "prot": 5}')
    monkeypatch.setenv("SLW_ALERT_EMAILS", "ops@example.org")
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", '{"conn_type": "smtp", "host": "h", "port": "x"}')

    with caplog.at_level(logging.INFO, logger="social_leadership.alerts"):
        sent = deliver(Alert("survey_ingest", "r1", "success", [run_item("d", "r1", "x")]))

    assert sent == []
    assert "no channel configured" not in caplog.text
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("Airflow knows no field 'prot'" in error for error in errors)
    assert errors[-1] == (
        "alert for survey_ingest run r1 not sent by any channel; connection slw_webhook and "
        "slw_smtp cannot be read (fix the variable AIRFLOW_CONN_<ID> the error above names)"
    )


def test_a_setting_not_allowed_leaves_the_dags_imported_with_defaults_saying_so(
    monkeypatch, caplog
):
    # It stopped the DAG files' import, which Airflow only lists: no run, no alert.
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "abc")
    monkeypatch.setenv("SLW_TASK_TIMEOUT_SECONDS", "0")
    monkeypatch.setenv("SLW_PLATFORM_METRICS_DEADLINE_HOURS", "5")
    # Warned once per problem in a process: as if this one were new to it.
    monkeypatch.setattr("social_leadership.orchestration._WARNED", None)

    with caplog.at_level(logging.WARNING, logger="social_leadership.orchestration"):
        bag = _dag_bag()

    assert bag.import_errors == {}
    assert sorted(bag.dags) == [
        "platform_metrics",
        "survey_ingest",
        "warehouse_build",
        "weekly_report",
    ]
    for dag in bag.dags.values():
        assert dag.default_args["execution_timeout"] == timedelta(hours=6), dag.dag_id
    deadline = bag.dags["platform_metrics"].deadline
    deadline = deadline[0] if isinstance(deadline, list) else deadline
    assert deadline.interval == timedelta(hours=5)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # caplog may hold a record twice, as Airflow's log set-up passes it on.
    assert len(set(warned)) == 1
    assert "SLW_GAP_FILL_DAYS='abc': not allowed" in warned[0]
    assert "SLW_TASK_TIMEOUT_SECONDS='0': not allowed" in warned[0]


def test_the_dags_warn_of_a_setting_not_allowed_once_not_at_each_use(monkeypatch):
    from social_leadership import orchestration

    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("social_leadership.orchestration")
    monkeypatch.setattr(orchestration, "_WARNED", None)
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "abc")
    logger.addHandler(handler)
    try:
        for _ in range(3):
            orchestration.scheduling_settings()
        monkeypatch.setenv("SLW_GAP_FILL_DAYS", "-1")
        orchestration.scheduling_settings()
    finally:
        logger.removeHandler(handler)

    assert len(said) == 2
    assert "SLW_GAP_FILL_DAYS='abc'" in said[0]
    assert "SLW_GAP_FILL_DAYS='-1'" in said[1]


def test_a_setting_not_allowed_stops_no_alert(receivers, monkeypatch):
    mailbox, calls = receivers
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "abc")

    sent = deliver(Alert("survey_ingest", "r1", "failed", [run_item("d", "r1", "x")]))

    assert sorted(sent) == ["email", "webhook"]
    assert len(mailbox.messages) == 1
    assert len(calls) == 1


def test_alert_addresses_not_allowed_leave_the_webhook_and_say_why_no_mail(
    receivers, monkeypatch, caplog
):
    mailbox, calls = receivers
    monkeypatch.setenv("SLW_ALERT_EMAILS", "oncall at example.org")

    with caplog.at_level(logging.INFO, logger="social_leadership.alerts"):
        sent = deliver(Alert("survey_ingest", "r1", "failed", [run_item("d", "r1", "x")]))

    assert sent == ["webhook"]
    assert mailbox.messages == []
    assert len(calls) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "alert e-mail not sent: SLW_ALERT_EMAILS is not allowed (slw settings says why)"
    ]


def test_the_task_that_failed_the_run_is_said_before_run_summary_s_own_failure(receivers):
    # A warehouse_build run on a held warehouse: run_summary failed on the same lock as
    # source_freshness, and its lock error came first (by name), the cause second.
    mailbox, calls = receivers
    alert = build_alert(
        "warehouse_build",
        "r1",
        "failed",
        {"source_freshness": "failed", "run_summary": "failed", "dbt_build": "upstream_failed"},
        [],
        {
            "source_freshness": "IOException: Could not set lock on file warehouse.duckdb",
            "run_summary": "IOException: Could not set lock on file warehouse.duckdb",
        },
    )
    assert alert is not None
    assert sorted(deliver(alert)) == ["email", "webhook"]

    order = ["source_freshness", "run_summary", "dbt_build"]
    assert [item["task_id"] for item in calls[0]["slw"]["items"]] == order
    mail = message_from_bytes(mailbox.messages[0][1])
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode()
    assert [body.index(f"- task {task_id}:") for task_id in order] == sorted(
        body.index(f"- task {task_id}:") for task_id in order
    )
    assert "2 task(s) failed, 1 did not run" in mail["Subject"]


def test_a_run_with_nothing_to_report_sends_nothing():
    assert build_alert("survey_ingest", "r1", "success", {"ingest_surveys": "success"}, []) is None


def test_facts_and_failed_tasks_make_one_alert_with_where_to_look():
    alert = build_alert(
        "platform_metrics",
        "r1",
        "failed",
        {"load_x": "failed", "check_platforms": "upstream_failed", "load_bluesky": "success"},
        [Attention(task_id="import_history", what="2 rows rejected", rows_kept_out=2, where="/q")],
    )
    assert alert is not None
    # The task that failed first (the cause), then the one that did not run for it.
    assert [(i["kind"], i["task_id"], i["rows_kept_out"]) for i in alert.items] == [
        ("task_failed", "load_x", None),
        ("task_failed", "check_platforms", None),
        ("attention", "import_history", 2),
    ]
    assert alert.items[1]["what"] == "task did not run: an upstream task failed"
    assert alert.items[2]["look_at"][0] == "/q"
    assert "1 task(s) failed, 1 did not run, 1 problem(s) reported" in alert.subject
    assert ATTENTION_XCOM_KEY == "slw_attention"


def test_webhook_url_from_a_whole_url_or_its_parts():
    class Conn:
        def __init__(self, host, schema=None, port=None, extra=None):
            self.host, self.schema, self.port = host, schema, port
            self.extra = json.dumps(extra) if extra else None
            self.extra_dejson = extra or {}

    assert webhook_url(Conn("https://hooks.example/services/T/B/x")) == (
        "https://hooks.example/services/T/B/x"
    )
    assert webhook_url(Conn("127.0.0.1", "http", 8080, {"endpoint": "/hook/x"})) == (
        "http://127.0.0.1:8080/hook/x"
    )


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:18080/services/T9/B9/secret", "https://hooks.example/services/T9/B9/x"],
)
def test_webhook_url_of_a_connection_given_as_a_uri(uri):
    from airflow.models.connection import Connection

    # Airflow keeps such a URI's path in the connection's schema, its scheme as its type.
    assert webhook_url(Connection(conn_id="slw_webhook", uri=uri)) == uri


@pytest.fixture
def recorder(monkeypatch):
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    _Recorder.seen, _Recorder.answers, _Recorder.bodies = [], [], []
    monkeypatch.delenv("SLW_ALERT_EMAILS", raising=False)
    try:
        yield http.server_address[1], _Recorder.seen
    finally:
        http.shutdown()


def test_a_webhook_uri_is_posted_to_with_its_query_and_its_user(monkeypatch, recorder):
    # Read into fields, the query went to the connection's extras and the user to its
    # login: a Google Chat or Power Automate URL (?key=...&sig=...) was posted without them.
    port, seen = recorder
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLW_WEBHOOK",
        f"http://hook:p%40ss@127.0.0.1:{port}/v1/spaces/AAA/messages?key=K1&token=T2",
    )

    assert deliver(build_alert("survey_ingest", "r1", "failed", {"t": "failed"}, [])) == ["webhook"]

    [(path, authorization, _)] = seen
    assert path == "/v1/spaces/AAA/messages?key=K1&token=T2"
    assert authorization == "Basic " + base64.b64encode(b"hook:p@ss").decode()


@pytest.mark.parametrize(
    ("host", "password", "path"),
    [
        ("/services/T9/B9", "XXsecret", "/services/T9/B9/XXsecret"),
        ("/services/", "/T9/B9/XXsecret/", "/services/T9/B9/XXsecret"),
        ("/v1/spaces/AAA/messages", "?key=K1&token=T2", "/v1/spaces/AAA/messages?key=K1&token=T2"),
    ],
    ids=["last segment", "segments", "query"],
)
def test_a_webhook_s_secret_part_may_be_kept_as_the_connection_s_password(
    monkeypatch, recorder, host, password, path
):
    # Kept in the host, as README said, the webhook's token showed in clear in the Airflow
    # UI's and REST API's connections, which show a password as ***.
    port, seen = recorder
    connection = {"conn_type": "http", "host": f"http://127.0.0.1:{port}{host}"}
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", json.dumps({**connection, "password": password}))

    assert deliver(build_alert("survey_ingest", "r1", "failed", {"t": "failed"}, [])) == ["webhook"]

    [(posted, _, _)] = seen
    assert posted == path


def test_a_webhook_s_login_and_password_are_sent_as_basic_authentication(monkeypatch, recorder):
    # A URI with user:password@ kept in Airflow's database is stored as fields: taken for
    # the URL's secret part, the password went into its path; not sent, the receiver
    # answered 401.
    port, seen = recorder
    connection = {"conn_type": "http", "host": f"http://127.0.0.1:{port}/hooks/abc"}
    connection |= {"login": "hook", "password": "p@ss"}
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", json.dumps(connection))

    assert deliver(build_alert("survey_ingest", "r1", "failed", {"t": "failed"}, [])) == ["webhook"]

    [(path, authorization, _)] = seen
    assert path == "/hooks/abc"
    assert authorization == "Basic " + base64.b64encode(b"hook:p@ss").decode()


@pytest.mark.parametrize(
    ("answers", "calls", "sent"),
    [
        ([(503, None)], 2, ["webhook"]),
        ([(429, "1"), (500, None)], 3, ["webhook"]),
        ([(500, None)] * 3, 3, []),
        ([(429, "3600")], 1, []),  # a wait longer than an alert can hold the run
        ([(400, None)], 1, []),
    ],
    ids=["busy once", "throttled then failing once", "failing", "throttled for long", "refused"],
)
def test_a_webhook_busy_for_a_moment_is_tried_again(monkeypatch, recorder, answers, calls, sent):
    # One 503 of a chat service lost the alert.
    port, seen = recorder
    _Recorder.answers = list(answers)
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", f"http://127.0.0.1:{port}/hook")
    monkeypatch.setattr("social_leadership.alerts.time.sleep", lambda seconds: None)

    assert deliver(build_alert("survey_ingest", "r1", "failed", {"t": "failed"}, [])) == sent
    assert len(seen) == calls


class _Trickler(BaseHTTPRequestHandler):
    """Answers 200 at once, then its body a byte a second (each byte within any time-out)."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "40")
        self.end_headers()
        try:
            for _ in range(40):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass  # the client went: what it needed it had

    def log_message(self, *args):
        pass


def test_a_webhook_sending_its_answer_a_byte_at_a_time_does_not_hold_the_alert(monkeypatch):
    # Its 200 came at once, its body a byte every 8 s: the alert, and the mail after it,
    # waited 80 s (probe ops63); in a deployment's DAG processor, past its time-out.
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Trickler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    monkeypatch.delenv("SLW_ALERT_EMAILS", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", f"http://127.0.0.1:{http.server_address[1]}/h")
    try:
        started = time.monotonic()
        sent = deliver(build_alert("survey_ingest", "r1", "failed", {"t": "failed"}, []))
        took = time.monotonic() - started
    finally:
        http.shutdown()

    assert sent == ["webhook"]
    assert took < 20, f"the delivery waited {took:.0f} s for the answer's body"


def test_no_webhook_try_starts_that_would_end_after_the_delivery_s_time(monkeypatch, recorder):
    port, seen = recorder
    _Recorder.answers = [(503, "3")]
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", f"http://127.0.0.1:{port}/hook")
    monkeypatch.setattr("social_leadership.alerts.time.sleep", lambda seconds: None)
    monkeypatch.setattr("social_leadership.alerts.WEBHOOK_SECONDS", 2.5)

    assert deliver(build_alert("survey_ingest", "r1", "failed", {"t": "failed"}, [])) == []
    assert len(seen) == 1


def test_an_alert_a_channel_could_not_deliver_is_recorded_where_slw_summary_shows_it(
    monkeypatch, recorder, tmp_path
):
    # An alert that no channel took was said in one log line of the callback
    # (the DAG processor's, in a deployment), nowhere a user looks (probe ops62, ops63).
    from social_leadership.summary import undelivered_alert_lines

    port, _ = recorder
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", f"http://127.0.0.1:{port}/hook?token=T0P")
    monkeypatch.setattr("social_leadership.alerts.time.sleep", lambda seconds: None)
    record = load_settings().undelivered_alerts_path
    alert = build_alert("survey_ingest", "r1", "failed", {"t": "failed"}, [])

    assert deliver(alert) == ["webhook"]
    assert not record.exists()
    _Recorder.answers = [(500, None)] * 3
    assert deliver(alert) == []

    [line] = record.read_text(encoding="utf-8").splitlines()
    said = json.loads(line)
    assert (said["dag_id"], said["run_id"], said["failures"]) == (
        "survey_ingest",
        "r1",
        ["webhook: webhook answered HTTP 500"],
    )
    assert "T0P" not in line
    shown = undelivered_alert_lines(record)
    assert shown[0] == f"Alerts not delivered: 1 (newest 1; {record}):"
    assert shown[1].endswith("survey_ingest r1 (failed): webhook: webhook answered HTTP 500")


def test_the_webhook_text_escapes_what_slack_reads_as_markup(monkeypatch, recorder):
    # A file named "<!here> results.csv" pinged the whole channel.
    port, seen = recorder
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", f"http://127.0.0.1:{port}/hook")
    said = "survey file <!here> results.csv quarantined & kept"
    attention = Attention(task_id="ingest", what=said, rows_kept_out=3, where="/q")
    alert = build_alert("survey_ingest", "r1", "success", {}, [attention])
    assert alert is not None

    deliver(alert)

    [(_, _, body)] = seen
    assert "survey file &lt;!here&gt; results.csv quarantined &amp; kept" in body["text"]
    assert "<!here>" not in body["blocks"][1]["text"]["text"]
    assert "<!here>" in json.dumps(body["slw"])  # the details as they are


def test_alert_settings_are_validated(monkeypatch):
    monkeypatch.setenv("SLW_ALERT_EMAILS", "a@example.org, b@example.org")
    assert load_settings().alert_recipients == ("a@example.org", "b@example.org")
    # Outlook's way of listing addresses.
    monkeypatch.setenv("SLW_ALERT_EMAILS", "a@example.org; b@example.org;")
    assert load_settings().alert_recipients == ("a@example.org", "b@example.org")
    # An address listed twice (in any case) is mailed once, as first written.
    monkeypatch.setenv(
        "SLW_ALERT_EMAILS", "a@example.org, B@example.org; A@Example.org,b@example.org"
    )
    monkeypatch.setenv("SLW_REPORT_EMAILS", "r@example.org, R@example.org")
    assert load_settings().alert_recipients == ("a@example.org", "B@example.org")
    assert load_settings().report_recipients == ("r@example.org",)
    monkeypatch.setenv("SLW_ALERT_EMAILS", "a@example.org, not-an-address")
    monkeypatch.setenv("SLW_PLATFORM_METRICS_DEADLINE_HOURS", "0")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert "SLW_ALERT_EMAILS='a@example.org, not-an-address'" in message
    assert "e-mail addresses separated by , or ;" in message
    assert "SLW_PLATFORM_METRICS_DEADLINE_HOURS='0'" in message


@pytest.mark.parametrize(
    ("listed", "recipients"),
    [
        ("Carol Smith <carol@example.org>", ("carol@example.org",)),
        ("a@example.org,<carol@example.org>; Carol <CAROL@example.org>", None),
    ],
    ids=["a name and brackets", "brackets alone, and again with a name"],
)
def test_an_address_copied_with_its_name_or_brackets_is_the_address(
    monkeypatch, listed, recipients
):
    # "<carol@example.org>" was kept as written and mailed; tidied to carol@example.org, a
    # rerun of the week took it for a new recipient and carol had the week twice.
    monkeypatch.setenv("SLW_REPORT_EMAILS", listed)
    expected = recipients or ("a@example.org", "carol@example.org")
    assert load_settings().report_recipients == expected


def test_a_list_of_recipients_holding_no_address_is_refused(monkeypatch):
    # " , ; " was read as no list at all: "SLW_REPORT_EMAILS is not set", exit 0.
    monkeypatch.setenv("SLW_REPORT_EMAILS", " , ; ")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "SLW_REPORT_EMAILS=', ;'" in str(refused.value)
    assert "it holds no address: unset it, or leave it empty, for none" in str(refused.value)
    monkeypatch.setenv("SLW_REPORT_EMAILS", "  ")
    assert load_settings().report_recipients == ()


def test_in_the_dag_processor_the_run_is_read_through_the_task_sdk(monkeypatch):
    """Where a deployment runs DAG callbacks (the DAG processor) there is no metadata DB,
    only the Task SDK's channel to its supervisor: the notifier asks it for the run's task
    states and each task's reported facts (answered here as the DAG processor answers)."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import (
        GetTaskStates,
        GetXCom,
        TaskStatesResult,
        XComResult,
    )

    from social_leadership.alerts import _instances_said, _run_record

    asked = []
    fact = Attention(task_id="ingest_surveys", what="survey file x.csv quarantined", where="/q")

    # The API keys a mapped task's instances <task id>_<map index> (dbt_node's here).
    answered_states = {
        "ingest_surveys": "success",
        "signal": "failed",
        "dbt_node_0": "success",
        "dbt_node_1": "failed",
        "dbt_node_2": "failed",
    }

    class DagProcessorComms:
        def send(self, msg):
            asked.append(msg)
            if isinstance(msg, GetTaskStates):
                return TaskStatesResult(task_states={"r1": answered_states})
            assert isinstance(msg, GetXCom)
            if msg.key == FAILURE_XCOM_KEY:
                value = {
                    ("signal", None): "DbtError: 1 node failed",
                    ("dbt_node", 1): "AirflowFailException: model a",
                    ("dbt_node", 2): "AirflowFailException: test b",
                }.get((msg.task_id, msg.map_index))
            else:
                value = [fact.to_xcom()] if msg.task_id == "ingest_surveys" else None
            return XComResult(key=msg.key, value=value)

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", DagProcessorComms(), raising=False)
    states, facts, reasons = _run_record(
        "survey_ingest", "r1", ["ingest_surveys", "signal", "dbt_node"]
    )

    assert states == {"ingest_surveys": "success", "signal": "failed", "dbt_node": "failed"}
    assert facts == [fact]
    assert reasons == {
        "signal": "DbtError: 1 node failed",
        "dbt_node": "AirflowFailException: model a; AirflowFailException: test b",
    }
    assert [type(msg).__name__ for msg in asked] == ["GetTaskStates", *["GetXCom"] * 6]
    assert {(msg.key, msg.task_id, msg.map_index) for msg in asked[1:]} == {
        (ATTENTION_XCOM_KEY, "ingest_surveys", None),
        (ATTENTION_XCOM_KEY, "signal", None),
        (ATTENTION_XCOM_KEY, "dbt_node", None),
        # Why a failed task failed: asked of the failed instances only.
        (FAILURE_XCOM_KEY, "signal", None),
        (FAILURE_XCOM_KEY, "dbt_node", 1),
        (FAILURE_XCOM_KEY, "dbt_node", 2),
    }
    assert {msg.run_id for msg in asked[1:]} == {"r1"}
    assert _instances_said([f"node {n}" for n in range(5)]) == "node 0; node 1; node 2 (and 2 more)"
    # Two long reasons: each keeps its own fix (one cut of the line took the first's).
    long = [f"DbtError: node {n} failed " + "x " * 160 + f"FIX{n}" for n in range(2)]
    said = _instances_said(long)
    assert "FIX0" in said
    assert "FIX1" in said
    assert len(said) <= 500  # what an alert line says at most (README)


def test_attention_outside_an_airflow_task_is_logged_not_raised(caplog):
    from social_leadership.alerts import report_attention

    fact = Attention(task_id="quality_gate", what="quality gate failed", rows_kept_out=3, where="q")
    with caplog.at_level("WARNING", logger="social_leadership.alerts"):
        report_attention([fact])
    assert "quality gate failed" in caplog.text


def test_a_file_name_in_another_encoding_can_be_alerted():
    # A landed file named in Latin-1 reaches Python as lone surrogates (os.fsdecode): XCom
    # stores JSON as UTF-8, which cannot encode them, so the task reporting the quarantined
    # file failed and its DAG run waited for a retry.
    name = os.fsdecode("r\u00e9sum\u00e9.csv".encode("latin-1"))
    fact = Attention(
        task_id="ingest_surveys", what=f"survey file {name} quarantined", where=f"/q/{name}"
    )
    payload = fact.to_xcom()
    json.dumps(payload, ensure_ascii=False).encode("utf-8")  # as the Task SDK sends it
    assert payload["what"] == "survey file r\\xe9sum\\xe9.csv quarantined"
    assert payload["where"] == "/q/r\\xe9sum\\xe9.csv"
    # Anything decodable is kept as it is.
    assert Attention(task_id="t", what="Zürich ✓").to_xcom()["what"] == "Zürich ✓"


def test_a_mapped_task_s_ui_link_opens_the_list_of_its_instances():
    """The page of a mapped task (dbt_node) as a whole is an error in Airflow's UI ("No Task
    Instance found ... map_index -1"): the alert links its instances' list."""
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    dags = Path(__file__).resolve().parents[2] / "dags" / "warehouse_build.py"
    dag = DagBag(dag_folder=str(dags)).dags["warehouse_build"]
    # The DAG a callback gets: the file's, or (under `airflow dags test`) the serialized one.
    for given in (dag, DagSerialization.from_dict(DagSerialization.to_dict(dag))):
        tasks = given.task_dict.items()
        assert {t for t, task in tasks if getattr(task, "is_mapped", False)} == {"dbt_node"}
    states = {"dbt_node": "failed", "quality_gate": "upstream_failed"}

    alert = build_alert("warehouse_build", "r1", "failed", states, [], {}, frozenset({"dbt_node"}))

    pages = {item["task_id"]: item["look_at"][-1] for item in alert.items}
    assert pages["dbt_node"].endswith("/runs/r1/tasks/dbt_node/mapped")
    assert pages["quality_gate"].endswith("/runs/r1/tasks/quality_gate")


def test_a_time_out_inside_a_duckdb_query_is_said_as_one_and_never_blamed_on_a_file():
    """DuckDB's client runs Airflow's SIGALRM handler during a query and raises "Query
    interrupted" instead, the time-out only its cause: the survey intake quarantined a good
    file for it and ran on, and the alert said "RuntimeError: Query interrupted"."""
    import duckdb
    from airflow.sdk.exceptions import AirflowTaskTimeout
    from airflow.sdk.execution_time.timeout import timeout

    from social_leadership.alerts import _why_it_failed
    from social_leadership.warehouse import interruption, is_warehouse_fault

    con = duckdb.connect()
    con.execute("set threads = 1")
    with pytest.raises(RuntimeError, match="interrupted") as raised, timeout(1):
        con.execute("select sum(hash(i)) from range(100000000000) as t(i)").fetchall()

    error = raised.value
    assert not isinstance(error, AirflowTaskTimeout)  # what DuckDB makes of it
    assert isinstance(interruption(error), AirflowTaskTimeout)
    assert is_warehouse_fault(error)
    task = type("Task", (), {"execution_timeout": timedelta(seconds=1)})()
    context = {"ti": type("Ti", (), {"task": task})()}
    assert _why_it_failed(context, error) == (
        "AirflowTaskTimeout: stopped after 1 s, the time a try may take (SLW_TASK_TIMEOUT_SECONDS)"
    )
    # A file's own error is still the file's.
    assert interruption(ValueError("bad cell")) is None
    assert not is_warehouse_fault(duckdb.ConversionException("bad cell"))


def test_an_error_naming_its_files_reaches_the_alert_with_its_fix():
    # Cut at 300 characters in the middle, the report's "not mailed" lost what to do.
    from airflow.sdk.exceptions import AirflowFailException

    folder = "/home/analyst/social-leadership/data/reports/2026-W49"
    error = AirflowFailException(
        f"the weekly report of 2026-11-30 to 2026-12-06 is written ({folder}) but not mailed: "
        "SLW_REPORT_EMAILS is set and the Airflow connection slw_smtp is not defined; "
        "add it (AIRFLOW_CONN_SLW_SMTP or the Airflow UI, README: Alerts), then clear "
        "this task"
    )
    text = failure_text(error)
    assert folder in text
    assert "the Airflow connection slw_smtp is not defined; add it (AIRFLOW_CONN_SLW_SMTP" in text
    assert text.endswith("then clear this task")


def test_a_dbt_build_out_of_memory_or_disk_says_so_where_the_alert_quotes_it():
    # The alert quoted "dbt retry ... exited with 1; failing nodes: ..." alone: the cause
    # (DuckDB's Out of Memory Error, its spill folder full) was in the task's log only.
    from social_leadership.dbt_runner import DbtError, DbtResult

    tail = (
        "Runtime Error in model int_executive_reach_gap_filled\n"
        "  Out of Memory Error: failed to offload data block of size 256.0 KiB "
        "(4.5 MiB/4.5 MiB used)"
    )
    result = DbtResult(
        ("build",), 1, failing_nodes=("model.x.int_executive_reach_gap_filled",), output_tail=tail
    )

    said = failure_text(DbtError(result))

    assert "failing nodes: model.x.int_executive_reach_gap_filled; DuckDB said" in said
    assert "'Out of Memory Error': raise SLW_DUCKDB_MEMORY_LIMIT, or free space on the disk" in said
    plain = DbtResult(("build",), 1, failing_nodes=("model.x.y",), output_tail="Compilation Error")
    assert "DuckDB said" not in failure_text(DbtError(plain))
