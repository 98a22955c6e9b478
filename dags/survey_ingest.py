"""The `survey_ingest` DAG (its documentation is the DAG function's docstring)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from social_leadership.alerts import run_callbacks
from social_leadership.orchestration import (
    DEFAULT_ARGS,
    RAW_SURVEY_RESULTS,
    START_DATE,
    SUMMARY_PRIORITY_WEIGHT,
    WAREHOUSE_POOL,
)


@dag(
    dag_id="survey_ingest",
    # A run that finds nothing new only hashes the files, so polling often is cheap.
    schedule=timedelta(minutes=5),
    start_date=START_DATE,
    # Each run scans the whole landing folder, so missed intervals need no catchup.
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    # One alert per run, when it ends (social_leadership.alerts).
    **run_callbacks(),
    tags=["social-leadership", "ingest", "surveys"],
)
def survey_ingest():
    """
    ### survey_ingest

    Loads public-trust survey files into the raw survey tables, every 5 minutes so a new
    file is picked up soon after it lands in `SLW_SURVEY_DIR`:

    * published aggregates (CSV, XLSX, Parquet) into `raw.survey_results`, including the
      bundled published Edelman figures (each row with its source);
    * respondent microdata with its `<stem>.survey.json` sidecar into `raw.survey_questions`
      and `raw.survey_respondent_answers` (ids stored only as keyed pseudonyms, free text
      never read), including the demo's synthetic microdata when `SLW_DEMO` is on (as in
      `make run`; off by default). Weighted shares are computed by dbt in `warehouse_build`.

    A file that cannot be loaded (invalid rows, an unknown header, a corrupt or unreadable
    file, one past a size limit, a symlink leading out of the landing folder) moves with its
    sidecar to quarantine beside a JSON report (file, row, column, reason); nothing from it
    is loaded, the other files still load and the run succeeds. Only a fault of the
    warehouse itself (a held lock, a full disk) fails the task, and Airflow retries it. The
    same file dropped again is a no-op (content hash), but an earlier version sent back
    under its name replaces the one loaded since; a corrected file for the same source and
    wave replaces the earlier rows atomically. The warehouse build is signalled only when a
    file was loaded, by this run or by one that died before signalling (a file loaded after
    the last build began, once there is platform data). A quarantined file is alerted
    (README "Alerts"), once per run. `run_summary` (a teardown: it runs whatever happened
    and never changes the run's state) shows the run's key figures as its XCom and writes
    them to `audit.runs`.
    """

    @task(pool=WAREHOUSE_POOL)
    def ingest_surveys(**context) -> dict:
        from social_leadership.orchestration import refuse_unknown_params
        from social_leadership.tasks import ingest_surveys_task

        refuse_unknown_params(context)
        return ingest_surveys_task()

    # Files loaded by this run, or by one that died before its signal (no build began since).
    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def anything_loaded(summary: dict) -> bool:
        return summary["files_loaded"] > 0 or summary.get("files_unbuilt", 0) > 0

    @task(outlets=[RAW_SURVEY_RESULTS])
    def signal_warehouse(summary: dict) -> dict:
        return summary

    # The run's key figures for the UI (this task's XCom) and audit.runs. A teardown: it
    # runs whatever happened upstream and never changes the run's state. First in the pool's
    # queue: it ends a run whose work is done (SUMMARY_PRIORITY_WEIGHT).
    @task(pool=WAREHOUSE_POOL, priority_weight=SUMMARY_PRIORITY_WEIGHT)
    def run_summary(**context) -> dict:
        from social_leadership.run_summary import run_summary_task

        return run_summary_task(context)

    intake = ingest_surveys()
    gate = anything_loaded(intake)
    gate >> signal_warehouse(intake) >> run_summary().as_teardown()


survey_ingest()
