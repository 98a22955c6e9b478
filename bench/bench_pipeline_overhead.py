"""pipeline_overhead: the whole `make run` pipeline against the same `dbt build` alone.

Measures, round after round on the demo warehouse (:func:`_common.demo_rounds`, shared
with dbt_in_airflow in one `make bench`), (a) the DAGs run through `airflow dags test`
against the sandbox (what `make run` does after installing) and (b) `dbt build` alone on
the warehouse that run produced, which goes first alternating. The ratio is the median
pipeline time over the median dbt time: what Airflow, extraction, loading, the quality
gate and publishing add on top of the transformation itself.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import demo_rounds, median, report

NAME = "pipeline_overhead"
BOUND = 5.0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-") as tmp:
        # Every round is the daily case on both sides: an incremental build of the same
        # warehouse, after the demo's first pipeline run and one build alone (untimed).
        rounds = demo_rounds(Path(tmp))
        pipeline = median([r["pipeline"] for r in rounds])
        plain = median([r["plain"] for r in rounds])
        print(f"median: pipeline {pipeline:.1f}s, dbt build alone {plain:.1f}s", flush=True)
        ratio = pipeline / plain
        return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
