"""The `warehouse_build` DAG (its documentation is the DAG function's docstring)."""

from __future__ import annotations

from airflow.sdk import Param, TriggerRule, dag, task

from social_leadership.alerts import run_callbacks
from social_leadership.orchestration import (
    DEFAULT_ARGS,
    RAW_PLATFORM_METRICS,
    RAW_SURVEY_RESULTS,
    SERVING_MARTS,
    START_DATE,
    SUMMARY_PRIORITY_WEIGHT,
    WAREHOUSE_POOL,
)


@dag(
    dag_id="warehouse_build",
    schedule=(RAW_PLATFORM_METRICS | RAW_SURVEY_RESULTS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "full_refresh": Param(
            False,
            type="boolean",
            description="Rebuild every day of history (dbt --full-refresh); otherwise the "
            "build recomputes from the first day of the raw rows loaded since the last one.",
        ),
        "accept_shorter_history": Param(
            False,
            type="boolean",
            description="Publish even though a daily fact begins later and holds less than "
            "half the days of the serving copy's (you started over on purpose); otherwise "
            "such a publish is refused and the serving copy kept (a warehouse or catalog "
            "recreated empty).",
        ),
    },
    # One alert per run, when it ends (social_leadership.alerts).
    **run_callbacks(),
    tags=["social-leadership", "dbt", "quality", "publish"],
)
def warehouse_build():
    """
    ### warehouse_build

    Builds and publishes the marts whenever raw data changes (scheduled on the raw assets).

    1. `source_freshness`: `dbt source freshness` of the raw tables and each platform's
       "data as of" into `audit.source_freshness` / `audit.platform_data_as_of` (published
       beside the marts); stale data is alerted (a stale platform once a day), never fatal.
       Before any platform data is loaded (a new deployment's first survey run) it is
       skipped, and the build with it: the run is green and says why.
    2. `dbt_build`: `dbt build` of staging, intermediate and marts with every data and unit
       test; a failing test stops the run. Incremental from the first day of the raw rows
       loaded since the last build (an imported history file, a late API row) or the
       late-data lookback, whichever is earlier; every day only with the `full_refresh`
       parameter (`slw rebuild --full`), for a new warehouse or changed columns. A later
       try of the same run (a retry, or the task cleared) runs `dbt retry`: only what
       failed or was skipped runs again.
       `dbt_nodes` / `dbt_node`: the per-node view of the build (README "dbt in Airflow"),
       shown also when the build failed.
    3. `quality_gate`: Great Expectations suites over each mart; results go to
       `audit.quality_results`, and any critical failure stops publishing.
    4. `publish`: atomic swap of the serving DuckDB file (what BI tools read) and a Parquet
       export of the marts; only of this run's build, checked by this run's gate (the
       newest dbt_build try must be this run's: a cleared `publish` of an earlier run is
       refused, and marking `quality_gate` success lets nothing through). A daily fact
       that would begin later and cover less than half the days of the serving copy's
       (history lost: a warehouse or catalog recreated empty) is refused too, unless the
       `accept_shorter_history` parameter is set.
    5. `publish_docs`: dbt docs (with the catalog) and the gate's GX Data Docs become the
       current set in `SLW_DOCS_DIR` (`make docs` serves them).

    `run_summary` (a teardown: it runs whatever happened and never changes the run's state)
    shows the run's key figures as its XCom and writes them to `audit.runs`.
    """

    @task(pool=WAREHOUSE_POOL)
    def source_freshness(**context) -> dict:
        from social_leadership.tasks import source_freshness_task

        return source_freshness_task(context)

    @task(pool=WAREHOUSE_POOL)
    def dbt_build(**context) -> dict:
        from social_leadership.tasks import dbt_build_task

        return dbt_build_task(context)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def dbt_nodes(**context) -> list:
        from social_leadership.tasks import dbt_nodes_task

        return dbt_nodes_task(context)

    @task(map_index_template="{{ node_label }}")
    def dbt_node(unit: dict) -> dict:
        from social_leadership.tasks import dbt_node_task

        return dbt_node_task(unit)

    @task(pool=WAREHOUSE_POOL)
    def quality_gate(**context) -> dict:
        from social_leadership.tasks import quality_gate_task

        return quality_gate_task(context)

    @task(pool=WAREHOUSE_POOL, outlets=[SERVING_MARTS])
    def publish(**context) -> dict:
        from social_leadership.tasks import publish_task

        return publish_task(context)

    @task(pool=WAREHOUSE_POOL)
    def publish_docs(**context) -> dict:
        from social_leadership.docs_site import publish_docs_task

        return publish_docs_task(context)

    # The run's key figures for the UI (this task's XCom) and audit.runs. A teardown: it
    # runs whatever happened upstream and never changes the run's state. First in the pool's
    # queue: it ends a run whose work is done (SUMMARY_PRIORITY_WEIGHT).
    @task(pool=WAREHOUSE_POOL, priority_weight=SUMMARY_PRIORITY_WEIGHT)
    def run_summary(**context) -> dict:
        from social_leadership.run_summary import run_summary_task

        return run_summary_task(context)

    built = dbt_build()
    # First, so that this run's publication carries this run's "data as of".
    source_freshness() >> built
    nodes = dbt_node.expand(unit=built >> dbt_nodes())
    summary = run_summary().as_teardown()
    built >> quality_gate() >> publish() >> publish_docs() >> summary
    nodes >> summary


warehouse_build()
