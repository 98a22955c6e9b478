"""The `warehouse_build` DAG (its documentation is the DAG function's docstring)."""

from __future__ import annotations

from airflow.sdk import TriggerRule, dag, task

from social_leadership.orchestration import (
    DEFAULT_ARGS,
    RAW_PLATFORM_METRICS,
    RAW_SURVEY_RESULTS,
    SERVING_MARTS,
    START_DATE,
    WAREHOUSE_POOL,
)


@dag(
    dag_id="warehouse_build",
    schedule=(RAW_PLATFORM_METRICS | RAW_SURVEY_RESULTS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["social-leadership", "dbt", "quality", "publish"],
)
def warehouse_build():
    """
    ### warehouse_build

    Builds and publishes the marts whenever raw data changes (scheduled on the raw assets).

    1. `dbt_build`: `dbt build` of staging, intermediate and marts with every data and unit
       test; a failing test stops the run. A later try of the same run (a retry, or the
       task cleared) runs `dbt retry`: only what failed or was skipped runs again.
       `dbt_nodes` / `dbt_node`: one mapped instance per model, seed and snapshot, named
       with its status, duration and tests; its log holds the node's dbt log and each
       test's result (shown also when the build failed).
    2. `quality_gate`: Great Expectations suites over each mart; results go to
       `audit.quality_results`, and any critical failure stops publishing.
    3. `publish`: atomic swap of the serving DuckDB file (what BI tools read) and a Parquet
       export of the marts.
    """

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

    build = dbt_build()
    build >> quality_gate() >> publish()
    dbt_node.expand(unit=build >> dbt_nodes())


warehouse_build()
