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
the first benchmark, the steps keep both cores busy (the 3-year warehouse about one, the
demo run and the 30-day warehouse the other, as the system schedules them), and no timed
round runs beside them. A step exits non-zero when what it promises is not in the cache
afterwards (the benchmarks then make it themselves).
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
        DEMO_RUN,
        build_bench_warehouses,
        cached,
        demo_pipeline_run,
        first_gate_file,
        published_bench_warehouses,
        published_key,
    )

    if not os.environ.get(CACHE_VARIABLE):
        print(f"{CACHE_VARIABLE} is not set: nothing would be kept", file=sys.stderr)
        return 2
    step = argv[0]
    with tempfile.TemporaryDirectory(prefix=f"slw-bench-prepare-{step}-") as tmp:
        if step.startswith("published-"):
            label = step.removeprefix("published-")
            published_bench_warehouses(Path(tmp), labels=(label,))
            promised = [label, published_key(label), first_gate_file(label)]
        elif step == "built":
            build_bench_warehouses(Path(tmp), labels=("3y",))
            promised = ["3y"]
        else:
            demo_pipeline_run(Path(tmp))
            promised = [DEMO_RUN]
    missing = [key for key in promised if not cached(key)]
    if missing:
        print(f"{step}: not in the run's cache afterwards: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
