"""dbt started warm: a helper process imports dbt once and forks a fresh process per command.

A dbt command spends about 1.5 s of CPU importing dbt and its DuckDB adapter before it reads
its project (measured on this project: ``dbt ls`` 2.4 s started cold, 0.9 s forked from a
process that has imported dbt; the demo's ``dbt build`` 7.9 s against 5.9 s). A process
that runs several dbt commands (``slw run``'s one Airflow process, a worker running the
build and the freshness check, the tests) pays the import once: :class:`WarmDbt` starts
this module as a helper (the *starter*), which imports dbt and waits. For each command it
forks a child that takes the command's working directory, environment and arguments,
writes its output to the caller's files and runs dbt's own entry point, as the ``dbt``
executable does.

Each command is still a process of its own, forked from a process that never ran dbt: no
state of one command (adapters, logging, the DuckDB connection, the parsed project) reaches
the next, and a crash ends only that command. The starter runs one thread (so forking it
is safe) and one command at a time; it exits when its parent closes its input or ends.

Protocol, one JSON object per line: the parent sends ``{"argv", "cwd", "env", "stdout",
"stderr"}``; the starter answers ``{"pid"}`` once the child runs, then ``{"returncode"}``
(negative: the signal that ended it, as :mod:`subprocess` says). Should the starter end
while its command runs, the command has failed (status 1, the reason after its output).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

# What a dbt command imports before its first node, imported once by the starter: the
# command line, the DuckDB adapter and the tasks the pipeline runs.
PRELOADED = (
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.adapters.duckdb.impl",
    "dbt.parser.manifest",
    "dbt.task.build",
    "dbt.task.list",
    "dbt.task.freshness",
    "dbt.task.docs.generate",
    "agate",
)


def _exit_code(exc: SystemExit) -> int:
    """The status a Python process exiting with ``exc`` has."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_child(request: dict[str, Any]) -> None:
    """In the forked child: become the dbt command, then exit with its status."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        from dbt.cli.main import cli

        try:
            cli()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
    except BaseException:  # a child must never return into the starter's loop
        import traceback

        traceback.print_exc()
    finally:
        # What a Python process runs as it ends (multiprocessing's clean-up of its locks,
        # among others), then the status; never back into the starter's loop.
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The starter's loop: import dbt, then run each requested command in a forked child."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)

    def reply(message: dict[str, int]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    for line in iter(requests.readline, b""):
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        reply({"pid": pid})
        _, status = os.waitpid(pid, 0)
        reply({"returncode": os.waitstatus_to_exitcode(status)})


class WarmDbt:
    """This process's starter, started on first use; one command at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._owner = 0
        # The process id of the last command started warm (dbt's logs name it too).
        self.last_pid: int | None = None

    @property
    def starter_pid(self) -> int | None:
        """The running starter's process id, if this process has one."""
        process = self._process
        if process is None or process.poll() is not None or self._owner != os.getpid():
            return None
        return process.pid

    def _started(self) -> subprocess.Popen[bytes]:
        if self.starter_pid is not None:
            assert self._process is not None
            return self._process
        # A starter that ended, or the parent's (in a forked copy of this process, a task
        # runner): let go of its pipes; this process gets a starter of its own.
        self.stop()
        # -P: no working folder on the starter's import path, as for the dbt executable.
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_starter_env(),
            close_fds=True,
        )
        self._owner = os.getpid()
        return self._process

    def run(
        self, argv: list[str], cwd: Path, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str] | None:
        """Run ``argv`` (this environment's dbt and its arguments) as a forked child; None
        when the starter is busy with another thread's command or cannot start one (the
        caller then starts dbt itself, as nothing ran)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            with tempfile.TemporaryDirectory(prefix="slw-dbt-") as tmp:
                outputs = {"stdout": Path(tmp) / "stdout", "stderr": Path(tmp) / "stderr"}
                request = {
                    "argv": argv,
                    "cwd": str(cwd),
                    "env": dict(env),
                    **{name: str(path) for name, path in outputs.items()},
                }
                returncode, lost = self._exchange(request)
                if returncode is None:
                    return None
                texts = {
                    name: path.read_text(encoding="utf-8", errors="replace")
                    if path.is_file()
                    else ""
                    for name, path in outputs.items()
                }
            return subprocess.CompletedProcess(
                argv, returncode, texts["stdout"], texts["stderr"] + lost
            )
        finally:
            self._lock.release()

    def _exchange(self, request: dict[str, Any]) -> tuple[int | None, str]:
        """The command's status (None: it never started) and, when the starter was lost
        while it ran, why it counts as failed."""
        try:
            process = self._started()
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(json.dumps(request).encode() + b"\n")
            process.stdin.flush()
            started = process.stdout.readline()
        except OSError:
            self.stop()
            return None, ""
        if not started:  # the starter ended before it forked: nothing ran
            self.stop()
            return None, ""
        pid = self.last_pid = int(json.loads(started)["pid"])
        try:
            finished = process.stdout.readline()
        except BaseException:
            # Interrupted (a task's timeout, Ctrl-C): dbt ends with its caller, as
            # subprocess.run kills a child it was waiting for; a new starter serves next.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            self.stop()
            raise
        if not finished:
            # dbt may outlive its starter: it is ended too, so nothing writes on unseen.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            self.stop()
            return 1, (
                f"\nthe process that started dbt (pid {process.pid}) ended while dbt "
                f"(pid {pid}) ran: the command's outcome is unknown\n"
            )
        return int(json.loads(finished)["returncode"]), ""

    def stop(self) -> None:
        """End this process's starter (it exits once its input closes); in a forked copy of
        this process, only close the copies of its parent's starter's pipes."""
        process, self._process = self._process, None
        if process is None:
            return
        for pipe in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        if self._owner != os.getpid():
            return
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _starter_env() -> dict[str, str]:
    from social_leadership.settings import NO_TELEMETRY_ENV

    return {**os.environ, **NO_TELEMETRY_ENV}


WARM = WarmDbt()
atexit.register(WARM.stop)


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
