"""The survey landing folder as a boundary: what is listed, followed, opened and blamed.

Whatever lands in the folder, :func:`ingest.ingest_folder` ends with the file loaded or
quarantined; only a fault of the warehouse (or of the machine) raises, so Airflow retries
that and nothing else:

* :func:`landed_files` lists every entry with a survey file's name, symlinks and special
  files included, so nothing is passed over in silence;
* :func:`check_landed` follows a symlink only to a regular file inside the folder, and
  checks a sidecar the same way; a FIFO is never opened (reading one would block);
* :func:`check_size` and :func:`check_contents` enforce the limits
  (:mod:`.limits`) before a parser sees the file: an XLSX archive's declared sizes, then its
  actual decompression, and a ``.csv.gz`` decompressed in a streaming pass;
* :func:`is_warehouse_fault` tells a warehouse fault (raise) from the file's (quarantine),
  and :func:`unreadable_reason` says in a report why a file could not be read.
"""

from __future__ import annotations

import errno
import gzip
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

import duckdb

from social_leadership.surveys.common import (
    DATA_SUFFIXES,
    SIDECAR_SUFFIX,
    SurveyIssue,
    SurveyValidationError,
    existing_sidecar,
)
from social_leadership.surveys.limits import IntakeLimits

# A declaration is a few hundred bytes; a megabyte is no declaration, and it is read whole.
MAX_SIDECAR_BYTES = 1 << 20
_CHUNK = 1 << 20
# DuckDB's faults of the database itself: I/O (a full disk, a held lock), a fatal or
# internal error, a write conflict, memory, an interrupt. DuckDB reads no landed file
# itself (pyarrow does, and what pyarrow raises inside a DuckDB scan arrives as
# InvalidInputException), so none of these can be the file's fault.
_WAREHOUSE_ERRORS = (
    duckdb.OperationalError,
    duckdb.FatalException,
    duckdb.InternalError,
    duckdb.InterruptException,
)
# An OSError with one of these is the machine's (full or read-only disk, no memory, a
# failing device), whichever file it met.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.ENOMEM, errno.EIO}
_KINDS = {".csv.gz": "gzip-compressed CSV", ".xlsx": "XLSX", ".parquet": "Parquet"}


def is_warehouse_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient fault of the warehouse or machine, not of a file."""
    if isinstance(exc, (*_WAREHOUSE_ERRORS, MemoryError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _MACHINE_ERRNOS


def _kind(path: Path) -> str:
    name = path.name.lower()
    return next((kind for suffix, kind in _KINDS.items() if name.endswith(suffix)), "CSV")


def unreadable_reason(path: Path, exc: BaseException) -> str:
    """``cannot be read as XLSX (BadZipFile: File is not a zip file)``: the first line of
    the message, capped, so a report stays short."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > 300:
        message = message[:297] + "..."
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"cannot be read as {_kind(path)} ({detail})"


def _unreadable(path: Path, exc: BaseException) -> SurveyValidationError:
    if is_warehouse_fault(exc):
        raise exc
    return SurveyValidationError([SurveyIssue(path.name, 0, "*", unreadable_reason(path, exc))])


def landed_files(folder: Path) -> list[Path]:
    """Every entry named like a survey data file (not hidden, not a sidecar), sorted;
    folders are left alone, but a symlink to one is listed (and rejected)."""
    if not folder.exists():
        return []
    found = []
    for entry in folder.iterdir():
        name = entry.name.lower()
        if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
            continue
        if not name.endswith(DATA_SUFFIXES):
            continue
        try:
            if stat.S_ISDIR(entry.lstat().st_mode):
                continue
        except FileNotFoundError:
            continue  # taken away since the folder was listed
        found.append(entry)
    return sorted(found)


def _within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _entry_problem(path: Path, folder: Path, what: str) -> str | None:
    """Why ``path`` may not be read, or None: a symlink is followed only to a regular file
    inside the landing folder (resolved through every link); only regular files are read."""
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        target = os.path.realpath(path)
        if not os.path.exists(target):
            return f"{what} is a dangling symlink: its target does not exist"
        if not _within(target, os.path.realpath(folder)):
            return f"{what} is a symlink pointing outside the survey landing folder; not followed"
        mode = os.stat(target).st_mode
    if not stat.S_ISREG(mode):
        return f"{what} is not a regular file; only regular files are read"
    return None


def check_landed(path: Path, folder: Path) -> None:
    """Raise SurveyValidationError unless the file, and its sidecar if any, may be read."""
    issues = []
    problem = _entry_problem(path, folder, "the file")
    if problem:
        issues.append(SurveyIssue(path.name, 0, "*", problem))
    sidecar = existing_sidecar(path)
    if sidecar is not None:
        problem = _entry_problem(sidecar, folder, "the sidecar")
        if problem:
            issues.append(SurveyIssue(sidecar.name, 0, "*", problem))
    if issues:
        raise SurveyValidationError(issues)


def check_size(path: Path, limits: IntakeLimits) -> None:
    """The file (and its sidecar) within the size limits, read from the file system only."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise SurveyValidationError([SurveyIssue(path.name, 0, "*", limits.file_too_large(size))])
    sidecar = existing_sidecar(path)
    if sidecar is not None and sidecar.exists():
        size = sidecar.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            reason = (
                f"sidecar is {size} bytes, over the {MAX_SIDECAR_BYTES} bytes a declaration "
                "may hold"
            )
            raise SurveyValidationError([SurveyIssue(sidecar.name, 0, "*", reason)])


def check_contents(path: Path, limits: IntakeLimits) -> None:
    """Decompress what is compressed, in a streaming pass, before any parser does: a
    ``.csv.gz`` within the file limit, an XLSX archive whole and within its limit, a Parquet
    file's values within the file limit once decoded."""
    name = path.name.lower()
    if name.endswith(".gz"):
        _check_gzip(path, limits)
    elif name.endswith(".xlsx"):
        _check_xlsx(path, limits)
    elif name.endswith(".parquet"):
        _check_parquet(path, limits)


def _check_gzip(path: Path, limits: IntakeLimits) -> None:
    expanded = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                expanded += len(chunk)
                if expanded > limits.max_file_bytes:
                    reason = limits.file_too_large(expanded, "decompresses to more than")
                    raise SurveyValidationError([SurveyIssue(path.name, 0, "*", reason)])
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, exc) from None


def _check_xlsx(path: Path, limits: IntakeLimits) -> None:
    """Every part's declared size first (nothing is decompressed for a bomb that declares
    its size), then every part decompressed and counted, in chunks: a part that holds more
    than it declares is cut at its declared size and fails its checksum."""
    budget = limits.max_xlsx_uncompressed_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            declared = sum(part.file_size for part in parts)
            if declared > budget:
                reason = limits.xlsx_too_large(declared, "declares")
                raise SurveyValidationError([SurveyIssue(path.name, 0, "*", reason)])
            expanded = 0
            for part in parts:
                with archive.open(part) as stream:
                    while chunk := stream.read(_CHUNK):
                        expanded += len(chunk)
                        if expanded > budget:
                            reason = limits.xlsx_too_large(expanded, "expands to more than")
                            raise SurveyValidationError([SurveyIssue(path.name, 0, "*", reason)])
    except SurveyValidationError:
        raise
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise _unreadable(path, exc) from None
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        # An unsupported compression method, a malformed header, an encrypted part.
        raise _unreadable(path, exc) from None


def _check_parquet(path: Path, limits: IntakeLimits) -> None:
    """A readable footer, and the file's content within the file limit once decoded.

    Run-length and dictionary encoding let a few kilobytes stand for millions of rows or
    one long text repeated in every row; the readers decode it all. The content is weighed
    as a CSV file of it would be: first from the footer, each value at its fixed width (a
    text value at one byte at least), then the text itself, read a batch at a time with
    every text column kept dictionary-encoded, so nothing long is decoded to weigh it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    def too_large(size: int, what: str) -> SurveyValidationError:
        reason = limits.file_too_large(size, what)
        return SurveyValidationError([SurveyIssue(path.name, 0, "*", reason)])

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
    except SurveyValidationError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None


# Bytes a value of each fixed-width Parquet type takes (FIXED_LEN_BYTE_ARRAY: its declared
# length; BYTE_ARRAY: one byte, its text is weighed when read).
_PARQUET_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 12}
_PARQUET_BATCH_ROWS = 65536


def _holds_text(kind: Any) -> bool:
    """Whether an Arrow type is, or nests, text or bytes."""
    import pyarrow as pa

    if isinstance(kind, pa.DictionaryType):
        return _holds_text(kind.value_type)
    if pa.types.is_nested(kind):
        return any(_holds_text(kind.field(i).type) for i in range(kind.num_fields))
    return any(is_text(kind) for is_text in _text_types())


def _text_types() -> tuple[Any, ...]:
    import pyarrow as pa

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
    import pyarrow as pa
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
