"""daily_growth: one day's work (dbt build, quality gate, publish) over 3 years of history
against 30 days.

The same two warehouses as incremental_build and publish_growth (2,000 executives, 5
platforms; 3 years and 30 days of daily counts), built in full, gated once and published
twice (untimed; the second publish leaves the spare serving file a daily publish updates).
Then, in alternating rounds, one new day arrives in each, and the daily `dbt build`, the
quality gate and the publish run one after the other, the gate and the publish each in a
fresh Python process as Airflow tasks are (imports counted, since a task pays them every
day). The ratio is the median 3-year day over the median 30-day day: when each step works
on the days that changed, a day costs about the same on both.

The rounds are bench/_common.daily_rounds: in one `make bench`, incremental_build and
publish_growth read their `dbt build` and publish times from the same rounds, and
daily_memory each step's peak memory (the `dbt build` runs in a fresh process too, dbt
below it, timed by `run_dbt` inside it as when the bench ran it itself).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import DAILY_STEPS, daily_rounds, median, report

NAME = "daily_growth"
BOUND = 1.3


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-daily-") as tmp:
        rounds = daily_rounds(Path(tmp))
    totals = {
        label: [sum(day[step] for step in DAILY_STEPS) for day in days]
        for label, days in rounds.items()
    }
    for round_no, (long, short) in enumerate(zip(totals["3y"], totals["30d"], strict=True), 1):
        print(f"round {round_no}: day 3y {long:.1f}s, 30d {short:.1f}s, ratio {long / short:.3f}")
    ratio = median(totals["3y"]) / median(totals["30d"])
    print(
        f"median day: 3y {median(totals['3y']):.1f}s, 30d {median(totals['30d']):.1f}s",
        flush=True,
    )
    return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
