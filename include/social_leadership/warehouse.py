"""The working DuckDB warehouse: connections and the raw/audit contract.

DuckDB allows one writer process. Every writer in the DAGs runs in the one-slot pool
``orchestration.WAREHOUSE_POOL``, opens the file with :func:`connect`, and closes it
before the task ends, so dbt (a separate process) can open it afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

# The schema BI tools read (published to the serving copy) and the quality gate checks.
MARTS_SCHEMA = "marts"

# The raw and audit tables: the contract between the Python loaders and dbt's sources.
# Changing a column here means changing dbt_project/models/staging/_staging__sources.yml.
RAW_DDL = """
create schema if not exists raw;
create schema if not exists audit;

create table if not exists raw.roster_executives (
    executive_id varchar not null,
    full_name varchar not null,
    title varchar not null,
    company_name varchar not null,
    country_code varchar not null,
    sector varchar not null,
    is_synthetic boolean not null,
    -- Declared start of this version (title, company, country, sector); null when the
    -- roster declares no history for the executive. Unique per executive_id.
    valid_from date,
    roster_file varchar not null,
    loaded_at timestamptz not null
);

create table if not exists raw.roster_accounts (
    executive_id varchar not null,
    platform varchar not null,
    account_handle varchar not null,
    loaded_at timestamptz not null,
    primary key (platform, account_handle)
);

create table if not exists raw.platform_metrics (
    platform varchar not null,
    snapshot_date date not null,
    account_handle varchar not null,
    account_id varchar,
    account_status varchar not null,
    followers bigint,
    following bigint,
    posts bigint,
    observed_at timestamptz not null,
    source varchar not null,
    landing_path varchar,
    loaded_at timestamptz not null
);

create table if not exists raw.survey_results (
    source_id varchar not null,
    source_name varchar not null,
    wave integer not null,
    scope varchar not null,
    question_id varchar not null,
    question_text varchar not null,
    measure varchar not null,
    value double not null,
    sample_size integer,
    margin_of_error_pct double,
    is_published_aggregate boolean not null,
    citation varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    loaded_at timestamptz not null
);

-- Survey microdata: the questions each file declares (scale and agreeing answers) ...
create table if not exists raw.survey_questions (
    source_id varchar not null,
    source_name varchar not null,
    wave integer not null,
    question_id varchar not null,
    -- 1-based position of the question's answer in survey_respondent_answers.answers
    question_position integer not null,
    question_text varchar not null,
    scale_min integer not null,
    scale_max integer not null,
    agree_min integer not null,
    agree_max integer not null,
    citation varchar not null,
    is_synthetic boolean not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    loaded_at timestamptz not null
);

-- ... and one row per respondent, the answers listed in question_position order (null: not
-- answered or don't know). respondent_key is the keyed pseudonym of the respondent id
-- (surveys/pseudonym.py); the id itself and free-text answers are never stored.
create table if not exists raw.survey_respondent_answers (
    source_id varchar not null,
    wave integer not null,
    country_code varchar not null,
    respondent_key ubigint not null,
    weight double not null,
    answers integer[] not null,
    file_sha256 varchar not null,
    loaded_at timestamptz not null
);

-- Follower history imported from files (history.py): one row per import, and its rows.
create sequence if not exists raw.history_import_ids start 1;

create table if not exists raw.history_imports (
    import_id bigint not null,
    file_name varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    loaded_at timestamptz not null
);

create table if not exists raw.imported_metrics (
    import_id bigint not null,
    platform varchar not null,
    snapshot_date date not null,
    account_handle varchar not null,
    followers bigint not null,
    following bigint,
    posts bigint
);

-- Every survey file ever loaded, by content: the same file dropped again is a no-op even
-- after a correction replaced its rows.
create table if not exists raw.survey_files (
    file_sha256 varchar not null,
    file_name varchar not null,
    loaded_at timestamptz not null
);

create table if not exists audit.platform_loads (
    platform varchar not null,
    snapshot_date date not null,
    run_id varchar not null,
    status varchar not null,
    accounts_requested integer not null,
    accounts_loaded integer not null,
    accounts_missing integer not null,
    requests_sent integer not null,
    message varchar,
    started_at timestamptz not null,
    finished_at timestamptz not null
);

-- The first day each incremental dbt model recomputed in a dbt invocation (null: the
-- whole table), written by the model itself, so a model built from it recomputes at least
-- the same days (macros/incremental_rebuild_from.sql).
create table if not exists audit.incremental_windows (
    invocation_id varchar not null,
    model_name varchar not null,
    rebuild_from date,
    recorded_at timestamptz not null
);

create table if not exists audit.dbt_builds (
    run_id varchar not null,
    full_refresh boolean not null,
    reason varchar not null,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    nodes_passed integer not null
);

create table if not exists audit.quality_results (
    run_id varchar not null,
    suite_name varchar not null,
    table_name varchar not null,
    expectation varchar not null,
    column_name varchar,
    is_critical boolean not null,
    success boolean not null,
    unexpected_count bigint,
    details varchar,
    checked_at timestamptz not null
);

create table if not exists audit.publications (
    run_id varchar not null,
    serving_path varchar not null,
    parquet_dir varchar not null,
    tables_published integer not null,
    published_at timestamptz not null
);
"""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and audit tables if they do not exist, and bring a warehouse made by an
    earlier version up to date (idempotent)."""
    con.execute(RAW_DDL)
    _migrate_respondent_keys(con)


def _migrate_respondent_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses from before 64-bit pseudonyms hold hex HMAC strings: turn each into a
    64-bit hash of itself. Respondents stay distinct within their file (the only use of the
    key; a correction replaces a whole source and wave), and no id is needed or exposed."""
    row = con.execute(
        "select data_type from information_schema.columns where table_schema = 'raw' "
        "and table_name = 'survey_respondent_answers' and column_name = 'respondent_key'"
    ).fetchone()
    if row and row[0] == "VARCHAR":
        con.execute(
            "alter table raw.survey_respondent_answers alter respondent_key "
            "set data type ubigint using hash(respondent_key)"
        )


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, creating its folder and the raw contract on first write."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if not read_only:
            ensure_schema(con)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: a crash or error inside leaves the previous state."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
