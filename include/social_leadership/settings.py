"""Every path and endpoint the pipeline uses, read from ``SLW_*`` environment variables.

Defaults live under the repository's git-ignored ``data/`` folder, so a fresh clone runs
without any configuration. :class:`Settings` is a typed model (pydantic): a value that is
not allowed (``SLW_GAP_FILL_DAYS=-5``, ``SLW_LATE_DATA_DAYS=abc``, a folder setting naming
a file) stops :func:`load_settings` with a :class:`SettingsError` naming each such
variable, its value and what is allowed. README lists every variable; ``slw settings``
prints the values in force.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import annotated_types
from pydantic import AfterValidator, Field, ValidationError
from pydantic.dataclasses import dataclass

ENV_PREFIX = "SLW_"

# The survey pseudonyms' HMAC key, a secret: read from the environment where it is used
# (surveys/pseudonym.py), never held in the settings nor printed; ``slw settings`` checks it.
PSEUDONYM_KEY_ENV = ENV_PREFIX + "PSEUDONYM_KEY"
MIN_PSEUDONYM_KEY_CHARS = 16

# Nothing phones home: Airflow's usage data (Scarf), dbt's anonymous stats and version
# check, Great Expectations' analytics. Set for every process the pipeline starts.
NO_TELEMETRY_ENV: dict[str, str] = {
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "GX_ANALYTICS_ENABLED": "false",
}

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
BUNDLED_DATA_DIR = PACKAGE_DIR.parent / "data"
# Days a missing observation is carried forward unless SLW_GAP_FILL_DAYS says otherwise.
DEFAULT_GAP_FILL_DAYS = 7
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


# Survey intake limits (surveys/limits.py). A gigabyte holds any survey export seen; the
# csv module's own field limit has always been the cell limit; an XLSX archive's parts are
# parsed in memory (its shared strings whole), so it gets a far smaller budget than a CSV.
DEFAULT_SURVEY_MAX_FILE_BYTES = 1 << 30
DEFAULT_SURVEY_MAX_CELL_CHARS = 131_072
DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES = 64 << 20
# A table of published figures is a row per country, question, wave and measure: tens of
# thousands of rows, a few megabytes; it is read into memory whole (about 25 times its size
# at its peak: 60 MB took 1.4 GB), so a file of hundreds of megabytes is respondent data
# without its sidecar.
DEFAULT_SURVEY_MAX_PUBLISHED_BYTES = 64 << 20


def _not_an_existing_file(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise ValueError("it names an existing file")
    return path


def _not_an_existing_folder(path: Path) -> Path:
    if path.is_dir():
        raise ValueError("it names an existing folder")
    return path


# The kinds of setting, each with what it allows (said in a refusal). A folder need not
# exist yet (the pipeline creates it), but must not be a file, and the other way round.
FolderPath = Annotated[Path, AfterValidator(_not_an_existing_file)]
FilePath = Annotated[Path, AfterValidator(_not_an_existing_folder)]
# A count that may be 0 (no gap filling, no late-data margin) ...
# At most ten years: a larger span is no setting, and made a date out of range later.
Days = Annotated[int, Field(ge=0, le=3650)]
# ... and sizes, row counts and durations, where 0 would stop the pipeline; at most what a
# 64-bit count holds (a larger one was taken, then failed every task that passed it on).
Positive = Annotated[int, Field(ge=1, le=2**63 - 1)]
# DuckDB's threads setting: more than a 32-bit count is refused by DuckDB.
Threads = Annotated[int, Field(ge=1, le=2**31 - 1)]
Port = Annotated[int, Field(ge=1, le=65535)]
# Durations the DAGs are built with: larger ones broke the DAG's import (a timedelta out of
# range), and the DAG was then said to be unknown.
DeadlineHours = Annotated[int, Field(ge=1, le=720)]
PlatformWaitSeconds = Annotated[int, Field(ge=0, le=3_600)]
RetryDelaySeconds = Annotated[int, Field(ge=1, le=86_400)]
TaskTimeoutSeconds = Annotated[int, Field(ge=1, le=604_800)]
RetentionMinutes = Annotated[int, Field(ge=1, le=525_600)]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]
SettleSeconds = Annotated[int, Field(ge=0, le=86_400)]


def _email_list(text: str) -> str:
    addresses = _addresses(text)
    for address in addresses:
        local, at, domain = address.partition("@")
        bad = set('<>"') | {c for c in address if c.isspace()}
        if not (local and at and domain) or bad & set(address) or "@" in domain:
            raise ValueError(f"{address!r} is not an e-mail address")
    if text.strip() and not addresses:
        raise ValueError("it holds no address: unset it, or leave it empty, for none")
    return text


# E-mail addresses separated by commas, or by semicolons as Outlook lists them (kept as text
# so that as_env passes it on unchanged).
EmailList = Annotated[str, AfterValidator(_email_list)]


FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def _font_paths(text: str) -> tuple[Path, ...]:
    """The font files of a list separated by ``os.pathsep`` (``:``), as PATH is."""
    return tuple(_absolute(part.strip()) for part in text.split(os.pathsep) if part.strip())


def _font_files(text: str) -> str:
    # Not whether each exists: the settings load for every DAG and command, which a font
    # gone (an image rebuilt without it) must not stop; the report skips it, saying so.
    for path in _font_paths(text):
        if path.suffix.lower() not in FONT_SUFFIXES:
            raise ValueError(f"{path} is not a TrueType or OpenType font (.ttf, .otf, .ttc)")
    return text


# Font files separated by os.pathsep, kept as text so that as_env passes it on unchanged.
FontFiles = Annotated[str, AfterValidator(_font_files)]


def _addresses(text: str) -> tuple[str, ...]:
    """The addresses of an e-mail list, each once (in any case: the server got a twice
    listed one twice, and a recipient two mails); an address written in angle brackets,
    with a name or without (``Carol <carol@example.org>``, as a mail client copies it),
    is the address in them."""
    first: dict[str, str] = {}
    for part in filter(None, (part.strip() for part in re.split(r"[,;]", text))):
        bracketed = _NAME_AND_ADDRESS.fullmatch(part)
        address = bracketed[1].strip() if bracketed else part
        first.setdefault(address.casefold(), address)
    return tuple(first.values())


# A name (or none) and an address in angle brackets: "Carol <carol@example.org>".
_NAME_AND_ADDRESS = re.compile(r"[^<>]*<([^<>]*)>")


def _cron(text: str) -> str:
    from datetime import UTC, datetime

    from croniter import CroniterBadDateError, croniter

    # croniter also takes a sixth field, of seconds: a Quartz habit ("0 0 6 * * 1", 06:00 on
    # Mondays) read as midnight on the 6th and on Mondays.
    fields = len(text.split())
    if not croniter.is_valid(text) or not (fields == 5 or (fields == 1 and text[:1] == "@")):
        raise ValueError("a cron expression (five fields, e.g. 0 6 * * 1)")
    try:
        # A day that never comes (30 February, 31 April) passes the form: the DAG would
        # wait for ever, its report never written.
        croniter(text, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(
            "a cron expression that fires: this one names a day no month has"
        ) from None
    return text


CronExpression = Annotated[str, AfterValidator(_cron)]

# DuckDB's own memory syntax, kept as text (as_env and the dbt profile pass it on as is).
# As DuckDB's memory_limit takes it: 2GB, 2G, 1.5GiB, 512 MB, 2 gigabytes.
_MEMORY_SIZE = re.compile(
    r"\s*(?P<number>[0-9]+(\.[0-9]+)?)\s*"
    r"(?:(?P<unit>[KMGT])(?:(?P<binary>i)B|B)?|(?P<word>kilo|mega|giga|tera)bytes?)\s*",
    re.IGNORECASE,
)


def _memory_size(text: str) -> str:
    matched = _MEMORY_SIZE.fullmatch(text)
    if matched is None or float(matched["number"]) <= 0:
        raise ValueError(
            "a memory size (a positive number and a unit of KB, MB, GB, TB or KiB, MiB, GiB, "
            "TiB, e.g. 2GB; also as DuckDB takes it: 2G, 2 gigabytes)"
        )
    base = 1024 if matched["binary"] else 1000
    power = "KMGT".index((matched["unit"] or matched["word"][:1]).upper()) + 1
    # DuckDB refuses a limit of 2^63 bytes or more ("Memory value out of range").
    if float(matched["number"]) * base**power >= 2**63:
        raise ValueError("a memory size below 8 EiB (DuckDB refuses a larger one)")
    return text


MemorySize = Annotated[str, AfterValidator(_memory_size)]

# The working warehouse's backends (warehouse_backend.py).
WAREHOUSE_BACKENDS = ("duckdb", "ducklake")
_CATALOG_KINDS = ("postgres:", "sqlite:", "duckdb:")


def _warehouse_backend(text: str) -> str:
    if text not in WAREHOUSE_BACKENDS:
        raise ValueError(f"one of {', '.join(WAREHOUSE_BACKENDS)}")
    return text


# A password in the catalog would travel into dbt's environment, logs and error messages:
# as libpq's key=value (quoted with spaces, or not), a URI's query parameter, or the
# user:password@ of a URI (postgresql://slw:secret@db/slw_lake).
_CATALOG_PASSWORD = re.compile(
    r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]+)|(://[^/@\s:]*:)([^/@\s]*)(@)",
    re.IGNORECASE,
)


def _ducklake_catalog(text: str) -> str:
    if not text.startswith(_CATALOG_KINDS):
        raise ValueError(
            "a DuckLake catalog: postgres:<libpq connection string>, sqlite:<file> or duckdb:<file>"
        )
    if not text.partition(":")[2].strip():
        # DuckLake read "sqlite:" as a catalog "sqlite:" that does not exist.
        raise ValueError(
            "a DuckLake catalog with its file or connection string after the colon "
            "(sqlite:<file>, duckdb:<file>, postgres:dbname=...)"
        )
    if _CATALOG_PASSWORD.search(text):
        raise ValueError(
            "a catalog without a password (PostgreSQL's comes from PGPASSWORD, a service "
            "file or .pgpass)"
        )
    return text


def redact_catalog(text: str) -> str:
    """``text`` with any password in it (``password=...``, a URI's ``user:...@``) replaced
    by ``***`` (for messages)."""

    def hidden(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f"{match.group(1)}***"
        return f"{match.group(3)}***{match.group(5)}"

    return _CATALOG_PASSWORD.sub(hidden, text)


WarehouseBackend = Annotated[str, AfterValidator(_warehouse_backend)]
DuckLakeCatalog = Annotated[str, AfterValidator(_ducklake_catalog)]


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`; never hard-code a path elsewhere.

    Validated on construction, also by ``dataclasses.replace``.
    """

    data_dir: FolderPath
    warehouse_path: FilePath
    serving_path: FilePath
    serving_parquet_dir: FolderPath
    serving_lake_path: FilePath
    serving_lake_data_dir: FolderPath
    landing_dir: FolderPath
    quarantine_dir: FolderPath
    reports_dir: FolderPath
    logs_dir: FolderPath
    docs_dir: FolderPath
    roster_path: FilePath
    survey_dir: FolderPath
    dbt_project_dir: FolderPath
    dbt_profiles_dir: FolderPath
    dbt_target_dir: FolderPath
    gap_fill_days: Days
    late_data_days: Days
    pseudonym_key_file: FilePath
    # DuckLake's catalog and data path: text, as a PostgreSQL catalog and an s3:// data
    # path are not local paths (used only with warehouse_backend ducklake).
    ducklake_catalog: DuckLakeCatalog
    ducklake_data_path: str
    warehouse_backend: WarehouseBackend = "duckdb"
    quality_slice_rows: Positive = 500_000
    quality_full_every_days: Days = 7
    serving_parquet_retention_minutes: RetentionMinutes = 60
    # SLW_SERVING_FILE_SPARE: keep the replaced single file to update in place next time.
    serving_file_spare: bool = True
    serving_snapshot_retention_days: RetentionDays = 30
    # SLW_INTAKE_SETTLE_SECONDS: a dropped file modified more recently may still be being
    # written, and is left for the next run (the roster is waited for).
    intake_settle_seconds: SettleSeconds = 30
    survey_max_file_bytes: Positive = DEFAULT_SURVEY_MAX_FILE_BYTES
    survey_max_cell_chars: Positive = DEFAULT_SURVEY_MAX_CELL_CHARS
    survey_max_xlsx_uncompressed_bytes: Positive = DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES
    survey_max_published_bytes: Positive = DEFAULT_SURVEY_MAX_PUBLISHED_BYTES
    docs_port: Port = 8081
    # SLW_DEMO: whether the demo adds its synthetic inputs (social_leadership.demo_hook).
    demo: bool = False
    alert_emails: EmailList = ""
    platform_metrics_deadline_hours: DeadlineHours = 6
    platform_max_wait_seconds: PlatformWaitSeconds = 60
    stale_platform_days: RetentionDays = 3
    task_retry_delay_seconds: RetryDelaySeconds = 30
    # Past any full build measured (README, Sizing): a hung task fails and alerts instead.
    task_timeout_seconds: TaskTimeoutSeconds = 21_600
    report_emails: EmailList = ""
    report_schedule: CronExpression = "0 6 * * 1"
    report_min_executives: Positive = 5
    report_movers: Positive = 5
    # SLW_REPORT_FONTS: fonts for what DejaVu Sans lacks (a leader's name in Chinese,
    # Japanese or Korean), tried in order, then those fontconfig finds.
    report_fonts: FontFiles = ""
    # Sized for a 4 GiB worker: DuckDB's own default is 80% of the machine's memory, and
    # the task's Python objects (GX's frames, dbt's manifest) need the rest.
    duckdb_memory_limit: MemorySize = "2GB"
    duckdb_threads: Threads = 2
    # SLW_DEBUG: slw shows the traceback of an error instead of its short message.
    debug: bool = False
    # SLW_DBT_WARM_START: fork each dbt command from a helper that imported dbt once.
    dbt_warm_start: bool = True

    @property
    def alert_recipients(self) -> tuple[str, ...]:
        """``SLW_ALERT_EMAILS`` as a list of addresses (empty: no e-mail alerts)."""
        return _addresses(self.alert_emails)

    @property
    def report_recipients(self) -> tuple[str, ...]:
        """``SLW_REPORT_EMAILS`` as a list of addresses (empty: the report is not mailed)."""
        return _addresses(self.report_emails)

    @property
    def report_font_files(self) -> tuple[Path, ...]:
        """``SLW_REPORT_FONTS`` as a list of font files (tried before fontconfig's)."""
        return _font_paths(self.report_fonts)

    @property
    def undelivered_alerts_path(self) -> Path:
        """Alerts a channel could not deliver, one JSON object a line (alerts.py, README
        Alerts): ``slw summary`` shows the newest."""
        return self.data_dir / "alerts" / "undelivered.jsonl"

    @property
    def duckdb_temp_dir(self) -> Path:
        """Where DuckDB spills what does not fit in ``SLW_DUCKDB_MEMORY_LIMIT``: one folder
        per process below it (duckdb_limits.py); dbt_project/profiles.yml names it too."""
        return self.data_dir / "tmp" / "duckdb"

    def ensure_dirs(self) -> None:
        """Create every folder the pipeline writes to (idempotent)."""
        for directory in (
            self.data_dir,
            self.warehouse_path.parent,
            self.serving_path.parent,
            self.serving_parquet_dir,
            self.serving_lake_path.parent,
            self.serving_lake_data_dir,
            self.landing_dir,
            self.quarantine_dir,
            self.reports_dir,
            self.logs_dir,
            self.docs_dir,
            self.dbt_target_dir,
            self.survey_dir,
            self.duckdb_temp_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)

    def as_env(self) -> dict[str, str]:
        """The settings as ``SLW_*`` variables, for subprocesses such as dbt (a switch as
        ``1`` or ``0``, as README writes it)."""
        return {
            env_variable(field.name): _env_value(getattr(self, field.name))
            for field in fields(self)
        }


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


# SLW_* variables that are no settings: what warehouse_build passes to each dbt command
# (dbt_runner.py), which a command started from a task's environment also sees.
_NO_SETTINGS = ("SLW_DBT_WAREHOUSE_PATH", "SLW_DBT_TEMP_DIRECTORY", "SLW_DBT_REBUILD_WINDOWS")


def misspelled_settings(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``SLW_*`` variables of ``environ`` that are no setting but close to one (a typo, such
    as ``SLW_GAPFILL_DAYS``), each with the setting it is likely meant as: ignored, they
    leave the setting at its default, unsaid. Variables close to none are not named (the
    tests', the sandbox's and dbt's own ``SLW_*`` variables)."""
    names = [env_variable(field.name) for field in fields(Settings)] + [PSEUDONYM_KEY_ENV]
    found = []
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or variable in names + list(_NO_SETTINGS):
            continue
        meant = _meant_setting(upper, names)
        if meant:
            found.append((variable, meant))
    return found


# A file's or a folder's setting named with another of these words: SLW_ROSTER_FILE.
_PLACE_WORDS = frozenset({"PATH", "FILE", "DIR", "DIRECTORY", "FOLDER"})


def _meant_setting(variable: str, names: list[str]) -> str | None:
    """The setting an upper-case ``SLW_*`` variable that is none likely means: the same in
    other capitals (``slw_gap_fill_days``), its name with the last word left out
    (``SLW_ROSTER``) or another word for a place (``SLW_ROSTER_FILE``), or a letter or two
    off (``SLW_GAPFILL_DAYS``); None when it is close to none."""
    if variable in names:
        return variable
    words = variable.split("_")
    for name in names:
        setting = name.split("_")
        if len(words) >= 2 and setting[: len(words)] == words and len(setting) == len(words) + 1:
            return name
        if (
            len(setting) == len(words) > 2
            and setting[:-1] == words[:-1]
            and {setting[-1], words[-1]} <= _PLACE_WORDS
        ):
            return name
    close = difflib.get_close_matches(variable, names, n=1, cutoff=0.85)
    return close[0] if close else None


def env_variable(field_name: str) -> str:
    """The environment variable of a :class:`Settings` field: ``gap_fill_days`` ->
    ``SLW_GAP_FILL_DAYS``."""
    return ENV_PREFIX + field_name.upper()


class SettingsError(ValueError):
    """One or more ``SLW_*`` variables hold a value that is not allowed."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.variables = tuple(variable for variable, _, _ in problems)
        # (variable, value, what is allowed): for one line each (slw's error message).
        self.problems = tuple(problems)
        listing = "\n".join(f"  {said}" for said in self.each_said)
        super().__init__(f"{len(problems)} setting(s) not allowed:\n{listing}")

    @property
    def each_said(self) -> list[str]:
        """Each problem as one line: ``SLW_X='v': not allowed, must be ...``."""
        return [
            f"{variable}={value!r}: not allowed, must be {allowed}"
            for variable, value, allowed in self.problems
        ]


def _allowed(field_name: str, message: str) -> str:
    """What a field allows, in words, from its declared type and bounds."""
    info = Settings.__pydantic_fields__[field_name]
    checks = {getattr(item, "func", None) for item in info.metadata}
    if _not_an_existing_file in checks:
        return f"a folder ({message.removeprefix('Value error, ')})"
    if _not_an_existing_folder in checks:
        return f"a file ({message.removeprefix('Value error, ')})"
    if _email_list in checks:
        return f"e-mail addresses separated by , or ; ({message.removeprefix('Value error, ')})"
    if _font_files in checks:
        return f"font files separated by {os.pathsep} ({message.removeprefix('Value error, ')})"
    if checks & {_cron, _memory_size, _warehouse_backend, _ducklake_catalog}:
        return message.removeprefix("Value error, ")
    if info.annotation is bool:
        return "true or false (also 1/0, yes/no, on/off)"
    if info.annotation is not int:
        return message
    minimum = [item.ge for item in info.metadata if isinstance(item, annotated_types.Ge)]
    maximum = [item.le for item in info.metadata if isinstance(item, annotated_types.Le)]
    if minimum and maximum and maximum[0] >= 2**31 - 1:
        # A bound no one meets but by mistake: the lower one first.
        return f"a whole number of at least {minimum[0]} and at most {maximum[0]}"
    if minimum and maximum:
        return f"a whole number from {minimum[0]} to {maximum[0]}"
    return "a whole number" + (f" of at least {minimum[0]}" if minimum else "")


SETTING_DOCS: dict[str, str] = {
    "DATA_DIR": "root of everything the pipeline writes (default: <repo>/data)",
    "WAREHOUSE_PATH": "working DuckDB file, written only by the pipeline",
    "WAREHOUSE_BACKEND": (
        "where the working warehouse lives: duckdb (default, the file SLW_WAREHOUSE_PATH, one "
        "writer at a time) or ducklake (catalog SLW_DUCKLAKE_CATALOG, Parquet files in "
        "SLW_DUCKLAKE_DATA_PATH; several writers, e.g. platform loads on several workers)"
    ),
    "DUCKLAKE_CATALOG": (
        "DuckLake catalog of the working warehouse (backend ducklake): postgres:<libpq "
        "connection string, e.g. dbname=slw_lake host=db user=slw; password from PGPASSWORD, "
        "never here>, sqlite:<file> or duckdb:<file> (default sqlite:<data>/warehouse/lake/"
        "catalog.sqlite)"
    ),
    "DUCKLAKE_DATA_PATH": (
        "where the DuckLake working warehouse keeps its Parquet files: a folder all workers "
        "share, or s3://bucket/prefix/ (credentials from the AWS variables; default "
        "<data>/warehouse/lake/files/)"
    ),
    "SERVING_PATH": (
        "published single-file DuckDB copy for BI clients that cannot load extensions "
        "(keys, comments; storage version v1.1.0; reconnect to see a new publication)"
    ),
    "SERVING_LAKE_PATH": (
        "DuckLake catalog (SQLite, WAL mode) of the published marts: pooled readers see each "
        "publication on their next transaction (default <data>/serving/lake/serving.sqlite)"
    ),
    "SERVING_LAKE_DATA_DIR": (
        "Parquet data files of the DuckLake serving catalog (default <data>/serving/lake/files)"
    ),
    "SERVING_SNAPSHOT_RETENTION_DAYS": (
        "days a replaced DuckLake snapshot stays readable for time travel (1 to 3650, default 30)"
    ),
    "SERVING_PARQUET_DIR": (
        "published Parquet export of the marts: one folder per publication, the current one "
        "named by the symlink current and the file CURRENT"
    ),
    "SERVING_PARQUET_RETENTION_MINUTES": (
        "minutes a replaced Parquet set is kept for readers still reading it (1 to 525600, "
        "default 60)"
    ),
    "SERVING_FILE_SPARE": (
        "keep the replaced single-file copy beside it (.<name>.spare) for the next publish to "
        "update in place instead of copying the current one (1/0, default on; costs the "
        "file's size again in disk)"
    ),
    "LANDING_DIR": "raw API responses, immutable, platform=<p>/date=<d>/",
    "QUARANTINE_DIR": "rejected input files with their error reports",
    "REPORTS_DIR": "rendered reports",
    "LOGS_DIR": "dbt and pipeline logs",
    "DOCS_DIR": (
        "generated docs of the last publish: current/dbt/index.html (dbt docs with catalog) "
        "and current/gx/index.html (GX Data Docs); default <data>/docs"
    ),
    "DOCS_PORT": "port `make docs` serves the docs on, on 127.0.0.1 only (default 8081)",
    "ROSTER_PATH": "executive roster CSV (default: the bundled synthetic demo roster)",
    "SURVEY_DIR": "landing folder watched for survey files (default: <data>/landing/surveys)",
    "INTAKE_SETTLE_SECONDS": (
        "seconds a survey file or history file dropped into its landing folder must go "
        "unmodified before it is read: one modified more recently may still be being written "
        "and is left for the next run; a roster changed that recently is watched up to 30 s "
        "before it is read (0 to 86400, default 30; 0: read every file at once)"
    ),
    "SURVEY_MAX_FILE_BYTES": (
        "largest survey file read, and largest a .csv.gz may expand to; a larger one is "
        f"quarantined (default {DEFAULT_SURVEY_MAX_FILE_BYTES}, 1 GiB)"
    ),
    "SURVEY_MAX_CELL_CHARS": (
        "longest survey cell read as text, in characters; a file with a longer one is "
        f"quarantined (default {DEFAULT_SURVEY_MAX_CELL_CHARS})"
    ),
    "SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES": (
        "largest an XLSX survey file may expand to, all its parts together; a larger one is "
        f"quarantined before it is parsed (default {DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES}"
        ", 64 MiB)"
    ),
    "SURVEY_MAX_PUBLISHED_BYTES": (
        "largest survey file read as a table of published figures (a .csv.gz as it expands); "
        "a larger one is quarantined after its header is read: respondent data needs its "
        f"sidecar (default {DEFAULT_SURVEY_MAX_PUBLISHED_BYTES}, 64 MiB)"
    ),
    "DBT_PROJECT_DIR": "dbt project folder",
    "DBT_PROFILES_DIR": "folder holding profiles.yml",
    "DBT_TARGET_DIR": "dbt target/ folder (artifacts)",
    "GAP_FILL_DAYS": "days a missing observation is carried forward (0 to 3650, default 7)",
    "LATE_DATA_DAYS": (
        "days beyond the gap-fill window a daily build recomputes (0 to 3650, default 3)"
    ),
    "QUALITY_SLICE_ROWS": (
        "rows of a daily fact the quality gate holds in memory at once (default 500000)"
    ),
    "QUALITY_FULL_EVERY_DAYS": (
        "days after which the quality gate validates the daily facts whole again; between "
        "those it validates only the days the builds since the last passing gate rebuilt "
        "(default 7; 0: always whole; at most 3650)"
    ),
    # The key itself (SLW_PSEUDONYM_KEY) is a secret and is never printed: only its file.
    "PSEUDONYM_KEY_FILE": (
        "key for pseudonymising survey respondent ids (keyed SipHash-2-4), used when "
        "SLW_PSEUDONYM_KEY is unset; created once with mode 0600 (default: "
        "<data>/secrets/pseudonym.key)"
    ),
    "ALERT_EMAILS": (
        "addresses (separated by , or ;) that receive alert e-mails through the "
        "connection slw_smtp (default: none, no e-mail)"
    ),
    "PLATFORM_METRICS_DEADLINE_HOURS": (
        "hours after its logical date by which a platform_metrics run must have succeeded, "
        "else a deadline alert is sent (1 to 720, default 6)"
    ),
    "PLATFORM_MAX_WAIT_SECONDS": (
        "the longest a platform's extract waits for its rate limit's reset; a reset further "
        "off leaves the platform's accounts deferred, their day's counts missing (0 to "
        "3600, default 60)"
    ),
    "STALE_PLATFORM_DAYS": (
        "days a platform's newest day with counts may lag behind before it is alerted as "
        "stale, once a day (1 to 3650, default 3)"
    ),
    "TASK_RETRY_DELAY_SECONDS": (
        "first delay before Airflow retries a failed task, doubling per try up to 10 "
        "minutes (1 to 86400, default 30)"
    ),
    "TASK_TIMEOUT_SECONDS": (
        "seconds a try of any task may run before Airflow stops it and fails the try (then "
        "retried, and alerted when the last try fails): a hung task never holds its DAG "
        "for ever (1 to 604800, default 21600: 6 hours)"
    ),
    "REPORT_EMAILS": (
        "addresses (separated by , or ;) that receive the weekly report (HTML body, PDF "
        "attached) through the connection slw_smtp (default: none, the report is only written)"
    ),
    "REPORT_SCHEDULE": (
        "cron expression (UTC) of the weekly_report DAG; each run reports the seven days "
        "before it (default 0 6 * * 1, Monday 06:00)"
    ),
    "REPORT_MIN_EXECUTIVES": (
        "tracked leaders a country needs to appear in the weekly report; DE and US always "
        "appear (default 5)"
    ),
    "REPORT_MOVERS": (
        "leaders and companies listed per platform and window among the weekly report's "
        "movers, for the largest gains and again for the largest losses (default 5)"
    ),
    "REPORT_FONTS": (
        "font files (.ttf, .otf, .ttc; separated by :) the report's PDF draws the characters "
        "DejaVu Sans lacks with, such as names in Chinese, Japanese or Korean, before the "
        "fonts fontconfig finds for them (default: those alone); one not there is skipped"
    ),
    "DUCKDB_MEMORY_LIMIT": (
        "memory DuckDB may use in each process of the pipeline (dbt, quality gate, publish, "
        "loaders, reports), in DuckDB's syntax; beyond it, DuckDB spills to "
        "<data>/tmp/duckdb (default 2GB, for a 4 GiB worker)"
    ),
    "DUCKDB_THREADS": "threads DuckDB uses in each process of the pipeline (default 2)",
    "DEMO": (
        "demo mode (1/0, default off): survey_ingest also loads the synthetic survey "
        "microdata and platform_metrics seeds two years of synthetic history into a "
        "warehouse without imported history; `slw run` turns it on, never set it for real data"
    ),
    "DEBUG": (
        "slw prints the full traceback of an error instead of its one- or two-line message "
        "(1/0, default off; the same as slw --debug)"
    ),
    "DBT_WARM_START": (
        "each dbt command is a process forked from a helper that imported dbt once, so a "
        "process's later dbt commands skip dbt's 1.5 s start (1/0, default on; off starts "
        "each command as a new dbt process)"
    ),
}


# The variables read as unset (settings_or_defaults): those whose value is not allowed.
_READ_AS_UNSET: ContextVar[frozenset[str]] = ContextVar("slw_read_as_unset", default=frozenset())


def _from_env(field_name: str) -> str | None:
    """The variable's text without white space at either end, or None when it is unset,
    empty or only white space (the default applies): ``SLW_REPORTS_DIR= `` in an env file
    once wrote the reports to a folder named " " in the working directory."""
    variable = env_variable(field_name)
    if variable in _READ_AS_UNSET.get():
        return None
    return (os.environ.get(variable) or "").strip() or None


# The settings whose default lies in the data folder, each with its default there: set in
# the environment, one of them stops following SLW_DATA_DIR. Two pipelines on two data
# folders (the benchmarks' warehouses, side by side) must leave them unset.
_DATA_DIR_DEFAULTS: dict[str, Callable[[Path], Path | str]] = {
    "warehouse_path": lambda data: data / "warehouse" / "warehouse.duckdb",
    "serving_path": lambda data: data / "serving" / "serving.duckdb",
    "serving_parquet_dir": lambda data: data / "serving" / "parquet",
    "serving_lake_path": lambda data: data / "serving" / "lake" / "serving.sqlite",
    "serving_lake_data_dir": lambda data: data / "serving" / "lake" / "files",
    "landing_dir": lambda data: data / "landing",
    "quarantine_dir": lambda data: data / "quarantine",
    "reports_dir": lambda data: data / "reports",
    "logs_dir": lambda data: data / "logs",
    "docs_dir": lambda data: data / "docs",
    "survey_dir": lambda data: data / "landing" / "surveys",
    "dbt_target_dir": lambda data: data / "dbt" / "target",
    "pseudonym_key_file": lambda data: data / "secrets" / "pseudonym.key",
    # Not paths: a catalog's connection text and a folder as DuckLake writes it.
    "ducklake_catalog": lambda data: f"sqlite:{data / 'warehouse' / 'lake' / 'catalog.sqlite'}",
    "ducklake_data_path": lambda data: f"{data / 'warehouse' / 'lake' / 'files'}/",
}
DATA_DIR_SETTINGS = tuple(_DATA_DIR_DEFAULTS)


def default_in(data_dir: Path, field_name: str) -> Path | str:
    """The default of the setting ``field_name`` for the data folder ``data_dir``."""
    return _DATA_DIR_DEFAULTS[field_name](data_dir)


def _path(field_name: str, default: Path) -> Path:
    raw = _from_env(field_name)
    return _absolute(raw) if raw else default


def _absolute(text: str) -> Path:
    """A path as given in a setting: ``~`` expanded, relative to the current directory."""
    return Path(text).expanduser().resolve()


# DuckLake's catalog and data path are text (a connection string, an s3:// URL), not paths:
# a local file among them is made absolute here, as every other path setting is. Left
# relative, the Python tasks resolved it against their working directory and dbt against
# the data folder (its working directory): two lakes, the loads in one and the build
# reading the other ("schema raw does not exist").
_LOCAL_CATALOGS = tuple(kind for kind in _CATALOG_KINDS if kind != "postgres:")


def _absolute_catalog_file(catalog: str) -> str:
    kind = next((kind for kind in _LOCAL_CATALOGS if catalog.startswith(kind)), None)
    if kind is None or not catalog[len(kind) :] or catalog[len(kind) :] == ":memory:":
        return catalog
    return kind + str(_absolute(catalog[len(kind) :]))


def _absolute_local_path(path: str) -> str:
    if "://" in path or not path:
        return path
    absolute = str(_absolute(path))
    return absolute + "/" if path.endswith("/") else absolute


def for_a_run_by_hand(settings: Settings) -> Settings:
    """The settings of a run started by hand (``slw run``, ``slw dags test``): it follows the
    files its user just dropped, so it reads them at once, unless
    ``SLW_INTAKE_SETTLE_SECONDS`` is set (a scheduled run waits for a file being written)."""
    # Set empty (docker-compose.yml passes every setting so) is unset.
    if os.environ.get(env_variable("intake_settle_seconds"), "").strip():
        return settings
    return dataclasses.replace(settings, intake_settle_seconds=0)


def load_settings() -> Settings:
    """Read the environment now (not at import time, so tests can point it elsewhere).

    Raises :class:`SettingsError` naming every variable whose value is not allowed.
    """
    data_dir = _path("data_dir", REPO_ROOT / "data")
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "roster_path": _path("roster_path", BUNDLED_DATA_DIR / "roster" / "executives.csv"),
        "dbt_project_dir": _path("dbt_project_dir", DBT_PROJECT_DIR),
        "dbt_profiles_dir": _path("dbt_profiles_dir", DBT_PROJECT_DIR),
        "gap_fill_days": _from_env("gap_fill_days") or DEFAULT_GAP_FILL_DAYS,
        "late_data_days": _from_env("late_data_days") or 3,
    }
    for name, default_in in _DATA_DIR_DEFAULTS.items():
        default = default_in(data_dir)
        values[name] = (
            _path(name, default) if isinstance(default, Path) else _from_env(name) or default
        )
    values["ducklake_catalog"] = _absolute_catalog_file(values["ducklake_catalog"])
    values["ducklake_data_path"] = _absolute_local_path(values["ducklake_data_path"])
    # The rest take the model's defaults when unset.
    for field in fields(Settings):
        if field.name not in values and (raw := _from_env(field.name)) is not None:
            values[field.name] = raw
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0])
            raw = _from_env(name)
            shown = raw if raw is not None else str(values.get(name))
            if name == "ducklake_catalog":
                shown = redact_catalog(shown)
            problems.append((env_variable(name), shown, _allowed(name, error["msg"])))
        raise SettingsError(problems) from None
    clashes = _file_clashes(settings)
    if clashes:
        raise SettingsError(clashes)
    return settings


def settings_or_defaults() -> tuple[Settings, SettingsError | None]:
    """The settings, and ``None``; or, where some ``SLW_*`` values are not allowed, the
    settings with those read as unset (their defaults), and the error naming them.

    What the DAG files are built with, and what an alert is sent by: a value that is not
    allowed stopped the DAG files' import, which Airflow only lists, so no run, no task to
    fail and no alert followed, day after day. Now each task that reads the settings fails
    at once, naming it (``tasks.task_settings``), and the failure is alerted.
    """
    try:
        return load_settings(), None
    except SettingsError as exc:
        first = exc
    problems = list(first.problems)
    # A value read as unset can make another clash with its default (two files): each
    # round reads those as unset too, and there are only so many.
    while True:
        token = _READ_AS_UNSET.set(frozenset(variable for variable, _, _ in problems))
        try:
            return load_settings(), SettingsError(problems)
        except SettingsError as exc:
            known = {variable for variable, _, _ in problems}
            added = [problem for problem in exc.problems if problem[0] not in known]
            if not added:
                raise first from None
            problems += added
        finally:
            _READ_AS_UNSET.reset(token)


# Files the pipeline writes or reads whole, each its own: the serving copy given the working
# warehouse's path was written over it by the next publish, every raw row lost, the run
# green.
_OWN_FILES = (
    "warehouse_path",
    "serving_path",
    "serving_lake_path",
    "roster_path",
    "pseudonym_key_file",
)


def _file_clashes(settings: Settings) -> list[tuple[str, str, str]]:
    """A problem for each of :data:`_OWN_FILES` that is the file of one named before it."""
    seen: dict[Path, str] = {}
    problems = []
    for name in _OWN_FILES:
        path = Path(getattr(settings, name)).resolve()
        if path in seen:
            other = env_variable(seen[path])
            problems.append((env_variable(name), str(path), f"another file than {other}'s"))
        else:
            seen[path] = name
    return problems
