"""Parquet survey files: column names are the header; rows are numbered from 1.

pyarrow reads them (DuckDB reads no landed file: what it raises is a fault of the
warehouse, what pyarrow raises the file's). Before any reader decodes one, its content is
weighed as a CSV file of it would weigh (:func:`check_content`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from social_leadership.surveys import common
from social_leadership.surveys.limits import IntakeLimits

KIND = "Parquet"
# Bytes a value of each fixed-width Parquet type takes (FIXED_LEN_BYTE_ARRAY: its declared
# length; BYTE_ARRAY: one byte, its text is weighed when read).
_PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
_PARQUET_BATCH_ROWS = 65536


def read_table(path: Path, search: common.HeaderSearch) -> common.TextTable:
    import pyarrow.parquet as pq

    names = list(pq.read_schema(path).names)
    if search.leaves_unread(names):
        return common.TextTable(names, [], header_row=0)
    table = pq.read_table(path)
    header = list(table.column_names)
    columns = [table.column(name).to_pylist() for name in header]
    rows = [
        (index + 1, [common.cell_text(column[index]) for column in columns])
        for index in range(table.num_rows)
    ]
    too_long = [
        issue
        for number, cells in rows
        for issue in common.long_cell_issues(path.name, number, cells, header)
    ]
    if too_long:
        raise common.SurveyValidationError(common.cap_issues(too_long, path.name))
    return common.TextTable(header, rows, header_row=0)


def read_header(path: Path, search: common.HeaderSearch) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def read_columns(path: Path, wanted: list[str], sheet: str | None) -> common.DeclaredColumns:
    """The wanted columns as the file types them, read a batch at a time."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise common.unreadable(path, KIND, exc) from None
    try:
        names = list(parquet.schema_arrow.names)
        columns = common.position_names(common.declared_positions(path.name, names, wanted))
    except BaseException:
        parquet.close()
        raise
    positions = sorted({int(name[1:]) for name in columns.values()})
    read = [names[position] for position in positions]
    schema = pa.schema(
        [
            parquet.schema_arrow.field(names[position]).with_name(f"c{position}")
            for position in positions
        ]
        + [pa.field(common.ROW_COLUMN, pa.int64())]
    )

    def file_batches() -> Iterator[pa.RecordBatch]:
        with parquet:
            for batch in parquet.iter_batches(columns=read):
                yield batch.select(read)

    failures: list[BaseException] = []
    batches = common.numbered_batches(
        file_batches(), schema, 1, failures, failing=(pa.ArrowException, OSError)
    )

    def finish() -> None:
        if failures:
            raise common.unreadable(path, KIND, failures[0])

    return common.DeclaredColumns(batches, columns, finish)


def check_content(path: Path, limits: IntakeLimits) -> None:
    """A readable footer, and the file's content within the file limit once decoded.

    Run-length and dictionary encoding let a few kilobytes stand for millions of rows or
    one long text repeated in every row; the readers decode it all. The content is weighed
    as a CSV file of it would be: first from the footer, each value at its fixed width (a
    text value at one byte at least), then the text itself, read a batch at a time with
    every text column kept dictionary-encoded, so nothing long is decoded to weigh it.
    """
    import pyarrow.parquet as pq

    def too_large(size: int, what: str) -> common.SurveyValidationError:
        return common.file_problem(path.name, limits.file_too_large(size, what))

    try:
        with pq.ParquetFile(path) as parquet:
            metadata = parquet.metadata
            leaves = [metadata.schema.column(i) for i in range(metadata.num_columns)]
            widths = [_PARQUET_WIDTHS.get(leaf.physical_type, leaf.length or 1) for leaf in leaves]
            chunks = [
                (group.column(i), widths[i])
                for group in map(metadata.row_group, range(metadata.num_row_groups))
                for i in range(metadata.num_columns)
            ]
            pages = sum(chunk.total_uncompressed_size for chunk, _ in chunks)
            if pages > limits.max_file_bytes:
                raise too_large(pages, "declares pages of")
            declared = sum(chunk.num_values * width for chunk, width in chunks)
            if declared > limits.max_file_bytes:
                raise too_large(declared, "holds values that take")
            texts = [leaf.path for leaf in leaves if leaf.physical_type == "BYTE_ARRAY"]
        if not texts:
            return
        decoded = declared
        with pq.ParquetFile(path, read_dictionary=texts) as parquet:
            holding_text = [field.name for field in parquet.schema_arrow if _holds_text(field.type)]
            batches = parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=holding_text)
            for batch in batches:
                decoded += sum(_text_bytes(column) for column in batch.columns)
                if decoded > limits.max_file_bytes:
                    raise too_large(decoded, "decodes to more than")
    except common.SurveyValidationError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise common.unreadable(path, KIND, exc) from None


def _holds_text(kind: Any) -> bool:
    """Whether an Arrow type is, or nests, text or bytes."""
    if isinstance(kind, pa.DictionaryType):
        return _holds_text(kind.value_type)
    if pa.types.is_nested(kind):
        return any(_holds_text(kind.field(i).type) for i in range(kind.num_fields))
    return any(is_text(kind) for is_text in _text_types())


def _text_types() -> tuple[Any, ...]:
    return (
        pa.types.is_string,
        pa.types.is_large_string,
        pa.types.is_binary,
        pa.types.is_large_binary,
    )


def _text_bytes(array: Any) -> int:
    """The bytes of text ``array`` holds decoded: a dictionary's values counted once per
    index, nested values found through their lists, structs and maps (values of a fixed
    width count nothing here: the footer weighed them)."""
    import pyarrow.compute as pc

    text_types = _text_types()
    if isinstance(array, pa.ChunkedArray):
        return sum(_text_bytes(chunk) for chunk in array.chunks)
    if isinstance(array, pa.DictionaryArray):
        kind = array.type.value_type
        if not any(is_text(kind) for is_text in text_types):
            return _text_bytes(array.dictionary.take(array.indices))
        lengths = pc.take(pc.binary_length(array.dictionary), array.indices)
        return int(pc.sum(lengths).as_py() or 0)
    if isinstance(array, pa.StructArray):
        return sum(_text_bytes(array.field(i)) for i in range(array.type.num_fields))
    if isinstance(array, pa.MapArray):
        return _text_bytes(array.keys) + _text_bytes(array.items)
    if isinstance(array, pa.ListArray | pa.LargeListArray | pa.FixedSizeListArray):
        return _text_bytes(array.flatten())
    if any(is_text(array.type) for is_text in text_types):
        return int(array.nbytes)
    return 0  # fixed width: weighed from the footer
