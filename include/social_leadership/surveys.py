"""Survey ingestion: published aggregate figures into ``raw.survey_results``.

A file is validated as a whole. If any row is invalid, nothing from it is loaded: the file
moves to quarantine beside a JSON report naming file, row, column and reason, and the other
files still load. Loading is keyed by file content (SHA-256): dropping the same file again
is a no-op, and a new file for the same source and wave replaces the earlier rows in one
transaction.

Published-aggregate CSV columns (header row required, UTF-8)::

    source_id, source_name, wave, scope, question_id, question_text, measure, value,
    sample_size, margin_of_error_pct, citation

``scope`` is ``Global``/``World`` or a country in any common form (normalised to ISO
3166-1 alpha-2); ``measure`` is ``share_pct`` (0-100) or ``index``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import duckdb
import pandas as pd

from social_leadership.roster import normalize_country
from social_leadership.warehouse import transaction

BUNDLED_PUBLISHED_FILE = (
    Path(__file__).resolve().parent.parent / "data" / "surveys" / "published_ceo_expectations.csv"
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
GLOBAL_SCOPES = {"global", "world", "worldwide", "weltweit"}


@dataclass(frozen=True)
class SurveyIssue:
    file: str
    row: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.column}: {self.reason}"


@dataclass
class SurveyFileOutcome:
    file: str
    status: str  # loaded | unchanged | quarantined
    rows_loaded: int = 0
    issues: list[SurveyIssue] = field(default_factory=list)
    report_path: str | None = None


class SurveyValidationError(ValueError):
    """A survey file failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: list[SurveyIssue]):
        self.issues = issues
        shown = "; ".join(str(issue) for issue in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(f"{len(issues)} problem(s): {shown}{more}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _optional_number(text: str, *, cast: type) -> float | int | None:
    text = text.strip()
    if not text:
        return None
    return cast(text)


def _add_issue(issues: list[SurveyIssue], file: str, row: int, column: str, reason: str) -> None:
    issues.append(SurveyIssue(file, row, column, reason))


def parse_published_csv(path: Path) -> pd.DataFrame:
    """Validate a published-aggregate CSV; raise SurveyValidationError listing every issue."""
    name = path.name
    issues: list[SurveyIssue] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise SurveyValidationError(
                [SurveyIssue(name, 1, column, "required column missing") for column in missing]
            )
        records = []
        for line_no, row in enumerate(reader, start=2):
            problem = partial(_add_issue, issues, name, line_no)

            for column in REQUIRED_COLUMNS:
                if not (row.get(column) or "").strip():
                    problem(column, "value is empty")
            record: dict[str, object] = {c: (row.get(c) or "").strip() for c in PUBLISHED_COLUMNS}
            try:
                wave = int(record["wave"])
                if not 1990 <= wave <= 2100:
                    problem("wave", f"{wave} is not a plausible survey year")
                record["wave"] = wave
            except ValueError:
                if record["wave"]:
                    problem("wave", f"{record['wave']!r} is not a year")
            scope = str(record["scope"])
            if scope.lower() in GLOBAL_SCOPES:
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
                value = float(str(record["value"]).replace(",", ".").rstrip("% ").strip())
                if measure == "share_pct" and not 0 <= value <= 100:
                    problem("value", f"share {value} is outside 0-100")
                record["value"] = value
            except ValueError:
                if record["value"]:
                    problem("value", f"{record['value']!r} is not a number")
            try:
                record["sample_size"] = _optional_number(str(record["sample_size"]), cast=int)
            except ValueError:
                problem("sample_size", f"{record['sample_size']!r} is not a whole number")
            try:
                record["margin_of_error_pct"] = _optional_number(
                    str(record["margin_of_error_pct"]).replace(",", "."), cast=float
                )
            except ValueError:
                problem("margin_of_error_pct", f"{record['margin_of_error_pct']!r} is not a number")
            record["question_text"] = record["question_text"] or record["question_id"]
            record["citation"] = record["citation"] or record["source_name"]
            records.append(record)
    if not records and not issues:
        issues.append(SurveyIssue(name, 2, "*", "file has no data rows"))
    if issues:
        raise SurveyValidationError(issues)
    return pd.DataFrame.from_records(records, columns=list(PUBLISHED_COLUMNS))


def quarantine(path: Path, quarantine_dir: Path, issues: list[SurveyIssue]) -> Path:
    """Move a rejected file into quarantine with a machine-readable report; return the report."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target_dir = quarantine_dir / "surveys" / f"{stamp}-{path.name}"
    target_dir.mkdir(parents=True, exist_ok=True)
    report = target_dir / "report.json"
    report.write_text(
        json.dumps(
            {"file": path.name, "quarantined_at": stamp, "issues": [asdict(i) for i in issues]},
            indent=2,
        )
    )
    shutil.move(str(path), target_dir / path.name)
    return report


def load_published_file(
    con: duckdb.DuckDBPyConnection, path: Path, *, loaded_at: datetime | None = None
) -> SurveyFileOutcome:
    """Load one validated file; replace earlier rows of the same source and wave atomically."""
    sha = file_sha256(path)
    already = con.execute(
        "select count(*) from raw.survey_results where file_sha256 = ?", [sha]
    ).fetchone()
    if already and already[0]:
        return SurveyFileOutcome(file=path.name, status="unchanged")
    frame = parse_published_csv(path)
    frame["is_published_aggregate"] = True
    frame["file_name"] = path.name
    frame["file_sha256"] = sha
    frame["loaded_at"] = loaded_at or datetime.now(UTC)
    keys = frame[["source_id", "wave"]].drop_duplicates()
    with transaction(con):
        con.register("incoming_survey_keys", keys)
        con.execute(
            """
            delete from raw.survey_results r
            using incoming_survey_keys k
            where r.source_id = k.source_id and r.wave = k.wave
            """
        )
        con.register("incoming_survey_rows", frame)
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
        con.unregister("incoming_survey_rows")
        con.unregister("incoming_survey_keys")
    return SurveyFileOutcome(file=path.name, status="loaded", rows_loaded=len(frame))


def ingest_folder(
    con: duckdb.DuckDBPyConnection,
    survey_dir: Path,
    quarantine_dir: Path,
    *,
    include_bundled: bool = True,
) -> list[SurveyFileOutcome]:
    """Load the bundled published figures and every CSV in the landing folder.

    A bad landed file is quarantined and reported; it never stops the other files.
    The bundled reference file is never moved (it is part of the product, not an arrival).
    """
    outcomes: list[SurveyFileOutcome] = []
    if include_bundled:
        outcomes.append(load_published_file(con, BUNDLED_PUBLISHED_FILE))
    for path in sorted(survey_dir.glob("*.csv")) if survey_dir.exists() else []:
        try:
            outcomes.append(load_published_file(con, path))
        except SurveyValidationError as exc:
            report = quarantine(path, quarantine_dir, exc.issues)
            outcomes.append(
                SurveyFileOutcome(
                    file=path.name, status="quarantined", issues=exc.issues, report_path=str(report)
                )
            )
    return outcomes
