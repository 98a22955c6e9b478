"""Credentials out of server text: what a platform sends back may quote the request.

A gateway or debugging server that answers an error with the request it received (its
``Authorization`` header, its ``key=`` or ``access_token=``) would otherwise carry the
credential into error messages, logs, XCom, the audit table and landed bodies. A
:class:`Redactor` replaces every occurrence of each secret it holds, written in any mix of
raw characters, percent-encoding (either hex case, ``+`` for a space) and JSON string
escapes, with ``REDACTED``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import httpx

REDACTED = "REDACTED"
# Below this length a "secret" cannot be told apart from data (a count, a word), as in
# Airflow's own masker (min_length_masked_secret): such values are not scrubbed.
MIN_SECRET_LENGTH = 5


def _char_pattern(char: str) -> bytes:
    """A regex (bytes) for one character of a secret in any of the forms it travels in."""
    utf8 = char.encode("utf-8")
    alternatives = [re.escape(utf8)]
    percent = "".join(f"%{byte:02X}" for byte in utf8)
    alternatives.append(
        "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in percent).encode()
    )
    if char == " ":
        alternatives.append(rb"\+")
    if char in '/"\\':
        alternatives.append(re.escape(f"\\{char}".encode()))
    if not char.isascii():
        for unit in char.encode("utf-16-be").hex().upper(), char.encode("utf-16-be").hex():
            escaped = "".join(f"\\\\u{unit[i : i + 4]}" for i in range(0, len(unit), 4))
            alternatives.append(escaped.encode())
    return b"(?:" + b"|".join(alternatives) + b")"


def secret_pattern(secret: str) -> bytes:
    """A regex (bytes) matching ``secret`` however its characters are encoded."""
    return b"".join(_char_pattern(char) for char in secret)


def travelling_forms(secret: str) -> list[str]:
    """The literal forms ``secret`` takes on the wire: raw, and percent-encoded as httpx,
    ``quote`` and ``quote_plus`` write it (for masks that match literal text only)."""
    sent = httpx.URL("http://host/", params={"value": secret}).query.decode()
    forms = {secret, sent.removeprefix("value="), quote(secret, safe=""), quote(secret)}
    forms.add(quote_plus(secret))
    return sorted(form for form in forms if len(form) >= MIN_SECRET_LENGTH)


class Redactor:
    """Replaces the secrets it holds, in any encoding, with ``REDACTED``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        self._bytes: re.Pattern[bytes] | None = None
        self._text: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def add(self, secret: str | None) -> None:
        """Hold ``secret`` too (``None``, empty and too short values are ignored)."""
        if not secret or len(secret) < MIN_SECRET_LENGTH or secret in self._secrets:
            return
        self._secrets.append(secret)
        # Longest first: a secret that contains another is replaced whole.
        ordered = sorted(self._secrets, key=len, reverse=True)
        pattern = b"|".join(secret_pattern(s) for s in ordered)
        self._bytes = re.compile(pattern)
        self._text = re.compile(pattern.decode("utf-8"))

    def text(self, value: str) -> str:
        if self._text is None:
            return value
        return self._text.sub(REDACTED, value)

    def bytes(self, value: bytes) -> bytes:
        if self._bytes is None:
            return value
        return self._bytes.sub(REDACTED.encode(), value)
