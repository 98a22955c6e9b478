"""Run the project's DAGs through real Airflow on a local, SQLite-backed home, from outside
Airflow: this module prepares the environment and starts
:mod:`social_leadership.local_airflow_process`, which runs them inside Airflow.

Used by ``make run`` (the demo), ``slw dags test`` / ``slw dags list-runs``, the
end-to-end tests and the benchmarks, so all of them exercise Airflow exactly as a user's
``airflow dags test`` would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from social_leadership import progress as progress_lines
from social_leadership.local_airflow_process import LAUNCHER_PID_ENV, RESULT_PREFIX
from social_leadership.orchestration import WAREHOUSE_POOL
from social_leadership.settings import NO_TELEMETRY_ENV, REPO_ROOT

DAGS_FOLDER = REPO_ROOT / "dags"


def default_airflow_home() -> Path:
    """``$AIRFLOW_HOME``, else the repository's git-ignored ``airflow_home/``; a ``~`` or
    ``$VAR`` in it expanded as Airflow expands it (an env file passes ``~/airflow`` as it
    is: taken literally, the runs went to ``<cwd>/~/airflow``, where Airflow's own commands
    never look)."""
    home = os.environ.get("AIRFLOW_HOME")
    if not home:
        return (REPO_ROOT / "airflow_home").resolve()
    return Path(os.path.expanduser(os.path.expandvars(home))).resolve()


def airflow_environment(airflow_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an Airflow CLI process using this repository's DAGs."""
    env = dict(os.environ)
    env.update(NO_TELEMETRY_ENV)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # A DAG someone ran is one they want scheduled: `make airflow-ui` then runs it.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT / "include"), env.get("PYTHONPATH", "")) if p
            ),
        }
    )
    if extra:
        env.update(extra)
    return env


class AirflowCommandError(RuntimeError):
    def __init__(self, command: list[str], returncode: int, log_path: Path, tail: str):
        self.log_path = log_path
        super().__init__(
            f"`{' '.join(command)}` exited with {returncode}; full log: {log_path}\n{tail}"
        )


def _run(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    on_progress: Callable[[str], None] | None = None,
    *,
    dag_ids: Sequence[str] = (),
) -> str:
    """Run the command, its whole output written to ``log_path`` as it comes; each
    progress event line (:mod:`social_leadership.progress`) also goes to ``on_progress``,
    described, the moment it arrives. Ctrl-C stops the run (:func:`_stop_interrupted`),
    marking the runs of ``dag_ids`` it began failed."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Unbuffered: the log file follows the run (tail -f), and events are not held back.
    env = {**_launched_from_here(env), "PYTHONUNBUFFERED": "1"}
    since = _now()
    with (
        _stopping_signals_interrupt(),
        log_path.open("w", buffering=1) as log_file,
        subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        ) as process,
    ):
        try:
            for line in process.stdout or ():
                log_file.write(line)
                event = progress_lines.parse(line) if on_progress else None
                if on_progress and event is not None:
                    try:
                        on_progress(progress_lines.describe(event))
                    except BrokenPipeError:
                        # Its reader gone (`slw run | head`): the run goes on, unechoed (it
                        # stopped here, and the Airflow process with it, its run left
                        # "running" for ever, never recorded).
                        on_progress = None
                        _stdout_to_nothing()
            returncode = process.wait()
        except KeyboardInterrupt:
            _stop_interrupted(process, dag_ids, since, env)
            raise
        if returncode < 0:
            _fail_killed(process, dag_ids, since, env)
    output = log_path.read_text(errors="replace")
    if returncode != 0:
        raise AirflowCommandError(command, returncode, log_path, error_tail(output.splitlines()))
    return output


def _stdout_to_nothing() -> None:
    """This process's standard output, whose reader is gone, written to nothing from now on
    (what it still holds too), so that no later print fails."""
    with contextlib.suppress(OSError, ValueError):
        nothing = os.open(os.devnull, os.O_WRONLY)
        os.dup2(nothing, sys.stdout.fileno())
        os.close(nothing)


def error_tail(lines: list[str]) -> str:
    """What to show of a failed Airflow run's output: its last 15 error lines, else its
    last 30 lines."""
    errors = [line for line in lines if "ERROR" in line or "Error" in line][-15:]
    return "\n".join(errors or lines[-30:])


def run_dags(
    dag_ids: Sequence[str],
    env: dict[str, str],
    logs_dir: Path,
    *,
    logical_date: str | None = None,
    mark_success: str | None = None,
    confs: Mapping[str, dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Run the DAGs in order, as ``airflow dags test`` does, in one Airflow process.

    ``mark_success``: a regex of task ids marked successful instead of run (``dag.test``'s
    ``mark_success_pattern``), for benchmarks that time one stage of a DAG. ``confs``: the
    run conf of a DAG's run, by DAG id (its params). ``progress``: called with a line as
    each DAG and task instance starts and ends (with its duration) and as a long step
    says what it does, while the run goes on; Airflow's whole output is in
    ``logs_dir/airflow-dags-test.log``.

    Migrates the SQLite metadata DB and creates the one-slot warehouse pool first (both
    idempotent). Returns the seconds each DAG run took; raises AirflowCommandError (with
    the log's error lines and its path) when a DAG run does not succeed.
    """
    command = _runner("--prepare-pool", WAREHOUSE_POOL, *dag_ids)
    if logical_date:
        command += ["--logical-date", logical_date]
    if mark_success:
        command += ["--mark-success", mark_success]
    for dag_id, conf in (confs or {}).items():
        command += ["--conf", f"{dag_id}={json.dumps(conf)}"]
    if progress:
        command.append("--progress")
        # The seconds before the first DAG starts: Airflow's import, migration, DAG parsing.
        starting = "starting Airflow: metadata DB migration, warehouse pool, DAG parsing"
        progress(progress_lines.describe({"event": "note", "text": starting}))
    output = _run(command, env, logs_dir / "airflow-dags-test.log", progress, dag_ids=dag_ids)
    timings = {}
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            _, dag_id, _state, seconds = line.split()
            timings[dag_id] = float(seconds)
    return timings


def _launched_from_here(env: dict[str, str]) -> dict[str, str]:
    """``env`` naming this process as the one the run watches (it stops itself when this
    one is killed alone: :func:`~social_leadership.local_airflow_process.stop_when_orphaned`)."""
    return {**env, LAUNCHER_PID_ENV: str(os.getpid())}


def _runner(*args: str) -> list[str]:
    return [sys.executable, "-m", "social_leadership.local_airflow_process", *args]


def run_one_dag(
    dag_id: str,
    env: dict[str, str],
    *,
    logical_date: str | None = None,
    conf: dict[str, Any] | None = None,
) -> int:
    """Run one DAG as ``airflow dags test`` does, its output streamed to this terminal.

    Migrates the metadata DB and creates the warehouse pool first (both idempotent), so a
    new Airflow home works on the first call. Returns the runner's exit code: 0 success,
    1 the run failed, 2 unknown DAG id.
    """
    command = _runner("--prepare-pool", WAREHOUSE_POOL, dag_id)
    if logical_date:
        command += ["--logical-date", logical_date]
    if conf:
        command += ["--conf", f"{dag_id}={json.dumps(conf)}"]
    since = _now()
    with (
        _stopping_signals_interrupt(),
        subprocess.Popen(command, env=_launched_from_here(env), start_new_session=True) as process,
    ):
        try:
            returncode = process.wait()
        except KeyboardInterrupt:
            _stop_interrupted(process, [dag_id], since, env)
            raise
        if returncode < 0:
            _fail_killed(process, [dag_id], since, env)
            return 1
        return returncode


def _now() -> str:
    return datetime.now(UTC).isoformat()


@contextlib.contextmanager
def _stopping_signals_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a CI job cancelled, a service stopped) and SIGHUP (the terminal
    closed) raise KeyboardInterrupt here, as Ctrl-C does, while a run waits: so each stops
    the run the same way, not leave it going without its terminal."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    with _handling(_STOPPING_SIGNALS, interrupt):
        yield


@contextlib.contextmanager
def _handling(signals: Sequence[int], handler: Any) -> Iterator[None]:
    """``handler`` for ``signals`` for the ``with`` block, the earlier handlers back after
    it (in the main thread only: signal handlers can be set nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in signals}
    try:
        yield
    finally:
        for number, earlier in previous.items():
            signal.signal(number, earlier)


_STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop_interrupted(
    process: subprocess.Popen, dag_ids: Sequence[str], since: str, env: dict[str, str]
) -> None:
    """After Ctrl-C: stop the Airflow process and everything it started, then mark its runs
    failed in the metadata DB.

    The Airflow process runs in a session of its own, so that Ctrl-C reaches this process
    alone: Airflow passes a signal on to the running task only, which fails (and is retried)
    while the run goes on with the next tasks. Killed at once instead, its writes are lost
    whole (each warehouse write is one transaction); its runs would read ``running`` for
    ever, so a short process of their own marks them failed."""
    _stop_group(process)
    print(
        "interrupted: stopping the run and marking it failed (a few seconds)",
        file=sys.stderr,
        flush=True,
    )
    _mark_failed(dag_ids, since, env, "stopped while it ran (Ctrl-C, SIGTERM or SIGHUP)")


def _fail_killed(
    process: subprocess.Popen, dag_ids: Sequence[str], since: str, env: dict[str, str]
) -> None:
    """After the Airflow process was killed (the kernel's out-of-memory killer, a
    ``kill -9``): what it started stopped too, its runs marked failed (they read
    ``running`` for ever), said on stderr."""
    _stop_group(process)
    number = -process.returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    cause = "out of memory, or kill -9" if number == signal.SIGKILL else "a crash, or a kill"
    print(
        f"the Airflow process was killed by {name} ({cause}): marking its run failed",
        file=sys.stderr,
        flush=True,
    )
    _mark_failed(dag_ids, since, env, f"its Airflow process was killed by {name} ({cause})")


def _stop_group(process: subprocess.Popen) -> None:
    """The process's whole session stopped (its own children, dbt's, with it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# How long marking interrupted runs failed, recording and alerting them, may take.
MARK_FAILED_SECONDS = 120


def _mark_failed(dag_ids: Sequence[str], since: str, env: dict[str, str], why: str) -> None:
    """The runs of ``dag_ids`` begun since ``since`` and still running, and their unfinished
    tasks, marked failed in the metadata DB by a short Airflow process of their own, which
    records each in ``audit.runs`` and alerts it, saying ``why`` (the run's own callbacks
    died with it)."""
    # In a session of its own and with this process deaf to a second Ctrl-C meanwhile: cut
    # short, it would leave the run "running" after all.
    with _handling((*_STOPPING_SIGNALS, signal.SIGINT), signal.SIG_IGN):
        try:
            marked = subprocess.run(
                _runner("--fail-interrupted", since, "--why", why, *dag_ids),
                env={**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"},
                capture_output=True,
                text=True,
                check=False,
                start_new_session=True,
                # Its alert may wait on a webhook or an SMTP server that does not answer.
                timeout=MARK_FAILED_SECONDS,
            )
        except subprocess.TimeoutExpired as timed_out:
            said = timed_out.stdout or ""
            sys.stderr.write(said if isinstance(said, str) else said.decode(errors="replace"))
            print(
                f"marking the run failed took over {MARK_FAILED_SECONDS} s (its alert?): "
                "stopped; slw dags list-runs shows its state",
                file=sys.stderr,
                flush=True,
            )
            return
    # Its warnings too (an alert not sent, and why).
    sys.stderr.write(marked.stdout + marked.stderr)


def list_dag_runs(dag_id: str, env: dict[str, str], *, limit: int = 20) -> int:
    """Print the DAG's latest runs from the metadata DB."""
    command = _runner("--list-runs", dag_id, "--limit", str(limit))
    # Only the table: Airflow's INFO lines about parsing the DAGs folder are noise here.
    quiet = {**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    return subprocess.run(command, env=quiet, check=False).returncode
