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

Readers of Airflow's REST API (test_monitoring_e2e, test_dbt_nodes_e2e) share one
``airflow api-server`` on the unchanged run (:meth:`SharedDemoRun.api_server`), stopped
before a test changes the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from slw_testing import clear_of_midnight, free_port

from social_leadership.settings import Settings, load_settings

CHANGES_DEMO_RUN = "changes_demo_run"
# Time enough for the demo's runs on a slow, busy machine (a minute or two here).
DEMO_RUN_SECONDS = 600


@dataclass(frozen=True)
class DemoRun:
    """A demo pipeline run: its settings (SLW_DATA_DIR its own), Airflow home and timings;
    and the progress lines of its first (full) pipeline run, each with the moment it reached
    this process (``make run`` prints them), then the moment that run returned."""

    settings: Settings
    airflow_home: Path
    timings: dict[str, float]
    progress: tuple[tuple[float, str], ...]


@dataclass(frozen=True)
class ApiServer:
    """An ``airflow api-server`` on loopback reading a demo run's Airflow home; ``token``
    is the admin's, logged in as README says (the generated password file)."""

    base_url: str
    token: str


def _login(base_url: str, airflow_home: Path, server: subprocess.Popen, log: Path) -> str:
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + 120
    while True:
        try:
            ready = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=5).is_success
        except httpx.TransportError:
            ready = False
        if ready and passwords.is_file():
            break
        if server.poll() is not None or time.monotonic() > deadline:
            raise TimeoutError(f"airflow api-server did not come up: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    password = json.loads(passwords.read_text())["admin"]
    response = httpx.post(
        f"{base_url}/auth/token", json={"username": "admin", "password": password}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access_token"]


def start_api_server(run: DemoRun) -> tuple[subprocess.Popen, ApiServer]:
    from social_leadership.local_airflow import airflow_environment

    port = free_port()
    log_path = run.settings.logs_dir / "api-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("airflow")),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=airflow_environment(run.airflow_home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        return server, ApiServer(base_url, _login(base_url, run.airflow_home, server, log_path))
    except BaseException:
        server.terminate()
        server.wait(timeout=30)
        raise


class SharedDemoRun:
    """The session's demo run, made on first use and again after a test changed it; and
    one API server on it for the tests that read the run through Airflow's REST API."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._run: DemoRun | None = None
        self._changed = False
        self.runs_made = 0
        self._api: tuple[DemoRun, subprocess.Popen, ApiServer] | None = None
        self.api_servers_started = 0

    def api_server(self) -> ApiServer:
        """The API server on the unchanged run (started on first use)."""
        run = self.unchanged()
        if self._api is None or self._api[0] is not run:
            self.stop_api_server()
            server, api = self._start_api_server(run)
            self._api = (run, server, api)
            self.api_servers_started += 1
        return self._api[2]

    def _start_api_server(self, run: DemoRun) -> tuple[subprocess.Popen, ApiServer]:
        return start_api_server(run)

    def stop_api_server(self) -> None:
        if self._api is not None:
            _, server, _ = self._api
            self._api = None
            server.terminate()
            server.wait(timeout=30)

    def _new_run(self) -> DemoRun:
        from social_leadership.demo.run import run_pipeline

        tmp = self._tmp_path_factory.mktemp("demo_run")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLW_DATA_DIR", str(tmp / "data"))
            settings = load_settings()
            airflow_home = tmp / "airflow_home"
            received: list[tuple[float, str]] = []
            # Its platforms load today's counts (a run crossing midnight would load none).
            clear_of_midnight(DEMO_RUN_SECONDS)
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
        """The run for a test that changes it (once changed, readers get a new one); its
        API server is stopped first: no reader is left to use it."""
        self.stop_api_server()
        if self._run is None:
            self._run = self._new_run()
        self._changed = True
        return self._run


@pytest.fixture(scope="session")
def shared_demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedDemoRun]:
    shared = SharedDemoRun(tmp_path_factory)
    try:
        yield shared
    finally:
        shared.stop_api_server()


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
