"""The local Airflow runner's SQLite metadata DB commits without waiting for the disk."""

from __future__ import annotations

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
