"""Credentials out of server text: what a platform sends back may quote the request.

A gateway or debugging server that answers an error with the request it received (its
``Authorization`` header, its ``key=`` or ``access_token=``) would otherwise carry the
credential into error messages, logs, XCom, the audit table and landed bodies. A
:class:`Redactor` replaces every occurrence of each secret it holds, written in any mix of
raw characters, percent-encoding (either hex case, encoded again by a proxy, ``+`` for a
space), JSON string escapes (``\\/``, ``\\uXXXX`` for any character, as Gson writes ``=``)
and HTML character references (``&#43;``, ``&#x2F;``, ``&amp;``), with ``REDACTED``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import AnyStr
from urllib.parse import quote, quote_plus

import httpx

REDACTED = "REDACTED"
# Below this length a "secret" cannot be told apart from data (a count, a word), as in
# Airflow's own masker (min_length_masked_secret): such values are not scrubbed.
MIN_SECRET_LENGTH = 5
# HTML's named references for the characters of tokens and of markup.
_NAMED_REFERENCES = {
    "&": ("amp",),
    "<": ("lt",),
    ">": ("gt",),
    '"': ("quot",),
    "'": ("apos",),
    "/": ("sol",),
    "+": ("plus",),
    "=": ("equals",),
}


def _any_case(hex_digits: str) -> bytes:
    """A regex (bytes) for hex digits written in either case."""
    return "".join(f"[{d.upper()}{d.lower()}]" if d.isalpha() else d for d in hex_digits).encode()


def _escape_starts(char: str) -> list[bytes]:
    """What each encoded (not raw) form of ``char`` begins with. A text holding none of
    these holds ``char`` only raw, so a secret can be in it only as it is."""
    starts = [b"%", b"\\u", b"&#"]
    if char == " ":
        starts.append(b"+")
    if char in '/"\\':
        starts.append(b"\\" + char.encode())
    starts.extend(f"&{name};".encode() for name in _NAMED_REFERENCES.get(char, ()))
    return starts


def _char_pattern(char: str) -> bytes:
    """A regex (bytes) for one character of a secret in any of the forms it travels in.

    Every form but the raw one begins with one of :func:`_escape_starts`.
    """
    utf8 = char.encode("utf-8")
    alternatives = [re.escape(utf8)]
    # "%25" is an encoded "%": a proxy that encodes the URL again writes "%252F" for "/".
    alternatives.append(b"".join(b"%(?:25)*" + _any_case(f"{byte:02X}") for byte in utf8))
    if char == " ":
        alternatives.append(rb"\+")
    if char in '/"\\':
        alternatives.append(re.escape(b"\\" + utf8))
    units = char.encode("utf-16-be").hex()
    alternatives.append(
        b"".join(rb"\\u" + _any_case(units[i : i + 4]) for i in range(0, len(units), 4))
    )
    code = ord(char)
    alternatives.append(f"&#0*{code};".encode())
    alternatives.append(b"&#[xX]0*" + _any_case(f"{code:X}") + b";")
    alternatives.extend(f"&{name};".encode() for name in _NAMED_REFERENCES.get(char, ()))
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
    """Replaces the secrets it holds, in any encoding, with ``REDACTED``.

    A text with no escape introducer (``%``, ``\\u``, ``&#``, ...) can hold a secret only
    raw; such texts (most reply bodies) are checked with a substring search instead of the
    regex, which costs a scan of every position.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        self._bytes: re.Pattern[bytes] | None = None
        self._text: re.Pattern[str] | None = None
        self._raw_bytes: tuple[bytes, ...] = ()
        self._starts_bytes: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()
        self._starts_text: tuple[tuple[str, tuple[str, ...]], ...] = ()
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
        self._raw_bytes = tuple(s.encode("utf-8") for s in ordered)
        by_first: dict[bytes, set[bytes]] = {}
        for start in {start for s in ordered for char in s for start in _escape_starts(char)}:
            by_first.setdefault(start[:1], set()).add(start)
        self._starts_bytes = tuple(
            (first, tuple(sorted(starts))) for first, starts in sorted(by_first.items())
        )
        self._starts_text = tuple(
            (first.decode(), tuple(start.decode() for start in starts))
            for first, starts in self._starts_bytes
        )

    def text(self, value: str) -> str:
        if self._text is None or not _may_hold(value, self._starts_text, self._secrets):
            return value
        return self._text.sub(REDACTED, value)

    def bytes(self, value: bytes) -> bytes:
        if self._bytes is None or not _may_hold(value, self._starts_bytes, self._raw_bytes):
            return value
        return self._bytes.sub(REDACTED.encode(), value)


def _may_hold(
    value: AnyStr, starts: Iterable[tuple[AnyStr, tuple[AnyStr, ...]]], raw: Iterable[AnyStr]
) -> bool:
    """Whether ``value`` may hold a secret: it has an escape introducer (``starts``, grouped
    by first character, which a fast single-character search rules out first) or a secret
    as it is. False means no form of any secret can be in it."""
    for first, whole in starts:
        if first in value and any(start in value for start in whole):
            return True
    return any(secret in value for secret in raw)
