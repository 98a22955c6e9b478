"""End to end: the DAGs run through the real Airflow CLI (`airflow dags test`) against the
sandbox API on loopback, into a temporary warehouse; assertions on the published marts."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from slw_testing import clear_of_midnight

pytestmark = pytest.mark.e2e


@pytest.fixture
def pipeline(demo_run):
    """The session's demo run (tests/e2e/conftest.py)."""
    return demo_run.settings, demo_run.airflow_home, demo_run.timings


def _rows(path, sql, params=None):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_all_dags_ran_through_airflow(pipeline):
    _, airflow_home, timings = pipeline
    assert {"survey_ingest", "platform_metrics", "warehouse_build"} <= set(timings)
    # The runs are recorded in Airflow's own metadata DB, as for any real run.
    import sqlite3

    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        states = dict(
            meta.execute(
                "select dag_id, state from dag_run where dag_id in "
                "('survey_ingest', 'platform_metrics', 'warehouse_build')"
            ).fetchall()
        )
    assert states == {
        "survey_ingest": "success",
        "platform_metrics": "success",
        "warehouse_build": "success",
    }


_STAMP = r"\d\d:\d\d:\d\d"
_DURATION = r"(\d+m)?\d+\.\ds"
# Time enough for two runs of platform_metrics and warehouse_build on a slow, busy machine.
RERUN_SECONDS = 600


def test_progress_shows_each_dag_and_task_as_it_starts_and_ends_while_it_runs(pipeline, demo_run):
    import sqlite3

    _, airflow_home, timings = pipeline
    returned_at = demo_run.progress[-1][0]
    lines = [line for _, line in demo_run.progress[:-1]]
    assert all(re.match(_STAMP + " ", line) for line in lines), lines
    assert lines[0].endswith("starting Airflow: metadata DB migration, warehouse pool, DAG parsing")
    dags = ["survey_ingest", "platform_metrics", "warehouse_build", "weekly_report"]
    bounds = []
    for dag_id in dags:
        start = lines.index(next(line for line in lines if line.endswith(f"DAG {dag_id}: started")))
        end = next(i for i, line in enumerate(lines) if f"DAG {dag_id}: success in" in line)
        assert re.search(f"DAG {dag_id}: success in {_DURATION}$", lines[end])
        bounds.append((dag_id, start, end))
    # The DAGs one after the other, in the order they ran.
    assert [start for _, start, _ in bounds] == sorted(start for _, start, _ in bounds)
    assert all(e < s for (_, _, e), (_, s, _) in itertools.pairwise(bounds))

    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        for dag_id, start, end in bounds:
            instances = meta.execute(
                "select task_id, map_index, state from task_instance where run_id = "
                "(select run_id from dag_run where dag_id = ? order by id limit 1) "
                "and dag_id = ?",
                (dag_id, dag_id),
            ).fetchall()
            assert instances
            block = lines[start + 1 : end]
            for task_id, map_index, state in instances:
                label = f"{dag_id}.{task_id}" + (f"[{map_index}]" if map_index >= 0 else "")
                started = [i for i, line in enumerate(block) if line.endswith(f"{label}: started")]
                if not started:
                    # Never run (a short-circuit's downstream, a platform without connection).
                    assert any(line.endswith(f"{label}: {state} (not run)") for line in block), (
                        label,
                        block,
                    )
                    continue
                ended = [
                    i
                    for i, line in enumerate(block)
                    if re.search(f"{re.escape(label)}: {state} in {_DURATION}$", line)
                ]
                assert len(started) == 1, (label, block)
                assert len(ended) == 1, (label, block)
                assert started[0] < ended[0]

    # Live, not a dump at the end: each DAG's last line arrived while the later DAGs ran.
    for i, (dag_id, _, end) in enumerate(bounds[:-1]):
        later = sum(timings[later_dag] for later_dag, _, _ in bounds[i + 1 :])
        assert returned_at - demo_run.progress[end][0] >= 0.9 * later, dag_id
    # The long steps say what they do, under their task, when they begin.
    steps = {
        "survey_ingest.ingest_surveys": "ingest_surveys: loading the survey files",
        "platform_metrics.import_history": "import_history: seeding the demo's synthetic",
        "warehouse_build.source_freshness": "source_freshness: dbt source freshness",
        "warehouse_build.publish": "publish: publishing the marts",
        "warehouse_build.dbt_build": "dbt_build: dbt build --full-refresh of every model",
        "warehouse_build.quality_gate": "quality_gate: quality gate: validating the marts",
    }
    for label, text in steps.items():
        first = lines.index(next(line for line in lines if line.endswith(f"{label}: started")))
        said = next(i for i, line in enumerate(lines) if text in line)
        done = next(i for i, line in enumerate(lines) if f"{label}: success in" in line)
        assert first < said < done, (label, lines[first : done + 1])
        if label in {"warehouse_build.dbt_build", "warehouse_build.quality_gate"}:
            # Said as the step began, not with the task's end line (the first task of the
            # process spends seconds in Airflow before its function starts: not these).
            minutes, seconds = re.search(r"in (?:(\d+)m)?([\d.]+)s$", lines[done]).groups()
            took = 60 * int(minutes or 0) + float(seconds)
            assert demo_run.progress[done][0] - demo_run.progress[said][0] >= 0.5 * took, label


def test_executive_reach_mart_holds_todays_sandbox_counts(pipeline):
    settings, _, _ = pipeline
    from social_leadership.demo.synthetic import synthetic_metrics

    today = datetime.now(UTC).date()
    rows = _rows(
        settings.serving_path,
        """
        select followers, following, posts, country_code, sector, is_observed
        from marts.fct_executive_reach_daily
        where executive_id = (
            select executive_id from marts.fct_executive_reach_daily
            where platform = 'x' and account_handle ilike 'elonmusk' limit 1
        ) and platform = 'x' and metric_date = ?
        """,
        [today],
    )
    followers, following, posts = synthetic_metrics("x", "elonmusk", today)
    assert rows == [(followers, following, posts, "US", "Consumer Discretionary", True)]
    total = _rows(settings.serving_path, "select count(*) from marts.fct_executive_reach_daily")
    assert total[0][0] > 200


def test_the_demo_switch_brings_the_synthetic_microdata_and_history(pipeline):
    # slw run turns SLW_DEMO on for the Airflow process (off by default and when deployed).
    settings, _, _ = pipeline
    demo_survey = _rows(
        settings.serving_path,
        "select count(*), bool_and(is_synthetic) from marts.fct_survey_results "
        "where survey_source_id = 'synthetic_trust_demo'",
    )
    assert demo_survey[0][0] > 0
    assert demo_survey[0][1] is True
    history = _rows(
        settings.warehouse_path,
        "select count(distinct snapshot_date) from raw.imported_metrics",
    )
    assert history[0][0] == 730


def test_country_sector_mart_covers_roster_groups(pipeline):
    settings, _, _ = pipeline
    rows = _rows(
        settings.serving_path,
        """
        select country_code, platform, sum(executives_tracked), sum(executives_active)
        from marts.fct_reach_by_country_sector_daily
        where metric_date = (select max(metric_date) from marts.fct_reach_by_country_sector_daily)
        group by all
        """,
    )
    by_key = {(c, p): (tracked, active) for c, p, tracked, active in rows}
    # Per platform only: the cross-platform rollup has its own mart.
    assert {"bluesky", "x"} <= {p for _, p in by_key}
    assert "all" not in {p for _, p in by_key}
    assert len({c for c, _ in by_key}) >= 10
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        # Tracked counts each executive once, in the country of the version valid that day.
        roster_us = con.execute(
            "select count(*) from marts.dim_executive where is_current and country_code = 'US'"
        ).fetchone()[0]
        tracked_us, active_us = con.execute(
            """
            select sum(executives_tracked), sum(executives_active)
            from marts.fct_reach_by_country_sector_all_platforms_daily
            where country_code = 'US' and metric_date = (
                select max(metric_date) from marts.fct_reach_by_country_sector_all_platforms_daily
            )
            """
        ).fetchone()
    assert tracked_us == roster_us
    assert 0 < active_us <= tracked_us


def test_germany_shows_its_own_expectations_from_the_bundled_survey(pipeline):
    # The founding brief's figures (Edelman 2019, bundled published_ceo_expectations.csv):
    # Germany's own 76% want CEOs to take a clear stand, 71% a top-management matter; no
    # global figure of another question stands in.
    settings, _, _ = pipeline
    year = datetime.now(UTC).year
    comparison = _rows(
        settings.warehouse_path,
        "select expectation_question_id, expectation_share_pct, is_country_expectation, "
        "expectation_wave, is_synthetic_expectation "
        "from marts.fct_country_comparison_yearly where country_code = 'DE' and calendar_year = ?",
        [year],
    )
    assert comparison == [("ceo_clear_stand", 76.0, True, 2019, False)]
    expectations = _rows(
        settings.warehouse_path,
        "select question_id, expectation_share_pct, is_country_figure, wave, survey_source_id, "
        "ci_lower_pct, ci_upper_pct, is_synthetic "
        "from marts.fct_country_expectations_yearly "
        "where country_code = 'DE' and calendar_year = ? order by question_id",
        [year],
    )
    assert expectations == [
        # Real beats synthetic: the demo's German 2024 microdata asks lead change too.
        ("ceo_clear_stand", 76.0, True, 2019, "edelman_tb", 73.1, 78.9, False),
        ("ceo_lead_change", 74.0, False, 2020, "edelman_tb", 73.4, 74.6, False),
        ("ceo_top_management_matter", 71.0, True, 2019, "edelman_tb", 68.1, 73.9, False),
    ]


def test_synthetic_demo_data_is_labelled_from_raw_to_marts(pipeline):
    settings, _, _ = pipeline
    # The sandbox invents every count, the real executives' too: raw says so per row, and
    # the demo history import is recorded synthetic.
    raw = _rows(
        settings.warehouse_path,
        "select count(*), bool_and(is_synthetic) from raw.platform_metrics where source = 'api'",
    )
    assert raw[0][0] > 0
    assert raw[0][1] is True
    imports = _rows(
        settings.warehouse_path, "select count(*), bool_and(is_synthetic) from raw.history_imports"
    )
    assert imports == [(1, True)]
    real_executives = _rows(
        settings.warehouse_path,
        "select count(distinct executive_id) from marts.dim_executive where not is_synthetic",
    )
    assert real_executives[0][0] >= 1
    facts = _rows(
        settings.warehouse_path,
        """
        select
            (select bool_and(is_synthetic) from marts.fct_executive_reach_daily),
            -- Every count is invented, so a platform row with an active executive has a
            -- synthetic one (a real executive without an account there is not).
            (select min(synthetic_executives_pct) from marts.fct_reach_by_country_sector_daily
                where executives_active > 0) > 0,
            -- Every tracked executive is a demo one or shown with sandbox counts.
            (select min(synthetic_executives_pct)
                from marts.fct_reach_by_country_sector_all_platforms_daily),
            (select min(synthetic_executives_pct) from marts.fct_country_comparison_yearly)
        """,
    )
    assert facts == [(True, True, 100.0, 100.0)]


def test_quality_gate_and_publication_recorded(pipeline):
    settings, _, _ = pipeline
    failed = _rows(
        settings.warehouse_path,
        "select count(*) from audit.quality_results where not success and is_critical",
    )
    assert failed[0][0] == 0
    published = _rows(settings.warehouse_path, "select count(*) from audit.publications")
    assert published[0][0] >= 1
    fact_files = settings.serving_parquet_dir / "current" / "fct_executive_reach_daily"
    assert list(fact_files.glob("fct_executive_reach_daily-*.parquet"))


@pytest.mark.changes_demo_run
def test_rerun_replaces_the_day_and_gives_the_same_marts(pipeline):
    settings, airflow_home, _ = pipeline
    from social_leadership.demo.run import run_pipeline

    dags = ("platform_metrics", "warehouse_build")
    query = """
        select count(*), sum(followers), count(distinct metric_date)
        from marts.fct_executive_reach_daily
    """
    clear_of_midnight(RERUN_SECONDS)
    (last_day,) = _rows(
        settings.warehouse_path, "select max(snapshot_date) from raw.platform_metrics"
    )
    if last_day[0] != datetime.now(UTC).date():
        # The demo run was made before midnight (UTC): a run today adds today, which a
        # second run must then replace.
        run_pipeline(settings, airflow_home, dags=dags, echo=False)
    before = _rows(settings.serving_path, query)
    raw_before = _rows(settings.warehouse_path, "select count(*) from raw.platform_metrics")
    run_pipeline(settings, airflow_home, dags=dags, echo=False)
    assert _rows(settings.serving_path, query) == before
    assert _rows(settings.warehouse_path, "select count(*) from raw.platform_metrics") == (
        raw_before
    )


@pytest.mark.changes_demo_run
def test_backfill_run_does_not_label_todays_counts_with_a_past_date(pipeline):
    settings, airflow_home, _ = pipeline
    from social_leadership.demo.run import run_pipeline

    past = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    shown: list[str] = []
    run_pipeline(
        settings,
        airflow_home,
        dags=("platform_metrics",),
        logical_date=past.isoformat(),
        echo=False,
        progress=shown.append,
    )
    # Nothing loaded, so the short circuit skipped the warehouse's signal: named, not run.
    assert any(
        re.search(_STAMP + r"   platform_metrics\.signal_warehouse: skipped \(not run\)$", line)
        for line in shown
    ), shown
    assert not [line for line in shown if "signal_warehouse: started" in line]
    audit = _rows(
        settings.warehouse_path,
        "select distinct status from audit.platform_loads where snapshot_date = ?",
        [past.date()],
    )
    assert audit == [("skipped_backfill",)]
    labelled = _rows(
        settings.warehouse_path,
        "select count(*) from raw.platform_metrics where snapshot_date = ? and source = 'api'",
        [past.date()],
    )
    assert labelled[0][0] == 0


def test_summary_reports_loads_checks_top_reach_comparison_and_paths(pipeline):
    settings, _, _ = pipeline
    from social_leadership.summary import build_summary

    text = build_summary(settings)
    assert "Platform loads" in text
    assert "Quality checks (last run):" in text
    assert "0 failed" in text
    assert "Top executives by reach per country" in text
    # Which publication the serving marts are, and how old: a build failed since leaves
    # them as they were.
    (number, through) = _rows(
        settings.serving_path,
        "select max(publication_id), (select max(metric_date) "
        "from marts.fct_executive_reach_daily) from marts.publication",
    )[0]
    assert re.search(
        rf"Serving marts: .* rows \(publication {number} of \d{{4}}-\d\d-\d\d \d\d:\d\d UTC, "
        rf"data through {through}\)",
        text,
    )
    assert "Elon Musk" in text
    assert "Country comparison" in text
    assert "SYNTHETIC DEMO DATA" in text
    for path in (settings.warehouse_path, settings.serving_path, settings.logs_dir):
        assert str(path) in text


def test_weekly_report_ran_through_airflow_on_the_serving_copy(pipeline):
    import sqlite3

    from pypdf import PdfReader

    from social_leadership.demo.run import report_lines

    settings, airflow_home, timings = pipeline
    assert "weekly_report" in timings
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        (state,) = meta.execute(
            "select state from dag_run where dag_id = 'weekly_report'"
        ).fetchone()
    assert state == "success"
    # This week's report, where `make run` says it is, with the demo's data in it.
    lines = report_lines(settings).splitlines()
    html = Path(lines[1].split()[-1])
    pdf = Path(lines[2].split()[-1])
    assert html.parent == pdf.parent
    assert html.parent.parent == settings.reports_dir
    text = html.read_text(encoding="utf-8")
    assert "Does Germany lag the US?" in text
    assert "Synthetic data." in text
    first_page = PdfReader(pdf).pages[0].extract_text()
    assert "Does Germany lag the US?" in first_page
    assert "SYNTHETIC DATA" in first_page
