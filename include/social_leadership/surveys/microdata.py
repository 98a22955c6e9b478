"""Respondent microdata into ``raw.survey_questions`` and ``raw.survey_respondent_answers``
(one row per respondent: pseudonym, country, wave, weight and the answers as a list in
declared question order, ``raw.survey_questions.question_position``).

A microdata file (CSV, XLSX or Parquet: one row per respondent) needs a sidecar
``<stem>.survey.json`` beside it, declaring the source, the columns and, per question, the
answer scale and which answers count as agreeing::

    {
      "shape": "microdata",
      "source_id": "acme_trust",
      "source_name": "Acme Trust Survey",
      "citation": "Acme Research, respondent export of 2024-11-30",
      "is_synthetic": false,
      "wave": 2024,
      "columns": {"respondent_id": "resp", "country": "land", "wave": "welle",
                  "weight": "gewicht"},
      "questions": [
        {"question_id": "ceo_take_stand", "column": "q1",
         "text": "CEOs should take the lead on change", "scale": [1, 9], "agree": [6, 9],
         "missing": [99]}
      ]
    }

``columns`` is optional (defaults: ``respondent_id``, ``country``, ``wave``, ``weight``);
``"weight": null`` means an unweighted survey (every weight 1); ``wave`` is either a
column or the top-level constant. ``agree`` is the inclusive range of agreeing answers
(``[6, 9]``: the top four boxes of a 9-point scale, as the Edelman Trust Barometer counts
trust); ``missing`` lists "don't know"/refused codes, which, like an empty cell, leave the
respondent out of that question's base. Only the declared columns are ever read: free-text
and every other column never reach the warehouse. Respondent ids are stored only as keyed
pseudonyms (see ``pseudonym.py``).

Nothing runs in a Python row loop: rows are read by pyarrow's CSV reader (every CSV
file, both paths alike), openpyxl or pyarrow's Parquet reader, checked by vectorised SQL,
and pseudonymised a column chunk at a time (``pseudonym.py``). A UTF-8 CSV file is first
loaded in one pass (:func:`insert_fast`): pyarrow parses the declared columns in blocks,
the ids of each block are pseudonymised, and DuckDB checks and inserts the blocks as they
come, inside the caller's transaction. Anything wrong with the file raises, the
transaction rolls back, and the file takes the staged path: read once into a typed,
pseudonymised temporary table, checked by one aggregate scan (and per-row queries naming
file, row and column), then inserted. Other formats and encodings always take the staged
path. Both paths read a CSV file with the same parser and options, so they agree on
every cell (tests/include/test_survey_fast_path.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from social_leadership.reference import country_spellings, normalize_country
from social_leadership.surveys.boundary import is_warehouse_fault, unreadable_reason
from social_leadership.surveys.common import (
    GLOBAL_SCOPES,
    MAX_REPORTED_ISSUES,
    SurveyIssue,
    SurveyValidationError,
    detect_encoding,
    open_text,
    read_csv_header,
    read_xlsx_table,
)
from social_leadership.surveys.pseudonym import FUNCTION_NAME as PSEUDONYM
from social_leadership.surveys.pseudonym import pseudonymise_array, registered, survey_key

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ROLE_DEFAULTS = {"respondent_id": "respondent_id", "country": "country", "wave": "wave"}
# Output columns of the staging query; a question id may not take one of these names.
RESERVED_NAMES = {"respondent_key", "respondent_id", "country", "country_code", "wave", "weight"}
STAGING_TABLE = "incoming_respondents"
COUNTRY_TABLE = "incoming_country_codes"
SPELLING_TABLE = "incoming_country_spellings"
FAST_TABLE = "incoming_respondent_batches"


@dataclass(frozen=True)
class QuestionDeclaration:
    question_id: str
    column: str
    text: str
    scale_min: int
    scale_max: int
    agree_min: int
    agree_max: int
    missing_codes: tuple[int, ...] = ()


@dataclass(frozen=True)
class MicrodataDeclaration:
    source_id: str
    source_name: str
    citation: str
    is_synthetic: bool
    respondent_id_column: str
    country_column: str
    wave_column: str | None
    wave: int | None
    weight_column: str | None
    questions: tuple[QuestionDeclaration, ...]
    sheet: str | None = None

    def file_columns(self) -> list[str]:
        columns = [self.respondent_id_column, self.country_column]
        columns += [c for c in (self.wave_column, self.weight_column) if c]
        return columns + [q.column for q in self.questions]


def _int_pair(value: Any) -> tuple[int, int] | None:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and value[0] <= value[1]
    ):
        return value[0], value[1]
    return None


def parse_declaration(sidecar_name: str, data: dict[str, Any]) -> MicrodataDeclaration:
    """Check a microdata sidecar; raise SurveyValidationError naming each bad field."""
    issues: list[SurveyIssue] = []

    def problem(column: str, reason: str) -> None:
        issues.append(SurveyIssue(sidecar_name, 0, column, reason))

    source_id = data.get("source_id")
    if not isinstance(source_id, str) or not ID_PATTERN.match(source_id):
        problem("source_id", "needs a lowercase id (letters, digits, underscores)")
    source_name = data.get("source_name")
    if not isinstance(source_name, str) or not source_name.strip():
        problem("source_name", "needs the survey's name")
        source_name = ""
    wave = data.get("wave")
    if wave is not None and (not isinstance(wave, int) or not 1990 <= wave <= 2100):
        problem("wave", f"{wave!r} is not a plausible survey year")
    roles = {**ROLE_DEFAULTS, "weight": "weight", **(data.get("columns") or {})}
    for role in ("respondent_id", "country"):
        if not isinstance(roles.get(role), str) or not roles[role].strip():
            problem(f"columns.{role}", "needs a column name")
    if wave is None and not isinstance(roles.get("wave"), str):
        problem("columns.wave", "needs a wave column, or a top-level wave")
    questions: list[QuestionDeclaration] = []
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        problem("questions", "declare at least one question")
        raw_questions = []
    for index, item in enumerate(raw_questions):
        where = f"questions[{index}]"
        if not isinstance(item, dict):
            problem(where, "must be an object")
            continue
        question_id = item.get("question_id")
        if (
            not isinstance(question_id, str)
            or not ID_PATTERN.match(question_id)
            or question_id in RESERVED_NAMES
        ):
            problem(f"{where}.question_id", "needs a lowercase id not used by another column")
            continue
        scale = _int_pair(item.get("scale"))
        agree = _int_pair(item.get("agree"))
        if scale is None:
            problem(f"{where}.scale", "needs [lowest, highest] whole numbers")
        if agree is None:
            problem(f"{where}.agree", "needs [lowest, highest] agreeing answers")
        if scale and agree and not scale[0] <= agree[0] <= agree[1] <= scale[1]:
            problem(f"{where}.agree", f"{list(agree)} is not inside the scale {list(scale)}")
        missing = item.get("missing") or []
        if not isinstance(missing, list) or not all(isinstance(v, int) for v in missing):
            problem(f"{where}.missing", "must list whole-number codes")
            missing = []
        column = item.get("column") or question_id
        if scale and agree:
            questions.append(
                QuestionDeclaration(
                    question_id=question_id,
                    column=str(column),
                    text=str(item.get("text") or question_id),
                    scale_min=scale[0],
                    scale_max=scale[1],
                    agree_min=agree[0],
                    agree_max=agree[1],
                    missing_codes=tuple(missing),
                )
            )
    if len({q.question_id for q in questions}) != len(questions):
        problem("questions", "question ids repeat")
    if issues:
        raise SurveyValidationError(issues)
    weight_column = roles.get("weight")
    return MicrodataDeclaration(
        source_id=str(source_id),
        source_name=str(source_name),
        citation=str(data.get("citation") or source_name),
        is_synthetic=bool(data.get("is_synthetic", False)),
        respondent_id_column=roles["respondent_id"],
        country_column=roles["country"],
        wave_column=roles.get("wave") if wave is None else None,
        wave=wave,
        weight_column=weight_column if isinstance(weight_column, str) else None,
        questions=tuple(questions),
        sheet=data.get("sheet"),
    )


def read_declaration_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SurveyValidationError([SurveyIssue(path.name, 0, "*", f"not JSON: {exc}")]) from None
    except RecursionError:
        reason = "not JSON: nested too deeply to read"
        raise SurveyValidationError([SurveyIssue(path.name, 0, "*", reason)]) from None
    if not isinstance(data, dict):
        raise SurveyValidationError([SurveyIssue(path.name, 0, "*", "must be a JSON object")])
    return data


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _missing_columns(name: str, header: list[str], wanted: list[str]) -> dict[str, str]:
    """Each declared column's header cell; raise naming every missing or ambiguous one."""
    return {
        column: header[position]
        for column, position in _declared_positions(name, header, wanted).items()
    }


def _number_sql(text: str) -> str:
    """Empty -> null; a number (decimal point or comma) -> double; anything else -> NaN."""
    return (
        f"case when nullif(trim({text}), '') is null then null "
        f"else coalesce(try_cast(replace(trim({text}), ',', '.') as double), 'nan'::double) end"
    )


def _typed_select(decl: MicrodataDeclaration, found: dict[str, str], cast: bool) -> str:
    """One pass over the file: pseudonymise ids, type every declared column (text is kept
    only for the country, which is normalised once per distinct value)."""

    def text(name: str) -> str:
        expression = _quote(found[name])
        return f"cast({expression} as varchar)" if cast else expression

    parts = [
        f"{PSEUDONYM}({text(decl.respondent_id_column)}) as respondent_key",
        f"nullif(trim({text(decl.country_column)}), '') as country",
        _number_sql(text(decl.wave_column)) + " as wave_num"
        if decl.wave_column
        else f"cast({decl.wave} as double) as wave_num",
        _number_sql(text(decl.weight_column)) + " as weight_num"
        if decl.weight_column
        else "cast(1 as double) as weight_num",
    ]
    parts += [_number_sql(text(q.column)) + f" as a{i}" for i, q in enumerate(decl.questions)]
    return ", ".join(parts)


def stage(
    con: duckdb.DuckDBPyConnection, path: Path, decl: MicrodataDeclaration, key: bytes
) -> str:
    """Read only the declared columns, typed and pseudonymised, into a temporary table;
    return the SQL expression giving each row's number in the file."""
    con.execute(f"drop table if exists {STAGING_TABLE}")
    with registered(con, key, decl.source_id):
        return _stage_file(con, path, decl)


def _stage_file(con: duckdb.DuckDBPyConnection, path: Path, decl: MicrodataDeclaration) -> str:
    name = path.name.lower()
    wanted = decl.file_columns()
    if name.endswith(".xlsx"):
        table = read_xlsx_table(path, wanted, decl.sheet)
        found = _missing_columns(path.name, table.header, wanted)
        frame = pd.DataFrame(
            [dict(zip(table.header, cells, strict=False)) for _, cells in table.rows],
            columns=[c for c in table.header if c],
            dtype="string",
        )
        frame = frame[[found[c] for c in wanted]]
        frame["source_row"] = [number for number, _ in table.rows]
        con.register("incoming_sheet", frame)
        try:
            con.execute(
                f"create temp table {STAGING_TABLE} as select source_row, "
                f"{_typed_select(decl, found, cast=False)} from incoming_sheet"
            )
        finally:
            con.unregister("incoming_sheet")
        return "source_row"
    if name.endswith(".parquet"):
        return _stage_parquet(con, path, decl)
    return _stage_csv(con, path, decl)


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, decl: MicrodataDeclaration) -> str:
    """A Parquet file's declared columns, read by pyarrow a batch at a time (DuckDB reads no
    landed file: what it raises is a fault of the warehouse, what pyarrow raises the file's)."""
    import pyarrow.parquet as pq

    wanted = decl.file_columns()
    failures: list[BaseException] = []
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise _read_failure(path, exc) from None
    with parquet:
        found = _missing_columns(path.name, list(parquet.schema_arrow.names), wanted)
        columns = list(dict.fromkeys(found[column] for column in wanted))
        schema = pa.schema([parquet.schema_arrow.field(column) for column in columns])
        schema = schema.append(pa.field("source_row", pa.int64()))

        def numbered() -> Iterator[pa.RecordBatch]:
            next_row = 1
            try:
                for batch in parquet.iter_batches(columns=columns):
                    rows = pa.array(range(next_row, next_row + batch.num_rows), type=pa.int64())
                    next_row += batch.num_rows
                    yield pa.RecordBatch.from_arrays(
                        [*batch.select(columns).columns, rows], schema=schema
                    )
            except (pa.ArrowException, OSError) as exc:
                failures.append(exc)

        reader = pa.RecordBatchReader.from_batches(schema, numbered())
        con.register("incoming_parquet", reader)
        try:
            con.execute(
                f"create temp table {STAGING_TABLE} as select source_row, "
                f"{_typed_select(decl, found, cast=True)} from incoming_parquet"
            )
        finally:
            con.unregister("incoming_parquet")
    if failures:
        raise _read_failure(path, failures[0]) from None
    return "source_row"


def _read_failure(path: Path, exc: BaseException) -> BaseException:
    """What to raise for a failed read: the file's fault as a report, the machine's (memory,
    a failing disk) as it is."""
    if is_warehouse_fault(exc):
        return exc
    return SurveyValidationError([SurveyIssue(path.name, 0, "*", unreadable_reason(path, exc))])


def _stage_csv(con: duckdb.DuckDBPyConnection, path: Path, decl: MicrodataDeclaration) -> str:
    """A CSV file (any supported encoding) through the same pyarrow reader as the one-pass
    load, every declared column as text; rows that do not have the header's number of
    fields are reported by line, and a file pyarrow cannot read at all by its reason."""
    bad_rows: list[SurveyIssue] = []
    source = open_declared_csv(path, decl, numbers_typed=False, bad_rows=bad_rows)
    failures: list[str] = []

    def numbered() -> Iterator[pa.RecordBatch]:
        next_row = 2  # the header is row 1
        try:
            for batch in source.reader:
                rows = pa.array(range(next_row, next_row + batch.num_rows), type=pa.int64())
                next_row += batch.num_rows
                yield pa.RecordBatch.from_arrays(
                    [*batch.columns, rows], names=[*batch.schema.names, "source_row"]
                )
        except pa.ArrowException as exc:
            failures.append(_parse_failure(exc))

    schema = source.reader.schema.append(pa.field("source_row", pa.int64()))
    con.register("incoming_csv", pa.RecordBatchReader.from_batches(schema, numbered()))
    try:
        con.execute(
            f"create temp table {STAGING_TABLE} as select source_row, "
            f"{_typed_select(decl, source.columns, cast=False)} from incoming_csv"
        )
    finally:
        con.unregister("incoming_csv")
    if failures:
        raise SurveyValidationError([SurveyIssue(path.name, 0, "*", failures[0])])
    if bad_rows:
        raise SurveyValidationError(bad_rows)
    return "source_row"


def _country_codes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Normalise each distinct country text once (a few dozen, not a million, lookups)."""
    texts = [
        row[0]
        for row in con.execute(
            f"select distinct country from {STAGING_TABLE} where country is not null"
        ).fetchall()
    ]
    records = []
    for text in texts:
        code, reason = None, None
        if text.strip().casefold() in GLOBAL_SCOPES:
            reason = "a respondent needs a country, not a global scope"
        else:
            try:
                code = normalize_country(text)
            except ValueError as exc:
                reason = str(exc)
        records.append({"country": text, "country_code": code, "reason": reason})
    return pd.DataFrame.from_records(records, columns=["country", "country_code", "reason"])


def _answer_problem(index: int, question: QuestionDeclaration) -> str:
    answer = f"a{index}"
    codes = ", ".join(str(code) for code in question.missing_codes)
    not_missing = f"{answer} not in ({codes}) and " if codes else ""
    return (
        f"{answer} is not null and (isnan({answer}) or ({not_missing}({answer} != "
        f"floor({answer}) or {answer} not between {question.scale_min} "
        f"and {question.scale_max})))"
    )


def _number_reason(column: str, bad: str) -> str:
    return (
        f"case when {column} is null then 'value is empty' "
        f"when isnan({column}) then 'is not a number' "
        f"else format('{{}} {bad}', {column}) end"
    )


def validate(
    con: duckdb.DuckDBPyConnection, file_name: str, decl: MicrodataDeclaration, row_sql: str
) -> list[SurveyIssue]:
    """Every problem of the staged file (at most MAX_REPORTED_ISSUES per check).

    One aggregate scan decides whether anything is wrong; only then do per-row queries
    find where, so a clean million-row file costs one pass.
    """
    checks: list[tuple[str, str, str]] = [
        ("respondent_key is null", decl.respondent_id_column, "'value is empty'"),
        ("country is null", decl.country_column, "'value is empty'"),
        (
            f"country in (select country from {COUNTRY_TABLE} where reason is not null)",
            decl.country_column,
            f"(select reason from {COUNTRY_TABLE} as c where c.country = s.country)",
        ),
    ]
    if decl.wave_column:
        checks.append(
            (
                "wave_num is null or isnan(wave_num) or wave_num != floor(wave_num) "
                "or wave_num not between 1990 and 2100",
                decl.wave_column,
                _number_reason("wave_num", "is not a plausible survey year"),
            )
        )
    if decl.weight_column:
        checks.append(
            (
                "weight_num is null or isnan(weight_num) or isinf(weight_num) or weight_num <= 0",
                decl.weight_column,
                _number_reason("weight_num", "is not a positive weight"),
            )
        )
    for index, question in enumerate(decl.questions):
        checks.append(
            (
                _answer_problem(index, question),
                question.column,
                _number_reason(
                    f"a{index}",
                    f"is not an answer on the scale {question.scale_min}-{question.scale_max}",
                ),
            )
        )
    counts_sql = ", ".join(f"count_if({condition})" for condition, _, _ in checks)
    counts = con.execute(
        f"select count(*), count(*) - count(distinct (respondent_key, wave_num)), {counts_sql} "
        f"from {STAGING_TABLE}"
    ).fetchone()
    assert counts is not None
    total, repeated, *failing = counts
    issues: list[SurveyIssue] = []
    if not total:
        return [SurveyIssue(file_name, 2, "*", "file has no data rows")]
    for (condition, column, reason), count in zip(checks, failing, strict=True):
        if not count:
            continue
        for row, text in con.execute(
            f"select {row_sql}, {reason} from {STAGING_TABLE} as s where {condition} "
            f"order by 1 limit {MAX_REPORTED_ISSUES + 1}"
        ).fetchall():
            issues.append(SurveyIssue(file_name, int(row), column, str(text)))
    if repeated:
        # Which id repeats is not said: a report must not carry respondent ids.
        for (row,) in con.execute(
            f"select source_row from (select {row_sql} as source_row, row_number() over "
            f"(partition by respondent_key, wave_num order by {row_sql}) as seen "
            f"from {STAGING_TABLE} where respondent_key is not null) where seen > 1 "
            f"order by 1 limit {MAX_REPORTED_ISSUES + 1}"
        ).fetchall():
            issues.append(
                SurveyIssue(
                    file_name, int(row), decl.respondent_id_column, "repeats an earlier respondent"
                )
            )
    issues.sort(key=lambda issue: issue.row)
    return issues


def staged_waves(con: duckdb.DuckDBPyConnection) -> list[int]:
    rows = con.execute(
        f"select distinct cast(wave_num as integer) from {STAGING_TABLE} order by 1"
    ).fetchall()
    return [int(row[0]) for row in rows]


def insert_questions(
    con: duckdb.DuckDBPyConnection,
    decl: MicrodataDeclaration,
    waves: list[int],
    *,
    file_name: str,
    sha: str,
    loaded_at: datetime,
) -> None:
    """The declared questions, once per wave the file holds."""
    questions = pd.DataFrame.from_records(
        [
            {
                "source_id": decl.source_id,
                "source_name": decl.source_name,
                "wave": wave,
                "question_id": q.question_id,
                "question_position": position,
                "question_text": q.text,
                "scale_min": q.scale_min,
                "scale_max": q.scale_max,
                "agree_min": q.agree_min,
                "agree_max": q.agree_max,
                "citation": decl.citation,
                "is_synthetic": decl.is_synthetic,
                "file_name": file_name,
                "file_sha256": sha,
                "loaded_at": loaded_at,
            }
            for wave in waves
            for position, q in enumerate(decl.questions, start=1)
        ]
    )
    con.register("incoming_questions", questions)
    try:
        con.execute(
            """
            insert into raw.survey_questions (
                source_id, source_name, wave, question_id, question_position, question_text,
                scale_min, scale_max, agree_min, agree_max, citation, is_synthetic, file_name,
                file_sha256, loaded_at
            )
            select source_id, source_name, wave, question_id, question_position, question_text,
                scale_min, scale_max, agree_min, agree_max, citation, is_synthetic, file_name,
                file_sha256, loaded_at
            from incoming_questions
            """
        )
    finally:
        con.unregister("incoming_questions")


def insert(
    con: duckdb.DuckDBPyConnection,
    decl: MicrodataDeclaration,
    *,
    file_name: str,
    sha: str,
    loaded_at: datetime | None = None,
) -> int:
    """Insert the validated, staged respondents; the caller holds the transaction."""
    loaded_at = loaded_at or datetime.now(UTC)
    insert_questions(
        con, decl, staged_waves(con), file_name=file_name, sha=sha, loaded_at=loaded_at
    )
    answers = []
    for index, q in enumerate(decl.questions):
        typed = f"cast(s.a{index} as integer)"
        codes = ", ".join(str(code) for code in q.missing_codes)
        if codes:
            typed = f"case when s.a{index} in ({codes}) then null else {typed} end"
        answers.append(typed)
    result = con.execute(
        f"""
        insert into raw.survey_respondent_answers (
            source_id, wave, country_code, respondent_key, weight, answers, file_sha256,
            loaded_at
        )
        select $source_id, cast(s.wave_num as integer), c.country_code, s.respondent_key,
            s.weight_num, [{", ".join(answers)}], $sha, $loaded_at
        from {STAGING_TABLE} as s
        inner join {COUNTRY_TABLE} as c on s.country = c.country
        """,
        {"source_id": decl.source_id, "sha": sha, "loaded_at": loaded_at},
    ).fetchone()
    return int(result[0]) if result else 0


def prepare(
    con: duckdb.DuckDBPyConnection, path: Path, decl: MicrodataDeclaration, key: bytes
) -> None:
    """Stage and validate; raise SurveyValidationError (the staging is then dropped)."""
    try:
        try:
            row_sql = stage(con, path, decl, key)
        except duckdb.Error as exc:
            if is_warehouse_fault(exc):
                raise
            reason = str(exc).splitlines()[0]
            raise SurveyValidationError([SurveyIssue(path.name, 0, "*", reason)]) from None
        con.register(COUNTRY_TABLE, _country_codes(con))
        issues = validate(con, path.name, decl, row_sql)
        if issues:
            raise SurveyValidationError(issues)
    except BaseException:
        cleanup(con)
        raise


class FastPathDeclined(Exception):
    """The one-statement load found something to report; the file takes the staged path."""


@functools.cache
def _country_spellings() -> pa.Table:
    """The reference's country spellings (:func:`country_spellings`: codes, names and
    aliases in their usual cases) without the global scopes, as a table. The one-statement
    load matches a cell to it exactly; any other text (extra spaces, a rare spelling, a
    global scope, no country) sends the file to the staged path, which normalises every
    distinct text."""
    spellings = {
        text: code
        for text, code in country_spellings().items()
        if text.casefold() not in GLOBAL_SCOPES
    }
    return pa.table(
        {"spelling": list(spellings), "country_code": list(spellings.values())},
        schema=pa.schema([("spelling", pa.string()), ("country_code", pa.string())]),
    )


def _checked(condition: str, value: str, message: str) -> str:
    return f"case when {condition} then error({_literal(message)}) else {value} end"


# pyarrow parses the file in blocks of this size on its own threads while DuckDB inserts
# the blocks already parsed; larger blocks pipeline worse (measured by bench/survey_load).
FAST_BLOCK_BYTES = 1 << 20
# A block must hold a whole row: the staged path, which has no speed to keep, reads larger
# blocks, so a row with a megabyte of free text is still read.
STAGED_BLOCK_BYTES = 64 << 20
# Spreads a wave over 64 bits before it is mixed into a pseudonym for the repeat check.
_WAVE_SPREAD = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class DeclaredCsv:
    """A CSV file opened for its declared columns: the streaming pyarrow reader, and the
    reader's name for each declared column (``c<position>``: header cells may repeat,
    be empty or carry spaces, positions cannot)."""

    reader: Any  # pyarrow.csv.CSVStreamingReader
    columns: dict[str, str]


# pyarrow decodes UTF-8 itself (and drops a BOM); other encodings it transcodes.
_PYARROW_ENCODINGS = {"utf-8": "utf8", "utf-8-sig": "utf8", "utf-16": "utf-16", "cp1252": "cp1252"}


def _declared_positions(file_name: str, header: list[str], wanted: list[str]) -> dict[str, int]:
    """Each declared column's position in the header (case and surrounding spaces ignored);
    raise naming every missing column, and every one the header holds twice."""
    keys = [cell.strip().casefold() for cell in header]
    positions: dict[str, int] = {}
    issues: list[SurveyIssue] = []
    for name in wanted:
        found = [i for i, key in enumerate(keys) if key == name.strip().casefold()]
        if not found:
            issues.append(SurveyIssue(file_name, 1, name, "declared column missing"))
        elif len(found) > 1:
            issues.append(
                SurveyIssue(file_name, 1, name, f"declared column appears {len(found)} times")
            )
        else:
            positions[name] = found[0]
    if issues:
        raise SurveyValidationError(issues)
    return positions


def _parse_failure(exc: BaseException) -> str:
    """pyarrow's reason without the offending row's text (which may hold an id)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    prefix = "CSV parse error: "
    if message.startswith(prefix):
        message = prefix + message[len(prefix) :].split(": ", 1)[0]
    return f"cannot be read as CSV ({message})"


def open_declared_csv(
    path: Path,
    decl: MicrodataDeclaration,
    *,
    numbers_typed: bool,
    bad_rows: list[SurveyIssue] | None = None,
    encoding: str | None = None,
) -> DeclaredCsv:
    """Open a microdata CSV file for its declared columns, both load paths alike.

    ``numbers_typed``: wave, weight and answers are parsed as numbers by pyarrow (a cell
    that is not a plain number fails the read), else every column is text. ``bad_rows``:
    rows with another number of fields than the header are listed there, by line, and
    skipped; without it they fail the read. ``encoding``: when already detected.
    """
    import pyarrow.csv as pcsv

    encoding = encoding or detect_encoding(path)
    header, delimiter = read_csv_header(path, encoding)
    positions = _declared_positions(path.name, header, decl.file_columns())
    columns = {name: f"c{position}" for name, position in positions.items()}
    numeric = {columns[c] for c in (decl.wave_column, decl.weight_column) if c}
    numeric |= {columns[q.column] for q in decl.questions}
    types = {
        name: pa.float64() if numbers_typed and name in numeric else pa.string()
        for name in columns.values()
    }

    def report(row: Any) -> str:
        assert bad_rows is not None
        bad_rows.append(
            SurveyIssue(
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
                block_size=FAST_BLOCK_BYTES if numbers_typed else STAGED_BLOCK_BYTES,
                encoding=_PYARROW_ENCODINGS[encoding],
                # Line numbers of bad rows are only known to a single-threaded parse.
                use_threads=bad_rows is None,
                skip_rows=_lines_before_data(path, encoding),
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
                null_values=[""],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        raise SurveyValidationError([SurveyIssue(path.name, 0, "*", _parse_failure(exc))]) from None
    return DeclaredCsv(reader=reader, columns=columns)


def _lines_before_data(path: Path, encoding: str) -> int:
    """Blank lines before the header, and the header line itself."""
    with open_text(path, encoding) as text:
        skipped = 0
        for line in text:
            skipped += 1
            if not line.isspace():
                return skipped
    return skipped


def _fast_reader(
    path: Path, decl: MicrodataDeclaration, key: bytes
) -> tuple[pa.RecordBatchReader, list[np.ndarray], list[np.ndarray]]:
    """The declared columns of a UTF-8 CSV file as Arrow batches, ids already pseudonymised.

    The batch columns are named as :func:`_typed_select` names them. The pseudonyms (and
    waves) of every batch handed out are collected in the two lists returned, for the
    repeat check. Anything the staged path would report (a cell that is not a plain
    number, an empty id, a row with a wrong number of fields) raises instead.
    """
    encoding = detect_encoding(path)
    if encoding not in {"utf-8", "utf-8-sig"}:
        raise FastPathDeclined("not a UTF-8 file")
    source = open_declared_csv(path, decl, numbers_typed=True, encoding=encoding)
    roles = [("country", decl.country_column)]
    roles += [("wave_num", decl.wave_column)] if decl.wave_column else []
    roles += [("weight_num", decl.weight_column)] if decl.weight_column else []
    roles += [(f"a{i}", q.column) for i, q in enumerate(decl.questions)]
    schema = pa.schema(
        [("respondent_key", pa.uint64()), ("country", pa.string())]
        + [(name, pa.float64()) for name, _ in roles[1:]]
    )
    survey = survey_key(key, decl.source_id)
    pseudonyms: list[np.ndarray] = []
    waves: list[np.ndarray] = []
    id_column = source.columns[decl.respondent_id_column]

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in source.reader:
            keys = pseudonymise_array(survey, batch.column(id_column))
            if keys.null_count:
                raise FastPathDeclined("empty respondent id")
            columns = [keys] + [batch.column(source.columns[column]) for _, column in roles]
            pseudonyms.append(keys.to_numpy())
            if decl.wave_column:
                wave_column = batch.column(source.columns[decl.wave_column])
                waves.append(wave_column.to_numpy(zero_copy_only=False))
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

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
    """Read, check, pseudonymise and insert a UTF-8 CSV file in one pass.

    pyarrow's CSV reader parses the declared columns (only those) and the ids are
    pseudonymised a block at a time while DuckDB inserts; every check of :func:`validate`
    is made per row with ``error()``, and repeats are found among the pseudonyms. Whatever
    fails (a bad cell, a repeat, anything pyarrow reads differently from the staged path)
    raises: the caller rolls back and takes the staged path, which names file, row and
    column. Returns the rows and the waves loaded.
    """
    reader, pseudonyms, waves = _fast_reader(path, decl, key)
    answers = []
    for index, question in enumerate(decl.questions):
        value = f"cast(a{index} as integer)"
        if question.missing_codes:
            codes = ", ".join(str(code) for code in question.missing_codes)
            value = f"case when a{index} in ({codes}) then null else {value} end"
        answers.append(_checked(_answer_problem(index, question), value, "bad answer"))
    wave = "wave_num" if decl.wave_column else f"cast({decl.wave} as double)"
    wave_bad = (
        f"{wave} is null or isnan({wave}) or {wave} != floor({wave}) "
        f"or {wave} not between 1990 and 2100"
    )
    weight = "weight_num" if decl.weight_column else "cast(1 as double)"
    weight_bad = f"{weight} is null or isnan({weight}) or isinf({weight}) or {weight} <= 0"
    con.register(SPELLING_TABLE, _country_spellings())
    con.register(FAST_TABLE, reader)
    try:
        inserted = con.execute(
            f"""
            insert into raw.survey_respondent_answers (
                source_id, wave, country_code, respondent_key, weight, answers, file_sha256,
                loaded_at
            )
            select $source_id, {_checked(wave_bad, f"cast({wave} as integer)", "bad wave")},
                {_checked("c.country_code is null", "c.country_code", "country not known")},
                s.respondent_key,
                {_checked(weight_bad, weight, "bad weight")},
                [{", ".join(answers)}], $sha, $loaded_at
            from {FAST_TABLE} as s
            left join {SPELLING_TABLE} as c on s.country = c.spelling
            """,
            {"source_id": decl.source_id, "sha": sha, "loaded_at": loaded_at},
        ).fetchone()
    finally:
        con.unregister(FAST_TABLE)
        con.unregister(SPELLING_TABLE)
    rows = int(inserted[0]) if inserted else 0
    keys = np.concatenate(pseudonyms) if pseudonyms else np.empty(0, dtype=np.uint64)
    if not rows or len(keys) != rows:
        raise FastPathDeclined("empty file")
    if decl.wave_column:
        wave_values = np.concatenate(waves).astype(np.int64)
        keys = keys ^ (wave_values.view(np.uint64) * _WAVE_SPREAD)
        loaded_waves = sorted(int(w) for w in pd.unique(wave_values))
    else:
        loaded_waves = [int(decl.wave or 0)]
    # Distinct values prove distinct respondents; a shared value (a repeat, or two
    # respondents of different waves whose mixes clash) is settled exactly by the staged path.
    if pd.Series(keys).duplicated().any():
        raise FastPathDeclined("repeated respondents")
    return rows, loaded_waves


def cleanup(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop table if exists {STAGING_TABLE}")
    with contextlib.suppress(duckdb.Error):
        con.unregister(COUNTRY_TABLE)
