"""Per-task log files for DAG runs made in-process with ``dag.test()``.

``dag.test()`` (what ``make run`` and ``slw dags test`` use) runs each task in the calling
process and logs to its console only, so the Airflow UI has no file to show ("Log file not
found"). A scheduler's worker writes each task instance's log to
``<base_log_folder>/<log_filename_template>`` (``dag_id=.../run_id=.../task_id=.../
attempt=N.log``), which the UI and the REST API read. This module gives in-process runs the
same files: the process's standard output becomes a tee, and while a task instance runs,
everything written to it (Airflow's task logger, the package's loggers, ``print``) is also
appended to that task instance's own file. Each try and each run has its own file, so a
later run never overwrites an earlier one's log.

Installed once, before Airflow is imported (its loggers bind to ``sys.stdout`` when they
are created), by :mod:`social_leadership.local_airflow_process`.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO


class TaskLogTee(io.TextIOBase):
    """A text stream writing to the console and, while a task runs, to its log file.

    Not a TTY (``isatty()`` is false), so Airflow writes no colour codes into log files.
    """

    def __init__(self, console: TextIO) -> None:
        super().__init__()
        self.console = console
        self._task_file: TextIO | None = None
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            if self._task_file is not None:
                self._task_file.write(text)
            self._to_console(text, flush=False)
            return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._task_file is not None:
                self._task_file.flush()
            self._to_console("", flush=True)

    def _to_console(self, text: str, *, flush: bool) -> None:
        """Write ``text`` to the console (and flush it); once its reader is gone (``slw dags
        test | head``), to nothing. The run goes on, its task logs written: failing every
        write, the Airflow process died mid-run and left the run ``running`` for ever."""
        try:
            if text:
                self.console.write(text)
            if flush:
                self.console.flush()
        except BrokenPipeError:
            self.console = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115

    @property
    def encoding(self) -> str:
        return getattr(self.console, "encoding", None) or "utf-8"

    def fileno(self) -> int:
        return self.console.fileno()

    def write_console(self, text: str) -> None:
        """Write to the console only (never into a task's log file), flushed."""
        with self._lock:
            self._to_console(text, flush=True)

    def start_task(self, path: Path) -> None:
        with self._lock:
            # Appending: a task resumed after deferral keeps its first part.
            # A file name in another encoding (lone surrogates) is logged as \xNN escapes.
            self._task_file = path.open(
                "a", encoding="utf-8", errors="backslashreplace", buffering=1
            )

    def end_task(self) -> None:
        with self._lock:
            if self._task_file is not None:
                self._task_file.close()
                self._task_file = None


def task_log_path(ti: Any) -> Path:
    """Where a worker would write this task instance's log (absolute), created if missing.

    Rendered from Airflow's ``[logging] log_filename_template`` under ``base_log_folder``,
    as executors render it, so the UI's log reader finds it.
    """
    from airflow.sdk.log import init_log_file
    from airflow.utils.helpers import log_filename_template_renderer

    relative = log_filename_template_renderer()(ti=ti, try_number=ti.try_number)
    return init_log_file(relative)


def _logging_each_task(
    tee: TaskLogTee, run_task_in_process: Callable[..., Any]
) -> Callable[..., Any]:
    @functools.wraps(run_task_in_process)
    def run(ti: Any, task: Any, client: Any = None) -> Any:
        tee.start_task(task_log_path(ti))
        try:
            return run_task_in_process(ti=ti, task=task, client=client)
        finally:
            tee.end_task()

    return run


def install() -> TaskLogTee:
    """Make every task instance ``dag.test()`` runs in this process log to its own file.

    Must run before Airflow is imported: loggers keep the stream they were created with.
    ``dag.test()`` imports ``run_task_in_process`` from its module on every task, so
    wrapping the module attribute reaches every task run.
    """
    tee = TaskLogTee(sys.stdout)
    sys.stdout = tee  # type: ignore[assignment]

    from airflow.sdk.execution_time import supervisor

    supervisor.run_task_in_process = _logging_each_task(tee, supervisor.run_task_in_process)
    return tee
