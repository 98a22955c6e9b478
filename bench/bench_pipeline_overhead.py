"""pipeline_overhead: the whole `make run` pipeline against the same `dbt build` alone.

Measures, in one process and round after round, (a) the three DAGs run through
`airflow dags test` against the sandbox (what `make run` does after installing) and
(b) `dbt build` alone on the warehouse that run produced. The ratio is the median
pipeline time over the median dbt time: what Airflow, extraction, loading, the quality
gate and publishing add on top of the transformation itself.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from _common import demo_pipeline_run, median, report

NAME = "pipeline_overhead"
BOUND = 5.0
# After the first pipeline run (first build, a full refresh, and demo history seeding;
# shared with dbt_in_airflow in one `make bench`), untimed.
ROUNDS = 2


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-") as tmp:
        from social_leadership.dbt_runner import run_dbt
        from social_leadership.demo.run import run_pipeline

        settings, airflow_home = demo_pipeline_run(Path(tmp))
        # `dbt build` alone is dbt's own command line, started cold as from a shell: this
        # process's later dbt commands would otherwise fork from a warm starter
        # (social_leadership.dbt_warm), as the pipeline's own Airflow process does.
        alone = dataclasses.replace(settings, dbt_warm_start=False)
        pipeline_times: list[float] = []
        dbt_times: list[float] = []
        # Every round is the daily case on both sides: an incremental build of the same
        # warehouse.
        for round_no in range(1, ROUNDS + 1):
            timings = run_pipeline(settings, airflow_home, echo=False)
            pipeline = timings["total"]
            pipeline_times.append(pipeline)
            started = time.perf_counter()
            run_dbt(["build"], alone)
            dbt_times.append(time.perf_counter() - started)
            print(
                f"round {round_no}: pipeline {pipeline:.1f}s "
                f"({', '.join(f'{k} {v:.1f}s' for k, v in timings.items())}); "
                f"dbt build alone {dbt_times[-1]:.1f}s",
                flush=True,
            )
        ratio = median(pipeline_times) / median(dbt_times)
        return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
