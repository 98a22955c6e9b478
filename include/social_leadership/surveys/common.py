"""What every survey file shares, whatever its format and shape: issues, faults, hashing,
cells read as text, and quarantine.

Row numbers in issues are where a person finds the row: the line of a CSV file (the header
is line 1), the row of an XLSX sheet, the 1-based record of a Parquet file. How each format
is read is :mod:`.formats`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from social_leadership.intake import QuarantineFolder, RowIssue
from social_leadership.reference import FOOTNOTE_MARKS, normalize_country
from social_leadership.surveys.limits import limits_in_force
from social_leadership.warehouse import is_warehouse_fault

# A report lists at most this many problems; a million-row file could otherwise produce a
# report bigger than the file.
MAX_REPORTED_ISSUES = 1000
# Scopes meaning "all countries surveyed", compared casefolded: English, German, French,
# Spanish. A "Total" row of a table by country is that aggregate too.
GLOBAL_SCOPES = {
    "global",
    "world",
    "worldwide",
    "all countries",
    "total",
    "welt",
    "weltweit",
    "weltdurchschnitt",
    "gesamt",
    "insgesamt",
    "alle länder",
    "monde",
    "mondial",
    "ensemble",
    "tous pays",
    "mundo",
    "mundial",
    "todos los países",
}
# Cells that mark an answer (or any number) as missing, compared in lower case: R's and
# pandas' NA, Excel's #N/A (German Excel's #NV), SPSS's and Stata's system-missing dot, a
# dash (also the en and em dashes a word processor's autocorrect makes of one), German
# "keine Angabe" (``k.A.``), "nicht befragt" (``n. b.``), the official statistics' ``x``
# (no figure: the question was not asked there) and "weiß nicht", and their English,
# French and Spanish counterparts (don't know, no answer). Read as empty cells are.
MISSING_MARKS = frozenset(
    {"na", "n/a", "n.a.", "#n/a", "#nv", "#null!", "-", ".", "null", "nan", "k.a.", "k. a."}
    | {"keine angabe"}
    | {"\u2013", "\u2014", "\u2012", "n.b.", "n. b.", "x"}
    | {"weiß nicht", "weiss nicht", "keine antwort", "dont know", "no answer", "ne sait pas"}
    | {"ns/nc", "no sabe", "no contesta"}
    # Don't know with each apostrophe a keyboard or a word processor writes.
    | {f"don{apostrophe}t know" for apostrophe in "'\u2019\u2018\u00b4`"}
)
# What a global scope's label may add, in any order: the number of countries averaged
# (``Global 26``, ``Global (28)``, ``Global-27``, ``28-country global average``, ``Gesamt (28
# Länder)``), a word saying it is an average (``Global average``, ``Durchschnitt weltweit``,
# ``Moyenne mondiale``) and small words (``Average of all countries``). An ``Average`` row
# alone is the all-countries figure too. Any other word (``EU 27 average``, ``Global ex
# China``, ``Global informed public``) or a second number (``Global 18-34``, an age band)
# makes it no global scope.
# ``Ø`` (and the diameter sign typed for it) is German shorthand for an average (``Ø
# Global``); ``Schnitt`` short for ``Durchschnitt`` (``Globaler Schnitt``).
_AVERAGE_WORDS = frozenset(
    {"average", "avg", "mean", "durchschnitt", "mittelwert", "moyenne", "promedio", "media"}
    | {"schnitt", "gesamtschnitt", "\u00f8", "\u2300", "\u2205"}
)
# Each one-word label of GLOBAL_SCOPES, German adjective forms of them (``Globaler
# Durchschnitt``, ``Weltweiter Durchschnitt``) and ``Overall``.
_GLOBAL_WORDS = frozenset(label for label in GLOBAL_SCOPES if " " not in label) | frozenset(
    {"globaler", "globale", "globalen", "globales", "weltweiter", "weltweite", "weltweiten"}
    | {"mondiale", "overall"}
)
_COUNT_WORDS = frozenset(
    {"countries", "country", "markets", "market", "mkt", "mkts", "nations", "länder", "laender"}
    | {"märkte", "maerkte", "pays", "marchés", "países", "paises", "mercados"}
)
# "All": with a word counting countries, every country (``All countries``, ``alle Länder``).
_ALL_WORDS = frozenset({"all", "alle", "aller", "tous", "todos"})
_SMALL_WORDS = _ALL_WORDS | frozenset(
    {"of", "the", "across", "der", "die", "über", "des", "les", "los", "las", "del"}
)
# Small words that are also country codes (``Durchschnitt DE`` is Germany's average): small
# only beside a word counting countries (``Promedio de los países``).
_CODE_LIKE_SMALL_WORDS = frozenset({"de", "la", "el"})
# What separates a label's words: spaces, brackets, punctuation, the dash of ``28-country``
# and footnote marks (``Global 26*``, ``Global¹``).
_LABEL_SEPARATORS = re.compile(rf"[\s()\[\],.;:/\-\u2013{FOOTNOTE_MARKS}]+")
# Two numbers in a label: a range (an age band, ``18-34``) or more than a count of countries.
_TWO_NUMBERS = re.compile(r"\d\D+\d")
# The base a label may give (``Gesamt (n=32.000)``, ``Total (N = 32,000)``): the number of
# respondents, not part of the scope's name.
_BASE_IN_LABEL = re.compile(r"\bn\s*=\s*\d[\d.,' ]*")


def survey_country(text: str) -> str:
    """The ISO code of a country cell in a survey file (respondent or published figure);
    raises ``ValueError`` for a missing-value mark (:data:`MISSING_MARKS`): ``NA`` is how R
    and others write a missing value, though ISO gives it to Namibia, whose figures must be
    written ``NAM`` or ``Namibia`` instead."""
    if text.strip().casefold() in MISSING_MARKS:
        raise ValueError(
            f"{text.strip()!r} is a missing-value mark, not a country (for Namibia, write NAM "
            "or Namibia)"
        )
    return normalize_country(text)


def is_global_scope(text: str) -> bool:
    """Whether a scope cell means all countries surveyed (:data:`GLOBAL_SCOPES`), with or
    without a count of countries, an "average" word or small words, in any order:
    ``Global 26``, ``Global average``, ``Durchschnitt weltweit``, ``28-country global
    average``."""
    label = " ".join(text.casefold().split())
    if label in GLOBAL_SCOPES:
        return True
    label = _BASE_IN_LABEL.sub(" ", label)
    if _TWO_NUMBERS.search(label):
        return False
    words = [word for word in _LABEL_SEPARATORS.split(label) if word and not word.isdigit()]
    counted = any(word in _COUNT_WORDS for word in words)
    small = _SMALL_WORDS | (_CODE_LIKE_SMALL_WORDS if counted else frozenset())
    meaning = [word for word in words if word not in _COUNT_WORDS | small]
    if not meaning:
        return counted and any(word in _ALL_WORDS for word in words)
    return all(word in _GLOBAL_WORDS | _AVERAGE_WORDS for word in meaning)


def names_a_place(text: str) -> bool:
    """Whether a cell names a country (:func:`normalize_country`) or the global scope."""
    if is_global_scope(text):
        return True
    try:
        normalize_country(text)
    except ValueError:
        return False
    return True


@dataclass
class SurveyFileOutcome:
    file: str
    status: str  # loaded | unchanged | quarantined
    shape: str | None = None  # published | microdata
    rows_loaded: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    report_path: str | None = None
    # What of the file's earlier version (the same name) it removed and does not hold
    # again: "2 figure(s) of acme wave 2021".
    removed: list[str] = field(default_factory=list)
    # What of other files it replaced: "500 respondent(s) of acme wave 2025 FR from
    # acme_fr.csv (this file brings 1)".
    replaced: list[str] = field(default_factory=list)


class SurveyValidationError(ValueError):
    """A survey file failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: list[RowIssue]):
        self.issues = issues
        shown = "; ".join(str(issue) for issue in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(f"{len(issues)} problem(s): {shown}{more}")


def file_problem(file: str, reason: str, column: str = "*") -> SurveyValidationError:
    """The error for a problem of the file as a whole (row 0)."""
    return SurveyValidationError([RowIssue(file, 0, column, reason)])


def cap_issues(issues: list[RowIssue], file: str) -> list[RowIssue]:
    if len(issues) <= MAX_REPORTED_ISSUES:
        return issues
    return [
        *issues[:MAX_REPORTED_ISSUES],
        RowIssue(file, 0, "*", f"more problems not listed (first {MAX_REPORTED_ISSUES} shown)"),
    ]


def cannot_read(kind: str, exc: BaseException) -> str:
    """``cannot be read as XLSX (BadZipFile: File is not a zip file)``: the first line of
    the message, capped, so a report stays short."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > 300:
        message = message[:297] + "..."
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"cannot be read as {kind} ({detail})"


def unreadable(path: Path, kind: str, exc: BaseException) -> BaseException:
    """What to raise for a failed read: the file's fault as a report, the machine's (memory,
    a failing disk) as it is."""
    if is_warehouse_fault(exc):
        return exc
    return file_problem(path.name, cannot_read(kind, exc))


def text_name(path: Path) -> str:
    """The file's name as storable text: bytes of another system's encoding (a Latin-1 name
    copied from a Windows share) become ``\\xNN`` instead of failing the insert, as the logs
    show them. Lossless: two names that differ in such a byte stay two names (as U+FFFD
    they were one, and the second file replaced the first's figures as its earlier
    version)."""
    return os.fsencode(path.name).decode("utf-8", "backslashreplace")


def content_sha256(path: Path, sidecar: Path | None) -> str:
    """SHA-256 of the data file, and of its sidecar when there is one (a new declaration is
    a new file: the same answers with other agree boxes give other shares)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if sidecar is not None and sidecar.exists():
        digest.update(b"\x00sidecar\x00")
        digest.update(sidecar.read_bytes())
    return digest.hexdigest()


# --- cells and tables read as text ---------------------------------------------------------


def column_name(header: list[str], index: int) -> str:
    return header[index] if index < len(header) and header[index] else f"column {index + 1}"


def long_cell_issues(file: str, row: int, cells: list[str], header: list[str]) -> list[RowIssue]:
    """Each cell of the row longer than the cell limit in force, named by its header cell
    (or its position, before a header is known)."""
    limits = limits_in_force()
    if max(map(len, cells), default=0) <= limits.max_cell_chars:
        return []
    return [
        RowIssue(file, row, column_name(header, index), limits.cell_too_long(len(cell)))
        for index, cell in enumerate(cells)
        if len(cell) > limits.max_cell_chars
    ]


# What an Excel number format shows rather than computes: quoted text (``0" %"``), an
# escaped character (``0\%``), a bracketed colour, condition or locale (``[Red]``, ``[$-407]``).
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')


def is_percent_format(number_format: str) -> bool:
    r"""Whether an Excel number format multiplies by 100 (a ``%`` outside quoted or escaped
    text): ``0%`` and ``0.0%`` do; ``0" %"`` and ``0\%`` only show a percent sign."""
    return "%" in _FORMAT_LITERALS.sub("", number_format)


def cell_text(value: Any, number_format: str | None = None, *, percent_sign: bool = False) -> str:
    """A cell's value as text; a number in a percent format as it shows (``76``, with
    ``percent_sign`` ``76 %``), never as the fraction it stores."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        percent = bool(number_format and is_percent_format(number_format))
        if percent:
            # An Excel percent cell shows 76 % but stores 0.76.
            number = round(number * 100, 10)
        text = str(int(number)) if number.is_integer() else repr(number)
        return f"{text} %" if percent and percent_sign else text
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        # Text some Parquet writers store without marking it as text; str() would give "b'..'".
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


def shown_cells(cells: list[str], limit: int = 30) -> str:
    """Header cells as a report shows them: quoted, empty ones left out, each and their
    number capped so a stray data row cannot flood the report."""
    filled = [cell if len(cell) <= 60 else cell[:57] + "..." for cell in cells if cell]
    more = f" (and {len(filled) - limit} more)" if len(filled) > limit else ""
    return ", ".join(repr(cell) for cell in filled[:limit]) + more


def lone_cell(cells: list[str]) -> str | None:
    """The text of a table row's only filled cell, or None when it has several (or none).
    A row of one filled cell holds no figure, which needs a question and a value at least:
    beside or below a published table it is a note."""
    filled = [cell for cell in cells if cell]
    return filled[0] if len(filled) == 1 else None


def _normalised(name: str) -> str:
    return name.strip().casefold()


def find_columns(header: list[str], wanted: list[str]) -> dict[str, str]:
    """Map each wanted column name to the header's own spelling (case and spaces ignored)."""
    by_key = {_normalised(cell): cell for cell in header if cell}
    return {name: by_key[_normalised(name)] for name in wanted if _normalised(name) in by_key}


MISSING_COLUMN_REASON = "declared column missing"


def declared_positions(
    file_name: str, header: list[str], wanted: list[str], row: int = 1
) -> dict[str, int]:
    """Each declared column's position in the header (case and surrounding spaces ignored);
    raise naming every missing column, and every one the header holds twice, at the
    header's ``row``."""
    keys = [_normalised(cell) for cell in header]
    positions: dict[str, int] = {}
    issues: list[RowIssue] = []
    for name in wanted:
        found = [i for i, key in enumerate(keys) if key == _normalised(name)]
        if not found:
            issues.append(RowIssue(file_name, row, name, MISSING_COLUMN_REASON))
        elif len(found) > 1:
            issues.append(
                RowIssue(file_name, row, name, f"declared column appears {len(found)} times")
            )
        else:
            positions[name] = found[0]
    if issues:
        raise SurveyValidationError(issues)
    return positions


# How far down a survey table its header is looked for, below title lines: the lines of a
# CSV that are not blank, the rows of a sheet.
HEADER_SEARCH_DEPTH = 50


@dataclass(frozen=True)
class HeaderSearch:
    """What a header row is found by where it may sit below title rows (an XLSX sheet): the
    first row holding every ``required`` column, or the first row ``is_header`` accepts
    (``required`` then only names what is looked for). ``sheet``: the sheet to read.
    ``fill_merged``: an XLSX cell merged over several below the header gives them its value
    (a table laid out for reading: ``Edelman`` once for the rows of its figures).
    ``fits``: among the rows ``is_header`` accepts in the search window, the first that
    ``fits`` wins over an earlier one (a title row naming two columns, ``Quelle:`` |
    ``Edelman`` | ``Jahr:`` | ``2019``, above the real header). ``fits_or_unread``: a
    header that does not fit is all the table read (a CSV or Parquet file's rows are left
    unread): its reader reports what the header lacks, and a file of another kind is not
    read whole to say so."""

    required: list[str]
    sheet: str | None = None
    is_header: Callable[[list[str]], bool] | None = None
    fill_merged: bool = False
    fits: Callable[[list[str]], bool] | None = None
    fits_or_unread: bool = False

    def accepts(self, cells: list[str]) -> bool:
        """Whether a row may be the header: ``is_header``'s answer, else whether it holds
        every ``required`` column."""
        if self.is_header is not None:
            return self.is_header(cells)
        return len(find_columns(cells, self.required)) == len(self.required)

    def accepts_and_fits(self, cells: list[str]) -> bool:
        return self.accepts(cells) and (self.fits is None or self.fits(cells))

    def leaves_unread(self, header: list[str]) -> bool:
        """Whether the rows below ``header`` are not read (``fits_or_unread``)."""
        return self.fits_or_unread and self.fits is not None and not self.fits(header)


@dataclass
class TextTable:
    """A small table read as text: header cells and (row number, cells) pairs.

    ``header_row`` is where the header is: 1 for CSV (the header is record 1), the sheet row
    of an XLSX header below title rows, 0 for Parquet (its column names are not a row).
    ``spans``: the rows that go on over more lines than one (a CSV row with a line break in
    a quoted cell), by their number, with the lines they take.
    """

    header: list[str]
    rows: list[tuple[int, list[str]]]
    header_row: int = 1
    spans: dict[int, int] = field(default_factory=dict)

    def next_row_after(self, row: int) -> int:
        """The number the row after ``row`` has when no empty row comes between."""
        return row + self.spans.get(row, 1)

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        for number, cells in self.rows:
            padded = cells + [""] * (len(self.header) - len(cells))
            yield number, {name: padded[i] for i, name in enumerate(self.header) if name}


# The column each batch of :class:`DeclaredColumns` numbers its rows in.
ROW_COLUMN = "source_row"


@dataclass(frozen=True)
class DeclaredColumns:
    """The declared columns of a file as Arrow batches, read once, for DuckDB to scan.

    ``columns``: each declared column's name in the batches (``c<position>``: header cells
    may repeat, be empty or carry spaces, positions cannot); the batches also number their
    rows in :data:`ROW_COLUMN`. ``finish``, called once the batches are read, raises what
    the reader met on the way (rows it could not read). ``as_lines`` renumbers issues of
    rows so numbered by the line a person finds each row on (a CSV's rows are numbered as
    records: a blank line or a line break in a quoted cell puts a row further down).
    """

    batches: pa.RecordBatchReader
    columns: dict[str, str]
    finish: Callable[[], None] = lambda: None
    as_lines: Callable[[list[RowIssue]], list[RowIssue]] = lambda issues: issues
    # A text file's delimiter (None: a format whose numbers are typed, or no text file).
    delimiter: str | None = None


def position_names(positions: dict[str, int]) -> dict[str, str]:
    """Declared column -> ``c<position>``, the name readers give it in their batches."""
    return {name: f"c{position}" for name, position in positions.items()}


def numbered_batches(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    first_row: int,
    failures: list[BaseException],
    *,
    failing: tuple[type[BaseException], ...],
) -> pa.RecordBatchReader:
    """``batches`` with their row numbers appended (``schema`` is theirs plus
    :data:`ROW_COLUMN`); a ``failing`` exception met while reading ends the batches and is
    kept in ``failures`` for the reader's ``finish``."""

    def numbered() -> Iterator[pa.RecordBatch]:
        next_row = first_row
        try:
            for batch in batches:
                rows = pa.array(range(next_row, next_row + batch.num_rows), type=pa.int64())
                next_row += batch.num_rows
                yield pa.RecordBatch.from_arrays([*batch.columns, rows], schema=schema)
        except failing as exc:
            failures.append(exc)

    return pa.RecordBatchReader.from_batches(schema, numbered())


# --- quarantine ----------------------------------------------------------------------------


def quarantine(
    path: Path, quarantine_dir: Path, issues: list[RowIssue], sidecar: Path | None = None
) -> Path:
    """Move a rejected file (and its sidecar) into ``<quarantine>/surveys/<time>-<file>/``
    beside a JSON report; return the report's path."""
    folder = QuarantineFolder(quarantine_dir, "surveys", path.name)
    with_sidecar = sidecar is not None and os.path.lexists(sidecar)
    report = folder.write_report(
        {
            "file": path.name,
            "sidecar": sidecar.name if sidecar is not None and with_sidecar else None,
            "quarantined_at": folder.stamp,
            "issues": [asdict(issue) for issue in issues],
        }
    )
    folder.keep(path)
    if sidecar is not None and with_sidecar:
        folder.keep(sidecar)
    return report
