"""Real servers for the ``scale`` tests, from the operating system's packages, on loopback.

PostgreSQL (``initdb``/``pg_ctl``, as the ``postgres`` user when run as root, as initdb
refuses root) and Redis (``redis-server``), each in a temporary folder removed afterwards.
When the programs are missing they are installed with apt-get if this runs as root;
otherwise the test is skipped, saying what to install.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from slw_testing import free_port

MARTS = (
    "select table_name from information_schema.tables where table_catalog = current_database() "
    "and table_schema = 'marts' and table_type = 'BASE TABLE' order by 1"
)


def marts(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """Every mart's rows, sorted, by table name."""
    return {
        table: con.execute(f"select * from marts.{table} order by all").fetchall()
        for (table,) in con.execute(MARTS).fetchall()
    }


def _postgres_programs() -> Path | None:
    for candidate in (
        shutil.which("pg_ctl"),
        *sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve().parent
    return None


def _apt_install(package: str) -> None:
    """Install a Debian package when root (the one step that may use the network)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package], check=False, capture_output=True, env=env
    )


def _as_server_user(command: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as ``postgres`` then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@dataclass(frozen=True)
class Postgres:
    """A running server: the role ``user`` with ``password`` owns ``databases``."""

    port: int
    user: str
    password: str
    programs: Path

    def create_database(self, database: str) -> None:
        subprocess.run(
            [
                str(self.programs / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                database,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": self.password},
        )

    def catalog(self, database: str) -> str:
        """SLW_DUCKLAKE_CATALOG for ``database`` (no password: PGPASSWORD carries it)."""
        return f"postgres:dbname={database} host=127.0.0.1 port={self.port} user={self.user}"

    def sqlalchemy_url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"


@contextmanager
def postgres_server(databases: tuple[str, ...], password: str) -> Iterator[Postgres]:
    """A PostgreSQL server on loopback (password authentication) with ``databases``."""
    programs = _postgres_programs()
    if programs is None:
        _apt_install("postgresql")
        programs = _postgres_programs()
    if programs is None:
        pytest.skip(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed (apt-get installs "
            "them only as root): apt-get install postgresql, or your system's package"
        )
    # Not below pytest's temporary root: that is private to this user, and the server's
    # user must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="slw-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    password_file = folder / "password"
    password_file.write_text(password)
    if os.geteuid() == 0:
        shutil.chown(password_file, "postgres")
    pg_ctl = str(programs / "pg_ctl")
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(programs / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "slw",
                    "--auth",
                    "scram-sha-256",
                    "--pwfile",
                    str(password_file),
                ]
            ),
            check=True,
            capture_output=True,
        )
        # Airflow's scheduler, API server, DAG processor and workers each hold a pool.
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
        subprocess.run(
            _as_server_user(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(folder / "server.log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        server = Postgres(port, "slw", password, programs)
        for database in databases:
            server.create_database(database)
        yield server
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[int]:
    """A Redis server on loopback, nothing persisted; yields its port."""
    program = shutil.which("redis-server")
    if program is None:
        _apt_install("redis-server")
        program = shutil.which("redis-server")
    if program is None:
        pytest.skip(
            "redis-server is not installed (apt-get installs it only as root): "
            "apt-get install redis-server, or your system's package"
        )
    folder = Path(tempfile.mkdtemp(prefix="slw-redis-"))
    port = free_port()
    command = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder), "--logfile", str(folder / "log")]
    server = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {folder / 'log'}") from None
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)
