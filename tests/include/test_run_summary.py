"""A DAG run's key figures (run_summary.py): gathered from the tasks' XComs, recorded once
per run in audit.runs. The real runs are in tests/e2e/test_monitoring_e2e.py."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

from social_leadership import run_summary
from social_leadership.warehouse import connect

PLATFORM_XCOMS = {
    "load_bluesky": {
        "status": "loaded",
        "accounts_loaded": 140,
        "accounts_missing": 5,
        "not_found": 3,
    },
    # A platform that failed misses every account it asked for, none of them not found; a
    # load refused as "every account not found" (a wrong host) is no broken handle either.
    "load_x": {"status": "failed", "accounts_loaded": 5, "accounts_missing": 132, "not_found": 7},
    "import_history": {"files": 2, "rows_loaded": 1000, "rows_rejected": 4},
    "check_platforms": None,
}


def test_a_platform_run_counts_rows_per_platform_not_found_and_quarantined_rows():
    summary = run_summary.summarise(
        "platform_metrics", "run-1", PLATFORM_XCOMS, ["check_platforms", "load_x"]
    )
    assert summary.rows_loaded_by_source == {"bluesky": 140, "x": 5, "history_import": 1000}
    assert summary.rows_loaded == 1145
    assert summary.accounts_not_found == 3
    assert summary.rows_quarantined == 4
    assert summary.outcome == "failed"
    assert summary.failed_tasks == "check_platforms, load_x"
    # Figures this DAG does not produce stay empty.
    assert (summary.dbt_passed, summary.checks_passed, summary.publication_id) == (None,) * 3


def test_the_xcom_is_flat_and_leaves_out_what_the_dag_does_not_produce():
    xcom = run_summary.summarise("platform_metrics", "run-1", PLATFORM_XCOMS, []).to_xcom()
    assert xcom == {
        "dag_id": "platform_metrics",
        "run_id": "run-1",
        "outcome": "success",
        "failed_tasks": "",
        "rows_loaded": 1145,
        "rows_loaded.bluesky": 140,
        "rows_loaded.history_import": 1000,
        "rows_loaded.x": 5,
        "accounts_not_found": 3,
        # History files refused whole: none in this run.
        "files_quarantined": 0,
        "rows_quarantined": 4,
    }
    assert all(not isinstance(value, dict | list) for value in xcom.values())


def test_a_build_run_counts_dbt_nodes_checks_and_names_the_publication():
    xcoms = {
        "dbt_build": {"passed": 150, "warned": 2, "errored": 0, "skipped": 0},
        "publish": {
            "parquet_dir": "/data/serving/parquet/publication-20260105T000000Z-run",
            "publication_id": 7,
        },
    }
    summary = run_summary.summarise("warehouse_build", "run-2", xcoms, [], checks=(24, 1))
    assert (summary.dbt_passed, summary.dbt_warned, summary.dbt_failed) == (150, 2, 0)
    assert (summary.checks_passed, summary.checks_failed) == (24, 1)
    assert summary.publication_id == "publication-20260105T000000Z-run"
    # The id marts.publication has: the folder's name joined nothing there.
    assert summary.serving_publication_id == 7


def test_a_failed_build_is_counted_from_this_runs_run_results(tmp_path):
    run_results = tmp_path / "run_results.json"
    statuses = ["success", "pass", "warn", "error", "fail", "skipped"]
    run_results.write_text(json.dumps({"results": [{"status": s} for s in statuses]}))
    started = datetime.now(UTC) - timedelta(minutes=1)

    found = run_summary.dbt_statuses_since(run_results, started)
    summary = run_summary.summarise(
        "warehouse_build", "run-3", {"dbt_build": None}, ["dbt_build"], dbt_statuses=found
    )
    assert (summary.dbt_passed, summary.dbt_warned, summary.dbt_failed) == (2, 1, 2)
    # A file written before the run is another run's.
    an_hour_ago = time.time() - 3600
    os.utime(run_results, (an_hour_ago, an_hour_ago))
    assert run_summary.dbt_statuses_since(run_results, started) is None
    assert run_summary.dbt_statuses_since(tmp_path / "missing.json", started) is None


def test_a_survey_run_counts_quarantined_files():
    xcoms = {"ingest_surveys": {"files_quarantined": 2, "rows_loaded": 10}}
    summary = run_summary.summarise("survey_ingest", "run-4", xcoms, [])
    assert summary.files_quarantined == 2
    assert summary.rows_loaded_by_source == {"surveys": 10}


def test_a_history_file_refused_whole_counts_as_a_quarantined_file():
    xcoms = {
        "import_history": {
            "files": 2,
            "rows_loaded": 5,
            "rows_rejected": 1,
            "files_quarantined": 1,
        }
    }
    summary = run_summary.summarise("platform_metrics", "run-5", xcoms, [])
    assert (summary.files_quarantined, summary.rows_quarantined) == (1, 1)


def test_a_rerun_replaces_the_runs_row(tmp_path):
    first = run_summary.summarise("platform_metrics", "run-1", PLATFORM_XCOMS, ["load_x"])
    again = run_summary.summarise("platform_metrics", "run-1", PLATFORM_XCOMS, [])
    other_dag = run_summary.summarise("survey_ingest", "run-1", {}, [])
    with connect(tmp_path / "warehouse.duckdb") as con:
        for summary in (first, again, other_dag):
            run_summary.record(con, summary)
        rows = con.execute(
            "select dag_id, outcome, failed_tasks, rows_loaded, rows_loaded_by_source "
            "from audit.runs order by dag_id"
        ).fetchall()
    assert rows == [
        (
            "platform_metrics",
            "success",
            None,
            1145,
            '{"bluesky": 140, "history_import": 1000, "x": 5}',
        ),
        ("survey_ingest", "success", None, None, None),
    ]


def test_quality_counts_are_this_runs(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        assert run_summary.quality_counts(con, "run-2") is None
        now = datetime.now(UTC)
        for run_id, success in (("run-2", True), ("run-2", False), ("run-1", True)):
            con.execute(
                "insert into audit.quality_results values "
                "(?, 's', 't', 'e', null, true, ?, null, null, ?, null, null)",
                [run_id, success, now],
            )
        assert run_summary.quality_counts(con, "run-2") == (1, 1)


def test_rejected_roster_rows_count_as_quarantined_rows():
    xcoms = {
        **PLATFORM_XCOMS,
        "load_roster": {"handles": {}, "rows_loaded": 200, "rows_rejected": 3},
    }
    summary = run_summary.summarise("platform_metrics", "run-1", xcoms, [])
    assert summary.rows_quarantined == 4 + 3
    # The roster is no source of rows in raw.platform_metrics.
    assert "roster" not in summary.rows_loaded_by_source


def test_the_failed_tasks_named_are_the_causes_not_what_did_not_run_or_the_runs_check():
    # A roster refused whole named 18 tasks, check_platforms first, load_roster among them.
    refused = {
        "load_roster": "failed",
        "extract_x": "upstream_failed",
        "load_x": "upstream_failed",
        "check_platforms": "failed",
        "run_summary": "running",
    }
    assert run_summary._tasks_that_failed(refused, exclude="run_summary") == ["load_roster"]
    # Each kind stands in when nothing else failed.
    alone = {"check_platforms": "failed", "load_x": "success"}
    assert run_summary._tasks_that_failed(alone, exclude="run_summary") == ["check_platforms"]
    upstream = {"quality_gate": "upstream_failed", "dbt_build": "success"}
    assert run_summary._tasks_that_failed(upstream, exclude="run_summary") == ["quality_gate"]
