"""dbt_in_airflow: the dbt stage as Airflow runs it, per-node view included, over `dbt build`.

Two warehouses. On each, in alternating rounds after an untimed first build (so every
timed build is the daily incremental one), (a) `warehouse_build` runs through Airflow as
`airflow dags test` does and (b) `dbt build` runs alone (which goes first alternates):

* the demo's (what `make run` builds): (a) is the `warehouse_build` run of the whole
  pipeline of each of the demo rounds (:func:`_common.demo_rounds`: every DAG as `make
  run` runs them, shared with pipeline_overhead in one `make bench`). Its build follows
  the pipeline's extraction, which replaces today's counts; (b) finds nothing new. Both
  rebuild the same days: today's lie inside the late-data lookback that every daily
  build redoes;
* the 3-year bench warehouse of bench_incremental_build (2,000 executives, 5 platforms, 3
  years of daily counts; copied from the run's cache when an earlier benchmark built it):
  (a) runs `warehouse_build` after survey_ingest in the same Airflow process (as in `make
  run`), its quality gate and publish marked successful instead of run, so the rounds stay
  short; a new day arrives before each build.

The dbt stage of (a) is read from Airflow's metadata DB (:func:`_common.dbt_stage_seconds`):
first start to last end of `dbt_build`, `dbt_nodes` and every mapped `dbt_node` instance,
less any other task that ran in between. The ratio is the larger of the two warehouses'
median (a) / median (b).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import (
    LAST_HISTORY_DAY,
    add_next_day,
    build_bench_warehouses,
    dbt_stage_seconds,
    demo_rounds,
    median,
    record_initial_build,
    report,
)

NAME = "dbt_in_airflow"
BOUND = 1.3
ROUNDS = 3
# Not part of the dbt stage: marked successful rather than run, so the rounds stay short.
NOT_TIMED = "source_freshness|quality_gate|publish|publish_docs|run_summary"
WARM_THEN_BUILD = ("survey_ingest", "warehouse_build")


def measure(label: str, settings, airflow_home: Path, new_day) -> tuple[float, float]:
    from social_leadership.dbt_runner import run_dbt
    from social_leadership.local_airflow import airflow_environment, run_dags

    env = airflow_environment(airflow_home, settings.as_env())
    airflow_times: list[float] = []
    plain_times: list[float] = []
    for round_no in range(1, ROUNDS + 1):
        # Alternating which side goes first, so a drift in the machine's load hits both.
        for side in ("airflow", "plain") if round_no % 2 else ("plain", "airflow"):
            new_day()
            if side == "airflow":
                # survey_ingest first, as `make run` does: the Airflow process is warm (its
                # in-process API started) when warehouse_build runs, as a long-lived worker
                # would be. Its tasks are not part of the dbt stage.
                run_dags(WARM_THEN_BUILD, env, settings.logs_dir, mark_success=NOT_TIMED)
                stage, instances = dbt_stage_seconds(airflow_home / "airflow.db")
                airflow_times.append(stage)
            else:
                started = time.perf_counter()
                run_dbt(["build"], settings)
                plain_times.append(time.perf_counter() - started)
        print(
            f"{label} round {round_no}: dbt stage in Airflow {airflow_times[-1]:.1f}s "
            f"({instances} task instances), dbt build alone {plain_times[-1]:.1f}s",
            flush=True,
        )
    return median(airflow_times), median(plain_times)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-dbt-airflow-") as tmp:
        rounds = demo_rounds(Path(tmp))
        in_airflow = median([r["dbt_stage"] for r in rounds])
        plain = median([r["plain"] for r in rounds])
        print(
            f"demo median: dbt stage in Airflow {in_airflow:.1f}s, dbt build alone {plain:.1f}s",
            flush=True,
        )
        ratios = {"demo": in_airflow / plain}

        long = build_bench_warehouses(Path(tmp), labels=("3y",))["3y"]
        record_initial_build(long)
        days = iter(range(1, 2 * ROUNDS + 1))

        def next_day() -> None:
            add_next_day(long, LAST_HISTORY_DAY + timedelta(days=next(days)))

        in_airflow, plain = measure("3y", long, Path(tmp) / "3y_airflow", next_day)
        ratios["3y"] = in_airflow / plain
        print(
            ", ".join(f"{label} ratio {ratio:.3f}" for label, ratio in ratios.items()),
            flush=True,
        )
        return report(NAME, max(ratios.values()), BOUND)


if __name__ == "__main__":
    sys.exit(main())
