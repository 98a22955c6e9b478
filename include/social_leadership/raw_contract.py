"""The raw and audit tables: the contract between the Python loaders and dbt, stated once.

Each table is declared here with its columns' names, DuckDB types and descriptions, as a
column table (see :func:`_columns`). Two things are rendered from it: :data:`RAW_DDL`,
which ``warehouse.ensure_schema`` runs, and dbt's ``models/staging/_staging__sources.yml``,
which lists the same columns for the staging models and the docs. After changing a table
here, regenerate the YAML:

    .venv/bin/python -m social_leadership.raw_contract

(tests/include/test_raw_contract.py fails while the committed YAML differs.) Tables keep
their column order: loaders insert by position. A column added to an existing table also
needs a migration in ``warehouse.ensure_schema`` (``create table if not exists`` leaves an
older warehouse's table as it was).
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass, replace
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
    qualified_name: str  # <schema>.<table>
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    # The dbt source (group in the sources YAML) the table belongs to; None: not read by dbt.
    dbt_source: str | None = None
    freshness: Freshness | None = None

    @property
    def schema(self) -> str:
        return self.qualified_name.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.qualified_name.split(".", 1)[1]


@dataclass(frozen=True)
class DbtSource:
    name: str
    description: str


# Columns that several tables share, written in a column table by their name alone.
SHARED_COLUMNS = {
    column.name: column
    for column in (
        Column("loaded_at", "timestamptz", "When the loader wrote the row (UTC)."),
        Column("file_sha256", "varchar", "SHA-256 of the file's content."),
    )
}


def _columns(table: str) -> tuple[Column, ...]:
    """A table's columns from a column table: one column a line, its name, its DuckDB type
    (ending in ``?`` when the column is nullable) and its description; a line indented
    further continues the description above it, and a name alone is that shared column
    (:data:`SHARED_COLUMNS`)."""
    columns: list[Column] = []
    for line in textwrap.dedent(table).strip("\n").splitlines():
        if line[:1].isspace() and columns:
            last = columns.pop()
            columns.append(replace(last, description=f"{last.description} {line.strip()}"))
            continue
        name, _, rest = line.partition(" ")
        data_type, _, description = rest.strip().partition(" ")
        if not rest.strip():
            if name not in SHARED_COLUMNS:
                raise ValueError(f"column {name!r}: no type and no shared column of that name")
            columns.append(SHARED_COLUMNS[name])
        elif not description.strip():
            raise ValueError(f"column {name!r}: no description in {line.strip()!r}")
        else:
            nullable = data_type.endswith("?")
            columns.append(Column(name, data_type.removesuffix("?"), description.strip(), nullable))
    return tuple(columns)


_DAILY = Freshness(warn_after_days=2, error_after_days=4)

DBT_SOURCES: tuple[DbtSource, ...] = (
    DbtSource("roster", "The executive roster, loaded from the roster CSV on every pipeline run."),
    DbtSource(
        "platforms",
        "Daily follower/following/post counts collected from the platform APIs and imports.",
    ),
    DbtSource(
        "history",
        "Follower history imported from files (follower_imports.py): counts the APIs cannot "
        "give, such as past days and LinkedIn members.",
    ),
    DbtSource(
        "surveys",
        "Public-trust survey results (published aggregates and computed shares).",
    ),
)

TABLES: tuple[Table, ...] = (
    Table(
        "raw.roster_executives",
        "One row per executive and declared version as currently listed in the roster (no primary "
        "key: several rows per executive with distinct valid_from declare history).",
        _columns(
            """
            executive_id  varchar  Stable roster identifier of the executive.
            full_name     varchar  Executive's full name.
            title         varchar  Job title as listed in the roster.
            company_name  varchar  Company the executive leads in this version.
            country_code  varchar  ISO 3166-1 alpha-2 code of the company's country.
            sector        varchar  GICS sector name of the company.
            is_synthetic  boolean  True for rows of the synthetic demo roster.
            valid_from    date?    Declared start of this version (title, company, country, sector);
                                   null when the roster declares no history for the executive.
                                   Unique per executive_id.
            roster_file   varchar  Roster file the row was loaded from.
            loaded_at
            """
        ),
        dbt_source="roster",
        freshness=_DAILY,
    ),
    Table(
        "raw.roster_accounts",
        "Social accounts of the executives, one row per platform handle.",
        _columns(
            """
            executive_id    varchar  Executive owning the account.
            platform        varchar  Platform id.
            account_handle  varchar  Handle (or channel/page id) on the platform.
            loaded_at
            """
        ),
        primary_key=("platform", "account_handle"),
        dbt_source="roster",
        freshness=_DAILY,
    ),
    Table(
        "raw.platform_metrics",
        "One row per account observation. An account can be observed more than once per "
        "snapshot_date when API and import sources overlap.",
        _columns(
            """
            platform        varchar      Platform id.
            snapshot_date   date         Calendar day (UTC) the counts describe.
            account_handle  varchar      Handle (or channel/page id) observed.
            account_id      varchar?     Platform's own id for the account, when returned.
            account_status  varchar      ok when counts were returned; otherwise why not (not_found,
                                         private, ...).
            followers       bigint?      Follower (or subscriber) count; null unless ok.
            following       bigint?      Accounts followed, where exposed.
            posts           bigint?      Posts (tweets, videos, ...) published, where exposed.
            observed_at     timestamptz  When the platform was asked (UTC).
            source          varchar      How the row arrived (api, import, sandbox, ...).
            landing_path    varchar?     Landing file holding the raw response, if any.
            loaded_at
            is_synthetic    boolean      True when the platform's reply said its counts are
                                         synthetic (the sandbox API's X-SLW-Synthetic header);
                                         a real platform API never does.
            """
        ),
        dbt_source="platforms",
        freshness=_DAILY,
    ),
    Table(
        "raw.survey_results",
        "One row per survey source x wave x scope x question x measure.",
        _columns(
            """
            source_id               varchar   Short id of the survey source.
            source_name             varchar   Publisher and title of the survey.
            wave                    integer   Survey wave (year of fieldwork).
            scope                   varchar   ISO alpha-2 country code, or global.
            question_id             varchar   Stable id of the question or statement.
            question_text           varchar   Question or statement wording.
            measure                 varchar   What value measures (e.g. share_pct).
            value                   double    The figure: a share in percent for share_pct.
            sample_size             integer?  Respondents behind the value, if published.
            margin_of_error_pct     double?   95% margin of error in percentage points, if
                                              published.
            is_published_aggregate  boolean   True when taken from a publication, false when
                                              computed from microdata.
            citation                varchar   Where the figure was published.
            file_name               varchar   Survey file the row was loaded from.
            file_sha256
            loaded_at
            """
        ),
        dbt_source="surveys",
    ),
    Table(
        "raw.survey_questions",
        "Questions declared by each respondent-microdata file (sidecar): answer scale and the "
        "inclusive range of answers that count as agreeing. One row per source x wave x question.",
        _columns(
            """
            source_id          varchar  Short id of the survey source.
            source_name        varchar  Publisher and title of the survey.
            wave               integer  Survey wave (year of fieldwork).
            question_id        varchar  Stable id of the question.
            question_position  integer  1-based position of the question's answer in
                                        survey_respondent_answers.answers.
            question_text      varchar  Question wording.
            scale_min          integer  Lowest answer on the question's scale.
            scale_max          integer  Highest answer on the question's scale.
            agree_min          integer  Lowest answer that counts as agreeing.
            agree_max          integer  Highest answer that counts as agreeing.
            citation           varchar  Where the survey is documented.
            is_synthetic       boolean  True for generated demo microdata.
            file_name          varchar  Microdata file the question was declared for.
            file_sha256
            loaded_at
            """
        ),
        dbt_source="surveys",
    ),
    Table(
        "raw.survey_respondent_answers",
        "One row per respondent of respondent microdata, answers listed in question_position "
        "order. respondent_key is a keyed 64-bit pseudonym; raw ids and free-text answers are "
        "never loaded.",
        _columns(
            """
            source_id       varchar    Short id of the survey source.
            wave            integer    Survey wave (year of fieldwork).
            country_code    varchar    ISO alpha-2 code of the respondent's country.
            respondent_key  ubigint    Keyed pseudonym of the respondent id (surveys/pseudonym.py),
                                       distinct within the file; the id itself is never stored.
            weight          double     Survey weight of the respondent.
            answers         integer[]  Answers in question_position order; null: not answered or
                                       don't know.
            file_sha256
            loaded_at
            """
        ),
        dbt_source="surveys",
    ),
    Table(
        "raw.history_imports",
        "One row per imported history file, with its row counts.",
        _columns(
            """
            import_id      bigint       Import number (sequence raw.history_import_ids); the newest
                                        import of an account and day wins.
            file_name      varchar      Path of the imported file (one dropped into the
                                        inbox: where it is kept, inbox/imported/).
            rows_read      bigint       Data rows in the file.
            rows_loaded    bigint       Rows loaded (the rest were rejected).
            rows_rejected  bigint       Rows rejected, each named in the quarantine report.
            loaded_at      timestamptz  When the import recorded its rows, just before its
                                        commit (UTC).
            is_synthetic   boolean      True when the file is generated demo history, not counts
                                        anybody observed.
            """
        ),
        dbt_source="history",
        freshness=Freshness(),
    ),
    Table(
        "raw.imported_metrics",
        "One row per account and day of an imported file. A later import of the same (platform, "
        "account, day) replaces the earlier row at load time.",
        _columns(
            """
            import_id       bigint   The import that brought the row.
            platform        varchar  Platform id.
            snapshot_date   date     Calendar day (UTC) the counts describe.
            account_handle  varchar  Handle of the account, in the roster's spelling.
            followers       bigint   Follower (or subscriber) count on that day.
            following       bigint?  Accounts followed, when the file gives it.
            posts           bigint?  Posts published, when the file gives it.
            """
        ),
        dbt_source="history",
    ),
    Table(
        "raw.survey_files",
        "Every survey file ever loaded, by content: the same file dropped again is a no-op even "
        "after a correction replaced its rows; an earlier version sent back under its name "
        "loads again (a row each time).",
        _columns(
            """
            file_sha256
            file_name  varchar  Name the file was loaded under.
            loaded_at
            """
        ),
    ),
    Table(
        "audit.runs",
        "One row per DAG run: its key figures, written by the run's last task (run_summary); "
        "a rerun of the task replaces the row. A row the warehouse could not take then (held, "
        "a full disk) is added by the next run that writes it (kept in "
        "$SLW_DATA_DIR/unrecorded_runs/ until then).",
        _columns(
            """
            dag_id                 varchar      Airflow DAG id.
            run_id                 varchar      Airflow run id.
            outcome                varchar      success, or failed when any task of the run
                                                failed.
            failed_tasks           varchar?     Task ids that failed, comma-separated.
            rows_loaded            bigint?      Rows loaded into raw, all sources together.
            rows_loaded_by_source  varchar?     Rows loaded per source (each API platform,
                                                history_import, surveys), a JSON object.
            accounts_not_found     integer?     Accounts a platform answered are not found
                                                (a handle renamed, deleted or mistyped), in
                                                the loads it kept; a failed load counts none.
            files_quarantined      integer?     Input files moved to quarantine.
            rows_quarantined       bigint?      Input rows rejected into quarantine.
            dbt_passed             integer?     dbt nodes passed.
            dbt_warned             integer?     dbt nodes that warned.
            dbt_failed             integer?     dbt nodes that failed or errored.
            checks_passed          integer?     Quality-gate checks passed.
            checks_failed          integer?     Quality-gate checks failed.
            publication_id         varchar?     The Parquet set published (its folder name).
            recorded_at            timestamptz  When the row was written (UTC).
            serving_publication_id integer?     The publication the run made in the serving
                                                copy: marts.publication.publication_id.
            logical_date           timestamptz? The run's logical date (UTC), or when it was
                                                due for a run without one (an asset-triggered
                                                warehouse_build): slw summary shows each DAG's
                                                newest (null: recorded by an earlier version).
            """
        ),
        primary_key=("dag_id", "run_id"),
    ),
    Table(
        "audit.platform_loads",
        "One row per platform, day and run: what was requested, loaded and missing.",
        _columns(
            """
            platform            varchar      Platform id.
            snapshot_date       date         Day the counts describe.
            run_id              varchar      Airflow run id.
            status              varchar      loaded, failed, skipped_backfill, not_configured or
                                             nothing_landed.
            accounts_requested  integer      Accounts asked for.
            accounts_loaded     integer      Accounts answered with their counts (status ok).
            accounts_missing    integer      Accounts asked for but not ok: not found,
                                             suspended, protected (no counts sent) or
                                             hiding their counts, deferred or in error.
            requests_sent       integer      HTTP requests sent to the platform.
            message             varchar?     Why, when the status is not ok.
            started_at          timestamptz  When the load started (UTC).
            finished_at         timestamptz  When the load finished (UTC).
            """
        ),
    ),
    Table(
        "audit.dbt_build_attempts",
        "Each try of warehouse_build's dbt_build, recorded before dbt changes anything: "
        "publish copies the marts only when the newest try is its own run's and that run's "
        "quality gate checked that try's marts and passed.",
        _columns(
            """
            run_id      varchar      Airflow run id.
            started_at  timestamptz  When the try started (UTC).
            attempt     bigint?      The try's number in this warehouse, one more than the
                                     try before it: which try is newest, whatever the
                                     clocks of the workers that ran them say (null: recorded
                                     by an earlier version).
            """
        ),
    ),
    Table(
        "audit.dbt_builds",
        "Each successful dbt build, incremental or full refresh, and why.",
        _columns(
            """
            run_id        varchar      Airflow run id.
            full_refresh  boolean      True for a --full-refresh build.
            reason        varchar      Why the build was incremental or full.
            started_at    timestamptz  When dbt started (UTC).
            finished_at   timestamptz  When dbt finished (UTC).
            nodes_passed  integer      Nodes dbt reported as passed.
            rebuild_from  date?        First day of raw rows loaded since the previous build
                                       that the build recomputed from (null: the lookback only,
                                       or a full refresh).
            rebuild_windows varchar?   The days of those raw rows, as the windows passed to
                                       dbt: 'first..last' joined by ', ' (null: none).
            gap_fill_days integer?     SLW_GAP_FILL_DAYS the build filled gaps with (null:
                                       not recorded, a build of an earlier version).
            imports_seen  bigint?      The newest history import (raw.history_imports
                                       import_id) committed when the build was planned: the
                                       next build rebuilds the days of every import
                                       numbered above it, whatever the workers' clocks say
                                       and however long an import took to commit (null: a
                                       build of an earlier version, whose successor takes
                                       the imports loaded since it started).
            """
        ),
    ),
    Table(
        "audit.quality_results",
        "Every Great Expectations check of every quality gate run.",
        _columns(
            """
            run_id            varchar      Airflow run id.
            suite_name        varchar      GX suite (marts.<table>).
            table_name        varchar      Mart table checked.
            expectation       varchar      GX expectation type.
            column_name       varchar?     Column(s) checked, comma-separated.
            is_critical       boolean      True when a failure blocks publication.
            success           boolean      True when the check passed.
            unexpected_count  bigint?      Rows that failed the check.
            details           varchar?     Observed value and sample of failures (JSON).
            checked_at        timestamptz  When the gate ran (UTC).
            validated_from    date?        First day of a daily fact validated (the days the
                                           builds since the last passing gate rebuilt);
                                           null: the whole table.
            build_attempt     bigint?      The audit.dbt_build_attempts try whose marts the
                                           gate checked (null: no try recorded yet, or a gate
                                           of an earlier version).
            """
        ),
    ),
    Table(
        "audit.quality_cursor",
        "Where the quality gate stands: one row per run whose gate had no critical failure in "
        "a daily fact (the newest is the gate's place), so a failed gate's days are validated "
        "again by the next, and a rerun of a run validates what its first attempt did.",
        _columns(
            """
            run_id                  varchar       Airflow run id of the gate.
            windows_recorded_until  timestamptz?  Newest audit.incremental_windows record
                                                  the gate covered.
            full_validated_at       timestamptz?  When a gate last validated every daily
                                                  fact whole.
            checked_at              timestamptz   When the gate ran (UTC).
            """
        ),
    ),
    Table(
        "audit.key_fingerprints",
        "Per daily fact and day, the row count and the sum of the primary key's hashes when a "
        "gate last proved the key unique: the next gate reads every day's fingerprint (one "
        "cheap scan) and checks the key exactly only on the days whose fingerprint changed.",
        _columns(
            """
            table_name  varchar  Daily fact (marts schema).
            day         date     Day of the fact's rows.
            row_count   bigint   Rows of that day.
            key_sum     varchar  Sum of hash(primary key) over those rows (a HUGEINT, as text).
            run_id      varchar  Airflow run id of the gate that recorded it.
            """
        ),
    ),
    Table(
        "audit.publications",
        "Each publication of the marts to the serving copy and Parquet.",
        _columns(
            """
            run_id            varchar      Airflow run id.
            serving_path      varchar      Serving DuckDB file written.
            parquet_dir       varchar      Parquet folder of the publication.
            tables_published  integer      Mart tables published.
            published_at      timestamptz  When the publication started (UTC).
            """
        ),
    ),
    Table(
        "audit.source_freshness",
        "dbt source freshness of each raw source table, one row per table per warehouse_build "
        "run (a rerun of the run replaces its rows).",
        _columns(
            """
            run_id          varchar       Airflow run id.
            source_name     varchar       dbt source (group of raw tables).
            table_name      varchar       Raw table checked.
            status          varchar       pass, warn, error or runtime error (dbt's verdict).
            max_loaded_at   timestamptz?  Newest loaded_at in the table (UTC).
            age_seconds     double?       Seconds between max_loaded_at and the check.
            warn_after      varchar?      dbt's warn threshold (count and period).
            error_after     varchar?      dbt's error threshold (count and period).
            checked_at      timestamptz   When dbt checked (UTC).
            """
        ),
    ),
    Table(
        "audit.platform_data_as_of",
        "Per platform and warehouse_build run: the day its newest counts describe (its last "
        "good load), and whether that is older than SLW_STALE_PLATFORM_DAYS.",
        _columns(
            """
            run_id          varchar       Airflow run id.
            platform        varchar       Platform id.
            data_as_of      date?         Newest snapshot_date with counts (account_status ok);
                                          null when none was ever loaded.
            last_loaded_at  timestamptz?  When those newest counts were loaded (UTC).
            days_behind     integer?      Days between data_as_of and the check date.
            is_stale        boolean       True when days_behind exceeds SLW_STALE_PLATFORM_DAYS.
            checked_at      timestamptz   When it was computed (UTC).
            """
        ),
    ),
    Table(
        "audit.stale_platform_alerts",
        "One row per platform and day a staleness alert was raised: one alert a day at most.",
        _columns(
            """
            platform    varchar  Platform id.
            alert_date  date     Day (UTC) the alert was raised.
            run_id      varchar  Airflow run id that raised it.
            """
        ),
        primary_key=("platform", "alert_date"),
    ),
)

# Numbers for raw.history_imports.import_id.
SEQUENCES: tuple[str, ...] = ("raw.history_import_ids",)


def render_ddl(tables: tuple[Table, ...] = TABLES, *, lake: bool = False) -> str:
    """``create ... if not exists`` for every schema, sequence and table (idempotent).

    ``lake``: for a DuckLake, which has neither sequences nor primary keys (the loaders
    replace what they write, so the keys hold there by construction)."""
    schemas = dict.fromkeys(table.schema for table in tables)
    statements = [f"create schema if not exists {schema};" for schema in schemas]
    if not lake:
        statements += [f"create sequence if not exists {name} start 1;" for name in SEQUENCES]
    for table in tables:
        lines = [
            f"    {column.name} {column.data_type}{'' if column.nullable else ' not null'}"
            for column in table.columns
        ]
        if table.primary_key and not lake:
            lines.append(f"    primary key ({', '.join(table.primary_key)})")
        body = ",\n".join(lines)
        statements.append(f"create table if not exists {table.qualified_name} (\n{body}\n);")
    return "\n\n".join(statements) + "\n"


RAW_DDL = render_ddl()
LAKE_DDL = render_ddl(lake=True)


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
