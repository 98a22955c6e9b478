"""Run every benchmark under bench/ (or one: ``python bench/run.py NAME``).

Each benchmark is a ``bench/bench_<name>.py`` script whose last line is
``BENCH <name> ratio=<measured> bound=<goal> ok|FAIL``. Ratios, not absolute times: these
machines are shared and noisy, so each benchmark times its subject and its baseline side
by side in one run. Each benchmark's wall-clock time is printed after it, and all of them
with the total at the end (``make bench`` is meant to finish in under 15 minutes), with the
CPU time the benchmarks' processes used and what the rest of the host used meanwhile: on a
shared machine the total follows the other jobs' load, which the last line shows. Exits
non-zero when a benchmark fails or misses its bound.

Before the first benchmark, the untimed setup that the selected benchmarks start from (the
bench warehouses built, gated and published; the demo pipeline's first run) is made side
by side, one process per step (bench/_prepare.py), and kept in the run's cache: made by the
benchmarks themselves it ran one step after the other, mostly on one core of the two.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
# bench/_common.CACHE_VARIABLE (not imported: importing _common loads the package).
CACHE_VARIABLE = "SLW_BENCH_CACHE_DIR"


def available(bench_dir: Path = BENCH_DIR) -> dict[str, Path]:
    return {p.stem.removeprefix("bench_"): p for p in sorted(bench_dir.glob("bench_*.py"))}


# The setup made before the benchmarks, in the times printed at the end.
PREPARE = "prepare"


def minutes(seconds: float) -> str:
    return f"{seconds:.0f}s ({seconds / 60:.1f} min)"


# The untimed setup (bench/_prepare.py) each step makes for the benchmarks named: before
# the first benchmark, the steps a run needs are made side by side (tests check this map
# against what the benchmarks call).
_PUBLISHED_USERS = (
    "daily_growth",
    "daily_memory",
    "incremental_build",
    "publish_growth",
    "report_growth",
)
PREPARE_STEPS = {
    "published-3y": _PUBLISHED_USERS,
    "built": ("dbt_in_airflow", "history_refresh"),
    "demo": ("dbt_in_airflow", "pipeline_overhead"),
    "published-30d": _PUBLISHED_USERS,
}


def prepare_steps(names: list[str]) -> list[str]:
    """The setup steps the benchmarks ``names`` start from (``published-3y`` builds the
    3-year warehouse too, so with it ``built`` is not made apart)."""
    steps = [step for step, users in PREPARE_STEPS.items() if set(users) & set(names)]
    if "published-3y" in steps and "built" in steps:
        steps.remove("built")
    return steps


def prepare(steps: list[str], env: dict[str, str], bench_dir: Path) -> list[str]:
    """Run the setup ``steps`` side by side, one process each (their output as they print
    it); the steps that failed (the benchmarks then make what they need themselves). On an
    interruption the steps still running are stopped before the cache is removed."""
    processes: dict[str, subprocess.Popen] = {}
    try:
        for step in steps:
            processes[step] = subprocess.Popen(
                [sys.executable, str(bench_dir / "_prepare.py"), step], env=env
            )
        return [step for step, process in processes.items() if process.wait() != 0]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def run_timed(
    label: str,
    run: Callable[[], str | None],
    elapsed: dict[str, float],
    cpu: dict[str, float],
) -> str | None:
    """``run()`` (None when it went well, else what went wrong), its wall-clock and CPU
    seconds kept under ``label`` and printed with the outcome; what went wrong, if anything."""
    started = time.perf_counter()
    cpu_before = children_cpu_seconds()
    failure = run()
    elapsed[label] = time.perf_counter() - started
    cpu[label] = children_cpu_seconds() - cpu_before
    print(
        f"== {label}: {minutes(elapsed[label])}, {failure or 'ok'} (CPU {cpu[label]:.0f}s)",
        flush=True,
    )
    return failure


def children_cpu_seconds() -> float:
    """User and system CPU seconds of this process's finished children and of the
    descendants they waited for (a process left running or not waited for is not counted:
    the host line shows it among the other processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def host_cpu_seconds(stat: Path = Path("/proc/stat")) -> tuple[float, float] | None:
    """CPU seconds the whole host has been busy (every process, every core) and those a
    hypervisor took from it (steal), since boot, from ``/proc/stat``; None where there is
    none. Busy is everything but idle, I/O wait and steal."""
    try:
        fields = stat.read_text(encoding="ascii").splitlines()[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user).
    ticks = [int(value) for value in fields[1:9]] + [0] * max(0, 9 - len(fields))
    per_second = os.sysconf("SC_CLK_TCK")
    busy = sum(ticks[:3]) + sum(ticks[5:7])
    return busy / per_second, ticks[7] / per_second


def host_share(
    wall: float, own_cpu: float, host_before, host_after, cores: int | None
) -> str | None:
    """One line: the cores, the benchmarks' CPU, the rest of the host's CPU in the same
    wall-clock time (other jobs: what makes one run's total longer than another's) and
    the steal; None without /proc/stat."""
    if host_before is None or host_after is None:
        return None
    busy = host_after[0] - host_before[0]
    steal = host_after[1] - host_before[1]
    others = max(0.0, busy - own_cpu)
    capacity = wall * (cores or 1)
    return (
        f"host: {cores or '?'} cores ({capacity:,.0f} core-seconds in {wall:,.0f} s); the "
        f"benchmarks' processes used {own_cpu:,.0f} s of CPU, other processes "
        f"{others:,.0f} s ({others / capacity:.0%} of the host), steal {steal:,.0f} s"
    )


def main(argv: list[str], bench_dir: Path = BENCH_DIR) -> int:
    benches = available(bench_dir)
    names = argv or list(benches)
    unknown = [n for n in names if n not in benches]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benches)}")
        return 2
    failed = []
    elapsed: dict[str, float] = {}
    cpu: dict[str, float] = {}
    started_all = time.perf_counter()
    host_before = host_cpu_seconds()
    cpu_before_all = children_cpu_seconds()
    # Warehouses built by one benchmark are reused by the next that starts from them.
    with tempfile.TemporaryDirectory(prefix="slw-bench-cache-") as cache:
        env = {**os.environ, CACHE_VARIABLE: cache}
        steps = prepare_steps(names)
        if steps:
            print(f"== prepare: {', '.join(steps)}, side by side (untimed setup)", flush=True)

            def run_prepare() -> str | None:
                unprepared = prepare(steps, env, bench_dir)
                return f"failed: {', '.join(unprepared)}" if unprepared else None

            if run_timed(PREPARE, run_prepare, elapsed, cpu):
                failed.append(PREPARE)
        for name in names:
            print(f"== {name}", flush=True)

            def run_bench(name: str = name) -> str | None:
                command = [sys.executable, str(benches[name])]
                returncode = subprocess.run(command, check=False, env=env).returncode
                return f"exit {returncode}" if returncode != 0 else None

            if run_timed(name, run_bench, elapsed, cpu):
                failed.append(name)
    total = time.perf_counter() - started_all
    own_cpu = children_cpu_seconds() - cpu_before_all
    share = host_share(total, own_cpu, host_before, host_cpu_seconds(), os.cpu_count())
    timed = [name for name in (PREPARE, *names) if name in elapsed]
    width = max(map(len, timed))
    print("== times (wall clock, then the CPU of the benchmark's processes)", flush=True)
    for name in timed:
        print(
            f"{name:<{width}} {elapsed[name]:7.1f}s  CPU {cpu[name]:7.1f}s"
            f"{'  FAIL' if name in failed else ''}"
        )
    print(f"{'total':<{width}} {total:7.1f}s = {total / 60:.1f} min", flush=True)
    if share is not None:
        print(share, flush=True)
    if failed:
        print(f"failed or out of bound: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
