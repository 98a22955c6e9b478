"""Run every benchmark under bench/ (or one: ``python bench/run.py NAME``).

Each benchmark is a ``bench/bench_<name>.py`` script whose last line is
``BENCH <name> ratio=<measured> bound=<goal> ok|FAIL``. Ratios, not absolute times: these
machines are shared and noisy, so each benchmark times its subject and its baseline side
by side in one run. Exits non-zero when a benchmark fails or misses its bound.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# bench/_common.CACHE_VARIABLE (not imported: importing _common loads the package).
CACHE_VARIABLE = "SLW_BENCH_CACHE_DIR"


def available() -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(BENCH_DIR.glob("bench_*.py"))}


def main(argv: list[str]) -> int:
    benches = available()
    names = argv or list(benches)
    unknown = [n for n in names if n not in benches]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benches)}")
        return 2
    failed = []
    # Warehouses built by one benchmark are reused by the next that starts from them.
    with tempfile.TemporaryDirectory(prefix="slw-bench-cache-") as cache:
        env = {**os.environ, CACHE_VARIABLE: cache}
        for name in names:
            print(f"== {name}", flush=True)
            completed = subprocess.run([sys.executable, str(benches[name])], check=False, env=env)
            if completed.returncode != 0:
                failed.append(name)
    if failed:
        print(f"benchmarks failed or out of bound: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
