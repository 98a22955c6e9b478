"""What every survey file shares: issues, hashing, decoding, table reading, quarantine.

Row numbers in issues are where a person finds the row: the line of a CSV file (the header
is line 1), the row of an XLSX sheet, the 1-based record of a Parquet file.
"""

from __future__ import annotations

import codecs
import csv
import errno
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from social_leadership.surveys.limits import limits_in_force

SIDECAR_SUFFIX = ".survey.json"
CSV_SUFFIXES = (".csv", ".csv.gz")
DATA_SUFFIXES = (*CSV_SUFFIXES, ".xlsx", ".parquet")
# How far down an XLSX sheet the header row is looked for (title rows sit above it).
HEADER_SEARCH_ROWS = 50
# The size of a sheet: no spreadsheet program writes a row or column beyond it.
SHEET_MAX_ROWS = 1_048_576
SHEET_MAX_COLUMNS = 16_384
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


@dataclass(frozen=True)
class SurveyIssue:
    file: str
    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.column}: {self.reason}"


@dataclass
class SurveyFileOutcome:
    file: str
    status: str  # loaded | unchanged | quarantined
    shape: str | None = None  # published | microdata
    rows_loaded: int = 0
    issues: list[SurveyIssue] = field(default_factory=list)
    report_path: str | None = None


class SurveyValidationError(ValueError):
    """A survey file failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: list[SurveyIssue]):
        self.issues = issues
        shown = "; ".join(str(issue) for issue in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(f"{len(issues)} problem(s): {shown}{more}")


def cap_issues(issues: list[SurveyIssue], file: str) -> list[SurveyIssue]:
    if len(issues) <= MAX_REPORTED_ISSUES:
        return issues
    return [
        *issues[:MAX_REPORTED_ISSUES],
        SurveyIssue(file, 0, "*", f"more problems not listed (first {MAX_REPORTED_ISSUES} shown)"),
    ]


def sidecar_path(path: Path) -> Path:
    """``wave.csv`` -> ``wave.survey.json`` (also for ``wave.csv.gz``)."""
    name = path.name
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + SIDECAR_SUFFIX)


def existing_sidecar(path: Path) -> Path | None:
    """The sidecar beside ``path``, if there is one (a symlink counts, even a dangling one).
    A data file's name can be too long for its sidecar's name to exist: then there is none."""
    candidate = sidecar_path(path)
    return candidate if os.path.lexists(candidate) else None


def text_name(path: Path) -> str:
    """The file's name as storable text: bytes of another system's encoding (a Latin-1 name
    copied from a Windows share) become U+FFFD instead of failing the insert."""
    return os.fsencode(path.name).decode("utf-8", "replace")


def is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and not name.startswith(".")
        and not name.endswith(SIDECAR_SUFFIX)
        and name.endswith(DATA_SUFFIXES)
    )


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


def open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def open_text(path: Path, encoding: str) -> IO[str]:
    """The file as text, split into lines at ``\\n``, ``\\r`` and ``\\r\\n`` only (as the csv
    module and pyarrow split them). Time is linear in a line's length: codecs' stream
    readers re-scan a growing line for every chunk they add to it."""
    return io.TextIOWrapper(open_binary(path), encoding=encoding, newline="")


def _column_name(header: list[str], index: int) -> str:
    return header[index] if index < len(header) and header[index] else f"column {index + 1}"


def long_cell_issues(file: str, row: int, cells: list[str], header: list[str]) -> list[SurveyIssue]:
    """Each cell of the row longer than the cell limit in force, named by its header cell
    (or its position, before a header is known)."""
    limits = limits_in_force()
    if max(map(len, cells), default=0) <= limits.max_cell_chars:
        return []
    return [
        SurveyIssue(file, row, _column_name(header, index), limits.cell_too_long(len(cell)))
        for index, cell in enumerate(cells)
        if len(cell) > limits.max_cell_chars
    ]


_CSV_LIMIT_ERROR = "field larger than field limit"


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
) -> SurveyIssue:
    """The csv module refused a cell over the limit in row ``row``; ``line`` is the row's
    text when it is one line (the column is then found), else None."""
    limits = limits_in_force()
    index = None if line is None else _long_cell_position(line, delimiter, limits.max_cell_chars)
    column = "*" if index is None else _column_name(header, index)
    return SurveyIssue(file, row, column, limits.cell_too_long(None))


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


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (BOM), ``utf-16`` (BOM), ``utf-8``, else ``cp1252`` (German Excel)."""
    with open_binary(path) as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            decoder.decode(head)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def detect_delimiter(header_line: str) -> str:
    """The most frequent of ``;``, ``,`` and tab outside quotes in the header line."""
    # Each quote toggles quoting, so every other piece between quotes is unquoted text;
    # counting there (in C) keeps a header line of many megabytes cheap.
    unquoted = header_line.split('"')[::2] if '"' in header_line else [header_line]
    counts = {d: sum(piece.count(d) for piece in unquoted) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv_header(path: Path, encoding: str) -> tuple[list[str], str]:
    """The header cells and the delimiter of a CSV file (its first line that is not blank);
    raise SurveyValidationError for a header cell over the cell limit."""
    with open_text(path, encoding) as text, _csv_cell_limit():
        for number, line in enumerate(text, start=1):
            if line and not line.isspace():  # not blank, without copying a long line
                delimiter = detect_delimiter(line)
                try:
                    cells = next(csv.reader([line], delimiter=delimiter))
                except csv.Error as exc:
                    if not str(exc).startswith(_CSV_LIMIT_ERROR):
                        raise
                    issue = _long_cell_issue(path.name, number, line, delimiter, [])
                    raise SurveyValidationError([issue]) from None
                return [cell.strip() for cell in cells], delimiter
    return [], ","


def _cell_text(value: Any, number_format: str | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        if number_format and "%" in number_format:
            # An Excel percent cell shows 76 % but stores 0.76.
            number = round(number * 100, 10)
        return str(int(number)) if number.is_integer() else repr(number)
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


def _normalised(name: str) -> str:
    return name.strip().casefold()


def find_columns(header: list[str], wanted: list[str]) -> dict[str, str]:
    """Map each wanted column name to the header's own spelling (case and spaces ignored)."""
    by_key = {_normalised(cell): cell for cell in header if cell}
    return {name: by_key[_normalised(name)] for name in wanted if _normalised(name) in by_key}


@dataclass
class TextTable:
    """A small table read as text: header cells and (row number, cells) pairs.

    ``header_row`` is where the header is: 1 for CSV (the header is record 1), the sheet row
    of an XLSX header below title rows, 0 for Parquet (its column names are not a row).
    """

    header: list[str]
    rows: list[tuple[int, list[str]]]
    header_row: int = 1

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        for number, cells in self.rows:
            padded = cells + [""] * (len(self.header) - len(cells))
            yield number, {name: padded[i] for i, name in enumerate(self.header) if name}


def read_csv_table(path: Path) -> TextTable:
    """Read a CSV file as text; raise SurveyValidationError listing every cell over the
    cell limit, by row and column."""
    encoding = detect_encoding(path)
    _, delimiter = read_csv_header(path, encoding)
    too_long: list[SurveyIssue] = []
    with open_text(path, encoding) as text, _csv_cell_limit():
        lines = _LastLine(text)
        reader = csv.reader(lines, delimiter=delimiter)
        header: list[str] = []
        rows: list[tuple[int, list[str]]] = []
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
            first_line = reader.line_num + 1
            if not header:
                if any(cell.strip() for cell in cells):
                    header = [cell.strip() for cell in cells]
                continue
            if any(cell.strip() for cell in cells):
                rows.append((reader.line_num, [cell.strip() for cell in cells]))
    if too_long:
        raise SurveyValidationError(cap_issues(too_long, path.name))
    return TextTable(header, rows)


def read_xlsx_table(
    path: Path,
    required: list[str],
    sheet: str | None = None,
    is_header: Callable[[list[str]], bool] | None = None,
) -> TextTable:
    """Read a sheet as text; the header is the first row holding every required column, or
    the first row ``is_header`` accepts (``required`` then only names what is looked for).

    Rows are read as far right as the header's last cell, down to a sheet's last row, and
    the table holds at most as many cells as the XLSX limit allows bytes: a cell far right
    or far down costs openpyxl an empty cell or row for every one it skips."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise SurveyValidationError(
                [SurveyIssue(path.name, 0, "sheet", f"no sheet named {sheet!r}")]
            )
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        # The size a writer recorded can be smaller than the sheet; trusting it would drop
        # rows silently. Every row is read, and numbered as the sheet numbers it.
        worksheet.reset_dimensions()

        def holds_required(cells: list[str]) -> bool:
            return len(find_columns(cells, required)) == len(required)

        accepts = is_header or holds_required
        header: list[str] = []
        header_row = 0
        width = SHEET_MAX_COLUMNS
        first_filled: tuple[int, list[str]] | None = None
        rows: list[tuple[int, list[str]]] = []
        too_long: list[SurveyIssue] = []
        # Cells held for the table (rows x header width): a cell far right of the header
        # makes every row that wide, however little the sheet holds.
        cell_budget = limits_in_force().max_xlsx_uncompressed_bytes
        for number, row in enumerate(worksheet.iter_rows(), start=1):
            if number > SHEET_MAX_ROWS:
                # openpyxl hands out an empty row for each row number a sheet skips, up to
                # any number a file names: past the sheet's last row, none is real.
                reason = f"the sheet has rows past row {SHEET_MAX_ROWS}, a sheet's last row"
                raise SurveyValidationError([SurveyIssue(path.name, 0, "*", reason)])
            if not header and number > HEADER_SEARCH_ROWS:
                break
            if not row:
                continue  # a row the sheet skips
            cells = [
                _cell_text(getattr(cell, "value", None), getattr(cell, "number_format", None))
                for cell in row[:width]  # right of the header no cell is in a column
            ]
            problems = long_cell_issues(path.name, number, cells, header)
            if problems:
                too_long.extend(problems)
                continue
            if not header:
                if accepts(cells):
                    width = max((i + 1 for i, cell in enumerate(cells) if cell), default=0)
                    header, header_row = cells[:width], number
                    continue
                if first_filled is None and any(cells):
                    first_filled = (number, cells)
                continue
            if any(cells):
                cell_budget -= len(cells)
                if cell_budget < 0:
                    reason = limits_in_force().xlsx_table_too_large(width)
                    raise SurveyValidationError([SurveyIssue(path.name, number, "*", reason)])
                rows.append((number, cells))
    finally:
        workbook.close()
    if too_long:
        raise SurveyValidationError(cap_issues(too_long, path.name))
    if not header:
        raise SurveyValidationError(
            [
                SurveyIssue(
                    path.name,
                    0,
                    "*",
                    f"no header row with {', '.join(required)} in the first "
                    f"{HEADER_SEARCH_ROWS} rows"
                    + (
                        f"; the first filled row is row {first_filled[0]}: "
                        + shown_cells(first_filled[1])
                        if first_filled
                        else "; they are empty"
                    ),
                )
            ]
        )
    return TextTable(header, rows, header_row)


def read_parquet_table(path: Path) -> TextTable:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    header = list(table.column_names)
    columns = [table.column(name).to_pylist() for name in header]
    rows = [
        (index + 1, [_cell_text(column[index]) for column in columns])
        for index in range(table.num_rows)
    ]
    too_long = [
        issue
        for number, cells in rows
        for issue in long_cell_issues(path.name, number, cells, header)
    ]
    if too_long:
        raise SurveyValidationError(cap_issues(too_long, path.name))
    return TextTable(header, rows, header_row=0)


def read_header(
    path: Path,
    required: list[str],
    sheet: str | None = None,
    is_header: Callable[[list[str]], bool] | None = None,
) -> list[str]:
    """The header of any supported file (for shape detection)."""
    name = path.name.lower()
    if name.endswith(".xlsx"):
        return read_xlsx_table(path, required, sheet, is_header).header
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return read_csv_header(path, detect_encoding(path))[0]


def quarantine(
    path: Path, quarantine_dir: Path, issues: list[SurveyIssue], sidecar: Path | None = None
) -> Path:
    """Move a rejected file (and its sidecar) into quarantine beside a JSON report, in
    ``<time>-<file>/`` (the name cut short and made unique, when too long for a folder)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target_dir = quarantine_dir / "surveys" / f"{stamp}-{_folder_label(path.name)}"
    target_dir.mkdir(parents=True, exist_ok=True)
    with_sidecar = sidecar is not None and os.path.lexists(sidecar)
    report = target_dir / "report.json"
    report.write_text(
        json.dumps(
            {
                "file": path.name,
                "sidecar": sidecar.name if sidecar is not None and with_sidecar else None,
                "quarantined_at": stamp,
                "issues": [asdict(i) for i in issues],
            },
            indent=2,
        )
    )
    _move(path, target_dir / path.name)
    if sidecar is not None and with_sidecar:
        _move(sidecar, target_dir / sidecar.name)
    return report


# A folder name holds 255 bytes on common file systems; the time stamp takes 23 of them.
_FOLDER_LABEL_BYTES = 200


def _folder_label(name: str) -> str:
    if len(os.fsencode(name)) <= _FOLDER_LABEL_BYTES:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    kept = name
    while len(os.fsencode(kept)) > _FOLDER_LABEL_BYTES - len(digest) - 4:
        kept = kept[:-1]
    return f"{kept}...-{digest}"


def _move(source: Path, target: Path) -> None:
    """Move a file, or a symlink as a link (its target stays where it is). A FIFO or device
    file holds no data and cannot be copied to another file system: there it is removed."""
    if not os.path.lexists(source):
        return  # taken away by its owner meanwhile; the report still says what was wrong
    mode = source.lstat().st_mode
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        shutil.move(str(source), target)
        return
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        source.unlink()


def file_sha256(path: Path) -> str:
    return content_sha256(path, None)
