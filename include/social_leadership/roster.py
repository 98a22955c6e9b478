"""The executive roster: who is tracked, where they work, and their platform accounts.

Roster file format (CSV), one executive per row::

    executive_id,full_name,title,company,country,sector,is_synthetic,x,bluesky,mastodon,youtube,facebook,instagram,linkedin,threads,valid_from

- ``executive_id``: stable key, ``^[a-z0-9][a-z0-9_-]{1,63}$``. Unique in the file unless
  the rows declare a history (see ``valid_from``).
- ``valid_from`` (optional column): the date from which the row's title, company, country
  and sector hold: ``YYYY-MM-DD``, or ``DD.MM.YYYY`` (the German order, unambiguous with
  its four-digit year), either also with a midnight time as Excel adds it
  (``2021-02-03 00:00:00``). Dates with ``/`` (``02/03/2021``: which is the day?), two-digit
  years and Excel serial numbers (``44230``) are rejected, saying to write ``YYYY-MM-DD``.
  Several rows may share an ``executive_id`` when each has a distinct ``valid_from``;
  together they are the executive's declared history (the source of the SCD2
  ``dim_executive``). A row without ``valid_from`` must be the executive's only row.
  Accounts belong to the executive, not to a version: the accounts of all its rows are
  united (a handle may repeat across the executive's own rows), one per platform (a row
  naming another handle on a platform than an earlier row of the executive is rejected).
- ``full_name``, ``company``: required. ``title``: free text, may be empty.
- ``country``: any common form of the country, in English, German, French or Spanish among
  others ("DE", "DEU", "Germany", "Deutschland", "UK", "USA", "Vereinigte Staaten",
  "Estados Unidos", "UAE", ...); stored as ISO 3166-1 alpha-2
  (:func:`social_leadership.reference.normalize_country`).
- ``sector``: one of the 11 GICS sectors (:data:`social_leadership.reference.GICS_SECTORS`),
  case-insensitive.
- ``is_synthetic``: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``, and German Excel's
  ``WAHR``/``FALSCH`` and ``ja``/``nein``, in any case; empty means false).
  Demo rows are synthetic and every output that shows them says so.
- One column per registered platform (:data:`ACCOUNT_COLUMNS`), holding that executive's
  account handle on it, or empty for none. Platform columns missing from the header mean
  "no accounts on that platform"; the other columns are required. Each platform's
  connector states its handle rule (``handle_pattern``, checked by its
  ``normalize_handle``; README's platform table lists them): all but YouTube and
  LinkedIn drop a leading ``@``, Bluesky handles are stored lowercase. A link to the
  account's profile page (``https://x.com/JoeKaeser``, ``https://mastodon.social/@ann``)
  is stored as the handle it names (each connector's ``profile_links``); a link to the
  platform naming no profile is an error on its row saying which links are read.

  An account (platform and handle, compared case-insensitively) belongs to one
  executive: a repeat on a row of another executive is an error on that row.
  Import-only accounts are never fetched (their platform's API has no follower count for
  them; import it, see :mod:`social_leadership.follower_imports`): a LinkedIn member's vanity name
  (an organization is written ``urn:li:organization:<numeric id>`` and is fetched) and a
  Facebook profile, written ``profile:<name>`` (a plain name is a Page, fetched).

The file is often kept in Excel, and is read as Excel writes it:

- Encoding UTF-8 (with or without byte-order mark), UTF-16 (Excel's "Unicode text"), else
  Windows-1252 (German Excel's "CSV (Trennzeichen-getrennt)"), Mac Roman (Mac Excel's) or
  DOS Latin-1 (Excel's "CSV (MS-DOS)"), whichever reads as words; cells separated by ``,``,
  ``;`` or tab, whichever the header line holds most of
  (:func:`~social_leadership.intake.detect_encoding`,
  :func:`~social_leadership.intake.detect_delimiter`, shared with the survey intake).
- Header cells match in any case and spelling of their words (``Executive ID``), a
  platform's column also by its name and a word such as ``URL`` (``X (Twitter)``,
  ``LinkedIn URL``). A header cell that names no column is ignored with a warning naming
  the file and the cell; an empty one silently. A column named twice (``x`` and ``X``)
  makes the file unreadable. The header is the first of the first
  :data:`~social_leadership.intake.HEADER_SEARCH_LINES` lines that are not blank naming
  every required column (title and blank lines above it are skipped:
  :attr:`Roster.header_row`, :attr:`Roster.above_header`; Excel's ``sep=;`` first line
  gives the delimiter), :func:`~social_leadership.intake.find_header`.
- Rows whose cells are all empty (``,,,,`` or ``;;;;``, blank lines at the end) are
  skipped silently; line numbers in reports still count them.
- Every cell is cleaned (:func:`clean_cell`): composed Unicode, no invisible characters,
  whitespace runs one space.
- A workbook saved under a ``.csv`` name is refused, saying so.

Rows with errors are skipped and reported (file, line number, field as the header names it,
message: a :class:`~social_leadership.intake.RowIssue`); the valid rows still load, so one
typo does not stop the daily run. :func:`quarantine_rejected_rows` keeps them, as the file
had them, with their reasons in ``<quarantine>/roster/<time>-<file>/``
(``rejected_rows.csv``, cells neutralised for spreadsheets, and ``report.json``, which also
names the executives left out: those none of whose rows loaded). The raw tables hold the
file's valid rows only, so such an executive is missing from ``raw.roster_*`` until the
row is fixed.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from social_leadership.domain import PLATFORMS
from social_leadership.intake import (
    HEADER_SEARCH_LINES,
    UNCLOSED_QUOTE,
    ClosedQuoteReader,
    HeaderLineError,
    QuarantineFolder,
    RowIssue,
    detect_encoding,
    find_header,
    header_key,
    workbook_kind,
)

# Re-exported: callers that read roster handles ask it here.
from social_leadership.platforms.linkedin import is_linkedin_organization  # noqa: F401
from social_leadership.platforms.registry import connector_class, is_registered
from social_leadership.reference import normalize_country, normalize_sector
from social_leadership.settings import BUNDLED_DATA_DIR
from social_leadership.warehouse import ensure_schema, transaction

# The registered platforms, read from the registry on each use.
ACCOUNT_COLUMNS: Sequence[str] = PLATFORMS

REQUIRED_COLUMNS: tuple[str, ...] = (
    "executive_id",
    "full_name",
    "title",
    "company",
    "country",
    "sector",
    "is_synthetic",
)

OPTIONAL_COLUMNS: tuple[str, ...] = ("valid_from",)

# Other names of the roster's columns, as header keys (intake.header_key): the warehouse's
# own (company_name, country_code, as an export of raw.roster_executives has them), and
# those HR and market-data exports write (Job Title, GICS Sector). Refused as lacking the
# column, such a file was retried as if caught mid-write, then failed.
COLUMN_ALIASES: dict[str, str] = {
    "companyname": "company",
    "countrycode": "country",
    "jobtitle": "title",
    "gicssector": "sector",
}


def roster_columns() -> tuple[str, ...]:
    """The full roster header for the platforms registered now. Optional columns last,
    so a file written without them still lines up with this header."""
    return (*REQUIRED_COLUMNS, *ACCOUNT_COLUMNS, *OPTIONAL_COLUMNS)


# The header for the built-in platforms (what the bundled roster is written with).
ROSTER_COLUMNS: tuple[str, ...] = roster_columns()

EXECUTIVE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")

# German Excel writes booleans as WAHR / FALSCH; people write ja / nein.
_TRUE = frozenset({"true", "1", "yes", "y", "t", "wahr", "ja"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "falsch", "nein", ""})
# DD.MM.YYYY, the German order: a four-digit year last leaves no doubt which is the day.
_DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
# A date with the year first and '/' (2026/02/01, as Japanese and Chinese locales write
# it): year, month, day, whatever the separators; only day and month first are ambiguous.
_YEAR_FIRST_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
# A date cell Excel wrote with its (midnight) time.
_AT_MIDNIGHT = re.compile(r"(.+?)[ T]0?0:00(?::00(?:\.0+)?)?")
# A date cell Excel wrote as its serial number (days since 1899-12-30).
_EXCEL_SERIAL = re.compile(r"\d{1,6}(?:\.\d+)?")
QUARANTINE_AREA = "roster"
# What may follow a platform's name in its column's header: "LinkedIn URL", "X handle".
_PLATFORM_HEADER_WORDS = frozenset(
    {"handle", "handles", "url", "link", "profile", "account", "channel", "page", "username"}
)
# Platforms by another name people give them in a header.
_PLATFORM_HEADER_ALIASES = {"twitter": "x", "bsky": "bluesky"}
# Characters a cell pasted from the web carries unseen: zero-width space, word joiner,
# byte-order mark, soft hyphen, direction marks and embeddings. Dropped from every cell
# (the zero-width joiners, which shape some scripts' letters, stay).
_INVISIBLE = dict.fromkeys(
    [0x200B, 0x2060, 0xFEFF, 0x00AD, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


class RosterFileError(ValueError):
    """The roster file cannot be read at all (missing, or required header columns absent).

    ``may_pass_later``: whether the same path may read well in a moment, as a file caught
    while it is being written: empty, its header line cut short, a quoted cell left open.
    A missing file, a workbook or text in no known encoding stays so until somebody changes
    something, and retrying it only delays the failure.
    """

    def __init__(self, message: str, *, may_pass_later: bool = False) -> None:
        super().__init__(message)
        self.may_pass_later = may_pass_later


@dataclass(frozen=True)
class Executive:
    executive_id: str
    full_name: str
    title: str
    company_name: str
    country_code: str
    sector: str
    is_synthetic: bool
    # Start of this version; None when the roster declares no history for the executive.
    valid_from: date | None = None


@dataclass(frozen=True)
class Account:
    executive_id: str
    platform: str
    account_handle: str


@dataclass(frozen=True)
class RejectedRow:
    """A row of the file that was skipped: its line, its cells as the file had them, and
    what is wrong with it."""

    row: int
    executive_id: str
    cells: tuple[str, ...]
    issues: tuple[RowIssue, ...]


@dataclass
class Roster:
    executives: list[Executive] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    errors: list[RowIssue] = field(default_factory=list)
    # Header cells that name no roster column (row 1): ignored, but said.
    warnings: list[RowIssue] = field(default_factory=list)
    rejected_rows: list[RejectedRow] = field(default_factory=list)
    file: str = ""
    # The file's header cells as it wrote them (the rejected rows' columns), and its line;
    # the first line above it with something written, a title (ignored).
    header: tuple[str, ...] = ()
    header_row: int = 1
    above_header: str = ""
    # Rows read, the empty ones not counted.
    rows_read: int = 0
    # The platforms the file has a column for (empty or not).
    account_columns: tuple[str, ...] = ()

    def rejected_executive_ids(self) -> list[str]:
        """The ids of the executives of rejected rows: the file's versions and accounts of
        them are missing or incomplete (a country mistyped, a version's day mistyped, the
        row holding the accounts refused as a duplicate of a new version's)."""
        return sorted({rejected.executive_id for rejected in self.rejected_rows} - {""})

    def skipped_executive_ids(self) -> list[str]:
        """The ids of rejected rows whose executive has no row loaded: executives missing
        from ``raw.roster_*`` because of this file's errors."""
        loaded = {executive.executive_id for executive in self.executives}
        return [id_ for id_ in self.rejected_executive_ids() if id_ not in loaded]


def normalize_handle(platform: str, value: str) -> str:
    """The stored form of a handle on ``platform`` (its connector's rule); raises
    ``ValueError`` if invalid."""
    if not is_registered(platform):
        raise ValueError(f"unknown platform {platform!r}")
    return connector_class(platform).normalize_handle(value)


def _parse_bool(value: str) -> bool:
    text = value.strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value.strip()!r} is not true/false")


def _parse_valid_from(value: str) -> date | None:
    text = value.strip()
    if not text:
        return None
    midnight = _AT_MIDNIGHT.fullmatch(text)
    day_text = midnight.group(1) if midnight else text
    dotted = _DOTTED_DATE.fullmatch(day_text)
    year_first = _YEAR_FIRST_DATE.fullmatch(day_text)
    try:
        if dotted:
            day, month, year = (int(part) for part in dotted.groups())
            return date(year, month, day)
        if year_first:
            year, month, day = (int(part) for part in year_first.groups())
            return date(year, month, day)
        return date.fromisoformat(day_text)
    except ValueError:
        if dotted or year_first:
            raise ValueError(f"{text!r} is no calendar date (write YYYY-MM-DD)") from None
    if _EXCEL_SERIAL.fullmatch(text):
        raise ValueError(
            f"{text!r} is an Excel date serial number, not a date: write YYYY-MM-DD "
            "(format the column as text)"
        )
    ambiguous = (
        "; a date with '/' is ambiguous unless its year comes first"
        if "/" in text and not _YEAR_FIRST_DATE.match(text)
        else ""
    )
    raise ValueError(
        f"{text!r} is not a date the roster reads: write YYYY-MM-DD (DD.MM.YYYY is read "
        f"too{ambiguous})"
    )


def clean_cell(value: str) -> str:
    """A cell as meant: in Unicode's composed form (NFC: a decomposed ``ü`` is the same
    name), without invisible characters, every run of whitespace (a line break Excel's
    Alt+Enter put in, a no-break space) one space, trimmed."""
    text = unicodedata.normalize("NFC", value).translate(_INVISIBLE)
    return " ".join(text.split())


def _platform_of_header(cell: str) -> str | None:
    """The platform a header such as ``X (Twitter)``, ``LinkedIn URL`` or ``YouTube
    channel`` names, or None."""
    words = _joined_platform_words(re.findall(r"[0-9a-z]+", clean_cell(cell).casefold()))
    named = {_PLATFORM_HEADER_ALIASES.get(word, word) for word in words}
    platforms = named & set(ACCOUNT_COLUMNS)
    if len(platforms) != 1 or named - platforms - _PLATFORM_HEADER_WORDS:
        return None
    platform = platforms.pop()
    # A Facebook column is Pages; a column of people's profiles needs profile:<name>.
    return None if platform == "facebook" and "profile" in named else platform


def _joined_platform_words(words: list[str]) -> list[str]:
    """``words`` with two neighbours that together name a platform made one: ``Blue sky
    handle`` is a Bluesky column as ``Bluesky handle`` is (and ``You Tube``, ``Linked
    In``)."""
    names = set(ACCOUNT_COLUMNS) | set(_PLATFORM_HEADER_ALIASES)
    joined: list[str] = []
    for word in words:
        if joined and joined[-1] + word in names and joined[-1] not in names:
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def load_roster(path: Path) -> Roster:
    """Read and validate a roster file (format in the module docstring).

    Invalid rows are reported in ``Roster.errors``, kept in ``Roster.rejected_rows`` and
    skipped; header cells that name no column are reported in ``Roster.warnings``. An
    unreadable file (missing, or in no encoding :func:`detect_encoding` knows), a required
    header column missing or a column given twice raise :class:`RosterFileError`.
    """
    file_name = str(path)
    try:
        workbook = workbook_kind(path)
        if workbook:
            raise RosterFileError(
                f"{file_name}: is {workbook}, not CSV text: save the roster from the "
                "spreadsheet as CSV UTF-8"
            )
        encoding = detect_encoding(path)
        handle = path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise RosterFileError(f"{file_name}: cannot read roster file ({exc.strerror})") from exc
    with handle:
        try:
            found = find_header(handle, _names_required_columns)
            handle.seek(0)
            for _ in range(found.end):
                handle.readline()
            reader = ClosedQuoteReader(
                itertools.chain(found.line.splitlines(keepends=True), handle),
                delimiter=found.delimiter,
            )
            header = next(reader, [])
            roster = Roster(
                file=file_name,
                header=tuple(header),
                header_row=found.number,
                above_header=clean_cell(found.title),
            )
            columns = _header_columns(roster, header)
            roster.account_columns = tuple(p for p in ACCOUNT_COLUMNS if p in columns)
            filled = _read_rows(roster, reader, columns, _second_platform_cells(header, columns))
        except UnicodeDecodeError as exc:
            raise RosterFileError(
                f"{file_name}: cannot be read as {encoding} text ({exc.reason}); save it as"
                " CSV UTF-8"
            ) from exc
        except HeaderLineError as exc:
            raise RosterFileError(f"{file_name}: {exc}") from exc
        except csv.Error as exc:
            # The reader starts at the header: its line numbers count from there.
            line = reader.line_num + found.number - 1
            raise RosterFileError(f"{file_name}: line {line}: {exc}", may_pass_later=True) from exc
    if filled:
        # An empty column named as the platform beside the filled one its export named
        # otherwise (X beside X (Twitter)) took the platform's place: every account of it
        # was left out of the marts, the run green. Which one is meant is the user's call.
        index = min(filled)
        platform = str(_platform_of_header(header[index]))
        raise RosterFileError(
            f"{file_name}: roster header names platform {platform!r} twice, "
            f"{columns[platform][1]!r} and {header[index].strip()!r}, and "
            f"{header[index].strip()!r} holds handles where {columns[platform][1]!r} is empty: "
            f"the loader reads {columns[platform][1]!r} alone and would leave them out. Keep "
            f"one column of {platform}; the roster stored before is kept"
        )
    return roster


def _second_platform_cells(
    header: list[str], columns: dict[str, tuple[int, str]]
) -> dict[int, int]:
    """The positions of header cells naming a platform that another column names already
    (``X (Twitter)`` beside ``x``), each with the position of the column read: ignored,
    which they may be only where that one has a handle too."""
    placed = {index for index, _ in columns.values()}
    return {
        index: columns[platform][0]
        for index, cell in enumerate(header)
        if index not in placed
        and cell.strip()
        and (platform := _platform_of_header(cell)) is not None
        and platform in columns
    }


# What a spreadsheet's cell says for "no account": no letter or digit in it (-, —, ?), or
# one of these words.
_NO_ACCOUNT = frozenset({"na", "n/a", "n.a.", "none", "null", "nil", "tbd", "tba", "keine", "k.a."})


def _names_an_account(cell: str) -> bool:
    """Whether ``cell`` names an account (a handle, valid or not, or a link), not that
    there is none: a placeholder such as ``-`` or ``n/a`` does not."""
    text = clean_cell(cell)
    return any(c.isalnum() for c in text) and text.casefold() not in _NO_ACCOUNT


def _names_required_columns(cells: list[str]) -> bool:
    keys = {COLUMN_ALIASES.get(key, key) for key in map(header_key, cells)}
    return all(header_key(column) in keys for column in REQUIRED_COLUMNS)


def _header_columns(roster: Roster, header: list[str]) -> dict[str, tuple[int, str]]:
    """Roster column -> its position in the file and the name the file gives it. Header
    cells match in any case and spelling of their words (``Executive ID``), a platform's
    column also by its name and a word such as ``URL`` or ``handle`` (``X (Twitter)``,
    ``LinkedIn URL``), and a column by another name of it (:data:`COLUMN_ALIASES`:
    ``company_name``, ``Job Title``), unless the file has that column by its own name; a
    cell that names no column is a warning."""
    known = {header_key(column): column for column in roster_columns()}
    columns: dict[str, tuple[int, str]] = {}
    by_platform: list[tuple[int, str, str | None]] = []
    for index, raw_cell in enumerate(header):
        cell = raw_cell.strip()
        if not cell:
            continue
        column = known.get(header_key(cell))
        if column is None:
            # Another name of a column (COLUMN_ALIASES) is read as a platform's is: unless
            # the file has the column by its own name (Country beside Country code).
            alias = COLUMN_ALIASES.get(header_key(cell))
            by_platform.append((index, cell, alias or _platform_of_header(cell)))
        elif column in columns:
            raise RosterFileError(
                f"{roster.file}: roster header names column {column!r} twice:"
                f" {columns[column][1]!r} and {cell!r}"
            )
        else:
            columns[column] = (index, cell)
    unmatched = []
    for index, cell, platform in by_platform:
        if platform is None:
            unmatched.append(cell)
            reason = "not a roster column: ignored"
        elif platform in columns:
            reason = f"names column {platform!r} again ({columns[platform][1]!r}): ignored"
        else:
            columns[platform] = (index, cell)
            continue
        roster.warnings.append(RowIssue(roster.file, roster.header_row, cell, reason))
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing and not any(cell.strip() for cell in header):
        raise RosterFileError(
            f"{roster.file}: the roster file is empty (no header line)", may_pass_later=True
        )
    if missing:
        shown = ", ".join(cell.strip() for cell in header if cell.strip())
        # A cell like a missing column misspelt (Synthetic): said, beside the file caught
        # mid-write its header may also be (full_na), which a retry mends.
        hints = [
            f"; is {cell!r} {meant!r} misspelt?"
            for cell in unmatched
            if (meant := _misspelt_column(cell, known, columns)) in missing
        ]
        raise RosterFileError(
            f"{roster.file}: roster header lacks required column(s): {', '.join(missing)}"
            f" (line {roster.header_row}, read as the header, holds: {shown[:120]!r}; none of"
            f" the first {HEADER_SEARCH_LINES} lines names them all{''.join(hints)})",
            may_pass_later=True,
        )
    # Once every column is placed, a header cut short refused above as one caught mid-write.
    for cell in unmatched:
        if meant := _misspelt_column(cell, known, columns):
            # Ignored, a misspelt column (Thread) left its every account out: a platform's
            # counts and history vanished from the marts, every signal green.
            raise RosterFileError(
                f"{roster.file}: roster header cell {cell!r} (line {roster.header_row}) names"
                f" no roster column: is it {meant!r} misspelt? Correct it, or rename the"
                " column if it holds something else: read so, every value in it would be"
                " left out (the roster stored before is kept)"
            )
    return columns


# How alike a header cell and a column's name must be (difflib's ratio of their letters
# and digits) for the cell to be taken for that column misspelt: Thread, Blusky, Youtub,
# LinkedLn are; Facebook profile (0.70) and Notes are not.
MISSPELT_RATIO = 0.8


def _misspelt_column(
    cell: str, known: dict[str, str], columns: dict[str, tuple[int, str]]
) -> str | None:
    """The roster column the file lacks that ``cell`` looks like misspelt, if one does. A
    cell that is the column's name and more (Instagram id, Bluesky DID, Youtuber) is a
    column of its own about that platform, not a misspelling."""
    key = header_key(cell)
    absent = [
        name
        for name, column in known.items()
        if column not in columns and not (key.startswith(name) and key != name)
    ]
    close = difflib.get_close_matches(key, absent, n=1, cutoff=MISSPELT_RATIO)
    return known[close[0]] if close else None


def _read_rows(
    roster: Roster,
    reader: ClosedQuoteReader,
    columns: dict[str, tuple[int, str]],
    watched: dict[int, int],
) -> set[int]:
    """Read the rows into ``roster``; return which of the ``watched`` positions (ignored
    columns) name an account in a row whose column read in their place (the position they
    map to) is empty (:func:`_names_an_account`: a placeholder such as ``-`` or ``n/a``
    names none)."""
    file_name = roster.file
    filled: set[int] = set()
    account_columns = [platform for platform in ACCOUNT_COLUMNS if platform in columns]
    width = len(roster.header)
    # executive_id -> row number and valid_from of each accepted version
    seen_ids: dict[str, list[tuple[int, date | None]]] = {}
    seen_accounts: dict[tuple[str, str], tuple[str, int]] = {}
    # (executive_id, platform) -> (handle, row): one account per platform and executive.
    own_accounts: dict[tuple[str, str], tuple[str, int]] = {}
    # Line numbers count the lines above the header too (a title line).
    previous_line = reader.line_num + roster.header_row - 1
    for record in reader:
        # A quoted field may span lines: report the line where the row starts.
        row_number = previous_line + 1
        previous_line = reader.line_num + roster.header_row - 1
        if not any(cell.strip() for cell in record):
            # Excel writes rows whose cells were once filled, and blank rows at the end.
            continue
        roster.rows_read += 1
        filled.update(
            ignored
            for ignored, read in watched.items()
            if ignored < len(record)
            and _names_an_account(record[ignored])
            and not (read < len(record) and record[read].strip())
        )
        row_errors: list[RowIssue] = []

        def error(
            field_name: str,
            message: str,
            row: int = row_number,
            sink: list[RowIssue] = row_errors,
        ) -> None:
            name = columns[field_name][1] if field_name in columns else field_name
            sink.append(RowIssue(file_name, row, name, message))

        values = {
            column: clean_cell(record[index]) if index < len(record) else ""
            for column, (index, _) in columns.items()
        }
        if any(cell.strip() for cell in record[width:]):
            error("row", "more values than header columns")
        if reader.unclosed:
            # Read from its own line alone: the lines below it are rows of their own.
            error("row", UNCLOSED_QUOTE)

        executive_id = values.get("executive_id", "")
        valid_from: date | None = None
        try:
            valid_from = _parse_valid_from(values.get("valid_from", ""))
        except ValueError as exc:
            error("valid_from", str(exc))
        if not EXECUTIVE_ID_PATTERN.match(executive_id):
            error(
                "executive_id",
                f"{executive_id!r} must match {EXECUTIVE_ID_PATTERN.pattern}",
            )
        elif executive_id in seen_ids and not row_errors:
            versions = seen_ids[executive_id]
            clash = next((row for row, since in versions if since == valid_from), None)
            undated = next((row for row, since in versions if since is None), None)
            if valid_from is None or undated is not None:
                other = undated if undated is not None else versions[0][0]
                error(
                    "executive_id",
                    f"duplicate of row {other} (rows of one executive need distinct valid_from"
                    " dates)",
                )
            elif clash is not None:
                error("valid_from", f"{valid_from} repeats the version of row {clash}")
        for required in ("full_name", "company"):
            if not values.get(required):
                error(required, "is empty")
        country_code = sector = ""
        is_synthetic = False
        try:
            country_code = normalize_country(values.get("country", ""))
        except ValueError as exc:
            error("country", str(exc))
        try:
            sector = normalize_sector(values.get("sector", ""))
        except ValueError as exc:
            error("sector", str(exc))
        try:
            is_synthetic = _parse_bool(values.get("is_synthetic", ""))
        except ValueError as exc:
            error("is_synthetic", str(exc))

        row_accounts: list[Account] = []
        for platform in account_columns:
            raw_handle = values.get(platform, "")
            if not raw_handle:
                continue
            try:
                account_handle = normalize_handle(platform, raw_handle)
            except ValueError as exc:
                error(platform, str(exc))
                continue
            owner = seen_accounts.get((platform, account_handle.casefold()))
            if owner is not None and owner[0] == executive_id:
                continue
            if owner is not None:
                error(
                    platform,
                    f"account {account_handle!r} already belongs to {owner[0]} (row {owner[1]})",
                )
                continue
            other = own_accounts.get((executive_id, platform))
            if other is not None:
                # The warehouse follows one account per platform and executive; a second
                # one failed every dbt build until the roster changed.
                error(
                    platform,
                    f"{executive_id} already has the {platform} account {other[0]!r} (row "
                    f"{other[1]}): one account per platform and executive (a new handle goes "
                    "in every row of the executive)",
                )
                continue
            row_accounts.append(Account(executive_id, platform, account_handle))

        if row_errors:
            roster.errors.extend(row_errors)
            roster.rejected_rows.append(
                RejectedRow(row_number, executive_id, tuple(record), tuple(row_errors))
            )
            continue
        seen_ids.setdefault(executive_id, []).append((row_number, valid_from))
        for account in row_accounts:
            seen_accounts[(account.platform, account.account_handle.casefold())] = (
                executive_id,
                row_number,
            )
            own_accounts[(executive_id, account.platform)] = (account.account_handle, row_number)
        roster.executives.append(
            Executive(
                executive_id=executive_id,
                full_name=values["full_name"],
                title=values.get("title", ""),
                company_name=values["company"],
                country_code=country_code,
                sector=sector,
                is_synthetic=is_synthetic,
                valid_from=valid_from,
            )
        )
        roster.accounts.extend(row_accounts)
    return filled


def quarantine_rejected_rows(roster: Roster, quarantine_dir: Path) -> Path | None:
    """Keep the rejected rows of ``roster`` with their reasons in
    ``<quarantine_dir>/roster/<time>-<file>/`` (``rejected_rows.csv``, cells neutralised
    for spreadsheets, and ``report.json``); return the folder, or None when no row was
    rejected (then nothing is written)."""
    if not roster.rejected_rows:
        return None
    folder = QuarantineFolder(quarantine_dir, QUARANTINE_AREA, Path(roster.file).name)
    width = max(len(roster.header), *(len(rejected.cells) for rejected in roster.rejected_rows))
    extra_columns = [f"column_{number}" for number in range(len(roster.header) + 1, width + 1)]
    folder.write_rejected_rows(
        ["line", "error_field", "error", *roster.header, *extra_columns],
        (
            (
                rejected.row,
                ", ".join(dict.fromkeys(issue.column for issue in rejected.issues)),
                "; ".join(f"{issue.column}: {issue.reason}" for issue in rejected.issues),
                *rejected.cells,
                *[""] * (width - len(rejected.cells)),
            )
            for rejected in roster.rejected_rows
        ),
    )
    folder.write_report(
        {
            "file": roster.file,
            "quarantined_at": folder.stamp,
            "rows_read": roster.rows_read,
            "rows_loaded": len(roster.executives),
            "rows_rejected": len(roster.rejected_rows),
            "executives_skipped": roster.skipped_executive_ids(),
            "columns_ignored": [warning.column for warning in roster.warnings],
            "errors": [
                {"row": issue.row, "field": issue.column, "message": issue.reason}
                for issue in roster.errors
            ],
        }
    )
    return folder.path


def platform_columns_lost(con: duckdb.DuckDBPyConnection, roster: Roster) -> dict[str, int]:
    """Platform -> accounts the stored roster lists on it, for each platform the new file
    has no column for: read so, every one of those accounts would be left out of the marts
    with its history, on green runs (a header cell misread, a column deleted by mistake).
    A column kept and emptied is a choice, and the demo's roster left for one's own (or
    back) another roster (:func:`another_roster`): neither is listed."""
    ensure_schema(con)
    if another_roster(stored_roster_file(con), roster.file):
        return {}
    stored = con.execute(
        "select platform, count(*) from raw.roster_accounts group by platform order by platform"
    ).fetchall()
    return {
        platform: int(count) for platform, count in stored if platform not in roster.account_columns
    }


def another_roster(stored_file: str | None, roster_file: str) -> bool:
    """Whether a roster read from ``roster_file`` is another roster than the one stored
    from ``stored_file``, not its next version: the bundled demo roster left for one's own,
    or back. A file moved, renamed or behind a symlink (roster-2026-12.csv after
    roster-2026-11.csv) is the same roster's next version."""
    if stored_file is None or stored_file == roster_file:
        return False
    return is_demo_roster(stored_file) != is_demo_roster(roster_file)


# Where the bundled demo roster is in any checkout, image or install of the project.
DEMO_ROSTER_PARTS = ("include", "data", "roster", "executives.csv")


def is_demo_roster(file: str) -> bool:
    """Whether ``file`` is the bundled demo roster: of this checkout, or of another one
    stored before (a checkout renamed or moved, a release folder, the image's /opt/slw)."""
    path = Path(file)
    return path.parts[-len(DEMO_ROSTER_PARTS) :] == DEMO_ROSTER_PARTS or (
        path.resolve() == (BUNDLED_DATA_DIR / "roster" / "executives.csv").resolve()
    )


def stored_roster_file(con: duckdb.DuckDBPyConnection) -> str | None:
    """The roster file the stored roster was last read from (None: none stored)."""
    row = con.execute(
        "select roster_file from raw.roster_executives order by loaded_at desc limit 1"
    ).fetchone()
    return str(row[0]) if row else None


def write_roster(
    con: duckdb.DuckDBPyConnection, roster: Roster, roster_file: str, loaded_at: datetime
) -> list[tuple[str, str, str]]:
    """Replace ``raw.roster_executives`` and ``raw.roster_accounts`` in one transaction.

    The roster is a full snapshot, so a replace (not an append) keeps the raw tables equal
    to the file, but for the executives stored before of whom the file has a row rejected
    (:meth:`Roster.rejected_executive_ids`):
    they keep their stored rows, versions and accounts, and the file's other rows of them
    are not loaded; returned as (executive, platform, handle) of each account kept (an
    executive without one: its platform and handle empty); history of changes is dbt's
    SCD2 snapshot's job.
    """
    if loaded_at.tzinfo is None:
        raise ValueError("loaded_at must be timezone-aware (UTC)")
    ensure_schema(con)
    # Not into another roster (the demo's left for one's own), which a stored executive of
    # the same id is no version of.
    another = another_roster(stored_roster_file(con), roster_file)
    skipped = [] if another else roster.rejected_executive_ids()
    with transaction(con):
        # An executive stored before whose every row in this file is rejected (a country
        # mistyped) keeps the rows stored: left out, their published history went from the
        # marts, every run green, for one bad cell. So does one of whom a row is rejected
        # beside rows loaded: their earlier version's day mistyped gave its years to the
        # later company, the row holding their accounts refused took their series away.
        # One taken off the file is removed.
        con.execute(
            "create or replace temp table kept_roster_executives as "
            "select * from raw.roster_executives where list_contains(?, executive_id)",
            [skipped],
        )
        con.execute(
            "create or replace temp table kept_roster_accounts as "
            "select * from raw.roster_accounts where list_contains(?, executive_id)",
            [skipped],
        )
        # The executives whose stored rows stand for the file's.
        held = {
            str(row[0])
            for row in con.execute(
                "select distinct executive_id from kept_roster_executives"
            ).fetchall()
        }
        con.execute("delete from raw.roster_accounts")
        con.execute("delete from raw.roster_executives")
        _insert_many(
            con,
            "raw.roster_executives",
            (
                "executive_id",
                "full_name",
                "title",
                "company_name",
                "country_code",
                "sector",
                "is_synthetic",
                "valid_from",
                "roster_file",
                "loaded_at",
            ),
            (
                (
                    e.executive_id,
                    e.full_name,
                    e.title,
                    e.company_name,
                    e.country_code,
                    e.sector,
                    e.is_synthetic,
                    e.valid_from,
                    roster_file,
                    loaded_at,
                )
                for e in roster.executives
                if e.executive_id not in held
            ),
        )
        _insert_many(
            con,
            "raw.roster_accounts",
            ("executive_id", "platform", "account_handle", "loaded_at"),
            (
                (a.executive_id, a.platform, a.account_handle, loaded_at)
                for a in roster.accounts
                if a.executive_id not in held
            ),
        )
        con.execute("insert into raw.roster_executives select * from kept_roster_executives")
        # But an account the file now gives another executive.
        con.execute(
            """
            insert into raw.roster_accounts
            select * from kept_roster_accounts as kept
            where not exists (
                select 1 from raw.roster_accounts as listed
                where listed.platform = kept.platform
                    and lower(listed.account_handle) = lower(kept.account_handle)
            )
            """
        )
        kept = con.execute(
            """
            select executives.executive_id, coalesce(accounts.platform, ''),
                coalesce(accounts.account_handle, '')
            from (select distinct executive_id from kept_roster_executives) as executives
            left join raw.roster_accounts as accounts using (executive_id)
            order by all
            """
        ).fetchall()
        con.execute("drop table kept_roster_executives")
        con.execute("drop table kept_roster_accounts")
    return [(str(e), str(p), str(h)) for e, p, h in kept]


def _insert_many(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple[object, ...]],
) -> None:
    """Insert ``rows`` (values of ``columns``) into ``table`` in one statement, over an
    Arrow table of them: ``executemany`` took about 1 ms a row (a roster of 5,000
    executives: 4.9 s against 0.6 s, side by side; every platform_metrics run, holding the
    warehouse's one writer slot)."""
    import pyarrow as pa

    batch = list(rows)
    if not batch:
        return
    incoming = pa.table({name: [row[i] for row in batch] for i, name in enumerate(columns)})
    names = ", ".join(columns)
    con.register(_INCOMING_ROWS, incoming)
    try:
        con.execute(f"insert into {table} ({names}) select {names} from {_INCOMING_ROWS}")
    finally:
        con.unregister(_INCOMING_ROWS)


_INCOMING_ROWS = "incoming_roster_rows"
