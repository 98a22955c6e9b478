"""A long-lived Airflow process for benchmarks that run DAGs round after round.

Started (by :class:`AirflowWorker`) with the environment of
:func:`social_leadership.local_airflow.airflow_environment`, it migrates the metadata DB
and creates the warehouse pool once, then reads one JSON request per line from stdin,
``{"dag_ids": [...], "mark_success": "regex or null"}``, runs those DAGs as
:mod:`social_leadership.local_airflow_process` does (``dag.test()``, tasks in-process,
per-task log files) and answers with a line ``SLW_ROUND_DONE <exit code>``. Airflow's
start-up (imports, migration check, DAG parsing) is then paid once per benchmark, not
once per round, as a worker that stays up pays it once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import TracebackType

DONE = "SLW_ROUND_DONE"


class AirflowWorker:
    """The worker process, its output (Airflow's, every round's) appended to ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("a", buffering=1)
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )

    def run(self, dag_ids: tuple[str, ...], mark_success: str | None = None) -> None:
        """Run the DAGs in the worker; raises RuntimeError (naming the log) unless every
        run succeeded."""
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the Airflow worker was started without pipes")
        request = {"dag_ids": list(dag_ids), "mark_success": mark_success}
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        for line in stdout:
            if line.startswith(DONE):
                code = int(line.split()[1])
                if code != 0:
                    raise RuntimeError(f"{' '.join(dag_ids)} exited {code}; see {self.log_path}")
                return
            self._log.write(line)
        raise RuntimeError(f"the Airflow worker ended; see {self.log_path}")

    def __enter__(self) -> AirflowWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        for line in self._process.stdout or ():
            self._log.write(line)
        self._process.wait()
        self._log.close()


def serve() -> int:
    """The worker's loop: a request per stdin line, until stdin closes."""
    from social_leadership import task_logs
    from social_leadership.local_airflow_process import commit_without_fsync, prepare, run
    from social_leadership.orchestration import WAREHOUSE_POOL

    # As local_airflow_process: before Airflow configures its loggers.
    task_logs.install()
    commit_without_fsync()
    prepare(WAREHOUSE_POOL, "Single writer to the DuckDB warehouse")
    for line in sys.stdin:
        request = json.loads(line)
        code = run(request["dag_ids"], None, request.get("mark_success"))
        print(f"{DONE} {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve())
