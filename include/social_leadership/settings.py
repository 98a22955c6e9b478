"""Every path and endpoint the pipeline uses, read from ``SLW_*`` environment variables.

Defaults live under the repository's git-ignored ``data/`` folder, so a fresh clone runs
without any configuration. README lists every variable; ``slw settings`` prints the values
in force.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

ENV_PREFIX = "SLW_"

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
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


# Survey intake limits (surveys/limits.py). A gigabyte holds any survey export seen; the
# csv module's own field limit has always been the cell limit; an XLSX archive's parts are
# parsed in memory (its shared strings whole), so it gets a far smaller budget than a CSV.
DEFAULT_SURVEY_MAX_FILE_BYTES = 1 << 30
DEFAULT_SURVEY_MAX_CELL_CHARS = 131_072
DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES = 64 << 20


def _path(name: str, default: Path) -> Path:
    raw = os.environ.get(ENV_PREFIX + name)
    return Path(raw).expanduser().resolve() if raw else default


def _int(name: str, default: int) -> int:
    raw = os.environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name} must be an integer, got {raw!r}") from exc


def _positive_int(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 1:
        raise ValueError(f"{ENV_PREFIX}{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with :func:`load_settings`; never hard-code a path elsewhere."""

    data_dir: Path
    warehouse_path: Path
    serving_path: Path
    serving_parquet_dir: Path
    landing_dir: Path
    quarantine_dir: Path
    reports_dir: Path
    logs_dir: Path
    roster_path: Path
    survey_dir: Path
    dbt_project_dir: Path
    dbt_profiles_dir: Path
    dbt_target_dir: Path
    gap_fill_days: int
    late_data_days: int
    pseudonym_key_file: Path
    quality_slice_rows: int = 500_000
    serving_parquet_retention_minutes: int = 60
    survey_max_file_bytes: int = DEFAULT_SURVEY_MAX_FILE_BYTES
    survey_max_cell_chars: int = DEFAULT_SURVEY_MAX_CELL_CHARS
    survey_max_xlsx_uncompressed_bytes: int = DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES

    def ensure_dirs(self) -> None:
        """Create every folder the pipeline writes to (idempotent)."""
        for directory in (
            self.data_dir,
            self.warehouse_path.parent,
            self.serving_path.parent,
            self.serving_parquet_dir,
            self.landing_dir,
            self.quarantine_dir,
            self.reports_dir,
            self.logs_dir,
            self.dbt_target_dir,
            self.survey_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)

    def as_env(self) -> dict[str, str]:
        """The settings as ``SLW_*`` variables, for subprocesses such as dbt."""
        env = {}
        for field in fields(self):
            env[ENV_PREFIX + field.name.upper()] = str(getattr(self, field.name))
        return env


SETTING_DOCS: dict[str, str] = {
    "DATA_DIR": "root of everything the pipeline writes (default: <repo>/data)",
    "WAREHOUSE_PATH": "working DuckDB file, written only by the pipeline",
    "SERVING_PATH": "published DuckDB copy for BI tools (read-only use)",
    "SERVING_PARQUET_DIR": (
        "published Parquet export of the marts: one folder per publication, the current one "
        "named by the symlink current and the file CURRENT"
    ),
    "SERVING_PARQUET_RETENTION_MINUTES": (
        "minutes a replaced Parquet set is kept for readers still reading it (default 60)"
    ),
    "LANDING_DIR": "raw API responses, immutable, platform=<p>/date=<d>/",
    "QUARANTINE_DIR": "rejected input files with their error reports",
    "REPORTS_DIR": "rendered reports",
    "LOGS_DIR": "dbt and pipeline logs",
    "ROSTER_PATH": "executive roster CSV (default: the bundled synthetic demo roster)",
    "SURVEY_DIR": "landing folder watched for survey files (default: <data>/landing/surveys)",
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
    "DBT_PROJECT_DIR": "dbt project folder",
    "DBT_PROFILES_DIR": "folder holding profiles.yml",
    "DBT_TARGET_DIR": "dbt target/ folder (artifacts)",
    "GAP_FILL_DAYS": "days a missing observation is carried forward (default 7)",
    "LATE_DATA_DAYS": "days beyond the gap-fill window a daily build recomputes (default 3)",
    "QUALITY_SLICE_ROWS": (
        "rows of a daily fact the quality gate holds in memory at once (default 500000)"
    ),
    # The key itself (SLW_PSEUDONYM_KEY) is a secret and is never printed: only its file.
    "PSEUDONYM_KEY_FILE": (
        "key for pseudonymising survey respondent ids (keyed SipHash-2-4), used when "
        "SLW_PSEUDONYM_KEY is unset; created once with mode 0600 (default: "
        "<data>/secrets/pseudonym.key)"
    ),
}


def load_settings() -> Settings:
    """Read the environment now (not at import time, so tests can point it elsewhere)."""
    data_dir = _path("DATA_DIR", REPO_ROOT / "data")
    return Settings(
        data_dir=data_dir,
        warehouse_path=_path("WAREHOUSE_PATH", data_dir / "warehouse" / "warehouse.duckdb"),
        serving_path=_path("SERVING_PATH", data_dir / "serving" / "serving.duckdb"),
        serving_parquet_dir=_path("SERVING_PARQUET_DIR", data_dir / "serving" / "parquet"),
        landing_dir=_path("LANDING_DIR", data_dir / "landing"),
        quarantine_dir=_path("QUARANTINE_DIR", data_dir / "quarantine"),
        reports_dir=_path("REPORTS_DIR", data_dir / "reports"),
        logs_dir=_path("LOGS_DIR", data_dir / "logs"),
        roster_path=_path("ROSTER_PATH", BUNDLED_DATA_DIR / "roster" / "executives.csv"),
        survey_dir=_path("SURVEY_DIR", data_dir / "landing" / "surveys"),
        dbt_project_dir=_path("DBT_PROJECT_DIR", DBT_PROJECT_DIR),
        dbt_profiles_dir=_path("DBT_PROFILES_DIR", DBT_PROJECT_DIR),
        dbt_target_dir=_path("DBT_TARGET_DIR", data_dir / "dbt" / "target"),
        gap_fill_days=_int("GAP_FILL_DAYS", 7),
        late_data_days=_int("LATE_DATA_DAYS", 3),
        pseudonym_key_file=_path("PSEUDONYM_KEY_FILE", data_dir / "secrets" / "pseudonym.key"),
        quality_slice_rows=_positive_int("QUALITY_SLICE_ROWS", 500_000),
        serving_parquet_retention_minutes=_positive_int("SERVING_PARQUET_RETENTION_MINUTES", 60),
        survey_max_file_bytes=_positive_int("SURVEY_MAX_FILE_BYTES", DEFAULT_SURVEY_MAX_FILE_BYTES),
        survey_max_cell_chars=_positive_int("SURVEY_MAX_CELL_CHARS", DEFAULT_SURVEY_MAX_CELL_CHARS),
        survey_max_xlsx_uncompressed_bytes=_positive_int(
            "SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES", DEFAULT_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES
        ),
    )
