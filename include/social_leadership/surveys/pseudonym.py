"""Keyed pseudonyms for survey respondents: HMAC-SHA256, computed inside DuckDB.

The key comes from ``SLW_PSEUDONYM_KEY`` (at least 16 characters) or, when that is unset,
from a random key generated once into ``SLW_PSEUDONYM_KEY_FILE`` with mode 0600. Keep the
key: another key gives other pseudonyms, so the same respondent would no longer match
across loads. The key is never logged, printed or stored in the warehouse.

The message is ``source_id``, a unit separator (0x1f) and the respondent id, so one id in
two surveys gets two unrelated pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from social_leadership.settings import ENV_PREFIX, Settings

KEY_ENV = ENV_PREFIX + "PSEUDONYM_KEY"
MIN_KEY_CHARS = 16
_BLOCK = 64  # SHA-256 block size in bytes


class PseudonymKeyError(RuntimeError):
    """The pseudonym key is missing, too short or readable by others (never shows the key)."""


def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PseudonymKeyError(
            f"pseudonym key file {path} is readable by others (mode {mode:o}); chmod 600 it"
        )
    try:
        return bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise PseudonymKeyError(f"pseudonym key file {path} does not hold a hex key") from None


def load_pseudonym_key(settings: Settings) -> bytes:
    """The HMAC key: ``SLW_PSEUDONYM_KEY`` if set, else the per-installation key file."""
    configured = os.environ.get(KEY_ENV, "")
    if configured:
        if len(configured) < MIN_KEY_CHARS:
            raise PseudonymKeyError(f"{KEY_ENV} must be at least {MIN_KEY_CHARS} characters")
        return configured.encode("utf-8")
    return _key_from_file(settings.pseudonym_key_file)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of RFC 2104, so DuckDB can compute the HMAC with two
    ``sha256`` calls per row instead of a Python loop."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonym_sql(source_id_param: str, id_expression: str) -> str:
    """SQL for the hex HMAC of ``id_expression``; binds ``$inner_pad``/``$outer_pad``."""
    message = f"encode({source_id_param} || chr(31) || {id_expression})"
    return f"sha256($outer_pad || unhex(sha256($inner_pad || {message})))"


def pseudonymise(key: bytes, source_id: str, respondent_id: str) -> str:
    """The same pseudonym in Python (for tests and one-off lookups)."""
    message = f"{source_id}\x1f{respondent_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
