"""Cosmos against this project's own per-node view, side by side on the demo warehouse.

Not part of ``make bench``: astronomer-cosmos is not a dependency (README, "dbt in
Airflow", says why). Reproduce in a throw-away environment::

    python3.11 -m venv /tmp/cosmos-venv
    /tmp/cosmos-venv/bin/pip install -r requirements.txt astronomer-cosmos==1.15.1
    /tmp/cosmos-venv/bin/pip install --no-deps --no-build-isolation -e .
    /tmp/cosmos-venv/bin/python bench/compare_cosmos.py

It builds the demo warehouse (``make run``'s three DAGs), then times, in alternating
rounds: (a) `dbt build` alone; (b) this project's dbt stage of ``warehouse_build`` (one
build plus its per-node view) under ``dag.test``, the other tasks marked successful
instead of run; (c) the same dbt project rendered by
Cosmos's ``DbtTaskGroup`` in its default LOCAL mode (one dbt invocation per node, a test
task after each model) under ``dag.test``. (b) and (c) are read from Airflow's metadata
DB: first start to last end of their dbt task instances. Cosmos's WATCHER mode is left
out: it deadlocks under ``dag.test`` (DESIGN.md's facts). Telemetry stays off.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import median
from bench_dbt_in_airflow import NOT_TIMED, dbt_stage_seconds

ROUNDS = 2
NO_TELEMETRY = {
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
}

COSMOS_DAG = '''
"""This project's dbt rendered by Cosmos (compare_cosmos.py): not a project DAG."""
import pendulum
from airflow.sdk import dag
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig

@dag(dag_id="cosmos_dbt", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
     catchup=False)
def cosmos_dbt():
    DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig({project!r}),
        profile_config=ProfileConfig(
            profile_name="social_leadership",
            target_name="dev",
            profiles_yml_filepath={profiles!r},
        ),
        execution_config=ExecutionConfig(dbt_executable_path={dbt!r}),
    )

cosmos_dbt()
'''


def _dbt_executable(folder: Path) -> str:
    """A dbt executable of this interpreter (a wrapper when the venv has no dbt script)."""
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.is_file():
        return str(candidate)
    wrapper = folder / "dbt"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m dbt.cli.main "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return str(wrapper)


def cosmos_stage_seconds(airflow_db: Path) -> tuple[float, int]:
    with sqlite3.connect(airflow_db) as meta:
        rows = meta.execute(
            """
            select start_date, end_date from task_instance
            where dag_id = 'cosmos_dbt' and run_id = (
                select run_id from dag_run where dag_id = 'cosmos_dbt' order by id desc limit 1
            ) and start_date is not null and end_date is not null
            """
        ).fetchall()
    starts = [datetime.fromisoformat(start) for start, _ in rows]
    ends = [datetime.fromisoformat(end) for _, end in rows]
    return (max(ends) - min(starts)).total_seconds(), len(rows)


def main() -> int:
    try:
        import cosmos
    except ImportError:
        print("compare_cosmos: skipped, astronomer-cosmos is not importable (see docstring)")
        return 0
    os.environ.update(NO_TELEMETRY)
    with tempfile.TemporaryDirectory(prefix="slw-compare-cosmos-") as tmp:
        os.environ["SLW_DATA_DIR"] = str(Path(tmp) / "data")
        from social_leadership.dbt_runner import run_dbt
        from social_leadership.demo.run import run_pipeline
        from social_leadership.local_airflow import airflow_environment, run_dags
        from social_leadership.settings import load_settings

        settings = load_settings()
        airflow_home = Path(tmp) / "airflow_home"
        run_pipeline(settings, airflow_home, echo=False)
        ours_env = airflow_environment(airflow_home, {**settings.as_env(), **NO_TELEMETRY})
        cosmos_dags = Path(tmp) / "cosmos_dags"
        cosmos_dags.mkdir()
        (cosmos_dags / "cosmos_dbt.py").write_text(
            COSMOS_DAG.format(
                project=str(settings.dbt_project_dir),
                profiles=str(settings.dbt_profiles_dir / "profiles.yml"),
                dbt=_dbt_executable(Path(tmp)),
            )
        )
        cosmos_env = {**ours_env, "AIRFLOW__CORE__DAGS_FOLDER": str(cosmos_dags)}
        print(f"cosmos {cosmos.__version__}; demo warehouse built", flush=True)
        # Warm-up (untimed): Cosmos parses the project once and caches it.
        run_dags(["cosmos_dbt"], cosmos_env, settings.logs_dir)
        times: dict[str, list[float]] = {"plain": [], "ours": [], "cosmos": []}
        for round_no in range(1, ROUNDS + 1):
            started = time.perf_counter()
            run_dbt(["build"], settings)
            times["plain"].append(time.perf_counter() - started)
            run_dags(["warehouse_build"], ours_env, settings.logs_dir, mark_success=NOT_TIMED)
            ours, ours_tis = dbt_stage_seconds(airflow_home / "airflow.db")
            times["ours"].append(ours)
            run_dags(["cosmos_dbt"], cosmos_env, settings.logs_dir)
            theirs, cosmos_tis = cosmos_stage_seconds(airflow_home / "airflow.db")
            times["cosmos"].append(theirs)
            print(
                f"round {round_no}: dbt build alone {times['plain'][-1]:.1f}s; ours "
                f"{ours:.1f}s ({ours_tis} task instances); Cosmos LOCAL {theirs:.1f}s "
                f"({cosmos_tis} task instances)",
                flush=True,
            )
        plain = median(times["plain"])
        print(
            f"median over plain dbt build: ours {median(times['ours']) / plain:.2f}x, "
            f"Cosmos LOCAL {median(times['cosmos']) / plain:.2f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
