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

Everything row-wise runs inside DuckDB (its CSV and Parquet readers, vectorised checks,
HMAC via ``sha256``), never in a Python row loop. A UTF-8 CSV file is first loaded by one
statement (:func:`insert_fast`) that reads, checks, pseudonymises and inserts it, inside the
caller's transaction; anything wrong with it raises, the transaction rolls back, and the file
takes the staged path: read once into a typed, pseudonymised temporary table, checked by one
aggregate scan (and per-row queries naming file, row and column), then inserted. Other
formats and encodings always take the staged path.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from social_leadership.roster import COUNTRY_ALIASES, normalize_country
from social_leadership.surveys.common import (
    GLOBAL_SCOPES,
    MAX_REPORTED_ISSUES,
    SurveyIssue,
    SurveyValidationError,
    detect_encoding,
    find_columns,
    open_binary,
    read_csv_header,
    read_xlsx_table,
)
from social_leadership.surveys.pseudonym import hmac_pads, pseudonym_sql

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ROLE_DEFAULTS = {"respondent_id": "respondent_id", "country": "country", "wave": "wave"}
# Output columns of the staging query; a question id may not take one of these names.
RESERVED_NAMES = {"respondent_key", "respondent_id", "country", "country_code", "wave", "weight"}
STAGING_TABLE = "incoming_respondents"
COUNTRY_TABLE = "incoming_country_codes"
SPELLING_TABLE = "incoming_country_spellings"


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
    if not isinstance(data, dict):
        raise SurveyValidationError([SurveyIssue(path.name, 0, "*", "must be a JSON object")])
    return data


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _missing_columns(name: str, header: list[str], wanted: list[str]) -> dict[str, str]:
    found = find_columns(header, wanted)
    missing = [column for column in wanted if column not in found]
    if missing:
        raise SurveyValidationError(
            [SurveyIssue(name, 1, column, "declared column missing") for column in missing]
        )
    return found


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

    respondent_id = f"trim({text(decl.respondent_id_column)})"
    parts = [
        f"case when nullif({respondent_id}, '') is null then null "
        f"else {pseudonym_sql('$source_id', respondent_id)} end as respondent_key",
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
    con: duckdb.DuckDBPyConnection,
    path: Path,
    decl: MicrodataDeclaration,
    work_dir: Path,
    key: bytes,
) -> str:
    """Read only the declared columns, typed and pseudonymised, into a temporary table;
    return the SQL expression giving each row's number in the file."""
    name = path.name.lower()
    wanted = decl.file_columns()
    inner_pad, outer_pad = hmac_pads(key)
    params: dict[str, Any] = {
        "source_id": decl.source_id,
        "inner_pad": inner_pad,
        "outer_pad": outer_pad,
    }
    con.execute(f"drop table if exists {STAGING_TABLE}")
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
                f"{_typed_select(decl, found, cast=False)} from incoming_sheet",
                params,
            )
        finally:
            con.unregister("incoming_sheet")
        return "source_row"
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        found = _missing_columns(path.name, list(pq.read_schema(path).names), wanted)
        con.execute(
            f"create temp table {STAGING_TABLE} as select "
            f"{_typed_select(decl, found, cast=True)} from read_parquet($path)",
            {**params, "path": str(path)},
        )
        return "rowid + 1"
    encoding = detect_encoding(path)
    header, delimiter = read_csv_header(path, encoding)
    found = _missing_columns(path.name, header, wanted)
    source = path
    if encoding not in {"utf-8", "utf-8-sig"}:
        # DuckDB reads UTF-8 only (without extensions): re-encode a copy, streaming.
        source = work_dir / (path.name + ".utf8.csv")
        with (
            open_binary(path) as raw,
            codecs.getreader(encoding)(raw) as text,
            source.open("w", encoding="utf-8") as out,
        ):
            shutil.copyfileobj(text, out, 1 << 20)
    con.execute(
        f"create temp table {STAGING_TABLE} as select {_typed_select(decl, found, cast=False)} "
        "from read_csv($path, delim = $delim, header = true, all_varchar = true, "
        "quote = '\"', escape = '\"')",
        {**params, "path": str(source), "delim": delimiter},
    )
    return "rowid + 2"


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
        with tempfile.TemporaryDirectory(prefix="slw-survey-") as work_dir:
            try:
                row_sql = stage(con, path, decl, Path(work_dir), key)
            except duckdb.Error as exc:
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
    """Country spellings as files write them (codes, names, the roster's aliases, in their
    usual cases), each with the code ``normalize_country`` itself gives it. The one-statement
    load matches a cell to this table exactly; any other text (extra spaces, a rare
    spelling, a global scope, no country) sends the file to the staged path, which
    normalises every distinct text."""
    import pycountry

    names = set(COUNTRY_ALIASES)
    for country in pycountry.countries:
        for attribute in ("alpha_2", "alpha_3", "name", "common_name", "official_name"):
            value = getattr(country, attribute, None)
            if value:
                names.add(value)
    spellings: dict[str, str] = {}
    for name in names:
        for text in {name, name.upper(), name.lower(), name.title(), name.capitalize()}:
            if text != text.strip() or text.casefold() in GLOBAL_SCOPES:
                continue
            with contextlib.suppress(ValueError):
                spellings[text] = normalize_country(text)
    return pa.table(
        {"spelling": list(spellings), "country_code": list(spellings.values())},
        schema=pa.schema([("spelling", pa.string()), ("country_code", pa.string())]),
    )


def _fast_number_sql(text: str) -> str:
    """``_number_sql`` without its per-cell trim and replace: DuckDB's cast already skips
    surrounding spaces, and only a cell it cannot cast (empty, decimal comma, not a number)
    takes the slow expression, so both give the same value for every cell."""
    return f"coalesce(try_cast({text} as double), {_number_sql(text)})"


def _checked(condition: str, value: str, message: str) -> str:
    return f"case when {condition} then error({_literal(message)}) else {value} end"


def insert_fast(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    decl: MicrodataDeclaration,
    key: bytes,
    *,
    sha: str,
    loaded_at: datetime,
) -> tuple[int, list[int]]:
    """Read, check, pseudonymise and insert a UTF-8 CSV file in one statement.

    Every check of :func:`validate` is made per row with ``error()``, and the repeat check
    by one aggregate over the inserted rows, so a clean file costs one pass. Whatever fails
    (a bad cell, a repeat, an unreadable file) raises: the caller rolls back and takes the
    staged path, which names file, row and column. Returns the rows and the waves loaded.
    """
    encoding = detect_encoding(path)
    if encoding not in {"utf-8", "utf-8-sig"} or path.name.lower().endswith(".gz"):
        raise FastPathDeclined("not a plain UTF-8 CSV file")
    header, delimiter = read_csv_header(path, encoding)
    found = _missing_columns(path.name, header, decl.file_columns())

    def cell(name: str) -> str:
        return _quote(found[name])

    raw_id = cell(decl.respondent_id_column)
    trimmed_id = (
        f"case when starts_with({raw_id}, ' ') or ends_with({raw_id}, ' ') "
        f"then trim({raw_id}) else {raw_id} end"
    )
    numbers = [
        _fast_number_sql(cell(decl.wave_column)) + " as wave_num"
        if decl.wave_column
        else f"cast({decl.wave} as double) as wave_num",
        _fast_number_sql(cell(decl.weight_column)) + " as weight_num"
        if decl.weight_column
        else "cast(1 as double) as weight_num",
    ]
    numbers += [
        _fast_number_sql(cell(q.column)) + f" as a{i}" for i, q in enumerate(decl.questions)
    ]
    answers = []
    for index, question in enumerate(decl.questions):
        value = f"cast(a{index} as integer)"
        if question.missing_codes:
            codes = ", ".join(str(code) for code in question.missing_codes)
            value = f"case when a{index} in ({codes}) then null else {value} end"
        answers.append(_checked(_answer_problem(index, question), value, "bad answer"))
    wave_bad = (
        "wave_num is null or isnan(wave_num) or wave_num != floor(wave_num) "
        "or wave_num not between 1990 and 2100"
    )
    weight_bad = "weight_num is null or isnan(weight_num) or isinf(weight_num) or weight_num <= 0"
    respondent_key = _checked(
        "respondent_id is null or respondent_id = ''",
        pseudonym_sql("$source_id", "respondent_id"),
        "empty respondent id",
    )
    inner_pad, outer_pad = hmac_pads(key)
    con.register(SPELLING_TABLE, _country_spellings())
    try:
        inserted = con.execute(
            f"""
            insert into raw.survey_respondent_answers (
                source_id, wave, country_code, respondent_key, weight, answers, file_sha256,
                loaded_at
            )
            select $source_id, {_checked(wave_bad, "cast(wave_num as integer)", "bad wave")},
                {_checked("c.country_code is null", "c.country_code", "country not known")},
                {respondent_key},
                {_checked(weight_bad, "weight_num", "bad weight")},
                [{", ".join(answers)}], $sha, $loaded_at
            from (
                select {trimmed_id} as respondent_id,
                    {cell(decl.country_column)} as country,
                    {", ".join(numbers)}
                from read_csv($path, delim = $delim, header = true, all_varchar = true,
                    quote = '"', escape = '"')
            ) as s
            left join {SPELLING_TABLE} as c on s.country = c.spelling
            """,
            {
                "path": str(path),
                "delim": delimiter,
                "source_id": decl.source_id,
                "inner_pad": inner_pad,
                "outer_pad": outer_pad,
                "sha": sha,
                "loaded_at": loaded_at,
            },
        ).fetchone()
    finally:
        con.unregister(SPELLING_TABLE)
    rows = int(inserted[0]) if inserted else 0
    summary = con.execute(
        "select count(distinct hash(respondent_key, wave)), list(distinct wave order by wave) "
        "from raw.survey_respondent_answers where file_sha256 = $sha",
        {"sha": sha},
    ).fetchone()
    assert summary is not None
    # Distinct hashes prove distinct respondents; a shared hash (a repeat, or a 64-bit
    # collision) is settled exactly by the staged path.
    if not rows or summary[0] != rows:
        raise FastPathDeclined("empty file or repeated respondents")
    return rows, [int(wave) for wave in summary[1]]


def cleanup(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop table if exists {STAGING_TABLE}")
    with contextlib.suppress(duckdb.Error):
        con.unregister(COUNTRY_TABLE)
