"""publish_growth: the daily publish over 3 years of history against 30 days.

The same two warehouses as incremental_build (2,000 executives, 5 platforms; 3 years and
30 days of daily counts), built in full and published once (untimed). Then, in alternating
rounds, one new day arrives in each, the daily `dbt build` runs (untimed) and the publish is
timed. Each publish runs in a fresh Python process, as an Airflow task would, so its peak
memory is its own. The ratio is the median 3-year publish over the median 30-day publish: a
publish that writes only the days the build changed costs about the same on both. The
3-year publish must also peak under 1 GiB.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from _common import (
    LAST_HISTORY_DAY,
    add_next_day,
    build_bench_warehouses,
    median,
    report,
    run_in_child,
)

NAME = "publish_growth"
BOUND = 1.5
ROUNDS = 3
PEAK_LIMIT_BYTES = 1 << 30

# Timed inside the child, so interpreter start-up and imports are not counted; ru_maxrss
# (KiB on Linux) covers the whole process, imports included.
_CHILD = """
import json, resource, sys, time
from social_leadership.serving import publish
from social_leadership.settings import load_settings
settings = load_settings()
started = time.perf_counter()
publish(settings, sys.argv[1], synthetic=False)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_bytes": peak}))
"""


def publish_in_child(data_dir: Path, run_id: str) -> dict[str, float]:
    return run_in_child(data_dir, _CHILD, run_id)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-publish-") as tmp:
        from social_leadership.dbt_runner import run_dbt

        warehouses = build_bench_warehouses(Path(tmp))
        for label, settings in warehouses.items():
            first = publish_in_child(settings.data_dir, "bench-initial")
            print(f"{label}: first (full) publish {first['seconds']:.1f}s", flush=True)

        timings: dict[str, list[float]] = {"3y": [], "30d": []}
        peaks: dict[str, list[float]] = {"3y": [], "30d": []}
        for round_no in range(1, ROUNDS + 1):
            new_day = LAST_HISTORY_DAY + timedelta(days=round_no)
            for label, settings in warehouses.items():
                add_next_day(settings, new_day)
                run_dbt(["build"], settings)
                measured = publish_in_child(settings.data_dir, f"bench-{new_day}")
                timings[label].append(measured["seconds"])
                peaks[label].append(measured["peak_bytes"])
            print(
                f"round {round_no} ({new_day}): publish 3y {timings['3y'][-1]:.2f}s "
                f"(peak {peaks['3y'][-1] / 2**20:.0f} MiB), 30d {timings['30d'][-1]:.2f}s "
                f"(peak {peaks['30d'][-1] / 2**20:.0f} MiB)",
                flush=True,
            )
        peak = max(peaks["3y"])
        within = peak < PEAK_LIMIT_BYTES
        print(
            f"3y publish peak memory {peak / 2**20:.0f} MiB "
            f"(limit {PEAK_LIMIT_BYTES / 2**20:.0f} MiB): {'ok' if within else 'FAIL'}",
            flush=True,
        )
        ratio = median(timings["3y"]) / median(timings["30d"])
        return report(NAME, ratio, BOUND, limits_held=within)


if __name__ == "__main__":
    sys.exit(main())
