"""The Great Expectations gate between ``dbt build`` and publishing.

The quality rule: dbt tests own structure (keys unique and not null, relationships,
accepted values, the SCD2 intervals), and fail ``dbt build``; the GX suites here own the
business rules and distributions of the marts (value ranges, relations between measures,
non-empty tables, one live version per executive). No check is made in both places
(tests/include/test_quality.py holds the two to it). One :class:`MartSuite` per mart.

Each mart is read into pandas through a read-only DuckDB connection and validated with its
suite. GX's SQL datasource cannot be used: on DuckDB (duckdb-engine) every expectation
fails upstream with an IndexError in resolve_metric_bundle.

The daily facts grow by a day at a time without end (3 years of 2,000 executives on 5
platforms are 11 million rows, which took 13 GB to validate in one frame), so they are
validated in slices of whole days of at most ``SLW_QUALITY_SLICE_ROWS`` rows, one at a
time. Their expectations are about single rows, except the table's row count, which is
checked on the first slice (non-empty whenever the table is). The results of the slices
are merged into one result per expectation.

An expectation marked critical (``meta["critical"]``) blocks publication; the others are
recorded in ``audit.quality_results`` for the people watching the runs.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# GX documents GX_ANALYTICS_ENABLED as its telemetry switch. 1.24 ships no sender, but the
# variable (set before the import) and analytics_enabled=False in the context config keep a
# future release from phoning home from inside Airflow workers.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from social_leadership.settings import Settings
from social_leadership.sql import qualified_name, quote_identifier, quote_literal
from social_leadership.warehouse import MARTS_SCHEMA, connect, transaction

DETAILS_MAX_CHARS = 2000

ExpectationFactory = Callable[[], list[gxe.Expectation]]


def _critical(expectation: gxe.Expectation) -> gxe.Expectation:
    expectation.meta = {**(expectation.meta or {}), "critical": True}
    return expectation


def _warning(expectation: gxe.Expectation) -> gxe.Expectation:
    expectation.meta = {**(expectation.meta or {}), "critical": False}
    return expectation


def _non_empty() -> list[gxe.Expectation]:
    # A mart without its own rules still has to hold rows to be published.
    return [_critical(gxe.ExpectTableRowCountToBeBetween(min_value=1))]


def _executive_reach_daily() -> list[gxe.Expectation]:
    return [
        *_non_empty(),
        _critical(gxe.ExpectColumnValuesToBeBetween(column="followers", min_value=0)),
        _warning(gxe.ExpectColumnValuesToBeBetween(column="following", min_value=0)),
        _warning(gxe.ExpectColumnValuesToBeBetween(column="posts", min_value=0)),
    ]


def _percent(column: str) -> gxe.Expectation:
    # Every share in the marts is a percentage named *_pct, 0-100.
    return _critical(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=100))


def _active_executives() -> list[gxe.Expectation]:
    # The rules of every mart counting executives tracked, active and synthetic, and their
    # shares.
    return [
        _percent("active_share_pct"),
        _percent("synthetic_executives_pct"),
        _critical(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="executives_tracked", column_B="executives_active", or_equal=True
            )
        ),
    ]


def _reach_by_country_sector_daily() -> list[gxe.Expectation]:
    return [
        *_non_empty(),
        *_active_executives(),
        _critical(gxe.ExpectColumnValuesToBeBetween(column="executives_active", min_value=0)),
        _warning(gxe.ExpectColumnValuesToBeBetween(column="total_followers", min_value=0)),
    ]


def _survey_results() -> list[gxe.Expectation]:
    return [
        *_non_empty(),
        # Shares lie in 0-100; an index (measure "index") has no such bounds.
        _critical(
            gxe.ExpectColumnValuesToBeBetween(
                column="value",
                min_value=0,
                max_value=100,
                row_condition='measure == "share_pct"',
                condition_parser="pandas",
            )
        ),
        _warning(gxe.ExpectColumnValuesToBeBetween(column="sample_size", min_value=1)),
    ]


def _platform_coverage_daily() -> list[gxe.Expectation]:
    # An API that answered for nobody still shows as a row with accounts_ok 0 (warned in
    # the load's own audit); a row of no accounts asked would be a build error.
    return [
        _critical(gxe.ExpectColumnValuesToBeBetween(column="accounts_asked", min_value=1)),
        _warning(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="accounts_asked", column_B="accounts_ok", or_equal=True
            )
        ),
    ]


def _executive() -> list[gxe.Expectation]:
    return [
        *_non_empty(),
        # Every executive of the roster has a version in force today (dbt's key test says
        # there is at most one); the count is a column added by _with_current_version_count.
        _critical(
            gxe.ExpectColumnValuesToBeBetween(column="current_versions_of_executive", min_value=1)
        ),
    ]


def _country_comparison_yearly() -> list[gxe.Expectation]:
    return [
        *_non_empty(),
        *_active_executives(),
        _percent("expectation_share_pct"),
        _percent("expectation_ci_lower_pct"),
        _percent("expectation_ci_upper_pct"),
    ]


def _country_expectations_yearly() -> list[gxe.Expectation]:
    return [
        *_non_empty(),
        _percent("expectation_share_pct"),
        _percent("ci_lower_pct"),
        _percent("ci_upper_pct"),
        _critical(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ci_upper_pct", column_B="ci_lower_pct", or_equal=True
            )
        ),
    ]


def _with_current_version_count(frame: pd.DataFrame) -> pd.DataFrame:
    # GX has no per-group count expectation; the count of current versions per executive
    # becomes a column so "at least one" is an ordinary range check.
    if not {"executive_id", "is_current"} <= set(frame.columns):
        return frame
    current = frame["is_current"].fillna(False).astype(bool)
    counts = current.groupby(frame["executive_id"]).transform("sum")
    return frame.assign(current_versions_of_executive=counts.astype("int64"))


@dataclass(frozen=True)
class MartSuite:
    """The GX checks of one mart, and how its rows are read for them."""

    table: str
    # A fresh list on each call: a GX expectation belongs to one suite.
    expectations: ExpectationFactory = _non_empty
    # The day column of a daily fact, validated a slice of whole days at a time.
    sliced_by: str | None = None
    # Columns derived from the whole frame before validation (never for a sliced table).
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None

    @property
    def suite_name(self) -> str:
        return f"{MARTS_SCHEMA}.{self.table}"


MART_SUITES: tuple[MartSuite, ...] = (
    MartSuite("dim_company"),
    MartSuite("dim_country"),
    MartSuite("dim_date"),
    MartSuite("dim_executive", _executive, prepare=_with_current_version_count),
    MartSuite("dim_platform"),
    MartSuite("dim_sector"),
    MartSuite("fct_country_comparison_yearly", _country_comparison_yearly),
    MartSuite("fct_country_expectations_yearly", _country_expectations_yearly),
    MartSuite("fct_executive_reach_daily", _executive_reach_daily, sliced_by="metric_date"),
    # Small (platforms x days): validated whole.
    MartSuite("fct_platform_coverage_daily", _platform_coverage_daily),
    MartSuite(
        "fct_reach_by_country_sector_all_platforms_daily",
        _reach_by_country_sector_daily,
        sliced_by="metric_date",
    ),
    MartSuite(
        "fct_reach_by_country_sector_daily",
        _reach_by_country_sector_daily,
        sliced_by="metric_date",
    ),
    MartSuite("fct_survey_results", _survey_results),
)

# Expectations about the table rather than its rows: run on the first slice only, so they
# may only ask for a minimum number of rows.
TABLE_EXPECTATIONS = frozenset({"expect_table_row_count_to_be_between"})


@dataclass(frozen=True)
class QualityCheck:
    """One expectation's outcome on one mart table."""

    table_name: str
    suite_name: str
    expectation: str
    column_name: str | None
    is_critical: bool
    success: bool
    unexpected_count: int | None
    details: str | None

    def describe(self) -> str:
        column = f".{self.column_name}" if self.column_name else ""
        extra = f" ({self.unexpected_count} unexpected)" if self.unexpected_count else ""
        return f"{self.table_name}{column}: {self.expectation}{extra}"


class QualityGateError(RuntimeError):
    """A critical expectation failed: the marts must not be published."""

    def __init__(self, run_id: str, failures: Sequence[QualityCheck]) -> None:
        self.run_id = run_id
        self.failures = tuple(failures)
        listing = "\n".join(f"  - {check.describe()}" for check in failures)
        super().__init__(
            f"{len(failures)} critical quality check(s) failed for run {run_id}:\n{listing}"
        )


@dataclass(frozen=True)
class QualityReport:
    run_id: str
    results: list[QualityCheck] = field(default_factory=list)

    @property
    def passed(self) -> list[QualityCheck]:
        return [check for check in self.results if check.success]

    @property
    def failed(self) -> list[QualityCheck]:
        return [check for check in self.results if not check.success]

    @property
    def critical_failures(self) -> list[QualityCheck]:
        return [check for check in self.failed if check.is_critical]

    def raise_if_critical(self) -> None:
        if self.critical_failures:
            raise QualityGateError(self.run_id, self.critical_failures)


def _mart_tables(con: Any) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and table_type = 'BASE TABLE' order by table_name",
            [MARTS_SCHEMA],
        ).fetchall()
    ]


def _slice_filters(con: Any, table: str, column: str, max_rows: int) -> list[str]:
    """SQL conditions cutting ``table`` into runs of whole days of at most ``max_rows`` rows
    (a day larger than that is a slice of its own); one condition for the whole of a small
    table, and one for rows without a day, which the not-null check must still see.

    Bounds are half-open and each slice ends where the next begins, so no row can fall
    between two slices (not even a day of ``infinity``, which Python cannot represent).
    """
    relation = qualified_name(MARTS_SCHEMA, table)
    quoted = quote_identifier(column)
    days = con.execute(
        f"select cast({quoted} as varchar), count(*) from {relation} "
        f"where {quoted} is not null group by {quoted} order by {quoted}"
    ).fetchall()
    undated = con.execute(f"select count(*) from {relation} where {quoted} is null").fetchone()
    if sum(rows for _, rows in days) + (undated[0] if undated else 0) <= max_rows:
        return ["true"]
    starts: list[str] = []
    rows_in_slice = 0
    for day, rows in days:
        if not starts or rows_in_slice + rows > max_rows:
            starts.append(day)
            rows_in_slice = 0
        rows_in_slice += rows
    bounds = [f"cast({quote_literal(day)} as date)" for day in starts[1:]]
    filters = [f"{quoted} < {bounds[0]}"] if bounds else [f"{quoted} is not null"]
    filters += [
        f"{quoted} >= {low} and {quoted} < {high}" for low, high in itertools.pairwise(bounds)
    ]
    filters += [f"{quoted} >= {bounds[-1]}"] if bounds else []
    if undated and undated[0]:
        filters.append(f"{quoted} is null")
    return filters


def _frames(con: Any, suite: MartSuite, max_rows: int) -> Iterator[pd.DataFrame]:
    """The table as one frame, or a daily fact as frames of whole days, read one by one."""
    relation = qualified_name(MARTS_SCHEMA, suite.table)
    column = suite.sliced_by
    filters = _slice_filters(con, suite.table, column, max_rows) if column else ["true"]
    total = con.execute(f"select count(*) from {relation}").fetchone()
    seen = 0
    for condition in filters:
        frame = con.sql(f"select * from {relation} where {condition}").df()
        seen += len(frame)
        yield frame
    if total is None or seen != total[0]:
        raise RuntimeError(f"{relation}: slices held {seen} rows, the table {total}")


def _ephemeral_context() -> Any:
    config = DataContextConfig(
        analytics_enabled=False,
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _column_of(kwargs: dict[str, Any]) -> str | None:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ",".join(kwargs["column_list"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return None


def _details(result: dict[str, Any], exception_info: Any) -> str | None:
    info: dict[str, Any] = {}
    for key in ("observed_value", "unexpected_percent", "partial_unexpected_list"):
        if result.get(key) is not None:
            info[key] = result[key]
    if isinstance(exception_info, dict) and exception_info.get("raised_exception"):
        info["exception"] = exception_info.get("exception_message")
    if not info:
        return None
    return json.dumps(info, default=str)[:DETAILS_MAX_CHARS]


SLOT = "slice_merge_slot"  # meta key: an expectation's place in its suite


def _slotted(expectations: list[gxe.Expectation]) -> list[gxe.Expectation]:
    for slot, expectation in enumerate(expectations):
        expectation.meta = {**(expectation.meta or {}), SLOT: slot}
    return expectations


@dataclass
class _Merged:
    """One expectation's results over the slices of a table.

    Counts are summed and the unexpected share is recomputed over the rows GX counts
    (non-missing ones, where it reports missing rows); the sample of unexpected values and
    the exception are those of the first slice that failed (or of the first slice).
    """

    config: Any
    slices: int = 0
    success: bool = True
    unexpected_count: int | None = None
    element_count: int = 0
    missing_count: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    exception_info: Any = None

    def add(self, result: Any) -> None:
        summary = dict(result.result or {})
        first = not self.slices
        failed_now = not result.success and self.success
        self.slices += 1
        self.success = self.success and bool(result.success)
        if summary.get("unexpected_count") is not None:
            self.unexpected_count = (self.unexpected_count or 0) + int(summary["unexpected_count"])
        if summary.get("missing_count") is not None:
            self.missing_count = (self.missing_count or 0) + int(summary["missing_count"])
        self.element_count += int(summary.get("element_count") or 0)
        if first or failed_now:
            self.summary = summary
            self.exception_info = result.exception_info

    def details(self, table_rows: int) -> str | None:
        summary = dict(self.summary)
        if self.config.type in TABLE_EXPECTATIONS:
            summary["observed_value"] = table_rows
        elif self.slices > 1 and self.unexpected_count is not None:
            counted = self.element_count - (self.missing_count or 0)
            if counted:
                summary["unexpected_percent"] = 100.0 * self.unexpected_count / counted
        return _details(summary, self.exception_info)


def _validate_table(
    context: Any, suite: MartSuite, frames: Iterator[pd.DataFrame], run_name: str | None = None
) -> list[QualityCheck]:
    """Validate ``suite.table`` frame by frame; the table expectations run on the first only.

    ``run_name`` (the Airflow run id) names the results, as the Data Docs show them."""
    table, suite_name, expectations = suite.table, suite.suite_name, suite.expectations
    datasource = context.data_sources.add_pandas(name=f"{table}_source")
    asset = datasource.add_dataframe_asset(name=table)
    batch_definition = asset.add_batch_definition_whole_dataframe(name=f"{table}_whole")

    def validation(name: str, members: list[gxe.Expectation]) -> Any:
        added = context.suites.add(gx.ExpectationSuite(name=name, expectations=members))
        return context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}_validation", data=batch_definition, suite=added)
        )

    # A GX expectation belongs to one suite: each suite gets its own from the factory.
    whole = validation(suite_name, _slotted(expectations()))
    rows_only = None
    merged: dict[int, _Merged] = {}
    table_rows = 0
    try:
        for index, frame in enumerate(frames):
            if index == 0:
                runner = whole
            else:
                if rows_only is None:
                    rows_only = validation(
                        f"{suite_name}.rows",
                        [
                            e
                            for e in _slotted(expectations())
                            if e.expectation_type not in TABLE_EXPECTATIONS
                        ],
                    )
                runner = rows_only
            table_rows += len(frame)
            outcome = runner.run(
                batch_parameters={"dataframe": suite.prepare(frame) if suite.prepare else frame},
                result_format="SUMMARY",
                run_id=RunIdentifier(run_name=run_name) if run_name else None,
            )
            # GX keeps the last batch of a datasource: let each slice go before the next.
            del frame
            datasource.get_execution_engine().batch_manager.reset_batch_cache()
            for result in outcome.results:
                config = result.expectation_config
                slot = int((config.meta or {})[SLOT])
                merged.setdefault(slot, _Merged(config=config)).add(result)
    finally:
        context.data_sources.delete(datasource.name)

    checks = []
    for _, item in sorted(merged.items()):
        config = item.config
        meta = {k: v for k, v in (config.meta or {}).items() if k != SLOT}
        checks.append(
            QualityCheck(
                table_name=table,
                suite_name=suite_name,
                expectation=config.type,
                column_name=_column_of(dict(config.kwargs)),
                is_critical=bool(meta.get("critical", False)),
                success=item.success,
                unexpected_count=item.unexpected_count,
                details=item.details(table_rows),
            )
        )
    return checks


def _missing_table_check(table: str) -> QualityCheck:
    return QualityCheck(
        table_name=table,
        suite_name=f"{MARTS_SCHEMA}.{table}",
        expectation="expect_table_to_exist",
        column_name=None,
        is_critical=True,
        success=False,
        unexpected_count=None,
        details=json.dumps({"reason": f"{MARTS_SCHEMA}.{table} not found in the warehouse"}),
    )


def _record(settings: Settings, run_id: str, checks: Sequence[QualityCheck]) -> None:
    checked_at = datetime.now(tz=UTC)
    with connect(settings.warehouse_path) as con, transaction(con):
        # A retried task must not leave two verdicts for one run.
        con.execute("delete from audit.quality_results where run_id = ?", [run_id])
        con.executemany(
            "insert into audit.quality_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    check.suite_name,
                    check.table_name,
                    check.expectation,
                    check.column_name,
                    check.is_critical,
                    check.success,
                    check.unexpected_count,
                    check.details,
                    checked_at,
                )
                for check in checks
            ],
        )


def check_marts(
    settings: Settings, run_id: str, *, data_docs_dir: Path | None = None
) -> QualityReport:
    """Validate every mart, record each result in audit.quality_results, return the report.

    With ``data_docs_dir``, also render the suites and this run's validation results there
    as GX Data Docs (docs_site.py publishes them with the marts).

    The caller decides what a failure means; the publishing DAG's task calls
    :meth:`QualityReport.raise_if_critical` and fails without Airflow retries on its
    :class:`QualityGateError` (this module stays free of Airflow).
    """
    context = _ephemeral_context()
    checks: list[QualityCheck] = []
    suites = {suite.table: suite for suite in MART_SUITES}
    with connect(settings.warehouse_path, read_only=True) as con:
        present = set(_mart_tables(con))
        for table in sorted(present | set(suites)):
            if table not in present:
                checks.append(_missing_table_check(table))
                continue
            # A mart added without a suite of its own must still hold rows.
            suite = suites.get(table, MartSuite(table))
            frames = _frames(con, suite, settings.quality_slice_rows)
            checks.extend(_validate_table(context, suite, frames, run_name=run_id))
    _record(settings, run_id, checks)
    if data_docs_dir is not None:
        from social_leadership.docs_site import build_gx_data_docs

        build_gx_data_docs(context, data_docs_dir)
    return QualityReport(run_id=run_id, results=checks)
