"""Follower-count imports: follower history a user already has, from files, loaded into
``raw.imported_metrics`` (not the executives' versions, which the roster declares).

Platform APIs return current counts only, so earlier days (and every LinkedIn member
count: LinkedIn has no API for it) come in by file. File format, CSV (header
required) or Parquet, one row per account and day::

    executive_id,account_handle,platform,date,followers,following,posts

- ``platform``: one of :data:`~social_leadership.domain.PLATFORMS`.
- ``account_handle`` or ``executive_id`` (at least one column; per row at least one
  value). An ``executive_id`` is resolved to that executive's account on the platform in
  the roster; one with several there (a changed handle) needs the handle, else the row is
  bad. A handle must be one of the roster's accounts on that platform, matched
  case-insensitively (and, as in the roster, with or without a leading ``@`` on every
  platform whose connector drops one: all but YouTube and LinkedIn); it is stored in the
  roster's spelling. Any other handle, valid or not, is a bad row: history is kept only
  for accounts the warehouse tracks.
- ``date`` (or ``snapshot_date``): ISO date, not after today (UTC).
- ``followers``: required whole number >= 0; ``following``, ``posts``: optional.

A CSV saved by a spreadsheet is read as the roster is: UTF-8, UTF-16, Windows-1252 or Mac
Roman, cells separated by ``,``, ``;`` or tab. Such a file (any but UTF-8 with ``,``) is
read as text, where a day may also be ``DD.MM.YYYY`` and a count grouped by thousands
(``64.000``, ``64,000``) or end in a zero fraction (``250,0``); a UTF-8 file with ``,`` is
read as a program writes one (``64.000`` is the number 64). The header is the first line
naming a day and followers among the first 20 that are not blank: title lines above it, as
exports write them, are left out (:func:`_readable_csv`).

Each import gets a row in ``raw.history_imports`` (file, rows read, loaded, rejected,
loaded_at, whether the file is synthetic) and its rows land in ``raw.imported_metrics``
under that ``import_id``; dbt marks them ``source = 'import'`` beside the API's
observations. Idempotent: the newest import of a (platform, account, date) replaces earlier
imported rows of it, so re-importing a file (or a corrected version of it) never
duplicates; API rows are never touched. Bad rows are reported (file, row, field, reason: a
:class:`~social_leadership.intake.RowIssue`), written with their reasons to
``<quarantine>/history/<time>-<file>/`` (a name too long for a folder is cut short and ends
in a hash of itself) and skipped; the valid rows of the file still load. Their
``rejected_rows.csv`` is meant for a spreadsheet: cells that would run as formulas are
neutralised there (:mod:`social_leadership.safe_csv`), never in the warehouse. A dropped
file that cannot be imported at all (unreadable, a required column missing) is moved into
such a folder of its own, beside a ``report.json`` saying why.
"""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from social_leadership.domain import PLATFORMS
from social_leadership.formatting import counted, first_line
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
    holds_byte,
    left_to_settle,
    modified_within,
    move_file,
    record_start_lines,
    stamped_name,
    workbook_kind,
)
from social_leadership.platforms.registry import connector_class
from social_leadership.progress import step
from social_leadership.roster import Roster, normalize_handle
from social_leadership.sql import quote_identifier, quote_literal
from social_leadership.warehouse import ensure_schema, is_warehouse_fault, transaction
from social_leadership.warehouse_backend import is_lake_connection

log = logging.getLogger(__name__)

# Delimited text: a program's CSV, a spreadsheet's (Excel's "Unicode Text" is saved as
# .txt, with tabs), tab-separated values.
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
HISTORY_SUFFIXES = (*TEXT_SUFFIXES, ".parquet")
# Accepted spellings of each column, compared as header_key compares them (any case,
# spaces or hyphens for underscores: "Account Handle", "Followers count"); the first is
# the documented name. The others include the platforms' own API field names.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "executive_id": ("executive_id", "executive"),
    "account_handle": ("account_handle", "handle", "username", "screen_name", "account"),
    "platform": ("platform",),
    "date": ("date", "snapshot_date"),
    "followers": ("followers", "followers_count", "follower_count", "total_followers"),
    "following": ("following", "following_count", "follows_count", "friends_count"),
    "posts": ("posts", "posts_count", "media_count", "statuses_count", "tweet_count"),
}


NO_DATA_ROWS = "the file has no data rows (a header alone, or rows of empty cells)"


class HistoryFileError(ValueError):
    """The file cannot be imported at all (unreadable, or a required column is missing)."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass
class ImportOutcome:
    file: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    platforms: list[str] = field(default_factory=list)
    first_date: date | None = None
    last_date: date | None = None
    errors: list[RowIssue] = field(default_factory=list)
    quarantine_path: str | None = None
    # Loaded rows the marts will not count: a row repeating an account's day of the file
    # (the larger counts win), and one for a day the API already observed (its counts win).
    rows_repeating_a_day: int = 0
    rows_for_api_days: int = 0

    @property
    def refused(self) -> bool:
        """Whether the file was refused whole (unreadable, a required column missing: an
        error of row 0) and moved to quarantine, none of it imported."""
        return any(error.row == 0 for error in self.errors)

    def rows_not_counted(self) -> str | None:
        """Which loaded rows the marts will not count, and how many they will, or None when
        they count every one ("6 rows loaded" was all that was said of a file of which the
        marts counted 4: a day the API had observed, a day the file gave twice)."""
        if not self.rows_repeating_a_day and not self.rows_for_api_days:
            return None
        parts = []
        if self.rows_repeating_a_day:
            parts.append(
                f"{counted(self.rows_repeating_a_day, 'row repeats', 'rows repeat')} an "
                "account's day the file gives already (the row with the larger counts is kept)"
            )
        if self.rows_for_api_days:
            parts.append(
                f"{counted(self.rows_for_api_days, 'row is', 'rows are')} for a day the "
                "platform's API already observed (the API's counts are kept)"
            )
        counting = self.rows_loaded - self.rows_repeating_a_day - self.rows_for_api_days
        return f"{' and '.join(parts)}: the marts count {counting} of the rows loaded"


# Columns of one meaning under each of their names: two of them in a header (``followers``
# and ``followers_count``) leave the file unclear. An executive's or account's other names
# are read by rank instead (``Account``, a display name, beside ``Username``, the handle).
_ONE_MEANING = ("date", "followers", "following", "posts")


def _repeated_column(names: Sequence[str]) -> str | None:
    """Why a header naming a documented column twice is refused (the first was read and
    the other left unsaid: a spreadsheet's stale hidden column won), or None: the same
    name twice in any spelling, or two names of a date or count column."""
    keys = [header_key(str(name)) for name in names]
    for column, aliases in COLUMN_ALIASES.items():
        named = {header_key(alias) for alias in aliases}
        cells = [
            str(name)
            for name, key in zip(names, keys, strict=True)
            if key in named and (column in _ONE_MEANING or keys.count(key) > 1)
        ]
        if len(cells) > 1:
            return (
                f"header names column {column!r} twice: {cells[0]!r} and {cells[1]!r} "
                "(rename or remove one, so that the file says which holds it)"
            )
    return None


# The largest count a short float holds exactly: above it, 123456789 is stored as 123456792
# in 32 bits (Spark's FloatType, Polars' Float32, a pandas column downcast write them).
_EXACT_UP_TO = {pa.float32(): (32, 2**24), pa.float16(): (16, 2**11)}


def _rounded_counts(path: Path, mapping: dict[str, str]) -> str | None:
    """Why a Parquet file whose count column is a 32- or 16-bit float holding a count
    above what it holds exactly is refused (the file holds a rounded number, neither the
    count nor one the import can tell from it), or None."""
    schema = pq.read_schema(path)
    for column in ("followers", "following", "posts"):
        name = mapping.get(column)
        if name is None or schema.field(name).type not in _EXACT_UP_TO:
            continue
        bits, exact = _EXACT_UP_TO[schema.field(name).type]
        # Arrow has no min/max of 16-bit floats; each is a 32-bit one exactly.
        values = pq.read_table(path, columns=[name]).column(0).cast(pa.float32())
        largest = pc.max(values).as_py()
        if largest is not None and largest > exact:
            return (
                f"column {name!r} is a {bits}-bit float, which holds a count above "
                f"{exact:,} only rounded (its largest reads {largest:,.0f}): write the "
                "counts as integers"
            )
    return None


def _column_map(names: Iterable[str]) -> dict[str, str]:
    """Documented column name -> the file's column name."""
    present: dict[str, str] = {}
    for name in names:
        present.setdefault(header_key(name), name)
    mapping: dict[str, str] = {}
    for column, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if header_key(alias) in present:
                mapping[column] = present[header_key(alias)]
                break
    return mapping


# Counts are read as text even by the typed reads: as numbers, DuckDB's reader takes 64.000
# for 64 and 2.50412E+08 for 250412000 (and, as BIGINT, rounds 64.5 to 65), and the sniffer
# that sends a file of such counts to the text checks reads only its first rows. The fast
# path takes a count written as plain digits alone (:func:`_bulk_insert`); the checks read
# every other (250.0, as pandas writes a count of a column with gaps, is 250).
TYPED_COLUMNS = {"date": "DATE", "followers": "VARCHAR", "following": "VARCHAR", "posts": "VARCHAR"}


_COUNTS = ("followers", "following", "posts")


def _counts_need_text(path: Path) -> bool:
    """Whether the fast path must read the file's counts as text: it holds a double quote
    (a quoted "64,000" is 64.0 to a reader whose decimal mark is ',') or a '+' (3E+06,
    which a reader of numbers takes for 3000000; no handle, platform or ISO day holds
    one). A scan at memory speed (:func:`~social_leadership.intake.holds_byte`); a file
    that cannot be mapped is read as text."""
    return holds_byte(path, b'"', b"+")


def _plain_count(text: str) -> str:
    """SQL: whether the text ``text`` is a count written as plain digits, as a BIGINT
    writes it back (no sign, space, leading zero, separator, fraction or exponent)."""
    return f"cast(try_cast({text} as bigint) as varchar) = {text}"


def _is_whole(number: str) -> str:
    """SQL: whether the DOUBLE ``number`` is a whole number a BIGINT holds (not NaN, not
    infinite, which DuckDB's reader takes for numbers too: neither is under 9e18)."""
    return f"({number} = trunc({number}) and abs({number}) < 9e18)"


def _whole(number: str) -> str:
    """SQL: the DOUBLE ``number`` as a BIGINT when it is a whole number, else null."""
    return f"case when {_is_whole(number)} then cast({number} as bigint) end"


class Readable(NamedTuple):
    """What is read of a history file (:func:`_readable_csv`): ``source``, the lines of the
    user's file left out above its header (``lines_above``), and whether ``source`` is a
    spreadsheet's CSV rewritten (``spreadsheet``: read as text, :func:`_as_count`)."""

    source: Path
    lines_above: int
    spreadsheet: bool


def _names_day_and_followers(cells: list[str]) -> bool:
    """Whether header ``cells`` name a day and followers, as a history file's header does
    and a title line above it (``Followers``, ``Date range: …``) does not."""
    return {"date", "followers"} <= _column_map(cells).keys()


@contextmanager
def _readable_csv(path: Path) -> Iterator[Readable]:
    """``path`` when DuckDB's reader takes it as it is (not CSV, or UTF-8 CSV separated by
    ``,`` whose first line is the header), else a UTF-8, ``,``-separated copy of it from
    its header on: title and blank lines above the header (an export's, a sheet's) are left
    out, the header being the first line that names a day and followers
    (:func:`~social_leadership.intake.find_header`), and a spreadsheet's CSV (German Excel's
    Windows-1252 and ``;``, Mac Roman, DOS Latin-1, UTF-16 "Unicode Text" with tabs: the
    encodings and delimiters the roster takes,
    :func:`~social_leadership.intake.detect_encoding`; Excel's ``sep=;`` line) is rewritten
    record by record, each on the line it was on, so reports name its lines."""
    if path.suffix.lower() not in TEXT_SUFFIXES:
        yield Readable(path, 0, spreadsheet=False)
        return
    try:
        encoding = detect_encoding(path)
        with path.open(encoding=encoding, newline="") as handle:
            header = find_header(handle, _names_day_and_followers)
    except (OSError, UnicodeDecodeError):
        yield Readable(path, 0, spreadsheet=False)  # the reader says what is wrong with it
        return
    except HeaderLineError as exc:
        raise HistoryFileError(path, f"cannot be read as CSV: {exc}") from exc
    as_written = (
        encoding in ("utf-8", "utf-8-sig") and header.delimiter == "," and not header.declared
    )
    # A header cell holding line breaks (Excel's Alt+Enter) is rewritten on one line: DuckDB's
    # sniffer cannot read it, and the rows below keep their lines (``lines_above``).
    if as_written and header.number == 1 and header.span == 1 and path.suffix.lower() == ".csv":
        yield Readable(path, 0, spreadsheet=False)
        return
    with tempfile.TemporaryDirectory(prefix="slw-history-") as folder:
        copy = Path(folder) / f"{path.stem}.csv"
        with (
            path.open(encoding=encoding, newline="") as source,
            copy.open("w", encoding="utf-8", newline="") as target,
        ):
            for _ in range(header.number - 1):
                source.readline()
            if as_written and header.span == 1:
                # A program's CSV below title lines: the same text from its header on.
                shutil.copyfileobj(source, target)
            else:
                writer = csv.writer(target, lineterminator="\n")
                reader = ClosedQuoteReader(source, delimiter=header.delimiter)
                try:
                    writer.writerow([" ".join(cell.split()) for cell in next(reader, [])])
                    for record in reader:
                        if reader.unclosed:
                            # Refused whole, as DuckDB's reader refuses a program's file.
                            raise csv.Error(UNCLOSED_QUOTE)
                        writer.writerow(record)
                except csv.Error as exc:
                    # Also a cell over the csv module's limit: refused, not a crash that
                    # stopped the inbox's other files.
                    line = reader.line_num + header.number - 1
                    raise HistoryFileError(
                        path, f"cannot be read as CSV: the row on line {line}: {exc}"
                    ) from exc
        yield Readable(copy, header.end - 1, spreadsheet=not as_written)


# A whole number written with a thousands separator, as spreadsheets show counts: 64.000
# (German), 64,000 (English), 64 000 and 64\u2019000 (Swiss), 64\u202f000 (French), one
# separator throughout, and a zero fraction in the other mark (1.234,00; 1,234.0). A count
# has no decimals, so the groups of three digits tell; 1.234,567 is a fraction (it was read
# as 1234567, every separator dropped).
_SPACE_MARKS = "' \u2019\u00a0\u202f"
_GROUPED_COUNT = quote_literal(
    "[1-9][0-9]{0,2}(([.][0-9]{3})+(,0{1,2})?|(,[0-9]{3})+([.]0{1,2})?"
    f"|([{_SPACE_MARKS}][0-9]{{3}})+([.,]0{{1,2}})?)"
)


# A count written as digits in groups of three after dots: 64.000, 1.234.567 (no grouped
# number starts with 0: 0.000 is a program's zero).
_DOT_GROUPED = quote_literal("[1-9][0-9]{0,2}([.][0-9]{3})+")
# The same with commas (12,345), as a spreadsheet's CSV quotes a count formatted so.
_COMMA_GROUPED = quote_literal("[1-9][0-9]{0,2}(,[0-9]{3})+")


# A count in scientific notation, as a spreadsheet shows and saves a large one: 2.50412E+08
# for 250,412,345 (six digits kept), or in a decimal comma 2,50412E+08. Refused, never read
# as the rounded number.
_SCIENTIFIC = quote_literal("[+]?[0-9]+([.,][0-9]*)?[eE][+-]?[0-9]+")


# DuckDB's reader takes a date column's format from the file (06/30/2025 month first, or
# day first, as the rows tell): only ISO days are typed; any other goes to the checks,
# which refuse it (the fast path asks the sniffer which format it found).
ISO_DATES = "dateformat = '%Y-%m-%d'"
# How a file's values are read (:func:`_source_relation`): typed by DuckDB's reader, as
# text, or as text a spreadsheet wrote (:func:`_readable_csv`).
TYPED, TEXT, SPREADSHEET = "typed", "text", "spreadsheet"
# A whole count with a zero fraction in the decimal comma or point (250,0: pandas'
# to_csv(decimal=",") of a column with gaps).
_ZERO_FRACTION = quote_literal("[0-9]+[.,]0{1,2}")


def _as_date(value: str, reading: str) -> str:
    """SQL: ``value`` as a date, ISO, or read as text a German day (30.06.2025, day first
    as the dots say); null for anything else."""
    if reading == TYPED:
        return f"try_cast({value} as date)"
    # Four-digit years only: strptime reads 01.07.25 as the year 25. A time after the day
    # (27.11.2025 00:00, as German Excel writes a date cell that holds one) is left out.
    day = f"regexp_extract(trim({value}), '^([0-9]{{1,2}}\\.[0-9]{{1,2}}\\.[0-9]{{4}})"
    day += "( [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?$', 1)"
    german = f"case when {day} <> '' then try_strptime({day}, '%d.%m.%Y') end"
    return f"coalesce(try_cast({value} as date), cast({german} as date))"


def _as_count(value: str, reading: str) -> str:
    """SQL: ``value`` as a whole number; null for anything else, a fraction included. In a
    spreadsheet's CSV, digits grouped by thousands separators (:data:`_GROUPED_COUNT`:
    64.000 is German for 64000) or with a zero fraction (250,0); elsewhere a number as
    DuckDB reads it, but for digits grouped after dots (64.000: 64 or 64000?) and scientific
    notation, refused (250.0 is 250; 64.5 is refused, where DuckDB's cast would round it)."""
    scientific = f"regexp_full_match(trim(cast({value} as varchar)), {_SCIENTIFIC})"
    if reading in (TYPED, TEXT):
        # 64.000 in a program's CSV: 64 with three decimals, or 64000 with a thousands
        # separator (a German locale's sheet saved as CSV UTF-8)? Neither is guessed.
        return (
            f"case when not regexp_full_match(trim({value}), {_DOT_GROUPED}) "
            f"and not {scientific} then {_whole(f'try_cast({value} as double)')} end"
        )
    text = f"trim({value})"
    return (
        f"case when regexp_full_match({text}, '\\+?[0-9]+') then try_cast({text} as bigint) "
        f"when regexp_full_match({text}, {_GROUPED_COUNT}) "
        f"then try_cast(regexp_replace(regexp_replace({text}, '[.,]0{{1,2}}$', ''), "
        "'[^0-9]', '', 'g') as bigint) "
        f"when regexp_full_match({text}, {_ZERO_FRACTION}) "
        f"then try_cast(regexp_replace({text}, '[.,]0+$', '') as bigint) end"
    )


# The spaces DuckDB's reader trims around a header's cells (Unicode's space separators: a
# space, a no-break space; not a tab), which a column is named without.
_NAME_SPACES = "".join(
    chr(code) for code in range(0x3001) if unicodedata.category(chr(code)) == "Zs"
)


def _csv_header(path: Path) -> list[str]:
    """The header cells of the UTF-8 CSV ``path``, each as DuckDB's reader names its column
    (a header written ``account_handle, platform`` names ``platform``: matched as written,
    the column was not found and the file could not be read at all)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [cell.strip(_NAME_SPACES) for cell in next(csv.reader(handle), [])]


# How a spreadsheet marks a count not known: Excel's #N/A (#NV in German), a dash. In a
# Parquet file, pandas' NaN too: a float column of a count with gaps (read as 'nan'); in
# a text file 'nan' is no mark a program writes (pandas leaves the cell empty).
_NOT_KNOWN_MARKS = ("n/a", "na", "n.a.", "#n/a", "#nv", "-", "\u2013", "\u2014", "null", "none")
_NOT_KNOWN = "({})".format(", ".join(quote_literal(mark) for mark in _NOT_KNOWN_MARKS))
_NOT_KNOWN_IN_PARQUET = "({})".format(
    ", ".join(quote_literal(mark) for mark in (*_NOT_KNOWN_MARKS, "nan"))
)


def _source_relation(
    path: Path,
    *,
    with_lines: bool,
    spreadsheet: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
) -> tuple[str, set[str], str]:
    """SQL reading ``path``, with the 1-based ``line`` a user counts when ``with_lines``.

    Without lines (the fast pass) a CSV is read with its count and date columns typed, as
    DuckDB's own reader does best, and a line that does not parse is skipped: the caller
    sees fewer rows loaded than the file holds and runs the diagnosis. With lines (the
    diagnosis: numbering forces an ordered scan) every column is read as text, short
    lines padded, so each bad value becomes a reported row. Given ``con``, a CSV's values
    past the header's named columns are ``extra_value`` (a row with more fields than the header,
    as an unquoted ``64,000`` makes: read, its values would sit one column off)."""
    literal = quote_literal(str(path))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            header = _csv_header(path)
        except OSError as exc:
            raise HistoryFileError(path, f"cannot read ({exc.strerror})") from exc
        if with_lines:
            # null_padding makes DuckDB read single-threaded: only for the diagnosis. The
            # parallel reader refuses it beside a quoted line break (a cell holding a
            # carriage return), so ask for the single-threaded reader outright.
            options = "all_varchar = true, null_padding = true, parallel = false"
        else:
            present = {c: n for c, n in _column_map(header).items() if c in TYPED_COLUMNS}
            types = ", ".join(
                f"{quote_literal(name)}: '{TYPED_COLUMNS[column]}'"
                for column, name in present.items()
            )
            options = f"ignore_errors = true, {ISO_DATES}, types = {{{types}}}"
        reader = (
            f"read_csv({literal}, header = true, auto_detect = true, "
            f"delim = ',', quote = '\"', escape = '\"', {options})"
        )
        # The header is line 1, so the first data row is line 2.
        line_offset = 1
    elif suffix == ".parquet":
        try:
            header = list(pq.read_schema(path).names)
        except (OSError, pa.ArrowInvalid) as exc:
            raise HistoryFileError(path, f"not a readable Parquet file ({exc})") from exc
        reader = f"read_parquet({literal})"
        line_offset = 0
    else:
        raise HistoryFileError(
            path,
            f"is no history file ({suffix or 'no extension'}): save it as CSV UTF-8 (.csv), "
            "tab-separated text (.txt, .tsv) or Parquet (.parquet) and import that",
        )
    if repeated := _repeated_column(header):
        raise HistoryFileError(path, repeated)
    mapping = _column_map(header)
    if suffix == ".parquet" and (rounded := _rounded_counts(path, mapping)):
        raise HistoryFileError(path, rounded)
    missing = [c for c in ("platform", "date", "followers") if c not in mapping]
    if "executive_id" not in mapping and "account_handle" not in mapping:
        missing.append("executive_id or account_handle")
    if missing:
        reason = f"header lacks required column(s): {', '.join(missing)}"
        if suffix == ".csv" and not mapping.keys() & {
            "platform",
            "date",
            "executive_id",
            "account_handle",
        }:
            # No key, platform or day: no line named a day and followers
            # (:func:`_readable_csv`), and the first is no header, a title line perhaps.
            shown = ", ".join(cell.strip() for cell in header if str(cell).strip())
            reason += (
                f" (none of the first {HEADER_SEARCH_LINES} lines names both a day and "
                f"followers; the first, read as the header, holds: {shown[:120]!r})"
            )
        raise HistoryFileError(path, reason)

    typed_read = suffix == ".csv" and not with_lines and not spreadsheet

    def text(column: str) -> str:
        if column not in mapping:
            return f"cast(null as varchar) as {column}"
        if typed_read and column == "date":
            # Already typed by the reader; the checks' try_cast is then a no-op.
            return f"{quote_identifier(mapping[column])} as {column}"
        value = f"cast({quote_identifier(mapping[column])} as varchar)"
        # Casts to numbers and dates ignore surrounding spaces; only the keys need a trim.
        if column in ("executive_id", "account_handle", "platform"):
            value = f"nullif(trim({value}), '')"
        elif column in ("following", "posts"):
            # An optional count a spreadsheet marks as not known (n/a, -, #N/A) is none,
            # as an empty cell is: the row's followers still load.
            marks = _NOT_KNOWN_IN_PARQUET if suffix == ".parquet" else _NOT_KNOWN
            value = f"case when lower(trim({value})) not in {marks} then {value} end"
        return f"{value} as {column}"

    select = ", ".join(text(column) for column in COLUMN_ALIASES)
    extra = "cast(null as varchar)"
    if con is not None and suffix == ".csv":
        # The reader pads rows to the widest it sniffed, naming the columns past the header;
        # a header's trailing empty cells (a spreadsheet's) name none either.
        try:
            read = [row[0] for row in con.execute(f"describe select * from {reader}").fetchall()]
        except duckdb.Error:
            read = []  # the read itself fails, and says why
        named = _last_named_column(header)
        beyond = [f"nullif(trim({quote_identifier(name)}), '')" for name in read[named + 1 :]]
        if beyond:
            extra = f"coalesce({', '.join(beyond)})"
    select += f", {extra} as extra_value"
    line = f"row_number() over () + {line_offset}" if with_lines else "cast(null as bigint)"
    reading = TYPED if typed_read else SPREADSHEET if spreadsheet else TEXT
    return f"select {line} as line, {select} from {reader}", set(mapping), reading


def _validated_sql(relation: tuple[str, set[str], str]) -> str:
    """Every row of the file, typed, resolved against the roster and checked.

    ``error_field`` names the first field at fault, or is null for a row that loads. A
    roster join is only made for a key column the file has (each join is a pass over
    every row).
    """
    source_sql, columns, reading = relation
    joins, by_handle, by_executive = [], "null", "null"
    executive_accounts, executive_handles = "cast(null as bigint)", "cast(null as varchar)"
    handle_executive = "cast(null as varchar)"
    executive_known = "cast(null as boolean)"
    if "account_handle" in columns:
        by_handle = "by_handle.account_handle"
        handle_executive = "by_handle.executive_id"
        joins.append(
            """left join history_roster_accounts as by_handle
                on by_handle.platform = typed.platform_key
                and by_handle.handle_key = lower(typed.account_handle)"""
        )
    if "executive_id" in columns:
        # An executive whose handle changed keeps both accounts: a row naming only the
        # executive is then ambiguous, and is joined once (never once per account).
        by_executive = "case when by_executive.accounts = 1 then by_executive.account_handle end"
        executive_accounts = "by_executive.accounts"
        executive_handles = "by_executive.handles"
        executive_known = (
            "lower(typed.executive_id) in (select executive_id from history_roster_accounts)"
        )
        joins.append(
            """left join (
                    select executive_id, platform, min(account_handle) as account_handle,
                        count(*) as accounts,
                        string_agg(account_handle, ', ' order by account_handle) as handles
                    from history_roster_accounts
                    where not is_alias
                    group by executive_id, platform
                ) as by_executive
                on typed.account_handle is null
                and by_executive.platform = typed.platform_key
                and by_executive.executive_id = lower(typed.executive_id)"""
        )
    roster_joins = "\n            ".join(joins)
    return f"""
        with source as ({source_sql}),
        typed as (
            select
                source.*,
                lower(source.platform) as platform_key,
                {_as_date("source.date", reading)} as snapshot_date,
                {_as_count("source.followers", reading)} as followers_n,
                {_as_count("source.following", reading)} as following_n,
                {_as_count("source.posts", reading)} as posts_n
            from source
            -- A row of empty cells (,,,, as a spreadsheet writes below its table) is none.
            where coalesce(
                source.executive_id, source.account_handle, source.platform,
                cast(source.date as varchar), cast(source.followers as varchar),
                cast(source.following as varchar), cast(source.posts as varchar),
                source.extra_value
            ) is not null
        ),
        resolved as (
            select
                typed.*,
                typed.platform_key in $platforms as platform_known,
                coalesce({by_handle}, {by_executive}, typed.account_handle)
                    as handle_resolved,
                {by_executive} as executive_handle,
                {handle_executive} as handle_executive,
                {executive_accounts} as executive_accounts,
                {executive_handles} as executive_handles,
                {executive_known} as executive_known,
                {by_handle} as roster_handle
            from typed
            {roster_joins}
        )
        select
            *,
            case
                when extra_value is not null then 'row'
                when platform is null then 'platform'
                when not platform_known then 'platform'
                when date is null then 'date'
                when snapshot_date is null then 'date'
                when snapshot_date > $today then 'date'
                when snapshot_date < {_EARLIEST_DAY} then 'date'
                when followers is null then 'followers'
                when followers_n is null or followers_n < 0 then 'followers'
                when following is not null and (following_n is null or following_n < 0)
                    then 'following'
                when posts is not null and (posts_n is null or posts_n < 0) then 'posts'
                when account_handle is null and executive_id is null
                    then 'account_handle'
                when account_handle is not null and roster_handle is null
                    then 'account_handle'
                when account_handle is null and executive_handle is null
                    then 'executive_id'
                when executive_id is not null and handle_executive <> lower(executive_id)
                    then 'executive_id'
            end as error_field
        from resolved
    """


# No account counts from before it (the platforms began after it): a day before it is a
# two-digit year read as the first century's (25-11-27, 27.11.0025 are the year 25).
_EARLIEST_DAY = "date '2000-01-01'"


def _data_rows(path: Path) -> int:
    """Rows in the file without parsing it: Parquet metadata, or the CSV's line count.

    A CSV line count differs from the parsed rows only for a file with quoted line breaks
    or blank lines; a difference sends the import down its row-by-row diagnosis, which
    counts exactly, so the estimate never makes a result wrong.
    """
    if path.suffix.lower() == ".parquet":
        return int(pq.read_metadata(path).num_rows)
    newlines = 0
    last = b"\n"
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 24), b""):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (0 if last == b"\n" else 1)
    return max(lines - 1, 0)


class Sniffed(NamedTuple):
    """What DuckDB's sniffer found of a program's CSV (its first rows): the days' format,
    and each column's type by name."""

    date_format: str | None
    types: dict[str, str]


def _sniff(path: Path) -> Sniffed | None:
    """:class:`Sniffed` of the UTF-8 CSV ``path``; None when the sniffer cannot agree on its
    rows (the checking path names them). On a connection of its own: a sniffer's error
    would abort the import's transaction."""
    try:
        with duckdb.connect() as sniffer:
            found = sniffer.execute(
                f"select DateFormat, Columns from sniff_csv({quote_literal(str(path))}, "
                "header = true, delim = ',', quote = '\"', escape = '\"')"
            ).fetchone()
    except duckdb.Error:
        return None
    if found is None:
        return None
    return Sniffed(found[0], {column["name"]: column["type"] for column in found[1] or []})


# The types DuckDB's sniffer gives a column of numbers with decimals (an empty column,
# LinkedIn's following in an export, is VARCHAR: no decimals in it).
_DECIMAL_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL")


def _counts_with_decimals(path: Path, sniffed: Sniffed | None) -> bool:
    """Whether a count column of the program's CSV ``path`` holds decimals in the rows the
    sniffer read (``64.000``, ``250.0``): then only the checking path reads it, as text,
    which refuses a count that may be written with a thousands separator (the typed reader
    read 64.000 as 64)."""
    if sniffed is None:
        return False
    mapping = _column_map(_csv_header(path))
    counts = [mapping[name] for name in ("followers", "following", "posts") if name in mapping]
    return any(sniffed.types.get(name, "").startswith(_DECIMAL_TYPES) for name in counts)


def _bulk_insert(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    import_id: int,
    today: date,
    rows_read: int,
    sniffed: Sniffed | None,
) -> int | None:
    """The fast path: load a clean CSV keyed by handle straight from DuckDB's typed reader.

    Returns the rows loaded, or None when the file is not one this path can vouch for
    (not CSV, no handle column, any row skipped by the reader or out of range, an unknown
    platform, a handle that is not a roster account of its platform): the caller then
    deletes this import's rows and takes the checking path.
    Rows are inserted as written, then the few distinct (platform, handle) keys are
    normalised (platform lower-cased, handle in the roster's spelling, both trimmed) by
    one update that touches only rows whose key changes: per-row string work on millions
    of rows is what made the checking path slow.
    """
    if path.suffix.lower() != ".csv":
        return None
    header = _csv_header(path) or [""]
    mapping = _column_map(header)
    # A file naming executives too takes the checking path, which checks the two agree;
    # so does one whose header ends in empty cells, under which a value split by an
    # unquoted delimiter (64,000) would be read one column off.
    if (
        "account_handle" not in mapping
        or "executive_id" in mapping
        or _last_named_column(header) < len(header) - 1
    ):
        return None
    # Days in another order than ISO (06/30/2025, as the reader takes it from the rows):
    # the checking path refuses them. (Its dateformat option would cost this path a tenth.)
    if sniffed is None or sniffed.date_format not in (None, "%Y-%m-%d"):
        return None
    # A file without a quote holds no field with a comma: its counts are read as numbers
    # with ',' for the decimal mark, so a count written with a '.' (64.000, 250.0) is none
    # and its line is skipped, as fast as the reader reads numbers. With quotes ("64,000"
    # would then be 64.0) or an exponent's '+' (3E+06), they are read as text and taken
    # when plain digits (a tenth slower). An exponent without its sign (1e5, which no
    # spreadsheet or program writes) would still be read as a number.
    quoted = _counts_need_text(path)
    kinds = {**TYPED_COLUMNS, **({} if quoted else dict.fromkeys(_COUNTS, "DOUBLE"))}
    types = ", ".join(
        f"{quote_literal(mapping[column])}: '{kind}'"
        for column, kind in kinds.items()
        if column in mapping
    )
    whole = _plain_count if quoted else _is_whole
    numbers = "" if quoted else ", decimal_separator = ','"

    def column(name: str) -> str:
        return quote_identifier(mapping[name]) if name in mapping else "null"

    inserted = con.execute(
        f"""
        insert into raw.imported_metrics (import_id, platform, snapshot_date, account_handle,
            followers, following, posts)
        select $import_id, {column("platform")}, {column("date")}, {column("account_handle")},
            cast({column("followers")} as bigint), cast({column("following")} as bigint),
            cast({column("posts")} as bigint)
        from read_csv({quote_literal(str(path))}, header = true, auto_detect = true, delim = ',',
            quote = '"', escape = '"', ignore_errors = true, types = {{{types}}}{numbers})
        where {column("platform")} is not null and {column("account_handle")} is not null
            and {column("date")} is not null
            and {whole(column("followers"))}
            and ({column("following")} is null or {whole(column("following"))})
            and ({column("posts")} is null or {whole(column("posts"))})
        """,
        {"import_id": import_id},
    ).fetchone()
    rows = int(inserted[0]) if inserted else 0
    if rows != rows_read:
        return None
    checks = con.execute(
        f"""
        select
            count(*) filter (
                where followers < 0 or following < 0 or posts < 0 or snapshot_date > $today
                    or snapshot_date < {_EARLIEST_DAY}
            ),
            min(snapshot_date),
            max(snapshot_date)
        from raw.imported_metrics where import_id = $import_id
        """,
        {"import_id": import_id, "today": today},
    ).fetchone()
    if checks is None or checks[0]:
        return None
    # Each key's rows and days (the bits of a bitstring from the file's first day) in the
    # pass that finds the keys: the import's summary (_summary_sql) reads them from here,
    # where a pass of its own over millions of rows took a tenth of the import.
    first_day = f"date {quote_literal(checks[1].isoformat())}"
    last_day = f"date {quote_literal(checks[2].isoformat())}"
    con.execute(
        f"""
        create or replace temp table history_keys as
        with keys as (
            select platform, account_handle, count(*) as row_count,
                min(snapshot_date) as first_day, max(snapshot_date) as last_day,
                bitstring_agg(
                    snapshot_date - {first_day}, 0, {last_day} - {first_day}
                ) as days_given
            from raw.imported_metrics where import_id = $import_id
            group by platform, account_handle
        )
        select
            keys.*,
            {first_day} as bits_from,
            lower(trim(keys.platform)) as platform_key,
            roster.account_handle as handle_resolved
        from keys
        left join history_roster_accounts as roster
            on roster.platform = lower(trim(keys.platform))
            and roster.handle_key = lower(trim(keys.account_handle))
        """,
        {"import_id": import_id},
    )
    keys = con.execute(
        """
        select
            count(*) filter (where platform_key not in $platforms or handle_resolved is null),
            count(*) filter (
                where platform <> platform_key or account_handle <> handle_resolved
            )
        from history_keys
        """,
        {"platforms": list(PLATFORMS)},
    ).fetchone()
    if keys is None or keys[0]:
        return None
    if not keys[1]:
        return rows
    con.execute(
        """
        update raw.imported_metrics as m
        set platform = k.platform_key, account_handle = k.handle_resolved
        from history_keys as k
        where m.import_id = $import_id
            and m.platform = k.platform
            and m.account_handle = k.account_handle
            and (k.platform <> k.platform_key or k.account_handle <> k.handle_resolved)
        """,
        {"import_id": import_id},
    )
    return rows


@contextmanager
def _utc_session(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The session's time zone UTC while a file is read, as it was after: a timestamp with
    a time zone (pandas writes them to Parquet) is then a UTC day, as snapshot_date is,
    whatever the machine's time zone."""
    zone = con.execute("select current_setting('TimeZone')").fetchone()
    con.execute("set TimeZone = 'UTC'")
    try:
        yield
    finally:
        if zone is not None:
            con.execute(f"set TimeZone = {quote_literal(zone[0])}")


def import_history(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    roster: Roster,
    quarantine_dir: Path,
    *,
    today: date | None = None,
    loaded_at: datetime | None = None,
    is_synthetic: bool = False,
    recorded_as: Path | None = None,
) -> ImportOutcome:
    """Import one history file (format in the module docstring); see :class:`ImportOutcome`.

    ``is_synthetic``: the file is generated, not observed counts; the import is recorded so
    (``raw.history_imports.is_synthetic``) and every mart built from its rows says so. Only
    the caller that generated the file knows: a file dropped by a user is never synthetic.

    One pass: a single DuckDB statement reads, checks and inserts the file. Only when rows
    were rejected is the file read again, numbered, to name each bad row. Raises
    :class:`HistoryFileError` when the file cannot be read or lacks a required column;
    row-level problems are reported, quarantined and skipped.

    ``recorded_as``: the path ``raw.history_imports.file_name`` names, where the file is
    kept once imported (an inbox file is moved on; default: ``path``). ``loaded_at``
    (default: when the rows are recorded, just before the commit) stamps the import.
    """
    path = Path(path).resolve()
    workbook = workbook_kind(path) if path.suffix.lower() in TEXT_SUFFIXES else None
    if workbook:
        raise HistoryFileError(path, f"is {workbook}, not CSV text: save it as CSV UTF-8")
    if path.is_file() and path.stat().st_size == 0:
        # Not "header lacks required column(s) ... holds ''".
        raise HistoryFileError(path, "is empty (0 bytes): there is nothing to import")
    try:
        with _utc_session(con), _readable_csv(path) as readable:
            return _import(
                con,
                path,
                readable,
                roster,
                quarantine_dir,
                today,
                loaded_at,
                is_synthetic,
                recorded_as,
            )
    except HistoryFileError as exc:
        if exc.path == path:
            raise
        raise HistoryFileError(path, exc.reason) from exc.__cause__
    except UnicodeDecodeError as exc:
        raise HistoryFileError(
            path, f"cannot be read as {exc.encoding} text ({exc.reason}); save it as CSV UTF-8"
        ) from exc


def _import(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    readable: Readable,
    roster: Roster,
    quarantine_dir: Path,
    today: date | None,
    loaded_at: datetime | None,
    is_synthetic: bool,
    recorded_as: Path | None = None,
) -> ImportOutcome:
    """:func:`import_history` of ``path``, its rows read from ``source`` (:func:`_readable_csv`).

    A spreadsheet's CSV (``readable.spreadsheet``) is read as text only: its counts and
    days as a spreadsheet writes them (``64.000``, ``30.06.2025``) are no numbers and dates
    to DuckDB's typed reader, which would read ``64.000`` as 64."""
    source, spreadsheet = readable.source, readable.spreadsheet
    today = today or datetime.now(UTC).date()
    ensure_schema(con)
    outcome = ImportOutcome(file=str(path))
    unnumbered = _source_relation(source, with_lines=False, con=con)
    con.register("history_roster_accounts", _roster_accounts_table(roster))
    try:
        with transaction(con):
            had_imports = warehouse_has_imports(con)
            import_id = _next_import_id(con)
            try:
                outcome.rows_read = _data_rows(source)
                if not outcome.rows_read:
                    # Recorded as an import of 0 rows, exit 0, moved to imported/ unsaid.
                    raise HistoryFileError(path, NO_DATA_ROWS)
                bulk_rows = None
                typed = not spreadsheet and source.suffix.lower() == ".csv"
                sniffed = _sniff(source) if typed else None
                # Read as text alone: a spreadsheet's CSV, or a program's whose counts hold
                # decimals (the typed reader takes 64.000 for 64).
                text_only = spreadsheet or _counts_with_decimals(source, sniffed)
                if not text_only:
                    bulk_rows = _bulk_insert(
                        con, source, import_id, today, outcome.rows_read, sniffed
                    )
                # Loaded by the fast path, whose keys hold the summary's counts.
                keyed = bulk_rows is not None
                if bulk_rows is None and not text_only:
                    con.execute("delete from raw.imported_metrics where import_id = ?", [import_id])
                    inserted = con.execute(
                        f"""
                        insert into raw.imported_metrics (import_id, platform, snapshot_date,
                            account_handle, followers, following, posts)
                        select $import_id, platform_key, snapshot_date, handle_resolved,
                            followers_n, following_n, posts_n
                        from ({_validated_sql(unnumbered)})
                        where error_field is null
                        """,
                        {"import_id": import_id, "today": today, "platforms": list(PLATFORMS)},
                    ).fetchone()
                    bulk_rows = int(inserted[0]) if inserted else 0
            except duckdb.Error as exc:
                if is_warehouse_fault(exc):
                    # The warehouse's or the machine's (a full disk, no memory), not the
                    # file's: raised, so Airflow retries and the file stays in the inbox.
                    raise
                where = None
                if source.suffix.lower() == ".csv":
                    where = _csv_problem(source, readable.lines_above)
                reason = where or f"cannot be parsed ({first_line(exc)})"
                raise HistoryFileError(path, reason) from exc
            outcome.rows_loaded = bulk_rows or 0
            if bulk_rows is None or bulk_rows != outcome.rows_read:
                # The numbered text pass decides: it names every bad row and loads exactly
                # the rows it finds valid (the fast pass skipped unparsable lines unseen);
                # a spreadsheet's CSV is read by it alone.
                con.execute("delete from raw.imported_metrics where import_id = ?", [import_id])
                _diagnose(con, readable, today, outcome)
                keyed = False
                loaded = con.execute(
                    """
                    insert into raw.imported_metrics (import_id, platform, snapshot_date,
                        account_handle, followers, following, posts)
                    select $import_id, platform_key, snapshot_date, handle_resolved,
                        followers_n, following_n, posts_n
                    from history_staged where error_field is null
                    """,
                    {"import_id": import_id},
                ).fetchone()
                outcome.rows_loaded = int(loaded[0]) if loaded else 0
            if not outcome.rows_read:
                # Rows of empty cells below the header are no rows: nothing else was there.
                raise HistoryFileError(path, NO_DATA_ROWS)
            summary = con.execute(
                _summary_sql(today, keyed=keyed), {} if keyed else {"import_id": import_id}
            ).fetchone()
            assert summary is not None
            outcome.first_date, outcome.last_date = summary[0], summary[1]
            outcome.platforms = list(summary[2] or [])
            outcome.rows_repeating_a_day, outcome.rows_for_api_days = summary[3], summary[4]
            if had_imports:
                # The newest import of an account and day wins: re-importing a file, or a
                # corrected one, replaces instead of duplicating. Handles are matched in
                # any case, as a file's are: a roster corrected from joekaeser to JoeKaeser
                # stores the new spelling, and the day held both.
                con.execute(
                    """
                    delete from raw.imported_metrics as older
                    using raw.imported_metrics as newer
                    where newer.import_id = $import_id
                        and older.import_id < $import_id
                        and older.platform = newer.platform
                        and lower(older.account_handle) = lower(newer.account_handle)
                        and older.snapshot_date = newer.snapshot_date
                    """,
                    {"import_id": import_id},
                )
            con.execute(
                "insert into raw.history_imports values (?, ?, ?, ?, ?, ?, ?)",
                [
                    import_id,
                    str(recorded_as or path),
                    outcome.rows_read,
                    outcome.rows_loaded,
                    outcome.rows_rejected,
                    # When the rows are recorded, next to the commit (builds go by the
                    # import's number, not by this time: dbt_runner.plan_build).
                    loaded_at or datetime.now(UTC),
                    is_synthetic,
                ],
            )
            if outcome.rows_rejected:
                # Before the commit: a quarantine folder it cannot write (a path under a
                # file, a full disk) rolls the import back, where the rows were committed
                # and the rows rejected said nowhere.
                outcome.quarantine_path = str(_quarantine(con, path, quarantine_dir, outcome))
    except BaseException:
        # A rolled-back import leaves no report of it.
        if outcome.quarantine_path:
            shutil.rmtree(outcome.quarantine_path, ignore_errors=True)
        raise
    finally:
        con.execute("drop table if exists history_staged")
        con.execute("drop table if exists history_keys")
        con.unregister("history_roster_accounts")
    return outcome


def _summary_sql(today: date, *, keyed: bool = False) -> str:
    """The import ``$import_id``'s first and last day, its platforms, the rows repeating an
    account's day of the file, and the days of it the API already observed (counted as
    dbt's ``int_account_metrics_deduplicated`` keeps its rows). An account's days are the
    bits of a bitstring (counting distinct keys took a 5-million-row import a second
    more); ``keyed``: read from ``history_keys``, which the fast path (:func:`_bulk_insert`)
    fills with each key as written, else in one pass over the rows. The API's rows are read
    for the import's accounts and days alone."""
    if keyed:
        accounts = """
            select platform_key as platform, handle_resolved as account_handle,
                sum(row_count) as row_count,
                min(first_day) as first_day, max(last_day) as last_day,
                bit_or(days_given) as days_given, any_value(bits_from) as bits_from
            from history_keys
            group by platform_key, handle_resolved
        """
    else:
        today_sql = f"date {quote_literal(today.isoformat())}"
        accounts = f"""
            select platform, account_handle, count(*) as row_count,
                min(snapshot_date) as first_day, max(snapshot_date) as last_day,
                bitstring_agg(
                    snapshot_date - {_EARLIEST_DAY}, 0, {today_sql} - {_EARLIEST_DAY}
                ) as days_given,
                {_EARLIEST_DAY} as bits_from
            from raw.imported_metrics
            where import_id = $import_id
            group by platform, account_handle
        """
    return f"""
        with accounts as materialized ({accounts})

        select
            (select min(first_day) from accounts),
            (select max(last_day) from accounts),
            (select list(distinct platform order by platform) from accounts),
            (select coalesce(sum(row_count - bit_count(days_given)), 0) from accounts),
            (
                select count(distinct (
                    metrics.platform, lower(metrics.account_handle), metrics.snapshot_date
                ))
                from raw.platform_metrics as metrics
                inner join accounts
                    on metrics.platform = accounts.platform
                    and lower(metrics.account_handle) = lower(accounts.account_handle)
                where metrics.snapshot_date between (select min(first_day) from accounts)
                        and (select max(last_day) from accounts)
                    and metrics.snapshot_date between accounts.first_day and accounts.last_day
                    and (
                        metrics.account_status = 'ok'
                        or (metrics.account_status = 'protected' and metrics.followers is not null)
                    )
                    and get_bit(
                        accounts.days_given,
                        cast(metrics.snapshot_date - accounts.bits_from as integer)
                    ) = 1
            )
    """


def _diagnose(
    con: duckdb.DuckDBPyConnection,
    readable: Readable,
    today: date,
    outcome: ImportOutcome,
) -> None:
    """Number the rows of the file read (:func:`_readable_csv`: what is read of
    ``outcome.file``, and the lines left out above its header) into ``history_staged`` and
    name every rejected one."""
    source, lines_above, spreadsheet = readable
    try:
        numbered = _validated_sql(
            _source_relation(source, with_lines=True, spreadsheet=spreadsheet, con=con)
        )
        con.execute(
            f"create or replace temp table history_staged as {numbered}",
            {"today": today, "platforms": list(PLATFORMS)},
        )
    except duckdb.Error as exc:
        if is_warehouse_fault(exc):
            raise
        # A row wider than the rows the reader sniffed its columns from, far down a file.
        reason = _csv_problem(source, lines_above) if source.suffix.lower() == ".csv" else None
        raise HistoryFileError(source, reason or f"cannot be parsed ({first_line(exc)})") from exc
    counts = con.execute(
        "select count(*), count(*) filter (where error_field is null) from history_staged"
    ).fetchone()
    assert counts is not None
    outcome.rows_read, outcome.rows_loaded = int(counts[0]), int(counts[1])
    outcome.rows_rejected = outcome.rows_read - outcome.rows_loaded
    if outcome.rows_rejected:
        if source.suffix.lower() == ".csv":
            _number_rejected_by_line(con, source, lines_above)
        outcome.errors = _row_errors(con, outcome.file, today)


def _number_rejected_by_line(
    con: duckdb.DuckDBPyConnection, source: Path, lines_above: int
) -> None:
    """Give each rejected row of ``history_staged`` the line of ``source`` it starts on
    (plus ``lines_above``, the lines of the user's file left out above the header).
    DuckDB numbers records (the header's line plus the record's number), but it skips
    blank lines, and a quoted cell may hold line breaks: each would name the rows below
    it a line short (:func:`~social_leadership.intake.record_start_lines`, up to the last
    rejected record)."""
    staged = con.execute(
        "select distinct line from history_staged where error_field is not null"
    ).fetchall()
    # Record numbers: the header is line 1 (the line DuckDB numbers from).
    with source.open(encoding="utf-8-sig", newline="") as handle:
        found = record_start_lines(handle, 1, ",", [int(line) - 1 for (line,) in staged])
    starts = {record + 1: start + lines_above for record, start in found.items()}
    moved = pa.table(
        {"record_line": list(starts), "file_line": list(starts.values())},
        schema=pa.schema([("record_line", pa.int64()), ("file_line", pa.int64())]),
    )
    con.register("history_file_lines", moved)
    try:
        con.execute(
            """
            update history_staged set line = lines.file_line
            from history_file_lines as lines
            where history_staged.line = lines.record_line
                and history_staged.error_field is not null
            """
        )
    finally:
        con.unregister("history_file_lines")


def _last_named_column(header: Sequence[str]) -> int:
    """The position of the header's last cell naming a column (-1 for none): a
    spreadsheet's header may end in empty cells, under which no value belongs."""
    return max((i for i, cell in enumerate(header) if cell.strip()), default=-1)


def _csv_problem(source: Path, lines_above: int) -> str | None:
    """Where a CSV the reader cannot parse goes wrong, read by the standard's rules (a
    quote opened and never closed, text after a closing quote, a row with values past the
    header's columns further down than the reader looked), or None."""
    start = 1
    named = None
    try:
        with source.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            for record in reader:
                if named is None:
                    named = _last_named_column(record)
                elif any(cell.strip() for cell in record[named + 1 :]):
                    return (
                        f"cannot be read as CSV: the row on line {start + lines_above} has "
                        "more values than the header has columns: a value holding the "
                        "delimiter, such as 64,000, must be quoted or written without it"
                    )
                start = reader.line_num + 1
    except csv.Error as exc:
        reason = UNCLOSED_QUOTE if "end of data" in str(exc) else str(exc)
        return f"cannot be read as CSV: the row on line {start + lines_above}: {reason}"
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _roster_accounts_table(roster: Roster) -> pa.Table:
    """The roster's accounts keyed for matching, plus an ``@``-prefixed alias key per
    account on a platform whose stored handles drop the ``@`` people write before them
    (its connector's ``drops_at_sign``): a join then accepts ``@JoeKaeser`` without
    string work on every row of the file. Aliases are marked so that resolving an
    executive's account does not find it twice."""
    accounts = roster.accounts
    aliased = [a for a in accounts if connector_class(a.platform).drops_at_sign]
    keyed = [*accounts, *aliased]
    handle_keys = [a.account_handle.lower() for a in accounts]
    handle_keys += ["@" + a.account_handle.lower() for a in aliased]
    return pa.table(
        {
            "executive_id": [a.executive_id for a in keyed],
            "platform": [a.platform for a in keyed],
            "account_handle": [a.account_handle for a in keyed],
            "handle_key": handle_keys,
            "is_alias": [False] * len(accounts) + [True] * len(aliased),
        },
        schema=pa.schema(
            [
                ("executive_id", pa.string()),
                ("platform", pa.string()),
                ("account_handle", pa.string()),
                ("handle_key", pa.string()),
                ("is_alias", pa.bool_()),
            ]
        ),
    )


def _count_said(column: str) -> str:
    """SQL: why the count in ``column`` was refused."""
    grouped = (
        " is a count with three decimals, or one with a thousands separator (a program's CSV "
        "reads 64.000 as 64, German Excel as 64000): write it without separators"
    )
    comma_grouped = (
        " is a count with a thousands separator, which is not read in a UTF-8 file "
        "separated by ',': write it without (format the column as a whole number, 0)"
    )
    scientific = (
        " is a count in scientific notation, which a spreadsheet rounds: format the column "
        "as a whole number (0) and save the file again"
    )
    return (
        f"case when regexp_full_match(trim({column}), {_DOT_GROUPED}) "
        f"then {quote_literal(chr(39))} || {column} || {quote_literal(chr(39) + grouped)} "
        f"when regexp_full_match(trim({column}), {_COMMA_GROUPED}) "
        f"then {quote_literal(chr(39))} || {column} || {quote_literal(chr(39) + comma_grouped)} "
        f"when regexp_full_match(trim({column}), {_SCIENTIFIC}) "
        f"then {quote_literal(chr(39))} || {column} || {quote_literal(chr(39) + scientific)} "
        f"else {quote_literal(chr(39))} || {column} "
        f"|| {quote_literal(chr(39) + ' is not a whole number >= 0')} end"
    )


_ERROR_MESSAGES = f"""
    case error_field
        when 'row' then
            'has more values than the header has columns (''' || extra_value
            || ''' past the last): a value holding the delimiter, such as 64,000, '
            || 'must be quoted or written without it'
        when 'platform' then
            case when platform is null then 'is empty'
            when lower(trim(platform)) = 'platform'
                then 'is ''platform'': the header line again (a second file pasted below?)'
            else '''' || platform || ''' is not a known platform (one of '
                || array_to_string($platforms, ', ')
                || case when lower(trim(platform)) = 'twitter' then '; Twitter is x' else '' end
                || ')' end
        when 'date' then
            case when date is null then 'is empty'
            when snapshot_date is null
                then '''' || date || ''' is not a date (YYYY-MM-DD or YYYY/MM/DD, a time '
                    || 'after it allowed, or DD.MM.YYYY)'
            when snapshot_date < {_EARLIEST_DAY}
                then date || ' is before ' || {_EARLIEST_DAY} || ', before any platform counted '
                || '(a year of two digits?): write YYYY-MM-DD'
            else date || ' is after today (' || $today || '): counts cannot come from the future'
            end
        when 'followers' then
            case when followers is null then 'is empty'
            else {_count_said("followers")} end
        when 'following' then {_count_said("following")}
        when 'posts' then {_count_said("posts")}
        when 'account_handle' then
            case when account_handle is null
                then 'neither account_handle nor executive_id is given'
            else '''' || account_handle || ''' is not one of the roster''s ' || platform_key
                || ' accounts' end
        when 'executive_id' then
            case when handle_executive <> lower(executive_id)
                then 'account ''' || account_handle || ''' is '
                    || handle_executive || '''s in the roster, not ''' || executive_id
                    || ''''
            when executive_accounts > 1
                then 'executive ''' || executive_id || ''' has ' || executive_accounts || ' '
                    || platform_key || ' accounts in the roster (' || executive_handles
                    || '): name the account_handle'
            when not executive_known
                then 'executive ''' || executive_id || ''' has no account of any platform '
                    || 'in the roster (not on it, or on it without accounts)'
            else 'executive ''' || executive_id || ''' has no ' || platform_key
                || ' account in the roster' end
    end
"""


def _row_errors(con: duckdb.DuckDBPyConnection, file: str, today: date) -> list[RowIssue]:
    rows = con.execute(
        f"""
        select line, error_field, {_ERROR_MESSAGES} as message, platform_key, account_handle
        from history_staged where error_field is not null order by line
        """,
        {"today": today, "platforms": list(PLATFORMS)},
    ).fetchall()
    invalid_handle: dict[tuple[str, str], str | None] = {}
    errors = []
    for line, name, message, platform, handle in rows:
        if name == "account_handle" and handle is not None:
            # A handle no account of the platform can have (columns or platforms swapped)
            # deserves a clearer word than "not in the roster".
            key = (platform, handle)
            if key not in invalid_handle:
                try:
                    stored = normalize_handle(platform, handle)
                    # The roster reads a link to the profile; a history file, the handle.
                    invalid_handle[key] = (
                        f"{handle!r} is a link to {stored!r}'s profile: write the handle, "
                        "as the roster has it"
                        if "/" in handle
                        else None
                    )
                except ValueError as exc:
                    invalid_handle[key] = str(exc)
            message = invalid_handle[key] or message
        errors.append(RowIssue(file, int(line), str(name), str(message)))
    return errors


# The columns of a history file as the import reads them, in the order people read them.
_FILE_COLUMNS = (
    "executive_id",
    "account_handle",
    "platform",
    "date",
    "followers",
    "following",
    "posts",
)


def _report(outcome: ImportOutcome) -> dict[str, object]:
    return {
        "file": outcome.file,
        "rows_read": outcome.rows_read,
        "rows_loaded": outcome.rows_loaded,
        "rows_rejected": outcome.rows_rejected,
        "errors": [{"row": e.row, "field": e.column, "message": e.reason} for e in outcome.errors],
    }


def _quarantine(
    con: duckdb.DuckDBPyConnection, path: Path, quarantine_dir: Path, outcome: ImportOutcome
) -> Path:
    """Keep the rejected rows beside a report naming row, field and reason.

    The rows are as the file had them (a text file's: its header and every cell, however
    the import read them, :func:`_write_rejected_lines`; a Parquet file's: the columns
    read), except that a cell a spreadsheet would run as a formula is neutralised: people
    open this file, and its content came from outside."""
    folder = QuarantineFolder(quarantine_dir, "history", path.name)
    try:
        if path.suffix.lower() in TEXT_SUFFIXES and _write_rejected_lines(folder, path, outcome):
            folder.write_report(_report(outcome))
            return folder.path
        folder.copy_rejected_rows(
            con,
            "select * from history_staged where error_field is not null",
            as_is=("line", "error_field"),
            from_file=_FILE_COLUMNS,
            order_by="line",
        )
        folder.write_report(_report(outcome))
    except BaseException:
        # Half written (a full disk): the import is rolled back, and leaves no report.
        shutil.rmtree(folder.path, ignore_errors=True)
        raise
    return folder.path


def _write_rejected_lines(folder: QuarantineFolder, path: Path, outcome: ImportOutcome) -> bool:
    """Write the rejected rows of the text file ``path`` as it has them: ``line``,
    ``error_field`` and ``error`` first, then the file's own header and cells (a column the
    import does not read, a value split by an unquoted delimiter: ``64,000`` in its two
    cells, not the 64 read), as the roster's are kept. False when the file cannot be read
    so again (it changed): the caller keeps the rows as read."""
    by_line: dict[int, list[RowIssue]] = {}
    for error in outcome.errors:
        by_line.setdefault(error.row, []).append(error)
    last = max(by_line, default=0)

    def rejected() -> Iterator[tuple[int, list[str]]]:
        encoding = detect_encoding(path)
        with path.open(encoding=encoding, newline="") as handle:
            header = find_header(handle, _names_day_and_followers)
        with path.open(encoding=encoding, newline="") as handle:
            for _ in range(header.number - 1):
                handle.readline()
            reader = csv.reader(handle, delimiter=header.delimiter)
            yield 0, next(reader, [])
            end = header.number - 1 + reader.line_num
            for cells in reader:
                start, end = end + 1, header.number - 1 + reader.line_num
                if start in by_line:
                    yield start, cells
                if end >= last:
                    break

    try:
        width = max(len(cells) for _, cells in rejected())
        names: list[str] = []
        rows = []
        for line, cells in rejected():
            if not line:
                names = [*cells, *(f"column_{n}" for n in range(len(cells) + 1, width + 1))]
                continue
            issues = by_line.pop(line)
            rows.append(
                (
                    line,
                    ", ".join(dict.fromkeys(issue.column for issue in issues)),
                    "; ".join(f"{issue.column}: {issue.reason}" for issue in issues),
                    *cells,
                    *[""] * (width - len(cells)),
                )
            )
    except (OSError, UnicodeError, csv.Error, HeaderLineError):
        return False
    if by_line:
        return False  # rows not found where the import found them
    folder.write_rejected_rows(["line", "error_field", "error", *names], rows)
    return True


def _quarantine_file(path: Path, quarantine_dir: Path, error: HistoryFileError) -> ImportOutcome:
    """Move a file that cannot be imported at all into quarantine, beside a report saying
    why (row 0: the file as a whole)."""
    outcome = ImportOutcome(file=str(path), errors=[RowIssue(str(path), 0, "*", error.reason)])
    folder = QuarantineFolder(quarantine_dir, "history", path.name)
    folder.write_report(_report(outcome))
    folder.keep(path)
    outcome.quarantine_path = str(folder.path)
    return outcome


def _next_import_id(con: duckdb.DuckDBPyConnection) -> int:
    """The next import number: the sequence's, or on a DuckLake (no sequences) one past the
    highest used, which holds as imports run one at a time (the warehouse pool)."""
    if is_lake_connection(con):
        row = con.execute(
            "select greatest((select max(import_id) from raw.history_imports), "
            "(select max(import_id) from raw.imported_metrics))"
        ).fetchone()
        return int(row[0] or 0) + 1 if row else 1
    row = con.execute("select nextval('raw.history_import_ids')").fetchone()
    assert row is not None
    return int(row[0])


def warehouse_has_imports(con: duckdb.DuckDBPyConnection) -> bool:
    ensure_schema(con)
    row = con.execute("select exists (select 1 from raw.imported_metrics)").fetchone()
    return bool(row and row[0])


# Files an inbox holds that nobody dropped to import: a partial upload or download (it
# becomes the file when done), a system's own.
_IN_TRANSIT = (".part", ".partial", ".filepart", ".crdownload", ".download", ".tmp", "~")
_SYSTEM_FILES = ("thumbs.db", "desktop.ini")


def _not_a_drop(name: str) -> bool:
    """Whether a file in the inbox is left alone: a hidden one (``.DS_Store``), an open
    workbook's lock file (``~$history.xlsx``), one still in transit, a system's own."""
    folded = name.casefold()
    return name.startswith((".", "~$")) or folded.endswith(_IN_TRANSIT) or folded in _SYSTEM_FILES


# The inbox's folders of the pipeline's own: the files imported, and the demo's generated
# history (tasks.import_history_task).
INBOX_OWN_FOLDERS = frozenset({"imported", "demo"})


def _in_order_of_arrival(inbox: Path) -> list[Path]:
    """The inbox's entries, the oldest modified first (then by name): of two exports of the
    same days, the newer is imported last and wins. By name alone, a browser's re-download,
    ``export (1).csv``, sorted before ``export.csv`` and the older file won."""

    def arrival(path: Path) -> tuple[int, str]:
        try:
            return path.stat().st_mtime_ns, path.name
        except OSError:
            return 0, path.name

    return sorted(inbox.iterdir(), key=arrival)


def import_folder(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    roster: Roster,
    quarantine_dir: Path,
    *,
    settle_seconds: int = 0,
) -> list[ImportOutcome]:
    """Import every history file dropped into ``inbox`` and move it to ``inbox/imported/``.

    A file changed less than ``settle_seconds`` ago (``SLW_INTAKE_SETTLE_SECONDS``) may still
    be being written: it is left in the inbox for the next run, saying so in the log. The
    move comes after the commit; a crash in between only imports the file again, which
    replaces the same rows.
    """
    outcomes: list[ImportOutcome] = []
    if not inbox.is_dir():
        return outcomes
    done = inbox / "imported"
    now = time.time()
    for path in _in_order_of_arrival(inbox):
        if path.is_dir() and path.name not in INBOX_OWN_FOLDERS and not _not_a_drop(path.name):
            # A folder is not looked into: said, each run, not left there unsaid.
            log.warning(
                "history inbox: %s is a folder, not looked into: move its files into %s",
                path,
                inbox,
            )
            continue
        if not path.is_file() or _not_a_drop(path.name):
            continue
        age = modified_within([path], settle_seconds, now)
        if age is not None:
            # In the log and on a local run's console (slw run): said, not only waited.
            step(f"history file {left_to_settle(path, age, settle_seconds)}")
            continue
        if path.suffix.lower() not in HISTORY_SUFFIXES:
            # Left in the inbox, it waited there for good, said nowhere.
            error = HistoryFileError(
                path,
                f"is no history file ({path.suffix or 'no extension'}): save it as CSV UTF-8 "
                "(.csv), tab-separated text (.txt, .tsv) or Parquet (.parquet) and drop that "
                "into the inbox",
            )
            log.error("history file rejected: %s", error)
            outcomes.append(_quarantine_file(path, quarantine_dir, error))
            continue
        # Stamped, so a file dropped again under the same name never overwrites the first;
        # named before the import, which records where the file is kept.
        kept = done / stamped_name(path.name)
        try:
            outcome = import_history(con, path, roster, quarantine_dir, recorded_as=kept)
        except HistoryFileError as exc:
            log.error("history file rejected: %s", exc)
            outcomes.append(_quarantine_file(path, quarantine_dir, exc))
            continue
        # The task log names the first rejected rows (the quarantine's report, every one).
        for error in outcome.errors[:20]:
            log.warning("history row skipped: %s", error)
        done.mkdir(parents=True, exist_ok=True)
        move_file(path, kept)
        outcomes.append(outcome)
    return outcomes
