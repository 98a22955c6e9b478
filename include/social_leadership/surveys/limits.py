"""What reading one survey file may cost: the ``SLW_SURVEY_MAX_*`` limits in force.

The limits are settings (:mod:`social_leadership.settings`).
:func:`~social_leadership.surveys.ingest.load_file` puts them in force while it reads a file,
so every reader (CSV, XLSX, Parquet, published or microdata) checks the same values without
each call passing them on. A file past a limit is rejected with a reason naming the limit
and its setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from social_leadership.settings import (
    DEFAULT_SURVEY_MAX_CELL_CHARS,
    DEFAULT_SURVEY_MAX_FILE_BYTES,
    DEFAULT_SURVEY_MAX_PUBLISHED_BYTES,
    DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES,
    ENV_PREFIX,
    Settings,
)

MAX_FILE_BYTES_SETTING = f"{ENV_PREFIX}SURVEY_MAX_FILE_BYTES"
MAX_CELL_CHARS_SETTING = f"{ENV_PREFIX}SURVEY_MAX_CELL_CHARS"
MAX_XLSX_UNCOMPRESSED_SETTING = f"{ENV_PREFIX}SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES"
MAX_PUBLISHED_SETTING = f"{ENV_PREFIX}SURVEY_MAX_PUBLISHED_BYTES"


@dataclass(frozen=True)
class IntakeLimits:
    """``max_file_bytes``: a landed file, a ``.csv.gz`` once decompressed, a Parquet file decoded.
    ``max_cell_chars``: one cell read as text. ``max_xlsx_uncompressed_bytes``: all parts
    of an XLSX archive once decompressed (its shared strings are held in memory whole), and
    the cells of a sheet's table (rows x header width, each held in memory).
    ``max_published_bytes``: a file read as a table of published figures (held in memory
    whole), a ``.csv.gz`` as it expands."""

    max_file_bytes: int = DEFAULT_SURVEY_MAX_FILE_BYTES
    max_cell_chars: int = DEFAULT_SURVEY_MAX_CELL_CHARS
    max_xlsx_uncompressed_bytes: int = DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES
    max_published_bytes: int = DEFAULT_SURVEY_MAX_PUBLISHED_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeLimits:
        return cls(
            max_file_bytes=settings.survey_max_file_bytes,
            max_cell_chars=settings.survey_max_cell_chars,
            max_xlsx_uncompressed_bytes=settings.survey_max_xlsx_uncompressed_bytes,
            max_published_bytes=settings.survey_max_published_bytes,
        )

    def file_too_large(self, size: int, what: str = "file is") -> str:
        return (
            f"{what} {size} bytes, over the limit of {self.max_file_bytes} bytes "
            f"({MAX_FILE_BYTES_SETTING})"
        )

    def published_too_large(self, size: int, sidecar: str, what: str = "is") -> str:
        """A file of published figures past their limit: what it is more likely to be, and
        what to do either way."""
        return (
            f"{what} {size} bytes, over the {self.max_published_bytes} bytes a table of "
            f"published figures may hold ({MAX_PUBLISHED_SETTING}): published figures are a "
            "row per country, question and wave, some thousands of rows. Respondent data "
            f"needs its sidecar {sidecar} declaring its questions and agreeing answers, and "
            'its respondent id column (README "Surveys"); a larger table of figures may be '
            f"split by wave or country, or {MAX_PUBLISHED_SETTING} raised"
        )

    def cell_too_long(self, length: int | None) -> str:
        """``length``: None where the reader stops at the limit, never holding the cell."""
        limit = f"the limit of {self.max_cell_chars} characters ({MAX_CELL_CHARS_SETTING})"
        if length is None:
            return f"cell is longer than {limit}"
        return f"cell is {length} characters long, over {limit}"

    def xlsx_table_too_large(self, width: int) -> str:
        """A sheet's table holds no more cells (rows x header width) than the XLSX limit
        allows bytes: each is held in memory, an empty one too."""
        return (
            f"the table holds more than {self.max_xlsx_uncompressed_bytes} cells ({width} "
            f"columns a row, up to the header's last cell), one for each byte the limit "
            f"{MAX_XLSX_UNCOMPRESSED_SETTING} allows"
        )

    def xlsx_too_large(self, size: int, what: str = "expands to") -> str:
        return (
            f"{what} {size} bytes uncompressed, over the limit of "
            f"{self.max_xlsx_uncompressed_bytes} bytes ({MAX_XLSX_UNCOMPRESSED_SETTING})"
        )


_IN_FORCE: ContextVar[IntakeLimits | None] = ContextVar("survey_intake_limits", default=None)


def limits_in_force() -> IntakeLimits:
    """The limits of the file being read (the defaults outside :func:`applied`)."""
    return _IN_FORCE.get() or IntakeLimits()


@contextmanager
def applied(limits: IntakeLimits) -> Iterator[IntakeLimits]:
    token = _IN_FORCE.set(limits)
    try:
        yield limits
    finally:
        _IN_FORCE.reset(token)
