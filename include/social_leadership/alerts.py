"""Alerts: one notification per DAG run when something needs a person's attention.

What needs attention: a task that failed, and the facts the tasks report for the run under
the XCom key :data:`ATTENTION_XCOM_KEY` (:func:`report_attention`): a quarantined file, a
quality gate that failed or warned, a platform that failed or is not configured, a stale
source or platform. The DAGs' ``on_success_callback`` and ``on_failure_callback``
(:func:`run_callbacks`) run :class:`RunAlertNotifier` once when the run ends, never per
try or per task; it gathers those and sends one message through each configured channel:

* e-mail through the SMTP connection ``slw_smtp`` to the addresses in ``SLW_ALERT_EMAILS``
  (:class:`MailNotifier`, through the SMTP provider's hook);
* a Slack-compatible JSON ``POST`` (``text`` and ``blocks``, the details under ``slw``)
  to the URL of the HTTP connection ``slw_webhook`` (:class:`WebhookNotifier`).

A channel without its connection is not configured: nothing is sent through it and nothing
fails (one info line says so). Secrets (the SMTP password, the webhook URL with its token)
are never logged; a delivery failure is logged by kind only, and does not fail the run.

Where a callback runs: under ``airflow dags test`` / ``dag.test()`` (``make run``) in the
process that ran the DAG, which reads the run from the metadata DB; in a deployment in the
DAG processor, which has no database and reads it through the Task SDK (task states and
XComs). Neither path opens the DuckDB warehouse: another DAG's task may hold its lock.

:func:`platform_metrics_deadline` is the ``platform_metrics`` DAG's Airflow deadline
alert (``SLW_PLATFORM_METRICS_DEADLINE_HOURS`` after the run's logical date), delivered
by :func:`deadline_missed` through the same channels.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseNotifier

from social_leadership.formatting import shortened
from social_leadership.task_payloads import Attention

if TYPE_CHECKING:
    from airflow.sdk import DeadlineAlert

log = logging.getLogger(__name__)

ATTENTION_XCOM_KEY = "slw_attention"
# The XCom in which a failed task keeps why it failed (record_failure), for the alert.
FAILURE_XCOM_KEY = "slw_failure"
# How much of an error's first line an alert quotes: the line it is on says at most
# ALERT_WHAT_CHARS. An error names its files, then how to fix it: at 300, a report's
# "not mailed" lost its fix in the middle cut, under a path of an ordinary length.
FAILURE_TEXT_CHARS = 450
# How much of a problem an alert line says (a platform's error can quote its request of a
# hundred handles): the audit table, report or log the line points to has it whole.
ALERT_WHAT_CHARS = 500
SMTP_CONN_ID = "slw_smtp"
WEBHOOK_CONN_ID = "slw_webhook"
DEFAULT_FROM_EMAIL = "social-leadership-alerts@localhost"
# What an alert says of a task that failed after its retries.
TASK_FAILED = "task failed (after its retries)"
# What the reason of a task failed without retries (AirflowFailException) opens with.
NOT_RETRIED = "not retried (a retry would fail the same way)"
# What the reason of a run's check (check_platforms) opens with: it fails the run for the
# failures listed beside it, and has nothing of its own to retry or mend.
RUN_CHECK = "the run's check failed the run"
# The task states an alert lists, in its order (the causes first), with what it says of them.
TASK_STATES_SAID = {
    "failed": TASK_FAILED,
    "upstream_failed": "task did not run: an upstream task failed",
}
FAILED_STATES = tuple(TASK_STATES_SAID)
# The teardown that records the run in audit.runs: it fails on its own (the warehouse held
# by another process, a full disk) when what failed the run often held it too, so its line
# comes after the other failed tasks' (it came first, before source_freshness, by name).
RUN_SUMMARY_TASK = "run_summary"


def report_attention(facts: Sequence[Attention]) -> None:
    """Record what in the running task needs attention, for the run's one notification.

    Called outside an Airflow task (a task function run from Python, as the unit tests
    do), there is no run to notify: the facts are logged instead."""
    if not facts:
        return
    from airflow.sdk import get_current_context

    try:
        ti = get_current_context()["ti"]
    except RuntimeError:
        for fact in facts:
            log.warning("needs attention (outside an Airflow run, not alerted): %s", fact.what)
        return
    ti.xcom_push(ATTENTION_XCOM_KEY, [fact.to_xcom() for fact in facts])


@dataclass(frozen=True)
class Alert:
    """One run's notification: what each channel sends is built from it."""

    dag_id: str
    run_id: str
    state: str
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def subject(self) -> str:
        tasks = [item for item in self.items if item["kind"] == "task_failed"]
        failed = sum(item.get("state") == "failed" for item in tasks)
        others = len(self.items) - len(tasks)
        parts = [f"{failed} task(s) failed"] if failed else []
        parts += [f"{len(tasks) - failed} did not run"] if len(tasks) > failed else []
        parts += [f"{others} problem(s) reported"] if others else []
        return f"[social-leadership] {self.dag_id} {self.state}: {', '.join(parts)}"

    def lines(self) -> list[str]:
        lines = [f"DAG: {self.dag_id}", f"Run: {self.run_id} ({self.state})"]
        for item in self.items:
            kept = item["rows_kept_out"]
            subject = "run" if item["kind"] == "run" else f"task {item['task_id']}"
            lines.append(
                f"- {subject}: {item['what']}; rows kept out: "
                f"{kept if kept is not None else 'unknown'}"
            )
            lines += [f"  look at: {where}" for where in item["look_at"]]
        return lines

    def webhook_payload(self) -> dict[str, Any]:
        # Slack reads &, < and > in its text as markup (<!here> pings the channel, <url|x>
        # is a link): escaped, as Slack asks, since file names and errors come from outside.
        text = _slack_escaped("\n".join(self.lines()))
        return {
            "text": f"{_slack_escaped(self.subject)}\n{text}",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}},
                {
                    "type": "section",
                    # Slack takes 3,000 characters; an escape is not cut in two.
                    "text": {"type": "mrkdwn", "text": f"```{_cut_escaped(text, 2900)}```"},
                },
            ],
            "slw": {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "state": self.state,
                "items": self.items,
            },
        }

    def html(self) -> str:
        rows = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines())
        return f"<p>{html.escape(self.subject)}</p><ul>{rows}</ul>"


def _slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut_escaped(text: str, limit: int) -> str:
    cut = text[:limit]
    return cut[: cut.rfind("&")] if re.search(r"&[a-z]{0,3}$", cut) else cut


def _airflow_where(
    dag_id: str, run_id: str, task_id: str | None, *, mapped: bool = False
) -> list[str]:
    """The task's log folder under the Airflow home and its page in the UI (for the run as
    a whole, the run's page; for a mapped task, the list of its instances: its own page
    is an error, "No Task Instance found ... map_index -1")."""
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback=None) or (
        f"http://127.0.0.1:{conf.get('api', 'port', fallback='8080')}"
    )
    run_page = f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    if task_id is None:
        return [f"UI {run_page}"]
    base_log = conf.get("logging", "base_log_folder", fallback="") or ""
    folder = f"{base_log.rstrip('/')}/dag_id={dag_id}/run_id={run_id}/task_id={task_id}/"
    page = f"{run_page}/tasks/{quote(task_id, safe='')}{'/mapped' if mapped else ''}"
    return [f"log {folder}", f"UI {page}"]


def build_alert(
    dag_id: str,
    run_id: str,
    state: str,
    states: Mapping[str, str | None],
    facts: Sequence[Attention],
    reasons: Mapping[str, str] | None = None,
    mapped: frozenset[str] = frozenset(),
) -> Alert | None:
    """The run's alert, or None when nothing in it needs attention. ``reasons``: why each
    failed task failed, where it said (:func:`record_failure`); ``mapped``: the mapped
    tasks (one instance per index, such as ``dbt_node``)."""
    reasons = reasons or {}
    items = []
    # The tasks that failed first (the causes, run_summary after them), then those that did
    # not run for them.
    for task_state, what in TASK_STATES_SAID.items():
        in_state = [t for t, s in states.items() if str(s) == task_state]
        for task_id in sorted(in_state, key=lambda t: (t == RUN_SUMMARY_TASK, t)):
            why = reasons.get(task_id) if task_state == "failed" else None
            if why and why.startswith(RUN_CHECK):
                said = why
            elif why and why.startswith(NOT_RETRIED):
                said = f"task failed, {why}"
            else:
                said = f"{what}: {why}" if why else what
            item = _item(
                dag_id, run_id, task_id, said, None, None, kind="task_failed", mapped=mapped
            )
            items.append({**item, "state": task_state})
    for fact in facts:
        items.append(
            _item(
                dag_id,
                run_id,
                fact.task_id,
                fact.what,
                fact.rows_kept_out,
                fact.where,
                mapped=mapped,
                also_where=fact.also_where,
            )
        )
    if not items:
        return None
    return Alert(dag_id, run_id, state, items)


def _item(
    dag_id: str,
    run_id: str,
    task_id: str | None,
    what: str,
    kept: int | None,
    where: str | None,
    *,
    kind: str = "attention",
    mapped: frozenset[str] = frozenset(),
    also_where: str | None = None,
) -> dict[str, Any]:
    """One line of an alert: ``kind`` task_failed, attention (a task's report) or run (the
    run as a whole, ``task_id`` None)."""
    look_at = [place for place in (where, also_where) if place]
    what = shortened(what, ALERT_WHAT_CHARS)
    return {
        "kind": "run" if task_id is None else kind,
        "task_id": task_id or "-",
        "what": what,
        "rows_kept_out": kept,
        "look_at": look_at + _airflow_where(dag_id, run_id, task_id, mapped=task_id in mapped),
    }


def _task_sdk_available() -> bool:
    """Whether this process talks to Airflow through the Task SDK (the DAG processor, a
    worker) rather than to the metadata DB directly (``dag.test()``)."""
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


# Which state of a mapped task's instances stands for the task: failed first.
_STATE_RANK = {"failed": 0, "upstream_failed": 1}


def task_states(instances: Iterable[tuple[str, Any]]) -> dict[str, str | None]:
    """Task id -> state, of (task id, state) per task instance. A mapped task has an
    instance per index: its state is its worst one's (a failed instance among skipped and
    successful ones fails the task, whatever order the rows come in)."""
    states: dict[str, str | None] = {}
    for task_id, state in instances:
        text = str(state) if state else None
        if task_id not in states or _STATE_RANK.get(text or "", 9) < _STATE_RANK.get(
            states[task_id] or "", 9
        ):
            states[task_id] = text
    return states


def _run_record(
    dag_id: str, run_id: str, task_ids: Sequence[str]
) -> tuple[dict, list[Attention], dict[str, str]]:
    """The run's task states, reported facts, and why its failed tasks failed."""
    said: dict[str, list[str]] = {}
    if _task_sdk_available():
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from airflow.sdk.execution_time.xcom import XCom  # the configured XCom backend

        instances = [
            (*_task_instance(key, task_ids), state)
            for key, state in RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
            .get(run_id, {})
            .items()
        ]
        states = task_states((task_id, state) for task_id, _, state in instances)
        raw = [
            XCom.get_one(key=ATTENTION_XCOM_KEY, dag_id=dag_id, task_id=task_id, run_id=run_id)
            for task_id in task_ids
        ]
        in_order = sorted(instances, key=lambda i: (i[0], -1 if i[1] is None else i[1]))
        for task_id, map_index, state in in_order:
            if str(state) == "failed":
                text = XCom.get_one(
                    key=FAILURE_XCOM_KEY,
                    dag_id=dag_id,
                    task_id=task_id,
                    run_id=run_id,
                    map_index=map_index,
                )
                if text:
                    said.setdefault(task_id, []).append(str(text))
    else:
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            states = task_states(
                session.execute(
                    select(TaskInstance.task_id, TaskInstance.state).where(
                        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
                    )
                )
            )
            rows = session.scalars(
                select(XComModel)
                .where(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == run_id,
                    XComModel.key.in_([ATTENTION_XCOM_KEY, FAILURE_XCOM_KEY]),
                )
                .order_by(XComModel.task_id, XComModel.map_index)
            ).all()
            raw = [XComModel.deserialize_value(r) for r in rows if r.key == ATTENTION_XCOM_KEY]
            for row in rows:
                text = XComModel.deserialize_value(row) if row.key == FAILURE_XCOM_KEY else None
                if text:
                    said.setdefault(row.task_id, []).append(str(text))
    facts = [Attention.from_xcom(item) for value in raw if value for item in value]
    return states, facts, {task_id: _instances_said(texts) for task_id, texts in said.items()}


def _task_instance(key: str, task_ids: Sequence[str]) -> tuple[str, int | None]:
    """The task and map index of a key of the Task SDK's task states: the task id, or for an
    instance of a mapped task ``<task id>_<map index>``."""
    mapped = re.fullmatch(r"(.+)_(\d+)", key)
    if key not in task_ids and mapped and mapped[1] in task_ids:
        return mapped[1], int(mapped[2])
    return key, None


def _instances_said(texts: list[str]) -> str:
    """Why a task failed, of each of its failed instances (a mapped task's): the first
    three, and how many more, each cut to its share of the line (one cut of the whole line
    took the fix out of the first)."""
    shown = texts[:3]
    if len(shown) > 1:
        share = (FAILURE_TEXT_CHARS - 20) // len(shown)
        shown = [shortened(text, share) for text in shown]
    said = "; ".join(shown)
    return said + (f" (and {len(texts) - 3} more)" if len(texts) > 3 else "")


def _channel(conn_id: str, unreadable: list[str]) -> Any | None:
    """An alert channel's connection; one whose variable is unreadable is logged as an
    error, added to ``unreadable`` and not used, so the other channel still gets the
    alert."""
    from social_leadership.orchestration import UnreadableConnectionError, airflow_connection

    try:
        return airflow_connection(conn_id)
    except UnreadableConnectionError as exc:
        log.error("alert channel %s not used: %s", conn_id, exc)
        unreadable.append(conn_id)
        return None


def webhook_url(connection: Any, uri: str | None = None) -> str:
    """The webhook URL of the HTTP connection: ``host`` holding the whole URL (as a Slack
    incoming-webhook URL is given), or ``host``, ``port`` and ``extra.endpoint`` (the path),
    with ``schema`` as the scheme (default https), and its secret part as ``password``
    without a ``login`` (its last path segments, or its query given with its ``?``). A
    connection given as an ``http`` or ``https`` URI (``uri``, its environment variable's
    value) is the URL itself: read into fields, its query went to the extras and its user
    and password to the login (a Google Chat or Power Automate URL's ``?key=...&sig=...``
    was lost), and one without a path went over https."""
    if uri is not None:
        parts = urlsplit(uri.strip())
        if parts.scheme.lower() in ("http", "https") and "__extra__" not in parts.query:
            return uri.strip()
    host = connection.host or ""
    path = ""
    if "://" not in host:
        port = f":{connection.port}" if connection.port else ""
        scheme = connection.schema or "https"
        if scheme.lower() not in ("http", "https"):
            path = scheme
            conn_type = str(getattr(connection, "conn_type", "") or "").lower()
            scheme = conn_type if conn_type in ("http", "https") else "https"
        host = f"{scheme}://{host}{port}"
    extra = connection.extra_dejson if connection.extra else {}
    endpoint = str(extra.get("endpoint") or "")
    url = host.rstrip("/") + ("/" + path.strip("/") if path else "")
    url += "/" + endpoint.lstrip("/") if endpoint else ""
    # The URL's secret part kept as the connection's password, which Airflow encrypts and
    # shows as *** (a host or extra is shown as written, the token with it): its last path
    # segments, or its query when it starts with "?". Not with a login: a user and password
    # are basic authentication's (a URI with user:password@ stored as fields).
    login = str(getattr(connection, "login", None) or "").strip()
    secret = "" if login else str(getattr(connection, "password", None) or "").strip()
    if secret.startswith("?"):
        return url + ("&" + secret[1:] if "?" in url else secret)
    if secret:
        return url.rstrip("/") + "/" + secret.strip("/")
    return url


class WebhookNotifier(BaseNotifier):
    """POSTs a JSON payload to the URL of an HTTP connection (httpx; no HTTP provider)."""

    def __init__(self, payload: dict[str, Any], http_conn_id: str = WEBHOOK_CONN_ID):
        super().__init__()
        self.payload = payload
        self.http_conn_id = http_conn_id

    def notify(self, context: Any) -> None:
        import httpx
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        connection = BaseHook.get_connection(self.http_conn_id)
        variable = os.environ.get(f"AIRFLOW_CONN_{self.http_conn_id.upper()}", "").strip()
        # The variable's URI when it is the connection Airflow found (a secrets backend is
        # asked before the environment: its connection wins there too).
        as_uri = "://" in variable and not variable.startswith("{")
        host = (urlsplit(variable).hostname or "") if as_uri else ""
        same = as_uri and host.casefold() == str(connection.host or "").casefold()
        url = webhook_url(connection, variable if same else None)
        # The URL carries the webhook's token: masked wherever Airflow logs, and httpx's
        # own errors (which quote it) never reach a log (see _deliver).
        mask_secret(url)
        # A login and password kept as fields (a URI with user:password@ stored in
        # Airflow's database) are basic authentication's, as in a URL.
        login = str(connection.login or "")
        in_url = "@" in urlsplit(url).netloc
        auth = (login, str(connection.password or "")) if login and not in_url else None
        deadline = time.monotonic() + WEBHOOK_SECONDS
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            left = deadline - time.monotonic()
            try:
                response = _post(url, self.payload, min(WEBHOOK_TIMEOUT, left), auth)
            except httpx.ConnectError:
                if attempt == WEBHOOK_ATTEMPTS or not _time_for_a_try(attempt, deadline):
                    raise
                time.sleep(attempt)
                continue
            status = response.status_code
            if status < 300:
                return
            wait = _webhook_retry_wait(response, attempt)
            if wait is None or attempt == WEBHOOK_ATTEMPTS or not _time_for_a_try(wait, deadline):
                raise DeliveryError(f"webhook answered HTTP {status}")
            time.sleep(wait)


def _time_for_a_try(wait: float, deadline: float) -> bool:
    """Whether a try after ``wait`` seconds would have :data:`WEBHOOK_SHORTEST_TRY` before
    the delivery's ``deadline`` (a try with less could time out on a healthy receiver)."""
    return time.monotonic() + wait + WEBHOOK_SHORTEST_TRY <= deadline


def _post(
    url: str, payload: dict[str, Any], timeout: float, auth: tuple[str, str] | None = None
) -> Any:
    """POST ``payload`` as JSON; the answer, closed, its body not read (its status and
    headers are): a receiver sending the body a byte at a time (each within the time-out)
    held the alert, and the mail after it, for as long as it liked."""
    import httpx

    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
        client.stream("POST", url, json=payload, auth=auth) as response,
    ):
        return response


# A webhook answering 429 or 5xx (a chat service busy for a moment), or refusing the
# connection, is tried again: up to 3 times in all, a second and then two apart, or as its
# Retry-After says when that is 10 seconds or less. A time-out is not (a hung receiver
# would hold the alert for the mail's turn), nor any other answer.
WEBHOOK_ATTEMPTS = 3
_WEBHOOK_LONGEST_WAIT = 10.0
# Each request's time-out (to connect, and for each read or write), cut to what is left of
# the whole delivery's, its tries and waits; no try is made with less than the shortest.
WEBHOOK_TIMEOUT = 15.0
WEBHOOK_SECONDS = 30.0
WEBHOOK_SHORTEST_TRY = 5.0


def _webhook_retry_wait(response: Any, attempt: int) -> float | None:
    """Seconds before the next try of a webhook that answered ``response``; None: no try."""
    if response.status_code != 429 and response.status_code < 500:
        return None
    asked = response.headers.get("retry-after", "")
    if asked.strip().isdigit():
        wait = float(asked)
        return wait if wait <= _WEBHOOK_LONGEST_WAIT else None
    return float(attempt)


class DeliveryError(RuntimeError):
    """A channel refused or could not take the alert (its message holds no secret);
    ``partly``: some recipients got it (their addresses end the message)."""

    def __init__(self, message: str, *, partly: bool = False) -> None:
        super().__init__(message)
        self.partly = partly


class MailNotifier(BaseNotifier):
    """Mails the alert through the SMTP connection (:mod:`social_leadership.mail`: a text
    part beside the HTML; a recipient the server refuses is an error naming it, where
    Airflow's SmtpNotifier counts the mail as sent)."""

    def __init__(self, alert: Alert, recipients: Sequence[str], sender: str):
        super().__init__()
        self.alert, self.recipients, self.sender = alert, tuple(recipients), sender

    def notify(self, context: Any) -> None:
        from social_leadership.mail import (
            RecipientsRefusedError,
            build_message,
            failure_reason,
            send_message,
        )

        message = build_message(
            sender=self.sender,
            recipients=self.recipients,
            subject=self.alert.subject,
            text="\n".join([self.alert.subject, *self.alert.lines()]) + "\n",
            html=self.alert.html(),
        )
        try:
            send_message(SMTP_CONN_ID, message, self.recipients)
        except RecipientsRefusedError as exc:
            delivered = f"; delivered to {', '.join(exc.delivered)}" if exc.delivered else ""
            raise DeliveryError(f"{exc}{delivered}", partly=bool(exc.delivered)) from None
        except Exception as exc:
            # The kind, and for a TLS mismatch or a bad extra what to set (no server text).
            raise DeliveryError(failure_reason(exc)) from None


def deliver(alert: Alert, context: Any = None) -> list[str]:
    """Send the alert through every configured channel; return the channels used.

    A channel that fails is logged (its kind of error, no URL or password) and does not
    stop the other one, nor fail the caller.
    """
    from social_leadership.settings import env_variable, settings_or_defaults

    # A setting that is not allowed (often the very failure alerted) stops no alert.
    settings, error = settings_or_defaults()
    recipients = settings.alert_recipients
    if error is not None and (variable := env_variable("alert_emails")) in error.variables:
        log.error("alert e-mail not sent: %s is not allowed (slw settings says why)", variable)
    unreadable: list[str] = []
    smtp = _channel(SMTP_CONN_ID, unreadable) if recipients else None
    webhook = _channel(WEBHOOK_CONN_ID, unreadable)
    sent = []
    failures = [f"connection {conn_id} cannot be read" for conn_id in unreadable]
    # The webhook first: one request with a short time-out, where an SMTP server that does
    # not answer holds the mail for the connection's time-out times its retries.
    webhook_sent = webhook is not None and _deliver(
        "webhook", WebhookNotifier(alert.webhook_payload()), context or {}, failures
    )
    if smtp is not None:
        from social_leadership.mail import sender_of, server_of

        notifier = MailNotifier(alert, recipients, sender_of(smtp, DEFAULT_FROM_EMAIL))
        channel = f"e-mail (SMTP server {server_of(smtp)})"
        if _deliver(channel, notifier, context or {}, failures):
            sent.append("email")
    elif recipients and webhook is not None:
        log.info(
            "alert e-mail not sent: SLW_ALERT_EMAILS is set but connection %s is not usable",
            SMTP_CONN_ID,
        )
    if webhook_sent:
        sent.append("webhook")
    unusable = [conn_id for conn_id in (WEBHOOK_CONN_ID, SMTP_CONN_ID) if conn_id in unreadable]
    if not sent and unusable:
        # Not "no channel configured": each was set up, and cannot be read (said above).
        log.error(
            "alert for %s run %s not sent by any channel; connection %s cannot be read (fix "
            "the variable AIRFLOW_CONN_<ID> the error above names)",
            alert.dag_id,
            alert.run_id,
            " and ".join(unusable),
        )
    elif not sent and smtp is None and webhook is None:
        log.info(
            "alert for %s run %s not sent: no channel configured (connection %s with "
            "SLW_ALERT_EMAILS, or connection %s)",
            alert.dag_id,
            alert.run_id,
            SMTP_CONN_ID,
            WEBHOOK_CONN_ID,
        )
    if failures:
        record_undelivered(settings.undelivered_alerts_path, alert, failures)
    return sent


def _deliver(channel: str, notifier: BaseNotifier, context: Any, failures: list[str]) -> bool:
    """Send through one channel; a failure is logged and added to ``failures``."""
    partly = False
    try:
        notifier.notify(context)
    except DeliveryError as exc:
        why, partly = str(exc), exc.partly
    except Exception as exc:  # an alert must never fail the run it reports
        # Only the kind: a transport error's text may quote the URL and its token.
        why = type(exc).__name__
    else:
        log.info("alert sent by %s", channel)
        return True
    # Some recipients got it: "not delivered" alone sent the on-call engineer looking for
    # an alert that had reached them.
    missed = "not delivered to every recipient" if partly else "not delivered"
    log.error("alert %s %s: %s", channel, missed, why)
    failures.append(f"{channel}: {why}")
    return False


def record_undelivered(path: Path, alert: Alert, failures: list[str]) -> None:
    """Append the alert's run and why each channel failed to ``path``, the record of
    undelivered alerts (``Settings.undelivered_alerts_path``: the run's log line alone was
    where a green run's undelivered alert was said); never raises."""
    line = json.dumps(
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "dag_id": alert.dag_id,
            "run_id": alert.run_id,
            "state": alert.state,
            "failures": failures,
        }
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as record:
            record.write(line + "\n")
    except OSError as exc:
        log.warning("undelivered alert not recorded in %s: %s", path, exc)


class RunAlertNotifier(BaseNotifier):
    """The DAG-level callback: one alert per run when anything in it needs attention."""

    def __init__(self, state: str):
        super().__init__()
        self.state = state

    def __call__(self, context: Any) -> None:
        """Airflow calls a DAG callback with the run's context. Nothing to render (the
        base class would: under ``dag.test()`` the context's DAG is the scheduler's
        serialized one, which has no template environment)."""
        self.notify(context)

    def notify(self, context: Any) -> None:
        dag = context["dag"]
        run_id = str(context["run_id"])
        try:
            states, facts, reasons = _run_record(dag.dag_id, run_id, list(dag.task_dict))
        except Exception:
            log.exception("alert for %s run %s: could not read the run", dag.dag_id, run_id)
            states, facts, reasons = {}, [], {}
        mapped = frozenset(
            task_id for task_id, task in dag.task_dict.items() if getattr(task, "is_mapped", False)
        )
        alert = build_alert(dag.dag_id, run_id, self.state, states, facts, reasons, mapped)
        if alert is None and self.state == "failed":
            said = f"run failed: {context.get('reason')}"
            alert = Alert(dag.dag_id, run_id, self.state, [run_item(dag.dag_id, run_id, said)])
        if alert is None:
            log.info("run %s of %s: nothing needs attention, no alert", run_id, dag.dag_id)
            return
        deliver(alert, context)


def run_item(dag_id: str, run_id: str, what: str) -> dict[str, Any]:
    """An alert's line about the run as a whole (no task of it to name)."""
    return _item(dag_id, run_id, None, what, None, None)


def failure_text(error: BaseException) -> str:
    """An error as an alert quotes it: its type (for an ``AirflowFailException``, that the
    task was not retried) and the first line of its message, every secret Airflow masks
    replaced by ``***`` (before it is cut short: a secret cut in two would be masked no
    more)."""
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk.log import redact

    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # A task that fails itself at once says why in its message; its type says only that.
    kind = NOT_RETRIED if isinstance(error, AirflowFailException) else type(error).__name__
    text = first if first.startswith(RUN_CHECK) else f"{kind}: {first}" if first else kind
    return shortened(str(redact(text)), FAILURE_TEXT_CHARS)


def _why_it_failed(context: Any, error: BaseException) -> str:
    """:func:`failure_text`, or for a try stopped by its time-out ("Timeout, PID: 8123"),
    what stopped it and the setting that gives the time."""
    from airflow.sdk.exceptions import AirflowTaskTimeout

    from social_leadership.warehouse import interruption

    timeout = getattr(getattr(context.get("ti"), "task", None), "execution_timeout", None)
    # Stopped in a DuckDB query, the task raised DuckDB's "Query interrupted" instead.
    if isinstance(interruption(error), AirflowTaskTimeout) and timeout is not None:
        return (
            f"AirflowTaskTimeout: stopped after {timeout.total_seconds():g} s, the time a try "
            "may take (SLW_TASK_TIMEOUT_SECONDS)"
        )
    return failure_text(error)


def record_failure(context: Any) -> None:
    """Every task's ``on_failure_callback`` (after its last try): keep why it failed in the
    XCom :data:`FAILURE_XCOM_KEY`, which the run's alert quotes beside the task. Never
    raises: the alert names the task all the same."""
    error = context.get("exception")
    if error is None:
        return
    why = _why_it_failed(context, error)
    _say_on_the_console(f"failed: {why}")
    try:
        context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=why)
    except Exception as exc:  # the task has failed already: nothing to add to that
        task = getattr(context.get("ti"), "task_id", "the task")
        log.warning("why %s failed is not kept for the alert: %s", task, type(exc).__name__)


def say_retried(context: Any) -> None:
    """Every task's ``on_retry_callback``: why the try failed, under the task's line on the
    console of a local run (``slw run``, ``make run``), as the last try's is; the line
    "up_for_retry" said nothing of it."""
    error = context.get("exception")
    if error is not None:
        _say_on_the_console(f"try failed, retried: {_why_it_failed(context, error)}")


def _say_on_the_console(text: str) -> None:
    from social_leadership.progress import step

    try:
        step(text)
    except Exception as exc:  # a task's end is no place to fail
        log.warning("not said on the console: %s", type(exc).__name__)


def run_callbacks() -> dict[str, Any]:
    """The ``on_success_callback`` / ``on_failure_callback`` arguments of every DAG."""
    return {
        "on_success_callback": RunAlertNotifier("success"),
        "on_failure_callback": RunAlertNotifier("failed"),
    }


async def deadline_missed(context: dict[str, Any] | None = None, **_: Any) -> None:
    """The deadline alert's callback (run by the triggerer): the run has not succeeded in
    time. ``context`` is what Airflow passes a deadline callback: the run and the deadline."""
    import asyncio

    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id = str(run.get("dag_id") or "platform_metrics")
    run_id = str(run.get("dag_run_id") or run.get("run_id") or "-")
    if _queued_after_its_day(run, deadline):
        # A backfill of a past day: queued after its deadline, it never had the time the
        # deadline gives, and a past day is not observed anyway. Its failure, should it
        # fail, is alerted as any run's. A run of today's date queued late (the scheduler
        # down overnight) is alerted: the day's data is late.
        log.info("%s run %s is of a day before it was queued: no deadline alert", dag_id, run_id)
        return
    what = (
        f"run has not succeeded by its deadline {deadline.get('deadline_time', '')} "
        f"(logical date {run.get('logical_date')}, state {run.get('state')})"
    )
    alert = Alert(
        dag_id, run_id, "deadline missed", [_item(dag_id, run_id, None, what, None, None)]
    )
    # SMTP and httpx block: off the triggerer's event loop.
    await asyncio.to_thread(deliver, alert, None)


def _queued_after_its_day(run: dict[str, Any], deadline: dict[str, Any]) -> bool:
    """Whether the run was queued (else due to run) at or after its deadline, on a UTC day
    after its logical date's (a backfill, by the CLI or the UI)."""
    queued = _moment(run.get("queued_at") or run.get("run_after"))
    due = _moment(deadline.get("deadline_time"))
    logical = _moment(run.get("logical_date"))
    if queued is None or due is None or logical is None or queued < due:
        return False
    return queued.astimezone(UTC).date() > logical.astimezone(UTC).date()


def _moment(value: Any) -> datetime | None:
    """An aware datetime from what a deadline's context holds (ISO text or a datetime)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)  # Python 3.11 reads a "Z" as UTC
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def platform_metrics_deadline() -> DeadlineAlert:
    """Alert when a ``platform_metrics`` run has not succeeded
    ``SLW_PLATFORM_METRICS_DEADLINE_HOURS`` after its logical date."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from social_leadership.orchestration import scheduling_settings

    hours = scheduling_settings().platform_metrics_deadline_hours
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(hours=hours),
        callback=AsyncCallback(deadline_missed),
        name="platform_metrics_not_succeeded",
    )
