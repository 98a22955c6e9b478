"""Where slw's Airflow runs keep their home (local_airflow.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from social_leadership.local_airflow import default_airflow_home


@pytest.mark.parametrize("value", ["~/airflow", "$SLW_TEST_BASE/airflow", "${SLW_TEST_BASE}/af"])
def test_airflow_home_is_expanded_as_airflow_expands_it(tmp_path, monkeypatch, value):
    # An env file or a compose env_file passes "~/airflow" unexpanded: taken as it was, the
    # runs went to <cwd>/~/airflow while `airflow` itself read $HOME/airflow.
    from airflow.configuration import get_airflow_home

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SLW_TEST_BASE", str(tmp_path / "base"))
    monkeypatch.setenv("AIRFLOW_HOME", value)
    monkeypatch.chdir(tmp_path)

    home = default_airflow_home()

    assert home == Path(get_airflow_home()).resolve()
    assert "~" not in str(home)
    assert "$" not in str(home)
