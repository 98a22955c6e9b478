"""daily_memory: peak memory of one daily run over 3 years of history against 30 days.

The same two warehouses as incremental_build (2,000 executives, 5 platforms; 3 years and
30 days of daily counts), built in full and published once (untimed, unmeasured). Then, in
alternating rounds, one new day arrives in each and the daily run's three stages run as
Airflow runs them, each in a fresh Python process: the `dbt build` (dbt in its own process
below it), the quality gate, and the publish. A stage's peak is the larger of its process's
peak resident memory and that of its largest child (dbt); the run's peak is the largest
stage's. The ratio is the largest 3-year run peak over the largest 30-day one, and the
3-year peak must also stay under 2 GiB, a 4 GiB worker's half.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from _common import LAST_HISTORY_DAY, add_next_day, build_bench_warehouses, report

NAME = "daily_memory"
BOUND = 1.5
ROUNDS = 2
PEAK_LIMIT_BYTES = 2 << 30
INCLUDE = Path(__file__).resolve().parent.parent / "include"
STAGES = ("build", "gate", "publish")

# ru_maxrss is in KiB on Linux. RUSAGE_CHILDREN is the largest waited-for descendant (dbt).
_CHILD = """
import json, resource, sys
from social_leadership.settings import load_settings
stage, run_id = sys.argv[1], sys.argv[2]
settings = load_settings()
if stage == "build":
    from social_leadership.dbt_runner import run_dbt
    run_dbt(["build"], settings)
elif stage == "gate":
    from social_leadership.quality import check_marts
    # The bench warehouses hold no survey results: their row-count checks fail, and the
    # gate's work is the same whether it publishes or not.
    check_marts(settings, run_id)
else:
    from social_leadership.serving import publish
    publish(settings, run_id, synthetic=False)
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"self": own, "children": child}))
"""


def stage_peak(data_dir: Path, stage: str, run_id: str) -> int:
    """Peak resident bytes of one stage run in a fresh process (and its children)."""
    env = {**os.environ, "SLW_DATA_DIR": str(data_dir), "PYTHONPATH": str(INCLUDE)}
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, stage, run_id],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{completed.stderr[-4000:]}")
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    return max(measured["self"], measured["children"])


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-memory-") as tmp:
        warehouses = build_bench_warehouses(Path(tmp))
        for settings in warehouses.values():
            stage_peak(settings.data_dir, "publish", "bench-initial")

        peaks: dict[str, dict[str, int]] = {label: dict.fromkeys(STAGES, 0) for label in warehouses}
        for round_no in range(1, ROUNDS + 1):
            new_day = LAST_HISTORY_DAY + timedelta(days=round_no)
            for label, settings in warehouses.items():
                add_next_day(settings, new_day)
                measured = {
                    stage: stage_peak(settings.data_dir, stage, f"bench-{new_day}")
                    for stage in STAGES
                }
                for stage, peak in measured.items():
                    peaks[label][stage] = max(peaks[label][stage], peak)
                print(
                    f"round {round_no} ({new_day}) {label}: "
                    + ", ".join(f"{stage} {mib(peak)}" for stage, peak in measured.items()),
                    flush=True,
                )
        run_peak = {label: max(stages.values()) for label, stages in peaks.items()}
        within = run_peak["3y"] < PEAK_LIMIT_BYTES
        for label, stages in peaks.items():
            print(
                f"{label} peak {mib(run_peak[label])} ("
                + ", ".join(f"{stage} {mib(peak)}" for stage, peak in stages.items())
                + ")",
                flush=True,
            )
        print(
            f"3y daily run peak memory {mib(run_peak['3y'])} "
            f"(limit {mib(PEAK_LIMIT_BYTES)}): {'ok' if within else 'FAIL'}",
            flush=True,
        )
        ratio = run_peak["3y"] / run_peak["30d"]
        return report(NAME, ratio, BOUND, limits_held=within)


if __name__ == "__main__":
    sys.exit(main())
