"""dbt started warm: a helper process imports dbt once and forks a fresh process per command.

A dbt command spends about 1.5 s of CPU importing dbt and its DuckDB adapter before it reads
its project (measured through :func:`~social_leadership.dbt_runner.run_dbt` on the demo
warehouse: ``dbt ls`` 2.1 s started cold, 0.8 s forked from a process that has imported
dbt; the demo's ``dbt build`` 6.9 s against 5.4 s). A process that runs several dbt
commands (``slw run``'s and ``slw dags test``'s one Airflow process, the tests, the
benchmarks) pays the import once: :class:`WarmDbt` starts this module as a helper (the
*starter*), which imports dbt, builds the JSON schemas each command validates against,
and waits. For each command it forks a child that takes the command's working directory,
environment and arguments, writes its output to the caller's files and runs dbt's own
entry point, as the ``dbt`` executable does. A process that runs one dbt command (a
deployed worker's task) gains nothing: docker-compose.yml turns it off.

Each command is still a process of its own, forked from a process that never ran dbt: no
state of one command (adapters, logging, the DuckDB connection, the parsed project) reaches
the next, and a crash ends only that command. What the starter takes from a command is
which serializers and JSON schemas of dbt's classes it built on first use, to build them
itself for the commands after it (:class:`FirstUse`): they depend on the classes alone.
The starter runs no Python thread but its main one (DuckDB's import starts one idle native
thread for its default connection, which dbt never uses: dbt-duckdb opens its own
database), serves one command at a time, blocks the interrupts sent to its process group
(the command they are meant for gets them, and its status says so) and exits when its
parent closes its input or ends. On Linux a command dies with its starter.

Protocol, one JSON object per line: the parent sends ``{"argv", "cwd", "env", "stdout",
"stderr"}``; the starter answers ``{"pid"}`` once the child runs, then ``{"returncode"}``
(negative: the signal that ended it, as :mod:`subprocess` says). Should the starter end
while its command runs, the command has failed (status 1, the reason after its output).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

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
# The classes whose JSON schemas each dbt command validates its project, flags, packages,
# selectors and profile against: dbt builds each schema once per process (dbt_common's
# ``json_schema()``, cached per class), 0.3 s of CPU that the starter spends once for all
# its commands (:func:`build_schemas`).
VALIDATED_CLASSES = (
    ("dbt.contracts.project", "Project"),
    ("dbt.contracts.project", "ProjectFlags"),
    ("dbt.contracts.project", "PackageConfig"),
    ("dbt.contracts.project", "ProfileConfig"),
    ("dbt.contracts.project", "Configuration"),
    ("dbt.contracts.selection", "SelectorFile"),
    ("dbt.adapters.duckdb.credentials", "DuckDBCredentials"),
)
# The signals a terminal (Ctrl-C) or Airflow (a task's timeout, a killed task: SIGINT, then
# SIGTERM, to the task's process group) sends: the starter blocks them; a child, forked
# with them blocked, unblocks them once it is the dbt command (one sent in between waits
# for it), and takes them as a dbt process does, with the handlers the starter was given.
_INTERRUPTS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1


def _exit_code(exc: SystemExit) -> int:
    """The status a Python process exiting with ``exc`` has."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _die_with_starter(starter: int) -> None:
    """Linux: the kernel kills this child when its starter ends (a starter killed while
    its command runs takes the command with it); a starter already gone ends it now."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != starter:
        os._exit(1)


def _run_child(request: dict[str, Any], starter: int, first_use: FirstUse | None = None) -> None:
    """In the forked child: become the dbt command, then exit with its status (and tell
    ``first_use`` what it built on first use)."""
    code = 1
    interrupted = False
    try:
        _die_with_starter(starter)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        from dbt.cli.main import cli

        if first_use is not None:
            with contextlib.suppress(Exception):  # never the command's failure
                first_use.record_schemas()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
        try:
            cli()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:  # a child must never return into the starter's loop
        import traceback

        traceback.print_exc()
    finally:
        # What a Python process runs as it ends (dbt-duckdb's closing of its connections,
        # multiprocessing's clean-up of its locks, among others), then the status; never
        # back into the starter's loop.
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        if first_use is not None:
            with contextlib.suppress(BaseException):
                first_use.report()
        if interrupted:  # ended by SIGINT, as Python ends a process Ctrl-C interrupted
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def build_schemas() -> None:
    """Build the JSON schemas of :data:`VALIDATED_CLASSES`, kept by their classes for the
    commands forked later. Classes and dictionaries only: no thread, file or connection, so
    a command still begins with no state of another. A dbt without one of these classes
    still runs, each command building what it needs."""
    import importlib

    for module, name in VALIDATED_CLASSES:
        # Whatever a later dbt changed here must not end the starter.
        with contextlib.suppress(Exception):
            getattr(importlib.import_module(module), name).json_schema()


def warm_up() -> None:
    """What the starter does once, before its first command: import :data:`PRELOADED`, then
    :func:`build_schemas`."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    build_schemas()


class FirstUse:
    """What dbt builds on first use, once per process, that no command of this starter has
    built yet: serializers and JSON schemas of its classes.

    dbt has mashumaro compile each class's ``from_dict``, ``to_dict`` and their MessagePack
    forms on first use (``lazy_compilation``), and builds a class's JSON schema the first
    time it validates one of its objects. So each command built again, from scratch, those
    it used: about 150 serializers for the demo's ``dbt build`` or ``dbt source freshness``
    (0.4-0.7 s of CPU), and a full parse 17 schemas (1 s). A child reports what it built
    (:meth:`report`, into a file the starter keeps open); between commands the starter
    builds them too, with the serializers compiling those leaves for their fields' classes
    (:meth:`learn`), so each command finds built what the commands before it built. Code
    and schemas are all it keeps: what dbt would have built in the command, from the
    classes alone, with no data of any command.
    """

    def __init__(self) -> None:
        self._classes = _dbt_classes()
        self._places = {cls: place for place, cls in enumerate(self._classes)}
        self._waiting = _lazy_serializers(self._classes)
        self._schemas: set[type] = set()
        self._reports = tempfile.TemporaryFile()  # noqa: SIM115 - open as long as the starter

    def clear_report(self) -> None:
        """Before a fork: no report yet."""
        os.ftruncate(self._reports.fileno(), 0)

    def record_schemas(self) -> None:
        """In the child, before dbt runs: note each class whose schema dbt builds (dbt_common
        builds each with ``build_json_schema``; a dbt that does not, records none)."""
        try:
            from dbt_common import dataclass_schema
        except ImportError:
            return
        build = getattr(dataclass_schema, "build_json_schema", None)
        if build is None:
            return
        built = self._schemas

        def recording(cls: type, *args: Any, **kwargs: Any) -> Any:
            built.add(cls)
            return build(cls, *args, **kwargs)

        dataclass_schema.build_json_schema = recording

    def report(self) -> None:
        """In the child, once dbt is done: which waiting serializers it compiled and which
        classes' schemas it built, by their places in the starter's lists."""
        compiled = [
            index
            for index, (cls, name, stub) in enumerate(self._waiting)
            if vars(cls).get(name) is not stub
        ]
        schemas = sorted(self._places[cls] for cls in self._schemas if cls in self._places)
        report = {"serializers": compiled, "schemas": schemas}
        os.pwrite(self._reports.fileno(), json.dumps(report).encode(), 0)

    def reported(self) -> dict[str, list[int]]:
        """The last child's report (empty lists for a report that is no such report: a child
        killed as it wrote, say)."""
        size = os.fstat(self._reports.fileno()).st_size
        try:
            report = json.loads(os.pread(self._reports.fileno(), size, 0) or b"{}")
        except ValueError:
            report = {}
        if not isinstance(report, dict):
            report = {}
        return {
            "serializers": _places(report.get("serializers"), len(self._waiting)),
            "schemas": _places(report.get("schemas"), len(self._classes)),
        }

    def learn(self) -> int:
        """In the starter, after a command: build what it reported; how many that was."""
        reported = self.reported()
        built = 0
        for index in reported["schemas"]:
            with contextlib.suppress(Exception):
                self._classes[index].json_schema()  # type: ignore[attr-defined]
                built += 1
        known = {(cls, name) for cls, name, _ in self._waiting}
        compiling = [self._waiting[index] for index in reported["serializers"]]
        while compiling:
            built += sum(_compile(*entry) for entry in compiling)
            # Compiling a class's serializer leaves stand-ins for those of the classes of its
            # fields that it calls (how each reads its fields from a MessagePack map, say):
            # compiled too, as the child compiled those it used.
            self._waiting = _lazy_serializers(self._classes)
            compiling = [entry for entry in self._waiting if entry[:2] not in known]
            known.update(entry[:2] for entry in compiling)
        return built

    def close(self) -> None:
        self._reports.close()


def _places(reported: object, count: int) -> list[int]:
    """The places in a list of ``count`` that ``reported`` names (none if it is no list)."""
    if not isinstance(reported, list):
        return []
    return [place for place in reported if type(place) is int and 0 <= place < count]


def _is_lazy(value: object) -> bool:
    """Whether ``value`` is mashumaro's stand-in for a serializer it compiles on first use."""
    function = getattr(value, "__func__", value)
    names = getattr(getattr(function, "__code__", None), "co_names", ())
    return "CodeBuilder" in names and ("add_unpack_method" in names or "add_pack_method" in names)


def _dbt_classes() -> list[type]:
    """The classes mashumaro serializes (dbt's among them): subclasses of its mixin."""
    try:
        from mashumaro.mixins.dict import DataClassDictMixin
    except ImportError:
        return []
    found: dict[type, None] = {}
    classes: list[type] = [DataClassDictMixin]
    while classes:
        for cls in classes.pop().__subclasses__():
            if cls not in found:
                found[cls] = None
                classes.append(cls)
    return list(found)


def _lazy_serializers(classes: list[type]) -> list[tuple[type, str, Any]]:
    """Every serializer of ``classes`` mashumaro has yet to compile, as (class, name,
    stand-in)."""
    return [
        (cls, name, value)
        for cls in classes
        for name, value in vars(cls).items()
        if name.startswith("__mashumaro_") and _is_lazy(value)
    ]


def _compile(cls: type, name: str, stub: Any) -> int:
    """Have mashumaro compile ``cls.<name>`` as its first use would; 1 if it did.

    The stand-in compiles (with what its class's definition wrote into it), then calls what
    it compiled. A serializer is called on an instance that names nothing under ``name``,
    so the call fails before any compiled code runs; a deserializer is given None, which
    it refuses (a class that needs no input makes an instance, dropped). The serializers
    of an abstract class, or of one whose instances have no ``__dict__``, stay as they
    are: a command compiles them, should it use them."""
    with contextlib.suppress(Exception):
        if isinstance(stub, classmethod):
            getattr(cls, name)(None)
        else:
            nothing = object.__new__(cls)
            try:
                vars(nothing)[name] = None
            except TypeError:  # no __dict__ (slots): the call would run the serializer
                return 0
            stub(nothing)
    return int(vars(cls).get(name) is not stub)


def serve(requests: IO[bytes], replies: IO[bytes], first_use: FirstUse | None = None) -> None:
    """The starter's loop: import dbt, then run each requested command in a forked child;
    between commands, build what the last one built on first use (``first_use``: made
    after the warm-up when None)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    warm_up()
    if first_use is None:
        try:
            first_use = FirstUse()
        except Exception:  # no temporary file to be had, say: the commands build their own
            first_use = None

    def reply(message: dict[str, int]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    starter = os.getpid()
    for line in iter(requests.readline, b""):
        request = json.loads(line)
        cleared = False
        if first_use is not None:
            with contextlib.suppress(OSError, ValueError):
                first_use.clear_report()
                cleared = True
        pid = os.fork()
        if pid == 0:
            # The command never writes a reply (standard descriptors are the command's own).
            with contextlib.suppress(OSError, ValueError):
                if replies.fileno() > 2:
                    os.close(replies.fileno())
            _run_child(request, starter, first_use)
        reply({"pid": pid})
        _, status = os.waitpid(pid, 0)
        reply({"returncode": os.waitstatus_to_exitcode(status)})
        # Whatever a later dbt or mashumaro changed here must not end the starter; a report
        # the starter could not clear may be the last command's, of places since renumbered.
        if first_use is not None and cleared:
            with contextlib.suppress(Exception):
                first_use.learn()


class WarmDbt:
    """This process's starter, started on first use; one command at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._owner = 0
        # Why this process starts dbt cold from now on: its starter failed before it served
        # a command (cannot import dbt, say), logged once.
        self._broken: str | None = None
        self._served = 0
        self._errors: IO[bytes] | None = None
        # The process id of the last command started warm (dbt's logs name it too).
        self.last_pid: int | None = None

    @property
    def starter_pid(self) -> int | None:
        """The running starter's process id, if this process has one."""
        process = self._process
        if process is None or process.poll() is not None or self._owner != os.getpid():
            return None
        return process.pid

    def _starter_command(self) -> list[str]:
        # -P: no working folder on the starter's import path, as for the dbt executable.
        return [sys.executable, "-P", "-m", __name__]

    def _started(self) -> subprocess.Popen[bytes]:
        if self.starter_pid is not None:
            assert self._process is not None
            return self._process
        # A starter that ended, or the parent's (in a forked copy of this process, a task
        # runner): let go of its pipes; this process gets a starter of its own.
        self.stop()
        self._owner = os.getpid()
        self._served = 0
        # Its own errors (a failed import) go to a file, read should it end before serving.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - kept open with the starter
        try:
            self._process = subprocess.Popen(
                self._starter_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
                env=_starter_env(),
                close_fds=True,
            )
        except BaseException:
            self._errors.close()
            self._errors = None
            raise
        return self._process

    def run(
        self, argv: list[str], cwd: Path, env: Mapping[str, str]
    ) -> subprocess.CompletedProcess[str] | None:
        """Run ``argv`` (this environment's dbt and its arguments) as a forked child; None
        when the starter is busy with another thread's command or cannot serve (the caller
        then starts dbt itself, as nothing ran)."""
        if self._broken is not None or not self._lock.acquire(blocking=False):
            return None
        try:
            with tempfile.TemporaryDirectory(prefix="slw-dbt-") as tmp:
                outputs = {"stdout": Path(tmp) / "stdout", "stderr": Path(tmp) / "stderr"}
                request = {
                    "argv": argv,
                    "cwd": str(Path(cwd).resolve()),
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
        while it ran, why it counts as failed. Anything that interrupts the exchange (a
        task's timeout, Ctrl-C, a reply that is no reply) ends the starter and its command
        before it goes on, so the next command never reads this one's replies."""
        pid = None
        try:
            try:
                process = self._started()
            except OSError:  # no process to be had (too many open files, say): start cold
                return None, ""
            assert process.stdin is not None
            assert process.stdout is not None
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
                started = process.stdout.readline()
            except OSError:
                started = b""
            if not started:  # the starter ended before it forked: nothing ran
                self._lost_before_serving()
                return None, ""
            pid = self.last_pid = int(json.loads(started)["pid"])
            finished = process.stdout.readline()
            if not finished:
                self._abort(pid)
                return 1, (
                    f"\nthe process that started dbt (pid {process.pid}) ended while dbt "
                    f"(pid {pid}) ran: the command's outcome is unknown\n"
                )
            self._served += 1
            return int(json.loads(finished)["returncode"]), ""
        except BaseException:
            self._abort(pid)
            raise

    def _lost_before_serving(self) -> None:
        """The starter ended before it forked this command. One that exited with an error
        before it served any cannot serve (dbt or this module not importable): this process
        starts dbt cold from now on, saying why once."""
        never_served = self._served == 0
        errors = self._errors_text()
        process = self._process
        self._abort(None)
        # Exited with an error of its own (dbt not importable), not killed (a signal, the
        # machine out of memory): a new starter would fail the same way.
        if never_served and process is not None and (process.returncode or 0) > 0:
            self._broken = errors.strip().splitlines()[-1] if errors.strip() else "no output"
            log.warning(
                "dbt cannot be started warm in this process (its starter ended: %s); "
                "every dbt command starts cold",
                self._broken,
            )

    def _errors_text(self) -> str:
        if self._errors is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._errors.seek(0)
            return self._errors.read().decode("utf-8", "replace")[-2000:]
        return ""

    def _abort(self, pid: int | None) -> None:
        """End the starter now, and the command it runs: on Linux the command dies with it;
        elsewhere it is killed by its process id first."""
        if pid is not None and not sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self._end(kill=True)

    def stop(self) -> None:
        """End this process's starter (it exits once its input closes); in a forked copy of
        this process, only close the copies of its parent's starter's pipes."""
        self._end(kill=False)

    def _end(self, *, kill: bool) -> None:
        # Detached first: whatever interrupts the rest, no later command talks to it.
        process, self._process = self._process, None
        errors, self._errors = self._errors, None
        if process is not None and self._owner == os.getpid() and kill:
            with contextlib.suppress(OSError):
                process.kill()
        for pipe in (process and process.stdin, process and process.stdout, errors):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        if process is None or self._owner != os.getpid():
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


def main(first_use: FirstUse | None = None) -> None:
    """The starter: serve the requests on standard input, replying on standard output.

    The replies keep a descriptor of their own; descriptor 1, which ``print`` and dbt's
    console logger write to, goes where the starter's errors go, so that nothing but a
    reply (a warning while importing dbt, a print of a dbt or mashumaro debugging switch)
    ever reaches the pipe the parent reads."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, replies, first_use)


if __name__ == "__main__":
    main()
