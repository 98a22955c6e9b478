"""The raw and audit tables: the contract between the Python loaders and dbt, stated once.

Each table is declared here with its columns' names, DuckDB types and descriptions. Two
things are rendered from it: :data:`RAW_DDL`, which ``warehouse.ensure_schema`` runs, and
dbt's ``models/staging/_staging__sources.yml``, which lists the same columns for the
staging models and the docs. After changing a table here, regenerate the YAML:

    .venv/bin/python -m social_leadership.raw_contract

(tests/include/test_raw_contract.py fails while the committed YAML differs.) Tables keep
their column order: loaders insert by position. A column added to an existing table also
needs a migration in ``warehouse.ensure_schema`` (``create table if not exists`` leaves an
older warehouse's table as it was).
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

SOURCES_YAML_PATH = (
    Path(__file__).resolve().parents[2]
    / "dbt_project"
    / "models"
    / "staging"
    / "_staging__sources.yml"
)


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # as DuckDB's DDL spells it
    description: str
    nullable: bool = False


@dataclass(frozen=True)
class Freshness:
    """dbt source freshness on ``loaded_at``; None thresholds: only the field is declared."""

    warn_after_days: int | None = None
    error_after_days: int | None = None


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    # The dbt source (group in the sources YAML) the table belongs to; None: not read by dbt.
    dbt_source: str | None = None
    freshness: Freshness | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class DbtSource:
    name: str
    description: str


def _col(name: str, data_type: str, description: str) -> Column:
    return Column(name, data_type, description)


def _nullable(name: str, data_type: str, description: str) -> Column:
    return Column(name, data_type, description, nullable=True)


_LOADED_AT = _col("loaded_at", "timestamptz", "When the loader wrote the row (UTC).")
_SHA256 = _col("file_sha256", "varchar", "SHA-256 of the file's content.")
_DAILY = Freshness(warn_after_days=2, error_after_days=4)

DBT_SOURCES: tuple[DbtSource, ...] = (
    DbtSource("roster", "The executive roster, loaded from the roster CSV on every pipeline run."),
    DbtSource(
        "platforms",
        "Daily follower/following/post counts collected from the platform APIs and imports.",
    ),
    DbtSource(
        "history",
        "Follower history imported from files (history.py): counts the APIs cannot give, "
        "such as past days and LinkedIn members.",
    ),
    DbtSource(
        "surveys",
        "Public-trust survey results (published aggregates and computed shares).",
    ),
)

TABLES: tuple[Table, ...] = (
    Table(
        "raw",
        "roster_executives",
        "One row per executive and declared version as currently listed in the roster "
        "(no primary key: several rows per executive with distinct valid_from declare "
        "history).",
        (
            _col("executive_id", "varchar", "Stable roster identifier of the executive."),
            _col("full_name", "varchar", "Executive's full name."),
            _col("title", "varchar", "Job title as listed in the roster."),
            _col("company_name", "varchar", "Company the executive leads in this version."),
            _col("country_code", "varchar", "ISO 3166-1 alpha-2 code of the company's country."),
            _col("sector", "varchar", "GICS sector name of the company."),
            _col("is_synthetic", "boolean", "True for rows of the synthetic demo roster."),
            _nullable(
                "valid_from",
                "date",
                "Declared start of this version (title, company, country, sector); null when "
                "the roster declares no history for the executive. Unique per executive_id.",
            ),
            _col("roster_file", "varchar", "Roster file the row was loaded from."),
            _LOADED_AT,
        ),
        dbt_source="roster",
        freshness=_DAILY,
    ),
    Table(
        "raw",
        "roster_accounts",
        "Social accounts of the executives, one row per platform handle.",
        (
            _col("executive_id", "varchar", "Executive owning the account."),
            _col("platform", "varchar", "Platform id."),
            _col("account_handle", "varchar", "Handle (or channel/page id) on the platform."),
            _LOADED_AT,
        ),
        primary_key=("platform", "account_handle"),
        dbt_source="roster",
        freshness=_DAILY,
    ),
    Table(
        "raw",
        "platform_metrics",
        "One row per account observation. An account can be observed more than once per "
        "snapshot_date when API and import sources overlap.",
        (
            _col("platform", "varchar", "Platform id."),
            _col("snapshot_date", "date", "Calendar day (UTC) the counts describe."),
            _col("account_handle", "varchar", "Handle (or channel/page id) observed."),
            _nullable("account_id", "varchar", "Platform's own id for the account, when returned."),
            _col(
                "account_status",
                "varchar",
                "ok when counts were returned; otherwise why not (not_found, private, ...).",
            ),
            _nullable("followers", "bigint", "Follower (or subscriber) count; null unless ok."),
            _nullable("following", "bigint", "Accounts followed, where exposed."),
            _nullable("posts", "bigint", "Posts (tweets, videos, ...) published, where exposed."),
            _col("observed_at", "timestamptz", "When the platform was asked (UTC)."),
            _col("source", "varchar", "How the row arrived (api, import, sandbox, ...)."),
            _nullable("landing_path", "varchar", "Landing file holding the raw response, if any."),
            _LOADED_AT,
        ),
        dbt_source="platforms",
        freshness=_DAILY,
    ),
    Table(
        "raw",
        "survey_results",
        "One row per survey source x wave x scope x question x measure.",
        (
            _col("source_id", "varchar", "Short id of the survey source."),
            _col("source_name", "varchar", "Publisher and title of the survey."),
            _col("wave", "integer", "Survey wave (year of fieldwork)."),
            _col("scope", "varchar", "ISO alpha-2 country code, or global."),
            _col("question_id", "varchar", "Stable id of the question or statement."),
            _col("question_text", "varchar", "Question or statement wording."),
            _col("measure", "varchar", "What value measures (e.g. share_pct)."),
            _col("value", "double", "The figure: a share in percent for share_pct."),
            _nullable("sample_size", "integer", "Respondents behind the value, if published."),
            _nullable(
                "margin_of_error_pct",
                "double",
                "95% margin of error in percentage points, if published.",
            ),
            _col(
                "is_published_aggregate",
                "boolean",
                "True when taken from a publication, false when computed from microdata.",
            ),
            _col("citation", "varchar", "Where the figure was published."),
            _col("file_name", "varchar", "Survey file the row was loaded from."),
            _SHA256,
            _LOADED_AT,
        ),
        dbt_source="surveys",
    ),
    Table(
        "raw",
        "survey_questions",
        "Questions declared by each respondent-microdata file (sidecar): answer scale and the "
        "inclusive range of answers that count as agreeing. One row per source x wave x "
        "question.",
        (
            _col("source_id", "varchar", "Short id of the survey source."),
            _col("source_name", "varchar", "Publisher and title of the survey."),
            _col("wave", "integer", "Survey wave (year of fieldwork)."),
            _col("question_id", "varchar", "Stable id of the question."),
            _col(
                "question_position",
                "integer",
                "1-based position of the question's answer in survey_respondent_answers.answers.",
            ),
            _col("question_text", "varchar", "Question wording."),
            _col("scale_min", "integer", "Lowest answer on the question's scale."),
            _col("scale_max", "integer", "Highest answer on the question's scale."),
            _col("agree_min", "integer", "Lowest answer that counts as agreeing."),
            _col("agree_max", "integer", "Highest answer that counts as agreeing."),
            _col("citation", "varchar", "Where the survey is documented."),
            _col("is_synthetic", "boolean", "True for generated demo microdata."),
            _col("file_name", "varchar", "Microdata file the question was declared for."),
            _SHA256,
            _LOADED_AT,
        ),
        dbt_source="surveys",
    ),
    Table(
        "raw",
        "survey_respondent_answers",
        "One row per respondent of respondent microdata, answers listed in question_position "
        "order. respondent_key is a keyed 64-bit pseudonym; raw ids and free-text answers are "
        "never loaded.",
        (
            _col("source_id", "varchar", "Short id of the survey source."),
            _col("wave", "integer", "Survey wave (year of fieldwork)."),
            _col("country_code", "varchar", "ISO alpha-2 code of the respondent's country."),
            _col(
                "respondent_key",
                "ubigint",
                "Keyed pseudonym of the respondent id (surveys/pseudonym.py), distinct "
                "within the file; the id itself is never stored.",
            ),
            _col("weight", "double", "Survey weight of the respondent."),
            _col(
                "answers",
                "integer[]",
                "Answers in question_position order; null: not answered or don't know.",
            ),
            _SHA256,
            _LOADED_AT,
        ),
        dbt_source="surveys",
    ),
    Table(
        "raw",
        "history_imports",
        "One row per imported history file, with its row counts.",
        (
            _col(
                "import_id",
                "bigint",
                "Import number (sequence raw.history_import_ids); the newest import of an "
                "account and day wins.",
            ),
            _col("file_name", "varchar", "Path of the imported file."),
            _col("rows_read", "bigint", "Data rows in the file."),
            _col("rows_loaded", "bigint", "Rows loaded (the rest were rejected)."),
            _col("rows_rejected", "bigint", "Rows rejected, each named in the quarantine report."),
            _col("loaded_at", "timestamptz", "When the import was committed (UTC)."),
        ),
        dbt_source="history",
        freshness=Freshness(),
    ),
    Table(
        "raw",
        "imported_metrics",
        "One row per account and day of an imported file. A later import of the same "
        "(platform, account, day) replaces the earlier row at load time.",
        (
            _col("import_id", "bigint", "The import that brought the row."),
            _col("platform", "varchar", "Platform id."),
            _col("snapshot_date", "date", "Calendar day (UTC) the counts describe."),
            _col("account_handle", "varchar", "Handle of the account, in the roster's spelling."),
            _col("followers", "bigint", "Follower (or subscriber) count on that day."),
            _nullable("following", "bigint", "Accounts followed, when the file gives it."),
            _nullable("posts", "bigint", "Posts published, when the file gives it."),
        ),
        dbt_source="history",
    ),
    Table(
        "raw",
        "survey_files",
        "Every survey file ever loaded, by content: the same file dropped again is a no-op "
        "even after a correction replaced its rows.",
        (
            _SHA256,
            _col("file_name", "varchar", "Name of the file when first loaded."),
            _LOADED_AT,
        ),
    ),
    Table(
        "audit",
        "platform_loads",
        "One row per platform, day and run: what was requested, loaded and missing.",
        (
            _col("platform", "varchar", "Platform id."),
            _col("snapshot_date", "date", "Day the counts describe."),
            _col("run_id", "varchar", "Airflow run id."),
            _col(
                "status",
                "varchar",
                "loaded, failed, skipped_backfill, not_configured or nothing_landed.",
            ),
            _col("accounts_requested", "integer", "Accounts asked for."),
            _col("accounts_loaded", "integer", "Accounts with a row loaded."),
            _col("accounts_missing", "integer", "Accounts asked for but not loaded."),
            _col("requests_sent", "integer", "HTTP requests sent to the platform."),
            _nullable("message", "varchar", "Why, when the status is not ok."),
            _col("started_at", "timestamptz", "When the load started (UTC)."),
            _col("finished_at", "timestamptz", "When the load finished (UTC)."),
        ),
    ),
    Table(
        "audit",
        "dbt_builds",
        "Each successful dbt build, incremental or full refresh, and why.",
        (
            _col("run_id", "varchar", "Airflow run id."),
            _col("full_refresh", "boolean", "True for a --full-refresh build."),
            _col("reason", "varchar", "Why the build was incremental or full."),
            _col("started_at", "timestamptz", "When dbt started (UTC)."),
            _col("finished_at", "timestamptz", "When dbt finished (UTC)."),
            _col("nodes_passed", "integer", "Nodes dbt reported as passed."),
        ),
    ),
    Table(
        "audit",
        "quality_results",
        "Every Great Expectations check of every quality gate run.",
        (
            _col("run_id", "varchar", "Airflow run id."),
            _col("suite_name", "varchar", "GX suite (marts.<table>)."),
            _col("table_name", "varchar", "Mart table checked."),
            _col("expectation", "varchar", "GX expectation type."),
            _nullable("column_name", "varchar", "Column(s) checked, comma-separated."),
            _col("is_critical", "boolean", "True when a failure blocks publication."),
            _col("success", "boolean", "True when the check passed."),
            _nullable("unexpected_count", "bigint", "Rows that failed the check."),
            _nullable("details", "varchar", "Observed value and sample of failures (JSON)."),
            _col("checked_at", "timestamptz", "When the gate ran (UTC)."),
        ),
    ),
    Table(
        "audit",
        "publications",
        "Each publication of the marts to the serving copy and Parquet.",
        (
            _col("run_id", "varchar", "Airflow run id."),
            _col("serving_path", "varchar", "Serving DuckDB file written."),
            _col("parquet_dir", "varchar", "Parquet folder of the publication."),
            _col("tables_published", "integer", "Mart tables published."),
            _col("published_at", "timestamptz", "When the publication started (UTC)."),
        ),
    ),
)

# Numbers for raw.history_imports.import_id.
SEQUENCES: tuple[str, ...] = ("raw.history_import_ids",)


def render_ddl(tables: tuple[Table, ...] = TABLES) -> str:
    """``create ... if not exists`` for every schema, sequence and table (idempotent)."""
    schemas = dict.fromkeys(table.schema for table in tables)
    statements = [f"create schema if not exists {schema};" for schema in schemas]
    statements += [f"create sequence if not exists {name} start 1;" for name in SEQUENCES]
    for table in tables:
        lines = [
            f"    {column.name} {column.data_type}{'' if column.nullable else ' not null'}"
            for column in table.columns
        ]
        if table.primary_key:
            lines.append(f"    primary key ({', '.join(table.primary_key)})")
        body = ",\n".join(lines)
        statements.append(f"create table if not exists {table.qualified_name} (\n{body}\n);")
    return "\n\n".join(statements) + "\n"


RAW_DDL = render_ddl()


def _scalar(key: str, text: str, indent: int) -> list[str]:
    """``key: text`` as YAML, folded over lines of at most 100 characters when long."""
    import yaml

    prefix = " " * indent
    line = f"{prefix}{key}: {text}"
    try:
        plain = yaml.safe_load(f"{key}: {text}") == {key: text}
    except yaml.YAMLError:
        plain = False
    if plain and len(line) <= 100:
        return [line]
    body = textwrap.wrap(text, width=100 - indent - 2, break_on_hyphens=False)
    return [f"{prefix}{key}: >-", *(f"{prefix}  {part}" for part in body)]


def _freshness(freshness: Freshness, indent: int) -> list[str]:
    prefix = " " * indent
    lines = [f"{prefix}config:", f"{prefix}  loaded_at_field: loaded_at"]
    thresholds = [
        (level, days)
        for level, days in (
            ("warn_after", freshness.warn_after_days),
            ("error_after", freshness.error_after_days),
        )
        if days is not None
    ]
    if thresholds:
        lines.append(f"{prefix}  freshness:")
        lines += [
            f"{prefix}    {level}: {{count: {days}, period: day}}" for level, days in thresholds
        ]
    return lines


def render_sources_yaml(tables: tuple[Table, ...] = TABLES) -> str:
    """dbt's sources file: every table with a ``dbt_source``, its columns as declared."""
    lines = [
        "# Generated from include/social_leadership/raw_contract.py, the raw contract: edit the",
        "# tables there and run `.venv/bin/python -m social_leadership.raw_contract`.",
        "version: 2",
        "",
        "sources:",
    ]
    for index, source in enumerate(DBT_SOURCES):
        members = [table for table in tables if table.dbt_source == source.name]
        schemas = {table.schema for table in members}
        if len(schemas) != 1:
            raise ValueError(f"dbt source {source.name}: tables in schemas {sorted(schemas)}")
        if index:
            lines.append("")
        lines += [f"  - name: {source.name}", *_scalar("description", source.description, 4)]
        lines += [f"    schema: {schemas.pop()}", "    tables:"]
        for table in members:
            lines += [f"      - name: {table.name}", *_scalar("description", table.description, 8)]
            if table.freshness is not None:
                lines += _freshness(table.freshness, 8)
            lines.append("        columns:")
            for column in table.columns:
                lines += [
                    f"          - name: {column.name}",
                    f"            data_type: {column.data_type}",
                    *_scalar("description", column.description, 12),
                ]
    return "\n".join(lines) + "\n"


def write_sources_yaml(path: Path = SOURCES_YAML_PATH) -> bool:
    """Rewrite dbt's sources file from the contract; True when it changed."""
    text = render_sources_yaml()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":
    changed = write_sources_yaml()
    print(f"{SOURCES_YAML_PATH}: {'rewritten' if changed else 'already up to date'}")
    sys.exit(0)
