"""Airflow connections -> platform endpoints: public defaults only on request, every
credential registered with Airflow's secrets masker in each form it can travel in."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from urllib.parse import quote, quote_plus

import pytest

from social_leadership.domain import PLATFORMS
from social_leadership.orchestration import platform_endpoint

SECRET = "Mask/me+please=Zq81"


@pytest.fixture(autouse=True)
def no_connections(monkeypatch):
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_SLW_")]:
        monkeypatch.delenv(name)


def _connection(monkeypatch, platform: str, **fields: object) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_SLW_{platform.upper()}", json.dumps({"conn_type": "http", **fields})
    )


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_without_a_connection_no_platform_has_an_endpoint(platform):
    assert platform_endpoint(platform).base_url is None


def test_a_connection_without_host_opts_into_the_public_default(monkeypatch):
    _connection(monkeypatch, "bluesky")
    _connection(monkeypatch, "mastodon", password="tok-12345")

    assert platform_endpoint("bluesky").base_url == "https://public.api.bsky.app"
    assert platform_endpoint("mastodon").base_url == "https://{instance}"


def test_allowed_instances_come_from_the_connection_extra(monkeypatch):
    _connection(
        monkeypatch,
        "mastodon",
        password="tok-12345",
        extra={"allowed_instances": ["mastodon.social", "Hachyderm.io"]},
    )

    assert platform_endpoint("mastodon").options == {
        "allowed_instances": ["mastodon.social", "Hachyderm.io"]
    }


def test_spaces_and_line_breaks_around_a_password_or_login_are_dropped(monkeypatch):
    # As ``echo`` or a secrets file leaves them: in a header, a line break makes every
    # request unsendable.
    _connection(monkeypatch, "instagram", password=" tok-12345\n", login="17841400000\r\n")

    endpoint = platform_endpoint("instagram")

    assert (endpoint.credentials, endpoint.login) == ("tok-12345", "17841400000")


def test_every_form_of_the_password_is_masked_in_airflow_logs(monkeypatch):
    from airflow.sdk.log import redact

    _connection(monkeypatch, "youtube", host="https://www.googleapis.com", password=SECRET)
    platform_endpoint("youtube")

    line = (
        f"key={quote(SECRET, safe='')} plus={quote_plus(SECRET)} raw={SECRET} path={quote(SECRET)}"
    )
    masked = str(redact(line))
    assert [
        form for form in (SECRET, quote(SECRET, safe=""), quote(SECRET)) if form in masked
    ] == []


def test_a_webhook_url_with_an_at_sign_in_its_path_is_readable(monkeypatch):
    # A Teams webhook's path holds an '@' (/webhookb2/<id>@<id>/): it was taken for an
    # unencoded password, and the alert channel dropped.
    from social_leadership.orchestration import unreadable_connection

    teams = "https://acme.webhook.office.com/webhookb2/1a2b@3c4d/IncomingWebhook/5e6f/7a8b"
    monkeypatch.setenv("AIRFLOW_CONN_SLW_WEBHOOK", teams)

    assert unreadable_connection("slw_webhook") is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('{"conn_type": "http", host: "h", "password": "tok-secret"}', "it is not valid JSON ("),
        ("http//tok-secret@host", "it is no connection URI ("),
        # Airflow took these for connections never defined too: a port that is no number,
        # a '/' of the password not percent-encoded (its host then a piece of the password).
        ("https://:tok-secret@host:443x", "its port is no number, or a '/'"),
        # Airflow's message quoted the port's value.
        ('{"conn_type": "http", "host": "h", "port": "tok-secret"}', "its port is no number"),
        (
            '{"conn_type": "http", "hostname": "h", "password": "tok-secret"}',
            "Airflow knows no field 'hostname' (a misspelt one?)",
        ),
        # A token left unquoted: Airflow read the connection as not defined at all.
        (
            '{"conn_type": "http", "host": "h", "password": 98765}',
            "its password is a JSON int, not text (write it in quotes)",
        ),
        ('{"conn_type": "http", "login": ["tok-secret"]}', "its login is a JSON list, not text"),
        ('{"conn_type": "http", "extra": 7}', "its extra is a JSON int, neither text nor an"),
        ("https://:tok@se/cret@host/path", "an '@' stands after its host: a '/'"),
    ],
)
def test_a_connection_variable_airflow_cannot_read_fails_the_platform(monkeypatch, value, reason):
    """Airflow skips such a value and says only that the connection is not defined: read as
    not configured, the platform would pass green, never extracted."""
    from social_leadership.platforms.base import PlatformError

    monkeypatch.setenv("AIRFLOW_CONN_SLW_BLUESKY", value)

    with pytest.raises(PlatformError) as failed:
        platform_endpoint("bluesky")

    message = str(failed.value)
    assert message.startswith(
        "AIRFLOW_CONN_SLW_BLUESKY is set but Airflow cannot read it as connection slw_bluesky: "
        + reason
    )
    assert "tok-secret" not in message


@pytest.mark.parametrize(
    "host",
    ["http://gw:tok-secret@127.0.0.1:18452", "https://tok-secret@api.x.com", "gw:tok-secret@h"],
)
def test_a_host_holding_a_user_or_password_fails_the_platform_never_showing_it(monkeypatch, host):
    # Written wherever the URL went (landing request URLs, errors, alerts), and sent as
    # Basic auth in place of the token.
    from social_leadership.platforms.base import PlatformError

    monkeypatch.setenv(
        "AIRFLOW_CONN_SLW_X",
        json.dumps({"conn_type": "http", "host": host, "password": "token"}),
    )

    with pytest.raises(PlatformError) as failed:
        platform_endpoint("x")

    assert "connection slw_x's host holds a user name or password" in str(failed.value)
    assert "tok-secret" not in str(failed.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "https://api.example.org?note=a@b"},  # an '@' in the query, not the host's
        {"host": "h", "port": 443.0},  # a port JSON writes as a float, which Airflow takes
    ],
)
def test_a_connection_that_only_looks_odd_is_read(monkeypatch, fields):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLW_X", json.dumps({"conn_type": "http", "password": "token", **fields})
    )

    assert platform_endpoint("x").credentials == "token"


def test_a_url_is_written_without_the_user_and_password_before_its_host() -> None:
    from social_leadership.platforms.base import redact_url

    assert redact_url("http://gw:tok-secret@127.0.0.1:18452/2/users/by?usernames=a") == (
        "http://REDACTED@127.0.0.1:18452/2/users/by?usernames=a"
    )
    assert redact_url("https://api.x.com/2/users/by?usernames=a@b") == (
        "https://api.x.com/2/users/by?usernames=a@b"
    )


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("full_refersh", "full_refresh"),
        ("Full_Refresh", "full_refresh"),
        ("full refresh", "full_refresh"),
        ("refresh", "full_refresh"),
        ("fullrefresh", "full_refresh"),
    ],
)
def test_a_conf_key_that_is_a_slip_of_a_parameter_fails_naming_both(key, meant):
    from airflow.sdk.exceptions import AirflowFailException

    from social_leadership.orchestration import refuse_unknown_params

    context = {
        "dag": SimpleNamespace(dag_id="warehouse_build", params={"full_refresh": False}),
        "dag_run": SimpleNamespace(conf={key: True}),
    }
    with pytest.raises(AirflowFailException) as failed:
        refuse_unknown_params(context)

    assert f"{key!r} (meant {meant!r}?)" in str(failed.value)
    assert "warehouse_build takes: full_refresh" in str(failed.value)


@pytest.mark.parametrize(
    ("dag_id", "params", "conf", "said"),
    [
        # Words for a parameter no slip rule ties to it (the review's): green, undone.
        ("warehouse_build", {"full_refresh": False}, {"rebuild": True}, "'rebuild';"),
        ("weekly_report", {"week_end": None, "resend": False}, {"date": "2025-03-09"}, "'date';"),
        # A DAG without parameters: a past day is asked by a logical date, never by conf.
        ("platform_metrics", {}, {"snapshot_date": "2025-03-09"}, "takes: no parameter)"),
    ],
)
def test_a_conf_key_of_no_parameter_fails_the_run(dag_id, params, conf, said):
    from airflow.sdk.exceptions import AirflowFailException

    from social_leadership.orchestration import refuse_unknown_params

    context = {
        "dag": SimpleNamespace(dag_id=dag_id, params=params),
        "dag_run": SimpleNamespace(conf=conf),
    }
    with pytest.raises(AirflowFailException) as failed:
        refuse_unknown_params(context)

    assert f"the run's conf names no parameter of {dag_id}: " in str(failed.value)
    assert said in str(failed.value)


def test_a_conf_of_the_dag_s_parameters_or_none_passes():
    from social_leadership.orchestration import refuse_unknown_params

    params = {"week_end": None, "resend": False}
    for conf in ({"week_end": "2025-03-09", "resend": True}, {}, None):
        context = {
            "dag": SimpleNamespace(dag_id="weekly_report", params=params),
            "dag_run": SimpleNamespace(conf=conf),
        }
        refuse_unknown_params(context)
    refuse_unknown_params({})  # a task's context built by hand, as tests do


def test_a_url_host_takes_the_port_field_and_an_http_uri_keeps_its_scheme(monkeypatch):
    # The port beside a URL host was dropped (requests went to port 80), and an http://
    # URI's scheme, which Airflow keeps only as the connection type, became https: both
    # sent an emulator's requests elsewhere, failing with a ConnectError after retries.
    _connection(monkeypatch, "x", host="http://127.0.0.1", port=47867, password="tok")
    assert platform_endpoint("x").base_url == "http://127.0.0.1:47867"
    _connection(monkeypatch, "x", host="http://127.0.0.1:8080/api", port=47867, password="t")
    assert platform_endpoint("x").base_url == "http://127.0.0.1:8080/api"

    monkeypatch.setenv("AIRFLOW_CONN_SLW_LINKEDIN", "http://:tok@127.0.0.1:47867")
    assert platform_endpoint("linkedin").base_url == "http://127.0.0.1:47867"
    monkeypatch.setenv("AIRFLOW_CONN_SLW_LINKEDIN", "http://:tok@127.0.0.1:47867/https")
    assert platform_endpoint("linkedin").base_url == "https://127.0.0.1:47867"
    monkeypatch.setenv("AIRFLOW_CONN_SLW_LINKEDIN", "http://:tok@[::1]:47867")
    assert platform_endpoint("linkedin").base_url == "http://[::1]:47867"
    # host:port written in the host field, as Airflow's form allows: left as it is.
    _connection(monkeypatch, "threads", host="127.0.0.1:8765", schema="http", password="t")
    assert platform_endpoint("threads").base_url == "http://127.0.0.1:8765"
    # To a real API, an http:// URI names the connection type: the token goes over https.
    monkeypatch.setenv("AIRFLOW_CONN_SLW_X", "http://:secret-bearer@api.x.com")
    assert platform_endpoint("x").base_url == "https://api.x.com"
    # A connection of type http given as JSON names no scheme: https, as before.
    _connection(monkeypatch, "youtube", host="www.googleapis.com", password="key")
    assert platform_endpoint("youtube").base_url == "https://www.googleapis.com"
    _connection(monkeypatch, "youtube", host="127.0.0.1", port=8080, schema="http", password="k")
    assert platform_endpoint("youtube").base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("uri", "base_url"),
    [
        ("http://:tok-12345@127.0.0.1:47867/li", "http://127.0.0.1:47867/li"),
        (
            "https://:tok-12345@gateway.example.com/social/x/",
            "https://gateway.example.com/social/x",
        ),
        ("http://:tok-12345@127.0.0.1:47867/HTTP", "http://127.0.0.1:47867"),
    ],
    ids=["emulator-path", "gateway-path", "scheme-as-path"],
)
def test_a_uri_s_path_is_the_base_path_unless_it_names_a_scheme(monkeypatch, uri, base_url):
    # Airflow keeps a URI's path as the connection's schema, which was taken for the scheme
    # (li://127.0.0.1:47867): every request failed as a network fault, retried 12 times.
    monkeypatch.setenv("AIRFLOW_CONN_SLW_LINKEDIN", uri)

    assert platform_endpoint("linkedin").base_url == base_url


def test_a_base_url_whose_scheme_http_has_not_fails_at_once_saying_so(monkeypatch):
    from social_leadership.platforms import build_connector
    from social_leadership.platforms.base import PlatformError

    _connection(monkeypatch, "x", host="ftp://127.0.0.1:47867", password="tok-12345")
    endpoint = platform_endpoint("x")
    sleeps: list[float] = []
    connector = build_connector("x", endpoint.base_url, endpoint.credentials, sleep=sleeps.append)

    with pytest.raises(PlatformError) as refused:
        connector.extract(["someone"])

    assert str(refused.value) == (
        "x: the base URL's scheme (ftp) is not http or https: check the host and schema of "
        "the connection slw_x"
    )
    assert sleeps == []  # no retry
    assert refused.value.partial is not None
    assert refused.value.partial.requests_sent == 1
