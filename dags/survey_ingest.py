"""The `survey_ingest` DAG (its documentation is the DAG function's docstring)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from social_leadership.orchestration import (
    DEFAULT_ARGS,
    RAW_SURVEY_RESULTS,
    START_DATE,
    WAREHOUSE_POOL,
)


@dag(
    dag_id="survey_ingest",
    schedule=timedelta(minutes=10),
    start_date=START_DATE,
    # Each run scans the whole landing folder, so missed intervals need no catchup.
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["social-leadership", "ingest", "surveys"],
)
def survey_ingest():
    """
    ### survey_ingest

    Loads public-trust survey results into `raw.survey_results`: the bundled published
    figures (each row with its source) and every file dropped into the survey landing folder
    (`SLW_SURVEY_DIR`). Runs every 10 minutes so a new file is picked up soon after it lands.

    A file that fails validation moves to quarantine with a JSON report (file, row, column,
    reason) and nothing from it is loaded; the other files still load. The same file dropped
    again is a no-op (content hash). The warehouse build is signalled only when rows changed.
    """

    @task(pool=WAREHOUSE_POOL)
    def ingest_surveys() -> dict:
        from social_leadership.tasks import ingest_surveys_task

        return ingest_surveys_task()

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def anything_loaded(summary: dict) -> bool:
        return summary["files_loaded"] > 0

    @task(outlets=[RAW_SURVEY_RESULTS])
    def signal_warehouse(summary: dict) -> dict:
        return summary

    summary = ingest_surveys()
    gate = anything_loaded(summary)
    gate >> signal_warehouse(summary)


survey_ingest()
