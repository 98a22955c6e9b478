"""XLSX survey files: the sheet a sidecar names, else the first whose header is found (a
workbook may open on a cover sheet); the header row is found below title rows;
percent-formatted cells read as percent.

A sheet is read down to a sheet's last row and right to its header's last cell, holding no
more cells than the XLSX limit allows bytes; the archive is checked part by part, declared
and then actual sizes, before openpyxl parses it.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from social_leadership.intake import RowIssue
from social_leadership.surveys import common
from social_leadership.surveys.limits import IntakeLimits, limits_in_force

KIND = "XLSX"
# How far down a sheet the header row is looked for (title rows sit above it).
HEADER_SEARCH_ROWS = common.HEADER_SEARCH_DEPTH
# The size of a sheet: no spreadsheet program writes a row or column beyond it.
SHEET_MAX_ROWS = 1_048_576
SHEET_MAX_COLUMNS = 16_384
_CHUNK = 1 << 20


def read_table(
    path: Path, search: common.HeaderSearch, *, respondents: bool = False
) -> common.TextTable:
    """Read a sheet as text, its sheet and header found as :func:`_header_place` finds them
    (``respondents``: a respondent file's, whose percent cells are numbers without their
    sign, and whose rows are never quoted: the first filled row of a sheet without a header
    may be a respondent's).

    Rows are read as far right as the header's last cell, down to a sheet's last row, and
    the table holds at most as many cells as the XLSX limit allows bytes: a cell far right
    or far down costs openpyxl an empty cell or row for every one it skips."""
    from openpyxl import load_workbook

    required, sheet = search.required, search.sheet
    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise common.file_problem(path.name, f"no sheet named {sheet!r}", column="sheet")
        worksheet, header_at = _header_place(
            [workbook[sheet]] if sheet else workbook.worksheets, search
        )
        header: list[str] = []
        header_row = 0
        width = SHEET_MAX_COLUMNS
        first_filled: tuple[int, list[str]] | None = None
        rows: list[tuple[int, list[str]]] = []
        too_long: list[RowIssue] = []
        # Cells held for the table (rows x header width): a cell far right of the header
        # makes every row that wide, however little the sheet holds.
        cell_budget = limits_in_force().max_xlsx_uncompressed_bytes
        for number, row in enumerate(worksheet.iter_rows(), start=1):
            if number > SHEET_MAX_ROWS:
                # openpyxl hands out an empty row for each row number a sheet skips, up to
                # any number a file names: past the sheet's last row, none is real.
                reason = f"the sheet has rows past row {SHEET_MAX_ROWS}, a sheet's last row"
                raise common.file_problem(path.name, reason)
            if not header and number > HEADER_SEARCH_ROWS:
                break
            if not row:
                continue  # a row the sheet skips
            # Right of the header no cell is in a column.
            cells = _row_text(row[:width], percent_sign=not respondents)
            problems = common.long_cell_issues(path.name, number, cells, header)
            if problems:
                too_long.extend(problems)
                continue
            if not header:
                if number == header_at:
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
                    raise common.SurveyValidationError([RowIssue(path.name, number, "*", reason)])
                rows.append((number, cells))
        if search.fill_merged and header:
            _fill_merged(worksheet, header_row, width, rows)
        if header:
            _refuse_uncomputed_formulas(path, worksheet, header_row, width)
        title, sheets = worksheet.title, [each.title for each in workbook.worksheets]
    finally:
        workbook.close()
    if too_long:
        raise common.SurveyValidationError(common.cap_issues(too_long, path.name))
    if not header:
        first = "; they are empty"
        if first_filled and respondents:
            first = f"; the first filled row is row {first_filled[0]} (not shown: a respondent's?)"
        elif first_filled:
            shown = common.shown_cells(first_filled[1])
            first = f"; the first filled row is row {first_filled[0]}: {shown}"
        reason = (
            f"no header row with {', '.join(required)} in the first {HEADER_SEARCH_ROWS} rows"
            f" of sheet {title!r}" + first
        )
        if sheet is None and len(sheets) > 1:
            others = ", ".join(repr(name) for name in sheets if name != title)
            reason += (
                f"; nor in the workbook's other sheets ({others}): name the table's sheet in "
                'the sidecar\'s "sheet"'
            )
        raise common.file_problem(path.name, reason)
    return common.TextTable(header, rows, header_row)


def _row_text(row: Any, *, percent_sign: bool = True) -> list[str]:
    """A sheet row's cells as text (read-only mode's empty cells have no value); a percent
    cell as it shows, ``76 %``, or without its sign (``percent_sign`` off: a respondent's
    number)."""
    return [
        common.cell_text(
            getattr(cell, "value", None),
            getattr(cell, "number_format", None),
            percent_sign=percent_sign,
        )
        for cell in row
    ]


def _searched_rows(worksheet: Any) -> Iterator[tuple[int, list[str]]]:
    """The first :data:`HEADER_SEARCH_ROWS` rows of a sheet, numbered, as text."""
    for number, row in enumerate(worksheet.iter_rows(max_row=HEADER_SEARCH_ROWS), start=1):
        yield number, _row_text(row)


def fitting_sheets(path: Path, search: common.HeaderSearch) -> list[str]:
    """The sheets whose first rows hold a header that fits ``search`` (a workbook of one
    table per wave or per country), in the workbook's order."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        fitting = []
        for each in workbook.worksheets:
            if getattr(each, "sheet_state", "visible") != "visible":
                continue  # a hidden sheet (a copy, a lookup) is no table of the export
            each.reset_dimensions()
            if any(search.accepts_and_fits(cells) for _, cells in _searched_rows(each)):
                fitting.append(each.title)
        return fitting
    finally:
        workbook.close()


def _header_place(sheets: list[Any], search: common.HeaderSearch) -> tuple[Any, int | None]:
    """The sheet a table is read from and its header's row: the first row that the search
    accepts and that fits (:class:`~.common.HeaderSearch`), in the first sheet holding one;
    else the first row accepted, in the first sheet holding one (a workbook may open on a
    cover or methodology sheet, its table on the next); else the first sheet and None
    (its report then says what it lacks). The size a writer recorded for a sheet can be
    smaller than the sheet; trusting it would drop rows silently, so it is forgotten: every
    row is read, and numbered as the sheet numbers it."""
    for each in sheets:
        each.reset_dimensions()
    for test in (search.accepts_and_fits, search.accepts):
        for each in sheets:
            row = next((number for number, cells in _searched_rows(each) if test(cells)), None)
            if row is not None:
                return each, row
    return sheets[0], None


# A formula element in a sheet's XML, with or without a namespace prefix.
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
# How many cells a report names of a sheet's formulas without a value.
_FORMULAS_NAMED = 5


def _holds_formulas(worksheet: Any) -> bool:
    """Whether the sheet's XML holds a formula, read in chunks without parsing it."""
    source = worksheet._get_source()
    try:
        tail = b""
        while chunk := source.read(_CHUNK):
            if _FORMULA.search(tail + chunk):
                return True
            tail = chunk[-16:]
    finally:
        source.close()
    return False


def _refuse_uncomputed_formulas(path: Path, worksheet: Any, header_row: int, width: int) -> None:
    """Refuse a sheet whose cells under the header, in its columns, hold formulas without a
    saved value: a file a program wrote without computing them (openpyxl, for one), which
    openpyxl reads as empty cells, so a weight was "empty" and an answer left out of its
    question's base without a word. Excel and LibreOffice save each formula's value:
    opening and saving the file there mends it. A formula whose value is text has its type
    (``t="str"``), an empty text included (``=""``, ``IF(...;"";...)``): it is read as
    that text. Only a sheet that holds a formula is parsed again."""
    if not _holds_formulas(worksheet):
        return
    from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
    from openpyxl.xml.functions import iterparse  # defusedxml's, as openpyxl reads sheets

    def in_table(reference: str) -> bool:
        if not reference:
            return True  # a cell without its (optional) reference: where is unknown
        column, row = coordinate_from_string(reference)
        return row > header_row and column_index_from_string(column) <= width

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    empty: list[str] = []
    count = 0
    source = worksheet._get_source()
    try:
        for _, element in iterparse(source):
            name = local(element.tag)
            if name == "c":
                children = {local(child.tag): child for child in element}
                value = children.get("v")
                reference = element.get("r") or ""
                # No value, or an empty one that is no text (openpyxl writes <v/>, no type).
                uncomputed = value is None or (not value.text and element.get("t") in (None, "n"))
                if "f" in children and uncomputed and in_table(reference):
                    count += 1
                    if len(empty) < _FORMULAS_NAMED:
                        empty.append(reference or "a cell without its reference")
                element.clear()
            elif name == "row":
                element.clear()
    finally:
        source.close()
    if empty:
        more = f" and {count - len(empty)} more" if count > len(empty) else ""
        reason = (
            f"{count} cell(s) hold a formula without a saved value ({', '.join(empty)}{more}): "
            "the program that wrote the file did not compute them, and they would read as "
            "empty; open and save the file in Excel or LibreOffice, or write the values"
        )
        raise common.file_problem(path.name, reason)


def _merged_ranges(worksheet: Any) -> list[tuple[int, int, int, int]]:
    """(first column, first row, last column, last row) of each merged range of a sheet read
    with openpyxl's read-only mode, which reads cells only: the ranges are listed in the
    sheet's XML after its cells, so this reads the sheet's XML once more."""
    from openpyxl.utils.cell import range_boundaries
    from openpyxl.xml.functions import iterparse  # defusedxml's, as openpyxl reads sheets

    ranges = []
    source = worksheet._get_source()
    try:
        for _, element in iterparse(source):
            if element.tag.endswith("}mergeCell") and element.get("ref"):
                ranges.append(range_boundaries(element.get("ref")))
            element.clear()
    finally:
        source.close()
    return ranges


def _fill_merged(
    worksheet: Any, header_row: int, width: int, rows: list[tuple[int, list[str]]]
) -> None:
    """Give every cell of a merged range below the header that spans rows its first cell's
    value, in place (openpyxl's read-only mode leaves them empty): ``Edelman`` merged down
    A5:A8 is the source of rows 5 to 8. Only a range whose first row holds a figure (more
    than one filled cell): a note merged across the table below it, over one row or two,
    stays one cell (a note, not a figure). Rows are padded to the range (a sheet need not
    list the cells a merge covers), up to the header's ``width``. Each range visits only
    the rows the table holds, however far down it reaches."""
    cells_of = dict(rows)
    numbers = sorted(cells_of)
    for first_column, first_row, last_column, last_row in _merged_ranges(worksheet):
        first = cells_of.get(first_row)
        if first_row <= header_row or first_row == last_row or first is None:
            continue
        if first_column > len(first) or common.lone_cell(first) is not None:
            continue
        value = first[first_column - 1]
        last_column = min(last_column, width)
        below = numbers[bisect_left(numbers, first_row) : bisect_right(numbers, last_row)]
        for number in below:
            cells = cells_of[number]
            cells.extend([""] * (last_column - len(cells)))
            for column in range(first_column, last_column + 1):
                if not cells[column - 1]:
                    cells[column - 1] = value


def read_header(path: Path, search: common.HeaderSearch) -> list[str]:
    return read_table(path, search).header


def read_columns(path: Path, wanted: list[str], sheet: str | None) -> common.DeclaredColumns:
    """The wanted columns of the sheet as text, each row numbered as the sheet numbers it.

    Respondents are read from one sheet: without ``sheet`` declared, a workbook whose
    other sheets hold the declared columns too (one sheet per country or wave) is refused
    naming them, where the sheets after the first were left unread in silence."""
    if sheet is None:
        fitting = fitting_sheets(path, common.HeaderSearch(wanted, None))
        if len(fitting) > 1:
            raise common.file_problem(
                path.name,
                f"sheets {', '.join(repr(name) for name in fitting)} each hold the declared "
                "columns, and respondents are read from one sheet: name it in the "
                'sidecar\'s "sheet", or save each sheet as a file of its own (with a sidecar '
                "each: the files of a panel's countries load side by side)",
                column="sheet",
            )
    table = read_table(path, common.HeaderSearch(wanted, sheet), respondents=True)
    columns = common.position_names(
        common.declared_positions(path.name, table.header, wanted, table.header_row)
    )
    positions = sorted({int(name[1:]) for name in columns.values()})
    arrays = [
        pa.array(
            [cells[position] if position < len(cells) else None for _, cells in table.rows],
            type=pa.string(),
        )
        for position in positions
    ]
    arrays.append(pa.array([number for number, _ in table.rows], type=pa.int64()))
    names = [f"c{position}" for position in positions] + [common.ROW_COLUMN]
    batches = pa.Table.from_arrays(arrays, names=names).to_reader()
    return common.DeclaredColumns(batches, columns)


def check_archive(path: Path, limits: IntakeLimits) -> None:
    """Every part's declared size first (nothing is decompressed for a bomb that declares
    its size), then every part decompressed and counted, in chunks: a part that holds more
    than it declares is cut at its declared size and fails its checksum."""
    budget = limits.max_xlsx_uncompressed_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            declared = sum(part.file_size for part in parts)
            if declared > budget:
                raise common.file_problem(path.name, limits.xlsx_too_large(declared, "declares"))
            expanded = 0
            for part in parts:
                with archive.open(part) as stream:
                    while chunk := stream.read(_CHUNK):
                        expanded += len(chunk)
                        if expanded > budget:
                            reason = limits.xlsx_too_large(expanded, "expands to more than")
                            raise common.file_problem(path.name, reason)
    except common.SurveyValidationError:
        raise
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise common.unreadable(path, KIND, exc) from None
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        # An unsupported compression method, a malformed header, an encrypted part.
        raise common.unreadable(path, KIND, exc) from None
