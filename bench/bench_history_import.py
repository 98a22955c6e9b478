"""``import_history`` of a 5-million-row history CSV, over DuckDB's own ``read_csv`` of the
same file into a table, side by side in one run (bound 1.5), after an untimed import of
a small file that loads what a process loads once. Prints peak memory (RSS), which must
stay under 2 GiB."""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common
import duckdb

from social_leadership.follower_imports import import_history
from social_leadership.roster import Account, Executive, Roster
from social_leadership.warehouse import ensure_schema

ROWS = 5_000_000
ACCOUNTS = 5_000
DAYS = ROWS // ACCOUNTS
PEAK_BOUND_BYTES = 2 * 1024**3
ROUNDS = 3


def write_history(path: Path) -> None:
    with duckdb.connect() as con:
        con.execute(
            f"""
            copy (
                select 'bench_' || lpad(cast(a as varchar), 5, '0') as account_handle,
                       'x' as platform,
                       date '2021-01-01' + cast(d as integer) as date,
                       1000 + a * 7 + d as followers,
                       100 + a % 50 as following,
                       d * 2 as posts
                from range({ACCOUNTS}) as t(a), range({DAYS}) as u(d)
            ) to '{path}' (header, delimiter ',')
            """
        )


def main() -> int:
    # Every handle of the file is a roster account: the import rejects any other.
    executive_ids = [f"b{number:05d}" for number in range(ACCOUNTS)]
    roster = Roster(
        executives=[
            Executive(executive_id, "Bench", "CEO", "Synthetic Co", "DE", "Energy", True)
            for executive_id in executive_ids
        ],
        accounts=[
            Account(executive_id, "x", f"bench_{number:05d}")
            for number, executive_id in enumerate(executive_ids)
        ],
    )
    with tempfile.TemporaryDirectory(prefix="slw-bench-history-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "history.csv"
        write_history(csv_path)
        print(f"history file: {ROWS:,} rows, {csv_path.stat().st_size / 1e6:.0f} MB", flush=True)
        # Untimed: the first import in a process loads modules once (DuckDB's Python client
        # imports pandas when it first binds a parameter, about a second here), which the
        # baseline never does; the rounds compare the two reading the same file, warm.
        warm_up = folder / "warm_up.csv"
        with csv_path.open(encoding="utf-8") as source:
            warm_up.write_text("".join(source.readline() for _ in range(1_001)), encoding="utf-8")
        with duckdb.connect(str(folder / "warm_up.duckdb")) as con:
            con.execute(f"create table history as select * from read_csv('{warm_up}')")
            ensure_schema(con)
            import_history(con, warm_up, roster, folder / "quarantine")
        (folder / "warm_up.duckdb").unlink()
        ratios = []
        for attempt in range(ROUNDS):
            with duckdb.connect(str(folder / f"baseline{attempt}.duckdb")) as con:
                started = time.perf_counter()
                con.execute(f"create table history as select * from read_csv('{csv_path}')")
                baseline = time.perf_counter() - started
            with duckdb.connect(str(folder / f"import{attempt}.duckdb")) as con:
                ensure_schema(con)
                started = time.perf_counter()
                outcome = import_history(con, csv_path, roster, folder / "quarantine")
                imported = time.perf_counter() - started
                assert outcome.rows_loaded == ROWS, outcome
            # Each round's two timings were taken back to back: their ratio is what counts.
            ratios.append(imported / baseline)
            print(
                f"round {attempt + 1}: duckdb read_csv into a table {baseline:.2f}s, "
                f"import_history {imported:.2f}s ({outcome.rows_loaded:,} rows), "
                f"ratio {ratios[-1]:.3f}",
                flush=True,
            )
            (folder / f"baseline{attempt}.duckdb").unlink()
            (folder / f"import{attempt}.duckdb").unlink()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(f"peak memory (RSS): {peak / 1024**2:.0f} MiB (bound 2048 MiB)", flush=True)
    if peak > PEAK_BOUND_BYTES:
        print("peak memory over 2 GiB")
        return _common.report("history_import", float("inf"), 1.5)
    return _common.report("history_import", statistics.median(ratios), 1.5)


if __name__ == "__main__":
    sys.exit(main())
