"""What every survey file shares: issues, hashing, decoding, table reading, quarantine.

Row numbers in issues are where a person finds the row: the line of a CSV file (the header
is line 1), the row of an XLSX sheet, the 1-based record of a Parquet file.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

SIDECAR_SUFFIX = ".survey.json"
CSV_SUFFIXES = (".csv", ".csv.gz")
DATA_SUFFIXES = (*CSV_SUFFIXES, ".xlsx", ".parquet")
# How far down an XLSX sheet the header row is looked for (title rows sit above it).
HEADER_SEARCH_ROWS = 50
# A report lists at most this many problems; a million-row file could otherwise produce a
# report bigger than the file.
MAX_REPORTED_ISSUES = 1000
GLOBAL_SCOPES = {"global", "world", "worldwide", "weltweit", "monde", "mundo"}


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
    counts = {";": 0, ",": 0, "\t": 0}
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv_header(path: Path, encoding: str) -> tuple[list[str], str]:
    """The header cells and the delimiter of a CSV file."""
    import csv

    with open_binary(path) as raw, codecs.getreader(encoding)(raw) as text:
        for line in text:
            if line.strip():
                delimiter = detect_delimiter(line)
                cells = next(csv.reader([line], delimiter=delimiter))
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
    return str(value).strip()


def _normalised(name: str) -> str:
    return name.strip().casefold()


def find_columns(header: list[str], wanted: list[str]) -> dict[str, str]:
    """Map each wanted column name to the header's own spelling (case and spaces ignored)."""
    by_key = {_normalised(cell): cell for cell in header if cell}
    return {name: by_key[_normalised(name)] for name in wanted if _normalised(name) in by_key}


@dataclass
class TextTable:
    """A small table read as text: header cells and (row number, cells) pairs."""

    header: list[str]
    rows: list[tuple[int, list[str]]]

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        for number, cells in self.rows:
            padded = cells + [""] * (len(self.header) - len(cells))
            yield number, {name: padded[i] for i, name in enumerate(self.header) if name}


def read_csv_table(path: Path) -> TextTable:
    import csv

    encoding = detect_encoding(path)
    _, delimiter = read_csv_header(path, encoding)
    with open_binary(path) as raw, codecs.getreader(encoding)(raw) as text:
        reader = csv.reader(text, delimiter=delimiter)
        header: list[str] = []
        rows: list[tuple[int, list[str]]] = []
        for cells in reader:
            if not header:
                if any(cell.strip() for cell in cells):
                    header = [cell.strip() for cell in cells]
                continue
            if any(cell.strip() for cell in cells):
                rows.append((reader.line_num, [cell.strip() for cell in cells]))
    return TextTable(header, rows)


def read_xlsx_table(path: Path, required: list[str], sheet: str | None = None) -> TextTable:
    """Read a sheet as text; the header is the first row holding every required column."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise SurveyValidationError(
                [SurveyIssue(path.name, 0, "sheet", f"no sheet named {sheet!r}")]
            )
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        header: list[str] = []
        rows: list[tuple[int, list[str]]] = []
        for number, row in enumerate(worksheet.iter_rows(), start=1):
            cells = [
                _cell_text(getattr(cell, "value", None), getattr(cell, "number_format", None))
                for cell in row
            ]
            if not header:
                if len(find_columns(cells, required)) == len(required):
                    header = cells
                elif number >= HEADER_SEARCH_ROWS:
                    break
                continue
            if any(cells):
                rows.append((number, cells))
    finally:
        workbook.close()
    if not header:
        raise SurveyValidationError(
            [
                SurveyIssue(
                    path.name,
                    0,
                    "*",
                    f"no header row with {', '.join(required)} in the first "
                    f"{HEADER_SEARCH_ROWS} rows",
                )
            ]
        )
    return TextTable(header, rows)


def read_parquet_table(path: Path) -> TextTable:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    header = list(table.column_names)
    columns = [table.column(name).to_pylist() for name in header]
    rows = [
        (index + 1, [_cell_text(column[index]) for column in columns])
        for index in range(table.num_rows)
    ]
    return TextTable(header, rows)


def read_header(path: Path, required: list[str], sheet: str | None = None) -> list[str]:
    """The header of any supported file (for shape detection)."""
    name = path.name.lower()
    if name.endswith(".xlsx"):
        return read_xlsx_table(path, required, sheet).header
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return read_csv_header(path, detect_encoding(path))[0]


def quarantine(
    path: Path, quarantine_dir: Path, issues: list[SurveyIssue], sidecar: Path | None = None
) -> Path:
    """Move a rejected file (and its sidecar) into quarantine beside a JSON report."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target_dir = quarantine_dir / "surveys" / f"{stamp}-{path.name}"
    target_dir.mkdir(parents=True, exist_ok=True)
    report = target_dir / "report.json"
    report.write_text(
        json.dumps(
            {
                "file": path.name,
                "sidecar": sidecar.name if sidecar is not None and sidecar.exists() else None,
                "quarantined_at": stamp,
                "issues": [asdict(i) for i in issues],
            },
            indent=2,
        )
    )
    shutil.move(str(path), target_dir / path.name)
    if sidecar is not None and sidecar.exists():
        shutil.move(str(sidecar), target_dir / sidecar.name)
    return report


def file_sha256(path: Path) -> str:
    return content_sha256(path, None)
