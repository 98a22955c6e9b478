"""One demo pipeline run shared by the end-to-end modules that only read it.

A demo run (the DAGs through real Airflow against the sandbox, then a second
``survey_ingest`` run, whose log must land beside the first's) costs a minute and more on a
2-core machine; test_pipeline_e2e, test_monitoring_e2e and test_dbt_nodes_e2e each made
their own. Now they share one, as it was right after those runs:

* a test that changes the run (runs more DAGs on it, breaks its build) is marked
  ``changes_demo_run`` and runs after every other test of the session, so no reader sees
  its change;
* should a reader come after such a test all the same (an explicit order on the command
  line, another plugin's reordering), it gets a new run, never a changed one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from social_leadership.settings import Settings, load_settings

CHANGES_DEMO_RUN = "changes_demo_run"


@dataclass(frozen=True)
class DemoRun:
    """A demo pipeline run: its settings (SLW_DATA_DIR its own), Airflow home and timings;
    and the progress lines of its first (full) pipeline run, each with the moment it reached
    this process (``make run`` prints them), then the moment that run returned."""

    settings: Settings
    airflow_home: Path
    timings: dict[str, float]
    progress: tuple[tuple[float, str], ...]


class SharedDemoRun:
    """The session's demo run, made on first use and again after a test changed it."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._run: DemoRun | None = None
        self._changed = False
        self.runs_made = 0

    def _new_run(self) -> DemoRun:
        from social_leadership.demo.run import run_pipeline

        tmp = self._tmp_path_factory.mktemp("demo_run")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLW_DATA_DIR", str(tmp / "data"))
            settings = load_settings()
            airflow_home = tmp / "airflow_home"
            received: list[tuple[float, str]] = []
            timings = run_pipeline(
                settings,
                airflow_home,
                echo=False,
                progress=lambda line: received.append((time.monotonic(), line)),
            )
            received.append((time.monotonic(), "<run_pipeline returned>"))
            # A second run of one DAG: its logs must land beside the first run's.
            run_pipeline(settings, airflow_home, dags=("survey_ingest",), echo=False)
        self.runs_made += 1
        return DemoRun(settings, airflow_home, timings, tuple(received))

    def unchanged(self) -> DemoRun:
        """The run as the demo runs left it."""
        if self._run is None or self._changed:
            self._run = self._new_run()
            self._changed = False
        return self._run

    def to_change(self) -> DemoRun:
        """The run for a test that changes it (once changed, readers get a new one)."""
        if self._run is None:
            self._run = self._new_run()
        self._changed = True
        return self._run


@pytest.fixture(scope="session")
def shared_demo_run(tmp_path_factory: pytest.TempPathFactory) -> SharedDemoRun:
    return SharedDemoRun(tmp_path_factory)


@pytest.fixture
def demo_run(shared_demo_run: SharedDemoRun, request: pytest.FixtureRequest) -> Iterator[DemoRun]:
    """The shared demo run, its data directory in SLW_DATA_DIR during the test; a test
    marked ``changes_demo_run`` gets it to change."""
    if request.node.get_closest_marker(CHANGES_DEMO_RUN):
        run = shared_demo_run.to_change()
    else:
        run = shared_demo_run.unchanged()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLW_DATA_DIR", str(run.settings.data_dir))
        yield run


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that change the shared demo run go last, in their order."""
    changing = [item for item in items if item.get_closest_marker(CHANGES_DEMO_RUN)]
    if changing:
        items[:] = [item for item in items if item not in changing] + changing
