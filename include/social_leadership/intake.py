"""What every intake of outside files shares: the row issue and the quarantine writer.

The roster, history imports and survey files each check their own content, but they report
a problem the same way (:class:`RowIssue`: file, row, column, reason) and keep what they
reject the same way (:class:`QuarantineFolder`): one folder per rejected file,
``<quarantine>/<area>/<time>-<file>/``, holding ``report.json``, the file itself where the
intake gives it up, and where the rows are what went wrong, ``rejected_rows.csv``, its cells
neutralised for spreadsheets (:mod:`social_leadership.safe_csv`).

Text files come from spreadsheets as often as from programs, so the delimited intakes (the
roster, history CSVs, survey CSVs) read them the same way: the encoding
(:func:`detect_encoding`: UTF-8 with or without a byte-order mark, UTF-16, else
Windows-1252, as German Excel writes, Mac Roman, as Mac Excel writes, or DOS Latin-1, as
Excel's "CSV (MS-DOS)" writes), the delimiter
(:func:`detect_delimiter`: ``,``, ``;`` or tab) and the header below title lines
(:func:`find_header`).
"""

from __future__ import annotations

import codecs
import collections
import csv
import dataclasses
import errno
import gzip
import hashlib
import io
import itertools
import json
import mmap
import os
import re
import shutil
import stat
import unicodedata
import zlib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import duckdb

from social_leadership.safe_csv import neutralised_sql, write_csv
from social_leadership.sql import quote_identifier, quote_literal

# A folder or file name holds 255 bytes on common file systems; the time stamp takes 23 of
# them. Longer names are cut and end in a hash of the whole name, so two stay apart.
NAME_LABEL_BYTES = 200
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
REPORT_NAME = "report.json"
REJECTED_ROWS_NAME = "rejected_rows.csv"


@dataclass(frozen=True)
class RowIssue:
    """One problem of an input file: where a person finds it and what is wrong.

    ``row``: the file's own numbering (a CSV line with the header as line 1, a sheet row, a
    Parquet record), 0 for the file as a whole or its sidecar. ``column``: the column (or
    field) at fault as the file names it, ``*`` for the row or file as a whole.
    """

    file: str
    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.column}: {self.reason}"


def utc_stamp(moment: datetime | None = None) -> str:
    """``20250102T030405123456Z``: sorts by time, and is safe in any file name."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime(STAMP_FORMAT)


def name_label(name: str) -> str:
    """``name`` as the part of a file or folder name after a time stamp: as it is, unless too
    long for one, then cut short and ended by a hash of the whole name."""
    if len(os.fsencode(name)) <= NAME_LABEL_BYTES:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
    kept = name
    while len(os.fsencode(kept)) > NAME_LABEL_BYTES - len(digest) - 4:
        kept = kept[:-1]
    return f"{kept}...-{digest}"


def stamped_name(name: str, stamp: str | None = None) -> str:
    """``<time>-<name>``: a file dropped again under the same name never overwrites the first."""
    return f"{stamp or utc_stamp()}-{name_label(name)}"


SETTLE_SETTING = "SLW_INTAKE_SETTLE_SECONDS"


def modified_within(paths: Iterable[Path], settle_seconds: int, now: float) -> float | None:
    """The seconds since the latest change of ``paths`` (those that exist), when that is
    within ``settle_seconds`` of ``now`` on either side (a share's clock may run ahead):
    a file caught while being written, read now, would load cut short and, moved on, never
    whole. None when each has been left alone longer, or ``settle_seconds`` is 0."""
    if settle_seconds <= 0:
        return None
    ages = []
    for path in paths:
        try:
            # A symlink's target's: the file being written is there.
            ages.append(now - path.stat().st_mtime)
        except OSError:
            continue  # gone, or a dangling link: the intake says what it is
    recent = [age for age in ages if abs(age) < settle_seconds]
    return min(recent, key=abs) if recent else None


def left_to_settle(path: Path, age: float, settle_seconds: int) -> str:
    """What the log says of a file left for the next run by :func:`modified_within`."""
    when = f"{age:.0f} s ago" if age >= 1 else "just now"
    return (
        f"{path} changed {when}, less than {SETTLE_SETTING}={settle_seconds} s ago: it may"
        " still be being written, and is left for the next run"
    )


def move_file(source: Path, target: Path) -> None:
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


class QuarantineFolder:
    """``<quarantine_dir>/<area>/<time>-<file>/`` for one rejected file, created on opening."""

    def __init__(self, quarantine_dir: Path, area: str, file_name: str):
        self.stamp = utc_stamp()
        self.path = quarantine_dir / area / stamped_name(file_name, self.stamp)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_report(self, report: dict[str, Any]) -> Path:
        target = self.path / REPORT_NAME
        target.write_text(json.dumps(report, indent=2), encoding="utf-8")
        return target

    def keep(self, source: Path) -> None:
        """Move the rejected file (or its sidecar) in, under its own name."""
        move_file(source, self.path / source.name)

    def write_rejected_rows(self, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
        """Write rows an intake holds in Python to ``rejected_rows.csv``, every cell
        neutralised against formulas (the intake's own columns hold none to spoil)."""
        return write_csv(self.path / REJECTED_ROWS_NAME, header, rows)

    def copy_rejected_rows(
        self,
        con: duckdb.DuckDBPyConnection,
        query: str,
        *,
        as_is: Sequence[str],
        from_file: Sequence[str],
        order_by: str,
    ) -> Path:
        """Write ``query``'s rows (DuckDB runs it, however many) to ``rejected_rows.csv`` in
        ``order_by`` order: the ``as_is`` columns the intake made (line, error field)
        unchanged, the ``from_file`` columns, which came from outside, neutralised against
        formulas."""
        target = self.path / REJECTED_ROWS_NAME
        columns = [quote_identifier(name) for name in as_is]
        columns += [
            f"{neutralised_sql(quote_identifier(name))} as {quote_identifier(name)}"
            for name in from_file
        ]
        con.execute(
            f"copy (select {', '.join(columns)} from ({query}) order by {order_by}) "
            f"to {quote_literal(str(target))} (header, delimiter ',')"
        )
        return target


# --- reading delimited text --------------------------------------------------------------


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is a ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def holds_byte(path: Path, *needles: bytes) -> bool:
    """Whether the file's bytes (decompressed, for a ``.gz``) hold any of the single bytes
    ``needles``: a scan at memory speed of a file mapped (0.04 s a byte for 200 MB read
    before). A file that cannot be mapped or read counts as holding one: callers take it
    for the file that needs the slower, exact reading."""
    if any(len(needle) != 1 for needle in needles):
        raise ValueError(f"holds_byte takes single bytes, not {needles!r}")
    try:
        if path.name.lower().endswith(".gz"):
            with open_binary(path) as handle:
                return any(
                    needle in block
                    for block in iter(lambda: handle.read(1 << 24), b"")
                    for needle in needles
                )
        with path.open("rb") as file:
            if not os.fstat(file.fileno()).st_size:
                return False
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                return any(mapped.find(needle) >= 0 for needle in needles)
    except (OSError, ValueError, EOFError, zlib.error):
        return True


# The first bytes of a spreadsheet workbook: XLSX, XLSM and ODS are ZIP archives; XLS is an
# OLE2 compound file.
_WORKBOOK_SIGNATURES = (
    (b"PK\x03\x04", "a spreadsheet workbook (XLSX or ODS, a ZIP archive)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (XLS)"),
)


def header_key(cell: str) -> str:
    """A header cell as compared with a column's name: its letters and digits only, in any
    case (``Executive ID``, ``executive-id`` and ``EXECUTIVE_ID`` are one)."""
    return re.sub(r"[^0-9a-z]+", "", unicodedata.normalize("NFKC", cell).casefold())


def workbook_kind(path: Path) -> str | None:
    """What workbook the file is, saved under a text name (``roster.csv``), or None."""
    with path.open("rb") as file:
        start = file.read(8)
    return next(
        (kind for signature, kind in _WORKBOOK_SIGNATURES if start.startswith(signature)), None
    )


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (BOM), ``utf-16`` (BOM), ``utf-8``, else ``cp1252`` (German Excel), or
    ``latin-1`` for a text file holding one of the five bytes cp1252 leaves undefined (a file
    with a NUL byte is no text: it stays cp1252, whose reader then refuses it), or
    ``mac_roman`` (Mac Excel's encoding) or ``cp850`` (DOS Latin-1: Excel's "CSV (MS-DOS)")
    for text that reads as words better in that encoding (:func:`_reads_best`; the bytes
    cp1252 leaves undefined are letters in both, so a file holding them is often one of
    these: ``Ad\x81a`` is DOS Latin-1's ``Adüa``). A file that
    is UTF-8 but for a few bytes (a row pasted from a Windows file) is
    :data:`UTF8_WITH_CP1252`: read as Windows-1252, each of its UTF-8 letters would be two
    (``KÃ¤ser``)."""
    with open_binary(path) as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        handle.seek(0)
        if _decodes(handle, "utf-8"):
            return "utf-8"
        handle.seek(0)
        windows = "cp1252" if _decodes(handle, "cp1252", text_only=True) else "latin-1"
        handle.seek(0)
        sample = _encoding_sample(handle)
    if _holds_utf8_text(sample):
        return UTF8_WITH_CP1252
    if b"\x00" in sample:
        return windows
    return _reads_best(sample, windows)


# Mac Excel's "CSV" and "CSV (Macintosh)" write Mac Roman, whose letters (ä 0x8A, ö 0x9A,
# ü 0x9F, ß 0xA7) are Windows-1252's Š, š, Ÿ and §; Windows Excel's "CSV (MS-DOS)" writes
# the DOS code page 850 (ä 0x84, ö 0x94, ü 0x81, é 0x82, ß 0xE1), whose letters are Mac
# Roman's Ñ, î, Å, Ç and ·: each of the three decodes any such file, so the encoding is the
# one whose reading has words. A sample decides: the first megabyte, and the next
# megabytes that hold non-ASCII bytes (a large file sorted by country may spell its first
# umlaut far down).
_ENCODING_SAMPLE_BYTES = 1 << 20
_ENCODING_SAMPLE_PIECES = 3


def _encoding_sample(handle: IO[bytes]) -> bytes:
    """The file's first megabyte, then each later megabyte holding a non-ASCII byte, up to
    :data:`_ENCODING_SAMPLE_PIECES` in all (each piece on a line of its own)."""
    pieces = [handle.read(_ENCODING_SAMPLE_BYTES)]
    while len(pieces) < _ENCODING_SAMPLE_PIECES:
        piece = handle.read(_ENCODING_SAMPLE_BYTES)
        if not piece:
            break
        if not piece.isascii():
            pieces.append(piece)
    return b"\n".join(pieces)


# What a Western European text holds besides ASCII: Latin-1's letters, quotation marks,
# bullets and trademark signs (each where words have them, below), other typographic signs
# (dashes, the ellipsis, currency, §, °, ‰, a no-break space) before no letter (the
# encodings have them, at other bytes).
_LATIN_LETTERS = frozenset(
    chr(code) for code in range(0xC0, 0x100) if chr(code) not in "\u00d7\u00f7"
) | frozenset("\u0152\u0153")
_QUOTES = frozenset("\u2018\u2019\u201a\u201c\u201d\u201e\u00ab\u00bb\u2022\u2122\u00ae\u00a9")
# An apostrophe (U+2019) or a trademark sign (Windows™Server) may stand between two letters;
# a quotation mark or bullet may not; a low quotation mark opens a quotation, so follows no
# letter; a trademark or registered sign follows a name, so starts no word. DOS Latin-1's
# ä, é and Ö read as Windows-1252 break these: a low double quote inside Käser, a low
# single one ending Café, a trademark sign starting Österreich.
_OUTSIDE_WORDS = frozenset("\u201c\u201d\u00ab\u00bb\u2022")
_OPENING = frozenset("\u201a\u201e")
_AFTER_WORDS = frozenset("\u2122\u00ae")
# The letters Western European languages use most: when Mac Roman and DOS Latin-1 both read
# a file better than Windows-1252 and equally well, the one with more of them wins (Köln:
# Mac Roman reads DOS Latin-1's ö as î).
_COMMON_LETTERS = frozenset("äöüßéèàáçñåøæíóúÄÖÜÉÅØ")
# Before no letter too: the times sign (3 times a week, written with it), halves and
# quarters.
_SIGNS = frozenset(
    "\u2013\u2014\u2026\u20ac\u00a3\u00a5\u00a2\u00b0\u00a7\u2030\u00b1\u00b5\u00a0"
    "\u00d7\u00bd\u00bc"
)
# Signs elsewhere: superscript figures after a letter or figure (m², a footnote's ¹) and ordinal
# marks after a figure (1º, 2ª, Nº), each before no letter or figure; a middle dot
# anywhere but inside a word (CEO · Founder, CEO·CFO, · a bullet; Catalan's l·l). DOS
# Latin-1 reads their bytes as capitals (À, Î) or box drawing; Mac Roman's ≤, ≥ and ™
# are Windows-1252's ², ³ and ª (x≥3, Windows™), its · Windows-1252's á (inside a word).
_SUPERSCRIPTS = frozenset("\u00b9\u00b2\u00b3")
_ORDINALS = frozenset("\u00aa\u00ba")
_MIDDLE_DOT = "\u00b7"
# The accented small letters that are words alone: French à, Portuguese é, Italian è,
# Scandinavian å (Norwegian "to"), Spanish ó (1 ó 2).
_SMALL_WORDS = frozenset("\u00e0\u00e9\u00e8\u00e5\u00f3")
# Letters of other alphabets Windows-1252 holds (Š š Ž ž Ÿ): a word may start with one
# (Škoda), and a small š or ž may end a word or come before a vowel (Babiš, Hašek); other
# places inside a word are Mac Roman's ä, ö, ü (FŸhrung, Kšln, Schršder: German's ö comes
# before a consonant). French Œ and œ are Latin letters (Cœur).
_OTHER_LETTERS = frozenset("\u0160\u0161\u017d\u017e\u0178")
_VOWELS = frozenset("aeiouyáéíóúýěů")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


# UTF-8 whose bytes UTF-8 does not decode are Windows-1252's (Latin-1's for the five it
# leaves undefined): a UTF-8 file with a row pasted from a Windows one. A codec of Python's,
# registered below, so every reader that takes an encoding's name reads it.
UTF8_WITH_CP1252 = "slw_utf8_with_cp1252"
_WINDOWS_BYTES = "slw_windows_bytes"


def _windows_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    text = "".join(bytes([byte]).decode("cp1252", errors="ignore") or chr(byte) for byte in bad)
    return text, error.end


def _utf8_with_cp1252_decode(data: bytes, errors: str = "strict") -> tuple[str, int]:
    return codecs.utf_8_decode(data, _WINDOWS_BYTES, True)


class _Utf8WithCp1252Decoder(codecs.BufferedIncrementalDecoder):
    def _buffer_decode(self, data: bytes, errors: str, final: bool) -> tuple[str, int]:
        return codecs.utf_8_decode(data, _WINDOWS_BYTES, final)


def _find_codec(name: str) -> codecs.CodecInfo | None:
    if name != UTF8_WITH_CP1252:
        return None
    utf8 = codecs.lookup("utf-8")
    return codecs.CodecInfo(
        name=UTF8_WITH_CP1252,
        encode=utf8.encode,
        decode=_utf8_with_cp1252_decode,
        incrementalencoder=utf8.incrementalencoder,
        incrementaldecoder=_Utf8WithCp1252Decoder,
        streamreader=utf8.streamreader,
        streamwriter=utf8.streamwriter,
    )


codecs.register_error(_WINDOWS_BYTES, _windows_bytes)
codecs.register(_find_codec)


# UTF-8's Latin-1 letters (à to ÿ, À to ß), signs (no-break space to ¿) and typographic
# quotes, dashes, ellipsis and euro sign: read as Windows-1252, each is nonsense (Ã¤, Â°,
# â€™) that no text of that encoding holds.
_UTF8_TELLTALE = re.compile(rb"\xc3[\x80-\xbf]|\xc2[\xa0-\xbf]|\xe2\x80[\x93-\xa6]|\xe2\x82\xac")
_HIGH_BYTES = bytes(range(0x80, 0x100))


def _holds_utf8_text(sample: bytes) -> bool:
    """Whether ``sample``, which UTF-8 does not decode, holds UTF-8's letters or signs all
    the same: a UTF-8 file with a few bytes of another encoding. A text's (no NUL byte, most
    bytes ASCII): binary data holds such pairs by chance."""
    ascii_bytes = len(sample.translate(None, _HIGH_BYTES))
    if b"\x00" in sample or (len(sample) - ascii_bytes) * 4 > len(sample):
        return False
    return _UTF8_TELLTALE.search(sample) is not None


# The single-byte encodings told apart by their words, a tie going to the earlier one.
_OTHER_SINGLE_BYTE = ("mac_roman", "cp850")


def _reads_best(sample: bytes, windows: str) -> str:
    """Of ``windows`` (cp1252 or latin-1), Mac Roman and DOS Latin-1, the encoding in which
    the most of ``sample``'s non-ASCII characters read as a Western European text's: a tie
    is Windows', then Mac Roman's."""
    if sample.isascii():
        return windows
    windows_count = _plausible(sample.decode(windows, errors="replace"))[0]
    best, best_count = windows, (windows_count, 0)
    for encoding in _OTHER_SINGLE_BYTE:
        count = _plausible(sample.decode(encoding))
        if count[0] > windows_count and count > best_count:
            best, best_count = encoding, count
    return best


def _plausible(text: str) -> tuple[int, int]:
    """How many of ``text``'s non-ASCII characters are where a Western European text has
    them (Mac Roman's Ö read as Windows-1252 is an ellipsis before a letter: ``…sterreich``;
    its ß a section sign inside a word: ``Stra§e``), and how many of those are its most
    used letters. A letter's case fits its word: no capital after a small letter
    (``GeschÑft``), no small letter before a capital (``JöRGEN``), no capital between a
    letter and a small one (``JÅrgen``); a small letter alone is a word only as one of
    :data:`_SMALL_WORDS` (DOS Latin-1's ü alone is a byte Windows-1252 leaves undefined),
    where a capital alone may be a word (Italian È), an initial or a sign (``Ø``)."""
    count = common = 0
    for found in _NON_ASCII.finditer(text):
        char = found.group()
        at = found.start()
        before = text[at - 1] if at else " "
        after = text[at + 1] if at + 1 < len(text) else " "
        if char in _QUOTES:
            count += not (
                (char in _OUTSIDE_WORDS and before.isalpha() and after.isalpha())
                or (char in _OPENING and before.isalpha())
                or (char in _AFTER_WORDS and after.isalpha() and not before.isalpha())
            )
        elif char in _SIGNS:
            count += not after.isalpha()
        elif char in _SUPERSCRIPTS:
            count += before.isalnum() and not after.isalnum()
        elif char in _ORDINALS:
            count += (before.isdigit() or before in "Nn") and not after.isalnum()
        elif char == _MIDDLE_DOT:
            # Not inside a word, where Mac Roman reads Windows' á so, but in Catalan's l·l.
            count += not (before.isalpha() and after.islower()) or before.lower() == after == "l"
        elif char in _LATIN_LETTERS:
            alone = not (before.isalpha() or after.isalpha())
            fits = not (
                (char.isupper() and (before.islower() or (before.isalpha() and after.islower())))
                or (char.islower() and after.isupper())
                or (alone and char.islower() and char not in _SMALL_WORDS)
            )
            count += fits
            common += fits and char in _COMMON_LETTERS
        elif char in _OTHER_LETTERS:
            count += not before.isalpha() or (
                char.islower() and (not after.isalpha() or after in _VOWELS)
            )
    return count, common


def _decodes(handle: IO[bytes], encoding: str, *, text_only: bool = False) -> bool:
    """Whether the rest of ``handle`` decodes; with ``text_only``, a NUL byte counts as
    decoding (the caller keeps its encoding for a file that is no text)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            if text_only and b"\x00" in chunk:
                return True
            if chunk.isascii() and not decoder.getstate()[0]:
                # ASCII is itself in every encoding asked for here, and checked many times
                # faster than decoded: most of a large export is.
                continue
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def record_start_lines(
    text: Iterable[str], header_lines: int, delimiter: str, records: Collection[int]
) -> dict[int, int]:
    """The line each of the data ``records`` of the delimited ``text`` starts on (record 1
    is the first below the ``header_lines`` lines above the data), counted as DuckDB and
    pyarrow count records: a blank line is none, and a record goes on over the line breaks
    inside its quoted cells. Reads up to the last record asked for; a record the csv module
    cannot read (a cell over its field size limit) ends the count, and the records after
    it are left out."""
    wanted = set(records)
    last = max(wanted, default=0)
    found: dict[int, int] = {}
    lines = iter(text)
    for _ in itertools.islice(lines, header_lines):
        pass
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True)
    record, read = 0, 0
    try:
        for cells in reader:
            start, read = header_lines + read + 1, reader.line_num
            if not cells:
                continue
            record += 1
            if record in wanted:
                found[record] = start
            if record >= last:
                break
    except csv.Error:
        pass
    return found


# Excel's first line naming the delimiter of the lines below it: sep=;
SEPARATOR_LINE = re.compile(r"sep=([^\r\n])\r?\n?")


# The records that are not blank a table's header is looked for in (the roster, history
# files), below the title lines an export or a sheet has above its table: a line each, or
# the lines a quoted cell's line breaks give it.
HEADER_SEARCH_LINES = 20


# Why a row whose quote is never closed is rejected (:class:`ClosedQuoteReader`).
UNCLOSED_QUOTE = (
    "a quote opened in this row is never closed (close it; a quote inside a quoted cell is "
    'written twice: "")'
)


class _RecordLines:
    """The lines handed to a csv reader, the ones of the record being read kept; lines
    given back (:meth:`give_back`) come again before the rest of the text."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.source = iter(lines)
        self.pending: collections.deque[str] = collections.deque()
        self.record: list[str] = []

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        line = self.pending.popleft() if self.pending else next(self.source)
        self.record.append(line)
        return line

    def give_back(self, lines: list[str]) -> None:
        self.pending.extendleft(reversed(lines))


class ClosedQuoteReader:
    """``csv.reader`` over ``lines``, except for a quote opened and never closed: the csv
    reader (in its lenient mode, which the intakes keep for the rest: ``"Jane" Doe`` reads
    as ``Jane Doe``) reads every line below it into one cell, silently, up to the end of the
    text or the next quote. A record that does so (the rest of the text in one cell; lines
    in a cell that the strict rules cannot read past its first line, a quote that closes on
    a later line with text after it; lines that make a cell over the cell limit) is read
    from its own first line alone, :attr:`unclosed` says so (the caller rejects the row, or
    the file), and the lines below it are read as rows again. ``line_num``: the line the
    record returned ends on, as the csv reader's."""

    def __init__(self, lines: Iterable[str], **dialect: Any) -> None:
        self._dialect = dialect
        # Given the caller's own lines, it gives back to them the lines below a quote left
        # open: find_header reads on from there, one record at a time.
        self._lines = lines if isinstance(lines, _RecordLines) else _RecordLines(lines)
        self._start(0)
        self.line_num = 0
        self.unclosed = False

    def _start(self, offset: int) -> None:
        self._reader = csv.reader(self._lines, **self._dialect)
        self._offset = offset  # the lines of the text before the reader's first

    def __iter__(self) -> ClosedQuoteReader:
        return self

    def __next__(self) -> list[str]:
        start = self._offset + self._reader.line_num + 1
        self._lines.record = []
        try:
            cells = next(self._reader)
        except csv.Error:
            # A cell over the limit is the caller's to say, but for a quote left open: one
            # that took lines below it without a quote in them (read on, it took every row
            # up to the limit). A cell that closes on a later line is a long cell.
            self.line_num = self._offset + self._reader.line_num
            quote = self._dialect.get("quotechar", '"')
            below = self._lines.record[1:]
            # A quote written twice is a quote inside the cell: it closes nothing.
            if not below or any(quote in line.replace(quote * 2, "") for line in below):
                raise
            self.unclosed = True
            return self._first_line_alone(start)
        self.line_num = self._offset + self._reader.line_num
        lines = self._lines.record
        # One line: its last cell holds the line break only when a quote left open there
        # ran to the end of the text; a last line without one whose quote is open ends the
        # text inside a cell (a file cut short while being written: "JoeKae). More: the
        # strict rules say whether its cells are quoted as they should be.
        if len(lines) > 1:
            self.unclosed = self._not_strict(lines)
        else:
            self.unclosed = bool(cells) and (
                cells[-1].endswith(("\n", "\r")) or self._ends_in_open_quote(lines)
            )
        return self._first_line_alone(start) if self.unclosed else cells

    def _ends_in_open_quote(self, lines: list[str]) -> bool:
        """Whether ``lines``, the text's last line without a line break, ends inside a
        quoted cell (read strictly, the text ends before the quote closes)."""
        if not lines or lines[0].endswith(("\n", "\r")):
            return False
        try:
            next(csv.reader(lines[:1], **{**self._dialect, "strict": True}), [])
        except csv.Error as exc:
            return "unexpected end of data" in str(exc)
        return False

    def _first_line_alone(self, start: int) -> list[str]:
        """The record starting on line ``start`` read from that line alone; the lines it
        took after it are read again, as rows of their own."""
        lines = self._lines.record
        self._lines.give_back(lines[1:])
        self._start(start)
        self.line_num = start
        return next(csv.reader(lines[:1], **self._dialect), [])

    def _not_strict(self, lines: list[str]) -> bool:
        """Whether the strict rules refuse the record from the cell that goes on over its
        first line's end: the cells that close on the first line are written again as the
        rules want them (a lenient ``"Jane" Doe`` there is no fault of the cell after it),
        then the open cell and the lines below it are read strictly."""
        first = next(csv.reader(lines[:1], **self._dialect), [])
        if first and first[-1].endswith(("\n", "\r")):
            quote = self._dialect.get("quotechar", '"')
            closed = io.StringIO()
            if len(first) > 1:
                writer = csv.writer(closed, lineterminator="", **self._dialect)
                writer.writerow(first[:-1])
                closed.write(self._dialect.get("delimiter", ","))
            closed.write(quote + first[-1].replace(quote, quote * 2))
            lines = [closed.getvalue(), *lines[1:]]
        try:
            for _ in csv.reader(lines, strict=True, **self._dialect):
                pass
        except csv.Error:
            return True
        return False


@dataclass(frozen=True)
class HeaderLine:
    """A text file's header line, as :func:`find_header` finds it.

    ``number``: its line in the file (1-based); ``line``: as read; ``delimiter``: the one
    Excel's ``sep=`` line declares (``declared``), else :func:`detect_delimiter`'s;
    ``cells``: its cells, stripped; ``above``: the lines above it (blank ones and a ``sep=``
    line included); ``found``: whether the search accepted it, else it is the first line
    that is not blank, read as the header so that the caller says what it lacks (``""`` on
    line 1 for a file of blank lines); ``span``: the lines it takes (a cell's line breaks:
    ``line`` holds them all), :attr:`end` the last.
    """

    number: int
    line: str
    delimiter: str
    declared: bool
    cells: list[str]
    above: tuple[str, ...]
    found: bool
    span: int = 1

    @property
    def end(self) -> int:
        """The line the header ends on: its ``number``, or a later one when a quoted cell
        holds line breaks (``span``: the lines it takes)."""
        return self.number + self.span - 1

    @property
    def title(self) -> str:
        """The first line above the header that holds a word (a title), else ``""``."""
        return next(
            (
                line.strip()
                for line in self.above
                if re.search(r"\w", line) and not SEPARATOR_LINE.fullmatch(line)
            ),
            "",
        )


class HeaderLineError(csv.Error):
    """A line searched for the header that the csv module cannot split (a cell over its
    limit): ``number``, ``line`` and ``delimiter`` say which; the csv error is the cause."""

    def __init__(self, number: int, line: str, delimiter: str, error: csv.Error) -> None:
        super().__init__(f"line {number}: {error}")
        self.number, self.line, self.delimiter = number, line, delimiter


def find_header(
    text: Iterable[str],
    accepts: Callable[[list[str]], bool],
    *,
    fits: Callable[[list[str]], bool] | None = None,
    limit: int = HEADER_SEARCH_LINES,
) -> HeaderLine:
    """The header among the first ``limit`` records of ``text`` that are not blank: the
    first whose cells ``accepts`` and ``fits``, else the first ``accepts`` (a title row
    naming two columns above the real header does not fit), else the first of them
    (:attr:`HeaderLine.found` says which). Title and blank lines above it are skipped.
    Excel's ``sep=;`` first line gives the delimiter of every line below it. A record is
    read as :class:`ClosedQuoteReader` reads it, each with the delimiter of its first line:
    a header cell's line breaks (Excel's Alt+Enter, ``"Snapshot`` / ``date"``) make one
    header of its lines, and the lines inside a row's quoted cell are never taken for a
    header. Reads ``text`` as far as the search goes, past the header when one accepted
    does not fit or none is found: to go on below the header, read ``text`` anew and skip
    :attr:`HeaderLine.end` lines."""
    lines: list[str] = []
    declared: str | None = None
    first: HeaderLine | None = None
    accepted: HeaderLine | None = None
    searched = 0
    source = _RecordLines(text)
    while True:
        line = next(source, None)
        if line is None:
            break
        lines.append(line)
        if line.isspace() or not line:
            continue
        hint = SEPARATOR_LINE.fullmatch(line) if first is None and declared is None else None
        if hint:
            declared = hint[1]
            continue
        delimiter = declared or detect_delimiter(line)
        number = len(lines)
        cells, record = _read_record(line, source, delimiter, number)
        # The lines of a quoted cell that goes on below its first are read with it: never a
        # header of their own (a row's note closing on the line below was read as one, glued
        # the rows under it together and failed the file with a csv error).
        lines.extend(record[1:])
        here = HeaderLine(
            number,
            "".join(record),
            delimiter,
            declared is not None,
            cells,
            tuple(lines[: number - 1]),
            True,
            len(record),
        )
        if accepts(cells):
            if fits is None or fits(cells):
                return here
            accepted = accepted or here
        first = first or dataclasses.replace(here, found=False)
        searched += 1
        if searched == limit:
            break
    return accepted or first or HeaderLine(1, "", declared or ",", bool(declared), [], (), False)


def _read_record(
    line: str, source: _RecordLines, delimiter: str, number: int
) -> tuple[list[str], list[str]]:
    """The cells, stripped, of the record that begins on ``line`` (line ``number``, just
    read from ``source``) and its lines, as :class:`ClosedQuoteReader` reads it: a quote
    never closed is its first line's alone, the lines below left in ``source``. Raise
    :class:`HeaderLineError` for a record the csv module cannot read (a cell over its
    limit)."""
    source.give_back([line])
    reader = ClosedQuoteReader(source, delimiter=delimiter)
    try:
        cells = next(reader)
    except csv.Error as exc:
        raise HeaderLineError(number, line, delimiter, exc) from exc
    return [cell.strip() for cell in cells], source.record[: reader.line_num]


def detect_delimiter(header_line: str) -> str:
    """The most frequent of ``;``, ``,`` and tab outside quotes in the header line."""
    # Each quote toggles quoting, so every other piece between quotes is unquoted text;
    # counting there (in C) keeps a header line of many megabytes cheap.
    unquoted = header_line.split('"')[::2] if '"' in header_line else [header_line]
    counts = {d: sum(piece.count(d) for piece in unquoted) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
