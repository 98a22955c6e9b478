"""``make run``: the whole pipeline for today, through real Airflow, against the sandbox API.

Starts the sandbox platform API on a free loopback port, prepares a SQLite-backed Airflow
home, runs ``survey_ingest``, ``platform_metrics`` and ``warehouse_build`` with
``airflow dags test`` (in that order: the same order the asset schedule produces), stops
the sandbox and prints a summary. Safe to run repeatedly: every load replaces its day.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from social_leadership.airflow_env import (
    AirflowCommandError,
    airflow_environment,
    connection_env,
    prepare_airflow_home,
    run_dag_test,
)
from social_leadership.sandbox.server import SandboxServer
from social_leadership.settings import REPO_ROOT, Settings, load_settings
from social_leadership.summary import build_summary

DEMO_DAGS = ("survey_ingest", "platform_metrics", "warehouse_build")
SANDBOX_X_TOKEN = "sandbox-token"  # noqa: S105 - the loopback sandbox's fixed demo token


def default_airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", REPO_ROOT / "airflow_home")).resolve()


def run_pipeline(
    settings: Settings,
    airflow_home: Path,
    *,
    dags: Sequence[str] = DEMO_DAGS,
    logical_date: str | None = None,
    echo: bool = True,
) -> dict[str, float]:
    """Run the DAGs against a fresh sandbox; return seconds per DAG."""
    settings.ensure_dirs()
    timings: dict[str, float] = {}
    with SandboxServer(x_token=SANDBOX_X_TOKEN) as sandbox:
        base_url = sandbox.base_url
        extra = settings.as_env()
        extra.update(connection_env("bluesky", base_url))
        extra.update(connection_env("x", base_url, SANDBOX_X_TOKEN))
        env = airflow_environment(airflow_home, extra)
        started = time.perf_counter()
        prepare_airflow_home(env, settings.logs_dir)
        timings["airflow_setup"] = time.perf_counter() - started
        if echo:
            print(f"sandbox API on {base_url}; Airflow home {airflow_home}", flush=True)
        for dag_id in dags:
            result = run_dag_test(dag_id, env, settings.logs_dir, logical_date)
            timings[dag_id] = result.seconds
            if echo:
                print(
                    f"  {dag_id:<18} ok in {result.seconds:5.1f}s  (log {result.log_path})",
                    flush=True,
                )
    return timings


def main() -> int:
    settings = load_settings()
    airflow_home = default_airflow_home()
    try:
        run_pipeline(settings, airflow_home)
    except AirflowCommandError as exc:
        print(f"pipeline failed: {exc}")
        return 1
    print()
    print(build_summary(settings))
    return 0
