"""report_growth: the weekly report on 3 years of history against 30 days.

The same two warehouses as publish_growth (2,000 executives, 5 platforms; 3 years and 30
days of daily counts), built in full by the dbt project, gated once and published twice
(untimed). Then, in alternating rounds (the order swapped every round), the weekly report
of the week ending on the last day of history is written from each serving copy, each in a
fresh Python process timed from outside, so interpreter start-up and imports weigh the same
on both sides. The ratio is the median 3-year report over the median 30-day report: a report whose
queries read only the days it shows (the week, the 52 trend week-ends, the 7- and 28-day
comparisons) costs about the same on both. Each report must have data (not the "Not enough
data" page); the time spent reading the serving copy and each side's peak memory are
printed.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _common import LAST_HISTORY_DAY, median, published_bench_warehouses, report, run_child

NAME = "report_growth"
BOUND = 1.5
# 3-year over 30-day ratios of 0.96-1.03 against the bound 1.5 in every make bench of
# 2026-12: three rounds are enough.
ROUNDS = 3
NOT_ENOUGH_DATA = "Not enough data"

# The reading of the serving copy is timed by wrapping the report's own step, so it is not
# run twice; peak_bytes() comes from _common.run_child.
_CHILD = """
import json, sys, time
from datetime import date
from social_leadership.reports import weekly
from social_leadership.settings import load_settings
read = weekly.read_report_data
spent = []
def timed(*args, **kwargs):
    started = time.perf_counter()
    try:
        return read(*args, **kwargs)
    finally:
        spent.append(time.perf_counter() - started)
weekly.read_report_data = timed
result = weekly.write_weekly_report(load_settings(), date.fromisoformat(sys.argv[1]), mail=False)
print(json.dumps({
    "read_seconds": sum(spent), "peak_bytes": peak_bytes(), "enough_data": result.enough_data,
    "html": str(result.html), "pdf": str(result.pdf),
}))
"""


def report_in_child(data_dir: Path) -> dict:
    started = time.perf_counter()
    measured = run_child(_CHILD, data_dir, LAST_HISTORY_DAY.isoformat())
    measured["seconds"] = time.perf_counter() - started
    return measured


def has_data(measured: dict) -> bool:
    html = Path(measured["html"]).read_text(encoding="utf-8")
    return (
        bool(measured["enough_data"])
        and NOT_ENOUGH_DATA not in html
        and Path(measured["pdf"]).stat().st_size > 0
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-report-") as tmp:
        warehouses = published_bench_warehouses(Path(tmp))
        labels = list(warehouses)
        runs: dict[str, list[dict]] = {label: [] for label in labels}
        for round_no in range(1, ROUNDS + 1):
            for label in labels if round_no % 2 else reversed(labels):
                runs[label].append(report_in_child(warehouses[label].data_dir))
            print(
                f"round {round_no}: "
                + ", ".join(
                    f"{label} {runs[label][-1]['seconds']:.2f}s "
                    f"(reading {runs[label][-1]['read_seconds']:.2f}s, "
                    f"peak {runs[label][-1]['peak_bytes'] / 2**20:.0f} MiB)"
                    for label in labels
                ),
                flush=True,
            )
        with_data = True
        for label in labels:
            seconds = median([run["seconds"] for run in runs[label]])
            reading = median([run["read_seconds"] for run in runs[label]])
            peak = max(run["peak_bytes"] for run in runs[label])
            ok = all(has_data(run) for run in runs[label])
            with_data = with_data and ok
            print(
                f"{label}: report median {seconds:.2f}s (reading the serving copy "
                f"{reading:.2f}s), peak {peak / 2**20:.0f} MiB, "
                f"{'has data' if ok else 'FAIL: not enough data'}",
                flush=True,
            )
        ratio = median([run["seconds"] for run in runs["3y"]]) / median(
            [run["seconds"] for run in runs["30d"]]
        )
        return report(NAME, ratio, BOUND, limits_held=with_data)


if __name__ == "__main__":
    sys.exit(main())
