"""The checks of a respondent file, each written once, and the one statement that stores its
respondents. Both load paths use them.

Both paths bring a file to the same typed relation, one row per respondent:

* ``respondent_key`` (ubigint): the keyed pseudonym, null for an empty id;
* ``country`` (varchar): the cell as written, null when empty; ``country_code`` its ISO
  code, null when it names no country (a global scope, an unknown name);
* ``wave_num``, ``weight_num`` (double): the wave and weight, from the declared column or
  the declaration (constant wave, weight 1); NaN for a cell that is not a number;
* ``a0``, ``a1``, ... (double): the answers in declared question order, NaN likewise.

The staged path counts each :class:`RowRule`'s failing rows and reports them by row and
column; the one-pass load inserts through :func:`insert_respondents`, whose every row must
pass every rule, or the statement fails (DuckDB's ``error()``) and the staged path takes
over to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from social_leadership.sql import quote_literal
from social_leadership.surveys.microdata.declaration import (
    MicrodataDeclaration,
    QuestionDeclaration,
)

REPEAT_REASON = "repeats an earlier respondent"
NO_ROWS_REASON = "file has no data rows"
WAVE_RANGE = (1990, 2100)


@dataclass(frozen=True)
class RowRule:
    """One check of a respondent row: ``failing`` (SQL over the typed relation) holds for a
    bad row, which is reported under the declared ``column`` with the reason ``reason``
    (SQL over the staged relation, which also has the normaliser's ``country_reason`` and
    the same said without the cell, ``country_unquoted``)."""

    column: str
    failing: str
    reason: str


def text_of(column: str) -> str:
    """The staged column holding the text of ``column``'s cell when it is no number."""
    return f"{column}_text"


# A cell that is no number is quoted only when it is a label: a text more than one
# respondent of the file gives (``Refused``, ``Strongly agree``, ``weiß nicht``), short,
# without a digit or an ``@``. An id, a name, an e-mail address or free text (a column
# declared by mistake) is one respondent's: never shown in a report, log or alert (its row
# is named), however short.
QUOTED_CHARACTERS = 24


def _is_label(cell: str, *, codes: bool = False) -> str:
    """SQL: whether the text in ``cell`` may be quoted (:data:`QUOTED_CHARACTERS`): given by
    more than one respondent (not one respondent's row exported twice), short, without an
    ``@`` or a digit; with ``codes``, a whole number is one too (a codebook's country code,
    ``276``, many respondents give)."""
    digits = f"regexp_full_match({cell}, '[0-9]+')" if codes else "false"
    return (
        f"count(distinct respondent_key) over (partition by {cell}) > 1 "
        f"and length({cell}) <= {QUOTED_CHARACTERS} "
        f"and (not regexp_matches({cell}, '[\\pN@]') or {digits})"
    )


def _number_reason(column: str, bad: str) -> str:
    cell = text_of(column)
    quoted = (
        f"case when {_is_label(cell)} then format('''{{}}'' is not a number', {cell}) "
        "else 'is not a number' end"
    )
    return (
        # Null from a missing-value mark (its text kept) or from an empty cell.
        f"case when {column} is null and {cell} is not null then "
        f"format('''{{}}'' marks a missing value', {cell}) "
        f"when {column} is null then 'value is empty' "
        f"when isnan({column}) then {quoted} "
        f"else format('{{}} {bad}', {column}) end"
    )


# A number written with separators as thousands are grouped (``1,200``, ``12.345,6``).
GROUPED_NUMBER = r"[+-]?[1-9][0-9]{0,2}([.,][0-9]{3})+([.,][0-9]+)?"


def _grouped_reason(otherwise: str) -> str:
    """Why a weight written with a thousands separator was left unread (staged:
    ``_read_grouped_weights``); ``otherwise`` for any other cell."""
    cell = text_of("weight_num")
    return (
        f"case when regexp_full_match({cell}, '{GROUPED_NUMBER}') then format("
        "'''{}'' reads as two numbers (a thousands separator or a decimal mark?), and the "
        "file does not show which mark is its decimal one (its other weights show neither, "
        "or both): write its weights without thousands separators', "
        f"{cell}) else {otherwise} end"
    )


def _answer_failing(index: int, question: QuestionDeclaration) -> str:
    answer = f"a{index}"
    codes = ", ".join(str(code) for code in question.missing_codes)
    not_missing = f"{answer} not in ({codes}) and " if codes else ""
    return (
        f"{answer} is not null and (isnan({answer}) or ({not_missing}({answer} != "
        f"floor({answer}) or {answer} not between {question.scale_min} "
        f"and {question.scale_max})))"
    )


def row_rules(decl: MicrodataDeclaration) -> list[RowRule]:
    """Every check of a respondent row, in the order a report lists a row's problems."""
    rules = [
        RowRule(decl.respondent_id_column, "respondent_key is null", "'value is empty'"),
        RowRule(decl.country_column, "country is null", "'value is empty'"),
        RowRule(
            decl.country_column,
            "country is not null and country_code is null",
            # The normaliser's reason quotes the cell: given for a label alone (a country
            # many respondents write so), else said without the cell (a column declared by
            # mistake holds names, addresses, free text).
            f"case when {_is_label('country', codes=True)} then country_reason "
            "else country_unquoted end",
        ),
    ]
    if decl.wave_column:
        low, high = WAVE_RANGE
        rules.append(
            RowRule(
                decl.wave_column,
                "wave_num is null or isnan(wave_num) or wave_num != floor(wave_num) "
                f"or wave_num not between {low} and {high}",
                _number_reason("wave_num", "is not a plausible survey year"),
            )
        )
    if decl.weight_column:
        rules.append(
            RowRule(
                decl.weight_column,
                # A weight of 0 leaves its respondent out of every share (as SPSS's WEIGHT BY
                # does; exports mark excluded respondents so): kept, counted nowhere.
                "weight_num is null or isnan(weight_num) or isinf(weight_num) or weight_num < 0",
                _grouped_reason(_number_reason("weight_num", "is not a weight (0 or more)")),
            )
        )
    for index, question in enumerate(decl.questions):
        rules.append(
            RowRule(
                question.column,
                _answer_failing(index, question),
                _number_reason(
                    f"a{index}",
                    f"is not an answer on the scale {question.scale_min}-{question.scale_max}",
                ),
            )
        )
    return rules


def repeated_rows(key: str, wave: str) -> str:
    """SQL counting the rows whose (respondent, wave) an earlier row already has."""
    return f"count(*) - count(distinct ({key}, {wave}))"


def _stored_answer(index: int, question: QuestionDeclaration) -> str:
    """The answer as stored: a whole number, null for a missing-answer code."""
    value = f"cast(a{index} as integer)"
    codes = ", ".join(str(code) for code in question.missing_codes)
    return f"case when a{index} in ({codes}) then null else {value} end" if codes else value


def insert_respondents(
    con: duckdb.DuckDBPyConnection,
    decl: MicrodataDeclaration,
    relation: str,
    *,
    sha: str,
    loaded_at: datetime,
) -> int:
    """Insert the respondents of the typed ``relation`` (SQL); the caller holds the
    transaction. A row failing any rule fails the statement instead."""
    rules = row_rules(decl)
    guard = " ".join(
        f"when {rule.failing} then error({quote_literal(f'{rule.column}: rule {number} fails')})"
        for number, rule in enumerate(rules, start=1)
    )
    answers = ", ".join(_stored_answer(i, q) for i, q in enumerate(decl.questions))
    inserted = con.execute(
        f"""
        insert into raw.survey_respondent_answers (
            source_id, wave, country_code, respondent_key, weight, answers, file_sha256,
            loaded_at
        )
        select $source_id, cast(wave_num as integer), country_code, respondent_key,
            weight_num, [{answers}], $sha, $loaded_at
        from ({relation})
        where case {guard} else true end
        """,
        {"source_id": decl.source_id, "sha": sha, "loaded_at": loaded_at},
    ).fetchone()
    return int(inserted[0]) if inserted else 0
