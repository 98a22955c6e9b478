"""Freshness on a warehouse built by a real dbt build: ``dbt source freshness`` into
``audit.source_freshness``, "data as of" per platform, staleness alerted once a day, and
the latest check published beside the marts."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb

from social_leadership.freshness import check_freshness
from social_leadership.raw_contract import TABLES
from social_leadership.serving import publish
from social_leadership.settings import Settings

PLATFORMS = ["bluesky", "x", "youtube"]


def _rows(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_freshness_is_recorded_once_per_run_and_stale_platforms_alerted_once_a_day(
    copied_built_warehouse: Settings,
) -> None:
    settings = copied_built_warehouse
    facts = check_freshness(settings, "run-1", PLATFORMS)

    checked = _rows(
        settings.warehouse_path,
        "select source_name, table_name, status, warn_after, error_after "
        "from audit.source_freshness where run_id = 'run-1' order by all",
    )
    # Tables with a threshold (history_imports only declares its loaded_at field).
    declared = sorted(
        (t.dbt_source, t.name)
        for t in TABLES
        if t.dbt_source
        and t.freshness
        and (t.freshness.warn_after_days or t.freshness.error_after_days)
    )
    assert [(source, table) for source, table, *_ in checked] == declared
    # The synthetic dataset was loaded in 2025: past every error threshold.
    roster = next(row for row in checked if row[1] == "roster_executives")
    assert roster[2:] == ("error", "2 day", "4 day")

    as_of = dict(
        _rows(
            settings.warehouse_path,
            "select platform, data_as_of from audit.platform_data_as_of where run_id = 'run-1'",
        )
    )
    assert set(as_of) == set(PLATFORMS)
    newest = _rows(
        settings.warehouse_path,
        "select max(snapshot_date) from raw.platform_metrics "
        "where platform = 'bluesky' and account_status = 'ok'",
    )[0][0]
    assert as_of["bluesky"] == newest

    stale = [f.what for f in facts if f.what.startswith("platform ")]
    assert any(what.startswith("platform bluesky is stale") for what in stale)
    assert any("freshness error" in f.what for f in facts)

    # The same run again: its rows replaced, not added; the platforms already alerted today.
    again = check_freshness(settings, "run-1", PLATFORMS)
    count = _rows(
        settings.warehouse_path,
        "select count(*) from audit.source_freshness where run_id = 'run-1'",
    )[0][0]
    assert count == len(declared)
    assert not [f for f in again if f.what.startswith("platform ")]
    alerts = _rows(
        settings.warehouse_path, "select platform, alert_date from audit.stale_platform_alerts"
    )
    assert len(alerts) == len(stale)
    assert {day for _, day in alerts} == {datetime.now(UTC).date()}


def test_the_latest_check_is_published_beside_the_marts(copied_built_warehouse: Settings) -> None:
    settings = copied_built_warehouse
    check_freshness(settings, "run-old", PLATFORMS)
    check_freshness(settings, "run-new", PLATFORMS)
    publish(settings, "run-new", synthetic=True)

    published = _rows(
        settings.serving_path,
        "select platform, data_as_of, is_stale from audit.platform_data_as_of order by platform",
    )
    assert [row[0] for row in published] == sorted(PLATFORMS)
    assert _rows(settings.serving_path, "select distinct run_id from audit.source_freshness") == [
        ("run-new",)
    ]


def test_imported_counts_make_a_platforms_data_as_of_and_can_make_it_stale(
    copied_built_warehouse: Settings,
) -> None:
    # LinkedIn members' counts only come in by import: read from the API's rows alone, the
    # platform was data as of no day, and never stale however old its history.
    settings = copied_built_warehouse
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "insert into raw.history_imports values "
            "(901, 'old.csv', 1, 1, 0, timestamptz '2025-01-10 08:00:00+00', false), "
            "(902, 'new.csv', 1, 1, 0, timestamptz '2025-01-20 08:00:00+00', false)"
        )
        con.execute(
            "insert into raw.imported_metrics (import_id, platform, snapshot_date, "
            "account_handle, followers) values "
            "(901, 'linkedin', date '2025-01-09', 'someone', 5), "
            "(902, 'linkedin', date '2025-01-19', 'someone', 6)"
        )

    facts = check_freshness(settings, "run-1", ["linkedin"])

    assert _rows(
        settings.warehouse_path,
        "select platform, data_as_of, last_loaded_at, is_stale from audit.platform_data_as_of",
    ) == [
        (
            "linkedin",
            date(2025, 1, 19),
            datetime(2025, 1, 20, 8, tzinfo=UTC),
            True,
        )
    ]
    assert any(
        f.what.startswith("platform linkedin is stale: data as of 2025-01-19") for f in facts
    )


def test_a_day_that_has_not_come_does_not_make_a_platform_fresh() -> None:
    # A row dated in the future (written by hand) read as data as of that day: the platform
    # could not be stale while it stayed, whatever its outage.
    from social_leadership.freshness import platform_data_as_of
    from social_leadership.warehouse import ensure_schema

    today = date(2026, 12, 5)
    with duckdb.connect() as con:
        ensure_schema(con)
        con.execute(
            "insert into raw.platform_metrics (platform, snapshot_date, account_handle, "
            "account_status, followers, source, observed_at, loaded_at, is_synthetic) values "
            "('x', date '2026-11-20', 'a', 'ok', 5, 'api', now(), now(), false), "
            "('x', date '2027-03-01', 'a', 'ok', 5, 'api', now(), now(), false)"
        )
        (row,) = platform_data_as_of(con, ["x"], today, 3)

    assert (row.data_as_of, row.days_behind, row.is_stale) == (date(2026, 11, 20), 15, True)


def test_a_table_without_rows_was_loaded_never_not_in_the_year_1(tmp_path) -> None:
    # dbt's sentinel for an empty table: an alert read "newest row loaded 0001-01-01".
    from social_leadership.freshness import parse_sources_json

    sources = tmp_path / "sources.json"
    sources.write_text(
        '{"results": [{"unique_id": "source.slw.platforms.platform_metrics", "status": "error",'
        ' "max_loaded_at": "0001-01-01T00:00:00+00:00",'
        ' "max_loaded_at_time_ago_in_s": 63900000000.0, "criteria": {}}]}',
        encoding="utf-8",
    )

    [row] = parse_sources_json(sources)

    assert row.max_loaded_at is None
    assert row.age_seconds is None


def test_before_the_first_platform_data_the_build_is_skipped_saying_why(
    tmp_path, monkeypatch
) -> None:
    # A new deployment: survey_ingest ends before platform_metrics' first load, and the
    # build it starts failed its gate on every empty daily fact (a red first day).
    import pytest
    from airflow.sdk.exceptions import AirflowSkipException
    from conftest import settings_for_data_dir

    from social_leadership.tasks import source_freshness_task
    from social_leadership.warehouse import connect

    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into raw.survey_results select * from (values ('s', 'S', 2024, 'DE', 'q', "
            "'Q', 'share_pct', 50.0, 100, 1.0, false, 'c', 'f.csv', 'x', now()))"
        )

    with pytest.raises(AirflowSkipException, match="no platform data loaded yet"):
        source_freshness_task({"run_id": "first"})

    assert not (settings.dbt_target_dir / "sources.json").exists()
