"""The pipeline on Celery workers and a DuckLake warehouse, for real (a ``scale`` test).

``make test-scale`` runs it (SLW_TEST_SCALE=1): PostgreSQL (Airflow's metadata DB and the
DuckLake catalog) and Redis (the Celery broker) from the system's packages, an Airflow
API server, scheduler and DAG processor and two ``airflow celery worker`` processes from
the venv, all on loopback in throw-away folders, with the sandbox API for the platforms.
It runs ``platform_metrics`` and ``survey_ingest``, then ``warehouse_build``, kills one
worker (SIGKILL, its whole process group) while it runs an extraction, and asserts that
tasks ran on both workers, the killed task was retried on the other and its DAG run
succeeded, raw and marts have each key once, and the marts equal a DuckDB-file build
(the embedded default) of the same raw rows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg2
import pytest
from scale_servers import Postgres, marts, postgres_server, redis_server
from slw_testing import PARSE_SEED_VARIABLE, clear_of_midnight, free_port

from social_leadership.dbt_runner import run_dbt
from social_leadership.local_airflow import airflow_environment
from social_leadership.orchestration import WAREHOUSE_POOL
from social_leadership.sandbox.server import SandboxServer
from social_leadership.settings import Settings, load_settings
from social_leadership.warehouse import connect

pytestmark = [
    pytest.mark.scale,
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("SLW_TEST_SCALE") != "1",
        reason="starts PostgreSQL, Redis, Airflow and two Celery workers: "
        "make test-scale (SLW_TEST_SCALE=1) runs it",
    ),
]

DAGS = ("platform_metrics", "survey_ingest", "warehouse_build")
WORKERS = ("worker-a", "worker-b")
# The extraction the test kills a worker under: the sandbox holds its first answer back.
KILLED_TASK = "extract_youtube"
HOLD_SECONDS = 40
RUN_TIMEOUT = 420

# task_instance.hostname is the name Airflow's hostname_callable gives: each worker's own.
HOSTNAME_MODULE = """
import os
import socket


def hostname():
    return os.environ.get("SLW_SCALE_WORKER") or socket.getfqdn()
"""


@dataclass
class Deployment:
    """What the test started: the metadata DB, the lake's settings, the worker processes."""

    postgres: Postgres
    settings: Settings
    env: dict[str, str]
    home: Path
    workers: dict[str, subprocess.Popen]
    killed: str | None = None

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        db = psycopg2.connect(
            host="127.0.0.1",
            port=self.postgres.port,
            user=self.postgres.user,
            password=self.postgres.password,
            dbname="airflow",
        )
        try:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            db.close()

    def airflow(self, *args: str) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def _start(
    name: str, args: list[str], env: dict[str, str], logs: Path, procs: dict
) -> subprocess.Popen:
    log = (logs / f"{name}.log").open("w")
    # Its own process group: the whole worker (pool children, task processes) dies at once.
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "airflow"), *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs[name] = process
    return process


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        # Whatever is left of the group (a task process, a gunicorn child).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait(what: str, check, timeout: float, deployment: Deployment, logs: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    states = deployment.query(
        "select dag_id, run_id, task_id, try_number, state, hostname from task_instance "
        "order by dag_id, task_id"
    )
    tails = "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        for log in sorted(logs.glob("*.log"))
    )
    pytest.fail(f"timed out waiting for {what}; task instances:\n{states}\n{tails}")


def _run_state(deployment: Deployment, dag_id: str) -> str | None:
    rows = deployment.query("select state from dag_run where dag_id = %s", (dag_id,))
    states = {state for (state,) in rows}
    if states and states <= {"success", "failed"}:
        return "failed" if "failed" in states else "success"
    return None


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    started = time.monotonic()
    password = secrets.token_urlsafe(16)
    folder = Path(tempfile.mkdtemp(prefix="slw-scale-"))
    processes: dict[str, subprocess.Popen] = {}
    # dbt's own saved parse in the workers: the lake's profile is not the shared parse's
    # (tests/conftest.py).
    shared_parse = os.environ.pop(PARSE_SEED_VARIABLE, None)
    try:
        with (
            postgres_server(("airflow", "slw_lake"), password) as postgres,
            redis_server() as redis_port,
            SandboxServer() as sandbox,
        ):
            data_dir, home, logs = folder / "data", folder / "airflow_home", folder / "logs"
            logs.mkdir()
            (folder / "hooks").mkdir()
            (folder / "hooks" / "scale_hostname.py").write_text(HOSTNAME_MODULE)
            os.environ.update(
                {
                    "SLW_DATA_DIR": str(data_dir),
                    "SLW_WAREHOUSE_BACKEND": "ducklake",
                    "SLW_DUCKLAKE_CATALOG": postgres.catalog("slw_lake"),
                    "SLW_DUCKLAKE_DATA_PATH": str(data_dir / "shared" / "lake"),
                    "PGPASSWORD": password,
                }
            )
            settings = load_settings()
            settings.ensure_dirs()
            api_port = free_port()
            extra = {
                **settings.as_env(),
                **sandbox.connection_env(),
                "PGPASSWORD": password,
                "SLW_TASK_RETRY_DELAY_SECONDS": "1",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.sqlalchemy_url("airflow"),
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + postgres.sqlalchemy_url("airflow"),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                # A message is acknowledged once its task ended: a lost worker's is not lost.
                "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "scale_hostname.hostname",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                    f"http://127.0.0.1:{api_port}/execution/"
                ),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                # Runs start when triggered (the scheduled ones would race them), and the
                # test triggers warehouse_build once both its inputs landed.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                # A task whose worker vanished is failed (and retried) within seconds.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            }
            env = airflow_environment(home, extra)
            env["PYTHONPATH"] = os.pathsep.join([str(folder / "hooks"), env["PYTHONPATH"]])
            deployment = Deployment(postgres, settings, env, home, {})
            deployment.airflow("db", "migrate")
            deployment.airflow("pools", "set", WAREHOUSE_POOL, "1", "single writer")
            _start("api-server", ["api-server"], env, logs, processes)
            _start("scheduler", ["scheduler"], env, logs, processes)
            _start("dag-processor", ["dag-processor"], env, logs, processes)
            for worker in WORKERS:
                worker_env = {**env, "SLW_SCALE_WORKER": worker}
                args = ["celery", "worker", "--celery-hostname", f"{worker}@%h"]
                args += ["--skip-serve-logs"]
                deployment.workers[worker] = _start(worker, args, worker_env, logs, processes)
            print(f"servers and workers started in {time.monotonic() - started:.0f}s")

            _wait(
                "the DAGs to be parsed",
                lambda: (
                    len(
                        deployment.query(
                            "select dag_id from dag where dag_id = any(%s) and not is_stale",
                            (list(DAGS),),
                        )
                    )
                    == len(DAGS)
                ),
                180,
                deployment,
                logs,
            )
            sandbox.add_fault("slow", platform="youtube", delay_seconds=HOLD_SECONDS)
            # The platform run loads today's counts: it may not cross midnight (UTC).
            clear_of_midnight(RUN_TIMEOUT)
            for dag_id in DAGS[:2]:
                deployment.airflow("dags", "trigger", dag_id)

            def held_extraction() -> str | None:
                rows = deployment.query(
                    "select hostname from task_instance where task_id = %s and state = 'running'"
                    " and hostname = any(%s)",
                    (KILLED_TASK, list(WORKERS)),
                )
                return rows[0][0] if rows else None

            victim = _wait(f"{KILLED_TASK} to run", held_extraction, 240, deployment, logs)
            os.killpg(deployment.workers[victim].pid, signal.SIGKILL)
            deployment.workers[victim].wait()
            deployment.killed = victim
            print(f"killed {victim} at {time.monotonic() - started:.0f}s")
            for dag_id in DAGS[:2]:
                _wait(
                    f"{dag_id} to end",
                    lambda d=dag_id: _run_state(deployment, d),
                    RUN_TIMEOUT,
                    deployment,
                    logs,
                )
            deployment.airflow("dags", "trigger", "warehouse_build")
            _wait(
                "warehouse_build to end",
                lambda: _run_state(deployment, "warehouse_build"),
                RUN_TIMEOUT,
                deployment,
                logs,
            )
            print(f"the three DAGs ran by {time.monotonic() - started:.0f}s")
            yield deployment
    finally:
        _stop(processes)
        for name in (
            "SLW_DATA_DIR",
            "SLW_WAREHOUSE_BACKEND",
            "SLW_DUCKLAKE_CATALOG",
            "SLW_DUCKLAKE_DATA_PATH",
            "PGPASSWORD",
        ):
            os.environ.pop(name, None)
        if shared_parse is not None:
            os.environ[PARSE_SEED_VARIABLE] = shared_parse
        shutil.rmtree(folder, ignore_errors=True)
        print(f"deployment up and down in {time.monotonic() - started:.0f}s")


def test_every_dag_run_succeeded(deployment: Deployment) -> None:
    rows = deployment.query("select dag_id, state from dag_run order by dag_id")
    assert rows == [(dag_id, "success") for dag_id in sorted(DAGS)]


def test_tasks_ran_on_both_workers(deployment: Deployment) -> None:
    hosts = deployment.query(
        "select distinct hostname from task_instance where hostname is not null "
        "union select distinct hostname from task_instance_history where hostname is not null"
    )
    assert {host for (host,) in hosts} == set(WORKERS)


def test_the_killed_workers_task_was_retried_on_the_other(deployment: Deployment) -> None:
    survivor = next(worker for worker in WORKERS if worker != deployment.killed)
    [(state, try_number, hostname)] = deployment.query(
        "select state, try_number, hostname from task_instance where task_id = %s",
        (KILLED_TASK,),
    )
    assert (state, hostname) == ("success", survivor)
    assert try_number >= 2
    earlier = deployment.query(
        "select hostname, state from task_instance_history where task_id = %s",
        (KILLED_TASK,),
    )
    assert (deployment.killed, "failed") in earlier


def test_raw_and_marts_hold_each_key_once(deployment: Deployment) -> None:
    with connect(deployment.settings.warehouse_path, read_only=True) as con:
        doubled = con.execute(
            "select platform, snapshot_date, account_handle, source, count(*) "
            "from raw.platform_metrics "
            "group by all having count(*) > 1"
        ).fetchall()
        assert doubled == []
        per_platform = dict(
            con.execute(
                "select platform, count(*) from raw.platform_metrics "
                "where source = 'api' group by all"
            ).fetchall()
        )
        rostered = dict(
            con.execute(
                "select platform, count(distinct account_handle) from raw.roster_accounts "
                "group by all"
            ).fetchall()
        )
        # Nothing lost: every rostered account of every API platform has its row today,
        # the killed extraction's (youtube) too.
        assert per_platform["youtube"] == rostered["youtube"]
        assert per_platform == {p: rostered[p] for p in per_platform}
        for table, rows in marts(con).items():
            assert len(rows) == len(set(rows)), table


@pytest.mark.dbt
def test_the_marts_equal_the_embedded_defaults(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dbt build on a DuckDB file (the embedded default) of the lake's raw rows."""
    lake = deployment.settings
    # A data folder of its own: the deployment's records that its warehouse is a lake.
    embedded = replace(
        lake,
        warehouse_backend="duckdb",
        data_dir=tmp_path / "data",
        warehouse_path=tmp_path / "warehouse.duckdb",
        logs_dir=tmp_path / "logs",
        dbt_target_dir=tmp_path / "target",
    )
    with connect(embedded.warehouse_path, settings=embedded) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'audit') and table_type = 'BASE TABLE'"
        ).fetchall()
    with connect(lake.warehouse_path, read_only=True, settings=lake) as con:
        con.execute(f"attach '{embedded.warehouse_path}' as embedded")
        for schema, table in tables:
            con.execute(f"insert into embedded.{schema}.{table} select * from {schema}.{table}")
        con.execute("detach embedded")
        expected_from_lake = marts(con)
    build = run_dbt(["build"], embedded, log_path=embedded.logs_dir / "dbt_build.log")
    assert build.returncode == 0, build.output_tail
    with connect(embedded.warehouse_path, read_only=True, settings=embedded) as con:
        assert marts(con) == expected_from_lake
    assert expected_from_lake
    assert all(expected_from_lake.values())
