"""dbt started warm (social_leadership.dbt_warm): each command a process forked from one
starter that imported dbt, with the command's own folder, environment and output; the cold
start whenever the starter is off, busy, replaced or gone; an interrupted wait ends dbt."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import settings_for_data_dir

from social_leadership import dbt_runner
from social_leadership.dbt_runner import DbtError, run_dbt
from social_leadership.dbt_warm import WarmDbt
from social_leadership.settings import Settings

pytestmark = pytest.mark.dbt


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch) -> WarmDbt:
    """A starter of the test's own, stopped after it."""
    monkeypatch.setenv("SLW_DBT_WARM_START", "1")
    starter = WarmDbt()
    monkeypatch.setattr(dbt_runner, "WARM", starter)
    yield starter
    starter._abort(None)  # a command left running (a failed test) ends with its starter


@dataclasses.dataclass(frozen=True)
class Served:
    """A data folder's settings and the starter that served its first command."""

    settings: Settings
    starter: int
    first_pid: int


@pytest.fixture
def served(warm: WarmDbt, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Served:
    """One command run warm (a parse): its starter and its process id."""
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    run_dbt(["parse"], settings)
    assert warm.starter_pid is not None
    assert warm.last_pid is not None
    return Served(settings, warm.starter_pid, warm.last_pid)


def _dbt_pids(output_tail: str) -> set[int]:
    """The process ids dbt's JSON log lines (``--log-format json``) name."""
    pids = set()
    for line in output_tail.splitlines():
        if line.startswith("{"):
            pids.add(json.loads(line)["info"]["pid"])
    return pids


def test_later_commands_are_forked_from_one_starter_each_a_process_of_its_own(
    warm: WarmDbt, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    listed = run_dbt(["ls", "--resource-type", "seed", "--log-format", "json"], settings)
    starter = warm.starter_pid
    first = warm.last_pid
    again = run_dbt(["ls", "--resource-type", "seed", "--log-format", "json"], settings)

    assert listed.returncode == again.returncode == 0
    assert starter is not None
    assert warm.starter_pid == starter  # one starter serves both commands
    # dbt ran in the processes the starter forked: two, neither of them the starter.
    assert _dbt_pids(listed.output_tail) == {first}
    assert _dbt_pids(again.output_tail) == {warm.last_pid}
    assert len({starter, first, warm.last_pid, os.getpid()}) == 4
    # The command's output is dbt's: the project's seeds, listed.
    seeds = [
        json.loads(line)["data"]["msg"]
        for line in again.output_tail.splitlines()
        if line.startswith("{") and json.loads(line)["info"]["name"] == "PrintEvent"
    ]
    assert "social_leadership.countries" in seeds


def test_each_command_has_its_own_folder_and_environment_and_a_failure_ends_only_it(
    warm: WarmDbt, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = settings_for_data_dir(monkeypatch, tmp_path / "first")
    second = settings_for_data_dir(monkeypatch, tmp_path / "second")
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "info")  # dbt's file log, off by default
    run_dbt(["parse"], first)
    starter, forked = warm.starter_pid, warm.last_pid
    assert starter is not None

    with pytest.raises(DbtError) as failed:
        run_dbt(["parse", "--profile", "no_such_profile"], second)
    run_dbt(["parse"], second)

    assert failed.value.result.returncode != 0
    assert "no_such_profile" in failed.value.result.output_tail
    # Each command wrote its log where its own environment said (DBT_LOG_PATH), and its
    # target folder as its own arguments said, from its own working folder.
    for settings in (first, second):
        assert (settings.logs_dir / "dbt" / "dbt.log").is_file()
        assert (settings.dbt_target_dir / "manifest.json").is_file()
    assert "no_such_profile" in (second.logs_dir / "dbt" / "dbt.log").read_text()
    assert "no_such_profile" not in (first.logs_dir / "dbt" / "dbt.log").read_text()
    assert warm.starter_pid == starter  # the failed command ended, the starter did not
    assert warm.last_pid != forked


def test_a_commands_environment_never_reaches_the_next_command(
    warm: WarmDbt, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    show = ["show", "--inline", 'select \'{{ env_var("SLW_TEST_MARK", "unset") }}\' as mark']

    marked = run_dbt(show, settings, env={"SLW_TEST_MARK": "marked"})
    starter = warm.starter_pid
    unmarked = run_dbt(show, settings)

    assert starter is not None
    assert warm.starter_pid == starter
    assert "| marked |" in marked.output_tail
    assert "| unset |" in unmarked.output_tail


@pytest.mark.timeout(180)  # ENDLESS runs on should the code under test break
def test_a_signal_meant_for_dbt_ends_dbt_alone_with_dbts_status(
    warm: WarmDbt, served: Served
) -> None:
    # Airflow ends a task by signalling its whole process group, the starter included:
    # the starter stays, the command ends as a dbt process ends (-15: SIGTERM).
    settings, starter, first_pid = served.settings, served.starter, served.first_pid
    os.kill(starter, signal.SIGINT)
    os.kill(starter, signal.SIGTERM)

    def terminate() -> None:
        assert warm.last_pid is not None
        os.kill(starter, signal.SIGTERM)
        os.kill(warm.last_pid, signal.SIGTERM)

    started = _Once(lambda: warm.last_pid != first_pid, terminate)
    with started, pytest.raises(DbtError) as ended:
        run_dbt(ENDLESS, settings)

    assert ended.value.result.returncode == -signal.SIGTERM
    assert "outcome is unknown" not in str(ended.value)
    assert warm.starter_pid == starter
    assert run_dbt(["parse"], settings).returncode == 0


def test_a_starter_that_cannot_start_leaves_every_command_cold_saying_why_once(
    warm: WarmDbt,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    tries = []

    def failing_starter() -> list[str]:
        tries.append(1)
        return [sys.executable, "-c", "import sys; sys.exit('ModuleNotFoundError: no dbt here')"]

    monkeypatch.setattr(warm, "_starter_command", failing_starter)
    with caplog.at_level("WARNING", logger="social_leadership.dbt_warm"):
        assert run_dbt(["parse"], settings).returncode == 0
        assert run_dbt(["parse"], settings).returncode == 0

    assert len(tries) == 1
    assert warm.starter_pid is None
    assert warm.last_pid is None
    warnings = [r.getMessage() for r in caplog.records if r.name == "social_leadership.dbt_warm"]
    assert len(warnings) == 1
    assert "ModuleNotFoundError: no dbt here" in warnings[0]


def test_dbt_starts_cold_when_the_setting_is_off_or_dbt_is_another_program(
    warm: WarmDbt, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    off = dataclasses.replace(settings, dbt_warm_start=False)
    assert run_dbt(["parse"], off).returncode == 0
    # A wrapper in dbt's place (as the benchmarks put one to measure dbt's memory) runs
    # itself, not this environment's dbt.
    marker = tmp_path / "wrapper-ran"
    wrapper = (
        f"import pathlib, sys; pathlib.Path({str(marker)!r}).touch(); "
        "from dbt.cli.main import cli; sys.argv[0] = 'dbt'; sys.exit(cli())"
    )
    monkeypatch.setattr(dbt_runner, "dbt_command", lambda: [sys.executable, "-c", wrapper])
    assert run_dbt(["parse"], settings).returncode == 0

    assert marker.is_file()
    assert warm.starter_pid is None
    assert warm.last_pid is None


def test_a_busy_starter_leaves_the_command_to_a_cold_start_and_a_lost_one_is_replaced(
    warm: WarmDbt, served: Served
) -> None:
    settings, starter, forked = served.settings, served.starter, served.first_pid

    # Busy with another thread's command: this one starts as a new dbt process.
    with warm._lock:
        assert run_dbt(["parse"], settings).returncode == 0
    assert (warm.starter_pid, warm.last_pid) == (starter, forked)

    # The starter gone (killed between commands): the next command gets a new one.
    os.kill(starter, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while warm.starter_pid is not None and time.monotonic() < deadline:
        time.sleep(0.05)  # starter_pid reaps it once it has ended
    assert warm.starter_pid is None
    assert run_dbt(["parse"], settings).returncode == 0
    assert warm.starter_pid not in (None, starter)
    assert warm.last_pid != forked


class _Interrupted(Exception):
    pass


def _interrupt(signum: int, frame: object) -> None:
    """A signal handler that raises, as a task's timeout does."""
    raise _Interrupted


# A dbt command that runs for many minutes (a sum over 10^12 rows): ended only by a kill,
# so a test seeing it gone within seconds saw it killed.
ENDLESS = ["show", "--inline", "select sum(range) as s from range(1000000000000)"]


class _Once:
    """While in its ``with`` block, calls ``then()`` once ``ready()`` holds (polled for up
    to 60 s); never after the block, nor when it never held."""

    def __init__(self, ready: Callable[[], bool], then: Callable[[], object]) -> None:
        self._done = threading.Event()

        def wait() -> None:
            deadline = time.monotonic() + 60
            while not ready() and time.monotonic() < deadline:
                if self._done.wait(0.005):
                    return
            if ready() and not self._done.is_set():
                then()

        self._thread = threading.Thread(target=wait, daemon=True)

    def __enter__(self) -> _Once:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=30)


@contextlib.contextmanager
def _interruptible_main() -> Iterator[Callable[[], None]]:
    """For the block, SIGUSR1 raises :class:`_Interrupted` in the main thread, as a task's
    timeout does; yields what sends it."""
    previous = signal.signal(signal.SIGUSR1, _interrupt)
    main = threading.main_thread().ident
    try:
        yield lambda: signal.pthread_kill(main, signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _wait_gone(pid: int, seconds: float = 20) -> bool:
    """Whether the process ends within ``seconds``: no such process, or a zombie (ended,
    not yet reaped by whoever adopted it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(180)  # ENDLESS runs on should the code under test break
def test_an_interrupted_wait_ends_the_dbt_command_it_waited_for(
    warm: WarmDbt, served: Served
) -> None:
    settings, first_starter, first_pid = served.settings, served.starter, served.first_pid

    # As a task's timeout or Ctrl-C interrupts it: once the next command runs, a signal
    # whose handler raises reaches the waiting thread.
    with (
        _interruptible_main() as interrupt,
        _Once(lambda: warm.last_pid != first_pid, interrupt),
        pytest.raises(_Interrupted),
    ):
        run_dbt(ENDLESS, settings)

    interrupted = warm.last_pid
    assert interrupted not in (None, first_pid)
    assert _wait_gone(interrupted), "the interrupted dbt command still runs"
    assert _wait_gone(first_starter), "its starter still runs"
    # The next command gets a new starter.
    assert run_dbt(["parse"], settings).returncode == 0
    assert warm.starter_pid not in (None, first_starter)


@pytest.mark.timeout(180)  # ENDLESS runs on should the code under test break
def test_a_starter_lost_while_dbt_runs_fails_the_command_and_ends_dbt(
    warm: WarmDbt, served: Served
) -> None:
    settings, starter, first_pid = served.settings, served.starter, served.first_pid

    kill_starter = _Once(
        lambda: warm.last_pid != first_pid, lambda: os.kill(starter, signal.SIGKILL)
    )
    with kill_starter, pytest.raises(DbtError) as failed:
        run_dbt(ENDLESS, settings)

    assert f"the process that started dbt (pid {starter}) ended" in str(failed.value)
    assert _wait_gone(warm.last_pid), "dbt still runs without its starter"
    assert run_dbt(["parse"], settings).returncode == 0
    assert warm.starter_pid not in (None, starter)


def test_a_wait_interrupted_before_dbt_started_leaves_the_next_commands_their_own_replies(
    warm: WarmDbt, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The first command of a process waits about a second for its starter to import dbt:
    # a task's timeout (a signal whose handler raises) may come then.
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")

    # Once the starter runs: it imports dbt for about a second before it answers.
    with (
        _interruptible_main() as interrupt,
        _Once(lambda: warm.starter_pid is not None, interrupt),
        pytest.raises(_Interrupted),
    ):
        run_dbt(["parse"], settings)

    for _ in range(2):
        listed = run_dbt(["ls", "--resource-type", "seed", "--log-format", "json"], settings)
        assert listed.returncode == 0
        assert _dbt_pids(listed.output_tail) == {warm.last_pid}
        assert '"social_leadership.countries"' in listed.output_tail


def _python(
    script: str, *args: str, env: dict[str, str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``script`` run by this Python with the package importable, checked."""
    from social_leadership.settings import PACKAGE_DIR

    return subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**env, "PYTHONPATH": str(PACKAGE_DIR.parent)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        **kwargs,
    )


def _request(
    settings: Settings, args: list[str], outputs: Path, number: int, target: Path | None = None
) -> str:
    """A starter's request line for ``dbt <args>`` (into ``target``, if given), its output
    in ``outputs``' ``stdout<number>`` and ``stderr<number>``."""
    argv = dbt_runner.dbt_invocation(args, settings)
    if target is not None:
        argv[argv.index("--target-path") + 1] = str(target)
    request = {
        "argv": argv,
        "cwd": str(settings.data_dir),
        "env": dbt_runner.dbt_env(settings),
        "stdout": str(outputs / f"stdout{number}"),
        "stderr": str(outputs / f"stderr{number}"),
    }
    return json.dumps(request) + "\n"


SCHEMAS_BUILT_BY_A_COMMAND = """
import json, sys
from social_leadership import dbt_warm

if sys.argv.pop(1) == "warm":
    dbt_warm.warm_up()
from dbt_common import dataclass_schema

built = []
build = dataclass_schema.build_json_schema
def recording(cls, *args, **kwargs):
    built.append(cls.__name__)
    return build(cls, *args, **kwargs)
dataclass_schema.build_json_schema = recording
from dbt.cli.main import cli

sys.argv = ["dbt", *sys.argv[1:]]
try:
    cli()
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "built": built}))
"""


def test_a_command_after_the_starter_s_warm_up_builds_none_of_its_schemas(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from social_leadership import dbt_warm

    def schemas_built(start: str, folder: str) -> set[str]:
        """The schemas ``dbt parse`` built in a process started ``start`` (warm, cold)."""
        settings = settings_for_data_dir(monkeypatch, tmp_path / folder)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        command = dbt_runner.dbt_invocation(["parse"], settings)[len(dbt_runner.dbt_command()) :]
        ran = _python(
            SCHEMAS_BUILT_BY_A_COMMAND,
            start,
            *command,
            env=dbt_runner.dbt_env(settings),
            cwd=settings.data_dir,
        )
        outcome = json.loads(ran.stdout.splitlines()[-1])
        assert outcome["code"] == 0, ran.stdout[-2000:]
        assert (settings.dbt_target_dir / "manifest.json").is_file()
        return set(outcome["built"])

    # The command validates its project, flags, packages, selectors and profile: started
    # cold it builds their schemas, after the warm-up it finds them built.
    validated = {
        "Project",
        "ProjectFlags",
        "PackageConfig",
        "ProfileConfig",
        "Configuration",
        "SelectorFile",
        "DuckDBCredentials",
    }
    assert {name for _, name in dbt_warm.VALIDATED_CLASSES} == validated
    assert validated <= schemas_built("cold", "cold")
    assert not validated & schemas_built("warm", "warm")


def test_the_starter_builds_the_schemas_every_command_validates_against(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    import yaml
    from dbt_common import dataclass_schema

    from social_leadership import dbt_warm
    from social_leadership.settings import DBT_PROJECT_DIR

    def refuse(cls: type) -> None:
        raise AssertionError(f"built the schema of {cls.__name__} again")

    dbt_warm.build_schemas()
    classes = [getattr(importlib.import_module(m), n) for m, n in dbt_warm.VALIDATED_CLASSES]
    # dbt_common caches every class's schema in one cache, for this whole process: emptied,
    # each is built anew.
    classes[0].json_schema.__func__.cache_clear()
    with monkeypatch.context() as patched:
        patched.setattr(dataclass_schema, "build_json_schema", refuse)
        with pytest.raises(AssertionError, match="built the schema"):
            classes[0].json_schema()

    dbt_warm.build_schemas()

    monkeypatch.setattr(dataclass_schema, "build_json_schema", refuse)
    for cls in classes:
        cls.json_schema()
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    classes[0].validate(project)


SERVED_IN_TURN = """
import io, json, sys
from social_leadership import dbt_warm

reports = []

class Recording(dbt_warm.FirstUse):
    def learn(self):
        reports.append(self.reported())
        return super().learn()

dbt_warm.warm_up()
first_use = Recording()
replies = io.BytesIO()
dbt_warm.serve(io.BytesIO(sys.argv[1].encode()), replies, first_use)
print(json.dumps({
    "replies": [json.loads(line) for line in replies.getvalue().splitlines()],
    "reports": reports,
}))
"""


def test_the_starter_builds_between_commands_what_the_last_one_built_on_first_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from slw_testing import PARSE_SEED_VARIABLE

    # Each parse a full one: no saved parse of the session's; the lists read the parse's.
    monkeypatch.delenv(PARSE_SEED_VARIABLE, raising=False)
    monkeypatch.delenv("DBT_PARTIAL_PARSE", raising=False)
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    # A full parse (no saved parse yet), two lists reading the parse it saved, then a full
    # parse into a new target folder.
    listing = ["ls", "--resource-type", "model"]
    requests = [
        _request(settings, ["parse"], tmp_path, 0, tmp_path / "target"),
        _request(settings, listing, tmp_path, 1, tmp_path / "target"),
        _request(settings, listing, tmp_path, 2, tmp_path / "target"),
        _request(settings, ["parse"], tmp_path, 3, tmp_path / "other_target"),
    ]
    ran = _python(SERVED_IN_TURN, "".join(requests), env=dict(os.environ))
    outcome = json.loads(ran.stdout.splitlines()[-1])

    assert [reply.get("returncode") for reply in outcome["replies"][1::2]] == [0, 0, 0, 0]
    first_parse, first_list, second_list, second_parse = outcome["reports"]
    # The full parse compiled serializers and built the schemas of the nodes it validated;
    # the first list read the saved parse with serializers no parse had used.
    assert first_parse["serializers"]
    assert first_parse["schemas"]
    assert first_list["serializers"]
    # Each built nothing the starter had built after the command before.
    assert second_list == {"serializers": [], "schemas": []}
    assert second_parse == {"serializers": [], "schemas": []}
    # What they did with what the starter built is what the first ones did.
    listed = [(tmp_path / f"stdout{number}").read_text(encoding="utf-8") for number in (1, 2)]
    assert "social_leadership.marts.fct_executive_reach_daily" in listed[1]
    assert _models(listed[0]) == _models(listed[1])
    manifests = [
        json.loads((tmp_path / folder / "manifest.json").read_text(encoding="utf-8"))
        for folder in ("target", "other_target")
    ]
    assert manifests[0]["nodes"].keys() == manifests[1]["nodes"].keys()
    for unique_id, node in manifests[0]["nodes"].items():
        assert {k: v for k, v in node.items() if k != "created_at"} == {
            k: v for k, v in manifests[1]["nodes"][unique_id].items() if k != "created_at"
        }


def _models(output: str) -> list[str]:
    return sorted(line for line in output.splitlines() if line.startswith("social_leadership."))


STARTER_WITH = """
import sys
from social_leadership import dbt_warm

dbt_warm.warm_up()
if sys.argv[1] == "printing":
    class Printing(dbt_warm.FirstUse):
        def learn(self):
            import os
            print("printed while learning", flush=True)
            os.write(1, b"written to descriptor 1 while learning\\n")
            return super().learn()

    dbt_warm.main(Printing())
else:
    class Failing(dbt_warm.FirstUse):
        def __init__(self):
            raise OSError("no temporary file to be had")

    dbt_warm.FirstUse = Failing
    dbt_warm.main()
"""


@pytest.mark.parametrize("first_use", ["printing", "failing"])
def test_the_starter_replies_whatever_its_building_between_commands_prints_or_fails(
    first_use: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    listing = ["ls", "--resource-type", "seed"]
    requests = "".join(_request(settings, listing, tmp_path, number) for number in (1, 2))
    ran = _python(STARTER_WITH, first_use, env=dict(os.environ), input=requests)

    # Its standard output holds its replies and nothing else.
    replies = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [sorted(reply) for reply in replies] == [["pid"], ["returncode"]] * 2
    assert [reply["returncode"] for reply in replies[1::2]] == [0, 0]
    for number in (1, 2):
        listed = (tmp_path / f"stdout{number}").read_text(encoding="utf-8")
        assert "social_leadership.countries" in listed
    if first_use == "printing":
        assert ran.stderr.count("printed while learning") == 2
        assert ran.stderr.count("written to descriptor 1 while learning") == 2


def test_a_compiled_serializer_gives_what_the_one_compiled_on_first_use_gives() -> None:
    from dbt_classes import Point, Tag, Twin

    from social_leadership import dbt_warm

    def waiting() -> list[tuple[type, str, object]]:
        return [
            entry
            for entry in dbt_warm._lazy_serializers(dbt_warm._dbt_classes())
            if entry[0] in (Tag, Point)
        ]

    assert {name for _, name, _ in waiting()} == {
        "__mashumaro_from_dict__",
        "__mashumaro_to_dict__",
        "__mashumaro_from_msgpack__",
        "__mashumaro_to_msgpack__",
    }
    assert {
        name for cls, name, _ in dbt_warm._lazy_serializers(dbt_warm._dbt_classes()) if cls is Twin
    }
    # Compiled, Point's MessagePack serializers leave stand-ins for Tag's as a field's
    # (mashumaro 3.14), compiled in a second round.
    rounds = 0
    while (entries := waiting()) and rounds < 5:
        assert sum(dbt_warm._compile(*entry) for entry in entries) == len(entries)
        rounds += 1
    assert rounds == 2
    assert not waiting()

    value = {"x": 1, "tags": [{"name": "ceo"}], "label": None}
    point, twin = Point.from_dict(value), Twin.from_dict(value)
    assert point.to_dict(omit_none=False) == twin.to_dict(omit_none=False) == value
    assert Point.from_msgpack(point.to_msgpack()) == point
    assert point.to_msgpack() == twin.to_msgpack()
    with pytest.raises(Exception, match="x"):
        Point.from_dict({"tags": []})


def test_compiling_a_serializer_runs_none_of_its_code() -> None:
    from dbt_classes import SERIALIZED, Hooked

    from social_leadership import dbt_warm

    waiting = [
        entry for entry in dbt_warm._lazy_serializers(dbt_warm._dbt_classes()) if entry[0] is Hooked
    ]
    serializers = [entry for entry in waiting if not isinstance(entry[2], classmethod)]
    assert {name for _, name, _ in serializers} == {
        "__mashumaro_to_dict__",
        "__mashumaro_to_msgpack__",
    }
    assert sum(dbt_warm._compile(*entry) for entry in serializers) == 2
    assert SERIALIZED == []
    assert Hooked(3).to_dict() == {"x": 3}
    assert SERIALIZED == [3]


def test_a_report_that_is_no_report_of_what_was_built_builds_nothing() -> None:
    from dbt_classes import Lone

    from social_leadership import dbt_warm

    first_use = dbt_warm.FirstUse()
    try:
        waiting = len(first_use._waiting)
        nothing = {"serializers": [], "schemas": []}
        for report in (
            b"",
            b"{",
            b"[1, 2]",
            b'{"serializers": {"0": 1}, "schemas": "0"}',
            b'{"serializers": ["0", -1, 1e9, true, 99999999], "schemas": [-1, 99999999]}',
        ):
            first_use.clear_report()
            os.pwrite(first_use._reports.fileno(), report, 0)
            assert first_use.reported() == nothing
            assert first_use.learn() == 0
        assert len(first_use._waiting) == waiting
        # A child's report: what it compiled, by its place in the starter's list.
        compiled = [
            index
            for index, (cls, name, _) in enumerate(first_use._waiting)
            if cls is Lone and name == "__mashumaro_from_dict__"
        ]
        assert len(compiled) == 1
        first_use.clear_report()
        assert Lone.from_dict({"x": 2}) == Lone(2)
        first_use.report()
        assert first_use.reported() == {"serializers": compiled, "schemas": []}
    finally:
        first_use.close()
