"""The one-pass load of a clean UTF-8 CSV respondent file.

pyarrow's CSV reader parses the declared columns (only those) in blocks on its own threads,
the ids of each block are pseudonymised and its countries looked up, and DuckDB checks and
inserts the blocks as they come, inside the caller's transaction, through the statement
the staged path inserts with (:func:`.rules.insert_respondents`: a row failing any rule
fails it). Whatever would be reported (a bad cell, a repeated respondent, anything pyarrow
reads differently from the staged path) raises instead: the caller rolls back and the
staged path names file, row and column.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from social_leadership.intake import detect_encoding
from social_leadership.reference import country_spellings
from social_leadership.surveys.common import MISSING_MARKS, is_global_scope
from social_leadership.surveys.formats.delimited import (
    OpenedColumns,
    open_columns,
    unclosed_quote_issues,
)
from social_leadership.surveys.microdata.declaration import MicrodataDeclaration
from social_leadership.surveys.microdata.rules import (
    NO_ROWS_REASON,
    REPEAT_REASON,
    insert_respondents,
)
from social_leadership.surveys.pseudonym import pseudonymise_array, survey_key

FAST_TABLE = "incoming_respondent_batches"
RECORDS_OVER_LINES = "a quote is never closed"
# pyarrow parses the file in blocks of this size on its own threads while DuckDB inserts
# the blocks already parsed; larger blocks pipeline worse (measured by bench/survey_load).
FAST_BLOCK_BYTES = 1 << 20
# Spreads a wave over 64 bits before it is mixed into a pseudonym for the repeat check.
_WAVE_SPREAD = np.uint64(0x9E3779B97F4A7C15)


class FastPathDeclined(Exception):
    """The one-pass load found something to report; the file takes the staged path."""


@functools.cache
def _country_spellings() -> tuple[pa.Array, pa.Array]:
    """The reference's country spellings (:func:`country_spellings`: codes, names and
    aliases in their usual cases) without the global scopes, and the code of each. The
    one-pass load matches a cell to them exactly, in Arrow as each block is read (DuckDB's
    insert, the load's slowest step, is spared a join); any other text (extra spaces, a rare
    spelling, a global scope, no country) fails the country rule here and sends the file to
    the staged path, which normalises every distinct text."""
    spellings = {
        text: code
        for text, code in country_spellings().items()
        # NA is Namibia's code and R's missing value: the staged path reports it.
        if not is_global_scope(text) and text.casefold() not in MISSING_MARKS
    }
    return pa.array(list(spellings), pa.string()), pa.array(list(spellings.values()), pa.string())


def _fast_reader(
    path: Path, decl: MicrodataDeclaration, key: bytes
) -> tuple[pa.RecordBatchReader, list[np.ndarray], set[int], OpenedColumns]:
    """The declared columns of a UTF-8 CSV file as Arrow batches, ids already pseudonymised
    (an empty id is a null key, which the rules reject) and countries looked up (null: no
    exact spelling), named as the typed relation of :mod:`.rules` names them; and the file
    as opened (its lines are counted against the records read).

    As DuckDB takes each batch (on the thread of its scan), the batch's pseudonyms mixed
    with their waves (for the repeat check) and its waves are collected in the list and the
    set returned: that work is done block by block while the insert runs, and only the
    mixed keys are joined into one array afterwards (every fresh array of a million rows
    costs page faults). A wave that is not a whole number in range is mixed, and collected,
    as a meaningless value; the rules fail its row, and the load, anyway."""
    encoding = detect_encoding(path)
    if encoding not in {"utf-8", "utf-8-sig"}:
        raise FastPathDeclined("not a UTF-8 file")
    roles = [("country", decl.country_column)]
    roles += [("wave_num", decl.wave_column)] if decl.wave_column else []
    roles += [("weight_num", decl.weight_column)] if decl.weight_column else []
    roles += [(f"a{i}", q.column) for i, q in enumerate(decl.questions)]
    opened = open_columns(
        path,
        decl.file_columns(),
        block_size=FAST_BLOCK_BYTES,
        numeric=[column for _, column in roles[1:]],
        encoding=encoding,
    )
    reader, columns = opened.reader, opened.columns
    schema = pa.schema(
        [("respondent_key", pa.uint64()), ("country", pa.string()), ("country_code", pa.string())]
        + [(name, pa.float64()) for name, _ in roles[1:]]
    )
    spelling, country_code = _country_spellings()
    survey = survey_key(key, decl.source_id)
    mixed_keys: list[np.ndarray] = []
    waves: set[int] = set() if decl.wave_column else {int(decl.wave or 0)}
    id_column = columns[decl.respondent_id_column]

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            keys = pseudonymise_array(survey, batch.column(id_column))
            mixed = keys.fill_null(0).to_numpy()
            if decl.wave_column:
                wave_column = batch.column(columns[decl.wave_column])
                with np.errstate(invalid="ignore"):
                    wave_values = wave_column.to_numpy(zero_copy_only=False).astype(np.int64)
                mixed = mixed ^ (wave_values.view(np.uint64) * _WAVE_SPREAD)
                waves.update(int(wave) for wave in pd.unique(wave_values))
            mixed_keys.append(mixed)
            country, *values = (batch.column(columns[column]) for _, column in roles)
            codes = pc.take(country_code, pc.index_in(country, value_set=spelling))
            yield pa.RecordBatch.from_arrays([keys, country, codes, *values], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches()), mixed_keys, waves, opened


def insert_fast(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    decl: MicrodataDeclaration,
    key: bytes,
    *,
    sha: str,
    loaded_at: datetime,
) -> tuple[int, list[int]]:
    """Read, check, pseudonymise and insert a UTF-8 CSV file in one pass; return the rows
    and the waves loaded. Raise for anything the staged path would report."""
    reader, mixed_keys, waves, opened = _fast_reader(path, decl, key)
    wave = "s.wave_num" if decl.wave_column else f"cast({decl.wave} as double)"
    weight = "s.weight_num" if decl.weight_column else "cast(1 as double)"
    answers = "".join(f", s.a{index}" for index in range(len(decl.questions)))
    relation = (
        f"select s.respondent_key, s.country, s.country_code, {wave} as wave_num, "
        f"{weight} as weight_num{answers} from {FAST_TABLE} as s"
    )
    con.register(FAST_TABLE, reader)
    try:
        rows = insert_respondents(con, decl, relation, sha=sha, loaded_at=loaded_at)
    finally:
        con.unregister(FAST_TABLE)
    keys = np.concatenate(mixed_keys) if mixed_keys else np.empty(0, dtype=np.uint64)
    if not rows or len(keys) != rows:
        raise FastPathDeclined(NO_ROWS_REASON)
    if unclosed_quote_issues(path, opened, len(keys)):
        # Read on, a quote left open took every row below it, unseen when its column is not
        # one read: the staged path reports it (only a file with a record going on over
        # lines is read row by row to tell).
        raise FastPathDeclined(RECORDS_OVER_LINES)
    # The repeat rule, proven cheaply: distinct values prove distinct respondents; a shared
    # value (a repeat, or two respondents of different waves whose mixes clash) is settled
    # exactly, and reported, by the staged path. Sorted in place, equal values are
    # neighbours (numpy sorts 1M keys about six times faster than pandas finds duplicates).
    keys.sort()
    if (keys[1:] == keys[:-1]).any():
        raise FastPathDeclined(REPEAT_REASON)
    return rows, sorted(waves)
