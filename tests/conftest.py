"""Shared test set-up: the package lives in include/ (as in the Astro layout)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

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
