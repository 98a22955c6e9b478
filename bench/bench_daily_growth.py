"""daily_growth: one day's work (dbt build, quality gate, publish) over 3 years of history
against 30 days.

The same two warehouses as incremental_build and publish_growth (2,000 executives, 5
platforms; 3 years and 30 days of daily counts), built in full, gated and published once
(untimed). Then, in alternating rounds, one new day arrives in each, and the daily
`dbt build`, the quality gate and the publish run one after the other, the gate and the
publish each in a fresh Python process as Airflow tasks are (imports counted, since a task
pays them every day). The ratio is the median 3-year day over the median 30-day day: when
each step works on the days that changed, a day costs about the same on both.
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
    publish_in_child,
    report,
    run_child,
)

NAME = "daily_growth"
BOUND = 1.3
ROUNDS = 3

_GATE = """
import json, sys
from social_leadership.docs_site import pending_gx_dir
from social_leadership.quality import check_marts
from social_leadership.settings import load_settings
settings = load_settings()
report = check_marts(settings, sys.argv[1], data_docs_dir=pending_gx_dir(settings, sys.argv[1]))
print(json.dumps({"checks": len(report.results), "failed": [c.table_name for c in report.failed]}))
"""

STEPS = ("dbt", "gate", "publish")
# The bench warehouses hold no survey data: the gate fails the survey marts (empty), which
# the publish, run directly, does not mind; any other failure stops the bench.
EXPECTED_FAILURES = {"fct_survey_results", "fct_country_expectations_yearly"}


def gate(data_dir: Path, run_id: str) -> None:
    failed = set(run_child(_GATE, data_dir, run_id)["failed"])
    if failed - EXPECTED_FAILURES:
        raise RuntimeError(f"quality gate failed on {sorted(failed)}")


def one_day(data_dir: Path, settings: object, run_id: str) -> dict[str, float]:
    """Seconds of each step of one day, wall clock (process start-up included)."""
    from social_leadership.dbt_runner import run_dbt

    seconds = {}
    started = time.perf_counter()
    run_dbt(["build"], settings)  # type: ignore[arg-type]
    seconds["dbt"] = time.perf_counter() - started
    started = time.perf_counter()
    gate(data_dir, run_id)
    seconds["gate"] = time.perf_counter() - started
    started = time.perf_counter()
    publish_in_child(data_dir, run_id)
    seconds["publish"] = time.perf_counter() - started
    return seconds


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-daily-") as tmp:
        warehouses = build_bench_warehouses(Path(tmp))
        for label, settings in warehouses.items():
            started = time.perf_counter()
            gate(settings.data_dir, "bench-initial")
            publish_in_child(settings.data_dir, "bench-initial")
            print(
                f"{label}: first (full) gate and publish {time.perf_counter() - started:.1f}s",
                flush=True,
            )

        totals: dict[str, list[float]] = {"3y": [], "30d": []}
        for round_no in range(1, ROUNDS + 1):
            new_day = LAST_HISTORY_DAY + timedelta(days=round_no)
            shown = []
            for label, settings in warehouses.items():
                add_next_day(settings, new_day)
                steps = one_day(settings.data_dir, settings, f"bench-{new_day}")
                totals[label].append(sum(steps.values()))
                shown.append(
                    f"{label} {totals[label][-1]:.1f}s ("
                    + ", ".join(f"{step} {steps[step]:.1f}s" for step in STEPS)
                    + ")"
                )
            print(f"round {round_no} ({new_day}): " + "; ".join(shown), flush=True)
        ratio = median(totals["3y"]) / median(totals["30d"])
        print(
            f"median day: 3y {median(totals['3y']):.1f}s, 30d {median(totals['30d']):.1f}s",
            flush=True,
        )
        return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
