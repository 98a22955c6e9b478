"""Keyed pseudonyms for survey respondents: SipHash-2-4 under a per-survey key.

The key comes from ``SLW_PSEUDONYM_KEY`` (at least 16 characters) or, when that is unset,
from a random key generated once into ``SLW_PSEUDONYM_KEY_FILE`` with mode 0600. Keep the
key: another key gives other pseudonyms, so the same respondent would no longer match
across loads. The key is never logged, printed or stored in the warehouse.

How a pseudonym is made:

1. The survey's key is ``HMAC-SHA256(key, "slw respondent pseudonym" 0x1f source_id)``,
   first 16 bytes: one id in two surveys gets two unrelated pseudonyms.
2. The pseudonym is SipHash-2-4 (Aumasson and Bernstein's keyed pseudorandom function,
   128-bit key) of the UTF-8 bytes of the respondent id trimmed of Unicode whitespace,
   followed by the fixed bijective bit mix of ``pandas.util.hash_array``, which computes
   it in C for a whole column at once. It is stored as an unsigned 64-bit integer.

Why SipHash and not HMAC-SHA256 per row: both are keyed PRFs, so without the key a
pseudonym neither reveals nor confirms an id, but on a 2-core machine HMAC-SHA256 in DuckDB
added about 0.8 s per million ids (more than DuckDB takes to read the whole file) and
SipHash over pyarrow blocks adds about 0.07 s (``make bench NAME=survey_load``).

64 bits are ample for uniqueness: the chance that two of a million respondents of one wave
share a pseudonym is about 3 in 100 million, and such a clash is never silent (the file is
reported as repeating a respondent and quarantined).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from social_leadership.settings import MIN_PSEUDONYM_KEY_CHARS as MIN_KEY_CHARS
from social_leadership.settings import PSEUDONYM_KEY_ENV as KEY_ENV
from social_leadership.settings import Settings, load_settings

FUNCTION_NAME = "slw_respondent_pseudonym"
_DERIVATION_LABEL = b"slw respondent pseudonym\x1f"


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


# What a caller may hand the intake as the key: the key, a function that reads it, or None
# (the settings' key, read when a file first needs it).
KeySource = bytes | Callable[[], bytes] | None


class PseudonymKey:
    """The pseudonym key as the survey intake uses it: resolved here and nowhere else.

    Read at most once, and only when a file first needs it (a run without microdata never
    touches the key). A failure to read it is the installation's, never a file's: the intake
    asks :meth:`failed_with` and raises such an error instead of quarantining the file.
    """

    def __init__(self, source: KeySource = None):
        self._source = source
        self._key: bytes | None = None
        self._failure: BaseException | None = None

    @classmethod
    def of(cls, source: KeySource | PseudonymKey) -> PseudonymKey:
        return source if isinstance(source, PseudonymKey) else cls(source)

    def __call__(self) -> bytes:
        if self._key is None:
            try:
                if isinstance(self._source, bytes):
                    self._key = self._source
                elif callable(self._source):
                    self._key = self._source()
                else:
                    self._key = load_pseudonym_key(load_settings())
            except Exception as exc:
                self._failure = exc
                raise
        return self._key

    def failed_with(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this key's failure to be read."""
        return exc is self._failure


def survey_key(key: bytes, source_id: str) -> bytes:
    """The 16-byte SipHash key of one survey, derived from the installation's key."""
    return hmac.new(key, _DERIVATION_LABEL + source_id.encode("utf-8"), hashlib.sha256).digest()[
        :16
    ]


def pseudonymise_array(survey_key_bytes: bytes, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Pseudonyms of a column of respondent ids, each trimmed of Unicode whitespace first;
    an id that is null or empty once trimmed gives a null (a row the checks reject)."""
    import pyarrow.compute as pc

    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    trimmed = pc.utf8_trim_whitespace(ids.cast(pa.string()))
    missing = pc.fill_null(pc.equal(trimmed, ""), True).to_numpy(zero_copy_only=False)
    values = trimmed.cast(pa.binary()).to_numpy(zero_copy_only=False)
    if missing.any():
        values = np.where(missing, b"", values)
    # latin-1 maps the 16 key bytes one to one onto the str pandas wants; the ids are
    # bytes already, so the encoding does not touch them.
    hashes = pd.util.hash_array(
        values, encoding="latin-1", hash_key=survey_key_bytes.decode("latin-1"), categorize=False
    )
    return pa.array(hashes, type=pa.uint64(), mask=missing)


@contextlib.contextmanager
def registered(con: duckdb.DuckDBPyConnection, key: bytes, source_id: str) -> Iterator[str]:
    """Register ``slw_respondent_pseudonym(varchar) -> ubigint`` for one survey on ``con``
    (a vectorised function: DuckDB hands it whole column chunks); yield its name."""
    derived = survey_key(key, source_id)
    con.create_function(
        FUNCTION_NAME,
        lambda ids: pseudonymise_array(derived, ids),
        [duckdb.sqltypes.VARCHAR],
        duckdb.sqltypes.UBIGINT,
        type="arrow",
        null_handling="special",
    )
    try:
        yield FUNCTION_NAME
    finally:
        con.remove_function(FUNCTION_NAME)
