"""Run several DAGs through Airflow in one process: ``airflow dags test``, without paying
Airflow's start-up once per DAG.

Each DAG is taken from the DAG bag exactly as ``airflow dags test`` takes it and run with
``dag.test()`` (what that command calls): a real DAG run, recorded in the metadata DB,
tasks executed in-process. Must be started with AIRFLOW_HOME and the DAGs folder already
in the environment (see :mod:`social_leadership.airflow_env`), since Airflow reads its
configuration at import.

Prints one machine-readable line per DAG: ``SLW_DAG_RESULT <dag_id> <state> <seconds>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

RESULT_PREFIX = "SLW_DAG_RESULT"


def prepare(pool: str, pool_description: str) -> None:
    """Create or migrate the metadata DB and (re)create the one-slot warehouse pool."""
    from airflow.models.pool import Pool
    from airflow.utils.db import upgradedb

    upgradedb()
    Pool.create_or_update_pool(
        name=pool, slots=1, description=pool_description, include_deferred=False
    )


def run(dag_ids: Sequence[str], logical_date: str | None) -> int:
    import pendulum
    from airflow.cli.commands.dag_command import get_bagged_dag
    from airflow.utils.state import DagRunState

    when = pendulum.parse(logical_date) if logical_date else None
    for dag_id in dag_ids:
        started = time.perf_counter()
        dag = get_bagged_dag(bundle_names=None, dag_id=dag_id)
        dag_run = dag.test(logical_date=when) if when else dag.test()
        state = str(dag_run.state) if dag_run else "missing"
        seconds = time.perf_counter() - started
        print(f"{RESULT_PREFIX} {dag_id} {state} {seconds:.3f}", flush=True)
        if dag_run is None or dag_run.state != DagRunState.SUCCESS:
            return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dag_ids", nargs="*", help="DAG ids, run in this order")
    parser.add_argument("--logical-date", help="ISO timestamp (default: now)")
    parser.add_argument("--prepare-pool", help="migrate the DB and create this one-slot pool")
    args = parser.parse_args(argv)
    if args.prepare_pool:
        prepare(args.prepare_pool, "Single writer to the DuckDB warehouse")
    return run(args.dag_ids, args.logical_date)


if __name__ == "__main__":
    sys.exit(main())
