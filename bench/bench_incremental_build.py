"""incremental_build: the daily `dbt build` over 3 years of history against 30 days.

Two warehouses get the same roster (2,000 executives, 5 platforms each) and synthetic raw
counts generated with DuckDB SQL: one with 3 years of daily history, one with 30 days.
Both are built in full once (untimed). Then, in alternating rounds, one new day arrives in
each and the daily `dbt build` (models, snapshot and tests) is timed. The ratio is the
median 3-year time over the median 30-day time: an incremental build that really processes
only new days plus the lookback should cost about the same on both.

The rounds are bench/_common.daily_rounds, bench daily_growth's: each day's `dbt build` is
timed alone, before that day's quality gate and publish (untimed here) run; in one
`make bench` the rounds run once for the three benchmarks.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import daily_rounds, median, report

NAME = "incremental_build"
BOUND = 1.5


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-incremental-") as tmp:
        rounds = daily_rounds(Path(tmp))
    timings = {label: [day["dbt"] for day in days] for label, days in rounds.items()}
    for round_no, (long, short) in enumerate(zip(timings["3y"], timings["30d"], strict=True), 1):
        print(f"round {round_no}: daily build 3y {long:.1f}s, 30d {short:.1f}s", flush=True)
    ratio = median(timings["3y"]) / median(timings["30d"])
    return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
