"""The slw command line: help for every command, --version, short errors, exit codes."""

from __future__ import annotations

import errno
import importlib.metadata
import os
import re
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import click
import duckdb
import pytest
from slw_testing import free_port, run_slw

from social_leadership.cli import PACKAGE, cli, dags_test, explain, main, report
from social_leadership.settings import REPO_ROOT, load_settings
from social_leadership.warehouse import ensure_schema

HOLD_WRITER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""
ROSTER = """executive_id,full_name,title,company,country,sector,is_synthetic,x
joe,J,Chair,Siemens Energy,DE,Industrials,false,JoeKaeser
"""


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()):
    """Every command below ``group``: (path of names, command)."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def _slw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_slw(*args, env=env, timeout=120)


@pytest.fixture
def slw_env(tmp_path: Path) -> dict[str, str]:
    """A new user's environment: own data folder, no SLW_* or connection of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLW_", "AIRFLOW_CONN_"))}
    env["SLW_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(REPO_ROOT / "include")
    return env


def _short(stderr: str) -> list[str]:
    """The error's lines, checked to be a short message and not a traceback."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr
    assert 1 <= len(lines) <= 2, stderr
    return lines


# --- help and version -----------------------------------------------------------------


def test_every_command_argument_and_option_has_help_without_markup(capsys):
    top = _help(capsys)
    assert "`" not in top
    for path, command in _commands():
        assert command.help, path
        # Listed with its one line in its group's help.
        parent = _help(capsys, *path[:-1])
        listed = next(line for line in parent.splitlines() if line.split()[:1] == [path[-1]])
        assert command.get_short_help_str(limit=80) in listed
        text = _help(capsys, *path)
        assert "`" not in text, path
        for param in command.params:
            assert param.help, (path, param.name)
            if isinstance(param, click.Argument):
                assert param.help in " ".join(text.split()), (path, param.name)


def test_import_history_documents_its_argument(capsys):
    text = " ".join(_help(capsys, "import-history").split())
    assert "PATHS... follower history files, CSV or Parquet" in text


def test_sandbox_help_shows_the_sandboxs_options(capsys):
    text = _help(capsys, "sandbox")
    for option in ("--host", "--port", "--roster", "--ready-file", "--token"):
        assert option in text
    assert "0 picks a free one" in text


def test_sandbox_help_lists_the_synthetic_stand_ins(capsys):
    from social_leadership.sandbox.server import SYNTHETIC_STAND_INS

    text = " ".join(_help(capsys, "sandbox").split())
    for handles in SYNTHETIC_STAND_INS.values():
        for handle in handles:
            assert handle in text


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"slw {importlib.metadata.version(PACKAGE)}\n"


def test_readme_lists_every_command_with_its_help_line():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `slw ")]
    for path, command in _commands():
        name = f"| `slw {' '.join(path)}"
        line = next((row for row in rows if re.match(re.escape(name) + "[ `]", row)), None)
        assert line is not None, name
        assert command.get_short_help_str(limit=200) in line, path


# --- the commands -----------------------------------------------------------------------


def test_settings_lists_every_variable(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "SLW_WAREHOUSE_PATH" in out
    assert str(tmp_path) in out


def test_settings_values_start_in_one_column_whatever_the_names_length(
    monkeypatch, tmp_path, capsys
):
    # A fixed 26-character column: SLW_SURVEY_MAX_XLSX_UNCOMPRESSED_BYTES' value was not in
    # line with the others.
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    assert main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    named = [line for line in lines if line.startswith("SLW_")]
    assert any(len(line.split()[0]) > 26 for line in named)
    described = [line for line in lines if line.startswith(" ")]
    column = {len(line) - len(line.lstrip(" ")) for line in described}
    assert len(column) == 1
    valued = [line for line in named if len(line.split(maxsplit=1)) == 2]
    assert {line.index(" " + line.split(maxsplit=1)[1]) + 1 for line in valued} == column


def test_settings_refuses_a_short_pseudonym_key_without_printing_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLW_PSEUDONYM_KEY", "short-secret")
    assert main(["settings"]) == 2
    captured = capsys.readouterr()
    assert "SLW_PSEUDONYM_KEY is 12 characters long: it must be at least 16" in captured.err
    assert "short-secret" not in captured.out + captured.err
    monkeypatch.setenv("SLW_PSEUDONYM_KEY", "a-key-of-sixteen")
    assert main(["settings"]) == 0
    captured = capsys.readouterr()
    assert "a-key-of-sixteen" not in captured.out + captured.err


def test_settings_says_which_pseudonym_key_is_in_use_without_showing_it(
    monkeypatch, tmp_path, capsys
):
    # slw settings never named SLW_PSEUDONYM_KEY: set or not, it read as the key file's.
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SLW_PSEUDONYM_KEY", raising=False)
    assert main(["settings"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "SLW_PSEUDONYM_KEY unset: the key is read from SLW_PSEUDONYM_KEY_FILE" in out
    monkeypatch.setenv("SLW_PSEUDONYM_KEY", "a-key-of-twenty-chars")
    assert main(["settings"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "SLW_PSEUDONYM_KEY set (21 characters, not shown): used instead of" in out
    assert "a-key-of-twenty-chars" not in out


def test_a_misspelt_setting_is_named_with_the_setting_it_is_likely_meant_as(
    monkeypatch, tmp_path, capsys
):
    # Ignored without a word: the setting stayed at its default.
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLW_GAPFILL_DAYS", "5")
    monkeypatch.setenv("SLW_REPORT_EMAIL", "board@example.org")
    # Variables that are no settings and close to none, or dbt's own, are not named.
    monkeypatch.setenv("SLW_SANDBOX_TOKEN", "t")
    monkeypatch.setenv("SLW_DBT_WAREHOUSE_PATH", "warehouse/warehouse.duckdb")

    assert main(["settings"]) == 0

    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        "warning: SLW_GAPFILL_DAYS is not a setting and is ignored: did you mean "
        "SLW_GAP_FILL_DAYS?",
        "warning: SLW_REPORT_EMAIL is not a setting and is ignored: did you mean "
        "SLW_REPORT_EMAILS?",
    ]


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("SLW_ROSTER", "SLW_ROSTER_PATH"),
        ("SLW_ROSTER_FILE", "SLW_ROSTER_PATH"),
        ("SLW_SURVEY_FOLDER", "SLW_SURVEY_DIR"),
        ("slw_gap_fill_days", "SLW_GAP_FILL_DAYS"),
    ],
)
def test_a_setting_named_short_by_another_place_word_or_in_small_letters_is_named(
    monkeypatch, tmp_path, capsys, variable, meant
):
    # Below the typo match's cut-off, unsaid: SLW_ROSTER_FILE left the bundled demo roster
    # (synthetic executives) tracked in place of one's own.
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(variable, "x")

    assert main(["settings"]) == 0

    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warnings == [
        f"warning: {variable} is not a setting and is ignored: did you mean {meant}?"
    ]


def test_settings_shows_a_switch_as_1_or_0_as_readme_writes_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLW_SERVING_FILE_SPARE", "off")
    assert main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()[::2]
    shown = {line.split()[0]: line.split()[1:] for line in lines}
    assert shown["SLW_SERVING_FILE_SPARE"] == ["0"]
    assert shown["SLW_DBT_WARM_START"] == ["1"]
    # The form taken back: a subprocess given these variables reads the same settings.
    monkeypatch.setenv("SLW_SERVING_FILE_SPARE", shown["SLW_SERVING_FILE_SPARE"][0])
    assert load_settings().serving_file_spare is False


def test_dags_test_reads_a_day_as_midnight_utc():
    def parsed(*args: str) -> str | None:
        return dags_test.make_context("test", list(args)).params["logical_date"]

    assert parsed("platform_metrics", "2026-03-04") == "2026-03-04T00:00:00+00:00"
    assert parsed("platform_metrics", "2026-03-04T06:30:00") == "2026-03-04T06:30:00+00:00"
    assert parsed("survey_ingest") is None


def test_slw_sandbox_serves_with_its_options(slw_env, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    ready = tmp_path / "ready.txt"
    command = [sys.executable, "-m", "social_leadership", "sandbox", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--roster", str(roster), "--ready-file", str(ready), "--token", "t0k"],
        env=slw_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        base_url = ready.read_text().strip()
        assert base_url.startswith("http://127.0.0.1:")
        # Any HTTP answer will do: the server listens where the ready file says.
        with socket.create_connection(("127.0.0.1", int(base_url.rsplit(":", 1)[1])), 10):
            pass
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert server.returncode == 0, stderr
    assert "sandbox stopped" in stderr


# --- errors: usage (exit 2) ------------------------------------------------------------


def test_dags_test_rejects_a_date_that_is_not_one(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["dags", "test", "platform_metrics", "2026-13-01"])
    assert exited.value.code == 2
    lines = _short(capsys.readouterr().err)
    assert "'2026-13-01' is no such day: month must be in 1..12" in lines[0]
    assert lines[1].strip() == "see: slw dags test --help"


@pytest.mark.parametrize("given", ["2026-W48", "20261129", "2026-W48-1T06:00:00"])
def test_a_date_in_another_iso_form_is_refused_not_read_as_another_day(given, capsys):
    # Python's fromisoformat reads 2026-W48 as its Monday: a user means the week.
    with pytest.raises(SystemExit) as exited:
        main(["dags", "test", "platform_metrics", given])
    assert exited.value.code == 2
    assert f"{given!r} is not a date (YYYY-MM-DD) or an ISO timestamp" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        # Airflow ran none of the DAG's tasks and called the run a success.
        (
            ["dags", "test", "warehouse_build", "1999-12-31"],
            "'1999-12-31' is before the DAGs' start date 2000-01-01: Airflow would run none "
            "of their tasks",
        ),
        (["dags", "test", "weekly_report", "0001-01-01"], "'0001-01-01' is before the DAGs'"),
        (["dags", "test", "survey_ingest", "9999-12-31"], "'9999-12-31' is a day to come"),
        # A future week was written and would be mailed, marked as done; the year 1 crashed.
        (["report", "--no-mail", "2099-W01"], "'2099-W01' ends after today"),
        (["report", "--no-mail", "0001-01-01"], "'0001-01-01' is before 2000"),
    ],
)
def test_a_date_no_run_or_report_can_be_for_is_a_usage_error(args, said, capsys):
    with pytest.raises(SystemExit) as exited:
        main(args)

    assert exited.value.code == 2
    assert said in capsys.readouterr().err


def test_the_report_takes_its_day_or_an_iso_week_as_that_week_s_sunday(capsys):
    def parsed(*args: str) -> object:
        return report.make_context("report", list(args)).params["week_end"]

    assert parsed("2026-11-29") == date(2026, 11, 29)
    assert parsed("2026-W48") == date(2026, 11, 29)
    assert parsed("2020-W53") == date(2021, 1, 3)
    with pytest.raises(SystemExit) as exited:
        main(["report", "20261129", "--no-mail"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "'20261129' is not a date (YYYY-MM-DD) or an ISO week (YYYY-Www)" in error
    # A week in the form but none there is: said so, not as a form not followed.
    for given, said in (
        ("2025-W53", "'2025-W53' is no such week: 2025 has ISO weeks W01 to W52"),
        ("2026-W00", "'2026-W00' is no such week: 2026 has ISO weeks W01 to W53"),
        ("2026-02-30", "'2026-02-30' is no such day: day is out of range for month"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(["report", given, "--no-mail"])
        assert exited.value.code == 2
        assert said in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["nope"])
    assert exited.value.code == 2
    assert "No such command 'nope'" in _short(capsys.readouterr().err)[0]


def test_a_history_file_that_does_not_exist_is_named(slw_env, tmp_path):
    missing = tmp_path / "no_such_history.csv"
    ran = _slw("import-history", str(missing), env=slw_env)
    assert ran.returncode == 2
    lines = _short(ran.stderr)
    assert str(missing) in lines[0]
    assert "does not exist" in lines[0]


def test_import_history_names_each_rejected_row_once(slw_env, tmp_path):
    history = tmp_path / "history.csv"
    history.write_text(
        "executive_id,account_handle,platform,date,followers\n"
        ",nobody,x,2026-01-01,5\n"
        ",nobody_else,x,2026-01-02,6\n"
    )

    ran = _slw("import-history", str(history), env=slw_env)

    assert ran.returncode == 1
    assert "0 rows loaded, 2 rejected" in ran.stdout
    lines = ran.stderr.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"rejected {history}:2",
        f"rejected {history}:3",
    ], ran.stderr


# --- errors: configuration (exit 2) ----------------------------------------------------


def test_a_wrong_roster_path_says_which_setting_to_fix(slw_env, tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("executive_id,platform,date,followers\n")
    slw_env["SLW_ROSTER_PATH"] = str(tmp_path / "missing_roster.csv")

    ran = _slw("import-history", str(history), env=slw_env)

    assert ran.returncode == 2
    lines = _short(ran.stderr)
    assert f"{tmp_path / 'missing_roster.csv'}: cannot read roster file" in lines[0]
    assert "SLW_ROSTER_PATH" in lines[1]


def test_dags_test_of_platform_metrics_says_a_wrong_roster_path_before_any_run(slw_env, tmp_path):
    # The run started and failed its first task: exit 1, Airflow's tracebacks, and the
    # cause in none of the last lines.
    slw_env["SLW_ROSTER_PATH"] = str(tmp_path / "missing_roster.csv")
    slw_env["AIRFLOW_HOME"] = str(tmp_path / "airflow_home")

    ran = _slw("dags", "test", "platform_metrics", env=slw_env)

    assert ran.returncode == 2
    lines = _short(ran.stderr)
    assert f"{tmp_path / 'missing_roster.csv'}: cannot read roster file" in lines[0]
    assert "SLW_ROSTER_PATH" in lines[1]
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "SLW_DAG_RESULT" not in ran.stdout  # no run was made


def test_a_bad_setting_is_one_line_and_a_fix(slw_env):
    slw_env["SLW_GAP_FILL_DAYS"] = "abc"

    ran = _slw("summary", env=slw_env)

    assert ran.returncode == 2
    error, fix = _short(ran.stderr)
    assert error == (
        "error: SLW_GAP_FILL_DAYS='abc' is not allowed: it must be a whole number from 0 to 3650"
    )
    assert "unset it for the default" in fix


def test_a_backend_switched_on_a_folder_that_has_run_is_one_line_and_exit_2(slw_env):
    # It said "no DuckLake catalog ... fix: run the pipeline first", which built an empty lake.
    data = Path(slw_env["SLW_DATA_DIR"])
    (data / "warehouse").mkdir(parents=True)
    duckdb.connect(str(data / "warehouse" / "warehouse.duckdb")).close()
    (data / ".warehouse_backend").write_text("duckdb\n", encoding="utf-8")

    ran = _slw("summary", env={**slw_env, "SLW_WAREHOUSE_BACKEND": "ducklake"})

    assert ran.returncode == 2
    error, fix = _short(ran.stderr)
    assert error == (
        f"error: SLW_WAREHOUSE_BACKEND is ducklake, but data folder {data} holds a duckdb "
        f"warehouse (as {data / '.warehouse_backend'} records): a new, empty one would be "
        "built and published in its place"
    )
    assert fix.startswith("  fix: set SLW_WAREHOUSE_BACKEND=duckdb to go on with it")
    assert not (data / "warehouse" / "lake").exists()


def test_a_catalog_setting_without_its_file_is_a_setting_not_allowed(slw_env):
    # DuckLake read "sqlite:" as a catalog named "sqlite:" that does not exist (exit code 1).
    env = {**slw_env, "SLW_WAREHOUSE_BACKEND": "ducklake", "SLW_DUCKLAKE_CATALOG": "sqlite:"}

    ran = _slw("summary", env=env)

    assert ran.returncode == 2
    error, _ = _short(ran.stderr)
    assert error.startswith("error: SLW_DUCKLAKE_CATALOG='sqlite:' is not allowed: it must be")


def test_an_unreachable_postgresql_catalog_is_said_without_duckdb_s_wording(slw_env):
    port = free_port()
    catalog = f"postgres:host=127.0.0.1 port={port} dbname=slw_lake user=slw connect_timeout=5"
    env = {**slw_env, "SLW_WAREHOUSE_BACKEND": "ducklake", "SLW_DUCKLAKE_CATALOG": catalog}

    ran = _slw("summary", env=env)

    assert ran.returncode == 1
    error, fix = _short(ran.stderr)
    assert error.startswith(
        "error: the DuckLake catalog's PostgreSQL refused the connection or cannot be reached: "
    )
    assert f"port {port} failed" in error
    assert "__ducklake_metadata" not in error
    assert "SLW_DUCKLAKE_CATALOG" in fix


def _s3_errors(monkeypatch: pytest.MonkeyPatch) -> list[duckdb.Error]:
    """What httpfs raises against a real S3 store (moto, on loopback) without the bucket,
    writing and reading; and once the store is gone."""
    from moto.server import ThreadedMotoServer

    from social_leadership.serving_lake import load_extensions

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    con = duckdb.connect()
    load_extensions(con, ("httpfs",))
    con.execute(f"set s3_endpoint = '{host}:{port}'")
    con.execute("set s3_use_ssl = false")
    con.execute("set s3_url_style = 'path'")
    statements = [
        "copy (select 1 as n) to 's3://no-such-bucket/lake/a.parquet'",
        "select * from 's3://no-such-bucket/lake/a.parquet'",
    ]
    errors = []
    try:
        for statement in statements:
            with pytest.raises(duckdb.Error) as failed:
                con.execute(statement)
            errors.append(failed.value)
    finally:
        server.stop()
    with pytest.raises(duckdb.Error) as failed:
        con.execute(statements[0])
    con.close()
    return [*errors, failed.value]


def test_a_lake_s_object_store_refusing_or_gone_is_said_with_the_settings_to_check(monkeypatch):
    # "HTTPException: HTTP Error: Unable to connect to URL s3://...: Not Found (HTTP code
    # 404)" said neither that the bucket is missing nor which setting names it (probe lake63).
    written, read, gone = (explain(error) for error in _s3_errors(monkeypatch))

    said, code = written
    assert code == 1
    assert said.splitlines() == [
        "error: the lake's object store answered HTTP 404 (Not Found) for "
        "s3://no-such-bucket/lake/a.parquet",
        "  fix: check the bucket of SLW_DUCKLAKE_DATA_PATH (it must exist) and "
        "AWS_ENDPOINT_URL; then run this command again",
    ]
    assert read[0].splitlines()[0] == (
        "error: the lake's object store answered HTTP 404 (Not Found) for "
        "s3://no-such-bucket/lake/a.parquet"
    )
    said, code = gone
    assert code == 1
    assert said.startswith("error: the lake's object store cannot be reached (http://")
    assert "correct AWS_ENDPOINT_URL" in said


def test_summary_before_the_first_run_says_to_run_the_pipeline(slw_env):
    ran = _slw("summary", env=slw_env)

    assert ran.returncode == 2
    error, fix = _short(ran.stderr)
    warehouse = Path(slw_env["SLW_DATA_DIR"]) / "warehouse" / "warehouse.duckdb"
    assert error == f"error: no DuckDB database at {warehouse}"
    assert "make run" in fix


@pytest.mark.parametrize(
    ("backend", "command", "missing"),
    [
        ("ducklake", ["summary"], "no DuckLake catalog at {data}/warehouse/lake/catalog.sqlite"),
        ("duckdb", ["bi", "--sql", "select 1"], "no DuckLake catalog at {data}/serving/lake/"),
        ("duckdb", ["bi", "--check"], "no DuckLake catalog at {data}/serving/lake/"),
        (
            "duckdb",
            ["bi", "--single-file", "--check"],
            "no DuckDB database at {data}/serving/serving.duckdb",
        ),
    ],
)
def test_nothing_published_yet_says_to_run_the_pipeline(
    monkeypatch, capsys, tmp_path, backend, command, missing
):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", backend)

    assert main(command) == 2

    error, fix = _short(capsys.readouterr().err)
    assert error.startswith("error: " + missing.format(data=tmp_path / "data"))
    assert "run the pipeline first (make run)" in fix


def test_a_file_that_vanished_is_named(monkeypatch, capsys):
    import social_leadership.summary

    def vanished(settings):
        raise FileNotFoundError(2, "No such file or directory", "/data/gone.parquet")

    monkeypatch.setattr(social_leadership.summary, "summarise", vanished)

    assert main(["summary"]) == 2

    error, fix = _short(capsys.readouterr().err)
    assert error == "error: /data/gone.parquet: No such file or directory"
    assert "slw settings" in fix


def test_debug_shows_the_traceback(slw_env, tmp_path):
    slw_env["SLW_ROSTER_PATH"] = str(tmp_path / "missing_roster.csv")
    history = tmp_path / "history.csv"
    history.write_text("executive_id,platform,date,followers\n")

    flagged = _slw("--debug", "import-history", str(history), env=slw_env)
    by_setting = _slw("import-history", str(history), env={**slw_env, "SLW_DEBUG": "1"})

    for ran in (flagged, by_setting):
        # The traceback, then the same short message and exit code as without it.
        assert ran.returncode == 2
        assert "Traceback (most recent call last)" in ran.stderr
        assert "RosterFileError" in ran.stderr
        assert ran.stderr.strip().splitlines()[-1].startswith("  fix: point SLW_ROSTER_PATH")


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("SLW_DUCKDB_MEMORY_LIMIT", "lots", "a memory size (a positive number and a unit"),
        ("SLW_REPORT_SCHEDULE", "never", "a cron expression (five fields, e.g. 0 6 * * 1)"),
        ("SLW_REPORT_SCHEDULE", "0 0 6 * * 1", "a cron expression (five fields, e.g. 0 6"),
        ("SLW_REPORT_SCHEDULE", "0 6 30 2 *", "a cron expression that fires: this one names a day"),
        ("SLW_REPORT_SCHEDULE", "0 6 31 4,6 *", "a cron expression that fires: this one names a"),
    ],
)
def test_a_bad_setting_checked_by_its_form_reads_as_a_sentence(
    monkeypatch, capsys, variable, value, allowed
):
    monkeypatch.setenv(variable, value)

    assert main(["settings"]) == 2

    error, _ = _short(capsys.readouterr().err)
    assert error.startswith(f"error: {variable}={value!r} is not allowed: it must be {allowed}")


# none_failed: a word the DAG files hold (a trigger rule), but no DAG id.
@pytest.mark.parametrize("dag_id", ["no_such_dag", "none_failed"])
@pytest.mark.parametrize("command", [["test"], ["list-runs"]])
def test_an_unknown_dag_id_is_a_usage_error_before_airflow_starts(capsys, command, dag_id):
    with pytest.raises(SystemExit) as exited:
        main(["dags", *command, dag_id])

    assert exited.value.code == 2
    error, see = _short(capsys.readouterr().err)
    assert f"unknown DAG id {dag_id!r}; the DAGs folder defines: platform_metrics, " in error
    assert "survey_ingest, warehouse_build, weekly_report" in error
    assert see == f"  see: slw dags {command[0]} --help"


def test_output_cut_short_by_its_reader_is_no_error(slw_env):
    """slw settings | head -1: the reader goes away before slw writes."""
    slw = subprocess.Popen(
        [sys.executable, "-m", "social_leadership", "settings"],
        env=slw_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert slw.stdout is not None
    slw.stdout.close()
    _, stderr = slw.communicate(timeout=120)

    assert slw.returncode == 1
    assert stderr == ""


def test_a_sandbox_port_in_use_is_named_with_how_to_choose_another(slw_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        ran = _slw("sandbox", "--port", str(port), env=slw_env)

    assert ran.returncode == 1
    error, fix = _short(ran.stderr)
    assert error == (
        f"error: port {port} is in use (another slw docs, slw sandbox or program listens on it)"
    )
    assert fix == "  fix: stop it, or choose another with --port (0 picks a free one)"


# --- errors: the command failed (exit 1) -----------------------------------------------


@pytest.fixture
def held_warehouse(monkeypatch, tmp_path):
    """A warehouse another process writes (as a pipeline task does): its PID."""
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("social_leadership.warehouse.LOCK_WAIT_SECONDS", 0.2)
    warehouse = load_settings().warehouse_path
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as con:
        ensure_schema(con)
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(warehouse)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "holding"
        yield warehouse, writer.pid
    finally:
        writer.kill()
        writer.wait()


def test_summary_says_so_when_a_pipeline_task_holds_the_warehouse(held_warehouse, capsys):
    warehouse, pid = held_warehouse
    assert main(["summary"]) == 1
    lines = _short(capsys.readouterr().err)
    assert f"{warehouse} is locked by process {pid}" in lines[0]
    assert "a pipeline task is writing it" in lines[0]


def test_a_locked_warehouse_says_what_to_do(held_warehouse, monkeypatch, tmp_path, capsys):
    warehouse, pid = held_warehouse
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
    history = tmp_path / "history.csv"
    history.write_text("executive_id,platform,date,followers\njoe,x,2026-01-01,7\n")

    assert main(["import-history", str(history)]) == 1

    error, fix = _short(capsys.readouterr().err)
    assert error.startswith(f"error: {warehouse} is locked by process {pid}")
    assert fix.strip().startswith("fix: wait until that run ends")


def test_a_locked_warehouse_names_the_history_files_left_unimported(
    held_warehouse, monkeypatch, tmp_path, capsys
):
    # The error named the warehouse alone: the files after the first were never mentioned.
    warehouse, pid = held_warehouse
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER)
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
    first, second, third = (tmp_path / f"history{n}.csv" for n in (1, 2, 3))
    for path in (first, second, third):
        path.write_text("executive_id,platform,date,followers\njoe,x,2026-01-01,7\n")

    assert main(["import-history", str(first), str(second), str(third)]) == 1

    left, error, fix = capsys.readouterr().err.strip().splitlines()
    assert fix.strip().startswith("fix: wait until that run ends")
    assert left == f"not imported: {second}, {third} (stopped at {first})"
    assert error.startswith(f"error: {warehouse} is locked by process {pid}")


def test_an_unexpected_error_is_short_and_points_at_debug(monkeypatch, capsys):
    import social_leadership.summary

    def broken(settings):
        raise RuntimeError("something no one foresaw\nsecond line")

    monkeypatch.setattr(social_leadership.summary, "summarise", broken)
    monkeypatch.delenv("SLW_DEBUG", raising=False)

    assert main(["summary"]) == 1

    error, hint = _short(capsys.readouterr().err)
    assert error == "error: RuntimeError: something no one foresaw"
    assert "--debug" in hint
    assert "SLW_DEBUG=1" in hint


def test_the_module_and_the_console_script_share_main():
    script = re.search(r'^slw = "(.+)"$', (REPO_ROOT / "pyproject.toml").read_text(), re.M)
    assert script is not None
    assert script[1] == "social_leadership.cli:main"


# --- the docs' examples ----------------------------------------------------------------

# Shell words an example may start with besides the venv's own programs: the shell's own
# (`for` loops, as README's secrets one-liner for the Docker host), coreutils' `cp`, and the
# programs the deployment's host has (git, make, docker).
SHELL_WORDS = {"make", "export", "cd", "for", "cp", "git", "docker"}
CLI_NOT_INSTALLED = "The DuckDB command line is not part of the install"


def _commands_of(block: str):
    """The first line of each shell command in a code block (quotes and a trailing
    backslash carry a command over to the next lines)."""
    quote, continued = None, False
    for line in block.splitlines():
        stripped = line.strip()
        if quote is None and not continued and stripped and not stripped.startswith("#"):
            yield stripped
        previous = " "
        for char in line:
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "#" and previous.isspace():
                break
            previous = char
        continued = quote is None and line.rstrip().endswith("\\")


def test_readme_and_docs_examples_use_only_installed_tools():
    """A shell example names a program of the venv (.venv/bin/...), make or the shell; the
    DuckDB CLI only where the page says it is not installed."""
    installed = {path.name for path in Path(sys.executable).parent.iterdir()}
    assert {"slw", "python", "airflow", "dbt"} <= installed
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
            for command in _commands_of(block):
                words = [word for word in command.split() if "=" not in word]  # VAR=value
                program = words[0].removeprefix(".venv/bin/")
                if program == "D":
                    continue  # a statement at the DuckDB CLI's prompt
                if program == "duckdb":
                    assert CLI_NOT_INSTALLED in text, (page.name, command)
                    continue
                assert program in installed or program in SHELL_WORDS, (page.name, command)
                checked += 1
    assert checked > 10


def test_a_dag_file_names_its_dag_by_dag_id_by_dag_or_by_its_function():
    from social_leadership.cli import _dag_ids

    text = """
@dag(schedule="@daily", default_args=dict(retries=1))
def decorated():
    pass

@dag(dag_id="named_in_decorator", schedule=None)
def not_its_id():
    pass

classic = DAG("classic")
with DAG(dag_id="by_keyword", trigger_rule="none_failed") as keyword:
    pass
"""
    assert _dag_ids(text) == {"decorated", "named_in_decorator", "classic", "by_keyword"}


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EROFS, "Read-only file system", "/data/reports/2026-W48"),
        OSError(errno.ENOSPC, "No space left on device", "/data/warehouse/warehouse.duckdb"),
    ],
    ids=["read_only", "full"],
)
def test_a_full_or_read_only_disk_is_said_with_what_to_do(error, monkeypatch, capsys):
    # It was "OSError: ..." and a pointer at --debug, as for a bug.
    import social_leadership.summary

    def failing(settings):
        raise error

    monkeypatch.setattr(social_leadership.summary, "summarise", failing)

    assert main(["summary"]) == 1

    said, fix = _short(capsys.readouterr().err)
    assert said == f"error: {error.filename}: {error.strerror}"
    assert fix.strip().startswith("fix: free space on, or mount writable, the disk")


def test_slw_report_without_a_published_serving_copy_says_so_and_mails_nothing(slw_env):
    # A wrong data folder wrote and mailed a "not enough data" report, exiting 0.
    done = _slw("report", "2026-11-29", env=slw_env)

    assert done.returncode == 2, done.stderr
    said, fix = _short(done.stderr)
    serving = Path(slw_env["SLW_DATA_DIR"]) / "serving" / "lake" / "serving.sqlite"
    assert said == f"error: no published serving copy at {serving}"
    assert fix.strip().startswith("fix: run the pipeline first (make run)")
    assert done.stdout == ""
    assert not (Path(slw_env["SLW_DATA_DIR"]) / "reports").exists()


def test_a_duckdb_query_stopped_by_ctrl_c_says_interrupted_and_exits_130(monkeypatch, capsys):
    # DuckDB stops a running query on Ctrl-C and raises RuntimeError('Query interrupted')
    # from the KeyboardInterrupt (slw bi --sql, slw report, slw import-history met it): slw
    # said "error: RuntimeError: Query interrupted" and exited 1, where Ctrl-C elsewhere
    # says "interrupted" and exits 130. Which query DuckDB stops, and when, depends on its
    # threads: the error it raises is what is tested.
    from social_leadership import cli as cli_module

    def stopped_query() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise RuntimeError("Query interrupted") from interrupt

    def another_error() -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(cli_module, "load_settings", stopped_query)
    assert main(["summary"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
    # The same words without an interrupt behind them are another error.
    monkeypatch.setattr(cli_module, "load_settings", another_error)
    assert main(["summary"]) == 1
    assert "error: RuntimeError: Query interrupted" in capsys.readouterr().err
