"""Untimed setup that several benchmarks start from, made before any of them runs:
``python bench/_prepare.py STEP`` (bench/run.py starts one process per step, side by side).

Steps (what each leaves in the run's cache, ``SLW_BENCH_CACHE_DIR``):

* ``published-3y``, ``published-30d``: the 3-year or the 30-day bench warehouse, built,
  gated and published (``_common.published_bench_warehouses``; the built one too);
* ``built``: the 3-year bench warehouse built (``_common.build_bench_warehouses``), for a run
  that needs no published one;
* ``demo``: the demo pipeline's first run (``_common.demo_pipeline_run``).

Each step is work its benchmarks would otherwise do first, one after the other, mostly on
one core of the two: a `dbt build` runs its nodes one at a time. Made side by side before
the first benchmark, the steps use both cores (the 3-year warehouse on one, the demo run and
the 30-day warehouse on the other), and no timed round runs beside them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

STEPS = ("published-3y", "published-30d", "built", "demo")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python bench/_prepare.py {'|'.join(STEPS)}", file=sys.stderr)
        return 2
    from _common import (
        CACHE_VARIABLE,
        build_bench_warehouses,
        demo_pipeline_run,
        published_bench_warehouses,
    )

    if not os.environ.get(CACHE_VARIABLE):
        print(f"{CACHE_VARIABLE} is not set: nothing would be kept", file=sys.stderr)
        return 2
    step = argv[0]
    with tempfile.TemporaryDirectory(prefix=f"slw-bench-prepare-{step}-") as tmp:
        if step.startswith("published-"):
            published_bench_warehouses(Path(tmp), labels=(step.removeprefix("published-"),))
        elif step == "built":
            build_bench_warehouses(Path(tmp), labels=("3y",))
        else:
            demo_pipeline_run(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
