"""daily_memory: peak memory of one daily run over 3 years of history against 30 days.

The same two warehouses as incremental_build (2,000 executives, 5 platforms; 3 years and
30 days of daily counts), built in full, then gated once and published twice, as the
previous days' runs would have left them. Then, in alternating rounds, one new day arrives
in each and the daily run's three stages run as Airflow runs them, each in a fresh Python
process: the `dbt build` (dbt in its own process below it), the quality gate, and the
publish. The ratio is the largest 3-year run peak over the largest 30-day one.

The rounds are bench daily_growth's (bench/_common.daily_rounds, `DAILY_ROUNDS` of them):
each step of a round runs alone in its own process, so the one run gives daily_growth its
times and this bench its peaks; in one `make bench` they are measured once.

The first gate on a warehouse validates the daily facts whole (quality.py: the weekly gate,
SLW_QUALITY_FULL_EVERY_DAYS, and the gate after a full refresh do the same). It is not a
daily run's gate, so it is measured apart: its peak is printed per warehouse and is not in
the ratio, but it must stay under 2 GiB too, like the 3-year daily run (a 4 GiB worker's
half). The daily gates run with the default weekly setting on the day of that first whole
validation, and the bench checks that each validated only the days rebuilt, not the whole
facts.

A stage's peak is the larger of its process's peak resident memory and dbt's. Both are
VmHWM, read by the process itself (dbt through a wrapper that records it at exit), not
ru_maxrss: Linux carries a parent's peak over to its child across exec, so ru_maxrss would
count the bench's own memory in every stage.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import daily_run, report, validated_whole

NAME = "daily_memory"
BOUND = 1.5
PEAK_LIMIT_BYTES = 2 << 30
STAGES = ("build", "gate", "publish")


def stage_peaks(day: dict[str, Any]) -> dict[str, int]:
    """One round's peak per stage: the build's is its task process's or dbt's, the larger."""
    return {
        "build": max(day["build_peak_bytes"], day["dbt_peak_bytes"]),
        "gate": day["gate_peak_bytes"],
        "publish": day["publish_peak_bytes"],
    }


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-memory-") as tmp:
        run = daily_run(Path(tmp))
    whole_gate = {}
    for label, first in run["first_gates"].items():
        if validated_whole(first["validated"]) is not True:
            raise SystemExit(f"{label}: first gate validated {first['validated']}, not whole")
        whole_gate[label] = first["peak_bytes"]
        print(f"{label}: first gate (whole validation) {mib(whole_gate[label])}", flush=True)

    peaks: dict[str, dict[str, int]] = {}
    for label, days in run["rounds"].items():
        peaks[label] = dict.fromkeys(STAGES, 0)
        for round_no, day in enumerate(days, 1):
            if validated_whole(day["gate_validated"]) is not False:
                raise SystemExit(
                    f"{label} round {round_no}: gate validated {day['gate_validated']}, "
                    "expected the days rebuilt only"
                )
            measured = stage_peaks(day)
            for stage, peak in measured.items():
                peaks[label][stage] = max(peaks[label][stage], peak)
            print(
                f"round {round_no} {label}: "
                + ", ".join(f"{stage} {mib(peak)}" for stage, peak in measured.items()),
                flush=True,
            )
    run_peak = {label: max(stages.values()) for label, stages in peaks.items()}
    for label, stages in peaks.items():
        print(
            f"{label} daily run peak {mib(run_peak[label])} ("
            + ", ".join(f"{stage} {mib(peak)}" for stage, peak in stages.items())
            + f"); whole validation {mib(whole_gate[label])}",
            flush=True,
        )
    within = run_peak["3y"] < PEAK_LIMIT_BYTES and whole_gate["3y"] < PEAK_LIMIT_BYTES
    print(
        f"3y daily run peak {mib(run_peak['3y'])}, whole validation "
        f"{mib(whole_gate['3y'])} (limit {mib(PEAK_LIMIT_BYTES)} each): "
        f"{'ok' if within else 'FAIL'}",
        flush=True,
    )
    ratio = run_peak["3y"] / run_peak["30d"]
    return report(NAME, ratio, BOUND, limits_held=within)


if __name__ == "__main__":
    sys.exit(main())
