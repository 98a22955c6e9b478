"""Shared test set-up: the package lives in include/ (as in the Astro layout)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "include"))

# No telemetry from any tool a test starts.
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DBT_VERSION_CHECK", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("SCARF_ANALYTICS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# Tests that import Airflow in-process get a throw-away home, never the repository's: even
# when one is exported, as `make test` does (the Makefile's AIRFLOW_HOME is `make run`'s).
_throwaway_airflow_home = tempfile.mkdtemp(prefix="slw-test-airflow-")
os.environ["AIRFLOW_HOME"] = _throwaway_airflow_home
# Removed when the session ends, or every test run would leave one behind in /tmp.
atexit.register(shutil.rmtree, _throwaway_airflow_home, ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

# A test reading the session's real dbt build (tests/include/conftest.py) is a `dbt` test
# like one that runs dbt itself (marked in its module): `pytest -m "not dbt"` skips both.
DBT_BUILD_FIXTURES = frozenset({"synthetic_built_warehouse"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DBT_BUILD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dbt)
