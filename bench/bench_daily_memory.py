"""daily_memory: peak memory of one daily run over 3 years of history against 30 days.

The same two warehouses as incremental_build (2,000 executives, 5 platforms; 3 years and
30 days of daily counts), built in full, then published once and gated once, as the
previous day's run would have left them. Then, in alternating rounds, one new day arrives
in each and the daily run's three stages run as Airflow runs them, each in a fresh Python
process: the `dbt build` (dbt in its own process below it), the quality gate, and the
publish. The ratio is the largest 3-year run peak over the largest 30-day one.

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

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

from _common import (
    CHILD_PRELUDE,
    INCLUDE,
    LAST_HISTORY_DAY,
    add_next_day,
    build_bench_warehouses,
    report,
)

from social_leadership.settings import Settings

NAME = "daily_memory"
BOUND = 1.5
ROUNDS = 2
PEAK_LIMIT_BYTES = 2 << 30
STAGES = ("build", "gate", "publish")
# The setting's default: the daily gates below follow a whole validation on the same day.
FULL_EVERY_DAYS = str(
    next(f.default for f in fields(Settings) if f.name == "quality_full_every_days")
)


# dbt as the venv's `dbt` script runs it, recording its own peak in BENCH_DBT_PEAK_FILE.
_DBT = (
    CHILD_PRELUDE
    + """
import atexit, os, sys
def _record():
    with open(os.environ["BENCH_DBT_PEAK_FILE"], "w", encoding="ascii") as out:
        out.write(str(peak_bytes()))
atexit.register(_record)
from dbt.cli.main import cli
sys.argv[0] = "dbt"
sys.exit(cli())
"""
)

_CHILD = (
    CHILD_PRELUDE
    + """
import json, os, sys, tempfile
from social_leadership.settings import load_settings
stage, run_id, dbt_wrapper = sys.argv[1], sys.argv[2], sys.argv[3]
settings = load_settings()
out = {"validated": {}, "dbt": 0}
if stage == "build":
    from social_leadership import dbt_runner
    dbt_runner.dbt_command = lambda: [sys.executable, "-c", dbt_wrapper]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_DBT_PEAK_FILE"] = peak_file = os.path.join(tmp, "peak")
        dbt_runner.run_dbt(["build"], settings)
        with open(peak_file, encoding="ascii") as recorded:
            out["dbt"] = int(recorded.read())
elif stage == "gate":
    from social_leadership.quality import check_marts
    # The bench warehouses hold no survey results: their row-count checks fail, and the
    # gate's work is the same whether it publishes or not.
    out["validated"] = check_marts(settings, run_id).validated
else:
    from social_leadership.serving import publish
    publish(settings, run_id, synthetic=False)
out["self"] = peak_bytes()
print(json.dumps(out))
"""
)


def stage_peak(data_dir: Path, stage: str, run_id: str, *, whole: bool = False) -> int:
    """Peak resident bytes of one stage run in a fresh process (or of dbt below it). A gate
    must validate the daily facts whole when ``whole``, and only rebuilt days otherwise."""
    env = {
        **os.environ,
        "SLW_DATA_DIR": str(data_dir),
        "SLW_QUALITY_FULL_EVERY_DAYS": FULL_EVERY_DAYS,
        "PYTHONPATH": str(INCLUDE),
    }
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, stage, run_id, _DBT],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{completed.stderr[-4000:]}")
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    validated = measured["validated"]
    if stage == "gate" and (
        not validated
        or any(scope.startswith("whole table") != whole for scope in validated.values())
    ):
        raise RuntimeError(f"gate {run_id} validated {validated}, expected whole={whole}")
    return max(measured["self"], measured["dbt"])


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-memory-") as tmp:
        warehouses = build_bench_warehouses(Path(tmp))
        whole_gate = {}
        for label, settings in warehouses.items():
            stage_peak(settings.data_dir, "publish", "bench-initial")
            whole_gate[label] = stage_peak(settings.data_dir, "gate", "bench-initial", whole=True)
            print(f"{label}: first gate (whole validation) {mib(whole_gate[label])}", flush=True)

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
