"""End to end through real Airflow (``dag.test()``): survey files loaded by a run that died
before its signal to ``warehouse_build`` (a killed worker, a fault after the load's commit)
were found unchanged by the next run, which signalled nothing: their rows waited in raw,
unpublished, for a build some platform run might never ask for. The next run now signals
them, once, and a run after a build began does not again."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

import pytest

from social_leadership.local_airflow import airflow_environment, run_dags
from social_leadership.settings import load_settings
from social_leadership.tasks import ingest_surveys_task
from social_leadership.warehouse import connect

pytestmark = pytest.mark.e2e

FIGURES = (
    "source_id,source_name,wave,scope,question_id,question_text,measure,value\n"
    "probe,Probe poll,2025,DE,q1,Q one,share_pct,41\n"
)


def _signal_tasks(airflow_home) -> list[str]:
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        rows = meta.execute(
            "select state from task_instance where dag_id = 'survey_ingest' "
            "and task_id = 'signal_warehouse' order by start_date"
        ).fetchall()
    return [state for (state,) in rows]


def test_files_a_dead_run_loaded_are_signalled_by_the_next_run_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    settings.ensure_dirs()
    with connect(settings.warehouse_path) as con:
        # Platform data: a build has something to build (before any, it is skipped).
        con.execute(
            "insert into raw.platform_metrics values "
            "('x', ?, 'a_x', 'id-a', 'ok', 1000, 10, 5, ?, 'api', null, ?, false)",
            [date(2025, 3, 1), *[datetime(2025, 3, 1, 6, tzinfo=UTC)] * 2],
        )
    (settings.survey_dir / "probe.csv").write_text(FIGURES, encoding="utf-8")
    # The dead run: its load committed, its signal never sent.
    assert ingest_surveys_task()["files_loaded"] == 2  # probe.csv and the bundled figures
    airflow_home = tmp_path / "airflow_home"
    env = airflow_environment(airflow_home, settings.as_env())

    run_dags(["survey_ingest"], env, settings.logs_dir)

    assert _signal_tasks(airflow_home) == ["success"]
    # A build began since (its first try recorded): the files are not signalled again.
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.dbt_build_attempts (run_id, started_at, attempt) "
            "values ('build-1', ?, 1)",
            [datetime.now(UTC)],
        )
    run_dags(["survey_ingest"], env, settings.logs_dir)
    assert _signal_tasks(airflow_home) == ["success", "skipped"]
    # A file loaded since is signalled by its own run; one a run loaded and died with, again
    # by the next; a build run that failed before its dbt build began (recorded in
    # audit.runs, no try) had it in reach: not signalled again every five minutes.
    (settings.survey_dir / "later.csv").write_text(FIGURES.replace("41", "42"), encoding="utf-8")
    assert ingest_surveys_task()["files_loaded"] == 1
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into audit.runs (dag_id, run_id, outcome, recorded_at, logical_date) "
            "values ('warehouse_build', 'build-2', 'failed', ?, ?)",
            [datetime.now(UTC), datetime.now(UTC)],
        )
    run_dags(["survey_ingest"], env, settings.logs_dir)
    assert _signal_tasks(airflow_home) == ["success", "skipped", "skipped"]
