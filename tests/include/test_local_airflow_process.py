"""The local Airflow runner: its SQLite metadata DB commits without waiting for the disk;
the Execution API ``dag.test()`` runs in it is built for the Task SDK's version only."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy


def test_sqlite_connections_opened_after_it_commit_without_fsync(tmp_path):
    from social_leadership.local_airflow_process import commit_without_fsync

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'airflow.db'}")
    with engine.connect() as before:
        assert before.exec_driver_sql("pragma synchronous").scalar() == 2  # FULL, SQLite's own
    engine.dispose()
    commit_without_fsync()
    with engine.connect() as after:
        assert after.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL


def _routes(app) -> list[tuple[str, tuple[str, ...], str]]:
    from airflow.sdk.api.datamodels._generated import API_VERSION

    return [
        (route.path, tuple(sorted(getattr(route, "methods", ()) or ())), route.name)
        for route in app.router.versioned_routers[API_VERSION].routes
    ]


@pytest.fixture
def execution_app(monkeypatch):
    """Airflow's Execution API module, its app builder restored after the test."""
    from airflow.api_fastapi.execution_api import app

    monkeypatch.setattr(app, "create_task_execution_api_app", app.create_task_execution_api_app)
    return app


def test_the_in_process_execution_api_serves_only_the_task_sdk_s_version(execution_app):
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    from airflow.sdk.api.datamodels._generated import API_VERSION

    from social_leadership.local_airflow_process import serve_only_this_sdks_api_version

    every_version = execution_app.create_task_execution_api_app()
    every_version._cadwyn_initialize()
    assert len(every_version.versions.versions) > 1
    assert every_version.versions.versions[0].value == API_VERSION

    serve_only_this_sdks_api_version()
    serve_only_this_sdks_api_version()  # again: no second wrapper
    api = InProcessExecutionAPI()
    app = api.app
    assert [version.value for version in app.versions.versions] == [API_VERSION]
    # The routes the SDK's version has, as Airflow builds them.
    assert _routes(app) == _routes(every_version)
    with httpx.Client(transport=api.transport, base_url="http://in-process") as client:
        current = client.get("/health", headers={"Airflow-API-Version": API_VERSION})
        older = every_version.versions.versions[-1].value
        refused = client.get("/health", headers={"Airflow-API-Version": older})
    assert current.status_code == 200, current.text
    assert refused.status_code >= 400


def test_an_execution_api_that_cannot_be_built_for_one_version_is_built_as_airflow_does(
    execution_app, monkeypatch, caplog
):
    from airflow.api_fastapi.execution_api.app import CadwynWithOpenAPICustomization

    from social_leadership.local_airflow_process import serve_only_this_sdks_api_version

    def fails(self):
        raise RuntimeError("a later Cadwyn")

    serve_only_this_sdks_api_version()
    monkeypatch.setattr(CadwynWithOpenAPICustomization, "_cadwyn_initialize", fails)
    with caplog.at_level("WARNING", logger="social_leadership.local_airflow_process"):
        app = execution_app.create_task_execution_api_app()

    assert len(app.versions.versions) > 1
    assert "could not be built" in caplog.text


def test_a_dag_whose_file_failed_to_import_is_said_so_not_unknown(tmp_path, capsys):
    # A setting out of range broke platform_metrics' import, and the DAG was "unknown".
    from types import SimpleNamespace

    from social_leadership import local_airflow_process

    dag_file = tmp_path / "platform_metrics.py"
    dag_file.write_text('with DAG(dag_id="platform_metrics"): ...\n')
    bag = SimpleNamespace(
        dag_ids=["survey_ingest"],
        import_errors={str(dag_file): "Traceback ...\nOverflowError: days=1157407407"},
    )

    code = local_airflow_process._unknown("platform_metrics", bag)
    # A DAG id only part of the file's text (a typo, "platform") is no DAG of it.
    assert not local_airflow_process._names_dag(str(dag_file), "platform")

    assert code == local_airflow_process.EXIT_UNKNOWN_DAG
    assert capsys.readouterr().err.splitlines() == [
        f"DAG 'platform_metrics' failed to import from {dag_file}: OverflowError: days=1157407407"
    ]


def test_a_run_dated_tomorrow_or_a_past_day_started_when_dag_test_was_called():
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from social_leadership.local_airflow_process import _started

    called = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)
    # dag.test() records the logical date as the start: tomorrow's run did not start tomorrow.
    for logical_date in (called + timedelta(days=1), called - timedelta(days=300)):
        by_dag_test = SimpleNamespace(
            start_date=logical_date, logical_date=logical_date, run_after=called
        )
        assert _started(by_dag_test) == called
    # A scheduler's run started after its run_after, at its start_date.
    scheduled = SimpleNamespace(
        start_date=called + timedelta(minutes=3),
        logical_date=called - timedelta(days=1),
        run_after=called,
    )
    assert _started(scheduled) == called + timedelta(minutes=3)
    assert _started(SimpleNamespace(start_date=None, logical_date=None, run_after=called)) == called
