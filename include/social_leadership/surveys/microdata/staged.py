"""The staged path: any format and encoding, every problem named by file, row and column.

The declared columns are read once (by the file's format, :mod:`..formats`) into a typed,
pseudonymised temporary table; one aggregate scan over it counts the failing rows of every
rule (:mod:`.rules`), and only a rule that fails is looked at row by row, so a clean
million-row file costs one pass. Then the respondents are inserted by the same statement
the one-pass load uses.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from social_leadership.intake import RowIssue
from social_leadership.sql import quote_identifier, quote_literal
from social_leadership.surveys.common import (
    MAX_REPORTED_ISSUES,
    MISSING_MARKS,
    ROW_COLUMN,
    SurveyValidationError,
    file_problem,
    is_global_scope,
    is_warehouse_fault,
    names_a_place,
    survey_country,
)
from social_leadership.surveys.formats import format_of
from social_leadership.surveys.microdata.declaration import MicrodataDeclaration
from social_leadership.surveys.microdata.rules import (
    GROUPED_NUMBER,
    NO_ROWS_REASON,
    REPEAT_REASON,
    insert_respondents,
    repeated_rows,
    row_rules,
    text_of,
)
from social_leadership.surveys.pseudonym import FUNCTION_NAME as PSEUDONYM
from social_leadership.surveys.pseudonym import registered
from social_leadership.surveys.published import wave_year

log = logging.getLogger(__name__)

STAGING_TABLE = "incoming_respondents"
# Why a country cell is refused when the cell is not shown (:mod:`.rules`: one respondent's).
UNQUOTED_COUNTRY_REASON = (
    "unknown country (the cell is not shown: a text one respondent gives, or one with a "
    "digit or an @, may be personal)"
)
WAVE_TEXT_COLUMN = text_of("wave_num")
COUNTRY_TABLE = "incoming_country_codes"
_COLUMNS_VIEW = "incoming_declared_columns"
# The typed relation of :mod:`.rules` over the staged respondents, with each row's number
# and, for a country that names none, the normaliser's reason.
STAGED_RELATION = (
    f"select s.*, c.country_code, c.reason as country_reason, c.unquoted as country_unquoted "
    f"from {STAGING_TABLE} as s "
    f"left join {COUNTRY_TABLE} as c on s.country = c.country"
)


# Unicode's white space, every character str.isspace (and so the pseudonyms' trim) takes
# for one: DuckDB's trim() alone takes off spaces only, and spreadsheets pad cells with
# no-break spaces and tabs.
UNICODE_SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPACES = quote_literal(UNICODE_SPACES)
# The white space other than the space, which DuckDB's plain trim() leaves.
_OTHER_SPACES = quote_literal(UNICODE_SPACES.replace(" ", ""))


def _trimmed(text: str) -> str:
    """SQL: ``text`` without white space at either end. DuckDB's trim() with a set of
    characters costs ten times its plain trim() of spaces (2.4 s against 0.2 s for the
    cells of a 500,000-row file): the set is taken only for a cell still starting or
    ending with other white space once its spaces are off (a no-break space, a tab)."""
    plain = f"trim({text})"
    ends = " or ".join(
        f"contains({_OTHER_SPACES}, coalesce({plain}[{end}], ' '))" for end in (1, -1)
    )
    return f"case when {ends} then trim({text}, {_SPACES}) else {plain} end"


def _number_sql(cell: str) -> str:
    """Of a trimmed ``cell``: empty or a missing-value mark (``NA``, ``-``, ...:
    :data:`MISSING_MARKS`) -> null; a number (decimal point or comma) -> double; anything
    else -> NaN."""
    marks = ", ".join(quote_literal(mark) for mark in sorted(MISSING_MARKS))
    return (
        f"case when nullif({cell}, '') is null or lower({cell}) in ({marks}) then null "
        f"else coalesce(try_cast(replace({cell}, ',', '.') as double), 'nan'::double) end"
    )


# A weight written with separators as thousands are grouped (``1,200``, ``1.234.567``,
# ``12.345,6``): read by the decimal mark the file's other weights show
# (:func:`_read_grouped_weights`), not by a fixed one.
WEIGHT_MARKED = "weight_marked"
_POINT_GROUPS = re.compile(r"[1-9][0-9]{0,2}(\.[0-9]{3})+(,[0-9]+)?")
_COMMA_GROUPS = re.compile(r"[1-9][0-9]{0,2}(,[0-9]{3})+(\.[0-9]+)?")
# The decimal mark of a text file whose weights do not show it, for ``1,200`` alone: a
# comma separates fields where the point is the decimal mark, a semicolon where the comma
# is (German, French Excel). Other delimiters (a tab), and other formats, tell nothing.
_DECIMAL_BY_DELIMITER = {",": ".", ";": ","}


def _decimal_shown(mark: str) -> str:
    """SQL over ``t``: whether the weight text ``t`` shows ``mark`` (``,`` or ``.``) to be
    the decimal mark: a fraction of other than three digits (``0,85``, ``1.5``), one after
    a zero or after four digits or more (``0,875``, ``1234,567``), or after groups of the
    other mark (``1.234,5``, ``1.234.567``)."""
    group = "." if mark == "," else ","
    d, g = re.escape(mark), re.escape(group)
    return (
        f"(regexp_full_match(t, '[+-]?[0-9]*{d}[0-9]+') "
        f"and not regexp_full_match(t, '[+-]?[1-9][0-9]{{0,2}}{d}[0-9]{{3}}')) "
        f"or regexp_full_match(t, '[+-]?[1-9][0-9]{{0,2}}({g}[0-9]{{3}})+{d}[0-9]+') "
        f"or regexp_full_match(t, '[+-]?[1-9][0-9]{{0,2}}({g}[0-9]{{3}}){{2,}}')"
    )


# What :func:`_read_grouped_weights` gives :func:`grouped_weight` for a file whose weights
# show both marks to be the decimal one (two exports merged?): none of its grouped weights
# can be told.
BOTH_MARKS = "both"


def grouped_weight(text: str, decimal: str | None, delimiter: str | None) -> float | None:
    """The weight ``text`` (of :data:`GROUPED_NUMBER`'s form) names, read with ``decimal``
    as the decimal mark when the file shows one; None when it cannot be told.

    Groups that show themselves (``1.234.567``, ``1,234.5``) are read as such unless the
    file's decimal mark is theirs. A lone point before three digits (``1.125``: SPSS
    writes weights with three decimals) is a decimal point unless the file shows the comma
    to be its decimal mark. A lone comma before three digits (``1,200``) is read by the
    file's decimal mark, else by its delimiter (:data:`_DECIMAL_BY_DELIMITER`), else not.
    ``delimiter`` is None for a file whose number cells are typed (a workbook, Parquet):
    its weight cells that show no comma may be numbers written out (``1.125``), never
    grouped. A file that shows both marks (:data:`BOTH_MARKS`) tells none of them."""
    digits = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    if _POINT_GROUPS.fullmatch(digits):
        point, comma = ".", ","
    elif _COMMA_GROUPS.fullmatch(digits):
        point, comma = ",", "."
    else:
        return None  # both marks between groups (1.234,567.8)
    # ``point`` separates the groups here, ``comma`` the fraction, if any.
    alone = digits.count(point) == 1 and comma not in digits
    if alone and point == "." and delimiter is None:
        return sign * float(digits)  # a number cell written out
    if decimal == BOTH_MARKS:
        return None
    if not alone:
        if decimal == point:
            return None
        return sign * float(digits.replace(point, "").replace(comma, "."))
    if point == ".":
        return sign * (float(digits.replace(".", "")) if decimal == "," else float(digits))
    mark = decimal or _DECIMAL_BY_DELIMITER.get(delimiter or "")
    if mark is None:
        return None
    return sign * float(digits.replace(",", "" if mark == "." else "."))


def _read_grouped_weights(con: duckdb.DuckDBPyConnection, delimiter: str | None) -> None:
    """Read the weights written as thousands are grouped by the file's decimal mark, as
    its other weights show it (:func:`grouped_weight`): every number was read with either
    mark as the decimal one, so ``1,200`` (a population weight of 1200 in an English
    export) was 1.2. One that cannot be told is left unread: refused at its row, saying
    why."""
    grouped = [
        text
        for (text,) in con.execute(
            f"select distinct {WEIGHT_MARKED} from {STAGING_TABLE} "
            f"where regexp_full_match({WEIGHT_MARKED}, '{GROUPED_NUMBER}')"
        ).fetchall()
    ]
    if not grouped:
        return
    comma, point = con.execute(
        f"select bool_or({_decimal_shown(',')}), bool_or({_decimal_shown('.')}) from ("
        f"select distinct {WEIGHT_MARKED} as t from {STAGING_TABLE} "
        f"where {WEIGHT_MARKED} is not null)"
    ).fetchone()
    if comma and point:
        decimal: str | None = BOTH_MARKS
    else:
        decimal = "," if comma else "." if point else None
    read = pd.DataFrame(
        {
            "text": grouped,
            "weight": [grouped_weight(text, decimal, delimiter) for text in grouped],
        }
    )
    con.register("grouped_weights", read)
    try:
        con.execute(
            f"update {STAGING_TABLE} as s set "
            "weight_num = coalesce(g.weight, 'nan'::double), "
            f"{text_of('weight_num')} = case when g.weight is null then g.text end "
            f"from grouped_weights as g where s.{WEIGHT_MARKED} = g.text"
        )
    finally:
        con.unregister("grouped_weights")


def _value_column(column: str) -> str:
    """The staging select's column of ``column``'s cells read as numbers."""
    return f"v_{column}"


def _staging_select(decl: MicrodataDeclaration, columns: dict[str, str], source: str) -> str:
    """One pass over ``source`` (the declared columns as text, each named as ``columns``
    names it): pseudonymise ids, type every declared column (text is kept only for the
    country, which is normalised once per distinct value; and for a weight with a
    separator, read again by :func:`_read_grouped_weights`). Rows with every declared cell
    empty (the ;;; rows a spreadsheet export ends with) are no respondents: left out, as
    blank lines are.

    Three layers, so that each cell is trimmed once and each number read once (written
    out in place, a cell's trim was computed up to seven times): the cells trimmed (the id
    as it is: pseudonymise_array trims it), their numbers, then the typed columns."""
    names = sorted(set(columns.values()))
    cell_of = {name: quote_identifier(column) for name, column in columns.items()}
    trimmed = ", ".join(
        f"{_trimmed(f'cast({quote_identifier(c)} as varchar)')} as {quote_identifier(c)}"
        for c in names
    )
    raw_id = f"cast({quote_identifier(columns[decl.respondent_id_column])} as varchar)"
    filled = ", ".join(f"nullif({quote_identifier(c)}, '')" for c in names)
    numeric = [decl.weight_column, decl.wave_column, *(q.column for q in decl.questions)]
    value_columns = sorted({columns[name] for name in numeric if name})
    values = "".join(
        f", {_number_sql(quote_identifier(c))} as {quote_identifier(_value_column(c))}"
        for c in value_columns
    )

    def number(name: str, alias: str) -> list[str]:
        # The number, and the cell's text when it is none (null otherwise): a report quotes
        # it, and a wave's (a labelled export's "Wave 2024") is read as a sidecar's wave
        # once per distinct text (_read_wave_texts).
        value = quote_identifier(_value_column(columns[name]))
        # Also a missing-value mark's (n/a): "value is empty" misread the cell.
        cell = cell_of[name]
        return [
            f"{value} as {alias}",
            f"case when isnan({value}) or ({value} is null and {cell} <> '') then {cell} "
            f"end as {text_of(alias)}",
        ]

    if decl.wave_column:
        waves = number(decl.wave_column, "wave_num")
    else:
        waves = [f"cast({decl.wave} as double) as wave_num"]
    parts = [
        f"{PSEUDONYM}(raw_id) as respondent_key",
        f"nullif({cell_of[decl.country_column]}, '') as country",
        *waves,
        *(
            number(decl.weight_column, "weight_num")
            if decl.weight_column
            else ["cast(1 as double) as weight_num"]
        ),
    ]
    if decl.weight_column:
        cell = cell_of[decl.weight_column]
        parts.append(
            f"case when contains({cell}, ',') or contains({cell}, '.') then {cell} end "
            f"as {WEIGHT_MARKED}"
        )
    for i, q in enumerate(decl.questions):
        parts += number(q.column, f"a{i}")
    return (
        f"select {ROW_COLUMN}, {', '.join(parts)} from ("
        f"select *{values} from ("
        f"select {ROW_COLUMN}, {raw_id} as raw_id, {trimmed} from {source}"
        f") where coalesce({filled}) is not null)"
    )


def stage(
    con: duckdb.DuckDBPyConnection, path: Path, decl: MicrodataDeclaration, key: bytes
) -> Callable[[list[RowIssue]], list[RowIssue]]:
    """Read only the declared columns, typed and pseudonymised, into a temporary table;
    return what gives the issues of its rows the lines they are on
    (:attr:`DeclaredColumns.as_lines`)."""
    con.execute(f"drop table if exists {STAGING_TABLE}")
    declared = format_of(path).read_columns(path, decl.file_columns(), decl.sheet)
    with registered(con, key, decl.source_id):
        con.register(_COLUMNS_VIEW, declared.batches)
        try:
            con.execute(
                f"create temp table {STAGING_TABLE} as "
                f"{_staging_select(decl, declared.columns, _COLUMNS_VIEW)}"
            )
        finally:
            con.unregister(_COLUMNS_VIEW)
    declared.finish()
    _drop_further_header_rows(con, path.name, decl, declared.as_lines)
    if decl.wave_column:
        _read_wave_texts(con)
    if decl.weight_column:
        _read_grouped_weights(con, declared.delimiter)
    return declared.as_lines


def _read_wave_texts(con: duckdb.DuckDBPyConnection) -> None:
    """Give a wave cell that is text the year it names, read as a sidecar's ``wave`` is
    (:func:`~social_leadership.surveys.published.wave_year`: ``Wave 2024``, ``Jan-24``),
    once per distinct text; a text naming no year stays no number, which the wave's rule
    reports at its row."""
    texts = [
        row[0]
        for row in con.execute(
            f"select distinct {WAVE_TEXT_COLUMN} from {STAGING_TABLE} "
            f"where {WAVE_TEXT_COLUMN} is not null"
        ).fetchall()
    ]
    years = []
    for text in texts:
        with contextlib.suppress(ValueError):
            years.append((text, wave_year(text)))
    if years:
        con.executemany(
            f"update {STAGING_TABLE} set wave_num = ? where {WAVE_TEXT_COLUMN} = ?",
            [(year, text) for text, year in years],
        )


# How many rows under the header a survey tool fills with more header: Qualtrics writes the
# question texts and a row of import ids ({"ImportId":"QID1"}), SurveyMonkey one row of
# answer options ("Response").
FURTHER_HEADER_ROWS = 2


def _drop_further_header_rows(
    con: duckdb.DuckDBPyConnection,
    file_name: str,
    decl: MicrodataDeclaration,
    as_lines: Callable[[list[RowIssue]], list[RowIssue]],
) -> None:
    """Leave out the rows right under the header that are more header: each declared
    answer text that is no number and the country cell no country (a question's wording, an
    import id, "Response"), where the row after them answers with numbers. A respondent with
    a country is never one (its bad answer is reported), nor are the rows of a file that
    answers in words throughout (labelled answers: reported)."""
    if not decl.questions:
        return
    answers = [f"a{index}" for index in range(len(decl.questions))]
    worded = " and ".join(f"{a} is not null and isnan({a})" for a in answers)
    numbered = " or ".join(f"{a} is not null and not isnan({a})" for a in answers)
    first = con.execute(
        f"select {ROW_COLUMN}, {worded}, {numbered}, country from {STAGING_TABLE} "
        f"order by {ROW_COLUMN} limit {FURTHER_HEADER_ROWS + 1}"
    ).fetchall()
    further = []
    for row, is_worded, is_numbered, country in first:
        if is_numbered:
            break
        named = country is not None and names_a_place(country)
        if not is_worded or named or len(further) == FURTHER_HEADER_ROWS:
            return
        further.append(row)
    else:
        return
    if not further:
        return
    con.execute(
        f"delete from {STAGING_TABLE} where {ROW_COLUMN} in ({', '.join(map(str, further))})"
    )
    lines = [
        issue.row for issue in as_lines([RowIssue(file_name, row, "*", "") for row in further])
    ]
    log.info(
        "%s: %s under the header read as more header (a survey tool's question texts or "
        "import ids), not respondents",
        file_name,
        ", ".join(f"row {line}" for line in lines),
    )


_NUMBER = re.compile(r"[0-9]+(?:\.0+)?")
_SHORT_NUMBER = re.compile(r"[0-9]{1,2}(?:\.0+)?")


def _names_a_country(text: str) -> bool:
    """Whether ``text`` names a country (not a missing-value mark, an unknown word, -5)."""
    try:
        survey_country(text)
    except ValueError:
        return False
    return True


def _country_codes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Normalise each distinct country text once (a few dozen, not a million, lookups)."""
    texts = [
        row[0]
        for row in con.execute(
            f"select distinct country from {STAGING_TABLE} where country is not null"
        ).fetchall()
    ]
    records = []
    # Numbers under 100 (4, 40, 76.0) that are the file's only numbers, or beside names: a
    # survey tool's answer codes as much as ISO numeric codes without their leading zeros.
    # Qualtrics' 4 (its fourth country in the list) loaded a whole file as Afghanistan's
    # (ISO 004). Missing-value marks and blanks count for neither.
    numbers = [text for text in texts if _NUMBER.fullmatch(text.strip())]
    short = {text for text in numbers if _SHORT_NUMBER.fullmatch(text.strip())}
    named = any(text not in numbers and _names_a_country(text) for text in texts)
    # Those that would load as a country: one that is no ISO code (1) is unknown as before.
    ambiguous = (
        {text for text in short if _names_a_country(text)}
        if short and (len(short) == len(numbers) or named)
        else set()
    )
    for text in texts:
        code, reason, unquoted = None, None, None
        if text in ambiguous:
            reason = unquoted = (
                f"country {text.strip()!r}: a number under 100 "
                + ("beside country names" if named else "among no other numbers")
                + ", which may be a survey tool's answer code as well as an ISO 3166-1 "
                "numeric code without its leading zeros; write ISO codes with three digits "
                "(004, 040) or export the answers' labels"
            )
        elif is_global_scope(text):
            reason = unquoted = "a respondent needs a country, not a global scope"
        else:
            try:
                code = survey_country(text)
            except ValueError as exc:
                reason = str(exc)
                # A missing-value mark (NA) is a word of the export, not the respondent's.
                marked = text.strip().casefold() in MISSING_MARKS
                unquoted = reason if marked else UNQUOTED_COUNTRY_REASON
        records.append(
            {"country": text, "country_code": code, "reason": reason, "unquoted": unquoted}
        )
    return pd.DataFrame.from_records(
        records, columns=["country", "country_code", "reason", "unquoted"]
    )


def validate(
    con: duckdb.DuckDBPyConnection, file_name: str, decl: MicrodataDeclaration
) -> list[RowIssue]:
    """Every problem of the staged file (at most MAX_REPORTED_ISSUES per rule).

    One aggregate scan decides whether anything is wrong; only then do per-row queries
    find where, so a clean million-row file costs one pass.
    """
    rules = row_rules(decl)
    counts_sql = ", ".join(f"count_if({rule.failing})" for rule in rules)
    counts = con.execute(
        f"select count(*), {repeated_rows('respondent_key', 'wave_num')}, {counts_sql} "
        f"from ({STAGED_RELATION})"
    ).fetchone()
    assert counts is not None
    total, repeated, *failing = counts
    if not total:
        return [RowIssue(file_name, 2, "*", NO_ROWS_REASON)]
    issues: list[RowIssue] = []
    for rule, count in zip(rules, failing, strict=True):
        if not count:
            continue
        # The rows reported first, then their reasons: a reason's window (whether more
        # than one respondent gives a cell, :func:`.rules._is_label`) over every failing
        # row of a large bad file took memory past DuckDB's limit (3.7 GB at 6 million
        # rows against 1.3 GB without it). Among the rows reported, a cell more than one
        # respondent gives is so in the whole file too: quoted as before, or not at all.
        reported = (
            f"select * from ({STAGED_RELATION}) where {rule.failing} "
            f"order by {ROW_COLUMN} limit {MAX_REPORTED_ISSUES + 1}"
        )
        for row, text in con.execute(
            f"select {ROW_COLUMN}, {rule.reason} from ({reported}) order by 1"
        ).fetchall():
            issues.append(RowIssue(file_name, int(row), rule.column, str(text)))
    if repeated:
        # Which id repeats is not said: a report must not carry respondent ids.
        for (row,) in con.execute(
            f"select {ROW_COLUMN} from (select {ROW_COLUMN}, row_number() over "
            f"(partition by respondent_key, wave_num order by {ROW_COLUMN}) as seen "
            f"from {STAGING_TABLE} where respondent_key is not null) where seen > 1 "
            f"order by 1 limit {MAX_REPORTED_ISSUES + 1}"
        ).fetchall():
            issues.append(RowIssue(file_name, int(row), decl.respondent_id_column, REPEAT_REASON))
    issues.sort(key=lambda issue: issue.row)
    return issues


def staged_waves(con: duckdb.DuckDBPyConnection) -> list[int]:
    rows = con.execute(
        f"select distinct cast(wave_num as integer) from {STAGING_TABLE} order by 1"
    ).fetchall()
    return [int(row[0]) for row in rows]


def prepare(
    con: duckdb.DuckDBPyConnection, path: Path, decl: MicrodataDeclaration, key: bytes
) -> None:
    """Stage and validate; raise SurveyValidationError (the staging is then dropped)."""
    try:
        try:
            as_lines = stage(con, path, decl, key)
        except duckdb.Error as exc:
            if is_warehouse_fault(exc):
                raise
            raise file_problem(path.name, str(exc).splitlines()[0]) from None
        con.register(COUNTRY_TABLE, _country_codes(con))
        issues = validate(con, path.name, decl)
        if issues:
            raise SurveyValidationError(as_lines(issues))
    except BaseException:
        cleanup(con)
        raise


def insert(
    con: duckdb.DuckDBPyConnection, decl: MicrodataDeclaration, *, sha: str, loaded_at: datetime
) -> int:
    """Insert the validated, staged respondents; the caller holds the transaction."""
    return insert_respondents(con, decl, STAGED_RELATION, sha=sha, loaded_at=loaded_at)


def cleanup(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop table if exists {STAGING_TABLE}")
    with contextlib.suppress(duckdb.Error):
        con.unregister(COUNTRY_TABLE)
