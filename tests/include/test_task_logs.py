"""Per-task log files for in-process DAG runs (task_logs.py); the real runs and the UI's
REST API reading them are in tests/e2e/test_monitoring_e2e.py."""

from __future__ import annotations

import io
from types import SimpleNamespace

from social_leadership import task_logs


def test_the_tee_writes_a_tasks_lines_to_its_file_only_while_it_runs(tmp_path):
    console = io.StringIO()
    tee = task_logs.TaskLogTee(console)
    tee.write("before the task\n")
    tee.start_task(tmp_path / "attempt=1.log")
    tee.write("the task's own line\n")
    tee.end_task()
    tee.write("after the task\n")

    assert console.getvalue() == "before the task\nthe task's own line\nafter the task\n"
    assert (tmp_path / "attempt=1.log").read_text() == "the task's own line\n"
    assert tee.isatty() is False  # no colour codes in log files


def test_a_resumed_task_appends_to_its_file(tmp_path):
    tee = task_logs.TaskLogTee(io.StringIO())
    path = tmp_path / "attempt=1.log"
    for part in ("first part\n", "after deferral\n"):
        tee.start_task(path)
        tee.write(part)
        tee.end_task()
    assert path.read_text() == "first part\nafter deferral\n"


def test_the_path_is_airflows_own_per_task_instance_file(tmp_path, monkeypatch):
    # Airflow reads its configuration from the environment on each look-up.
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    ti = SimpleNamespace(
        dag_id="warehouse_build", run_id="manual__2026-01-05", task_id="publish", map_index=-1,
        try_number=2,
    )  # fmt: skip
    path = task_logs.task_log_path(ti)
    assert path == (
        tmp_path / "dag_id=warehouse_build" / "run_id=manual__2026-01-05" / "task_id=publish"
        / "attempt=2.log"
    )  # fmt: skip
    assert path.is_file()


def test_each_task_run_in_process_gets_its_own_file(tmp_path, monkeypatch):
    tee = task_logs.TaskLogTee(io.StringIO())
    paths = {"a": tmp_path / "a.log", "b": tmp_path / "b.log"}
    monkeypatch.setattr(task_logs, "task_log_path", lambda ti: paths[ti.task_id])

    def run_task_in_process(ti, task, client=None):
        print(f"running {ti.task_id}", file=tee)
        return ti.task_id

    run = task_logs._logging_each_task(tee, run_task_in_process)
    assert run(SimpleNamespace(task_id="a"), task=None) == "a"
    assert run(SimpleNamespace(task_id="b"), task=None) == "b"
    assert paths["a"].read_text() == "running a\n"
    assert paths["b"].read_text() == "running b\n"


class _GoneReader(io.StringIO):
    """A console whose reader went away (``slw dags test | head``) after ``lines`` lines."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.lines = lines

    def write(self, text: str) -> int:
        if self.getvalue().count("\n") >= self.lines:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_a_console_whose_reader_is_gone_leaves_the_run_and_its_task_logs_going(tmp_path):
    # Every write failed: the Airflow process died mid-run, its run left "running".
    console = _GoneReader(lines=1)
    tee = task_logs.TaskLogTee(console)
    tee.start_task(tmp_path / "task.log")

    for number in range(3):
        assert tee.write(f"line {number}\n") == len(f"line {number}\n")
    tee.flush()
    tee.write_console("said\n")
    tee.end_task()

    assert console.getvalue() == "line 0\n"
    assert (tmp_path / "task.log").read_text() == "line 0\nline 1\nline 2\n"
