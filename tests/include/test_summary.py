"""``slw summary``: failed and not configured platforms stand out, with the reason."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from social_leadership.settings import load_settings
from social_leadership.summary import build_summary, platform_load_lines
from social_leadership.warehouse import connect

DAY = date(2026, 3, 2)
AT = datetime(2026, 3, 2, 6, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    settings.ensure_dirs()
    rows = [
        ("bluesky", "loaded", 40, 38, 2, 2, None),
        ("youtube", "failed", 12, 0, 12, 4, "youtube: HTTP 503 from ...; gave up after 4 attempts"),
        ("threads", "not_configured", 0, 0, 0, 0, "threads is not configured"),
        ("x", "loaded", 50, 25, 25, 1, "x: rate limited; reset in 900s exceeds the 60s"),
    ]
    with connect(settings.warehouse_path) as con:
        for platform, status, requested, loaded, missing, requests, message in rows:
            con.execute(
                "insert into audit.platform_loads values (?, ?, 'run', ?, ?, ?, ?, ?, ?, ?, ?)",
                [platform, DAY, status, requested, loaded, missing, requests, message, AT, AT],
            )
    return settings


def test_failed_and_not_configured_platforms_are_named_with_the_reason(settings):
    with connect(settings.warehouse_path, read_only=True) as con:
        text = "\n".join(platform_load_lines(con))

    assert "FAILED: youtube" in text
    assert "gave up after 4 attempts" in text
    assert "Not configured (no connection, nothing sent): threads (connection slw_threads)" in text
    assert "bluesky" in text
    assert "38 accounts loaded" in text


def test_the_summary_works_before_anything_was_published(settings):
    text = build_summary(settings)

    assert "FAILED: youtube" in text
    assert "not published yet" in text
