"""Settings: one typed model read from ``SLW_*`` variables; a bad value is refused by name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from social_leadership.cli import main
from social_leadership.settings import (
    DATA_DIR_SETTINGS,
    DEFAULT_GAP_FILL_DAYS,
    ENV_PREFIX,
    REPO_ROOT,
    SETTING_DOCS,
    Settings,
    SettingsError,
    load_settings,
    settings_or_defaults,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the variables a test sets: the developer's own SLW_* values stay out."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        # negative where days are counted
        ("SLW_GAP_FILL_DAYS", "-5", "a whole number from 0 to 3650"),
        ("SLW_LATE_DATA_DAYS", "-1", "a whole number from 0 to 3650"),
        # not a whole number
        ("SLW_LATE_DATA_DAYS", "abc", "a whole number from 0 to 3650"),
        ("SLW_GAP_FILL_DAYS", "2.5", "a whole number from 0 to 3650"),
        ("SLW_QUALITY_SLICE_ROWS", "lots", "a whole number of at least 1"),
        # zero where it must be positive
        ("SLW_QUALITY_SLICE_ROWS", "0", "a whole number of at least 1"),
        ("SLW_SERVING_PARQUET_RETENTION_MINUTES", "0", "a whole number from 1 to 525600"),
        ("SLW_SURVEY_MAX_FILE_BYTES", "-1", "a whole number of at least 1"),
        ("SLW_SURVEY_MAX_CELL_CHARS", "0", "a whole number of at least 1"),
        ("SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES", "0", "a whole number of at least 1"),
        # more than the count each is passed on as holds: taken, then every task failed
        ("SLW_SURVEY_MAX_CELL_CHARS", str(2**63), "at most 9223372036854775807"),
        ("SLW_DUCKDB_THREADS", str(2**63), "at most 2147483647"),
        ("SLW_DUCKDB_MEMORY_LIMIT", "99999999TB", "a memory size below 8 EiB"),
        # a port
        ("SLW_DOCS_PORT", "0", "a whole number from 1 to 65535"),
        ("SLW_DOCS_PORT", "70000", "a whole number from 1 to 65535"),
        # durations the DAGs are built with: larger ones broke their import (a timedelta
        # out of range), and the DAG was said to be unknown
        ("SLW_PLATFORM_METRICS_DEADLINE_HOURS", "99999999999", "a whole number from 1 to 720"),
        ("SLW_TASK_RETRY_DELAY_SECONDS", "99999999999999", "a whole number from 1 to 86400"),
        ("SLW_TASK_TIMEOUT_SECONDS", "0", "a whole number from 1 to 604800"),
        ("SLW_LATE_DATA_DAYS", "9999999", "a whole number from 0 to 3650"),
        ("SLW_STALE_PLATFORM_DAYS", "99999999999", "a whole number from 1 to 3650"),
    ],
)
def test_a_bad_number_is_refused_naming_variable_value_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, allowed: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as refused:
        load_settings()

    message = str(refused.value)
    assert f"{variable}={value!r}" in message
    assert allowed in message
    assert refused.value.variables == (variable,)


@pytest.mark.parametrize(
    ("variable", "clashes_with"),
    [
        ("SLW_SERVING_PATH", "SLW_WAREHOUSE_PATH"),
        ("SLW_SERVING_LAKE_PATH", "SLW_SERVING_PATH"),
        ("SLW_PSEUDONYM_KEY_FILE", "SLW_ROSTER_PATH"),
    ],
)
def test_a_file_setting_naming_another_settings_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, clashes_with: str
) -> None:
    # The serving copy given the warehouse's path was written over it by the next publish:
    # every raw row lost, the run green.
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    shared = tmp_path / "shared.duckdb"
    monkeypatch.setenv(clashes_with, str(shared))
    monkeypatch.setenv(variable, str(shared))

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert refused.value.variables == (variable,)
    assert f"another file than {clashes_with}'s" in str(refused.value)


def test_settings_not_allowed_are_read_as_unset_for_the_dags_and_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What the DAG files are built with: a value not allowed stopped their import.
    data = tmp_path / "data"
    monkeypatch.setenv("SLW_DATA_DIR", str(data))
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "abc")
    monkeypatch.setenv("SLW_LATE_DATA_DAYS", "5")
    # Read as unset, the serving path is its default, the file the lake's path names: that
    # second clash is read as unset too.
    monkeypatch.setenv("SLW_SERVING_PATH", str(tmp_path))
    monkeypatch.setenv("SLW_SERVING_LAKE_PATH", str(data / "serving" / "serving.duckdb"))

    settings, error = settings_or_defaults()

    assert error is not None
    assert error.variables == ("SLW_SERVING_PATH", "SLW_GAP_FILL_DAYS", "SLW_SERVING_LAKE_PATH")
    assert "another file than SLW_SERVING_PATH's" in error.each_said[2]
    assert settings.gap_fill_days == DEFAULT_GAP_FILL_DAYS
    assert settings.late_data_days == 5
    assert settings.serving_path == data / "serving" / "serving.duckdb"
    assert settings.serving_lake_path == data / "serving" / "lake" / "serving.sqlite"
    with pytest.raises(SettingsError):
        load_settings()


def test_settings_all_allowed_are_read_as_given_for_the_dags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "9")

    settings, error = settings_or_defaults()

    assert error is None
    assert settings == load_settings()
    assert settings.gap_fill_days == 9


def test_a_folder_setting_naming_a_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    a_file = tmp_path / "not-a-folder.txt"
    a_file.write_text("x", encoding="utf-8")
    monkeypatch.setenv("SLW_LANDING_DIR", str(a_file))

    with pytest.raises(SettingsError, match=r"SLW_LANDING_DIR=.*not-a-folder\.txt") as refused:
        load_settings()

    assert "a folder (it names an existing file)" in str(refused.value)


def test_a_file_setting_naming_a_folder_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLW_WAREHOUSE_PATH", str(tmp_path))

    with pytest.raises(SettingsError, match=r"SLW_WAREHOUSE_PATH=") as refused:
        load_settings()

    assert "a file (it names an existing folder)" in str(refused.value)


def test_every_bad_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "-5")
    monkeypatch.setenv("SLW_QUALITY_SLICE_ROWS", "0")

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert refused.value.variables == ("SLW_GAP_FILL_DAYS", "SLW_QUALITY_SLICE_ROWS")
    assert len(str(refused.value).splitlines()) == 3


def test_a_settings_error_is_still_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # Callers written against the old loader catch ValueError.
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "-5")
    with pytest.raises(ValueError, match="SLW_GAP_FILL_DAYS"):
        load_settings()


def test_good_values_are_typed_and_paths_resolved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "0")
    monkeypatch.setenv("SLW_LATE_DATA_DAYS", " 12 ")
    monkeypatch.setenv("SLW_QUALITY_SLICE_ROWS", "40")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLW_REPORTS_DIR", "relative/reports")

    settings = load_settings()

    assert (settings.gap_fill_days, settings.late_data_days) == (0, 12)
    assert settings.quality_slice_rows == 40
    assert settings.reports_dir == tmp_path / "relative" / "reports"
    assert settings.warehouse_path == tmp_path / "data" / "warehouse" / "warehouse.duckdb"


def test_defaults_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLW_DATA_DIR")
    settings = load_settings()

    data = REPO_ROOT / "data"
    assert settings.data_dir == data
    assert settings.warehouse_path == data / "warehouse" / "warehouse.duckdb"
    assert settings.serving_path == data / "serving" / "serving.duckdb"
    assert settings.survey_dir == data / "landing" / "surveys"
    assert settings.pseudonym_key_file == data / "secrets" / "pseudonym.key"
    assert settings.dbt_project_dir == REPO_ROOT / "dbt_project"
    assert (settings.gap_fill_days, settings.late_data_days) == (7, 3)
    assert settings.quality_slice_rows == 500_000
    assert settings.serving_parquet_retention_minutes == 60
    assert settings.survey_max_file_bytes == 1 << 30
    assert settings.survey_max_cell_chars == 131_072
    assert settings.survey_max_xlsx_uncompressed_bytes == 64 << 20
    assert settings.docs_dir == data / "docs"
    assert settings.docs_port == 8081


def test_data_dir_settings_are_exactly_those_that_follow_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The benchmarks clear these so that each warehouse's data folder holds all of its files.
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "one"))
    one = load_settings().as_env()
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "two"))
    two = load_settings().as_env()
    following = {
        name.removeprefix(ENV_PREFIX).lower()
        for name, value in one.items()
        if value != two[name] and name != "SLW_DATA_DIR"
    }
    assert following == set(DATA_DIR_SETTINGS)


def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "")
    monkeypatch.setenv("SLW_WAREHOUSE_PATH", "")
    settings = load_settings()
    assert settings.gap_fill_days == 7
    assert settings.warehouse_path.name == "warehouse.duckdb"


def test_white_space_around_a_value_is_no_part_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # `SLW_REPORTS_DIR= ` in an env file wrote the reports to a folder named " " in the
    # working directory; `SLW_DEMO=off ` was refused while `SLW_GAP_FILL_DAYS= 7 ` was read.
    monkeypatch.setenv("SLW_REPORTS_DIR", " \t")
    monkeypatch.setenv("SLW_DEMO", "off ")
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", " 5 ")
    settings = load_settings()
    assert settings.reports_dir == settings.data_dir / "reports"
    assert settings.demo is False
    assert settings.gap_fill_days == 5


def test_a_changed_copy_is_validated_too() -> None:
    settings = load_settings()

    assert dataclasses.replace(settings, quality_slice_rows=40).quality_slice_rows == 40
    with pytest.raises(ValueError, match="quality_slice_rows"):
        dataclasses.replace(settings, quality_slice_rows=0)


def test_the_settings_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # dbt and Airflow subprocesses get the settings as SLW_* variables and read them back.
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "2")
    settings = load_settings()
    for name, value in settings.as_env().items():
        monkeypatch.setenv(name, value)
    assert load_settings() == settings


def test_every_setting_is_documented_here_and_in_the_readme() -> None:
    variables = {ENV_PREFIX + field.name.upper() for field in dataclasses.fields(Settings)}
    assert {ENV_PREFIX + name for name in SETTING_DOCS} == variables
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    in_readme = set(re.findall(r"`(SLW_[A-Z_]+)`", readme))
    assert variables <= in_readme


def test_slw_settings_names_the_bad_value_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", "-5")

    assert main(["settings"]) == 2

    err = capsys.readouterr().err
    assert "SLW_GAP_FILL_DAYS='-5'" in err
    assert "Traceback" not in err


def test_slw_settings_lists_every_variable_with_its_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    for name in SETTING_DOCS:
        assert ENV_PREFIX + name in out
    assert "SLW_GAP_FILL_DAYS 7" in " ".join(out.split())


def test_a_run_by_hand_reads_the_files_just_dropped_unless_the_wait_is_set(monkeypatch):
    # slw run right after dropping a file skipped it, to be read by no later run.
    from social_leadership.settings import for_a_run_by_hand

    monkeypatch.delenv("SLW_INTAKE_SETTLE_SECONDS", raising=False)
    assert load_settings().intake_settle_seconds == 30
    assert for_a_run_by_hand(load_settings()).intake_settle_seconds == 0
    monkeypatch.setenv("SLW_INTAKE_SETTLE_SECONDS", "")  # as docker-compose.yml passes it
    assert for_a_run_by_hand(load_settings()).intake_settle_seconds == 0
    monkeypatch.setenv("SLW_INTAKE_SETTLE_SECONDS", "45")
    assert for_a_run_by_hand(load_settings()).intake_settle_seconds == 45
