"""Live progress of the DAG runs ``make run`` makes: a line as each DAG and each task
starts and ends (with its duration), and a line when a long step says what it is doing.

Airflow's own output of ``dag.test()`` is hundreds of lines per DAG; ``make run`` shows
only these. The process running the DAGs (:mod:`social_leadership.local_airflow_process`,
started with ``--progress``) writes each event as one machine-readable line
(``SLW_PROGRESS {json}``) into its output; :mod:`social_leadership.local_airflow` keeps
that output whole in the Airflow log file and turns each event line into a readable one
(:func:`describe`) as it arrives.

Outside such a process (a scheduler's worker, a test calling a task function) nothing is
written but :func:`step`'s log line.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

PREFIX = "SLW_PROGRESS "

log = logging.getLogger(__name__)

# Set in the process running the DAGs by install(): where event lines go, and the task
# running now (dag_id, task label), which step() names.
_write: Callable[[str], None] | None = None
_current: tuple[str, str] | None = None
# The task instances run in the current DAG run, by label: a line announced each.
_ran: set[str] = set()


def _emit(event: str, **fields: Any) -> None:
    if _write is not None:
        _write(PREFIX + json.dumps({"event": event, **fields}) + "\n")


def dag_started(dag_id: str) -> None:
    """Report that a DAG run starts."""
    _ran.clear()
    _emit("dag_start", dag=dag_id)


def dag_ended(dag_id: str, state: Any, seconds: float) -> None:
    """Report that a DAG run ended, in ``state``, after ``seconds``."""
    _emit("dag_end", dag=dag_id, state=state_name(state), seconds=round(seconds, 3))


def tasks_not_run(dag_id: str, instances: list[tuple[str, int, Any]]) -> None:
    """Report the run's task instances (task id, map index, state) that ended without
    running (skipped, upstream failed): no start line announced them."""
    for task_id, map_index, state in instances:
        label = task_label(task_id, map_index)
        if label not in _ran:
            _emit("task_not_run", dag=dag_id, task=label, state=state_name(state))


def step(what: str) -> None:
    """Say what a long step of a task is doing: in the task's log, and, during ``make
    run``, on its console under the task's line."""
    log.info("%s", what)
    if _current is not None:
        _emit("step", dag=_current[0], task=_current[1], text=what)


def state_name(state: Any) -> str:
    """``success`` for ``TaskInstanceState.SUCCESS``, ``"success"`` or a DAG run state."""
    return str(getattr(state, "value", state) or "unknown")


def task_label(task_id: str, map_index: int) -> str:
    """A task instance's name in progress lines: ``task_id``, ``task_id[2]`` if mapped."""
    return f"{task_id}[{map_index}]" if map_index is not None and map_index >= 0 else task_id


def _reporting_each_task(run_task_in_process: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(run_task_in_process)
    def run(ti: Any, task: Any, client: Any = None) -> Any:
        global _current
        label = task_label(ti.task_id, ti.map_index)
        _current = (ti.dag_id, label)
        _ran.add(label)
        _emit("task_start", dag=ti.dag_id, task=label)
        started = time.perf_counter()
        state = "error"
        try:
            result = run_task_in_process(ti=ti, task=task, client=client)
            state = state_name(getattr(result.ti, "state", None))
            return result
        finally:
            _current = None
            seconds = round(time.perf_counter() - started, 3)
            _emit("task_end", dag=ti.dag_id, task=label, state=state, seconds=seconds)

    return run


def install(write: Callable[[str], None]) -> None:
    """Report every DAG and task instance this process runs, as event lines to ``write``.

    ``dag.test()`` imports ``run_task_in_process`` from its module for each task, so
    wrapping the module attribute reaches every task run.
    """
    global _write
    from airflow.sdk.execution_time import supervisor

    _write = write
    supervisor.run_task_in_process = _reporting_each_task(supervisor.run_task_in_process)


def parse(line: str) -> dict[str, Any] | None:
    """The event an output line carries, or None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        event: dict[str, Any] = json.loads(line[len(PREFIX) :])
    except json.JSONDecodeError:
        return None
    return event


def describe(event: dict[str, Any], now: datetime | None = None) -> str:
    """The console line of an event, stamped with the local time it arrived."""
    stamp = (now or datetime.now(UTC).astimezone()).strftime("%H:%M:%S")
    kind = event.get("event")
    dag = event.get("dag", "?")
    if kind == "dag_start":
        return f"{stamp} DAG {dag}: started"
    if kind == "dag_end":
        return f"{stamp} DAG {dag}: {event['state']} in {_duration(event['seconds'])}"
    if kind == "task_start":
        return f"{stamp}   {dag}.{event['task']}: started"
    if kind == "task_end":
        return f"{stamp}   {dag}.{event['task']}: {event['state']} in {_duration(event['seconds'])}"
    if kind == "task_not_run":
        return f"{stamp}   {dag}.{event['task']}: {event['state']} (not run)"
    if kind == "note":
        return f"{stamp} {event['text']}"
    if kind == "step":
        return f"{stamp}     {event['task']}: {event['text']}"
    return f"{stamp} {event}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s"
