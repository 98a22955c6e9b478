"""A long-lived Airflow process for benchmarks that run DAGs round after round.

Started (by :class:`AirflowWorker`) with the environment of
:func:`social_leadership.local_airflow.airflow_environment`, it migrates the metadata DB
and creates the warehouse pool once, then reads one JSON request per line from stdin,
``{"dag_ids": [...], "mark_success": "regex or null"}``, runs those DAGs as
:mod:`social_leadership.local_airflow_process` does (``dag.test()``, tasks in-process,
per-task log files; each DAG taken from the DAG bag as ``airflow dags test`` takes it)
and answers with a line ``SLW_ROUND_DONE <exit code>``. Airflow's imports and the
metadata DB's migration are then paid once per worker, not once per round, as a worker
that stays up pays them once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from social_leadership.local_airflow import error_tail
from social_leadership.local_airflow_process import RESULT_PREFIX

DONE = "SLW_ROUND_DONE"
EXIT_SECONDS = 60


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
        """Run the DAGs in the worker; raises RuntimeError (the DAGs that did not succeed,
        the round's error lines, the log's path) unless every run succeeded."""
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the Airflow worker was started without pipes")
        request = {"dag_ids": list(dag_ids), "mark_success": mark_success}
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        except BrokenPipeError:
            pass  # It ended: said below, with its exit code.
        lines: list[str] = []
        for line in stdout:
            if line.startswith(DONE):
                if int(line.split()[1]) != 0:
                    raise RuntimeError(self._failure(dag_ids, lines))
                return
            self._log.write(line)
            lines.append(line.rstrip("\n"))
        code = self._process.wait()
        raise RuntimeError(
            f"the Airflow worker ended with exit code {code} during {' '.join(dag_ids)}; "
            f"see {self.log_path}\n{error_tail(lines)}"
        )

    def _failure(self, dag_ids: tuple[str, ...], lines: list[str]) -> str:
        results = [line.split() for line in lines if line.startswith(RESULT_PREFIX)]
        succeeded = {fields[1] for fields in results if fields[2] == "success"}
        failed = [dag_id for dag_id in dag_ids if dag_id not in succeeded]
        return f"{', '.join(failed)} did not succeed; see {self.log_path}\n{error_tail(lines)}"

    def __enter__(self) -> AirflowWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Ends the worker: told to (stdin closed) and its output kept, or, when the block
        raised (it may be mid-round), stopped at once."""
        try:
            if exc_type is not None:
                self._process.kill()
            elif self._process.stdin is not None:
                with suppress(BrokenPipeError):
                    self._process.stdin.close()
            for line in self._process.stdout or ():
                self._log.write(line)
            self._process.wait(timeout=EXIT_SECONDS)
        finally:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._log.close()


def serve() -> int:
    """The worker's loop: a request per stdin line, until stdin closes."""
    from social_leadership import task_logs

    # As local_airflow_process: before Airflow is imported, which configures its loggers
    # with the stream it finds.
    task_logs.install()

    from social_leadership.local_airflow_process import commit_without_fsync, prepare, run
    from social_leadership.orchestration import WAREHOUSE_POOL

    commit_without_fsync()
    prepare(WAREHOUSE_POOL, "Single writer to the DuckDB warehouse")
    for line in sys.stdin:
        request = json.loads(line)
        code = run(request["dag_ids"], None, request.get("mark_success"))
        # On a line of its own, whatever the last task wrote without a newline.
        print(f"\n{DONE} {code}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve())
