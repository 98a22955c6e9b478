"""Mail as clients and servers expect it (social_leadership.mail): a real SMTP server on
loopback (aiosmtpd), sent through Airflow's SMTP hook."""

from __future__ import annotations

import json
import re
import smtplib
import ssl
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from slw_testing import Mailbox, free_port, loopback_smtp

from social_leadership.mail import (
    Attachment,
    InlineImage,
    RecipientsRefusedError,
    SmtpSettingError,
    UnsendableError,
    build_message,
    failure_reason,
    refuse_login_in_clear,
    send_message,
    tls_mode,
)

CONN_ID = "slw_smtp"


@pytest.fixture
def mailbox(monkeypatch):
    refusing = Mailbox(refuse={"gone@example.org", "left@example.org"})
    with loopback_smtp(monkeypatch, refusing, retry_limit=0) as box:
        yield box


def message(recipients: list[str]):
    return build_message(
        sender="Équipe Rapports <reports@example.org>",
        recipients=recipients,
        subject="Briefing \u2013 Woche 48",
        text="Deutschland: 47 Führungskräfte\n",
        html="<p>Deutschland: 47 Führungskräfte</p>",
        attachments=[Attachment("weekly_report_2026-W48.pdf", b"%PDF-1.7 x", "application/pdf")],
    )


def test_a_message_has_a_text_part_an_html_alternative_and_its_attachment(mailbox) -> None:
    send_message(CONN_ID, message(["board@example.org"]), ["board@example.org"])

    ((recipients, raw),) = mailbox.messages
    # 7-bit throughout: a relay without 8BITMIME takes it as it is.
    assert raw.isascii()
    received = message_from_bytes(raw, policy=policy.default)
    assert recipients == ["board@example.org"]
    # A display name outside ASCII is encoded apart from its address, which stays readable.
    assert received["From"].addresses[0].addr_spec == "reports@example.org"
    assert received["From"].addresses[0].display_name == "Équipe Rapports"
    assert str(received["Subject"]) == "Briefing \u2013 Woche 48"
    assert received["Message-ID"].endswith("@example.org>")
    assert received["Date"].endswith(("+0000", "GMT"))
    assert received.get_content_type() == "multipart/mixed"
    body = received.get_body(preferencelist=("plain",))
    assert body.get_content().splitlines() == ["Deutschland: 47 Führungskräfte"]
    assert "Führungskräfte" in received.get_body(preferencelist=("html",)).get_content()
    (pdf,) = received.iter_attachments()
    assert (pdf.get_content_type(), pdf.get_filename()) == (
        "application/pdf",
        "weekly_report_2026-W48.pdf",
    )
    assert pdf.get_content() == b"%PDF-1.7 x"


def test_a_recipient_the_server_refuses_is_named_and_the_others_get_the_mail(mailbox) -> None:
    to = ["board@example.org", "gone@example.org"]

    with pytest.raises(RecipientsRefusedError) as refused:
        send_message(CONN_ID, message(to), to)

    assert (refused.value.refused, refused.value.delivered) == (
        {"gone@example.org": 550},
        ("board@example.org",),
    )
    assert str(refused.value) == "the SMTP server refused gone@example.org (550)"
    assert [recipients for recipients, _ in mailbox.messages] == [["board@example.org"]]


def test_all_recipients_refused_is_the_same_error_with_none_delivered(mailbox) -> None:
    to = ["gone@example.org", "left@example.org"]

    with pytest.raises(RecipientsRefusedError) as refused:
        send_message(CONN_ID, message(to), to)

    assert refused.value.delivered == ()
    assert set(refused.value.refused) == set(to)
    assert mailbox.messages == []


def test_inline_images_go_with_the_html_in_one_related_part_and_need_it() -> None:
    images = [InlineImage("chart@example.org", b"\x89PNG one"), InlineImage("b@x", b"two")]
    built = build_message(
        sender="reports@example.org",
        recipients=["board@example.org"],
        subject="Charts",
        text="See the charts.\n",
        html='<img src="cid:chart@example.org" alt="chart"><img src="cid:b@x" alt="b">',
        inline_images=images,
        attachments=[Attachment("report.pdf", b"%PDF-1.7 x", "application/pdf")],
    )

    received = message_from_bytes(built.as_bytes(), policy=policy.default)
    assert built.as_bytes().isascii()
    (alternative,) = [p for p in received.walk() if p.get_content_type() == "multipart/alternative"]
    text, related = alternative.get_payload()
    assert (text.get_content_type(), related.get_content_type()) == (
        "text/plain",
        "multipart/related",
    )
    assert related.get_param("type") == "text/html"  # its root's, as RFC 2387 asks
    html, *shown = related.get_payload()
    assert html.get_content_type() == "text/html"
    assert [(p["Content-ID"], p.get_content_type(), p.get_content()) for p in shown] == [
        ("<chart@example.org>", "image/png", b"\x89PNG one"),
        ("<b@x>", "image/png", b"two"),
    ]
    # The images are not attachments: only the PDF is.
    assert [p.get_filename() for p in received.iter_attachments()] == ["report.pdf"]
    with pytest.raises(ValueError, match="HTML part"):
        build_message(
            sender="reports@example.org",
            recipients=["board@example.org"],
            subject="Charts",
            text="No HTML.\n",
            inline_images=images,
        )


@pytest.mark.parametrize(
    ("port", "extra", "expected"),
    [
        (587, {}, (False, True)),
        (25, {}, (False, True)),
        (465, {}, (True, False)),
        (587, {"disable_ssl": True, "disable_tls": True}, (False, False)),
        (465, {"disable_ssl": "false", "disable_tls": "true"}, (True, False)),
        # A URI's extras are text: "false" is false (Airflow's hook took it for true and
        # sent the password without STARTTLS).
        (2525, {"disable_ssl": "true", "disable_tls": "false"}, (False, True)),
        (2525, {"disable_ssl": "1", "disable_tls": "No"}, (False, True)),
        (2525, {"disable_tls": "off"}, (False, True)),
    ],
)
def test_tls_is_as_the_extras_say_and_else_as_the_port_says(port, extra, expected) -> None:
    from airflow.sdk import Connection

    connection = Connection(conn_id=CONN_ID, conn_type="smtp", port=port, extra=json.dumps(extra))

    assert tls_mode(connection) == expected


def test_an_extra_that_is_no_boolean_says_which() -> None:
    from airflow.sdk import Connection

    connection = Connection(
        conn_id=CONN_ID, conn_type="smtp", extra=json.dumps({"disable_tls": "maybe"})
    )

    with pytest.raises(SmtpSettingError) as raised:
        tls_mode(connection)
    assert str(raised.value) == (
        "the extra disable_tls of the SMTP connection is 'maybe': give true or false"
    )


def _self_signed(folder: Path) -> ssl.SSLContext:
    """A server's TLS context with a certificate for localhost, signed by itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@pytest.fixture
def starttls_server(tmp_path):
    """A server that takes a login only over STARTTLS, as a submission server on 587
    does; yields (mailbox, port, the logins it saw: (user, whether TLS was on))."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[str, bool]] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login.decode(), session.ssl is not None))
        return AuthResult(success=auth_data.password == b"s3cret/pass")

    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        server_hostname="localhost",
        tls_context=_self_signed(tmp_path),
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox, controller.port, logins
    finally:
        controller.stop()


# The servers take a login without TLS, to see whether the client sends one so.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_connection_of_host_port_and_login_alone_sends_over_starttls(
    monkeypatch, starttls_server
) -> None:
    # README's connection: no disable_ssl or disable_tls. Airflow's SMTP hook opened TLS
    # from the start on any port, and the mail failed with an SSL error.
    mailbox, port, logins = starttls_server
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "login": "alerts",
        "password": "s3cret/pass",
        # The test's certificate is its own: not checked (a real server's is).
        "extra": {"ssl_context": "none", "retry_limit": 0},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", json.dumps(connection))

    send_message(CONN_ID, message(["a@example.org"]), ["a@example.org"])

    assert [recipients for recipients, _ in mailbox.messages] == [["a@example.org"]]
    assert logins == [("alerts", True)]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_disable_tls_false_in_a_uri_keeps_the_password_off_a_clear_line(monkeypatch) -> None:
    from aiosmtpd.controller import Controller

    logins: list[bytes] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.password)
        raise AssertionError("a password sent in clear")

    controller = Controller(
        Mailbox(),
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLW_SMTP",
            f"smtp://alerts:s3cret%2Fpass@127.0.0.1:{controller.port}"
            "?disable_ssl=true&disable_tls=false&retry_limit=0",
        )
        with pytest.raises(smtplib.SMTPNotSupportedError) as raised:
            send_message(CONN_ID, message(["a@example.org"]), ["a@example.org"])
    finally:
        controller.stop()

    assert logins == []
    assert failure_reason(raised.value).startswith(
        "SMTPNotSupportedError (the server offers no STARTTLS here"
    )


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("Data Team, ACME <reports@acme.example>", "Data Team, ACME"),
        ('"Data Team, ACME" <reports@acme.example>', "Data Team, ACME"),
        ("Équipe Rapports, Berlin <reports@acme.example>", "Équipe Rapports, Berlin"),
        ('Data "Ops", ACME <reports@acme.example>', 'Data "Ops", ACME'),
        ("reports@acme.example", ""),
    ],
)
def test_a_display_name_with_a_comma_is_one_sender(written, name) -> None:
    # Unquoted, the comma made two mailboxes of it: the envelope's sender was "Data".

    from airflow.sdk import Connection

    from social_leadership.mail import sender_of

    connection = Connection(
        conn_id=CONN_ID, conn_type="smtp", extra=json.dumps({"from_email": written})
    )
    sent = build_message(
        sender=sender_of(connection, "x@localhost"),
        recipients=["a@example.org"],
        subject="s",
        text="t",
    )

    parsed = message_from_bytes(sent.as_bytes(), policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in parsed["From"].addresses] == [
        (name, "reports@acme.example")
    ]


def test_a_subject_past_78_characters_starts_on_the_subject_line() -> None:
    # Folded at 78, it went whole onto a second line ("Subject:" alone on the first), and a
    # filter on "^Subject: [social-leadership]" missed every such alert.
    subject = "[social-leadership] platform_metrics failed: 2 task(s) failed, 2 did not run"
    sent = build_message(
        sender="a@example.org",
        recipients=["b@example.org"],
        subject=subject,
        text="Führung " * 50,
        html="<p>" + "x" * 3000 + "</p>",
        attachments=[Attachment("r.pdf", b"%PDF" * 2000, "application/pdf")],
    )

    lines = sent.as_bytes().split(b"\r\n")
    assert f"Subject: {subject}".encode() in lines
    # The parts keep their lines of 78 at most (base64's 76): only headers are longer
    # (with a policy of 998, the parts were encoded in lines of 998).
    body = lines[lines.index(b"") :]
    assert max(len(line) for line in body if not line.startswith(b"Content-")) <= 78
    # A subject outside ASCII is folded as before, its encoded words at most 75 long.
    german = message(["a@example.org"]).as_bytes().split(b"\r\n")
    assert max(len(line) for line in german) <= 78


def test_a_long_subject_stays_on_its_line_with_a_sender_s_name_outside_ascii() -> None:
    # README's own from_email, "Équipe Rapports <reports@example.org>", folded the subject
    # whole onto a second line, which a filter on "^Subject: Social leadership" missed and
    # a parser read with a leading space.
    subject = "Social leadership weekly report 2026-W49 (2026-11-30 to 2026-12-06): x"
    sent = build_message(
        sender="Équipe Rapports <reports@example.org>",
        recipients=["b@example.org"],
        subject=subject,
        text="t",
    )

    raw = sent.as_bytes()
    assert f"Subject: {subject}".encode() in raw.split(b"\r\n")
    # The name is one encoded word of at most 75 characters, as RFC 2047 allows.
    assert all(len(w) <= 75 for w in re.findall(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=", raw))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Équipe Rapports"


def test_an_address_outside_ascii_to_a_server_without_smtputf8_is_named(monkeypatch) -> None:
    # smtplib said only SMTPNotSupportedError, read as a TLS problem.
    from aiosmtpd.controller import Controller

    controller = Controller(
        Mailbox(), hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False
    )
    controller.start()
    try:
        connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port}
        extra = {"disable_ssl": True, "disable_tls": True, "retry_limit": 0}
        monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", json.dumps({**connection, "extra": extra}))
        recipients = ["jürgen@example.de", "a@example.org"]
        with pytest.raises(UnsendableError) as raised:
            send_message(CONN_ID, message(recipients), recipients)
    finally:
        controller.stop()

    assert failure_reason(raised.value) == (
        "the SMTP server takes no address outside ASCII (it offers no SMTPUTF8): jürgen@example.de"
    )


def test_an_untrusted_certificate_says_so_not_which_tls_to_turn_off() -> None:
    # An SSLCertVerificationError is an SSLError: it was told to turn TLS from the start
    # off, wrong advice on 587.
    reason = failure_reason(ssl.SSLCertVerificationError(1, "certificate verify failed"))

    assert reason.startswith("SSLCertVerificationError (the server's certificate is not trusted")
    assert "disable_ssl" not in reason


def test_a_login_without_tls_to_another_host_is_refused_before_connecting(monkeypatch) -> None:
    # "disable_tls": true with a login sent the password in clear to whatever answered
    # (the error for a server without STARTTLS even advised it). 192.0.2.1 is TEST-NET-1:
    # nothing answers there; the refusal comes before any connection.
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLW_SMTP",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "192.0.2.1",
                "port": 2525,
                "login": "alerts",
                "password": "s3cret",
                "extra": {"disable_tls": True, "retry_limit": 0, "timeout": 1},
            }
        ),
    )

    with pytest.raises(SmtpSettingError) as raised:
        send_message(CONN_ID, message(["a@example.org"]), ["a@example.org"])

    reason = failure_reason(raised.value)
    assert "has a login and no TLS" in reason
    assert "login_in_clear" in reason
    assert "s3cret" not in reason


@pytest.mark.parametrize(
    ("host", "extra", "login", "refused"),
    [
        ("smtp.example.org", {"disable_tls": True}, "alerts", True),
        ("smtp.example.org", {"disable_tls": True, "login_in_clear": "true"}, "alerts", False),
        ("smtp.example.org", {"disable_tls": True}, None, False),
        ("smtp.example.org", {}, "alerts", False),
        ("smtp.example.org", {"disable_tls": True, "disable_ssl": False}, "alerts", False),
        ("localhost", {"disable_tls": True}, "alerts", False),
        ("127.0.0.1", {"disable_tls": True}, "alerts", False),
        ("::1", {"disable_tls": True}, "alerts", False),
        ("localhost.", {"disable_tls": True}, "alerts", False),
        ("ip6-localhost", {"disable_tls": True}, "alerts", False),
        ("::ffff:127.0.0.1", {"disable_tls": True}, "alerts", False),
        # A loopback host is never refused, whatever the extra says.
        ("127.0.0.1", {"disable_tls": True, "login_in_clear": "maybe"}, "alerts", False),
        ("mail.localhost.example.org", {"disable_tls": True}, "alerts", True),
    ],
)
def test_only_a_login_that_would_cross_a_network_in_clear_is_refused(
    host, extra, login, refused
) -> None:
    from airflow.sdk import Connection

    connection = Connection(
        conn_id=CONN_ID,
        conn_type="smtp",
        host=host,
        port=2525,
        login=login,
        password="s3cret",
        extra=json.dumps(extra),
    )

    if refused:
        with pytest.raises(SmtpSettingError):
            refuse_login_in_clear(connection)
    else:
        refuse_login_in_clear(connection)
