"""publish_growth: the daily publish over 3 years of history against 30 days.

The same two warehouses as incremental_build (2,000 executives, 5 platforms; 3 years and 30
days of daily counts), built in full and published twice (untimed; the second publish, with
nothing changed, leaves the spare that every later daily publish updates). Then, in
alternating rounds, one new day arrives in each, the daily `dbt build` runs (untimed) and
the publish is timed. Each publish runs in a fresh Python process, as an Airflow task
would, so its peak memory is its own; it is timed inside that process (imports not
counted). The ratio is the median 3-year publish over the median 30-day publish: a publish
that writes only the days the build changed costs about the same on both. The 3-year
publish must also peak under 1 GiB. Each round also prints where each publish's single file
came from: the spare (the file before last, kept by the publish before) updated in place,
as every daily publish after the second does, or else how long its copy of the last single
file took (on a thread of its own, beside the Parquet staging), the one step of a daily
publish that grows with history.

The rounds are bench/_common.daily_rounds, bench daily_growth's: the quality gate also runs
(untimed here) between each day's build and publish, as in the pipeline; in one
`make bench` the rounds run once for the three benchmarks.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import daily_rounds, median, report

NAME = "publish_growth"
BOUND = 1.5
PEAK_LIMIT_BYTES = 1 << 30


def copy_text(seconds: float | None, *, from_spare: bool) -> str:
    """Where one publish's single file came from: the spare updated in place, or a copy of
    the last file (which runs beside its Parquet staging), or neither (built whole)."""
    if from_spare:
        return "the spare file updated in place"
    return "no copy of the serving file" if seconds is None else f"its file copy {seconds:.2f}s"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-publish-") as tmp:
        rounds = daily_rounds(Path(tmp))
    timings = {label: [day["publish_own"] for day in days] for label, days in rounds.items()}
    peaks = {label: [day["publish_peak_bytes"] for day in days] for label, days in rounds.items()}
    copies = {
        label: [(day["publish_copy"], day["publish_from_spare"]) for day in days]
        for label, days in rounds.items()
    }
    for round_no in range(len(timings["3y"])):
        print(
            f"round {round_no + 1}: "
            + ", ".join(
                f"publish {label} {timings[label][round_no]:.2f}s "
                f"(peak {peaks[label][round_no] / 2**20:.0f} MiB, "
                f"{copy_text(copies[label][round_no][0], from_spare=copies[label][round_no][1])})"
                for label in ("3y", "30d")
            ),
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
