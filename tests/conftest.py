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


# `make test` runs on every core (pytest-xdist, --dist loadgroup): a test using one of these
# session fixtures joins the group of that name, so the session's one demo run is made, read
# and changed (readers first) on one worker, as in a serial run.
SHARED_RUN_GROUPS = {"demo_run": "demo_run", "shared_demo_run": "demo_run"}
# Fixtures shared by a module's (or class's) tests: the module stays on one worker, or each
# worker would make its own.
_SHARED_SCOPES = frozenset({"module", "class", "package"})


def xdist_group(item: pytest.Item) -> str | None:
    """The worker group a test must share (None: any worker will do)."""
    names = set(getattr(item, "fixturenames", ()))
    for fixture, group in SHARED_RUN_GROUPS.items():
        if fixture in names:
            return group
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = fixture_info.name2fixturedefs if fixture_info is not None else {}
    for name in names:
        if any(d.scope in _SHARED_SCOPES for d in definitions.get(name, ())):
            return item.nodeid.split("::", 1)[0]
    return None


# First, so that xdist's own hook sees the groups (it appends them to the test ids).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DBT_BUILD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dbt)
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            _put_group_in_test_id(item, group)


def _put_group_in_test_id(item: pytest.Item, group: str) -> None:
    """What xdist's ``--dist loadgroup`` does on a worker (the controller schedules by the
    ``@group`` suffix of each test id): xdist 3.8 writes ``item._nodeid``, which pytest 9.2 no
    longer reads (the id is ``item._id``), so without this no test would be grouped."""
    if not getattr(item.config.option, "loadgroup", False) or "@" in item.nodeid:
        return
    node_id = getattr(item, "_id", None)
    if node_id is not None and hasattr(node_id, "parse"):
        item._id = node_id.parse(f"{item.nodeid}@{group}")
