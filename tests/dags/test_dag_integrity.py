"""Every DAG imports cleanly and follows the house rules (as in the Astro template)."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"
EXPECTED_DAG_IDS = {"platform_metrics", "survey_ingest", "warehouse_build", "weekly_report"}


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}


def test_contract_dag_ids_exist(dag_bag):
    assert set(dag_bag.dag_ids) >= EXPECTED_DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_dag_has_tags_retries_docs_and_static_start(dag_bag, dag_id):
    dag = dag_bag.dags[dag_id]
    assert dag.tags, f"{dag_id} has no tags"
    assert dag.doc_md, f"{dag_id} has no docstring/doc_md"
    assert dag.start_date is not None
    assert dag.start_date.tzinfo is not None
    for task in dag.tasks:
        assert task.retries >= 2, f"{dag_id}.{task.task_id} retries={task.retries}"
        # SLW_TASK_TIMEOUT_SECONDS' default: a hung task fails and is alerted.
        assert task.execution_timeout == timedelta(hours=6), f"{dag_id}.{task.task_id}"


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_no_cycles(dag_bag, dag_id):
    dag = dag_bag.dags[dag_id]
    # topological_sort raises on a cycle; every task must appear exactly once.
    ordered = dag.topological_sort()
    assert len(ordered) == len(dag.tasks)


def test_warehouse_writers_share_one_slot_pool(dag_bag):
    from social_leadership.orchestration import WAREHOUSE_POOL

    writers = {
        ("platform_metrics", "load_roster"),
        ("platform_metrics", "load_bluesky"),
        ("platform_metrics", "load_x"),
        ("platform_metrics", "load_threads"),
        ("platform_metrics", "import_history"),
        ("survey_ingest", "ingest_surveys"),
        ("warehouse_build", "dbt_build"),
        ("warehouse_build", "publish"),
    }
    for dag_id, task_id in writers:
        assert dag_bag.dags[dag_id].get_task(task_id).pool == WAREHOUSE_POOL


def test_assets_link_producers_to_warehouse_build(dag_bag):
    from social_leadership.orchestration import RAW_PLATFORM_METRICS, RAW_SURVEY_RESULTS

    outlets = {
        outlet
        for dag_id in ("platform_metrics", "survey_ingest")
        for task in dag_bag.dags[dag_id].tasks
        for outlet in task.outlets
    }
    assert {RAW_PLATFORM_METRICS, RAW_SURVEY_RESULTS} <= outlets
    condition = dag_bag.dags["warehouse_build"].timetable.asset_condition
    scheduled_on = {asset.name for asset in condition.objects}
    assert scheduled_on == {RAW_PLATFORM_METRICS.name, RAW_SURVEY_RESULTS.name}


def test_dag_files_do_no_work_at_import_time(tmp_path, monkeypatch):
    # Parsing must stay cheap and side-effect free: the scheduler re-parses DAG files
    # continuously. Importing every DAG file must not create or touch any data file.
    import importlib.util

    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    for path in DAGS_DIR.glob("*.py"):
        spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    assert not (tmp_path / "data").exists()


def test_platform_metrics_signals_the_warehouse_once_after_every_load(dag_bag):
    from social_leadership.domain import API_PLATFORMS
    from social_leadership.orchestration import RAW_PLATFORM_METRICS

    dag = dag_bag.dags["platform_metrics"]
    producers = [task.task_id for task in dag.tasks if RAW_PLATFORM_METRICS in task.outlets]
    assert producers == ["signal_warehouse"]
    gate = dag.get_task("anything_loaded")
    assert gate.trigger_rule == "all_done"
    assert set(gate.upstream_task_ids) == {
        "import_history",
        *(f"load_{platform}" for platform in API_PLATFORMS),
    }
    assert dag.get_task("signal_warehouse").upstream_task_ids == {"anything_loaded"}


def test_platform_metrics_ends_with_a_check_that_fails_the_run_on_a_failed_platform(dag_bag):
    from social_leadership.domain import API_PLATFORMS

    dag = dag_bag.dags["platform_metrics"]
    # The leaves that decide the run's state (a teardown does not).
    leaves = [
        task.task_id
        for task in dag.tasks
        if not task.is_teardown and not any(not t.is_teardown for t in task.downstream_list)
    ]
    # A failed load upstream of an all_done gate alone would leave the run "success".
    assert leaves == ["check_platforms"]
    check = dag.get_task("check_platforms")
    assert check.trigger_rule == "all_done"
    assert {"signal_warehouse", *(f"load_{p}" for p in API_PLATFORMS)} <= check.upstream_task_ids
    for platform in API_PLATFORMS:
        # A skipped extract (not configured) still reaches its load, which audits it.
        assert dag.get_task(f"load_{platform}").trigger_rule == "none_failed"
        # A roster file refused: the stored roster's accounts are fetched all the same.
        extract = dag.get_task(f"extract_{platform}")
        assert (extract.trigger_rule, extract.upstream_task_ids) == ("all_done", {"load_roster"})


def test_the_dags_audit_runs_records_are_those_with_a_run_summary(dag_bag):
    from social_leadership.run_summary import RECORDED_DAGS

    summarised = {dag_id for dag_id, dag in dag_bag.dags.items() if "run_summary" in dag.task_ids}
    assert summarised == RECORDED_DAGS


@pytest.mark.parametrize("dag_id", ["platform_metrics", "survey_ingest", "warehouse_build"])
def test_every_dag_ends_with_a_run_summary_that_leaves_the_runs_state_alone(dag_bag, dag_id):
    dag = dag_bag.dags[dag_id]
    summary = dag.get_task("run_summary")
    # A teardown runs whatever happened upstream and is not a leaf for the run's state.
    assert summary.is_teardown
    assert not summary.on_failure_fail_dagrun
    assert summary.pool == "duckdb_warehouse"
    assert [task.task_id for task in dag.tasks if not task.downstream_task_ids] == ["run_summary"]
    # Every other task is upstream of it: it reads their outcomes.
    assert summary.get_flat_relative_ids(upstream=True) == set(dag.task_ids) - {"run_summary"}
    # The pool's queue is ordered by weight: the summary, which ends a run whose work is
    # done, goes before every writer of every DAG (by default, as a leaf, it went last).
    writers = [
        task
        for other in dag_bag.dags.values()
        for task in other.tasks
        if task.pool == summary.pool and task.task_id != "run_summary"
    ]
    assert _scheduled_weight(summary) > max(_scheduled_weight(task) for task in writers)


def _scheduled_weight(task) -> int:
    """The priority weight the scheduler gives the task's instances (as it computes it when
    it creates them: the task serialized, its weight rule applied)."""
    import uuid

    from airflow.models.taskinstance import TaskInstance
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.task.priority_strategy import validate_and_load_priority_weight_strategy

    dag = DagSerialization.from_dict(DagSerialization.to_dict(task.dag))
    scheduled = dag.get_task(task.task_id)
    rule = scheduled.weight_rule
    if not hasattr(rule, "get_weight"):
        rule = validate_and_load_priority_weight_strategy(rule)
    return rule.get_weight(TaskInstance(task=scheduled, run_id="r", dag_version_id=uuid.uuid4()))


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAG_IDS))
def test_a_run_for_any_date_since_2000_is_one_airflow_runs_and_enabling_catches_up_nothing(
    dag_bag, dag_id
):
    """Airflow runs none of a DAG's tasks for a logical date before its start date and calls
    the run a success: a past week triggered from the UI ended green, nothing written."""
    from datetime import datetime

    dag = dag_bag.dags[dag_id]
    assert dag.start_date <= datetime(2000, 1, 1, tzinfo=UTC)
    assert dag.catchup is False


@pytest.mark.parametrize("cron_data_intervals", ["True", "False"])
def test_platform_metrics_runs_for_the_day_it_runs_whatever_airflow_s_cron_intervals_say(
    monkeypatch, cron_data_intervals
):
    """With ``[scheduler] create_cron_data_intervals`` True (Airflow 2's way, kept by
    migrated deployments) an ``"@daily"`` run's logical date was the day before it ran: a
    past day, for which every platform was skipped and the run still green."""
    from datetime import datetime

    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import DataInterval, TimeRestriction

    from social_leadership.platform_metrics import observation_date

    monkeypatch.setenv("AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS", cron_data_intervals)
    dag = DagBag(dag_folder=str(DAGS_DIR / "platform_metrics.py")).dags["platform_metrics"]
    # The timetable as the scheduler has it: serialized by the DAG processor.
    timetable = decode_timetable(encode_timetable(dag.timetable))
    # A day ahead of the clock: without catch-up the scheduler skips to today's run when the
    # last run is further behind, and a fixed past day turned this test red as days went by.
    ahead = datetime.now(UTC).date() + timedelta(days=30)
    after = datetime(ahead.year, ahead.month, ahead.day, tzinfo=UTC)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=DataInterval(after, after),
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=False),
    )

    assert info.run_after == info.logical_date == after + timedelta(days=1)
    ran = info.run_after.replace(minute=3)  # as the task's clock reads when it extracts
    assert observation_date(info.logical_date, ran) == ran.date()


def test_weekly_report_takes_no_warehouse_slot_and_runs_weekly(dag_bag):
    from datetime import datetime

    from social_leadership.orchestration import WAREHOUSE_POOL

    dag = dag_bag.dags["weekly_report"]
    assert all(task.pool != WAREHOUSE_POOL for task in dag.tasks)
    # Monday 06:00 UTC by default; each run's interval is the 7 days before it.
    after = datetime(2026, 11, 25, tzinfo=UTC)
    assert dag.timetable.summary == "0 6 * * 1"
    interval = dag.timetable.infer_manual_data_interval(run_after=after)
    assert (interval.end - interval.start).days == 7


def test_weekly_report_schedule_is_a_setting(monkeypatch):
    from social_leadership.orchestration import report_timetable

    monkeypatch.setenv("SLW_REPORT_SCHEDULE", "30 7 * * 5")
    assert report_timetable().summary == "30 7 * * 5"
