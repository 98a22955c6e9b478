"""The one-pass load of a clean UTF-8 CSV respondent file.

pyarrow's CSV reader parses the declared columns (only those) in blocks on its own threads,
the ids of each block are pseudonymised, and DuckDB checks and inserts the blocks as they
come, inside the caller's transaction, through the statement the staged path inserts with
(:func:`.rules.insert_respondents`: a row failing any rule fails it). Whatever would be
reported (a bad cell, a repeated respondent, anything pyarrow reads differently from the
staged path) raises instead: the caller rolls back and the staged path names file, row and
column.
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

from social_leadership.intake import detect_encoding
from social_leadership.reference import country_spellings
from social_leadership.surveys.common import is_global_scope
from social_leadership.surveys.formats.delimited import open_columns
from social_leadership.surveys.microdata.declaration import MicrodataDeclaration
from social_leadership.surveys.microdata.rules import (
    NO_ROWS_REASON,
    REPEAT_REASON,
    insert_respondents,
)
from social_leadership.surveys.pseudonym import pseudonymise_array, survey_key

SPELLING_TABLE = "incoming_country_spellings"
FAST_TABLE = "incoming_respondent_batches"
# pyarrow parses the file in blocks of this size on its own threads while DuckDB inserts
# the blocks already parsed; larger blocks pipeline worse (measured by bench/survey_load).
FAST_BLOCK_BYTES = 1 << 20
# Spreads a wave over 64 bits before it is mixed into a pseudonym for the repeat check.
_WAVE_SPREAD = np.uint64(0x9E3779B97F4A7C15)


class FastPathDeclined(Exception):
    """The one-pass load found something to report; the file takes the staged path."""


@functools.cache
def _country_spellings() -> pa.Table:
    """The reference's country spellings (:func:`country_spellings`: codes, names and
    aliases in their usual cases) without the global scopes, as a table. The one-pass load
    matches a cell to it exactly; any other text (extra spaces, a rare spelling, a global
    scope, no country) fails the country rule here and sends the file to the staged path,
    which normalises every distinct text."""
    spellings = {
        text: code for text, code in country_spellings().items() if not is_global_scope(text)
    }
    return pa.table(
        {"spelling": list(spellings), "country_code": list(spellings.values())},
        schema=pa.schema([("spelling", pa.string()), ("country_code", pa.string())]),
    )


def _fast_reader(
    path: Path, decl: MicrodataDeclaration, key: bytes
) -> tuple[pa.RecordBatchReader, list[np.ndarray], list[np.ndarray]]:
    """The declared columns of a UTF-8 CSV file as Arrow batches, ids already pseudonymised
    (an empty id is a null key, which the rules reject), named as the typed relation of
    :mod:`.rules` names them. The pseudonyms (and waves) of every batch handed out are
    collected in the two lists returned, for the repeat check."""
    encoding = detect_encoding(path)
    if encoding not in {"utf-8", "utf-8-sig"}:
        raise FastPathDeclined("not a UTF-8 file")
    roles = [("country", decl.country_column)]
    roles += [("wave_num", decl.wave_column)] if decl.wave_column else []
    roles += [("weight_num", decl.weight_column)] if decl.weight_column else []
    roles += [(f"a{i}", q.column) for i, q in enumerate(decl.questions)]
    reader, columns = open_columns(
        path,
        decl.file_columns(),
        block_size=FAST_BLOCK_BYTES,
        numeric=[column for _, column in roles[1:]],
        encoding=encoding,
    )
    schema = pa.schema(
        [("respondent_key", pa.uint64()), ("country", pa.string())]
        + [(name, pa.float64()) for name, _ in roles[1:]]
    )
    survey = survey_key(key, decl.source_id)
    pseudonyms: list[np.ndarray] = []
    waves: list[np.ndarray] = []
    id_column = columns[decl.respondent_id_column]

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            keys = pseudonymise_array(survey, batch.column(id_column))
            pseudonyms.append(keys.fill_null(0).to_numpy())
            if decl.wave_column:
                wave_column = batch.column(columns[decl.wave_column])
                waves.append(wave_column.to_numpy(zero_copy_only=False))
            values = [batch.column(columns[column]) for _, column in roles]
            yield pa.RecordBatch.from_arrays([keys, *values], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches()), pseudonyms, waves


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
    reader, pseudonyms, waves = _fast_reader(path, decl, key)
    wave = "s.wave_num" if decl.wave_column else f"cast({decl.wave} as double)"
    weight = "s.weight_num" if decl.weight_column else "cast(1 as double)"
    answers = "".join(f", s.a{index}" for index in range(len(decl.questions)))
    relation = (
        f"select s.respondent_key, s.country, c.country_code, {wave} as wave_num, "
        f"{weight} as weight_num{answers} from {FAST_TABLE} as s "
        f"left join {SPELLING_TABLE} as c on s.country = c.spelling"
    )
    con.register(SPELLING_TABLE, _country_spellings())
    con.register(FAST_TABLE, reader)
    try:
        rows = insert_respondents(con, decl, relation, sha=sha, loaded_at=loaded_at)
    finally:
        con.unregister(FAST_TABLE)
        con.unregister(SPELLING_TABLE)
    keys = np.concatenate(pseudonyms) if pseudonyms else np.empty(0, dtype=np.uint64)
    if not rows or len(keys) != rows:
        raise FastPathDeclined(NO_ROWS_REASON)
    if decl.wave_column:
        wave_values = np.concatenate(waves).astype(np.int64)
        keys = keys ^ (wave_values.view(np.uint64) * _WAVE_SPREAD)
        loaded_waves = sorted(int(w) for w in pd.unique(wave_values))
    else:
        loaded_waves = [int(decl.wave or 0)]
    # The repeat rule, proven cheaply: distinct values prove distinct respondents; a shared
    # value (a repeat, or two respondents of different waves whose mixes clash) is settled
    # exactly, and reported, by the staged path.
    if pd.Series(keys).duplicated().any():
        raise FastPathDeclined(REPEAT_REASON)
    return rows, loaded_waves
