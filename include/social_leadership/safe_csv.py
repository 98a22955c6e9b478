"""CSV and spreadsheet cells written for people, neutralised against formula injection.

A spreadsheet opening a CSV runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (``=HYPERLINK(...)`` sends a click to an attacker, DDE payloads start programs),
and a leading tab or carriage return hides such a cell from a quick look. Input files are
stored in the warehouse exactly as they came; only what the project writes for people to
open (quarantine ``rejected_rows.csv``, reports) goes through this module, which follows
OWASP's advice: such a cell gets a leading single quote, so a spreadsheet shows it as text.

A plain number (``-5``, ``+3.5``, ``1e-3``) starts with a sign but is no formula, and
stays as it is so that it still reads as a number.

Two forms of one rule: :func:`neutralise_cell` for Python writers (:func:`write_csv`), and
:func:`neutralised_sql` for files DuckDB writes itself with ``COPY``.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from social_leadership.sql import quote_literal

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISING_PREFIX = "'"
# Digits only (no \d: it would take other scripts' digits, which are no number to Excel).
_PLAIN_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_PLAIN_NUMBER_PATTERN = re.compile(_PLAIN_NUMBER)


def neutralise_cell(value: object) -> object:
    """``value`` as a cell safe to open in a spreadsheet; anything but text is unchanged."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_TRIGGERS)
        and not _PLAIN_NUMBER_PATTERN.fullmatch(value)
    ):
        return NEUTRALISING_PREFIX + value
    return value


def neutralised_sql(expression: str) -> str:
    """DuckDB SQL of :func:`neutralise_cell` applied to the text ``expression``."""
    triggers = ", ".join(f"chr({ord(trigger)})" for trigger in FORMULA_TRIGGERS)
    return (
        f"case when left({expression}, 1) in ({triggers}) "
        f"and not regexp_full_match({expression}, {quote_literal(_PLAIN_NUMBER)}) "
        f"then {quote_literal(NEUTRALISING_PREFIX)} || {expression} else {expression} end"
    )


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV for people (UTF-8, header first), every cell neutralised.

    The file appears whole or not at all: it is written beside ``path`` and renamed.
    """
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([neutralise_cell(name) for name in header])
            for row in rows:
                writer.writerow([neutralise_cell(cell) for cell in row])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path
