"""incremental_build: the daily `dbt build` over 3 years of history against 30 days.

Two warehouses get the same roster (2,000 executives, 5 platforms each) and synthetic raw
counts generated with DuckDB SQL: one with 3 years of daily history, one with 30 days.
Both are built in full once (untimed). Then, in alternating rounds, one new day arrives in
each and the daily `dbt build` (models, snapshot and tests) is timed. The ratio is the
median 3-year time over the median 30-day time: an incremental build that really processes
only new days plus the lookback should cost about the same on both.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import (
    LAST_HISTORY_DAY,
    add_next_day,
    build_bench_warehouses,
    median,
    report,
    row_counts,
)

NAME = "incremental_build"
BOUND = 1.5
ROUNDS = 3


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-incremental-") as tmp:
        from social_leadership.dbt_runner import run_dbt

        warehouses = build_bench_warehouses(Path(tmp))

        timings: dict[str, list[float]] = {"3y": [], "30d": []}
        for round_no in range(1, ROUNDS + 1):
            new_day = LAST_HISTORY_DAY + timedelta(days=round_no)
            for label, settings in warehouses.items():
                add_next_day(settings, new_day)
                started = time.perf_counter()
                run_dbt(["build"], settings)
                timings[label].append(time.perf_counter() - started)
            print(
                f"round {round_no} ({new_day}): daily build 3y {timings['3y'][-1]:.1f}s, "
                f"30d {timings['30d'][-1]:.1f}s",
                flush=True,
            )
        for label, settings in warehouses.items():
            print(f"{label} rows: {row_counts(settings.warehouse_path)}", flush=True)
        ratio = median(timings["3y"]) / median(timings["30d"])
        return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
