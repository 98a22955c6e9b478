"""The benchmarks' own measurements: what bench/_common.run_child reports of a child
process, and the check that keeps bench report_growth from timing an empty report."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import _common
import bench_report_growth

PARENT_BYTES = 300 * 2**20


def test_a_child_reports_its_own_peak_memory_not_its_parents(tmp_path):
    # Written, not only allocated, so the parent's resident peak is above PARENT_BYTES.
    held = bytearray(b"\x01") * PARENT_BYTES
    measured = _common.run_child(
        "import json; print(json.dumps({'peak_bytes': peak_bytes()}))", tmp_path
    )
    del held
    # A bare interpreter peaks near 10 MiB; the parent's peak must not show through.
    assert 0 < measured["peak_bytes"] < 100 * 2**20


def test_an_empty_serving_copy_gives_a_report_the_bench_rejects(tmp_path, monkeypatch):
    from social_leadership.reports.weekly import write_weekly_report
    from social_leadership.settings import load_settings

    for variable in ("SLW_WAREHOUSE_PATH", "SLW_DBT_TARGET_DIR", "SLW_LOGS_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    settings = load_settings()
    settings.ensure_dirs()
    result = write_weekly_report(settings, date(2026, 6, 30), mail=False)
    measured = {"enough_data": result.enough_data, "html": result.html, "pdf": result.pdf}

    assert bench_report_growth.has_data(measured) is False
    # The page's wording is what the bench looks for, not only the flag.
    assert bench_report_growth.NOT_ENOUGH_DATA in result.html.read_text(encoding="utf-8")
    assert bench_report_growth.has_data({**measured, "enough_data": True}) is False
