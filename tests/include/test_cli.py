"""The slw command line."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from social_leadership.cli import build_parser, main
from social_leadership.settings import load_settings
from social_leadership.warehouse import ensure_schema

HOLD_WRITER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_settings_lists_every_variable(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "SLW_WAREHOUSE_PATH" in out
    assert str(tmp_path) in out


def test_summary_says_so_when_a_pipeline_task_holds_the_warehouse(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
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
        assert main(["summary"]) == 1
    finally:
        writer.kill()
        writer.wait()
    assert "a pipeline task is writing it" in capsys.readouterr().err


def test_dags_test_rejects_a_date_that_is_not_one(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["dags", "test", "platform_metrics", "2026-13-01"])
    assert exited.value.code == 2
    assert "'2026-13-01' is not a date" in capsys.readouterr().err


def test_dags_test_reads_a_day_as_midnight_utc():
    args = build_parser().parse_args(["dags", "test", "platform_metrics", "2026-03-04"])
    assert args.logical_date == "2026-03-04T00:00:00+00:00"
    assert build_parser().parse_args(["dags", "test", "x"]).logical_date is None
