"""The local Airflow runner: its SQLite metadata DB commits without waiting for the disk;
the Execution API ``dag.test()`` runs in it is built for the Task SDK's version only."""

from __future__ import annotations

import httpx
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


def _in_process_api() -> tuple[object, httpx.Client]:
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI

    api = InProcessExecutionAPI()
    return api.app, httpx.Client(transport=api.transport, base_url="http://in-process")


def test_the_in_process_execution_api_serves_only_the_task_sdk_s_version(monkeypatch):
    from airflow.api_fastapi.execution_api import app as execution_app
    from airflow.sdk.api.datamodels._generated import API_VERSION

    from social_leadership.local_airflow_process import serve_only_this_sdks_api_version

    # Restored after the test, as every other process builds it.
    monkeypatch.setattr(
        execution_app, "create_task_execution_api_app", execution_app.create_task_execution_api_app
    )
    every_version, _ = _in_process_api()
    assert len(every_version.versions.versions) > 1
    assert every_version.versions.versions[0].value == API_VERSION

    serve_only_this_sdks_api_version()
    app, client = _in_process_api()
    assert [version.value for version in app.versions.versions] == [API_VERSION]
    with client:
        current = client.get("/health", headers={"Airflow-API-Version": API_VERSION})
        older = every_version.versions.versions[-1].value
        refused = client.get("/health", headers={"Airflow-API-Version": older})
    assert current.status_code == 200, current.text
    assert refused.status_code >= 400
