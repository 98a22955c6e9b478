"""Run the project's DAGs through the real Airflow CLI on a local, SQLite-backed home.

Used by ``make run`` (the demo), the end-to-end tests and the benchmarks, so all three
exercise Airflow exactly as a user's ``airflow dags test`` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from social_leadership.orchestration import WAREHOUSE_POOL
from social_leadership.settings import REPO_ROOT

# Nothing phones home: Airflow's usage data (Scarf), dbt's anonymous stats and version
# check, Great Expectations' analytics.
NO_TELEMETRY = {
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "SCARF_ANALYTICS": "false",
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "GX_ANALYTICS_ENABLED": "false",
}


def airflow_bin() -> str:
    candidate = Path(sys.executable).with_name("airflow")
    return str(candidate) if candidate.exists() else "airflow"


def airflow_environment(airflow_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an Airflow CLI process using this repository's DAGs."""
    env = dict(os.environ)
    env.update(NO_TELEMETRY)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT / "include"), env.get("PYTHONPATH", "")) if p
            ),
        }
    )
    if extra:
        env.update(extra)
    return env


def connection_env(platform: str, base_url: str, token: str | None = None) -> dict[str, str]:
    """An Airflow connection ``slw_<platform>`` given as an AIRFLOW_CONN_* variable."""
    connection: dict[str, str] = {"conn_type": "http", "host": base_url}
    if token:
        connection["password"] = token
    return {f"AIRFLOW_CONN_SLW_{platform.upper()}": json.dumps(connection)}


class AirflowCommandError(RuntimeError):
    def __init__(self, command: list[str], returncode: int, log_path: Path, tail: str):
        self.log_path = log_path
        super().__init__(
            f"`{' '.join(command)}` exited with {returncode}; full log: {log_path}\n{tail}"
        )


@dataclass(frozen=True)
class DagRunResult:
    dag_id: str
    seconds: float
    log_path: Path


def _run(command: list[str], env: dict[str, str], log_path: Path) -> float:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log_path.open("w") as log_file:
        completed = subprocess.run(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=False
        )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        lines = log_path.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "ERROR" in line or "Error" in line][-15:]
        tail = "\n".join(errors or lines[-30:])
        raise AirflowCommandError(command, completed.returncode, log_path, tail)
    return elapsed


def prepare_airflow_home(env: dict[str, str], logs_dir: Path) -> None:
    """Create or migrate the SQLite metadata DB and the one-slot warehouse pool."""
    airflow = airflow_bin()
    _run([airflow, "db", "migrate"], env, logs_dir / "airflow-db-migrate.log")
    _run(
        [airflow, "pools", "set", WAREHOUSE_POOL, "1", "Single writer to the DuckDB warehouse"],
        env,
        logs_dir / "airflow-pools.log",
    )


def run_dag_test(
    dag_id: str, env: dict[str, str], logs_dir: Path, logical_date: str | None = None
) -> DagRunResult:
    """``airflow dags test``: a real DAG run, in-process tasks, recorded in the metadata DB."""
    command = [airflow_bin(), "dags", "test", dag_id]
    if logical_date:
        command.append(logical_date)
    log_path = logs_dir / f"airflow-dags-test-{dag_id}.log"
    return DagRunResult(dag_id, _run(command, env, log_path), log_path)
