"""Where slw's Airflow runs keep their home (local_airflow.py)."""

from __future__ import annotations

import os
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


def test_slw_run_read_by_a_reader_that_goes_away_runs_to_its_end(tmp_path):
    # `slw run | head`: the first progress line printed after head ended raised; slw stopped
    # reading, the Airflow process died at its next write, its run left "running".
    import subprocess
    import sys
    import textwrap

    events = tmp_path / "events.py"
    events.write_text(
        textwrap.dedent(
            """
            import json, time
            for number in range(40):
                print("SLW_PROGRESS " + json.dumps({"event": "note", "text": f"n{number}"}))
                print(f"plain line {number}", flush=True)
                time.sleep(0.01)
            print("the end", flush=True)
            """
        )
    )
    runner = textwrap.dedent(
        f"""
        import functools, sys
        from pathlib import Path
        from social_leadership.local_airflow import _run
        _run([sys.executable, {str(events)!r}], {{}}, Path({str(tmp_path / "run.log")!r}),
             functools.partial(print, flush=True))
        print("after the run", flush=True)
        """
    )
    slw = subprocess.Popen(
        [sys.executable, "-c", runner],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "include")},
    )
    assert slw.stdout is not None
    slw.stdout.readline()
    slw.stdout.close()  # the reader is gone

    _, err = slw.communicate(timeout=60)

    assert slw.returncode == 0, err.decode()
    assert (tmp_path / "run.log").read_text().endswith("plain line 39\nthe end\n")
