"""Helpers that test modules in different folders share.

``tests/`` is on ``sys.path`` (the folder of the top ``conftest.py``), so any test module or
conftest imports this module by name; the folders' own conftest modules cannot import each
other, being all named ``conftest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

# dbt reads its saved parse from this file instead of its target folder's: set by
# tests/conftest.py to the project's parse made once per test process. A test whose dbt
# renders another profile (a DuckLake) or builds a copy of the project unsets it, so that
# dbt keeps its own (each command would parse the whole project otherwise, or reuse the
# seeds' paths of the repository's project).
PARSE_SEED_VARIABLE = "DBT_PARTIAL_PARSE_FILE_PATH"

T = TypeVar("T")


def shared_by_workers(root: Path, make: Callable[[Path], T], dump, load) -> T:
    """``make(root / "data")`` once for every process of a test run that asks: the first
    makes it while holding ``root``'s lock and records it with ``dump(made, path)``; the
    others wait for the lock and get ``load(root / "data", path)``."""
    root.mkdir(parents=True, exist_ok=True)
    record = root / "made.json"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if record.is_file():
                return load(root / "data", record)
            made = make(root / "data")
            dump(made, record)
            return made
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# A real publish in a Python process of its own: ``[sys.executable, "-c", PUBLISH_SCRIPT,
# run_id]`` with :func:`package_env`, the data folder its working directory. It prints
# whether the single file was updated from the spare.
PUBLISH_SCRIPT = """
import sys
from social_leadership.serving import publish
from social_leadership.settings import load_settings

publication = publish(load_settings(), sys.argv[1], synthetic=True)
print("from spare" if publication.serving_file_from_spare else "copied or built")
"""


def package_env(**extra: str) -> dict[str, str]:
    """This environment, the package importable (for ``python -c`` children), and ``extra``."""
    from social_leadership.settings import PACKAGE_DIR

    return {**os.environ, "PYTHONPATH": str(PACKAGE_DIR.parent), **extra}


def free_port() -> int:
    """A loopback TCP port free right now (for servers that need one up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clear_of_midnight(
    seconds: float,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait, when the UTC day ends within ``seconds``, until the next day has begun; return
    the seconds waited.

    A platform run labels its counts with its logical date only while that date is today
    (UTC): a run started just before midnight and extracting just after is a backfill, and
    loads nothing. A test whose runs must load today's counts calls this first, with the
    seconds those runs may take, rather than fail when a suite crosses midnight.
    """
    moment = now().astimezone(UTC)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
    left = (midnight - moment).total_seconds()
    if left >= seconds:
        return 0.0
    print(f"waiting {left:.0f}s for the UTC day to change before a same-day run", flush=True)
    sleep(left + 1)
    return left + 1


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives (recipients, raw bytes),
    refusing the recipients in ``refuse`` (550, as a server does for an unknown user);
    ``data_reply`` answers every message instead of taking it (``554 5.3.4 message too
    big``), ``data_delay`` seconds after it came."""

    def __init__(self, refuse: Iterable[str] = ()) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse = set(refuse)
        self.data_reply: str | None = None
        self.data_delay = 0.0
        # Recipients whose message is refused after DATA (552: a mailbox full).
        self.full: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply is not None:
            return self.data_reply
        if self.full & set(envelope.rcpt_tos):
            return "552 5.2.2 mailbox full"
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


@contextlib.contextmanager
def loopback_smtp(
    monkeypatch: Any, mailbox: Mailbox | None = None, **extra: Any
) -> Iterator[Mailbox]:
    """A real SMTP server on loopback (aiosmtpd) keeping what it receives in ``mailbox``,
    and the Airflow connection ``slw_smtp`` to it (plain SMTP, one connection retry, and
    ``extra``, such as ``from_email``); stopped on leaving."""
    from aiosmtpd.controller import Controller

    mailbox = mailbox if mailbox is not None else Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    options = {"disable_ssl": True, "disable_tls": True, "retry_limit": 1, **extra}
    connection = {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port}
    monkeypatch.setenv("AIRFLOW_CONN_SLW_SMTP", json.dumps({**connection, "extra": options}))
    try:
        yield mailbox
    finally:
        controller.stop()


def run_slw(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """``slw <args>`` in a process of its own with ``env``, as a user runs it (this
    interpreter's ``python -m social_leadership``); its output captured, never raising."""
    return subprocess.run(
        [sys.executable, "-m", "social_leadership", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


_KEYS_PROBE = """
import json, sys
import duckdb

con = duckdb.connect()
try:  # the option (DuckDB 1.2 and later) keeps the file at the version it has
    con.execute(f"attach '{sys.argv[1]}' as f (storage_version 'v1.1.0')")
except duckdb.BinderException:  # DuckDB 1.1 writes v1.1.0 itself
    con.execute(f"attach '{sys.argv[1]}' as f")
if len(sys.argv) > 2:
    fact = f'f.marts."{sys.argv[2]}"'
    con.execute(
        f"insert into {fact} select * replace (metric_date + 1 as metric_date) from {fact} "
        f"where metric_date = (select max(metric_date) from {fact})"
    )
    con.execute("checkpoint f")
keyed = con.execute(
    "select distinct table_name from duckdb_constraints() where database_name = 'f' "
    "and schema_name = 'marts' and constraint_type = 'PRIMARY KEY' order by 1"
).fetchall()
outcomes = {}
for (name,) in keyed:
    table = f'f.marts."{name}"'
    if con.execute(f"select count(*) from {table}").fetchone()[0] == 0:
        continue
    try:
        con.execute(f"insert into {table} select * from {table} limit 1")
        outcomes[name] = "accepted"
    except duckdb.ConstraintException:
        outcomes[name] = "refused"
print(json.dumps({"version": duckdb.__version__, "outcomes": outcomes}))
"""


def probe_single_file_keys(
    python: str, path: Path, fact: str | None = None, *, env: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Give every non-empty keyed mart of the single file at ``path`` (a scratch copy) one
    of its rows again, with the DuckDB of ``python``, in a process of its own (a broken key
    index crashed DuckDB); ``fact`` first takes a new day, when given. Returns that
    DuckDB's version and, per keyed mart, ``refused`` or ``accepted``; fails on a crash.

    No new day for DuckDB 1.1: its own checkpoint of a file DuckDB 1.5 wrote breaks other
    tables' keys (a client of the file reads it, README)."""
    result = subprocess.run(
        [python, "-c", _KEYS_PROBE, str(path), *([fact] if fact else [])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    seen = json.loads(result.stdout)
    return seen["version"], seen["outcomes"]


def refused_after_a_batch(sandbox: Any, connector: Any, handles: list[str], status: int) -> Any:
    """What ``connector.extract(handles)`` read when its first request to ``sandbox`` (the
    id batch) is answered and its second refused with ``status``: the refusal's
    ``partial``."""
    import pytest

    from social_leadership.platforms.base import PlatformError

    sandbox.add_fault("slow", platform=connector.platform, delay_seconds=0)
    sandbox.add_fault("echo", platform=connector.platform, status=status)
    with pytest.raises(PlatformError, match=str(status)) as refused:
        connector.extract(handles)
    assert refused.value.partial is not None
    return refused.value.partial


class SandboxProcess:
    """``python -m social_leadership.sandbox`` on a free port with ``options``, run for the
    ``with`` block and stopped with SIGTERM: ``base_url`` once it listens, ``stdout`` and
    ``returncode`` once it ended."""

    def __init__(self, ready: Path, *options: str) -> None:
        self.ready = ready
        self.options = options
        self.base_url = ""
        self.stdout = ""
        self.returncode: int | None = None

    def __enter__(self) -> SandboxProcess:
        from social_leadership.settings import REPO_ROOT

        command = [sys.executable, "-m", "social_leadership.sandbox", "--port", "0"]
        self._process = subprocess.Popen(
            [*command, "--ready-file", str(self.ready), *self.options],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "include")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not self.ready.exists() and time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        if not self.ready.exists():
            self._process.kill()
            _, errors = self._process.communicate(timeout=10)
            raise AssertionError(f"the sandbox did not start: {errors[-2000:]}")
        self.base_url = self.ready.read_text().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.send_signal(signal.SIGTERM)
        try:
            self.stdout, _ = self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self.stdout, _ = self._process.communicate(timeout=10)
        self.returncode = self._process.returncode


def roster_of(accounts: list[tuple[str, str]]) -> Any:
    """A roster of one executive per (platform, handle)."""
    from social_leadership.roster import Account, Executive, Roster

    executives = [
        Executive(f"e{n}", f"Person {n}", "CEO", "Synthetic Co", "DE", "Energy", True)
        for n in range(len(accounts))
    ]
    return Roster(
        executives=executives,
        accounts=[Account(f"e{n}", p, h) for n, (p, h) in enumerate(accounts)],
    )


# What a web page loads from another host (not what it links to): a script's src, a style
# sheet's, icon's or image's href or src.
LOADED_ADDRESS = re.compile(
    r"<(?:script|link|img)\b[^>]*?\b(?:src|href)=[\"']((?:https?:)?//[^\"']+)[\"']", re.I
)


def import_while_a_build_plans(
    monkeypatch: Any, importer: Any, folder: Path, plan_and_record: Callable[[], Any]
) -> tuple[Any, list[Any]]:
    """Import two days of one executive's history (2025-03-01 and 02) on ``importer``,
    running ``plan_and_record`` (a build's plan, recorded, on another connection) inside the
    import's open transaction: the import's outcome, and the plans it returned."""
    from datetime import date

    from social_leadership import follower_imports
    from social_leadership.roster import Account, Executive, Roster

    plans = []
    import_started = follower_imports.warehouse_has_imports

    def build_meanwhile(con: Any) -> bool:
        plans.append(plan_and_record())
        return import_started(con)

    monkeypatch.setattr(follower_imports, "warehouse_has_imports", build_meanwhile)
    history = folder / "history.csv"
    history.write_text(
        "executive_id,platform,date,followers\njoe,x,2025-03-01,5\njoe,x,2025-03-02,6\n",
        encoding="utf-8",
    )
    roster = Roster(
        executives=[Executive("joe", "J", "Chair", "Siemens", "DE", "Industrials", False)],
        accounts=[Account("joe", "x", "JoeKaeser")],
    )
    outcome = follower_imports.import_history(
        importer, history, roster, folder / "q", today=date(2026, 3, 2)
    )
    return outcome, plans
