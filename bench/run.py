"""Run every benchmark under bench/ (or one: ``python bench/run.py NAME``).

Each benchmark is a ``bench/bench_<name>.py`` script whose last line is
``BENCH <name> ratio=<measured> bound=<goal> ok|FAIL``. Ratios, not absolute times: these
machines are shared and noisy, so each benchmark times its subject and its baseline side
by side in one run. Each benchmark's wall-clock time is printed after it, and all of them
with the total at the end (``make bench`` is meant to finish in under 15 minutes). Exits
non-zero when a benchmark fails or misses its bound.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# bench/_common.CACHE_VARIABLE (not imported: importing _common loads the package).
CACHE_VARIABLE = "SLW_BENCH_CACHE_DIR"


def available(bench_dir: Path = BENCH_DIR) -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(bench_dir.glob("bench_*.py"))}


def minutes(seconds: float) -> str:
    return f"{seconds:.0f}s ({seconds / 60:.1f} min)"


def main(argv: list[str], bench_dir: Path = BENCH_DIR) -> int:
    benches = available(bench_dir)
    names = argv or list(benches)
    unknown = [n for n in names if n not in benches]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benches)}")
        return 2
    failed = []
    elapsed: dict[str, float] = {}
    started_all = time.perf_counter()
    # Warehouses built by one benchmark are reused by the next that starts from them.
    with tempfile.TemporaryDirectory(prefix="slw-bench-cache-") as cache:
        env = {**os.environ, CACHE_VARIABLE: cache}
        for name in names:
            print(f"== {name}", flush=True)
            started = time.perf_counter()
            completed = subprocess.run([sys.executable, str(benches[name])], check=False, env=env)
            elapsed[name] = time.perf_counter() - started
            status = "ok" if completed.returncode == 0 else f"exit {completed.returncode}"
            print(f"== {name}: {minutes(elapsed[name])}, {status}", flush=True)
            if completed.returncode != 0:
                failed.append(name)
    total = time.perf_counter() - started_all
    width = max(map(len, names))
    print("== times", flush=True)
    for name in names:
        print(f"{name:<{width}} {elapsed[name]:7.1f}s{'  FAIL' if name in failed else ''}")
    print(f"{'total':<{width}} {total:7.1f}s = {total / 60:.1f} min", flush=True)
    if failed:
        print(f"benchmarks failed or out of bound: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
