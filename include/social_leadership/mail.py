"""E-mail through the SMTP connection: a message as mail clients and servers expect one.

Airflow's SMTP hook connects and logs in as its connection says (TLS, SSL, OAuth, time-out,
retries of the connection; a send is not retried: a report's task retries, an alert goes
once); the message is built here with the standard library's e-mail policy, which encodes
a display name without its address (``Équipe <reports@example.org>``), and holds a
plain-text part beside the HTML (and the images the HTML shows by Content-ID, in one
``multipart/related`` with it), a ``Message-ID`` and a UTC ``Date``, every part 7-bit. A
server that refuses some recipients and takes the others is told apart from one that takes
all (:class:`RecipientsRefusedError`), where the hook would report both as sent.
"""

from __future__ import annotations

import ipaddress
import re
import smtplib
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML part shows as ``<img src="cid:CONTENT_ID">``."""

    content_id: str  # without the angle brackets of its header
    data: bytes
    content_type: str = "image/png"


class RecipientsRefusedError(Exception):
    """The server refused ``refused`` (address -> its SMTP reply code); ``delivered`` took
    the message."""

    def __init__(self, refused: dict[str, int], delivered: Sequence[str]) -> None:
        self.refused, self.delivered = refused, tuple(delivered)
        said = ", ".join(f"{address} ({code})" for address, code in refused.items())
        super().__init__(f"the SMTP server refused {said}")


def sender_of(connection: Any, default: str) -> str:
    """The sender an SMTP connection names (its extra ``from_email``), else ``default``. A
    display name holding a comma, unquoted as people write it (``Data Team, ACME
    <reports@acme.example>``), is quoted: read as written, it was two mailboxes, and the
    envelope's sender was ``Data``."""
    extra = connection.extra_dejson if getattr(connection, "extra", None) else {}
    sender = str(extra.get("from_email") or default).strip()
    named = _NAMED_ADDRESS.fullmatch(sender)
    name = named[1].strip() if named else ""
    if named and "," in name and not (len(name) > 1 and name[0] == name[-1] == '"'):
        # Quoted as written (not encoded here: the message's policy encodes a name
        # outside ASCII, and kept the comma out of the encoding of formataddr's), its own
        # quotes and backslashes escaped.
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{named[2].strip()}>'
    return sender


# A display name and its address in angle brackets: Équipe <reports@example.org>.
_NAMED_ADDRESS = re.compile(r"(.*?)\s*<([^<>]+)>")


def server_of(connection: Any) -> str:
    """The SMTP server a connection names, ``host:port`` (no secret: it says where to
    look when a mail fails); ``""`` when it names none."""
    return (connection.host or "") + (f":{connection.port}" if connection.port else "")


# 7-bit: parts outside ASCII go quoted-printable or base64, as any relay takes them (8-bit
# bodies need the server's 8BITMIME, which a send does not ask for); base64's lines 76
# long, quoted-printable's 78.
_POLICY = policy.SMTP.clone(cte_type="7bit")
# Sent with headers of ASCII alone: folded at RFC 5322's limit, not at 78, where a subject
# just over it was folded whole onto a second line ("Subject:" alone on the first), which
# a filter on "^Subject: [social-leadership]" misses. (The parts, already encoded, keep
# their lines; a header outside ASCII keeps 78, its encoded words at most 75 long.)
_LONG_HEADERS = _POLICY.clone(max_line_length=998)


def build_message(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    inline_images: Sequence[InlineImage] = (),
) -> EmailMessage:
    """A message of ``text`` (and ``html`` as its alternative, with the ``inline_images``
    it shows) with ``attachments``."""
    if inline_images and html is None:
        raise ValueError("inline images need an HTML part to show them")
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    # The sender's domain, not the machine's name: make_msgid would ask the resolver for it.
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    if inline_images:
        html_part = message.get_body(("html",))
        assert html_part is not None
        for image in inline_images:
            maintype, _, subtype = image.content_type.partition("/")
            html_part.add_related(
                image.data,
                maintype=maintype,
                subtype=subtype,
                cid=f"<{image.content_id}>",
            )
        # Now the multipart/related: its root's type, as RFC 2387 asks.
        html_part.set_param("type", "text/html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.name
        )
    if subject.isascii() and _fits_long_lines(message):
        message.policy = _LONG_HEADERS  # once the parts are encoded, in their lines
    return message


_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _fits_long_lines(message: EmailMessage) -> bool:
    """Whether the headers can be folded at 998: every encoded word (a sender's or
    recipient's name outside ASCII, "Équipe Rapports") still at most 75 long, as RFC 2047
    allows; a longer name keeps the folding at 78, which splits it."""
    folded = "".join(_LONG_HEADERS.fold(name, value) for name, value in message.items())
    return all(len(word) <= 75 for word in _ENCODED_WORD.findall(folded))


class SmtpSettingError(ValueError):
    """An SMTP connection's extra that is no setting (its message names the extra, never
    the connection's secrets)."""


class UnsendableError(Exception):
    """A message the server cannot take as addressed (its message names the addresses)."""


# The port of SMTP over TLS from the start (RFC 8314); any other (587, 25) speaks STARTTLS.
IMPLICIT_TLS_PORT = 465
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def connection_flag(connection: Any, name: str) -> bool | None:
    """The boolean extra ``name`` of a connection, None when it is not given. A URI's
    extras are text (``?disable_tls=false``), which Airflow's SMTP hook reads as true
    (any text that is not empty): ``false``, ``0``, ``no``, ``off`` are false here."""
    extra = connection.extra_dejson if getattr(connection, "extra", None) else {}
    value = extra.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SmtpSettingError(
        f"the extra {name} of the SMTP connection is {str(value)[:20]!r}: give true or false"
    )


def tls_mode(connection: Any) -> tuple[bool, bool]:
    """(TLS from the start, STARTTLS) for an SMTP connection: as its extras
    ``disable_ssl`` and ``disable_tls`` say, and where they are not given, by its port:
    TLS from the start on 465, else STARTTLS (Airflow's SMTP hook takes both by default,
    which no server speaks: a connection of host, port and login failed on 587 with an
    SSL error, and on 465 when the server offered no STARTTLS inside TLS)."""
    disable_ssl = connection_flag(connection, "disable_ssl")
    disable_tls = connection_flag(connection, "disable_tls")
    implicit = (
        (not disable_ssl) if disable_ssl is not None else connection.port == IMPLICIT_TLS_PORT
    )
    starttls = (not disable_tls) if disable_tls is not None else not implicit
    return implicit, starttls


def refuse_login_in_clear(connection: Any) -> None:
    """Raise :class:`SmtpSettingError` for a connection that would send its login and
    password unencrypted across a network: no TLS (``disable_tls`` true, no TLS from the
    start) to a host other than loopback, unless its extra ``login_in_clear`` is true (a
    relay on a private network that takes a login and no TLS)."""
    if not (connection.login and connection.password) or any(tls_mode(connection)):
        return
    if is_loopback_host(connection.host) or connection_flag(connection, "login_in_clear"):
        return
    raise SmtpSettingError(
        "the SMTP connection has a login and no TLS (extra disable_tls true): its password "
        "would cross the network in clear. Drop disable_tls (STARTTLS), use TLS from the "
        "start (port 465), remove the login for a relay that takes mail without one, or "
        "set the extra login_in_clear true for a relay on a private network"
    )


# Host names that are this machine's loopback (RFC 6761 keeps localhost and its
# subdomains for it; Debian's /etc/hosts names the IPv6 one ip6-localhost).
_LOOPBACK_NAMES = ("localhost", "ip6-localhost", "ip6-loopback")


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` (a name or an address, an IPv6 one in brackets or not) is this
    machine's loopback: nothing sent to it crosses a network."""
    name = (host or "").strip().strip("[]").rstrip(".").casefold()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


# Characters of a server's reply a failure quotes: its reason (message too large, spam,
# mailbox full) fits; a reply can be as long as the server likes.
_REPLY_CHARS = 160


def failure_reason(exc: BaseException) -> str:
    """What a failed send says: the kind of error; the server's reply code, and its text
    but to a login (a reply to a login can quote it); for a time-out and the TLS
    mismatches a hint."""
    if isinstance(exc, SmtpSettingError | UnsendableError):
        return str(exc)
    kind = type(exc).__name__
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"{kind} {exc.smtp_code} (the server refused the connection's login and password)"
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        reply = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        reply = " ".join(reply.split())
        if len(reply) > _REPLY_CHARS:
            reply = reply[: _REPLY_CHARS - 3] + "..."
        return f"{kind} {exc.smtp_code}" + (f": {reply}" if reply else "")
    if isinstance(exc, TimeoutError) or (
        isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc)
    ):
        return (
            f"{kind} (the server did not answer within the connection's time-out, its "
            "extra timeout)"
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(exc):
        return (
            f"{kind} (the server offers no STARTTLS here: for TLS from the start set the "
            "extra disable_tls true and disable_ssl false, port 465; for a relay that takes "
            "mail in clear and no login, disable_tls true)"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"{kind} (the server's certificate is not trusted: give the machine its "
            "authority's certificate; the extra ssl_context none turns the check off, for "
            "a test server only)"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"{kind} (no TLS from the start on this port: a server on 587 or 25 speaks "
            "STARTTLS, set the extra disable_ssl true)"
        )
    return kind


@contextmanager
def _smtp_client(conn_id: str, connection: Any = None) -> Iterator[smtplib.SMTP]:
    """The client of Airflow's SMTP hook on the connection ``conn_id`` (``connection``
    when given: one read already), connected and logged in (TLS as :func:`tls_mode`
    says), closed when done."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class Hook(SmtpHook):  # type: ignore[misc]
        def get_connection(self, conn_id: str) -> Any:
            found = connection if connection is not None else super().get_connection(conn_id)
            refuse_login_in_clear(found)
            return found

        @property
        def use_ssl(self) -> bool:
            return tls_mode(self.conn)[0]

        @property
        def smtp_starttls(self) -> bool:
            return tls_mode(self.conn)[1]

    with Hook(smtp_conn_id=conn_id) as hook:
        # The hook's send_email_smtp builds its own message and drops the recipients the
        # server refused: its client is used instead.
        client = hook._smtp_client
        assert isinstance(client, smtplib.SMTP)
        yield client


def _send(client: smtplib.SMTP, message: EmailMessage, recipients: Sequence[str]) -> dict[str, int]:
    """Send ``message`` to ``recipients``; the ones the server refused, with its reply code."""
    try:
        refused = client.send_message(message, to_addrs=list(recipients))
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    except smtplib.SMTPNotSupportedError as exc:
        if "SMTPUTF8" not in str(exc):
            raise
        outside = [address for address in recipients if not address.isascii()]
        raise UnsendableError(
            "the SMTP server takes no address outside ASCII (it offers no SMTPUTF8): "
            + ", ".join(outside or [str(message["From"])])
        ) from None
    return {address: int(reply[0]) for address, reply in refused.items()}


def send_message(conn_id: str, message: EmailMessage, recipients: Sequence[str]) -> None:
    """Send ``message`` to ``recipients`` through the Airflow SMTP connection ``conn_id``
    (TLS as :func:`tls_mode` says); raise :class:`RecipientsRefusedError` when the server
    refuses any of them (all of them included), :class:`SmtpSettingError` for an extra
    that is no setting, :class:`UnsendableError` for an address outside ASCII that the
    server cannot take, and the SMTP or socket error when it fails otherwise."""
    with _smtp_client(conn_id) as client:
        codes = _send(client, message, recipients)
    if codes:
        raise RecipientsRefusedError(codes, [r for r in recipients if r not in codes])


def send_each(
    conn_id: str,
    messages: Sequence[tuple[str, EmailMessage]],
    delivered: Callable[[str], None],
    *,
    connection: Any = None,
) -> None:
    """Send each ``(recipient, message)`` over one connection (``connection``, when given,
    read already as ``conn_id``), a message per recipient (no reader sees who else gets
    it), calling ``delivered`` with each recipient the server took as it takes it. Errors
    as :func:`send_message`'s; the server refusing some recipients, or their messages,
    does not stop the others (:class:`RecipientsRefusedError` at the end; the server's
    ``SMTPDataError`` when it refused every message)."""
    refused: dict[str, int] = {}
    taken: list[str] = []
    # A message the server refuses after taking its recipient (a mailbox full, 552): the
    # others are still tried, and a retry does not meet it first and stop there again.
    data_refused: list[smtplib.SMTPDataError] = []
    with _smtp_client(conn_id, connection) as client:
        for recipient, message in messages:
            try:
                codes = _send(client, message, [recipient])
            except smtplib.SMTPDataError as exc:
                data_refused.append(exc)
                codes = {recipient: exc.smtp_code}
            if codes:
                refused.update(codes)
                continue
            taken.append(recipient)
            delivered(recipient)
    if data_refused and len(data_refused) == len(messages):
        raise data_refused[0]  # every message: the server's reason, as it gave it
    if refused:
        raise RecipientsRefusedError(refused, taken)
