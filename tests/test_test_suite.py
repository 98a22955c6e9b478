"""The test suite itself: ``make test`` runs every test and prints the 10 slowest; the slow
ones are marked (``-m "not dbt and not e2e"`` skips them); no test touches the repository's
Airflow home; the end-to-end modules share one demo run that no reader sees changed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("variable", "prefix"),
    [("AIRFLOW_HOME", "slw-test-airflow-"), ("SLW_DATA_DIR", "slw-test-data-")],
)
def test_tests_use_a_throw_away_airflow_home_and_data_folder_even_when_exported(
    tmp_path: Path, variable: str, prefix: str
):
    # `make test` exports AIRFLOW_HOME=airflow_home/ (the Makefile's default for `make run`):
    # a test importing Airflow must still get its own metadata DB, never the user's. A test
    # opening a warehouse without naming a data folder spills under the settings' one: never
    # the user's exported SLW_DATA_DIR, nor the repository's data/ (make run's).
    exported = tmp_path / "exported"
    conftest = REPO_ROOT / "tests" / "conftest.py"
    probe = (
        "import importlib.util, os, sys\n"
        # As pytest loads it: its folder first on sys.path (it imports slw_testing).
        f"sys.path.insert(0, {str(conftest.parent)!r})\n"
        f"spec = importlib.util.spec_from_file_location('c', {str(conftest)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        f"print(os.environ[{variable!r}])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, variable: str(exported)},
        capture_output=True,
        text=True,
        check=True,
    )
    folder = Path(completed.stdout.strip())
    assert folder != exported
    assert folder.parent == Path(tempfile.gettempdir())
    assert folder.name.startswith(prefix)
    # This very session too.
    assert Path(os.environ[variable]).name.startswith(prefix)


def make_test_command() -> list[str]:
    """The pytest command line `make test` runs (printed by make, not run)."""
    dry_run = subprocess.run(
        ["make", "--dry-run", "--always-make", "test"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    [command] = [line for line in dry_run.splitlines() if "/pytest" in line]
    return command.split()


def test_make_test_prints_the_10_slowest_tests():
    assert "--durations=10" in make_test_command()


def _e2e_conftest():
    """tests/e2e/conftest.py, imported under its own name (every conftest is `conftest`)."""
    import importlib.util

    path = REPO_ROOT / "tests" / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location("e2e_conftest", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_shared_demo_run_is_made_once_and_again_only_after_a_change(monkeypatch, tmp_path):
    e2e = _e2e_conftest()
    shared = e2e.SharedDemoRun(tmp_path_factory=None)
    made = []

    def new_run():
        made.append(
            e2e.DemoRun(
                settings=None, airflow_home=tmp_path / str(len(made)), timings={}, progress=()
            )
        )
        return made[-1]

    monkeypatch.setattr(shared, "_new_run", new_run)
    first = shared.unchanged()
    assert shared.unchanged() is first
    assert len(made) == 1
    # A test that changes it gets that same run; a reader after it gets a new one.
    assert shared.to_change() is first
    assert shared.to_change() is first
    second = shared.unchanged()
    assert second is not first
    assert shared.unchanged() is second
    assert len(made) == 2


class _FakeServer:
    def __init__(self) -> None:
        self.stopped = False

    def terminate(self) -> None:
        self.stopped = True

    def wait(self, timeout: float) -> int:
        return 0


def test_the_demo_runs_readers_share_one_api_server_stopped_before_a_change(monkeypatch, tmp_path):
    e2e = _e2e_conftest()
    shared = e2e.SharedDemoRun(tmp_path_factory=None)
    runs = []

    def new_run():
        runs.append(
            e2e.DemoRun(
                settings=None, airflow_home=tmp_path / str(len(runs)), timings={}, progress=()
            )
        )
        return runs[-1]

    servers = []

    def start(run):
        servers.append((run, _FakeServer()))
        return servers[-1][1], e2e.ApiServer(f"http://127.0.0.1/{len(servers)}", "token")

    monkeypatch.setattr(shared, "_new_run", new_run)
    monkeypatch.setattr(shared, "_start_api_server", start)
    first = shared.api_server()
    # The monitoring and dbt-nodes modules: one server.
    assert shared.api_server() is first
    assert [(run, server.stopped) for run, server in servers] == [(runs[0], False)]
    # A test changing the run stops it; a reader after that gets one on the new run.
    shared.to_change()
    assert servers[0][1].stopped
    second = shared.api_server()
    assert second is not first
    assert servers[1][0] is runs[1]
    assert shared.api_servers_started == 2
    shared.stop_api_server()
    assert servers[1][1].stopped


class _Item:
    def __init__(self, name: str, changes: bool) -> None:
        self.name = name
        self.changes = changes

    def get_closest_marker(self, name: str):
        return name if self.changes and name == "changes_demo_run" else None


def test_tests_changing_the_demo_run_are_moved_last_in_their_order():
    e2e = _e2e_conftest()
    items = [
        _Item("read_1", False),
        _Item("change_1", True),
        _Item("read_2", False),
        _Item("change_2", True),
        _Item("other", False),
    ]
    e2e.pytest_collection_modifyitems(items)
    assert [item.name for item in items] == ["read_1", "read_2", "other", "change_1", "change_2"]


def test_in_this_session_no_reader_of_the_demo_run_comes_after_a_test_changing_it(
    request: pytest.FixtureRequest,
):
    # The session's real order (all of `make test`'s tests when run by it).
    seen_change = False
    for item in request.session.items:
        changes = item.get_closest_marker("changes_demo_run") is not None
        reads = {"demo_run", "shared_demo_run"} & set(getattr(item, "fixturenames", ()))
        assert not (seen_change and reads and not changes), item.nodeid
        seen_change = seen_change or changes


# What runs dbt: the runner, the build task, and Airflow runs of the DAGs (which build).
DBT_ENTRY_POINTS = frozenset({"run_dbt", "dbt_build_task", "run_pipeline", "run_dags"})
# Fixtures of a conftest.py that build for real (a test module's own are followed below).
DBT_FIXTURES = frozenset(
    {"synthetic_built_warehouse", "copied_built_warehouse", "demo_run", "shared_demo_run"}
)


def _tests_reaching_dbt(path: Path) -> set[str]:
    """Names of the test functions of a module that run dbt: by a call or a fixture, directly
    or through the module's own functions."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }

    def uses(function: ast.FunctionDef) -> set[str]:
        called = {
            node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            for node in ast.walk(function)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
        }
        return called | {argument.arg for argument in function.args.args}

    reaching: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, function in functions.items():
            if name not in reaching and uses(function) & (
                DBT_ENTRY_POINTS | DBT_FIXTURES | reaching
            ):
                reaching.add(name)
                changed = True
    return {name for name in reaching if name.startswith("test_")}


def test_every_test_running_dbt_or_the_dags_is_marked_dbt_or_e2e():
    # `pytest -m "not dbt and not e2e"` (the quick local run) must run none of them.
    reaching = {
        f"{path.relative_to(REPO_ROOT).as_posix()}::{name}"
        for path in sorted((REPO_ROOT / "tests").rglob("test_*.py"))
        for name in _tests_reaching_dbt(path)
    }
    modules = sorted({test.split("::")[0] for test in reaching})
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    quick = subprocess.run(
        [*collect, "-m", "not dbt and not e2e", *modules],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,  # a module that fails to import must not pass for one without dbt tests
    ).stdout
    collected = {line.split("[")[0] for line in quick.splitlines() if "::" in line}
    assert reaching & collected == set()
    # The check sees them: one through a module function, one through a module fixture.
    dbt_tests = REPO_ROOT / "tests" / "include"
    assert "test_a_renamed_or_dropped_account_leaves_no_stale_series" in _tests_reaching_dbt(
        dbt_tests / "test_dbt_edge_cases.py"
    )
    assert "test_incremental_builds_equal_a_full_refresh" in _tests_reaching_dbt(
        dbt_tests / "test_dbt_incremental.py"
    )


def test_make_test_runs_on_every_core_with_shared_runs_kept_on_one_worker():
    command = make_test_command()
    assert "--numprocesses=auto" in command
    assert "--dist=loadgroup" in command


# Records, in the pytest session it is loaded into, each test's xdist group (collection) or
# the worker that ran it (run), one JSON line per test.
_RECORDER = """
import json, os

def pytest_collection_finish(session):
    path = os.environ.get("SLW_TEST_GROUPS_FILE")
    if path:
        with open(path, "w") as out:
            for item in session.items:
                marks = [m.args[0] for m in item.iter_markers("xdist_group")]
                out.write(json.dumps([item.nodeid, sorted(item.fixturenames), marks]) + "\\n")

def pytest_runtest_setup(item):
    path = os.environ.get("SLW_TEST_WORKERS_FILE")
    if path:
        with open(path, "a") as out:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "")
            out.write(json.dumps([item.nodeid, worker]) + "\\n")
"""


def _pytest_with_recorder(tmp_path: Path, args: list[str], **files: Path):
    (tmp_path / "slw_recorder.py").write_text(_RECORDER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO_ROOT / "include")])
    env.update({name: str(path) for name, path in files.items()})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "slw_recorder", "-p", "no:cacheprovider", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def test_readers_of_a_shared_run_or_module_fixture_are_given_one_xdist_group(tmp_path: Path):
    import json

    groups_file = tmp_path / "groups.jsonl"
    _pytest_with_recorder(
        tmp_path,
        ["--collect-only", "-q", "tests/e2e", "tests/include/test_formatting.py"],
        SLW_TEST_GROUPS_FILE=groups_file,
    )
    tests = [json.loads(line) for line in groups_file.read_text().splitlines()]
    by_module: dict[str, set[str]] = {}
    for nodeid, fixtures, groups in tests:
        module = nodeid.split("::")[0]
        if {"demo_run", "shared_demo_run"} & set(fixtures):
            # The pipeline, monitoring and dbt-nodes modules: one demo run, one worker.
            assert groups == ["demo_run"], nodeid
        elif module == "tests/e2e/test_alerts_e2e.py":  # a module-scoped Airflow run
            assert groups == [module], nodeid
        elif module == "tests/include/test_formatting.py":  # nothing shared: any worker
            assert groups == [], nodeid
        by_module.setdefault(module, set()).update(groups)
    assert {
        "tests/e2e/test_pipeline_e2e.py",
        "tests/e2e/test_monitoring_e2e.py",
        "tests/e2e/test_dbt_nodes_e2e.py",
    } <= {module for module, groups in by_module.items() if groups == {"demo_run"}}


def test_under_xdist_a_modules_shared_fixture_is_used_on_one_worker(tmp_path: Path):
    # test_secrets.py: 18 tests read a module-scoped sandbox server, 12 use none.
    import json

    workers_file = tmp_path / "workers.jsonl"
    _pytest_with_recorder(
        tmp_path,
        ["--numprocesses=2", "--dist=loadgroup", "tests/include/platforms/test_secrets.py"],
        SLW_TEST_WORKERS_FILE=workers_file,
    )
    ran = [json.loads(line) for line in workers_file.read_text().splitlines()]
    assert len(ran) == 30
    grouped = {worker for nodeid, worker in ran if nodeid.endswith("@" + nodeid.split("::")[0])}
    assert len([1 for nodeid, _ in ran if "@" in nodeid]) == 18
    assert len(grouped) == 1


def _make_slowly(data_dir: Path) -> str:
    import time

    with (data_dir.parent / "makers.txt").open("a") as makers:
        makers.write(f"{os.getpid()}\n")
    time.sleep(0.5)  # long enough for the other process to find the lock held
    data_dir.mkdir()
    return f"made in {data_dir}"


def _share(root: Path, results: Path) -> None:
    from slw_testing import shared_by_workers

    shared = shared_by_workers(
        root,
        _make_slowly,
        lambda made, path: path.write_text(made),
        lambda data_dir, path: path.read_text(),
    )
    with results.open("a") as out:
        out.write(shared + "\n")


def test_the_synthetic_build_is_made_once_for_all_workers(tmp_path: Path):
    import multiprocessing

    root = tmp_path / "synthetic_build"
    results = tmp_path / "results.txt"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_share, args=(root, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert len((root / "makers.txt").read_text().splitlines()) == 1
    assert results.read_text().splitlines() == [f"made in {root / 'data'}"] * 3


@pytest.mark.dbt
def test_a_session_running_dbt_reads_one_saved_parse_made_in_the_background():
    import time

    import msgpack
    from slw_testing import PARSE_SEED_VARIABLE

    # Set by tests/conftest.py when the selected tests run dbt (this one is marked dbt).
    seed = Path(os.environ[PARSE_SEED_VARIABLE])
    deadline = time.monotonic() + 120
    # Empty until the background parse is moved into place whole.
    while seed.stat().st_size == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert seed.stat().st_size > 0, "the shared dbt parse was not made within 120 s"
    # dbt's saved parse of the repository's project, moved into place whole.
    saved = msgpack.unpackb(seed.read_bytes(), strict_map_key=False)
    assert "model.social_leadership.fct_executive_reach_daily" in saved["nodes"]


@pytest.mark.dbt
def test_a_dbt_command_started_before_the_shared_parse_is_made_parses_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from slw_testing import PARSE_SEED_VARIABLE

    from social_leadership.dbt_runner import run_dbt
    from social_leadership.settings import load_settings

    # tests/conftest.py names the file before the background parse has made it.
    assert Path(os.environ[PARSE_SEED_VARIABLE]).is_file()
    placeholder = tmp_path / "partial_parse.msgpack"
    placeholder.touch()
    monkeypatch.setenv(PARSE_SEED_VARIABLE, str(placeholder))
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))

    result = run_dbt(["ls", "--resource-type", "seed"], load_settings())

    assert result.returncode == 0
    assert "social_leadership.platforms" in result.output_tail
    assert (load_settings().dbt_target_dir / "partial_parse.msgpack").stat().st_size > 0


def test_the_shared_parse_file_exists_empty_before_its_background_parse_ends(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
):
    from slw_testing import PARSE_SEED_VARIABLE

    conftest = _conftest(pytestconfig)
    started: list[list[str]] = []

    class NotDoneYet:
        """The background parse, started but not ended."""

        pid = -1

        def __init__(self, args: list[str], **_: object) -> None:
            started.append(args)

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(conftest.subprocess, "Popen", NotDoneYet)
    monkeypatch.setenv(PARSE_SEED_VARIABLE, "restored after the test")

    conftest._start_parse_seed()

    seed = Path(os.environ[PARSE_SEED_VARIABLE])
    assert seed.is_file()
    assert seed.stat().st_size == 0
    assert " parse " in started[0][-1]
    assert started[0][-1].endswith(f"{seed}")


def _conftest(pytestconfig: pytest.Config):
    conftest_path = str(REPO_ROOT / "tests" / "conftest.py")
    return next(
        plugin
        for plugin in pytestconfig.pluginmanager.get_plugins()
        if getattr(plugin, "__file__", None) == conftest_path
    )


def _name_shared_parse(conftest, folder: Path, results: Path) -> None:
    from slw_testing import PARSE_SEED_VARIABLE

    os.environ.pop(PARSE_SEED_VARIABLE, None)
    conftest._share_parse_seed(folder)
    with results.open("a") as out:
        out.write(os.environ[PARSE_SEED_VARIABLE] + "\n")


def test_the_workers_of_a_run_share_one_background_parse(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import multiprocessing

    from slw_testing import PARSE_SEED_VARIABLE

    conftest = _conftest(pytestconfig)
    starts = tmp_path / "starts.txt"

    class NotDoneYet:
        """The background parse, started (and counted) but not ended."""

        pid = -1

        def __init__(self, args: list[str], **_: object) -> None:
            with starts.open("a") as out:
                out.write(args[-1] + "\n")

        def poll(self) -> int:
            return 0

        def wait(self, timeout: float | None = None) -> int:
            return 0

    monkeypatch.setattr(conftest.subprocess, "Popen", NotDoneYet)
    monkeypatch.setenv(PARSE_SEED_VARIABLE, "restored after the test")
    folder = tmp_path / "dbt_parse"
    results = tmp_path / "results.txt"
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_name_shared_parse, args=(conftest, folder, results))
        for _ in range(3)
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()

    assert [worker.exitcode for worker in workers] == [0, 0, 0]
    assert len(starts.read_text().splitlines()) == 1
    named = results.read_text().splitlines()
    assert named == [str(folder / "data" / "partial_parse.msgpack")] * 3
    assert Path(named[0]).is_file()


@pytest.mark.parametrize(
    ("moment", "needed", "waited"),
    [
        ("2026-12-04T23:58:00+00:00", 300, 121.0),  # two minutes left: wait past midnight
        ("2026-12-05T01:58:00+01:00", 300, 0.0),  # 00:58 UTC: the offset is not the day
        ("2026-12-04T23:50:00+00:00", 300, 0.0),  # ten minutes left, five needed
        ("2026-12-04T23:59:59.500000+00:00", 1, 1.5),
    ],
)
def test_a_same_day_run_waits_out_a_coming_midnight_only_when_it_would_cross_it(
    moment: str, needed: float, waited: float
):
    from datetime import datetime

    from slw_testing import clear_of_midnight

    slept: list[float] = []
    assert clear_of_midnight(
        needed, now=lambda: datetime.fromisoformat(moment), sleep=slept.append
    ) == (waited)
    assert slept == ([waited] if waited else [])
