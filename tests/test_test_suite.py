"""The test suite itself: ``make test`` runs every test, prints the 10 slowest, and no test
touches the repository's Airflow home."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_tests_use_a_throw_away_airflow_home_even_when_one_is_exported(tmp_path: Path):
    # `make test` exports AIRFLOW_HOME=airflow_home/ (the Makefile's default for `make run`):
    # a test importing Airflow must still get its own metadata DB, never the user's.
    exported = tmp_path / "airflow_home"
    conftest = REPO_ROOT / "tests" / "conftest.py"
    probe = (
        "import importlib.util, os\n"
        f"spec = importlib.util.spec_from_file_location('c', {str(conftest)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(os.environ['AIRFLOW_HOME'])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "AIRFLOW_HOME": str(exported)},
        capture_output=True,
        text=True,
        check=True,
    )
    home = Path(completed.stdout.strip())
    assert home != exported
    assert home.parent == Path(tempfile.gettempdir())
    assert home.name.startswith("slw-test-airflow-")
    # This very session too.
    assert Path(os.environ["AIRFLOW_HOME"]).name.startswith("slw-test-airflow-")
