"""The survey file formats, one registry keyed by the name's suffix.

Each :class:`SurveyFormat` says how its files are read, whatever their shape: the header
(to choose the shape), the whole table as text (published aggregates), the declared columns
as Arrow batches (respondent microdata), and what is checked before any parser opens one
(a compressed file's real size). Everything that depends on a file's format asks
:func:`format_of`: the landing folder lists the registered suffixes, a report names the
format a file could not be read as, and sidecars are named after the file without its
suffix. A new format is a reader module beside these and its entry in :data:`FORMATS`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from social_leadership.surveys.common import (
    DeclaredColumns,
    HeaderSearch,
    TextTable,
    file_problem,
)
from social_leadership.surveys.formats import delimited, parquet, xlsx
from social_leadership.surveys.limits import IntakeLimits

SIDECAR_SUFFIX = ".survey.json"


def _nothing_to_check(path: Path, limits: IntakeLimits) -> None:
    """A plain file: its size, checked before, is what a parser reads."""


def _size_on_disk(path: Path, limit: int) -> tuple[int, str]:
    """A file read as it is: its size."""
    return path.stat().st_size, "is"


def _one_table(path: Path, search: HeaderSearch) -> list[str]:
    """A file of one table: no sheets to name."""
    return []


@dataclass(frozen=True)
class SurveyFormat:
    """How the files whose name ends in ``suffix`` (lowercase) are read.

    ``kind``: the format's name in a report (``cannot be read as <kind> (...)``).
    ``read_header`` and ``read_table``: the header cells, and the table as text, a header
    searched for as :class:`HeaderSearch` says. ``read_columns``: the declared columns of
    a respondent file (its sheet, where a format has sheets) as Arrow batches.
    ``check_contents``: raise SurveyValidationError for a file past the limits in a way its
    size does not show (decompressed or decoded size), before any parser reads it.
    ``one_pass``: respondent files may first try the one-pass load (a UTF-8 CSV file).
    ``tables``: the sheets that each hold a table whose header fits ``search`` (none for a
    format without sheets), read each when a file names no sheet.
    ``holds_data``: for a suffix that files other than data have too (``.txt``), whether a
    file of it is survey data, from its first bytes; any other file is left alone.
    ``size_read``: the bytes read of a file, counted no further than past a limit (a
    ``.csv.gz``'s as it expands), and how a report says them (``is``, ``expands to``).
    """

    suffix: str
    kind: str
    read_header: Callable[[Path, HeaderSearch], list[str]]
    read_table: Callable[[Path, HeaderSearch], TextTable]
    read_columns: Callable[[Path, list[str], str | None], DeclaredColumns]
    check_contents: Callable[[Path, IntakeLimits], None] = _nothing_to_check
    one_pass: bool = False
    tables: Callable[[Path, HeaderSearch], list[str]] = _one_table
    holds_data: Callable[[Path], bool] | None = None
    size_read: Callable[[Path, int], tuple[int, str]] = _size_on_disk


FORMATS: dict[str, SurveyFormat] = {
    entry.suffix: entry
    for entry in (
        SurveyFormat(
            ".csv",
            delimited.KIND,
            delimited.read_header,
            delimited.read_table,
            delimited.read_columns,
            check_contents=delimited.check_text,
            one_pass=True,
        ),
        SurveyFormat(
            ".csv.gz",
            delimited.GZIP_KIND,
            delimited.read_header,
            delimited.read_table,
            delimited.read_columns,
            check_contents=delimited.check_gzip,
            size_read=delimited.expanded_size,
        ),
        *(
            SurveyFormat(
                suffix,
                delimited.TAB_KIND,
                delimited.read_header,
                delimited.read_table,
                delimited.read_columns,
                check_contents=delimited.check_text,
                holds_data=delimited.is_tab_separated if suffix == ".txt" else None,
            )
            for suffix in (".tsv", ".tab", ".txt")
        ),
        SurveyFormat(
            ".xlsx",
            xlsx.KIND,
            xlsx.read_header,
            xlsx.read_table,
            xlsx.read_columns,
            check_contents=xlsx.check_archive,
            tables=xlsx.fitting_sheets,
        ),
        SurveyFormat(
            ".parquet",
            parquet.KIND,
            parquet.read_header,
            parquet.read_table,
            parquet.read_columns,
            check_contents=parquet.check_content,
        ),
    )
}


def _matching(name: str) -> SurveyFormat | None:
    # The longest suffix first: ``wave.csv.gz`` is gzip-compressed CSV, not plain CSV.
    lowered = name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if lowered.endswith(suffix):
            return FORMATS[suffix]
    return None


def is_survey_file(path: Path) -> bool:
    """Whether ``path`` is a survey data file: named as one (not hidden, not a sidecar, not
    the lock file an office program keeps beside a workbook it has open: ``~$wave.xlsx``),
    and for a suffix other files have too, a regular file whose first bytes are data or
    that has a sidecar beside it (which says it is a survey file)."""
    found = _matching(path.name)
    if found is None or not _may_be_data(path.name.lower()):
        return False
    if found.holds_data is None:
        return True
    try:
        regular = stat.S_ISREG(path.lstat().st_mode)
        return regular and (found.holds_data(path) or existing_sidecar(path) is not None)
    except OSError:
        return False


# Suffixes of data files the intake does not read but a user plausibly saves a survey
# table or export as: Excel's binary and macro workbooks, OpenDocument, SPSS and Stata
# files, zip archives and compressed CSV of another kind. Landed, such
# a file is quarantined saying which formats are read, not left in the folder unread and
# unreported. Anything else (a README.txt, notes, an OS's Thumbs.db, a download still in
# progress, ``.part``) is no arrival of the intake's and is left alone.
UNREAD_DATA_SUFFIXES = (
    ".xls",
    ".xlsm",
    ".xlsb",
    ".ods",
    ".numbers",
    ".sav",
    ".zsav",
    ".por",
    ".dta",
    ".rds",
    ".zip",
    ".gz",
    ".csv.bz2",
    ".csv.xz",
    ".csv.zst",
)


def _may_be_data(lowered: str) -> bool:
    """Not hidden, not a sidecar, not the lock file an office program keeps beside a
    workbook it has open (``~$wave.xlsx``)."""
    return not lowered.startswith((".", "~$")) and not lowered.endswith(SIDECAR_SUFFIX)


def is_unread_data_name(name: str) -> bool:
    """Whether a file of this name looks like survey data in a format the intake does not
    read (:data:`UNREAD_DATA_SUFFIXES`)."""
    lowered = name.lower()
    return (
        _may_be_data(lowered) and _matching(name) is None and lowered.endswith(UNREAD_DATA_SUFFIXES)
    )


def unread_format_reason(name: str) -> str:
    """Why a file of an unread format was quarantined, and what to send instead."""
    return (
        f"{name!r} is in a format the survey intake does not read; it reads "
        f"{', '.join(FORMATS)} (save the sheet as .xlsx or as CSV, and put it in the folder "
        "again)"
    )


def format_of(path: Path) -> SurveyFormat:
    """The format of a survey data file, by its name's suffix."""
    found = _matching(path.name)
    if found is None:
        raise ValueError(f"{path.name}: not a survey file ({', '.join(FORMATS)})")
    return found


def sidecar_path(path: Path) -> Path:
    """``wave.csv`` -> ``wave.survey.json`` (also for ``wave.csv.gz``)."""
    found = _matching(path.name)
    stem = path.name[: -len(found.suffix)] if found else path.name
    return path.with_name(stem + SIDECAR_SUFFIX)


def existing_sidecar(path: Path) -> Path | None:
    """The sidecar beside ``path``, if there is one (a symlink counts, even a dangling one).
    A data file's name can be too long for its sidecar's name to exist: then there is none."""
    candidate = sidecar_path(path)
    return candidate if os.path.lexists(candidate) else None


def _sidecar_text(raw: bytes) -> str:
    """A sidecar's text in the encodings editors save JSON in: UTF-8 (with or without a
    BOM), UTF-16 with its BOM (PowerShell 5's Out-File), else Windows-1252 (Notepad's
    "ANSI"); ValueError for bytes none of them reads."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def read_sidecar(path: Path) -> dict[str, Any]:
    """A sidecar's declaration, as JSON; raise SurveyValidationError when it is none."""
    try:
        data = json.loads(_sidecar_text(path.read_bytes()))
    except ValueError as exc:
        raise file_problem(path.name, f"not JSON: {exc}") from None
    except RecursionError:
        raise file_problem(path.name, "not JSON: nested too deeply to read") from None
    if not isinstance(data, dict):
        raise file_problem(path.name, "must be a JSON object")
    return data
