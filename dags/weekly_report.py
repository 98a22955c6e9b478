"""The `weekly_report` DAG (its documentation is the DAG function's docstring)."""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from social_leadership.alerts import run_callbacks
from social_leadership.orchestration import DEFAULT_ARGS, START_DATE, report_timetable


@dag(
    dag_id="weekly_report",
    # SLW_REPORT_SCHEDULE (default Monday 06:00 UTC); each run covers the 7 days before it.
    schedule=report_timetable(),
    start_date=START_DATE,
    # A missed week is written on demand (trigger with its date), not by a backlog of runs.
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "week_end": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last day of the week reported (YYYY-MM-DD); default: the day "
            "before the run's data interval ends.",
        ),
        "resend": Param(
            False,
            type="boolean",
            description="Mail the report again although this week was already mailed.",
        ),
    },
    **run_callbacks(),
    tags=["social-leadership", "report"],
)
def weekly_report():
    """
    ### weekly_report

    The briefing for readers without a BI tool: does Germany lag the US (active share and
    median reach per country beside the public's expectation figures, with their intervals
    and sources), 52-week trends, platform mix, the week's movers per platform, coverage
    and trust (accounts not found, suspended, deferred; files quarantined; quality checks;
    data as of per platform), and a sources section.

    Reads only the published serving copy (the DuckLake catalog), never the working
    warehouse: it takes no slot of the `duckdb_warehouse` pool and never waits for a build.
    Writes `$SLW_REPORTS_DIR/<ISO week>/` (7 days that are not their ISO week, written once
    its Sunday has come: `<ISO week>_to_<last day>/`, never over the week's own report):
    `weekly_report.html` (self-contained, inline SVG charts), `weekly_report.pdf` and the
    figures behind each chart as CSV. The week is the
    7 days ending the day before the run's data interval ends (a scheduled Monday run
    reports Monday to Sunday), or ending on the `week_end` parameter: trigger a run with
    it for any past week. A rerun replaces that week's files.

    With the SMTP connection `slw_smtp` and `SLW_REPORT_EMAILS`, the report is mailed (HTML
    body, PDF attached) once per week and recipient: a retry mails only those not reached
    yet (one the server refused); the `resend` parameter mails all again. With
    `SLW_REPORT_EMAILS` set and no `slw_smtp`, the run fails once the files are written,
    without retrying (the webhook alert says why): clear it once the connection is added.
    """

    @task
    def write_report(**context) -> dict:
        from social_leadership.tasks import weekly_report_task

        return weekly_report_task(context)

    write_report()


weekly_report()
