"""Mail as clients and servers expect it (social_leadership.mail): a real SMTP server on
loopback (aiosmtpd), sent through Airflow's SMTP hook."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from slw_testing import Mailbox, loopback_smtp

from social_leadership.mail import (
    Attachment,
    InlineImage,
    RecipientsRefusedError,
    build_message,
    send_message,
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
