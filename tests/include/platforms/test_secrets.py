"""A server that echoes the request (its Authorization header, its ``key=`` or
``access_token=``) never gets a credential into an error, a retry message or a landed body."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from social_leadership.platform_metrics import extract_platform
from social_leadership.platforms import build_connector
from social_leadership.platforms.base import Connector, PlatformError
from social_leadership.platforms.redaction import Redactor
from social_leadership.roster import Account, Executive, Roster
from social_leadership.sandbox.server import SANDBOX_IG_USER_ID, SandboxServer

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
# Characters that travel percent-encoded in a URL, as in real base64 tokens.
SECRET = "Sentinel/t0k+en=9fQx"
TOKEN_PLATFORMS = ("x", "mastodon", "youtube", "facebook", "instagram", "linkedin", "threads")
HANDLES = {
    "x": "acct_0001",
    "mastodon": "acct0001@mastodon.example",
    "youtube": "@acct0001",
    "facebook": "acct.page0001",
    "instagram": "acct.ig0001",
    "linkedin": "urn:li:organization:1001",
    "threads": "acct.th0001",
}


def secret_forms(secret: str = SECRET) -> set[str]:
    """Every way the secret can be written in a URL, a header or a JSON string."""
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    lower = {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in encoded}
    return {secret, secret.replace("/", "\\/"), *encoded, *lower}


def leaked(text: str | bytes) -> set[str]:
    """The forms of the secret in ``text``, and any ten characters of one (a message cut
    short in the middle of the secret leaks its start)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    parts = {form[start : start + 10] for form in secret_forms() for start in range(len(form) - 9)}
    return {part for part in parts if part in text}


def roster() -> Roster:
    executives = [Executive("e1", "Exec", "CEO", "Co", "DE", "Energy", True)]
    accounts = [Account("e1", platform, handle) for platform, handle in HANDLES.items()]
    return Roster(executives=executives, accounts=accounts)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(roster(), token=SECRET, youtube_key=SECRET, clock=lambda: NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: SandboxServer) -> Iterator[SandboxServer]:
    server.clear_faults()
    yield server
    server.clear_faults()


def make(platform: str, sandbox: SandboxServer, **options: object) -> Connector:
    options.setdefault("sleep", lambda _: None)
    options.setdefault("backoff_seconds", 0.0)
    login = SANDBOX_IG_USER_ID if platform == "instagram" else None
    return build_connector(platform, sandbox.base_url, SECRET, login, **options)  # type: ignore[arg-type]


def sent_with_the_secret(sandbox: SandboxServer) -> bool:
    """Whether the last request carried the secret (so an echo of it holds it)."""
    (_, query), (_, authorization) = sandbox.request_log[-1], sandbox.authorization_log[-1]
    return bool(leaked(query)) or bool(authorization and SECRET in authorization)


@pytest.mark.parametrize(
    ("platform", "status"),
    # LinkedIn's 404 fails the platform too when the body is not LinkedIn's error object.
    [*((platform, 400) for platform in TOKEN_PLATFORMS), ("linkedin", 404)],
)
def test_an_echoed_request_in_a_4xx_body_never_reaches_the_error(
    platform: str, status: int, sandbox: SandboxServer
) -> None:
    sandbox.set_fault("echo", platform=platform, status=status)

    with pytest.raises(PlatformError) as raised:
        make(platform, sandbox).extract([HANDLES[platform]])

    assert sent_with_the_secret(sandbox)
    assert "request rejected" in str(raised.value)  # the server's own words are kept
    assert leaked(str(raised.value)) == set()
    assert leaked(repr(raised.value)) == set()


@pytest.mark.parametrize("platform", ["mastodon"])
def test_an_echoed_request_in_a_landed_body_is_scrubbed_before_landing(
    platform: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Mastodon lands a lookup's 404 with a JSON body as a per-account answer: the body is
    # kept. (LinkedIn lands only its own error object; a gateway's echo fails it, above.)
    sandbox.set_fault("echo", platform=platform, status=404)

    outcome = extract_platform(
        platform,
        [HANDLES[platform]],
        sandbox.base_url,
        SECRET,
        tmp_path / "landing",
        "run-1",
        NOW,
        now=NOW,
        sleep=lambda _: None,
    )

    assert outcome.status == "landed"
    assert sent_with_the_secret(sandbox)
    files = list((tmp_path / "landing").rglob("*"))
    bodies = [gzip.decompress(p.read_bytes()) for p in files if p.name.endswith(".json.gz")]
    assert bodies
    assert all(b"request rejected" in body for body in bodies)
    texts = bodies + [p.read_bytes() for p in files if p.is_file()]
    assert [form for text in texts for form in leaked(text)] == []


@pytest.mark.parametrize("platform", sorted(set(TOKEN_PLATFORMS) - {"youtube"}))
def test_a_token_http_headers_refuse_fails_the_platform_at_once_naming_no_secret(
    platform: str, sandbox: SandboxServer
) -> None:
    # A line break in a header's token (YouTube's key travels in the URL, percent-encoded):
    # no retry sends such a request, and the error quotes the header.
    sleeps: list[float] = []
    requests_before = len(sandbox.request_log)
    login = SANDBOX_IG_USER_ID if platform == "instagram" else None
    connector = build_connector(
        platform, sandbox.base_url, SECRET + "\n", login, sleep=sleeps.append, backoff_seconds=0.0
    )

    with pytest.raises(PlatformError) as raised:
        connector.extract([HANDLES[platform]])

    message = str(raised.value)
    assert message.startswith(f"{platform}: LocalProtocolError: the request to ")
    assert "check the credential in the platform's connection" in message
    assert leaked(message) == set()
    assert (sleeps, len(sandbox.request_log)) == ([], requests_before)


@pytest.mark.parametrize("platform", ["x", "youtube", "facebook"])
def test_retry_and_give_up_messages_hold_no_secret(platform: str, sandbox: SandboxServer) -> None:
    # A 200 whose body is not JSON is retried; the echo of the request follows it.
    sandbox.set_fault("malformed_json", platform=platform)
    result = make(platform, sandbox, max_attempts=2).extract([HANDLES[platform]])
    sandbox.clear_faults()
    sandbox.add_fault("500", platform=platform)
    sandbox.add_fault("echo", platform=platform, status=400)
    with pytest.raises(PlatformError) as raised:
        make(platform, sandbox).extract([HANDLES[platform]])

    assert result.gave_up
    assert leaked(result.message or "") == set()
    assert leaked(str(raised.value)) == set()


def test_the_redactor_catches_every_encoding_and_leaves_other_text_alone() -> None:
    redactor = Redactor([SECRET, None, ""])
    json_escaped = SECRET.replace("/", "\\/")
    lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote_plus(SECRET))
    text = (
        f"Bearer {SECRET} key={quote(SECRET, safe='')} k2={lower_hex} "
        f'json="{json_escaped}" mixed=Sentinel/t0k%2Ben%3d9fQx '
        "followers=123 t0k+en"
    )

    scrubbed = redactor.text(text)

    assert leaked(scrubbed) == set()
    assert "Sentinel/t0k+" not in scrubbed
    assert "%2BEN%3D" not in scrubbed.upper()
    assert scrubbed.count("REDACTED") == 5
    assert scrubbed.endswith("followers=123 t0k+en")  # a part alone is not the secret
    assert redactor.bytes(text.encode()) == scrubbed.encode()


def test_a_secret_shorter_than_five_characters_is_not_scrubbed_from_data() -> None:
    # Like Airflow's own masker: below five characters a "secret" cannot be told from data.
    assert Redactor(["1234"]).text('{"followers": 1234}') == '{"followers": 1234}'


def _json_unicode_escape(text: str, chars: str, *, upper: bool = False) -> str:
    """``text`` with ``chars`` written as JSON ``\\uXXXX`` escapes."""
    return "".join(
        (f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}") if c in chars else c for c in text
    )


@pytest.mark.parametrize(
    "encoded",
    [
        # Gson's default (HTML-safe) escaping writes "=" (and ' < > &) as \u003d.
        _json_unicode_escape(SECRET, "="),
        _json_unicode_escape(SECRET, "=+/", upper=True),
        _json_unicode_escape(SECRET, SECRET),
        # A proxy that percent-encodes the already encoded URL again, once or twice.
        quote(quote(SECRET, safe=""), safe=""),
        re.sub(
            "%[0-9A-F]{2}",
            lambda m: m.group(0).lower(),
            quote(quote(quote(SECRET, safe=""), safe=""), safe=""),
        ),
        # HTML error pages: Go's html/template writes "+" as &#43;, OWASP encoders &#x2f;.
        SECRET.replace("+", "&#43;").replace("=", "&#61;"),
        SECRET.replace("/", "&#x2f;").replace("+", "&#X2B;").replace("=", "&#x0003D;"),
        SECRET.replace("/", "&sol;").replace("+", "&plus;").replace("=", "&equals;"),
    ],
    ids=[
        "json-u-gson",
        "json-u-upper",
        "json-u-every-char",
        "percent-twice",
        "percent-thrice-lower",
        "html-decimal",
        "html-hex",
        "html-named",
    ],
)
def test_the_redactor_catches_the_escapes_servers_write(encoded: str) -> None:
    redactor = Redactor([SECRET])
    text = f'{{"echo": "Bearer {encoded}", "followers": 12}}'

    assert redactor.text(text) == '{"echo": "Bearer REDACTED", "followers": 12}'
    assert redactor.bytes(text.encode()) == redactor.text(text).encode()


def test_the_redactor_catches_an_escaped_non_ascii_secret() -> None:
    secret = "pässwörd-🔑-token"
    redactor = Redactor([secret])
    escaped = json.dumps(secret)  # \u00e4, and a surrogate pair for the key
    percent_twice = quote(quote(secret, safe=""), safe="")

    assert redactor.text(escaped) == '"REDACTED"'
    assert redactor.bytes(f"x={percent_twice}".encode()) == b"x=REDACTED"
    assert redactor.bytes(secret.encode()) == b"REDACTED"


def test_the_fast_path_gives_what_the_full_scan_gives() -> None:
    # Bodies without any escape introducer skip the regex; the result must not change.
    redactor = Redactor([SECRET, "AAAAAAAAAAAAAAAAAAAAAxyz/Tok"])
    bodies = [
        b"A" * 100_000,
        b'{"data": [' + b'{"id": "1", "name": "Ada"},' * 2000 + b"]}",
        f"plain {SECRET} twice {SECRET}".encode(),
        f"mixed {quote(SECRET)} and \\n newline".encode(),
        b"AAAAAAAAAAAAAAAAAAAAAAAAAxyz/Tok" * 3,
        b"AAAAAAAAAAAAAAAAAAAAAxyz&#47;Tok",
    ]
    for body in bodies:
        assert redactor.bytes(body) == redactor._bytes.sub(b"REDACTED", body)  # type: ignore[union-attr]
        text = body.decode()
        assert redactor.text(text) == redactor._text.sub("REDACTED", text)  # type: ignore[union-attr]
