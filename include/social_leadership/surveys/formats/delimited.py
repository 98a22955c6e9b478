"""CSV survey files (also ``.csv.gz``, and tab-separated text: ``.tsv``, ``.tab``, Excel's
``.txt``): ``,`` ``;`` or tab (or the delimiter Excel's first
line ``sep=;`` names); UTF-8 with or without BOM, UTF-16, Windows-1252 as German Excel
writes it (Latin-1 for a file holding a byte Windows-1252 leaves undefined), Mac Roman as
Mac Excel writes it, or DOS Latin-1 (code page 850) as Excel's "CSV (MS-DOS)" writes it.

Two readers, which agree on every cell: the csv module reads a published-aggregate table
as text (:func:`read_table`), and pyarrow's CSV reader reads the declared columns of a
microdata file (:func:`open_columns`), as text for the staged path or with its numbers
typed for the one-pass load. A cell longer than the cell limit in force is refused by row
and column without being held.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import itertools
import re
import zlib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from social_leadership.formatting import first_line
from social_leadership.intake import (
    UNCLOSED_QUOTE,
    UTF8_WITH_CP1252,
    ClosedQuoteReader,
    HeaderLineError,
    RowIssue,
    detect_encoding,
    find_header,
    holds_byte,
    open_binary,
    record_start_lines,
    workbook_kind,
)
from social_leadership.surveys import common
from social_leadership.surveys.limits import IntakeLimits, limits_in_force

KIND = "CSV"
GZIP_KIND = "gzip-compressed CSV"
TAB_KIND = "tab-separated text"
# Excel's "Text (Tab delimited)" and "Unicode Text" (UTF-16) are named ``.txt``, as notes
# and READMEs are: such a file is data when its first line holding anything has two tabs
# or more (a table of three columns at least) and two cells holding something (a text
# indented by tabs has one); the first kilobytes tell.
_SNIFF_BYTES = 1 << 16
_TABS_IN_A_TABLE = 2
# A block must hold a whole row: the staged path, which has no speed to keep, reads large
# blocks, so a row with a megabyte of free text is still read.
STAGED_BLOCK_BYTES = 64 << 20
_CHUNK = 1 << 20
_CSV_LIMIT_ERROR = "field larger than field limit"
# pyarrow decodes UTF-8 itself (and drops a BOM); other encodings it transcodes.
_PYARROW_ENCODINGS = {
    "utf-8": "utf8",
    "utf-8-sig": "utf8",
    "utf-16": "utf-16",
    "cp1252": "cp1252",
    "latin-1": "latin1",
    "mac_roman": "mac_roman",
    "cp850": "cp850",
    UTF8_WITH_CP1252: UTF8_WITH_CP1252,
}


# The filled lines a header may sit below (title lines), as the published header search
# reads them: "Unicode Text" saved from a sheet with a title above its table.
_LINES_ABOVE_A_HEADER = 50
# Below a title, a table's header and first row: cells enough for the fewest columns a
# survey file has (source, wave, scope, question, value; respondent, country, an answer),
# where a notes file's lines aligned by tabs hold two (a name and what it is).
_CELLS_BELOW_A_TITLE = 3


def is_tab_separated(path: Path) -> bool:
    """Whether ``path`` is cells separated by tabs: its first line that holds anything, or,
    below title lines, two lines in a row of as many cells, three or more filled."""
    with open_binary(path) as handle:
        head = handle.read(_SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("latin-1")
    filled = [line for line in text.splitlines() if line.strip()][:_LINES_ABOVE_A_HEADER]
    if filled and _tab_row(filled[0]):
        return True
    return any(
        _tab_row(line, _CELLS_BELOW_A_TITLE)
        and _tab_row(after, _CELLS_BELOW_A_TITLE)
        and line.count("\t") == after.count("\t")
        for line, after in itertools.pairwise(filled)
    )


def _tab_row(line: str, filled: int = 2) -> bool:
    cells = line.split("\t")
    # Tabs between cells, not a text indented by them.
    return len(cells) > _TABS_IN_A_TABLE and sum(bool(cell.strip()) for cell in cells) >= filled


def open_text(path: Path, encoding: str) -> IO[str]:
    """The file as text, split into lines at ``\\n``, ``\\r`` and ``\\r\\n`` only (as the csv
    module and pyarrow split them). Time is linear in a line's length: codecs' stream
    readers re-scan a growing line for every chunk they add to it."""
    return io.TextIOWrapper(open_binary(path), encoding=encoding, newline="")


@contextmanager
def _csv_cell_limit() -> Iterator[None]:
    """The csv module stops a cell at the cell limit in force: it builds a cell 4 bytes a
    character, so a long one would cost four times its length before it could be refused."""
    previous = csv.field_size_limit(limits_in_force().max_cell_chars)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _long_cell_position(line: str, delimiter: str, limit: int) -> int | None:
    """Which cell of a one-line CSV row is longer than ``limit`` (0-based), reading quotes as
    the csv module does; None if none is. Jumps between delimiters and quotes in C, so a
    line of many megabytes is neither copied nor walked a character at a time."""
    index, start, quoted = 0, 0, False
    for match in re.finditer(f'["\r\n{re.escape(delimiter)}]', line):
        if match.group() == '"':
            quoted = not quoted
        elif not quoted:
            if match.start() - start > limit:
                return index
            if match.group() != delimiter:
                return None
            index, start = index + 1, match.end()
    return index if len(line) - start > limit else None


def _long_cell_issue(
    file: str, row: int, line: str | None, delimiter: str, header: list[str]
) -> RowIssue:
    """The csv module refused a cell over the limit in row ``row``; ``line`` is the row's
    text when it is one line (the column is then found), else None."""
    limits = limits_in_force()
    index = None if line is None else _long_cell_position(line, delimiter, limits.max_cell_chars)
    column = "*" if index is None else common.column_name(header, index)
    return RowIssue(file, row, column, limits.cell_too_long(None))


class _LastLine:
    """Lines of a text file, keeping the one last handed out (to say where a cell was)."""

    def __init__(self, text: IO[str]):
        self._text = text
        self.last = ""

    def __iter__(self) -> _LastLine:
        return self

    def __next__(self) -> str:
        self.last = next(self._text)
        return self.last


def read_csv_header(
    path: Path, encoding: str, wanted: list[str] | None = None
) -> tuple[list[str], str, int]:
    """The header cells, the delimiter and the header's line of a CSV file: its first line
    holding every ``wanted`` column (below title lines, as a sheet's), else its first
    holding two of them (whose report then names the others), else its first line that is
    not blank, below Excel's ``sep=;`` line if there is one; raise SurveyValidationError
    for a header cell over the cell limit."""
    if not wanted:
        return _find_header(path, encoding, _FIRST_LINE)

    def holding(least: int) -> Callable[[list[str]], bool]:
        return lambda cells: len(common.find_columns(cells, wanted)) >= least

    search = common.HeaderSearch(
        wanted, is_header=holding(min(2, len(wanted))), fits=holding(len(wanted))
    )
    return _find_header(path, encoding, search)


# What takes the first line that is not blank as the header.
_FIRST_LINE = common.HeaderSearch([], None, lambda cells: True)


def _find_header(
    path: Path, encoding: str, search: common.HeaderSearch
) -> tuple[list[str], str, int]:
    """The header cells of a table, their delimiter and the header's line: the first of
    the first :data:`~.common.HEADER_SEARCH_DEPTH` lines that are not blank which
    ``search`` accepts (and fits, if one does: :class:`~.common.HeaderSearch`; title lines
    above it are skipped), else the first of them (whose report then says what it lacks):
    :func:`~social_leadership.intake.find_header`. Excel's ``sep=;`` line gives the
    delimiter of every line below it."""
    with open_text(path, encoding) as text, _csv_cell_limit():
        try:
            found = find_header(
                text,
                search.accepts,
                fits=search.fits,
                limit=common.HEADER_SEARCH_DEPTH,
            )
        except HeaderLineError as exc:
            if not str(exc.__cause__).startswith(_CSV_LIMIT_ERROR):
                raise
            issue = _long_cell_issue(path.name, exc.number, exc.line, exc.delimiter, [])
            raise common.SurveyValidationError([issue]) from None
    # The line it ends on: a cell's line breaks (Alt+Enter) put the header on more than one.
    return found.cells, found.delimiter, found.end


def read_header(path: Path, search: common.HeaderSearch) -> list[str]:
    """The header cells: the first line ``search`` accepts, below any title lines."""
    return _find_header(path, detect_encoding(path), search)[0]


def read_table(path: Path, search: common.HeaderSearch) -> common.TextTable:
    """Read a CSV file as text, its header found as :func:`read_header` finds it (and no
    more when ``search`` leaves the rows of that header unread); raise
    SurveyValidationError listing every cell over the cell limit, by row and column, or
    else every row with more fields than the header (a filled cell past the header's last:
    ``76,5`` unquoted in a comma-separated file; the empty trailing cells a spreadsheet
    writes, ``;;``, are no more fields, nor a row that stops short, and a row of one filled
    cell is not counted as one with too many fields: a note beside the table)."""
    encoding = detect_encoding(path)
    found_header, delimiter, header_line = _find_header(path, encoding, search)
    if search.leaves_unread(found_header):
        # Its reader says what the header lacks; 300 MB of respondent answers without their
        # sidecar took 4 GB of memory, read row by row, to be told so.
        return common.TextTable(found_header, [], header_line)
    too_long: list[RowIssue] = []
    # A quote never closed: the file is refused, naming the row (read on, its lines below
    # would be one cell).
    unclosed: list[RowIssue] = []
    with open_text(path, encoding) as text, _csv_cell_limit():
        lines = _LastLine(text)
        reader = ClosedQuoteReader(lines, delimiter=delimiter)
        header: list[str] = []
        rows: list[tuple[int, list[str]]] = []
        # The rows that go on over more lines (a line break in a quoted cell): first line
        # -> lines.
        spans: dict[int, int] = {}
        first_line = 1  # of the row being read
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if not str(exc).startswith(_CSV_LIMIT_ERROR):
                    raise
                line = lines.last if reader.line_num == first_line else None
                too_long.append(
                    _long_cell_issue(path.name, reader.line_num, line, delimiter, header)
                )
                first_line = reader.line_num + 1
                continue
            start, first_line = first_line, reader.line_num + 1
            if reader.unclosed:
                unclosed.append(RowIssue(path.name, start, "*", UNCLOSED_QUOTE))
            if not header:
                if reader.line_num >= header_line and any(cell.strip() for cell in cells):
                    header = found_header
                continue
            if any(cell.strip() for cell in cells):
                # A row is named by the line it starts on, as an editor shows it.
                rows.append((start, [cell.strip() for cell in cells]))
                if reader.line_num > start:
                    spans[start] = reader.line_num - start + 1
    if too_long or unclosed:
        raise common.SurveyValidationError(common.cap_issues(too_long + unclosed, path.name))
    misfits = [
        RowIssue(path.name, line, "*", f"has {filled} fields; the header has {len(header)}")
        for line, cells in rows
        if any(cells[len(header) :]) and common.lone_cell(cells) is None
        for filled in [max(i + 1 for i, cell in enumerate(cells) if cell)]
    ]
    if misfits:
        # Alone, as for microdata (open_columns): the other rows' cells may be shifted too.
        raise common.SurveyValidationError(common.cap_issues(misfits, path.name))
    return common.TextTable(header, rows, header_line, spans)


def parse_failure(exc: BaseException) -> str:
    """pyarrow's reason without the offending row's text (which may hold an id)."""
    message = first_line(exc)
    prefix = "CSV parse error: "
    if message.startswith(prefix):
        message = prefix + message[len(prefix) :].split(": ", 1)[0]
    return f"cannot be read as CSV ({message})"


@dataclass(frozen=True)
class OpenedColumns:
    """pyarrow's streaming reader of a file's wanted columns, each wanted column's name in
    its batches, and what the file was found to be: the header's line (the first data row
    is the line after it), its delimiter and its encoding."""

    reader: Any
    columns: dict[str, str]
    header_line: int
    delimiter: str
    encoding: str


def open_columns(
    path: Path,
    wanted: list[str],
    *,
    block_size: int,
    numeric: Collection[str] = (),
    bad_rows: list[RowIssue] | None = None,
    encoding: str | None = None,
) -> OpenedColumns:
    """pyarrow's streaming reader of the ``wanted`` columns (only those), both microdata load
    paths alike (:class:`OpenedColumns`). pyarrow numbers a file's rows below the header
    as records, passing over blank lines and line breaks inside quoted cells: its rows
    are the header's line plus the record's number (:func:`record_lines` finds their
    lines).

    ``numeric``: wanted columns parsed as numbers (a cell that is not a plain number fails
    the read); the others are text. ``bad_rows``: rows with another number of fields than
    the header are listed there, by line, and skipped; without it they fail the read.
    ``encoding``: when already detected.
    """
    import pyarrow.csv as pcsv

    encoding = encoding or detect_encoding(path)
    header, delimiter, header_line = read_csv_header(path, encoding, wanted)
    columns = common.position_names(
        common.declared_positions(path.name, header, wanted, header_line)
    )
    typed = {columns[name] for name in numeric}
    types = {name: pa.float64() if name in typed else pa.string() for name in columns.values()}

    def report(row: Any) -> str:
        assert bad_rows is not None
        bad_rows.append(
            RowIssue(
                path.name,
                int(row.number or 0),
                "*",
                f"has {row.actual_columns} fields; the header has {row.expected_columns}",
            )
        )
        return "skip"

    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(
                block_size=block_size,
                encoding=_PYARROW_ENCODINGS[encoding],
                # Line numbers of bad rows are only known to a single-threaded parse.
                use_threads=bad_rows is None,
                # Title lines, blank lines, Excel's sep=; line and the header itself.
                skip_rows=header_line,
                column_names=[f"c{i}" for i in range(len(header))],
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
                invalid_row_handler=report if bad_rows is not None else None,
            ),
            convert_options=pcsv.ConvertOptions(
                include_columns=list(types),
                column_types=types,
                # Only an empty cell: pyarrow checks every numeric cell against each null
                # spelling, and a list of the missing-value marks (common.MISSING_MARKS)
                # made the one-pass load a fifth slower. A mark fails the number parse
                # and sends the file to the staged path, which reads it as missing.
                null_values=[""],
                strings_can_be_null=False,
                # A file separated by semicolons (German, French Excel) writes decimals with
                # a comma: read so here, its numbers load in one pass. One written with a
                # point (1.5) fails the parse and takes the staged path, which reads each
                # file by the decimal mark it shows (staged._read_grouped_weights).
                decimal_point="," if delimiter == ";" else ".",
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        raise common.file_problem(path.name, parse_failure(exc)) from None
    return OpenedColumns(reader, columns, header_line, delimiter, encoding)


def unclosed_quote_issues(path: Path, opened: OpenedColumns, records: int) -> list[RowIssue]:
    """The rows of ``path`` whose quote is never closed, for a file pyarrow read as
    ``records`` records: pyarrow reads every line below such a quote into one cell, the
    rows there lost unseen when that column is not one read. Only a file with fewer records
    than lines below its header (a record going on over lines, as a line break in a cell
    makes too) is read row by row (:class:`~social_leadership.intake.ClosedQuoteReader`) to
    tell a quote left open from a line break in a cell. A file without a double quote
    (byte 0x22, the quote in every encoding read) has neither: its lines are not counted
    (a tenth of a large export's load)."""
    if not holds_byte(path, b'"') or records >= lines_below(path, opened):
        return []
    issues: list[RowIssue] = []
    with open_text(path, opened.encoding) as text, _csv_cell_limit():
        for _ in itertools.islice(text, opened.header_line):
            pass
        reader = ClosedQuoteReader(text, delimiter=opened.delimiter)
        while True:
            try:
                next(reader)
            except StopIteration:
                break
            except csv.Error:
                continue  # a cell over the cell limit on its own line: pyarrow says so
            if reader.unclosed:
                line = opened.header_line + reader.line_num
                issues.append(RowIssue(path.name, line, "*", UNCLOSED_QUOTE))
    return issues


def lines_below(path: Path, opened: OpenedColumns) -> int:
    """The lines of ``path`` below its header that are not blank (pyarrow reads none of
    these), counted in C: a file's lines end in ``\\n`` (``\\r\\n`` too), or, when it
    has none, in ``\\r`` (Mac Roman's). A run of three line ends or more counts a blank
    line short: the count is then high, which costs a row-by-row read, never a miss."""
    blocks = _blocks(path, opened.encoding)
    first = next(blocks, b"")
    end = b"\n" if b"\n" in first or not first else b"\r"
    # From the line below the header (its lines, and the title and blank lines above it,
    # in the first block: the header search reads no further).
    below = 0
    for _ in range(opened.header_line):
        below = first.find(end, below) + 1
        if not below:
            return 0
    runs = (end + end, b"\n\r\n") if b"\r\n" in first else (end + end,)
    lines = blank = 0
    carry = end  # the header's line end: a blank line right below it is one too
    for block in itertools.chain([first[below:]], blocks):
        if not block:
            continue
        lines += block.count(end)
        # Runs inside the block, and those across its start (the last two bytes before it).
        seam = carry + block[:2]
        blank += sum(
            block.count(run) + seam.count(run) - carry.count(run) - block[:2].count(run)
            for run in runs
        )
        carry = (carry + block)[-2:] if len(block) < 2 else block[-2:]
    lines += carry[-1:] not in (b"\n", b"\r")
    return lines - blank


def _blocks(path: Path, encoding: str) -> Iterator[bytes]:
    """The file's bytes in blocks of 16 MB, as UTF-8 for a UTF-16 file."""
    if encoding.startswith("utf-16"):
        with open_text(path, encoding) as text:
            yield from iter(lambda: text.read(1 << 22).encode("utf-8"), b"")
        return
    with open_binary(path) as handle:
        yield from iter(lambda: handle.read(1 << 24), b"")


def record_lines(path: Path, opened: OpenedColumns, records: Collection[int]) -> dict[int, int]:
    """The line each of the data ``records`` starts on (1 = the first record below the
    header), counted as pyarrow counts records: a blank line is none, and a record goes on
    over the line breaks inside its quoted cells. Reads the file up to the last record
    asked for; a record the csv module cannot read (a cell over the cell limit) ends the
    count, and the records after it are left out (``intake.record_start_lines``)."""
    with open_text(path, opened.encoding) as text, _csv_cell_limit():
        return record_start_lines(text, opened.header_line, opened.delimiter, records)


def as_lines(path: Path, opened: OpenedColumns) -> Callable[[list[RowIssue]], list[RowIssue]]:
    """What renumbers the issues of a file's rows, numbered as pyarrow numbers them (the
    header's line plus the record's number), by the line each row starts on."""

    def renumber(issues: list[RowIssue]) -> list[RowIssue]:
        records = {i.row - opened.header_line for i in issues if i.row > opened.header_line}
        if not records:
            return issues
        lines = record_lines(path, opened, records)
        return [
            dataclasses.replace(issue, row=lines.get(issue.row - opened.header_line, issue.row))
            for issue in issues
        ]

    return renumber


def read_columns(path: Path, wanted: list[str], sheet: str | None) -> common.DeclaredColumns:
    """The wanted columns as text, in any supported encoding; rows that do not have the
    header's number of fields are reported by line, and a file pyarrow cannot read at all
    by its reason."""
    bad_rows: list[RowIssue] = []
    opened = open_columns(path, wanted, block_size=STAGED_BLOCK_BYTES, bad_rows=bad_rows)
    failures: list[BaseException] = []
    schema = opened.reader.schema.append(pa.field(common.ROW_COLUMN, pa.int64()))
    records = [0]

    def counted() -> Iterator[pa.RecordBatch]:
        for batch in opened.reader:
            records[0] += batch.num_rows
            yield batch

    # Rows are numbered as pyarrow numbers them, from the one after the header (below any
    # title lines); a report gives the line each starts on (as_lines).
    batches = common.numbered_batches(
        counted(), schema, opened.header_line + 1, failures, failing=(pa.ArrowException,)
    )
    renumber = as_lines(path, opened)

    def finish() -> None:
        if failures:
            raise common.file_problem(path.name, parse_failure(failures[0]))
        # Alone, as a row with too many fields is: the rows below it cannot be read.
        unclosed = unclosed_quote_issues(path, opened, records[0] + len(bad_rows))
        if unclosed:
            raise common.SurveyValidationError(common.cap_issues(unclosed, path.name))
        if bad_rows:
            raise common.SurveyValidationError(renumber(bad_rows))

    return common.DeclaredColumns(batches, opened.columns, finish, renumber, opened.delimiter)


def check_text(path: Path, limits: IntakeLimits) -> None:
    """Refuse a spreadsheet workbook saved under a text name (``figures.csv``), saying so:
    read as text, it was bytes no encoding decodes."""
    workbook = workbook_kind(path)
    if workbook:
        raise common.file_problem(
            path.name,
            f"is {workbook}, not {KIND if path.suffix.lower() == '.csv' else TAB_KIND}: "
            "save it as CSV, or give it the workbook's name (.xlsx) to load its sheet",
        )


def expanded_size(path: Path, limit: int) -> tuple[int, str]:
    """A ``.csv.gz``'s size as it expands, counted no further than past ``limit``, and how
    a report says it."""
    size = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit and stream.read(1):
                return size, "expands to more than"
    return size, "expands to"


def check_gzip(path: Path, limits: IntakeLimits) -> None:
    """Decompress a ``.csv.gz`` in a streaming pass, within the file limit, before any
    parser does."""
    expanded = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                expanded += len(chunk)
                if expanded > limits.max_file_bytes:
                    reason = limits.file_too_large(expanded, "decompresses to more than")
                    raise common.file_problem(path.name, reason)
    except (OSError, EOFError, zlib.error) as exc:
        raise common.unreadable(path, GZIP_KIND, exc) from None
