"""Compare ways of serving the marts to BI readers that keep their connections open.

An evaluation, not a benchmark (not run by ``make bench``): it measured the choice of
DuckLake with a SQLite catalog in WAL mode for the serving copy (README, "Why the serving
copy is a DuckLake"). Run it again after upgrading DuckDB or DuckLake::

    .venv/bin/python bench/compare_serving.py [--rows 1000000] [--json]

Five candidates serve the same two tables, ``facts`` (``--rows`` rows over 30 days) and
``summary`` (one row), both stamped with the number of the publication that wrote them:

- ``a_swap``: one DuckDB file, rebuilt beside and swapped in with ``os.replace``;
- ``b_in_place``: one DuckDB file the publisher updates in place;
- ``c_parquet_views``: a DuckDB file of views over a Parquet folder behind a ``current``
  symlink, each publication a new folder;
- ``d_lake_rollback``: DuckLake, SQLite catalog in its default rollback-journal mode;
- ``e_lake_wal``: DuckLake, SQLite catalog in WAL mode.

Candidates that can update in place (b, d, e) republish one day of ``facts`` and the
summary, as the daily publish does; a and c write everything again, as they must. Each
publication is its own process's work (connect, write, close), timed in this process.
The reader is a separate process driven over a pipe: it connects once and keeps its
connection, as a BI pool does, and answers which publication each table shows.

For each candidate the script asks:

- fresh: after a publish, does the pooled reader's next query show it?
- reconnect: does a new connection opened in that reader's process show it?
- one snapshot: a reader opens a transaction, reads ``facts``, a publish happens, it reads
  ``summary``: do both show the same publication?
- the publish with the reader's connection idle, and with the reader inside a transaction:
  ok (and its latency) or its error;
- the publish with no reader, and the reader's latency for a daily aggregate over ``facts``
  (medians).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

DAYS = 30
AGGREGATE = "select day, sum(value), count(*) from facts group by day order by day"
CANDIDATES = ("a_swap", "b_in_place", "c_parquet_views", "d_lake_rollback", "e_lake_wal")


def _extension(name: str) -> str:
    """The extension file of the ``duckdb-extension-<name>`` wheel (DuckDB cannot download)."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"pip install duckdb-extension-{name.replace('_', '-')}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return str(folder / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension")


def _lake_connection(root: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in ("ducklake", "sqlite_scanner"):
        con.execute(f"load '{_extension(name)}'")
    option = "read_only" if read_only else f"data_path '{root / 'files'}/'"
    con.execute(f"attach 'ducklake:sqlite:{root / 'catalog.sqlite'}' as lake ({option})")
    con.execute("use lake")
    return con


def _write_everything(con: duckdb.DuckDBPyConnection, rows: int, publication: int) -> None:
    con.execute(
        f"create or replace table facts as select i % {DAYS} as day, i // {DAYS} as key, "
        f"hash(i) % 1000 as value, {publication} as publication from range({rows}) t (i)"
    )
    con.execute(f"create or replace table summary as select {publication} as publication")


def _write_last_day(con: duckdb.DuckDBPyConnection, rows: int, publication: int) -> None:
    """The daily publish: the last day of ``facts`` and the summary, in one transaction."""
    last = DAYS - 1
    con.execute("begin")
    con.execute(f"delete from facts where day = {last}")
    con.execute(
        f"insert into facts select {last}, i // {DAYS}, hash(i) % 1000, {publication} "
        f"from range({rows}) t (i) where i % {DAYS} = {last}"
    )
    con.execute("delete from summary")
    con.execute(f"insert into summary values ({publication})")
    con.execute("commit")


# --- the candidates: how the publisher writes, how a reader connects --------------------


def publish(candidate: str, root: Path, rows: int, publication: int) -> None:
    """Publication number ``publication`` of ``candidate`` under ``root``."""
    if candidate == "a_swap":
        staging = root / "serving.duckdb.tmp"
        staging.unlink(missing_ok=True)
        with duckdb.connect(str(staging)) as con:
            _write_everything(con, rows, publication)
            con.execute("checkpoint")
        os.replace(staging, root / "serving.duckdb")
    elif candidate == "b_in_place":
        path = root / "serving.duckdb"
        fresh = not path.exists()
        with duckdb.connect(str(path)) as con:
            (_write_everything if fresh else _write_last_day)(con, rows, publication)
    elif candidate == "c_parquet_views":
        folder = root / f"publication-{publication}"
        folder.mkdir()
        with duckdb.connect() as con:
            _write_everything(con, rows, publication)
            for table in ("facts", "summary"):
                con.execute(f"copy {table} to '{folder / table}.parquet' (format parquet)")
        link = root / "current.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(folder.name, target_is_directory=True)
        os.replace(link, root / "current")
        views = root / "serving.duckdb"
        if not views.exists():
            with duckdb.connect(str(views)) as con:
                for table in ("facts", "summary"):
                    con.execute(
                        f"create view {table} as "
                        f"select * from read_parquet('{root / 'current' / table}.parquet')"
                    )
    else:
        fresh = not (root / "catalog.sqlite").exists()
        (root / "files").mkdir(exist_ok=True)
        with _lake_connection(root, read_only=False) as con:
            (_write_everything if fresh else _write_last_day)(con, rows, publication)
        if fresh and candidate == "e_lake_wal":
            with sqlite3.connect(root / "catalog.sqlite") as catalog:
                catalog.execute("pragma journal_mode = wal")
            catalog.close()


def reader_connection(candidate: str, root: Path) -> duckdb.DuckDBPyConnection:
    if candidate.startswith(("d_", "e_")):
        return _lake_connection(root, read_only=True)
    return duckdb.connect(str(root / "serving.duckdb"), read_only=True)


# --- the reader process ------------------------------------------------------------------


def reader_main(candidate: str, root: Path) -> None:
    """Answer one JSON line per command line on stdin, on one connection kept open."""
    con = reader_connection(candidate, root)

    def seen(c: duckdb.DuckDBPyConnection, table: str) -> int:
        return c.execute(f"select max(publication) from {table}").fetchone()[0]

    for line in sys.stdin:
        command = line.strip()
        try:
            if command == "seen":
                answer: object = [seen(con, "facts"), seen(con, "summary")]
            elif command == "seen_reconnected":
                with reader_connection(candidate, root) as other:
                    answer = [seen(other, "facts"), seen(other, "summary")]
            elif command in ("facts", "summary"):
                answer = seen(con, command)
            elif command in ("begin", "commit"):
                con.execute(command)
                answer = None
            elif command == "latency":
                times = []
                for _ in range(5):
                    started = time.perf_counter()
                    con.execute(AGGREGATE).fetchall()
                    times.append(time.perf_counter() - started)
                answer = statistics.median(times) * 1000
            else:
                break
            print(json.dumps({"ok": answer}), flush=True)
        except duckdb.Error as error:
            print(json.dumps({"error": str(error).splitlines()[0]}), flush=True)
    con.close()


class Reader:
    """A reader process holding one connection, driven one command at a time."""

    def __init__(self, candidate: str, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--reader", candidate, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> object:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["ok"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


# --- the measurements ---------------------------------------------------------------------


@dataclass
class Verdict:
    candidate: str
    fresh: bool
    reconnect_fresh: bool
    one_snapshot: bool
    publish_idle_reader: str
    publish_reader_in_transaction: str
    publish_ms: float
    publish_idle_reader_ms: float | None
    publish_in_transaction_ms: float | None
    reader_aggregate_ms: float


# What each failure comes to, in the words of its message.
_CAUSES = ("database is locked", "Could not set lock on file")


def _failure(error: duckdb.Error) -> str:
    text = str(error)
    cause = next((c for c in _CAUSES if c in text), text.splitlines()[0][:60])
    return f"fails ({type(error).__name__}: {cause})"


def _timed(action: Callable[[], None]) -> tuple[str, float | None]:
    started = time.perf_counter()
    try:
        action()
    except duckdb.Error as error:
        return _failure(error), None
    return "ok", (time.perf_counter() - started) * 1000


def extension_load_ms() -> float:
    """What loading the two DuckLake extensions adds to each DuckLake publish (median)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with duckdb.connect() as con:
            for name in ("ducklake", "sqlite_scanner"):
                con.execute(f"load '{_extension(name)}'")
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def evaluate(candidate: str, root: Path, rows: int, repeats: int) -> Verdict:
    root.mkdir()
    number = iter(range(1, 100))

    def publish_next() -> int:
        publication = next(number)
        publish(candidate, root, rows, publication)
        return publication

    publish_next()
    alone = []
    for _ in range(repeats):
        started = time.perf_counter()
        publish_next()
        alone.append((time.perf_counter() - started) * 1000)

    reader = Reader(candidate, root)
    try:
        reader.ask("seen")
        aggregate_ms = float(reader.ask("latency"))  # type: ignore[arg-type]

        # The pooled connection is idle between queries while the next publication comes.
        target = next(number)
        idle, idle_ms = _timed(lambda: publish(candidate, root, rows, target))
        fresh = idle == "ok" and reader.ask("seen") == [target, target]
        reconnect_fresh = idle == "ok" and reader.ask("seen_reconnected") == [target, target]

        # A reader inside a transaction across a publish.
        reader.ask("begin")
        first = reader.ask("facts")
        target = next(number)
        in_transaction, in_transaction_ms = _timed(lambda: publish(candidate, root, rows, target))
        second = reader.ask("summary")
        reader.ask("commit")
        one_snapshot = first == second
    finally:
        reader.close()
    return Verdict(
        candidate=candidate,
        fresh=fresh,
        reconnect_fresh=reconnect_fresh,
        one_snapshot=one_snapshot,
        publish_idle_reader=idle,
        publish_reader_in_transaction=in_transaction,
        publish_ms=statistics.median(alone),
        publish_idle_reader_ms=idle_ms,
        publish_in_transaction_ms=in_transaction_ms,
        reader_aggregate_ms=aggregate_ms,
    )


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _outcome(status: str, ms: float | None) -> str:
    return f"{ms:.0f}" if ms is not None else status


def table(verdicts: list[Verdict], rows: int, load_ms: float) -> str:
    lines = [
        f"facts: {rows:,} rows over {DAYS} days; DuckDB {duckdb.__version__}; "
        f"each DuckLake publish includes {load_ms:.0f} ms of loading its extensions",
        "",
        "| candidate | pooled reader sees the next publication | a new connection in its "
        "process does | one snapshot in a transaction | publish ms, no reader | publish ms, "
        "reader connected | publish ms, reader in a transaction | reader aggregate ms |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for v in verdicts:
        lines.append(
            f"| {v.candidate} | {_yes(v.fresh)} | {_yes(v.reconnect_fresh)} | "
            f"{_yes(v.one_snapshot)} | {v.publish_ms:.0f} | "
            f"{_outcome(v.publish_idle_reader, v.publish_idle_reader_ms)} | "
            f"{_outcome(v.publish_reader_in_transaction, v.publish_in_transaction_ms)} | "
            f"{v.reader_aggregate_ms:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--reader"]:
        reader_main(argv[1], Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="publishes timed alone")
    parser.add_argument("--json", action="store_true", help="one JSON object per candidate")
    parser.add_argument("--only", nargs="*", choices=CANDIDATES, default=list(CANDIDATES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="slw-compare-serving-") as tmp:
        verdicts = [evaluate(name, Path(tmp) / name, args.rows, args.repeats) for name in args.only]
    if args.json:
        for verdict in verdicts:
            print(json.dumps(asdict(verdict)))
    else:
        print(table(verdicts, args.rows, extension_load_ms()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
