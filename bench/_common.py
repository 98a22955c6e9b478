"""Helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "include"))


def report(name: str, ratio: float, bound: float, *, lower_is_better: bool = True) -> int:
    """Print the BENCH line (always last) and return the process exit code."""
    ok = ratio <= bound if lower_is_better else ratio >= bound
    print(f"BENCH {name} ratio={ratio:.3f} bound={bound} {'ok' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


def median(values: list[float]) -> float:
    return statistics.median(values)
