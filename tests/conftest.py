"""Shared test set-up: the package lives in include/ (as in the Astro layout)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from slw_testing import PARSE_SEED_VARIABLE, shared_by_workers

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
# Likewise a throw-away data folder: a test that opens a warehouse of its own without
# naming a data folder still spills (DuckDB's temp_directory) under the settings' one,
# which was the repository's data/ (make run's), or the developer's exported SLW_DATA_DIR.
_throwaway_data_dir = tempfile.mkdtemp(prefix="slw-test-data-")
os.environ["SLW_DATA_DIR"] = _throwaway_data_dir
atexit.register(shutil.rmtree, _throwaway_data_dir, ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# A test drops a file and runs its DAG at once; the tests of the wait for a file being
# written set it themselves.
os.environ.setdefault("SLW_INTAKE_SETTLE_SECONDS", "0")

# Airflow sets up logging when first imported, its handler writing to the sys.stderr of
# that moment: first imported by a test that captures its output (capsys), the handler kept
# that test's stream, closed after it, and the next test's log lines printed "--- Logging
# error ---" with a traceback to its own stderr. Imported here, before any test runs.
import airflow  # noqa: E402, F401

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


# dbt's saved parse of the project, made once per test run in the background when the
# selected tests run dbt, and read by every dbt command they start (dbt reads
# DBT_PARTIAL_PARSE_FILE_PATH instead of its target folder's saved parse, and still writes
# its own there). Without it, the first dbt command in each test's new data folder parsed
# the whole project: 2.7 s of CPU against 0.3 s. Until the parse is moved into place
# whole, the file is empty and dbt parses as it did (it refuses a variable naming no file).
# Made with the settings' defaults: a test whose profile differs unsets the variable
# (slw_testing.PARSE_SEED_VARIABLE). The workers of one run (pytest-xdist) share one: the
# first to get there starts it (a cold dbt parse, 6-12 s of CPU), the others read it.
@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or PARSE_SEED_VARIABLE in os.environ:
        return
    markers = ("dbt", "e2e")
    if any(item.get_closest_marker(m) for item in session.items for m in markers):
        shared = _shared_parse_folder(session.config)
        if shared is None:
            _start_parse_seed()
        else:
            _share_parse_seed(shared)


def _shared_parse_folder(config: pytest.Config) -> Path | None:
    """Where the workers of this run share the saved parse: in the run's temporary folder,
    which they share and no worker removes; None in a process that is no worker."""
    factory = getattr(config, "_tmp_path_factory", None)
    if not hasattr(config, "workerinput") or factory is None:
        return None
    return factory.getbasetemp().parent / "dbt_parse"


def _share_parse_seed(folder: Path) -> None:
    """The run's one saved parse: started by the first worker to ask, named to the others."""
    seed = shared_by_workers(
        folder,
        lambda data: _start_parse_seed(data, shared=True),
        lambda seed, record: record.write_text(seed, encoding="utf-8"),
        lambda _, record: record.read_text(encoding="utf-8"),
    )
    # A seed gone (a run sharing another's --basetemp, say) would fail every dbt command.
    os.environ[PARSE_SEED_VARIABLE] = seed if Path(seed).is_file() else _start_parse_seed()


def _start_parse_seed(folder: Path | None = None, *, shared: bool = False) -> str:
    """Start the parse into ``folder`` (a temporary one of this process's when None) and
    name its file in the environment (and return it), empty until the parse is done.
    ``shared`` (other workers read it): this process, should it end first, gives the parse
    a minute to end before it stops it."""
    import shlex

    from social_leadership.dbt_runner import dbt_env, dbt_invocation
    from social_leadership.settings import load_settings

    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="slw-test-dbt-parse-"))
        _at_exit_of_this_process(shutil.rmtree, folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        # Every setting at its default (none of the caller's folders written to).
        for name in [n for n in os.environ if n.startswith("SLW_")]:
            mp.delenv(name)
        mp.setenv("SLW_DATA_DIR", str(folder / "data"))
        settings = load_settings()
        env = dbt_env(settings)
    seed = folder / "partial_parse.msgpack"
    # dbt exits with 2 when DBT_PARTIAL_PARSE_FILE_PATH names no file, and reads an empty
    # one as no saved parse: a dbt command started before the parse is done parses itself.
    seed.touch()
    parse = shlex.join(dbt_invocation(["parse"], settings))
    saved = shlex.quote(str(settings.dbt_target_dir / seed.name))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"{parse} && mv {saved} {shlex.quote(str(seed))}"],
        cwd=settings.data_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # The shell and its dbt, should the session end first.
    if shared:
        _at_exit_of_this_process(_end_or_stop_group, process)
    else:
        _at_exit_of_this_process(_stop_group, process)
    os.environ[PARSE_SEED_VARIABLE] = str(seed)
    return str(seed)


def _at_exit_of_this_process(function, *args, **kwargs) -> None:
    """atexit, but not in a forked child that exits normally (it inherits the handlers)."""
    owner = os.getpid()

    def call() -> None:
        if os.getpid() == owner:
            function(*args, **kwargs)

    atexit.register(call)


def _end_or_stop_group(process: subprocess.Popen, seconds: float = 60) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=seconds)
    _stop_group(process)


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
