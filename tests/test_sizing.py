"""bench/sizing.py, the measurements behind README's "Scaling" section: the scaled demo
roster, and one day of every component measured for real at two scales.

The two-scale measurement builds four warehouses with dbt (about 2-3 minutes on 2 cores), so
``make test-scale`` (SLW_TEST_SCALE=1) runs it, beside the other scale tests, and ``make test``
stays short; the roster test runs in both."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import sizing

from social_leadership.roster import load_roster


def test_the_scaled_demo_roster_holds_new_executives_with_valid_unique_handles(tmp_path):
    base = load_roster(sizing.DEMO_ROSTER)
    path = tmp_path / "roster.csv"

    sizing.write_roster_rows(sizing.scaled_roster_rows(sizing.read_roster_rows(), 16), path)
    scaled = load_roster(path)

    assert scaled.errors == []
    base_ids = {e.executive_id for e in base.executives}
    assert len({e.executive_id for e in scaled.executives}) == 16 * len(base_ids)
    # Every copy's account is its own: none collapses into another (same platform, handle).
    assert len({(a.platform, a.account_handle) for a in scaled.accounts}) == 16 * len(base.accounts)
    copies = [e for e in scaled.executives if e.executive_id not in base_ids]
    assert all(e.is_synthetic for e in copies)


@pytest.mark.dbt
@pytest.mark.scale
@pytest.mark.skipif(
    os.environ.get("SLW_TEST_SCALE") != "1",
    reason="measures two scales with four dbt builds: make test-scale (SLW_TEST_SCALE=1) runs it",
)
def test_one_day_is_measured_per_component_and_scale_and_grows_with_the_roster(
    tmp_path, monkeypatch
):
    # measure() points these at each scale's folder; monkeypatch restores them afterwards.
    for variable in ("SLW_DATA_DIR", "SLW_ROSTER_PATH"):
        monkeypatch.setenv(variable, str(tmp_path))
    for variable in ("SLW_WAREHOUSE_PATH", "SLW_DBT_TARGET_DIR", "SLW_LOGS_DIR"):
        monkeypatch.delenv(variable, raising=False)
    # A small slice of the demo roster: real, synthetic, import-only accounts and a move.
    rows = sizing.read_roster_rows()[:24]

    measured, figures = sizing.measure(tmp_path, (1, 2), base_rows=rows, history_days=3, echo=False)

    by = {(m.scale, m.component): m for m in measured}
    assert set(by) == {(s, c) for s in (1, 2) for c in sizing.COMPONENTS}
    for m in measured:
        assert m.wall_seconds >= m.own_seconds > 0, m
        assert m.peak_bytes > 0, m
        assert m.rows > 0, m
        assert m.bytes > 0, m
    table = sizing.table(measured).splitlines()
    assert len(table) == 2 + len(measured)
    for m in measured:
        assert any(f"| {m.scale}x |" in line and f"| {m.component} |" in line for line in table)
    assert [f["executives"] for f in figures] == [
        figures[0]["executives"],
        2 * figures[0]["executives"],
    ]
    # What arrives per day scales with the roster: twice the executives, twice the rows.
    for component in ("extract", "load", "publish"):
        assert by[(2, component)].rows == 2 * by[(1, component)].rows, component
    assert by[(2, "extract")].bytes > by[(1, "extract")].bytes
    # The gate validated the day's facts, not none.
    assert by[(2, "quality gate")].rows >= by[(2, "publish")].rows
