"""The GX gate on marts built by a real dbt build (see conftest.py for the dataset)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from social_leadership.dbt_runner import DbtError, run_dbt
from social_leadership.quality import MART_SUITES, QualityGateError, check_marts
from social_leadership.serving_contracts import columns_tested_not_null
from social_leadership.settings import Settings

if TYPE_CHECKING:
    from conftest import BuiltWarehouse


def audit_rows(settings: Settings, run_id: str) -> list[tuple[str, str, bool, bool]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select table_name, expectation, is_critical, success from audit.quality_results "
            "where run_id = ? order by table_name, expectation, column_name",
            [run_id],
        ).fetchall()


# One executive's followers below zero on one day (2025-01-05, platform x among others).
NEGATIVE_ON_ONE_DAY = (
    "update marts.fct_executive_reach_daily set followers = -5 "
    "where executive_id = 'us_one' and metric_date = date '2025-01-05'"
)


def corrupt(settings: Settings, *statements: str) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for statement in statements:
            con.execute(statement)


def test_good_marts_pass_and_are_recorded(copied_built_warehouse: Settings) -> None:
    report = check_marts(copied_built_warehouse, "run-good")

    assert report.failed == []
    assert report.critical_failures == []
    report.raise_if_critical()
    assert len(report.passed) == len(report.results)
    # Each suite's expectations, three SQL invariants per daily fact (test_quality_windows)
    # and three of the executive fact's observed counts.
    daily = sum(1 for suite in MART_SUITES if suite.sliced_by)
    assert len(report.results) == sum(len(s.expectations()) for s in MART_SUITES) + 3 * daily + 3
    tables = {check.table_name for check in report.results}
    assert {
        "fct_executive_reach_daily",
        "fct_reach_by_country_sector_daily",
        "fct_survey_results",
        "dim_sector",
        "dim_country",
        "dim_executive",
        "dim_company",
        "dim_platform",
        "dim_date",
        "fct_country_comparison_yearly",
        "fct_country_expectations_yearly",
        "fct_reach_by_country_sector_all_platforms_daily",
        "fct_platform_coverage_daily",
    } <= tables
    assert len(audit_rows(copied_built_warehouse, "run-good")) == len(report.results)


def test_negative_followers_block_publication(copied_built_warehouse: Settings) -> None:
    corrupt(
        copied_built_warehouse,
        "update marts.fct_executive_reach_daily set followers = -5 "
        "where executive_id = 'us_one' and metric_date between date '2025-01-05' "
        "and date '2025-01-06'",
    )

    report = check_marts(copied_built_warehouse, "run-bad")

    critical = [
        (check.expectation, check.column_name, check.unexpected_count)
        for check in report.critical_failures
    ]
    assert critical == [("expect_column_values_to_be_between", "followers", 2)]
    with pytest.raises(QualityGateError, match=r"fct_executive_reach_daily\.followers") as raised:
        report.raise_if_critical()
    assert len(raised.value.failures) == 1
    # Its first line, which an alert quotes, is whole: it ended in a bare colon.
    first = str(raised.value).splitlines()[0]
    assert first.startswith("1 critical quality check failed for run run-bad, the first: ")
    assert "fct_executive_reach_daily.followers" in first

    recorded = audit_rows(copied_built_warehouse, "run-bad")
    assert len(recorded) == len(report.results)
    assert sum(1 for row in recorded if row[2] and not row[3]) == 1


def test_empty_survey_marts_before_any_survey_is_loaded_warn_saying_so(
    copied_built_warehouse: Settings,
) -> None:
    # A deployment whose first platform_metrics came before its first survey_ingest failed
    # its gate (two survey marts empty) and published nothing, told only "row count".
    survey_marts = ("fct_survey_results", "fct_country_expectations_yearly")
    corrupt(
        copied_built_warehouse,
        # No gate has seen a survey yet.
        "delete from audit.quality_results",
        "create table main.kept_surveys as select * from raw.survey_results",
        "delete from raw.survey_results",
        "delete from raw.survey_respondent_answers",
        *(f"delete from marts.{table}" for table in survey_marts),
    )

    report = check_marts(copied_built_warehouse, "run-no-surveys")

    assert report.critical_failures == []
    warned = [check for check in report.results if not check.success]
    assert sorted(check.table_name for check in warned) == sorted(survey_marts)
    for check in warned:
        assert "no survey loaded yet" in check.describe()
        assert "survey_ingest" in check.describe()

    # With a survey in raw, an empty survey mart is the build's fault: critical again.
    corrupt(copied_built_warehouse, "insert into raw.survey_results from main.kept_surveys")
    report = check_marts(copied_built_warehouse, "run-surveys-lost")
    assert sorted(check.table_name for check in report.critical_failures) == sorted(survey_marts)


def test_survey_marts_emptied_after_surveys_were_published_stop_publication(
    copied_built_warehouse: Settings,
) -> None:
    # Taken for a deployment awaiting its first survey, the loss only warned: a green run
    # emptied the survey marts every reader had.
    assert check_marts(copied_built_warehouse, "run-with-surveys").critical_failures == []
    survey_marts = ("fct_survey_results", "fct_country_expectations_yearly")
    corrupt(
        copied_built_warehouse,
        "delete from raw.survey_results",
        "delete from raw.survey_respondent_answers",
        *(f"delete from marts.{table}" for table in survey_marts),
    )

    report = check_marts(copied_built_warehouse, "run-surveys-gone")

    assert sorted(check.table_name for check in report.critical_failures) == sorted(survey_marts)
    for check in report.critical_failures:
        assert "surveys were published before" in check.describe()
        assert "no survey loaded yet" not in check.describe()
    with pytest.raises(QualityGateError, match="the survey data were lost or removed"):
        report.raise_if_critical()


def test_a_deployment_without_any_survey_passes_gate_after_gate(
    copied_built_warehouse: Settings,
) -> None:
    # Without any survey, fct_country_expectations_yearly holds a row per tracked country,
    # year and question (no figure): its passing row count was taken for survey rows seen,
    # and a platform-only deployment's second gate called its survey data lost and
    # published nothing again.
    corrupt(
        copied_built_warehouse,
        "delete from audit.quality_results",
        "delete from raw.survey_results",
        "delete from raw.survey_respondent_answers",
        "delete from marts.fct_survey_results",
        # As dbt builds the two without any survey.
        "update marts.fct_country_expectations_yearly set question_text = null, "
        "has_figure = false, expectation_share_pct = null, ci_lower_pct = null, "
        "ci_upper_pct = null, margin_of_error_pct = null, sample_size = null, "
        "is_country_figure = null, wave = null, survey_source_id = null, "
        "survey_source_name = null, citation = null, is_synthetic = null",
        "update marts.fct_country_comparison_yearly set expectation_share_pct = null, "
        "expectation_ci_lower_pct = null, expectation_ci_upper_pct = null, "
        "expectation_sample_size = null, is_country_expectation = null, "
        "expectation_wave = null, expectation_source_id = null, "
        "is_synthetic_expectation = null",
    )

    for run_id in ("run-platform-only-1", "run-platform-only-2"):
        report = check_marts(copied_built_warehouse, run_id)

        assert report.critical_failures == [], run_id
        assert [check.table_name for check in report.failed] == ["fct_survey_results"]
        assert "no survey loaded yet" in report.failed[0].describe()
        assert ("fct_country_expectations_yearly", "expect_table_row_count_to_be_between") in {
            (check.table_name, check.expectation) for check in report.passed
        }
        report.raise_if_critical()


def _one_count_changed(settings: Settings, followers: str, day_before: str) -> None:
    """us_two's count on day 5 (3,025 followers; 3,020 the day before) set to
    ``followers`` and its day before to ``day_before`` (SQL of the row's columns)."""
    corrupt(
        settings,
        "update marts.fct_executive_reach_daily set "
        f"followers_change_1d = ({followers}) - ({day_before}), followers = {followers} "
        "where executive_id = 'us_two' and metric_date = date '2025-01-06'",
    )


@pytest.mark.parametrize(
    ("followers", "day_before", "said"),
    [
        # Three digits too many: 3,025,000 the day after 3,020.
        ("followers * 1000", "followers - followers_change_1d", True),
        # Three too few: 20 the day after 2,000,000.
        ("20", "2000000", True),
        # A new account's wave, 120 to 15,000: said too (no rule tells it from a typo), and
        # published, as every warning.
        ("15000", "120", True),
        # Digits too many near the 64-bit limit: 100 times it overflowed, crashing the gate.
        ("100000000000000000", "3020", True),
        # Fifty times, from a large account: not said.
        ("followers * 50", "followers - followers_change_1d", False),
        # A hundred times from 20 followers: below the floor (a new account's first day).
        ("2000", "20", False),
    ],
    ids=["thousand_times", "a_thousandth", "new_account", "near_int64", "fifty_times", "small"],
)
def test_a_count_a_hundred_times_the_day_before_or_a_hundredth_is_said(
    copied_built_warehouse: Settings, followers: str, day_before: str, said: bool
) -> None:
    # The gate had minimums only: a typed 4,538,286,000 for 4,538,286 was published green,
    # with no word of it.
    _one_count_changed(copied_built_warehouse, followers, day_before)

    report = check_marts(copied_built_warehouse, "run-jump")

    assert report.critical_failures == []
    warned = [(c.table_name, c.expectation) for c in report.failed]
    if not said:
        assert warned == []
        return
    assert warned == [
        ("fct_executive_reach_daily", "expect_followers_within_100_times_the_day_before")
    ]
    described = report.failed[0].describe()
    assert "(1 unexpected); e.g. executive_id=us_two, platform=x, metric_date=2025-01-06" in (
        described
    )
    assert re.search(r"followers=\d+, followers_day_before=\d+", described)


@pytest.mark.parametrize("frozen", [True, False], ids=["every account", "all but one"])
def test_a_platform_day_of_every_account_at_the_day_before_s_followers_is_said(
    copied_built_warehouse: Settings, monkeypatch: pytest.MonkeyPatch, frozen: bool
) -> None:
    # A frozen cache (or a stub) answering yesterday's counts for every account: fresh by
    # its date, every check passed, nothing said anywhere.
    from social_leadership import quality

    monkeypatch.setattr(quality, "FROZEN_MIN_ACCOUNTS", 3)
    kept = "and executive_id <> 'us_one'" if not frozen else ""
    corrupt(
        copied_built_warehouse,
        "update marts.fct_executive_reach_daily set followers_change_1d = 0 "
        f"where platform = 'x' and metric_date = date '2025-02-04' and is_observed {kept}",
    )

    report = check_marts(copied_built_warehouse, "run-frozen")

    assert report.critical_failures == []
    warned = [(c.table_name, c.expectation) for c in report.failed]
    if not frozen:
        assert warned == []
        return
    assert warned == [
        ("fct_executive_reach_daily", "expect_a_platform_s_followers_to_change_from_the_day_before")
    ]
    assert "platform=x, metric_date=2025-02-04, accounts=4" in report.failed[0].describe()


def test_a_jump_is_said_by_the_gate_that_validates_its_day_not_by_every_gate_after(
    copied_built_warehouse: Settings,
) -> None:
    # Over the whole table on every gate, one real jump would have been said forever.
    _one_count_changed(
        copied_built_warehouse, "followers * 1000", "followers - followers_change_1d"
    )

    first = check_marts(copied_built_warehouse, "gate-jump")
    again = check_marts(copied_built_warehouse, "gate-after")

    assert [c.expectation for c in first.failed] == [
        "expect_followers_within_100_times_the_day_before"
    ]
    assert again.failed == []
    (jump,) = [
        c
        for c in again.results
        if c.expectation == "expect_followers_within_100_times_the_day_before"
    ]
    assert jump.details_dict()["days_checked"] == "none: not rebuilt since the last gate"


def test_a_duplicated_key_is_quoted_in_the_gate_s_error(copied_built_warehouse: Settings) -> None:
    # The alert said "(1 unexpected)" and no more: the key held twice was in the details only.
    corrupt(
        copied_built_warehouse,
        "insert into marts.fct_executive_reach_daily select * from "
        "marts.fct_executive_reach_daily where executive_id = 'fr_one' "
        "and metric_date = date '2025-01-03'",
    )

    report = check_marts(copied_built_warehouse, "run-twice-keyed")

    (failed,) = [
        c for c in report.critical_failures if c.expectation == "expect_primary_key_to_be_unique"
    ]
    assert "e.g. executive_id=fr_one, platform=x, metric_date=2025-01-03" in failed.describe()


def test_a_survey_share_of_no_respondents_stops_publication(
    copied_built_warehouse: Settings,
) -> None:
    # Survey intake refuses a sample size of 0; the gate only warned, and the share was
    # published with an interval.
    corrupt(copied_built_warehouse, "update marts.fct_survey_results set sample_size = 0")

    report = check_marts(copied_built_warehouse, "run-no-respondents")

    assert [(c.table_name, c.column_name) for c in report.critical_failures] == [
        ("fct_survey_results", "sample_size")
    ]


def test_more_active_than_tracked_is_critical(copied_built_warehouse: Settings) -> None:
    corrupt(
        copied_built_warehouse,
        "update marts.fct_reach_by_country_sector_daily "
        "set executives_active = executives_tracked + 1 where country_code = 'FR'",
    )

    report = check_marts(copied_built_warehouse, "run-pair")

    failed = {(check.table_name, check.expectation) for check in report.critical_failures}
    assert (
        "fct_reach_by_country_sector_daily",
        "expect_column_pair_values_a_to_be_greater_than_b",
    ) in failed


def test_non_critical_failure_is_recorded_but_does_not_block(
    copied_built_warehouse: Settings,
) -> None:
    corrupt(
        copied_built_warehouse,
        "update marts.fct_executive_reach_daily set posts = -1 where executive_id = 'fr_one'",
    )

    report = check_marts(copied_built_warehouse, "run-warn")

    assert [(c.column_name, c.is_critical) for c in report.failed] == [("posts", False)]
    report.raise_if_critical()


def test_rerun_replaces_rows_of_the_same_run(copied_built_warehouse: Settings) -> None:
    first = check_marts(copied_built_warehouse, "run-twice")
    check_marts(copied_built_warehouse, "run-twice")

    assert len(audit_rows(copied_built_warehouse, "run-twice")) == len(first.results)


def test_missing_mart_is_a_critical_failure(copied_built_warehouse: Settings) -> None:
    corrupt(copied_built_warehouse, "drop table marts.fct_survey_results")

    report = check_marts(copied_built_warehouse, "run-missing")

    assert [(c.table_name, c.expectation) for c in report.critical_failures] == [
        ("fct_survey_results", "expect_table_to_exist")
    ]


def test_suite_runs_on_the_shared_build(copied_built_warehouse: Settings) -> None:
    # On a copy: a passing gate moves its cursor (audit.quality_cursor), and a copy of the
    # shared warehouse made afterwards would validate only the days rebuilt since.
    report = check_marts(copied_built_warehouse, "run-shared")
    assert report.critical_failures == []


def test_an_executive_without_a_current_version_is_critical(
    copied_built_warehouse: Settings,
) -> None:
    # Closed without a successor: each row is consistent (is_current = valid_to is null),
    # only the executive as a whole is wrong.
    corrupt(
        copied_built_warehouse,
        "update marts.dim_executive set is_current = false, valid_to = date '2025-01-20' "
        "where executive_id = 'us_one'",
    )

    report = check_marts(copied_built_warehouse, "run-scd2")

    failed = [(c.table_name, c.column_name, c.unexpected_count) for c in report.critical_failures]
    assert failed == [("dim_executive", "current_versions_of_executive", 1)]


def test_percentage_outside_zero_to_hundred_in_country_comparison_is_critical(
    copied_built_warehouse: Settings,
) -> None:
    corrupt(
        copied_built_warehouse,
        "update marts.fct_country_comparison_yearly set active_share_pct = 150, "
        "synthetic_executives_pct = -1 where country_code = 'DE'",
    )

    report = check_marts(copied_built_warehouse, "run-share")

    assert sorted((c.table_name, c.column_name) for c in report.critical_failures) == [
        ("fct_country_comparison_yearly", "active_share_pct"),
        ("fct_country_comparison_yearly", "synthetic_executives_pct"),
    ]


def test_every_share_column_of_every_mart_is_a_checked_percentage_or_ratio(
    synthetic_built_warehouse: BuiltWarehouse,
) -> None:
    # Shares are named *_pct (0-100) or *_ratio (0-1), the same way in every mart, and GX
    # holds each to its range; no column is a share under another name.
    with duckdb.connect(
        str(synthetic_built_warehouse.settings.warehouse_path), read_only=True
    ) as con:
        columns = con.execute(
            "select table_name, column_name from duckdb_columns() where schema_name = 'marts'"
        ).fetchall()
    misnamed = [
        f"{table}.{column}"
        for table, column in columns
        if ("share" in column or "percent" in column or "ratio" in column)
        and not column.endswith(("_pct", "_ratio"))
    ]
    assert misnamed == []
    ranges = {
        (suite.table, expectation.column): (expectation.min_value, expectation.max_value)
        for suite in MART_SUITES
        for expectation in suite.expectations()
        if expectation.expectation_type == "expect_column_values_to_be_between"
    }
    # margin_of_error_pct is in percentage points (a half-width), not a share.
    shares = [
        (table, column)
        for table, column in columns
        if column.endswith("_pct") and column != "margin_of_error_pct"
    ]
    assert len(shares) >= 10
    unchecked = [
        f"{table}.{column}" for table, column in shares if ranges.get((table, column)) != (0, 100)
    ]
    assert unchecked == []


def _verdicts(report: object) -> list[tuple[str, str, str | None, bool, int | None]]:
    return sorted(
        (c.table_name, c.expectation, c.column_name, c.success, c.unexpected_count)
        for c in report.results  # type: ignore[attr-defined]
    )


def test_daily_facts_are_validated_in_bounded_slices_with_the_same_verdicts(
    copied_built_warehouse: Settings,
) -> None:
    from social_leadership.quality import _frames

    corrupt(
        copied_built_warehouse,
        # A bad row near the end, and a bad row without a day (which a slice must hold).
        "update marts.fct_executive_reach_daily set followers = -5 where metric_date = "
        "(select max(metric_date) from marts.fct_executive_reach_daily) "
        "and executive_id = 'us_one'",
        "insert into marts.fct_reach_by_country_sector_daily "
        "select * replace (null as metric_date, 150.0 as active_share_pct) "
        "from marts.fct_reach_by_country_sector_daily limit 1",
        # Missing counts, which GX leaves out of the unexpected share.
        "update marts.fct_executive_reach_daily set followers = null where executive_id = 'fr_one'",
        # A bad count on a day of its own, at the far end.
        "insert into marts.fct_executive_reach_daily select * replace "
        "(date '2099-12-31' as metric_date, -7 as followers) "
        "from marts.fct_executive_reach_daily where executive_id = 'us_one' limit 1",
    )
    whole = check_marts(copied_built_warehouse, "run-whole")
    sliced_settings = dataclasses.replace(copied_built_warehouse, quality_slice_rows=40)

    sliced = check_marts(sliced_settings, "run-sliced")

    assert _verdicts(sliced) == _verdicts(whole)
    failed = {(c.table_name, c.column_name, c.unexpected_count) for c in sliced.failed}
    assert ("fct_executive_reach_daily", "followers", 2) in failed
    assert ("fct_reach_by_country_sector_daily", "active_share_pct", 1) in failed
    # The recorded figures are the table's, not a slice's.
    for table, expectation, column, key in (
        (
            "fct_executive_reach_daily",
            "expect_column_values_to_be_between",
            "followers",
            "unexpected_percent",
        ),
        (
            "fct_executive_reach_daily",
            "expect_table_row_count_to_be_between",
            None,
            "observed_value",
        ),
    ):
        figures = [
            json.loads(c.details or "{}").get(key)
            for c in (whole, sliced)[0].results + (whole, sliced)[1].results
            if (c.table_name, c.expectation, c.column_name) == (table, expectation, column)
        ]
        assert len(figures) == 2
        assert figures[0] == pytest.approx(figures[1])
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        for suite in (suite for suite in MART_SUITES if suite.sliced_by):
            table = suite.table
            frames = list(_frames(con, suite, 40))
            total = con.execute(f"select count(*) from marts.{table}").fetchone()
            assert total is not None
            # At least as many slices as 40 rows need (the rollup has 3 groups a day).
            assert len(frames) >= max(3, -(-total[0] // 40))
            assert sum(len(frame) for frame in frames) == (total[0] if total else -1)
            assert max(len(frame) for frame in frames) <= 40


def test_slices_of_a_daily_fact_hold_only_the_columns_its_expectations_read(
    copied_built_warehouse: Settings,
) -> None:
    from social_leadership.quality import _frames

    suites = {suite.table: suite for suite in MART_SUITES}
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        [frame, *_] = _frames(con, suites["fct_executive_reach_daily"], 1_000_000)
        [whole] = _frames(con, suites["dim_executive"], 1_000_000)
        width = {
            table: count
            for table, count in con.execute(
                "select table_name, count(*) from information_schema.columns "
                "where table_schema = 'marts' group by table_name"
            ).fetchall()
        }
    # The day, and the counts the range checks read: not the 19 columns of the fact.
    assert set(frame.columns) == {"metric_date", "followers", "following", "posts"}
    assert width["fct_executive_reach_daily"] > len(frame.columns)
    # A table that is not sliced (here one with a prepared column) is read whole.
    assert len(whole.columns) == width["dim_executive"]


def test_no_sliced_table_needs_the_whole_table_at_once() -> None:
    sliced = [suite for suite in MART_SUITES if suite.sliced_by]
    assert {suite.table for suite in sliced} == {
        "fct_executive_reach_daily",
        "fct_reach_by_country_sector_daily",
        "fct_reach_by_country_sector_all_platforms_daily",
    }
    for suite in sliced:
        assert suite.prepare is None
        for expectation in suite.expectations():
            # A maximum or a tolerated share would need the whole table at once, and so
            # would uniqueness (dbt's anyway).
            if expectation.expectation_type == "expect_table_row_count_to_be_between":
                assert expectation.max_value is None
            assert getattr(expectation, "mostly", 1) == 1
            assert "unique" not in expectation.expectation_type


def test_there_is_one_suite_per_mart_and_every_mart_has_one(
    synthetic_built_warehouse: BuiltWarehouse,
) -> None:
    tables = [suite.table for suite in MART_SUITES]
    assert len(tables) == len(set(tables))
    with duckdb.connect(
        str(synthetic_built_warehouse.settings.warehouse_path), read_only=True
    ) as con:
        marts = {
            row[0]
            for row in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts'"
            ).fetchall()
        }
    assert set(tables) == marts


# Structure is dbt's: keys, relationships, accepted values (CONTRIBUTING.md, "The quality
# rule"). GX keeps business rules and distributions.
STRUCTURAL_EXPECTATIONS = {
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_values_to_be_in_set",
}


def test_gx_leaves_keys_relationships_and_accepted_values_to_dbt() -> None:
    structural = [
        f"{suite.table}: {expectation.expectation_type}"
        for suite in MART_SUITES
        for expectation in suite.expectations()
        if expectation.expectation_type in STRUCTURAL_EXPECTATIONS
    ]
    assert structural == []


@pytest.fixture(scope="module")
def manifest(synthetic_built_warehouse: BuiltWarehouse) -> dict[str, Any]:
    path = synthetic_built_warehouse.settings.dbt_target_dir / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _dbt_checks(manifest: dict[str, Any]) -> dict[str, list[tuple[str, set[str]]]]:
    """Per mart, each dbt data test as (test name, the columns it reads)."""
    checks: dict[str, list[tuple[str, set[str]]]] = {}
    for node in manifest["nodes"].values():
        metadata = node.get("test_metadata") or {}
        model = (node.get("attached_node") or "").rsplit(".", 1)[-1]
        if node["resource_type"] != "test" or not model.startswith(("dim_", "fct_")):
            continue
        kwargs = metadata.get("kwargs", {})
        if metadata.get("name") == "not_null_columns":
            # One test a model checks every column that must not be null: a not_null each.
            checks.setdefault(model, []).extend(
                ("not_null", {column}) for column in columns_tested_not_null(node)
            )
            continue
        columns = set(kwargs.get("combination_of_columns") or [])
        columns |= {node["column_name"]} if node.get("column_name") else set()
        columns |= set(re.findall(r"[a-z_]+", str(kwargs.get("expression", ""))))
        checks.setdefault(model, []).append((metadata.get("name", ""), columns))
    return checks


def test_no_check_is_made_by_both_dbt_and_gx(manifest: dict[str, Any]) -> None:
    dbt = _dbt_checks(manifest)
    twins = []
    for suite in MART_SUITES:
        for expectation in suite.expectations():
            config = expectation.configuration.kwargs
            gx_columns = {
                str(config[key]) for key in ("column", "column_A", "column_B") if key in config
            } | set(config.get("column_list") or [])
            if not gx_columns:
                continue  # the row count: no dbt test counts rows
            same_kind = {
                "expect_column_values_to_not_be_null": {"not_null"},
                "expect_column_values_to_be_unique": {"unique"},
                "expect_compound_columns_to_be_unique": {"unique_combination_of_columns"},
                "expect_column_values_to_be_in_set": {"accepted_values", "relationships"},
            }.get(expectation.expectation_type, {"expression_is_true"})
            twins += [
                f"{suite.table}: {expectation.expectation_type} {sorted(gx_columns)} = dbt {name}"
                for name, columns in dbt.get(suite.table, [])
                if name in same_kind and gx_columns <= columns
            ]
    assert twins == []


def test_dbt_catches_the_structural_faults_gx_no_longer_looks_for(
    copied_built_warehouse: Settings,
) -> None:
    corrupt(
        copied_built_warehouse,
        # A duplicate key of a daily fact.
        "insert into marts.fct_executive_reach_daily "
        "select * from marts.fct_executive_reach_daily where executive_id = 'de_one' limit 1",
        # A missing key column.
        "update marts.fct_survey_results set question_id = null "
        "where rowid = (select min(rowid) from marts.fct_survey_results)",
        # A flag that is neither true nor false.
        "update marts.fct_executive_reach_daily set is_observed = null "
        "where executive_id = 'fr_one'",
        # A platform nobody knows.
        "update marts.fct_reach_by_country_sector_daily set platform = 'myspace' "
        "where country_code = 'FR'",
        # Two current versions of one executive.
        "insert into marts.dim_executive select * replace ("
        "md5('extra') as executive_version_id, date '2020-01-01' as valid_from, "
        "2 as version_number) from marts.dim_executive where executive_id = 'us_one'",
    )

    with pytest.raises(DbtError) as failed:
        run_dbt(["test", "--select", "path:models/marts"], copied_built_warehouse)

    nodes = json.loads(
        (copied_built_warehouse.dbt_target_dir / "manifest.json").read_text(encoding="utf-8")
    )["nodes"]
    failing = {
        (
            nodes[unique_id]["test_metadata"]["name"],
            nodes[unique_id]["attached_node"].rsplit(".", 1)[-1],
            nodes[unique_id].get("column_name"),
        )
        for unique_id in failed.value.result.failing_nodes
    }
    assert {
        ("unique_combination_of_columns", "fct_executive_reach_daily", None),
        ("not_null_columns", "fct_survey_results", None),
        ("not_null_columns", "fct_executive_reach_daily", None),
        ("unique", "dim_executive", "executive_id"),
    } <= failing
    # A model's one not_null test names the columns holding nulls in its failing rows, and
    # counts the null values as its failures.
    results = json.loads(
        (copied_built_warehouse.dbt_target_dir / "run_results.json").read_text(encoding="utf-8")
    )["results"]
    nulls = {}
    with duckdb.connect(str(copied_built_warehouse.warehouse_path), read_only=True) as con:
        fr_one_rows = con.execute(
            "select count(*) from marts.fct_executive_reach_daily where executive_id = 'fr_one'"
        ).fetchone()[0]
        for result in results:
            node = nodes.get(result["unique_id"], {})
            if result["status"] == "fail" and columns_tested_not_null(node):
                model = node["attached_node"].rsplit(".", 1)[-1]
                rows = con.execute(result["compiled_code"]).fetchall()
                nulls[model] = (dict(rows), result["failures"])
    assert nulls["fct_survey_results"] == ({"question_id": 1}, 1)
    assert nulls["fct_executive_reach_daily"] == ({"is_observed": fr_one_rows}, fr_one_rows)
    assert any(
        (model, column) == ("fct_reach_by_country_sector_daily", "platform")
        for _, model, column in failing
    )


@pytest.mark.parametrize("max_rows", [1, 2, 3, 5, 100])
def test_slices_cover_every_row_once_even_days_python_cannot_hold(max_rows: int) -> None:
    from social_leadership.quality import _slice_filters

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_executive_reach_daily as select * from (values "
        "('-infinity'::date), ('2024-01-01'::date), ('2024-01-01'::date), ('2024-01-02'::date),"
        " ('2024-01-03'::date), (null), ('infinity'::date), ('infinity'::date)) as t(metric_date)"
    )

    filters = _slice_filters(con, "fct_executive_reach_daily", "metric_date", max_rows)
    counts = [
        con.execute(
            f"select count(*) from marts.fct_executive_reach_daily where {condition}"
        ).fetchone()[0]
        for condition in filters
    ]

    assert sum(counts) == 8
    assert max(counts) <= max(max_rows, 2)  # a day larger than the limit is one slice
    assert (len(filters) == 1) is (max_rows >= 8)


def test_a_failed_critical_check_fails_the_gate_task_without_airflow_retries(
    copied_built_warehouse: Settings,
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from social_leadership.tasks import quality_gate_task

    corrupt(
        copied_built_warehouse,
        NEGATIVE_ON_ONE_DAY,
    )

    # Airflow retries any other exception (DEFAULT_ARGS): the same marts would fail again.
    with pytest.raises(
        AirflowFailException, match=r"fct_executive_reach_daily\.followers"
    ) as raised:
        quality_gate_task({"run_id": "run-gate"})

    assert isinstance(raised.value.__cause__, QualityGateError)
    # It names this run's Data Docs: the published ones are the last good run's.
    docs = re.search(r"this run's GX Data Docs: (\S+)$", str(raised.value))
    assert docs is not None
    assert "pending" in docs[1]
    assert Path(docs[1]).is_file()
    recorded = audit_rows(copied_built_warehouse, "run-gate")
    assert [row[:2] for row in recorded if row[2] and not row[3]] == [
        ("fct_executive_reach_daily", "expect_column_values_to_be_between")
    ]


def test_a_gate_that_only_warned_says_the_marts_were_published_and_kept_out_no_row(
    copied_built_warehouse: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The alert said "rows kept out: 234" (missing days counted as rows) when all was published.
    from social_leadership import alerts
    from social_leadership.tasks import quality_gate_task

    reported = []
    monkeypatch.setattr(alerts, "report_attention", reported.extend)
    corrupt(
        copied_built_warehouse,
        "delete from marts.fct_reach_by_country_sector_daily where metric_date = date '2025-01-05'",
    )

    summary = quality_gate_task({"run_id": "run-gate-warned"})

    assert summary["failed"] > 0
    assert summary["critical_failures"] == 0
    (attention,) = reported
    assert attention.what.startswith("quality gate warned, the marts published all the same")
    assert attention.rows_kept_out == 0


def test_a_row_added_outside_the_rebuilt_days_is_validated_by_the_next_gate(
    copied_built_warehouse: Settings,
) -> None:
    # Not rebuilt by dbt, the day went unvalidated until the weekly whole validation, and
    # the publish (which copies a table whole when its rows differ) served the row.
    assert check_marts(copied_built_warehouse, "gate-1").critical_failures == []
    corrupt(
        copied_built_warehouse,
        "insert into marts.fct_executive_reach_daily select * replace "
        "('mastodon' as platform, -999 as followers) from marts.fct_executive_reach_daily "
        "where executive_id = 'us_one' and metric_date = date '2025-01-06' limit 1",
    )

    report = check_marts(copied_built_warehouse, "gate-2")

    assert report.validated["fct_executive_reach_daily"] == (
        "from 2025-01-06: days whose rows changed since the last passing gate"
    )
    assert [(c.table_name, c.column_name) for c in report.critical_failures] == [
        ("fct_executive_reach_daily", "followers")
    ]
    # Its retry, or the next day's gate, still finds it: the failed gate left the day's
    # fingerprint as the last passing gate stored it.
    again = check_marts(copied_built_warehouse, "gate-3")
    assert [(c.table_name, c.column_name) for c in again.critical_failures] == [
        ("fct_executive_reach_daily", "followers")
    ]


def test_a_failed_check_names_the_rows_it_found_by_their_key(
    copied_built_warehouse: Settings,
) -> None:
    # The details gave the values alone ([-5, -5, ...]): which executive, platform and day
    # took a query of one's own.
    corrupt(
        copied_built_warehouse,
        NEGATIVE_ON_ONE_DAY,
    )

    report = check_marts(copied_built_warehouse, "run-rows")

    (failed,) = report.critical_failures
    example = failed.example_row()
    assert example is not None
    assert (example["executive_id"], example["metric_date"], example["followers"]) == (
        "us_one",
        "2025-01-05",
        -5,
    )
    assert "e.g. followers=-5, executive_id=us_one, platform=x, metric_date=2025-01-05" in (
        failed.describe()
    )
    assert len(json.loads(failed.details)["example_rows"]) <= 5


def test_a_passing_gate_task_returns_its_counts(copied_built_warehouse: Settings) -> None:
    from social_leadership.tasks import quality_gate_task

    summary = quality_gate_task({"run_id": "run-gate-ok"})

    assert summary["failed"] == summary["critical_failures"] == 0
    assert summary["passed"] == len(audit_rows(copied_built_warehouse, "run-gate-ok"))


@pytest.mark.parametrize(
    ("statement", "expectation", "table"),
    [
        # Gap fill carried every account up to a day that has not come.
        (
            "insert into marts.fct_reach_by_country_sector_daily select * replace "
            "(current_date + 40 as metric_date) from marts.fct_reach_by_country_sector_daily "
            "limit 1",
            "expect_no_day_after_today",
            "fct_reach_by_country_sector_daily",
        ),
        # An observed count without followers: published, a sector's reach fell by 99.96%.
        (
            "update marts.fct_executive_reach_daily set followers = null "
            "where executive_id = 'us_one' and is_observed and metric_date = date '2025-01-06'",
            "expect_observed_counts_to_have_followers",
            "fct_executive_reach_daily",
        ),
        # Dropped columns: one no check reads (published without it), one a check reads
        # (the gate crashed on DuckDB's error, retried).
        (
            "alter table marts.fct_survey_results drop column sample_size",
            "expect_table_columns_to_match_the_dbt_contract",
            "fct_survey_results",
        ),
        (
            "alter table marts.fct_executive_reach_daily drop column posts",
            "expect_table_columns_to_match_the_dbt_contract",
            "fct_executive_reach_daily",
        ),
        # An interval upside down in the comparison table, which repeats the expectations'
        # figures: only the expectations' own table was checked for it.
        (
            "update marts.fct_country_comparison_yearly set expectation_ci_lower_pct = "
            "expectation_ci_upper_pct + 1 where expectation_ci_upper_pct < 99",
            "expect_column_pair_values_a_to_be_greater_than_b",
            "fct_country_comparison_yearly",
        ),
    ],
    ids=[
        "future_day",
        "observed_without_followers",
        "unread_column",
        "read_column",
        "comparison_interval_upside_down",
    ],
)
def test_what_bad_data_the_range_checks_miss_stops_publication(
    copied_built_warehouse: Settings, statement: str, expectation: str, table: str
) -> None:
    corrupt(copied_built_warehouse, statement)

    report = check_marts(copied_built_warehouse, "run-bad")

    failed = [(c.table_name, c.expectation) for c in report.critical_failures]
    assert failed == [(table, expectation)]
    with pytest.raises(QualityGateError, match=expectation):
        report.raise_if_critical()
