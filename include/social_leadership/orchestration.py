"""What the DAG files share: assets, default arguments, the warehouse pool, endpoints.

Kept import-light (no warehouse or network work at import time): the scheduler parses
DAG files often.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import pendulum
from airflow.sdk import Asset

from social_leadership.domain import API_PLATFORMS, DAGS_START_DAY

if TYPE_CHECKING:
    from social_leadership.settings import Settings

# Every task that writes the DuckDB warehouse runs in this one-slot pool (one writer).
WAREHOUSE_POOL = "duckdb_warehouse"
# Airflow's own pool, which every task without one uses.
DEFAULT_POOL = "default_pool"


def scheduling_settings() -> Settings:
    """The settings the DAG files are built with: where an ``SLW_*`` value is not allowed,
    its default (:func:`~social_leadership.settings.settings_or_defaults`), said as a
    warning in the DAG processor's log; each task that reads the settings then fails at once
    naming it, and the failure is alerted."""
    from social_leadership.settings import settings_or_defaults

    global _WARNED
    settings, error = settings_or_defaults()
    said = "; ".join(error.each_said) if error is not None else None
    # Once per parse and problem, not at each of the settings' several uses in it.
    if said is not None and said != _WARNED:
        logging.getLogger(__name__).warning(
            "DAGs built with defaults in place of settings that are not allowed (the tasks "
            "that read them fail until they are fixed): %s",
            said,
        )
    _WARNED = said
    return settings


# The problem scheduling_settings last warned of (None: none).
_WARNED: str | None = None


def platform_load_pool() -> str:
    """The pool of the per-platform loads: the warehouse's single slot while the warehouse
    takes one writer at a time (a DuckDB file, a DuckLake on a SQLite or DuckDB-file
    catalog); Airflow's default pool on a DuckLake with a PostgreSQL catalog, whose commits
    are catalog transactions, so the platforms load at once, on as many workers as there are."""
    from social_leadership.warehouse_backend import takes_concurrent_writers

    return DEFAULT_POOL if takes_concurrent_writers(scheduling_settings()) else WAREHOUSE_POOL


class PlatformEndpoint(NamedTuple):
    base_url: str | None  # None: not configured, nothing is sent
    credentials: str | None
    login: str | None = None
    # Connector options from the connection extra (Mastodon ``allowed_instances``).
    options: Mapping[str, Any] = MappingProxyType({})


# Early: Airflow runs none of a DAG's tasks for a logical date before its start date and
# calls the run a success, so a past week triggered from the UI or the REST API (a missed
# weekly report) would end green, nothing written. Every DAG has catchup off: enabling one
# runs its latest interval only, not every one since.
START_DATE = pendulum.datetime(
    DAGS_START_DAY.year, DAGS_START_DAY.month, DAGS_START_DAY.day, tz="UTC"
)

# The run_summary teardowns' place in the warehouse pool's queue: first. By Airflow's
# default (downstream) weight rule a leaf weighs least, and every task upstream of it
# weighs its own weight plus the leaf's, so no weight of the leaf's could put it first: a
# finished run's summary waited behind every other writer (six minutes measured), holding
# its run, and with max_active_runs=1 the DAG's next run, open. Every task weighs its own
# weight instead (DEFAULT_ARGS: 1; also what Airflow advises for speed), the summaries 10.
SUMMARY_PRIORITY_WEIGHT = 10


def _first_retry_delay() -> timedelta:
    return timedelta(seconds=scheduling_settings().task_retry_delay_seconds)


def _task_timeout() -> timedelta:
    return timedelta(seconds=scheduling_settings().task_timeout_seconds)


def _record_task_failure(context: Any) -> None:
    """A task's ``on_failure_callback``: why it failed, for the run's alert
    (:func:`social_leadership.alerts.record_failure`)."""
    from social_leadership.alerts import record_failure

    record_failure(context)


def _say_task_retried(context: Any) -> None:
    """A task's ``on_retry_callback`` (:func:`social_leadership.alerts.say_retried`)."""
    from social_leadership.alerts import say_retried

    say_retried(context)


DEFAULT_ARGS = {
    "owner": "social-leadership",
    "retries": 2,
    # SLW_TASK_RETRY_DELAY_SECONDS (default 30), doubling per try.
    "retry_delay": _first_retry_delay(),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
    # SLW_TASK_TIMEOUT_SECONDS (default 6 hours) a try: a task hung on something no time-out of
    # its own bounds (a lock, a stuck dbt) fails and is alerted instead of holding its DAG,
    # one active run at a time, and every run after it.
    "execution_timeout": _task_timeout(),
    "on_failure_callback": _record_task_failure,
    "on_retry_callback": _say_task_retried,
    "weight_rule": "absolute",
}


def daily_timetable() -> Any:
    """``platform_metrics``' schedule: every day at 00:00 UTC, each run's logical date the
    moment it runs. Given as ``"@daily"``, Airflow's ``[scheduler]
    create_cron_data_intervals`` chose the timetable: set True (as Airflow 2 behaved, and as
    migrated deployments keep it) a run's logical date was the day before it ran, a past
    day the APIs cannot be asked for, so every run skipped every platform, green."""
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable("0 0 * * *", timezone="UTC")


def report_timetable() -> Any:
    """``weekly_report``'s schedule: ``SLW_REPORT_SCHEDULE`` (cron, UTC), each run's data
    interval the 7 days before it (a manual run's too)."""
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(
        scheduling_settings().report_schedule, timezone="UTC", interval=timedelta(days=7)
    )


# Assets link producers to consumers: warehouse_build runs when either raw input changes.
RAW_PLATFORM_METRICS = Asset(
    name="raw_platform_metrics", uri="duckdb://warehouse/raw/platform_metrics"
)
RAW_SURVEY_RESULTS = Asset(name="raw_survey_results", uri="duckdb://warehouse/raw/survey_results")
SERVING_MARTS = Asset(name="serving_marts", uri="duckdb://serving/marts")

__all__ = [
    "API_PLATFORMS",
    "DEFAULT_ARGS",
    "RAW_PLATFORM_METRICS",
    "RAW_SURVEY_RESULTS",
    "SERVING_MARTS",
    "START_DATE",
    "SUMMARY_PRIORITY_WEIGHT",
    "WAREHOUSE_POOL",
    "UnreadableConnectionError",
    "airflow_connection",
    "platform_endpoint",
    "platform_load_pool",
    "unreadable_connection",
]


class UnreadableConnectionError(ValueError):
    """An ``AIRFLOW_CONN_<ID>`` variable is set but Airflow cannot read it as a connection."""


def _unread_fields(exc: TypeError | ValueError) -> str:
    """Why Airflow cannot read a JSON connection's fields, naming the field: Airflow's
    message may quote a field's value (a secret), so only the field's name is taken."""
    unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    if unknown:
        return f"Airflow knows no field {unknown[1]!r} (a misspelt one?)"
    named = re.search(r"`(\w+)`", str(exc))
    if named:
        return f"Airflow cannot read its field {named[1]!r} (a value of the wrong type)"
    return f"Airflow cannot read its fields ({type(exc).__name__})"


def unreadable_connection(conn_id: str) -> UnreadableConnectionError | None:
    """The error saying that the environment variable ``AIRFLOW_CONN_<ID>`` defining
    connection ``conn_id`` is set but is neither JSON nor a connection URI; None when it is
    unset or either. Airflow skips invalid JSON, saying only that the connection is not
    defined, and takes a value without ``://`` for a URI of empty fields: either would pass
    for a connection never set up. The value is never quoted: it holds the credential."""
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    from airflow.sdk.definitions.connection import Connection

    if value.startswith("{"):
        try:
            fields = json.loads(value)
        except ValueError as exc:
            reason = f"it is not valid JSON ({exc})"
        else:
            reason = _json_connection_problem(fields)
            if reason is None:
                try:
                    # As Airflow reads it: a field it does not know.
                    Connection.from_json(value, conn_id=conn_id)
                    return None
                except (TypeError, ValueError) as exc:
                    reason = _unread_fields(exc)
    elif "://" in value:
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 (a port that is no number raises)
            Connection.from_uri(value, conn_id=conn_id)
        except ValueError:
            reason = (
                "its port is no number, or a '/', '?', '#', '@' or ':' in its login or "
                "password is not percent-encoded (%2F, %3F, %23, %40, %3A)"
            )
        else:
            # In the path's first part only: further down, an '@' is the path's own (a
            # Teams webhook's /webhookb2/<id>@<id>/).
            if "@" not in parts.path.lstrip("/").split("/", 1)[0]:
                return None
            # The host Airflow reads is then a piece of the password (and is logged).
            reason = (
                "an '@' stands after its host: a '/' in its login or password is not "
                "percent-encoded (%2F)"
            )
    else:
        reason = "it is no connection URI (<type>://<login>:<password>@<host>:<port>/<schema>)"
    return UnreadableConnectionError(
        f"{name} is set but Airflow cannot read it as connection {conn_id}: {reason}; "
        "correct it (JSON or URI, as Airflow's docs on connections in environment variables "
        "give them) or unset it"
    )


# A JSON connection's fields that Airflow reads as text (a number or a list there made
# Airflow skip the whole connection, saying only that it is not defined).
_TEXT_FIELDS = ("conn_type", "description", "host", "login", "password", "schema")


def _json_connection_problem(fields: dict[str, Any]) -> str | None:
    """What is wrong with a JSON connection's fields (an object: its text starts with
    ``{``), naming the field and its type (never its value), or None."""
    for name in _TEXT_FIELDS:
        if fields.get(name) is not None and not isinstance(fields[name], str):
            kind = type(fields[name]).__name__
            return f"its {name} is a JSON {kind}, not text (write it in quotes)"
    extra = fields.get("extra")
    if extra is not None and not isinstance(extra, str | dict):
        return f"its extra is a JSON {type(extra).__name__}, neither text nor an object"
    port = fields.get("port")
    if port not in (None, "") and not (
        (isinstance(port, int) and not isinstance(port, bool))
        or (isinstance(port, float) and port.is_integer())
        or (isinstance(port, str) and port.strip().isdigit())
    ):
        return "its port is no number"
    return None


def airflow_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or None when it is not defined; raises
    :class:`UnreadableConnectionError` when its environment variable is set but
    unreadable (:func:`unreadable_connection`)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    unreadable = unreadable_connection(conn_id)
    if unreadable is not None:
        raise unreadable
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return _stored_connection(conn_id)


def _stored_connection(conn_id: str) -> Any | None:
    """The connection ``conn_id`` as kept in Airflow's metadata database (added in the UI
    or with ``airflow connections add``), for a process outside a task such as ``slw
    report``: there the task SDK reads only the environment and the secrets backends (in
    a task it asks its supervisor, which reads the database). None when it is not there or
    the database cannot be read (no Airflow home set up: nothing is stored)."""
    from airflow.sdk.execution_time import task_runner

    if getattr(task_runner, "SUPERVISOR_COMMS", None) is not None:
        return None  # a task: the SDK has asked the database already
    if not _metadata_database_may_exist():
        return None
    from airflow.models.connection import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
    except Exception as exc:  # the database: missing, not set up, locked
        # The kind only: a database error can quote its connection string.
        logging.getLogger(__name__).info(
            "Airflow's metadata database was not read for connection %s (%s)",
            conn_id,
            type(exc).__name__,
        )
        return None


def _metadata_database_may_exist() -> bool:
    """False when Airflow's metadata database is a SQLite file that does not exist (no
    Airflow home set up): reading it would create it, empty, in ``~/airflow`` when
    AIRFLOW_HOME is not set."""
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn", fallback="") or ""
    if not url.startswith("sqlite"):
        return True
    path = url.split("?", 1)[0].split(":///", 1)[-1]
    return path in ("", ":memory:") or Path(path).is_file()


def _has_user_info(host: str) -> bool:
    """Whether a host or base URL holds ``user:password@`` (or ``user@``) before its host."""
    authority = re.split(r"[/?#]", host.split("://", 1)[-1], maxsplit=1)[0]
    return "@" in authority


def platform_endpoint(platform: str) -> PlatformEndpoint:
    """Base URL and credential from the Airflow connection ``slw_<platform>``.

    ``host`` holds the base URL (empty: the platform's public endpoint, its connector's
    ``public_base_url``: e.g. Bluesky's public AppView, or for Mastodon each account's
    home instance), ``password`` the token or API key and ``login`` the caller's own
    account id where the API needs one (Instagram); the ``extra`` keys the connector
    declares (Mastodon's ``allowed_instances``, naming where its token may go) become
    connector options. A platform's public endpoint is opt-in too: without a connection
    the platform is not configured (``base_url`` None): nothing is sent anywhere, and the
    run is not failed for it. A connection's variable set but unreadable
    (:func:`unreadable_connection`) raises PlatformError: the platform fails, saying so.

    The password is registered with Airflow's secrets masker in every form it travels in
    (Airflow masks only the literal value), so no task log shows it percent-encoded. Spaces
    and line breaks around the password and login are no part of them (a line break left
    by ``echo`` or a secrets file would make every request unsendable): they are dropped.
    """
    from airflow.sdk.log import mask_secret

    from social_leadership.platforms.base import PlatformError
    from social_leadership.platforms.redaction import travelling_forms
    from social_leadership.platforms.registry import connector_class

    try:
        connection = airflow_connection(f"slw_{platform}")
    except UnreadableConnectionError as exc:
        raise PlatformError(str(exc)) from None
    if connection is None:
        return PlatformEndpoint(None, None)
    password = (connection.password or "").strip() or None
    if password:
        for form in travelling_forms(password):
            mask_secret(form)
    connector = connector_class(platform)
    if connection.host and _has_user_info(connection.host):
        # Sent as Basic auth in place of the token, and written wherever the URL is (the
        # landing's request URLs, errors, alerts): refused, never shown.
        raise PlatformError(
            f"connection slw_{platform}'s host holds a user name or password (user:password@, "
            "not shown): give the token or key in the connection's password field (a "
            "proxy's login goes in HTTPS_PROXY)"
        )
    host = connection.host or connector.public_base_url
    if host and "://" not in host:
        # ``schema`` is the scheme (http or https, as Airflow's HTTP connections hold it),
        # or, read from a URI, its path (``http://:token@gateway:8080/x``): a gateway's
        # base path, which was taken for the scheme (``x://gateway``, retried as a network
        # fault).
        given = (connection.schema or "").strip()
        scheme = given.lower() if given.lower() in ("http", "https") else None
        path = "" if scheme or not given.strip("/") else "/" + given.strip("/")
        scheme = scheme or _uri_scheme(f"slw_{platform}", connection) or "https"
        port = f":{connection.port}" if connection.port else ""
        # An IPv6 address (a URI's [::1] reaches the connection without its brackets); a
        # host:port as written in the host field stays as it is.
        address = f"[{host}]" if _is_ipv6(host) else host
        host = f"{scheme}://{address}{port}{path}"
    elif connection.host and connection.port and urlsplit(host).port is None:
        # A URL without a port in ``host``, the port in its own field: joined, as Airflow's
        # HttpHook joins them (dropped, the requests went to the scheme's own port).
        parts = urlsplit(host)
        host = parts._replace(netloc=f"{parts.netloc}:{connection.port}").geturl()
    options: dict[str, Any] = {}
    extra = connection.extra_dejson if connection.extra else {}
    for declared in connector.connection_fields:
        if declared.source == "extra" and extra.get(declared.key) is not None:
            options[declared.option] = extra[declared.key]
    return PlatformEndpoint(host, password, (connection.login or "").strip() or None, options)


def _is_ipv6(host: str) -> bool:
    import ipaddress

    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False


def _uri_scheme(conn_id: str, connection: Any) -> str | None:
    """``http`` when the connection Airflow found is its environment variable's URI, that
    URI begins with ``http://`` and its host is loopback
    (``AIRFLOW_CONN_SLW_X='http://:token@127.0.0.1:8080'``, an emulator): Airflow keeps
    the scheme only as the connection's type, and the base URL took https. Elsewhere an
    ``http://`` URI names the connection's type as Airflow's docs write it, and a token
    sent over plain HTTP to a real API would cross the network in clear: https (a
    ``schema`` of http says otherwise)."""
    from social_leadership.mail import is_loopback_host

    variable = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "").strip()
    if variable.startswith("{") or "://" not in variable:
        return None
    parts = urlsplit(variable)
    same = (parts.hostname or "").casefold() == str(connection.host or "").casefold()
    plain = parts.scheme.casefold() == "http" and is_loopback_host(connection.host)
    return "http" if same and plain else None


def _param_spelling(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip()).lower()


def refuse_unknown_params(context: Mapping[str, Any]) -> None:
    """Fail the run when its conf holds a key that is no parameter of its DAG: Airflow
    passes such a key along unread, the parameter meant kept its default, and the run went
    green doing what was not asked (``full_refersh`` or ``rebuild``: an incremental build;
    ``weekend`` or ``date``: the week before the run; ``snapshot_date`` to
    ``platform_metrics``: today's counts). A key that misses a parameter by a slip names
    it. Called by the first task of each DAG, before anything is done."""
    import difflib

    conf = getattr(context.get("dag_run"), "conf", None) or {}
    dag = context.get("dag")
    declared = sorted(getattr(dag, "params", None) or {})
    unknown = [key for key in conf if key not in declared]
    if not unknown:
        return
    spelt = {_param_spelling(name): name for name in declared}
    named: list[str] = []
    for key in unknown:
        key_spelt = _param_spelling(key)
        # The name itself in other capitals or separators, a part of it (``refresh``), or
        # a letter or two off.
        parts = set(key_spelt.split("_")) - {""}
        meant = spelt.get(key_spelt) or next(
            (name for s, name in spelt.items() if parts and parts <= set(s.split("_"))), None
        )
        if meant is None:
            close = difflib.get_close_matches(key_spelt, list(spelt), n=1, cutoff=0.75)
            meant = spelt[close[0]] if close else None
        named.append(f"{key!r} (meant {meant!r}?)" if meant else repr(key))
    dag_id = getattr(dag, "dag_id", "this DAG")
    takes = ", ".join(declared) or "no parameter"
    from airflow.sdk.exceptions import AirflowFailException

    # No retry reads another conf: triggered again, with the parameters' own names.
    raise AirflowFailException(
        f"the run's conf names no parameter of {dag_id}: {', '.join(named)}; nothing was "
        f"done: trigger the run again without it ({dag_id} takes: {takes})"
    )
