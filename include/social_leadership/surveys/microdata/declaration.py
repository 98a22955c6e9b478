"""A respondent file's sidecar declaration: source, columns, and per question its scale and
agreeing answers (the format is in :mod:`social_leadership.surveys.microdata`).

:func:`parse_declaration` checks a sidecar and names each bad field; the declared questions
are stored, once per wave a file holds, by :func:`insert_questions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from social_leadership.intake import RowIssue
from social_leadership.surveys.common import MISSING_COLUMN_REASON, SurveyValidationError

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
ROLE_DEFAULTS = {"respondent_id": "respondent_id", "country": "country", "wave": "wave"}
# Output columns of the staging query; a question id may not take one of these names.
RESERVED_NAMES = {"respondent_key", "respondent_id", "country", "country_code", "wave", "weight"}


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
    # Each column read by its default name (the sidecar's ``columns`` names none for the
    # role), by role: a file without it is told so, not that it lacks a "declared" column.
    defaulted: tuple[tuple[str, str], ...] = ()

    def file_columns(self) -> list[str]:
        columns = [self.respondent_id_column, self.country_column]
        columns += [c for c in (self.wave_column, self.weight_column) if c]
        return columns + [q.column for q in self.questions]

    def defaults_said(self, issues: list[RowIssue]) -> list[RowIssue]:
        """``issues`` with each missing column the sidecar did not name said as a default's:
        ``weight: no such column: weight is the default name of the weight column, as the
        sidecar's "columns" names none (name it there, or "weight": null for an unweighted
        survey)``."""
        roles = {column: role for role, column in self.defaulted}
        said = []
        for issue in issues:
            role = roles.get(issue.column)
            if role is not None and issue.reason == MISSING_COLUMN_REASON:
                unweighted = (
                    ', or "weight": null for an unweighted survey' if role == "weight" else ""
                )
                issue = replace(
                    issue,
                    reason=f"no such column: {issue.column} is the default name of the {role} "
                    f'column, as the sidecar\'s "columns" names none (name it there{unweighted})',
                )
            said.append(issue)
        return said


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
    issues: list[RowIssue] = []

    def problem(column: str, reason: str) -> None:
        issues.append(RowIssue(sidecar_name, 0, column, reason))

    source_id = data.get("source_id")
    if not isinstance(source_id, str) or not ID_PATTERN.match(source_id):
        problem("source_id", "needs a lowercase id (letters, digits, underscores)")
    source_name = data.get("source_name")
    if not isinstance(source_name, str) or not source_name.strip():
        problem("source_name", "needs the survey's name")
        source_name = ""
    wave = data.get("wave")
    if isinstance(wave, str):
        # As text, read as the published sidecar reads it ("2024", "Wave 2024", "Jan-24").
        from social_leadership.surveys.published import wave_year

        try:
            wave = wave_year(wave.strip())
        except ValueError as exc:
            problem("wave", str(exc))  # (kept as text: it was given, no column is needed)
    elif wave is not None and (
        isinstance(wave, bool) or not isinstance(wave, int) or not 1990 <= wave <= 2100
    ):
        problem("wave", f"{wave!r} is not a plausible survey year")
    is_synthetic = data.get("is_synthetic")
    if is_synthetic is None:
        is_synthetic = False  # absent, or null as tools write None
    if not isinstance(is_synthetic, bool):
        # "false" as a string is true to Python: a real survey would be marked invented.
        problem("is_synthetic", f"{is_synthetic!r} is not true or false (a JSON boolean)")
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
    named = data.get("columns") or {}
    defaulted = {**ROLE_DEFAULTS, "weight": "weight"}
    if wave is not None:
        del defaulted["wave"]
    return MicrodataDeclaration(
        source_id=str(source_id),
        source_name=str(source_name),
        citation=str(data.get("citation") or source_name),
        is_synthetic=is_synthetic is True,
        respondent_id_column=roles["respondent_id"],
        country_column=roles["country"],
        wave_column=roles.get("wave") if wave is None else None,
        wave=wave,
        weight_column=weight_column if isinstance(weight_column, str) else None,
        questions=tuple(questions),
        sheet=data.get("sheet"),
        defaulted=tuple((role, column) for role, column in defaulted.items() if role not in named),
    )


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
