"""The `platform_metrics` DAG (its documentation is the DAG function's docstring)."""

from __future__ import annotations

from airflow.sdk import dag, task

from social_leadership.alerts import platform_metrics_deadline, run_callbacks
from social_leadership.orchestration import (
    API_PLATFORMS,
    DEFAULT_ARGS,
    RAW_PLATFORM_METRICS,
    START_DATE,
    SUMMARY_PRIORITY_WEIGHT,
    WAREHOUSE_POOL,
    daily_timetable,
    platform_load_pool,
)


@dag(
    dag_id="platform_metrics",
    # 00:00 UTC daily, the logical date the day it runs (not "@daily": see daily_timetable).
    schedule=daily_timetable(),
    start_date=START_DATE,
    # Past days cannot be observed through the APIs; a catchup would only log skips.
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    # One alert per run, when it ends (social_leadership.alerts).
    **run_callbacks(),
    # SLW_PLATFORM_METRICS_DEADLINE_HOURS after the logical date, through the same channels.
    deadline=platform_metrics_deadline(),
    tags=["social-leadership", "extract", "platforms"],
)
def platform_metrics():
    """
    ### platform_metrics

    Daily snapshot of every rostered executive's public counts (followers, following, posts)
    on each platform with an API.

    * `load_roster` validates the roster file and writes it to `raw.roster_*`. Bad rows are
      skipped, logged with file, row and field, and kept with their reasons in
      `<SLW_QUARANTINE_DIR>/roster/<time>-<file>/`; its XCom counts them and names the
      executives left out (an alert says so too). The extract tasks read the handles from
      that XCom. A roster no retry can mend (a missing path, a workbook) fails it at once;
      one that reads as a file caught mid-write (empty, a cut header) is retried. A file
      refused so fails the run, but the extract tasks still fetch the accounts of the
      roster stored before (its XCom then); with none stored, they fail too.
    * Per platform, `extract_<platform>` fetches today's counts in the API's largest batches
      and lands the raw responses under `landing/platform=<p>/date=<d>/`; `load_<platform>`
      replays that landing into `raw.platform_metrics`, replacing the day (idempotent). Each
      platform is its own pair of tasks: one platform's outage does not stop the others.
    * A platform without its connection `slw_<platform>` is not configured: nothing is
      sent, both its tasks end `skipped`, `audit.platform_loads` says `not_configured`, and
      the run does not fail for it.
    * A platform whose extraction gave up on transient faults (5xx, timeouts) is retried by
      Airflow; after the last try, what it fetched is loaded, it is `failed` in the audit
      and its load task fails. A refused request (bad token) fails it without retry. A rate
      limit is not a failure: the accounts it left are `deferred` (an alert item). An
      extract marked success by hand has no outcome: its load fails, saying so.
    * `check_platforms` runs last, after `signal_warehouse`: the run fails when any
      configured platform (or any other task) failed, once the others have loaded.
    * `run_summary` (a teardown: it runs whatever happened and never changes the run's
      state) shows the run's key figures as its XCom and writes them to `audit.runs`.
    * `import_history` imports follower history files dropped into
      `<SLW_LANDING_DIR>/history/` (CSV or Parquet, source `import`; LinkedIn member counts
      come in only this way); with `SLW_DEMO` on (as in `make run`; off by default) it
      first seeds two years of synthetic demo history into a warehouse that has no
      imported rows yet.
    * A run for a past logical date (backfill, catchup, a cleared task) does not extract:
      APIs return current counts only. The skip is logged and written to
      `audit.platform_loads`. A later try of a run whose earlier tries failed on its day
      (a retry after midnight) asks nothing more but loads what they read then, `failed`.

    Endpoints and tokens come from the Airflow connections `slw_<platform>`.

    Alerts (README "Alerts"): one per run for failed tasks, failed or unconfigured
    platforms, accounts deferred by an API's limit and rejected roster and history rows;
    a deadline alert when a run has not succeeded `SLW_PLATFORM_METRICS_DEADLINE_HOURS`
    after its logical date.
    """

    @task(pool=WAREHOUSE_POOL)
    def load_roster(**context) -> dict:
        from social_leadership.orchestration import refuse_unknown_params
        from social_leadership.tasks import load_roster_task

        refuse_unknown_params(context)
        return load_roster_task(context)

    # Runs after a failed load_roster too: a roster file it refused leaves the roster stored
    # before, whose handles it pushed (the day's counts cannot be fetched later). Pulled,
    # not passed: a load_roster failed otherwise has none, and the extract says so.
    @task(trigger_rule="all_done")
    def extract(platform: str, **context) -> dict:
        from social_leadership.tasks import extract_task, roster_handles

        return extract_task(platform, roster_handles(context, platform), context)

    # A skipped extract (no connection) still reaches its load, which audits why. Its
    # outcome is pulled, not passed: a skipped extract has none, and Airflow logs an error
    # for a passed one it cannot find, in a run that went well. On a DuckLake the loads
    # write at once (orchestration.platform_load_pool).
    @task(pool=platform_load_pool(), trigger_rule="none_failed")
    def load(platform: str, **context) -> dict:
        from social_leadership.tasks import load_task

        extract_outcome = context["ti"].xcom_pull(task_ids=f"extract_{platform}")
        return load_task(platform, extract_outcome, context)

    @task(pool=WAREHOUSE_POOL)
    def import_history() -> dict:
        from social_leadership.tasks import import_history_task

        return import_history_task()

    # Runs once every load has ended, failed ones included, so the platforms that did
    # arrive still reach the warehouse; one asset event per run, and none without rows.
    @task.short_circuit(trigger_rule="all_done", ignore_downstream_trigger_rules=False)
    def anything_loaded(**context) -> bool:
        from social_leadership.tasks import platform_rows_arrived

        return platform_rows_arrived(context)

    @task(outlets=[RAW_PLATFORM_METRICS])
    def signal_warehouse() -> None:
        """Emit the raw_platform_metrics asset event that schedules warehouse_build."""

    # The run's only leaf: the other leaves follow an all_done gate, so without it a run
    # whose platforms failed would end "success".
    @task(trigger_rule="all_done")
    def check_platforms(**context) -> dict:
        from social_leadership.tasks import check_platforms_task

        return check_platforms_task(context)

    # The run's key figures for the UI (this task's XCom) and audit.runs. A teardown: it
    # runs whatever happened upstream and never changes the run's state. First in the pool's
    # queue: it ends a run whose work is done (SUMMARY_PRIORITY_WEIGHT).
    @task(pool=WAREHOUSE_POOL, priority_weight=SUMMARY_PRIORITY_WEIGHT)
    def run_summary(**context) -> dict:
        from social_leadership.run_summary import run_summary_task

        return run_summary_task(context)

    roster = load_roster()
    loaded = [import_history()]
    roster >> loaded[0]
    for platform in API_PLATFORMS:
        landed = extract.override(task_id=f"extract_{platform}")(platform)
        roster >> landed
        loaded.append(load.override(task_id=f"load_{platform}")(platform))
        landed >> loaded[-1]
    signalled = signal_warehouse()
    loaded >> anything_loaded() >> signalled
    checked = check_platforms()
    [*loaded, signalled] >> checked
    checked >> run_summary().as_teardown()


platform_metrics()
