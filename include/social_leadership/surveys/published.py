"""Published aggregate figures (one row per source x wave x scope x question) into
``raw.survey_results``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from social_leadership.roster import normalize_country
from social_leadership.surveys.common import (
    GLOBAL_SCOPES,
    SurveyIssue,
    SurveyValidationError,
    TextTable,
    cap_issues,
    find_columns,
    read_csv_table,
    read_parquet_table,
    read_xlsx_table,
)

PUBLISHED_COLUMNS = (
    "source_id",
    "source_name",
    "wave",
    "scope",
    "question_id",
    "question_text",
    "measure",
    "value",
    "sample_size",
    "margin_of_error_pct",
    "citation",
)
REQUIRED_COLUMNS = ("source_id", "source_name", "wave", "scope", "question_id", "value")
MEASURES = ("share_pct", "index")


def _number(text: str) -> float:
    """``76``, ``76.5``, ``76,5``, ``76 %`` and ``76,5%`` all read as numbers."""
    cleaned = text.replace("\u00a0", " ").strip().rstrip("%").strip().replace(",", ".")
    return float(cleaned)


def _optional(text: str, *, whole: bool) -> float | int | None:
    text = text.strip()
    if not text:
        return None
    number = _number(text)
    if whole:
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    return number


def parse_published_table(name: str, table: TextTable) -> pd.DataFrame:
    """Validate published aggregates; raise SurveyValidationError listing every issue."""
    columns = find_columns(table.header, list(PUBLISHED_COLUMNS))
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise SurveyValidationError(
            [SurveyIssue(name, 1, column, "required column missing") for column in missing]
        )
    issues: list[SurveyIssue] = []
    records = []
    for line_no, row in table.records():

        def problem(column: str, reason: str, line_no: int = line_no) -> None:
            issues.append(SurveyIssue(name, line_no, column, reason))

        record: dict[str, object] = {
            column: (row.get(columns[column]) or "").strip() if column in columns else ""
            for column in PUBLISHED_COLUMNS
        }
        for column in REQUIRED_COLUMNS:
            if not record[column]:
                problem(column, "value is empty")
        try:
            wave = int(_number(str(record["wave"])))
            if not 1990 <= wave <= 2100:
                problem("wave", f"{wave} is not a plausible survey year")
            record["wave"] = wave
        except ValueError:
            if record["wave"]:
                problem("wave", f"{record['wave']!r} is not a year")
        scope = str(record["scope"])
        if scope.casefold() in GLOBAL_SCOPES:
            record["scope"] = "global"
        elif scope:
            try:
                record["scope"] = normalize_country(scope)
            except ValueError as exc:
                problem("scope", str(exc))
        measure = str(record["measure"] or "share_pct")
        if measure not in MEASURES:
            problem("measure", f"{measure!r} is not one of {', '.join(MEASURES)}")
        record["measure"] = measure
        try:
            value = _number(str(record["value"]))
            if measure == "share_pct" and not 0 <= value <= 100:
                problem("value", f"share {value} is outside 0-100")
            record["value"] = value
        except ValueError:
            if record["value"]:
                problem("value", f"{record['value']!r} is not a number")
        try:
            record["sample_size"] = _optional(str(record["sample_size"]), whole=True)
        except ValueError:
            problem("sample_size", f"{record['sample_size']!r} is not a whole number")
        try:
            record["margin_of_error_pct"] = _optional(
                str(record["margin_of_error_pct"]), whole=False
            )
        except ValueError:
            problem("margin_of_error_pct", f"{record['margin_of_error_pct']!r} is not a number")
        record["question_text"] = record["question_text"] or record["question_id"]
        record["citation"] = record["citation"] or record["source_name"]
        records.append(record)
    if not records and not issues:
        issues.append(SurveyIssue(name, 2, "*", "file has no data rows"))
    if not issues:
        frame = pd.DataFrame.from_records(records, columns=list(PUBLISHED_COLUMNS))
        duplicated = frame.duplicated(["source_id", "wave", "scope", "question_id", "measure"])
        for index in frame.index[duplicated]:
            issues.append(
                SurveyIssue(
                    name,
                    table.rows[index][0],
                    "question_id",
                    "same source, wave, scope, question and measure as an earlier row",
                )
            )
    if issues:
        raise SurveyValidationError(cap_issues(issues, name))
    return frame


def read_published_table(path: Path, sheet: str | None = None) -> TextTable:
    name = path.name.lower()
    if name.endswith(".xlsx"):
        return read_xlsx_table(path, list(REQUIRED_COLUMNS), sheet)
    if name.endswith(".parquet"):
        return read_parquet_table(path)
    return read_csv_table(path)


def parse_published_file(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """Validate a published-aggregate CSV, XLSX or Parquet file."""
    return parse_published_table(path.name, read_published_table(path, sheet))


def parse_published_csv(path: Path) -> pd.DataFrame:
    """Validate a published-aggregate CSV (kept for callers of the first slice)."""
    return parse_published_table(path.name, read_csv_table(path))


def load_published_frame(
    con: duckdb.DuckDBPyConnection,
    frame: pd.DataFrame,
    *,
    file_name: str,
    sha: str,
    loaded_at: datetime | None = None,
) -> int:
    """Insert validated rows; the caller holds the transaction that replaced older rows."""
    frame = frame.copy()
    frame["is_published_aggregate"] = True
    frame["file_name"] = file_name
    frame["file_sha256"] = sha
    frame["loaded_at"] = loaded_at or datetime.now(UTC)
    con.register("incoming_survey_rows", frame)
    try:
        con.execute(
            """
            insert into raw.survey_results (
                source_id, source_name, wave, scope, question_id, question_text, measure,
                value, sample_size, margin_of_error_pct, is_published_aggregate, citation,
                file_name, file_sha256, loaded_at
            )
            select source_id, source_name, wave, scope, question_id, question_text, measure,
                value, sample_size, margin_of_error_pct, is_published_aggregate, citation,
                file_name, file_sha256, loaded_at
            from incoming_survey_rows
            """
        )
    finally:
        con.unregister("incoming_survey_rows")
    return len(frame)
