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
time, each read by a SQL query. Their expectations are about single rows, except the
table's row count, which is checked on the first slice (non-empty whenever the table is).
The results of the slices are merged into one result per expectation.

A daily build rewrites only its last days, so a gate validates, of each daily fact, only
the days the dbt builds since the last passing gate rebuilt (``audit.incremental_windows``,
read through :mod:`rebuilt_days`; the gate's cursor is ``audit.quality_cursor``); a fact no
build rebuilt since is not read. Everything is validated whole on the first gate, after a
build that rebuilt a fact whole (a full refresh), and once ``SLW_QUALITY_FULL_EVERY_DAYS``
days have passed since the last whole validation. Cheap invariants over the whole of each
daily fact are computed in SQL on every gate (:func:`_invariants`): key uniqueness and days
without a gap up to the latest day. Each result records the first day it validated
(``validated_from``; null: the whole table).

An expectation marked critical (``meta["critical"]``) blocks publication; the others are
recorded in ``audit.quality_results`` for the people watching the runs.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
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

from social_leadership.dbt_runner import newest_build_attempt
from social_leadership.formatting import counted
from social_leadership.rebuilt_days import INCREMENTAL_WINDOWS, rebuilt_since, recorded
from social_leadership.serving_contracts import read_contracts
from social_leadership.settings import Settings
from social_leadership.sql import qualified_name, quote_identifier, quote_literal
from social_leadership.warehouse import MARTS_SCHEMA, connect, transaction

log = logging.getLogger(__name__)

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
        # Critical, as survey intake refuses it: a share of no respondents was published
        # with an interval.
        _critical(gxe.ExpectColumnValuesToBeBetween(column="sample_size", min_value=1)),
        # The same shares in their own columns (null for an index).
        _percent("share_pct"),
        _percent("share_ci_lower_pct"),
        _percent("share_ci_upper_pct"),
        _critical(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="share_ci_upper_pct", column_B="share_ci_lower_pct", or_equal=True
            )
        ),
    ]


def _platform_coverage_daily() -> list[gxe.Expectation]:
    # An API that answered for nobody still shows as a row with accounts_ok 0 (one that
    # called every account of two or more not found failed its load, the day's earlier rows
    # kept); a row of no accounts asked would be a build error.
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
        # As fct_country_expectations_yearly's, whose figures it repeats.
        _critical(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="expectation_ci_upper_pct",
                column_B="expectation_ci_lower_pct",
                or_equal=True,
            )
        ),
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
    # First day of a daily fact validated; None: the whole table.
    validated_from: date | None = None

    def describe(self) -> str:
        column = f".{self.column_name}" if self.column_name else ""
        extra = f" ({self.unexpected_count} unexpected)" if self.unexpected_count else ""
        example = self.example_row()
        if example:
            extra += "; e.g. " + ", ".join(f"{name}={value}" for name, value in example.items())
        if note := self.note():
            extra += f": {note}"
        return f"{self.table_name}{column}: {self.expectation}{extra}"

    def details_dict(self) -> dict[str, Any]:
        """The details as a JSON object (empty when they are none or not one)."""
        try:
            details = json.loads(self.details or "{}")
        except ValueError:
            return {}
        return details if isinstance(details, dict) else {}

    def note(self) -> str | None:
        """What the gate says of the check beyond GX's result (the details' ``note``)."""
        return self.details_dict().get("note")

    def example_row(self) -> dict[str, Any] | None:
        """The first unexpected row the details name (its key and value), or None."""
        examples = self.details_dict().get("example_rows")
        return examples[0] if examples else None


class QualityGateError(RuntimeError):
    """A critical expectation failed: the marts must not be published."""

    def __init__(self, run_id: str, failures: Sequence[QualityCheck]) -> None:
        self.run_id = run_id
        self.failures = tuple(failures)
        listing = "\n".join(f"  - {check.describe()}" for check in failures)
        # Its first line whole: an alert and the console quote the first line, which ended
        # in a bare colon.
        first = failures[0].describe() if failures else "none named"
        super().__init__(
            f"{counted(len(failures), 'critical quality check')} failed for run {run_id}, "
            f"the first: {first}\n{listing}"
        )


@dataclass(frozen=True)
class QualityReport:
    run_id: str
    results: list[QualityCheck] = field(default_factory=list)
    # What was validated of each daily fact ("whole table: <why>", "from <day>", ...).
    validated: dict[str, str] = field(default_factory=dict)

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


def _mart_columns(con: Any) -> dict[str, set[str]]:
    """Each mart's columns, in one query."""
    columns: dict[str, set[str]] = {}
    for table, column in con.execute(
        "select table_name, column_name from information_schema.columns where table_schema = ?",
        [MARTS_SCHEMA],
    ).fetchall():
        columns.setdefault(table, set()).add(column)
    return columns


def _missing_columns_check(table: str, missing: list[str]) -> QualityCheck:
    # Read by the suite, a missing column crashed the gate (DuckDB's error, retried) or
    # failed a range check with no word of why; not read, the mart was published without it.
    return _invariant(
        table,
        "expect_table_columns_to_match_the_dbt_contract",
        ",".join(missing),
        len(missing),
        {
            "missing_columns": missing,
            "reason": f"{MARTS_SCHEMA}.{table} lacks columns its dbt model documents "
            "(dbt_project/models/marts/_marts__models.yml): rebuild it (slw rebuild --full)",
        },
        critical=True,
    )


def _slice_filters(
    con: Any, table: str, column: str, max_rows: int, since: date | None = None
) -> list[str]:
    """SQL conditions cutting ``table`` (its days from ``since`` when given) into runs of
    whole days of at most ``max_rows`` rows (a day larger than that is a slice of its own);
    one condition for the whole of a small table or window, and one for rows without a
    day, which the not-null check must still see.

    Bounds are half-open and each slice ends where the next begins, so no row can fall
    between two slices (not even a day of ``infinity``, which Python cannot represent).
    """
    relation = qualified_name(MARTS_SCHEMA, table)
    quoted = quote_identifier(column)
    window = "true" if since is None else f"{quoted} >= cast({quote_literal(str(since))} as date)"
    days = con.execute(
        f"select cast({quoted} as varchar), count(*) from {relation} "
        f"where {quoted} is not null and {window} group by {quoted} order by {quoted}"
    ).fetchall()
    undated = con.execute(f"select count(*) from {relation} where {quoted} is null").fetchone()
    if sum(rows for _, rows in days) + (undated[0] if undated else 0) <= max_rows:
        return [f"{window} or {quoted} is null"]
    starts: list[str] = []
    rows_in_slice = 0
    for day, rows in days:
        if not starts or rows_in_slice + rows > max_rows:
            starts.append(day)
            rows_in_slice = 0
        rows_in_slice += rows
    bounds = [f"cast({quote_literal(day)} as date)" for day in starts[1:]]
    first = f"{quoted} is not null and {window}"
    filters = [f"{first} and {quoted} < {bounds[0]}"] if bounds else [first]
    filters += [
        f"{quoted} >= {low} and {quoted} < {high}" for low, high in itertools.pairwise(bounds)
    ]
    filters += [f"{quoted} >= {bounds[-1]}"] if bounds else []
    if undated and undated[0]:
        filters.append(f"{quoted} is null")
    return filters


def _columns_read(suite: MartSuite, key: Sequence[str] = ()) -> list[str] | None:
    """The columns a daily fact's expectations read, with its day column: the frames hold
    only these (a slice of every column of the executive fact is several times larger).
    None (every column) for another table, or when an expectation's columns are not known
    (a row condition, another kind of expectation)."""
    if not suite.sliced_by or suite.prepare is not None:
        return None
    # The key names the rows an expectation finds unexpected (details' example_rows).
    names = {suite.sliced_by, *key}
    for expectation in suite.expectations():
        if getattr(expectation, "row_condition", None):
            return None
        if expectation.expectation_type in TABLE_EXPECTATIONS:
            continue
        found = [
            value
            for attribute in ("column", "column_A", "column_B")
            if isinstance(value := getattr(expectation, attribute, None), str)
        ]
        if not found:
            return None
        names.update(found)
    return sorted(names)


def _frames(
    con: Any,
    suite: MartSuite,
    max_rows: int,
    since: date | None = None,
    key: Sequence[str] = (),
) -> Iterator[pd.DataFrame]:
    """The table as one frame, or a daily fact (its days from ``since`` when given, and
    its rows without a day) as frames of whole days, each read by its own query, holding
    the columns its expectations read and ``key``."""
    relation = qualified_name(MARTS_SCHEMA, suite.table)
    read = _columns_read(suite, key)
    columns = "*" if read is None else ", ".join(quote_identifier(name) for name in read)
    column = suite.sliced_by
    filters = _slice_filters(con, suite.table, column, max_rows, since) if column else ["true"]
    scope = "true"
    if column and since is not None:
        quoted = quote_identifier(column)
        scope = f"{quoted} >= cast({quote_literal(str(since))} as date) or {quoted} is null"
    total = con.execute(f"select count(*) from {relation} where {scope}").fetchone()
    seen = 0
    for condition in filters:
        frame = con.sql(f"select {columns} from {relation} where {condition}").df()
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


EXAMPLE_ROWS = 5


def _details(result: dict[str, Any], exception_info: Any) -> str | None:
    info: dict[str, Any] = {}
    for key in ("observed_value", "unexpected_percent", "partial_unexpected_list"):
        if result.get(key) is not None:
            info[key] = result[key]
    # Which rows: each unexpected value with its row's primary key.
    if examples := result.get("partial_unexpected_index_list"):
        info["example_rows"] = [
            {name: _plain(value) for name, value in row.items()} for row in examples[:EXAMPLE_ROWS]
        ]
    if message := _exception_message(exception_info):
        info["exception"] = message
    if not info:
        return None
    return json.dumps(info, default=str)[:DETAILS_MAX_CHARS]


def _plain(value: Any) -> Any:
    """A value of a pandas frame as JSON holds it (numpy numbers, NaN as None, a day as
    ``YYYY-MM-DD``: DuckDB's dates reach pandas as midnight timestamps)."""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat() if value == value.normalize() else value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and value != value else value


def _exception_message(exception_info: Any) -> str | None:
    """GX's error, whether its exception info is flat or (GX 1.x) keyed by metric."""
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return exception_info.get("exception_message")
    for nested in exception_info.values():
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return nested.get("exception_message")
    return None


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
    context: Any,
    suite: MartSuite,
    frames: Iterator[pd.DataFrame],
    run_name: str | None = None,
    since: date | None = None,
    key: Sequence[str] = (),
) -> list[QualityCheck]:
    """Validate ``suite.table`` frame by frame; the table expectations run on the first only.

    ``run_name`` (the Airflow run id) names the results, as the Data Docs show them; the
    columns of ``key`` name each unexpected row in the details (example_rows)."""
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
            naming = [column for column in key if column in frame.columns]
            outcome = runner.run(
                batch_parameters={"dataframe": suite.prepare(frame) if suite.prepare else frame},
                result_format=(
                    {"result_format": "SUMMARY", "unexpected_index_column_names": naming}
                    if naming
                    else "SUMMARY"
                ),
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
                validated_from=since,
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


_RESULT_COLUMNS = (
    "run_id, suite_name, table_name, expectation, column_name, is_critical, success, "
    "unexpected_count, details, checked_at, validated_from, build_attempt"
)


def _record(
    settings: Settings,
    run_id: str,
    checks: Sequence[QualityCheck],
    checked_at: datetime,
    cursor: _Cursor | None,
    fingerprints: Sequence[_Fingerprints] = (),
    build_attempt: int | None = None,
) -> None:
    """Record the results, move the cursor to ``cursor`` (None: leave it, so the next gate
    validates these days again), and store the key fingerprints of the facts whose key was
    proved unique. ``build_attempt`` is the number of the dbt build try whose marts were
    checked (None: none recorded)."""
    with connect(settings.warehouse_path) as con, transaction(con):
        # A retried task must not leave two verdicts for one run.
        con.execute("delete from audit.quality_results where run_id = ?", [run_id])
        con.executemany(
            f"insert into audit.quality_results ({_RESULT_COLUMNS}) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    check.validated_from,
                    build_attempt,
                )
                for check in checks
            ],
        )
        # A rerun of the run (an Airflow retry) replaces its place too.
        con.execute("delete from audit.quality_cursor where run_id = ?", [run_id])
        if cursor is not None:
            con.execute(
                "insert into audit.quality_cursor values (?, ?, ?, ?)",
                [run_id, cursor.windows_recorded_until, cursor.full_validated_at, checked_at],
            )
        for stored in fingerprints:
            days = sorted(stored.days)
            con.execute("delete from audit.key_fingerprints where table_name = ?", [stored.table])
            con.execute(
                "insert into audit.key_fingerprints select ?, unnest(?::date[]), "
                "unnest(?::bigint[]), unnest(?::varchar[]), ?",
                [
                    stored.table,
                    days,
                    [stored.days[d][0] for d in days],
                    [stored.days[d][1] for d in days],
                    run_id,
                ],
            )


@dataclass(frozen=True)
class _Cursor:
    """``audit.quality_cursor``: the newest build record a passing gate covered, and when
    the daily facts were last validated whole."""

    windows_recorded_until: datetime | None
    full_validated_at: datetime | None
    checked_at: datetime | None = None


@dataclass(frozen=True)
class _Scope:
    """What this gate validates of each daily fact: a first day, None (the whole table) or
    absent (not rebuilt since the last passing gate: not read); and why, per table."""

    since: dict[str, date | None]
    described: dict[str, str]
    cursor: _Cursor


def _audit_tables(con: Any) -> frozenset[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'audit'"
    ).fetchall()
    return frozenset(row[0] for row in rows)


def _read_cursor(con: Any, audit: frozenset[str], run_id: str) -> _Cursor | None:
    """Where the last gate of another run left the cursor: a rerun of this run validates
    what its first attempt did."""
    if "quality_cursor" not in audit:
        return None
    row = con.execute(
        "select windows_recorded_until, full_validated_at, checked_at from audit.quality_cursor "
        "where run_id <> ? order by checked_at desc limit 1",
        [run_id],
    ).fetchone()
    return _Cursor(*row) if row else None


def _full_refresh_since(con: Any, audit: frozenset[str], since: datetime | None) -> bool:
    if "dbt_builds" not in audit or since is None:
        return False
    row = con.execute(
        "select count(*) from audit.dbt_builds where full_refresh and finished_at > ?", [since]
    ).fetchone()
    return bool(row and row[0])


def _scope(
    con: Any, settings: Settings, run_id: str, daily: Sequence[str], checked_at: datetime
) -> _Scope:
    """Which days of each daily fact this gate validates (see the module's docstring)."""
    audit = _audit_tables(con)
    previous = _read_cursor(con, audit, run_id)
    models, until = (
        recorded(con, INCREMENTAL_WINDOWS)
        if "incremental_windows" in audit
        else (frozenset(), None)
    )
    whole_because = None
    if previous is None:
        whole_because = "first gate"
    elif (
        settings.quality_full_every_days == 0
        or previous.full_validated_at is None
        or (checked_at.date() - previous.full_validated_at.astimezone(UTC).date()).days
        >= settings.quality_full_every_days
    ):
        whole_because = f"full validation every {settings.quality_full_every_days} days"
    elif _full_refresh_since(con, audit, previous.checked_at):
        whole_because = "full-refresh build since the last gate"
    if whole_because is not None:
        return _Scope(
            since=dict.fromkeys(daily),
            described={table: f"whole table: {whole_because}" for table in daily},
            cursor=_Cursor(until, checked_at),
        )
    assert previous is not None
    rebuilt = rebuilt_since(con, INCREMENTAL_WINDOWS, previous.windows_recorded_until, until)
    since: dict[str, date | None] = {}
    described = {}
    for table in daily:
        if table not in models:
            since[table], described[table] = None, "whole table: no rebuilt days recorded"
        elif table not in rebuilt:
            described[table] = "not rebuilt since the last gate"
        elif rebuilt[table].whole:
            since[table], described[table] = None, "whole table: rebuilt whole by dbt"
        else:
            since[table] = rebuilt[table].first_day
            described[table] = f"from {since[table]}: the days rebuilt since the last gate"
    return _Scope(since, described, _Cursor(until, previous.full_validated_at))


# Per daily fact with a key: its days' fingerprints now and as the last passing gate stored
# them (see _invariants), read once per gate.
_Prints = dict[str, tuple[dict[Any, tuple[int, str]], dict[Any, tuple[int, str]]]]


def _fingerprints(con: Any, daily: dict[str, MartSuite], contracts: dict[str, Any]) -> _Prints:
    prints = {}
    for table, suite in daily.items():
        key = contracts[table].primary_key if table in contracts else ()
        if not key:
            continue
        day = quote_identifier(suite.sliced_by or "metric_date")
        columns = ", ".join(quote_identifier(column) for column in key)
        relation = qualified_name(MARTS_SCHEMA, table)
        prints[table] = (
            _key_fingerprints(con, relation, day, columns),
            _stored_fingerprints(con, table),
        )
    return prints


def _changed_days(current: dict[Any, Any], stored: dict[Any, Any]) -> list[Any]:
    return sorted(d for d in current.keys() | stored.keys() if current.get(d) != stored.get(d))


def _widen_to_changed_days(scope: _Scope, prints: _Prints) -> None:
    """Validate from the first day whose key fingerprint differs from the one stored by the
    last passing gate, when that is earlier than the days dbt rebuilt: a row added or
    removed outside the builds (by hand, a restore) went unvalidated, and the publish, which
    copies a table whole when its rows differ, served it. A value changed in place keeps
    the fingerprint: the weekly whole validation is for that."""
    for table, (current, stored) in prints.items():
        if not stored or (table in scope.since and scope.since[table] is None):
            continue  # nothing to compare with, or validated whole
        changed = _changed_days(current, stored)
        first = changed[0] if changed else None
        if first is None or (scope.since.get(table) or first) < first:
            continue
        if table in scope.since and scope.since[table] == first:
            continue
        scope.since[table] = first
        scope.described[table] = (
            f"from {first}: days whose rows changed since the last passing gate"
        )


def _invariant(
    table: str,
    expectation: str,
    column: str | None,
    unexpected: int,
    details: dict[str, Any],
    *,
    critical: bool,
) -> QualityCheck:
    return QualityCheck(
        table_name=table,
        suite_name=f"{MARTS_SCHEMA}.{table}",
        expectation=expectation,
        column_name=column,
        is_critical=critical,
        success=unexpected == 0,
        unexpected_count=unexpected,
        details=json.dumps(details, default=str)[:DETAILS_MAX_CHARS],
    )


@dataclass(frozen=True)
class _Fingerprints:
    """Per day of one daily fact: its row count and the sum of its key's hashes."""

    table: str
    days: dict[Any, tuple[int, str]]


def _key_fingerprints(
    con: Any, relation: str, day: str, columns: str
) -> dict[Any, tuple[int, str]]:
    rows = con.execute(
        f"select {day}, count(*), cast(sum(hash({columns})) as varchar) from {relation} "
        f"where {day} is not null group by {day}"
    ).fetchall()
    return {row[0]: (int(row[1]), str(row[2])) for row in rows}


def _stored_fingerprints(con: Any, table: str) -> dict[Any, tuple[int, str]]:
    if "key_fingerprints" not in _audit_tables(con):
        return {}
    rows = con.execute(
        "select day, row_count, key_sum from audit.key_fingerprints where table_name = ?",
        [table],
    ).fetchall()
    return {row[0]: (int(row[1]), str(row[2])) for row in rows}


def _invariants(
    con: Any,
    settings: Settings,
    daily: dict[str, MartSuite],
    whole: frozenset[str],
    contracts: dict[str, Any],
    prints: _Prints,
    today: date,
    validated: dict[str, date | None],
) -> tuple[list[QualityCheck], list[_Fingerprints]]:
    """Whole-table checks of the daily facts computed in SQL (no rows leave DuckDB): the
    primary key of the dbt contract is unique (critical: the serving copy declares it), and
    every day from the first to the latest day of any daily fact has rows (a gap or a fact
    behind the others is a warning: a long outage of every platform can leave one).

    The key is proved unique over the whole table without grouping all of it: every day's
    fingerprint (row count, sum of the key's hashes; one scan, a row per day) is compared
    with the one stored when a gate last proved the key unique, and the key is checked
    exactly on the days whose fingerprint differs (rebuilt by dbt or changed by anyone
    else), and on rows without a day; an unchanged day still holds the keys found unique
    then (a change that keeps both the count and the 64-bit hash sum is as likely as a hash
    collision). Tables in
    ``whole`` (a whole validation) and tables without stored fingerprints are checked
    exactly everywhere. Also over the whole table: no day after ``today`` (UTC; counts
    cannot come from the future, and gap fill would carry every account up to such a day)
    and no observed count without followers (the raw contract: followers are null unless
    the account answered ok). Returns the checks and the fingerprints to store once the key
    passed."""
    checks = []
    fingerprints = []
    ends: dict[str, tuple[Any, Any, int, int | None, int | None]] = {}
    for table, suite in daily.items():
        relation = qualified_name(MARTS_SCHEMA, table)
        day = quote_identifier(suite.sliced_by or "metric_date")
        row = con.execute(
            f"select min(d), max(d), count(*), min(n), max(n) from (select {day} as d, "
            f"count(*) as n from {relation} where isfinite({day}) group by {day})"
        ).fetchone()
        ends[table] = row
        key = contracts[table].primary_key if table in contracts else ()
        if not key:
            log.warning("%s: no primary key in the dbt manifest, uniqueness not checked", table)
            continue
        columns = ", ".join(quote_identifier(column) for column in key)
        current, stored = prints[table]
        stored = {} if table in whole else stored
        changed = None if not stored else _changed_days(current, stored)
        relation = (
            relation
            if changed is None
            else f"(select * from {relation} where {day} in (select unnest(?::date[])) "
            f"or {day} is null)"
        )
        parameters = [] if changed is None else [changed]
        # Distinct hashes of the key are counted (one 64-bit column, about twice as fast as
        # grouping by the key's columns): as many as rows proves the key unique; fewer
        # (duplicates, or a collision) is settled by grouping by the key itself.
        hashed = con.execute(
            f"select count(*) - count(distinct hash({columns})) from {relation}", parameters
        ).fetchone()
        duplicated = (0, 0)
        if hashed and hashed[0]:
            duplicated = con.execute(
                f"select count(*), sum(n - 1) from (select count(*) as n from {relation} "
                f"group by {columns} having count(*) > 1)",
                parameters,
            ).fetchone()
        details: dict[str, Any] = {
            "primary_key": list(key),
            "duplicated_keys": duplicated[0],
            "days_checked_exactly": "all" if changed is None else len(changed),
        }
        if duplicated[0]:
            details["partial_unexpected_list"] = [
                list(sample)
                for sample in con.execute(
                    f"select {columns} from {relation} group by {columns} "
                    "having count(*) > 1 order by all limit 5",
                    parameters,
                ).fetchall()
            ]
            # The first is quoted by the gate's error and alert: the key held twice.
            details["example_rows"] = [
                dict(zip(key, sample, strict=True)) for sample in details["partial_unexpected_list"]
            ]
        else:
            fingerprints.append(_Fingerprints(table, current))
        checks.append(
            _invariant(
                table,
                "expect_primary_key_to_be_unique",
                ",".join(key),
                int(duplicated[1] or 0),
                details,
                critical=True,
            )
        )
    for table, (_, last, *_counts) in ends.items():
        column = daily[table].sliced_by or "metric_date"
        ahead = []
        if last is not None and last > today:
            ahead = con.execute(
                f"select {quote_identifier(column)}, count(*) from "
                f"{qualified_name(MARTS_SCHEMA, table)} where {quote_identifier(column)} > ? "
                "group by 1 order by 1",
                [today],
            ).fetchall()
        checks.append(
            _invariant(
                table,
                "expect_no_day_after_today",
                column,
                sum(rows for _, rows in ahead),
                {"today_utc": today, "partial_unexpected_list": [day for day, _ in ahead[:5]]},
                critical=True,
            )
        )
    if "fct_executive_reach_daily" in daily:
        checks.extend(_observed_counts(con, validated))
        checks.append(_frozen_platforms(con, validated))
    latest = max((row[1] for row in ends.values() if row[1] is not None), default=None)
    for table, (first, last, days, fewest, most) in ends.items():
        if first is None or latest is None:
            continue  # An empty table fails its row-count expectation.
        column = daily[table].sliced_by or "metric_date"
        expected = (latest - first).days + 1
        missing = []
        if days != expected:
            missing = con.execute(
                "select cast(d as date) from range(cast(? as date), cast(? as date) + 1, "
                f"interval 1 day) as t (d) anti join (select distinct {quote_identifier(column)} "
                f"as day from {qualified_name(MARTS_SCHEMA, table)}) on d = day "
                "order by d limit 5",
                [first, latest],
            ).fetchall()
        checks.append(
            _invariant(
                table,
                "expect_every_day_to_have_rows_up_to_the_latest_day",
                column,
                expected - days,
                {
                    "first_day": first,
                    "last_day": last,
                    "latest_day_of_daily_facts": latest,
                    "days_with_rows": days,
                    "rows_per_day": [fewest, most],
                    "partial_unexpected_list": [row[0] for row in missing],
                },
                critical=False,
            )
        )
    return checks, fingerprints


# A day's followers this many times the day before's, or as small a fraction of it, from
# an account of at least JUMP_FLOOR followers on either day, is a count to look at: a
# figure typed with digits too many or too few (4,538,286,000 for 4,538,286), or a real
# change such as the roster correcting an executive's account, which no rule can tell apart.
JUMP_FACTOR = 100
JUMP_FLOOR = 10_000
JUMP_EXPECTATION = "expect_followers_within_100_times_the_day_before"
_EXAMPLE_KEY = ("executive_id", "platform", "metric_date")


def _validated_days(table: str, validated: dict[str, date | None]) -> tuple[str, str]:
    """SQL keeping the days of ``table`` this gate validates, and how its details say them
    (``days_checked``): none when it was not rebuilt since the last gate, all, or from a day."""
    if table not in validated:
        return "false", "none: not rebuilt since the last gate"
    if validated[table] is None:
        return "true", "all"
    return f"metric_date >= date '{validated[table]}'", f"from {validated[table]}"


def _observed_counts(con: Any, validated: dict[str, date | None]) -> list[QualityCheck]:
    """The executive fact's counts, in one scan. No observed count lacks its followers (the
    raw contract has them null only for accounts that did not answer ok; critical, over
    the whole table). No observed count is :data:`JUMP_FACTOR` times the day before's or
    that fraction of it (the day before's is ``followers - followers_change_1d``, carried or
    observed): a warning, on the days this gate validates (``validated``, as the GX
    expectations), so a real jump is said when its day is validated (and again by each
    whole validation), not on every gate after it; the newest first."""
    table = "fct_executive_reach_daily"
    relation = qualified_name(MARTS_SCHEMA, table)
    # In 128 bits: 100 times a count near 2^63 overflowed and crashed the gate.
    followers = "cast(followers as hugeint)"
    before = f"({followers} - followers_change_1d)"
    days, checked = _validated_days(table, validated)
    rules = {
        "expect_observed_counts_to_have_followers": ("is_observed and followers is null", True),
        JUMP_EXPECTATION: (
            f"{days} and is_observed and followers_change_1d is not null "
            f"and greatest({followers}, {before}) >= {JUMP_FLOOR} "
            f"and ({followers} >= {JUMP_FACTOR} * {before} "
            f"or {JUMP_FACTOR} * {followers} <= {before})",
            False,
        ),
    }
    counts = con.execute(
        "select "
        + ", ".join(f"count(*) filter (where {rule})" for rule, _ in rules.values())
        + f" from {relation}"
    ).fetchone()
    # The newest first: the one quoted is the day that just came, not a jump of years ago
    # said again by a whole validation.
    order = "metric_date desc, executive_id, platform"
    checks = []
    for (expectation, (rule, critical)), unexpected in zip(rules.items(), counts, strict=True):
        examples = []
        if unexpected:
            examples = [
                dict(zip((*_EXAMPLE_KEY, "followers", "followers_day_before"), row, strict=True))
                for row in con.execute(
                    f"select {', '.join(_EXAMPLE_KEY)}, followers, {before} from {relation} "
                    f"where {rule} order by {order} limit 5"
                ).fetchall()
            ]
        details: dict[str, Any] = {
            "partial_unexpected_list": [
                [row[column] for column in _EXAMPLE_KEY] for row in examples
            ],
            # The first is quoted by the gate's error and alert.
            "example_rows": [
                {name: value for name, value in row.items() if value is not None}
                for row in examples
            ],
        }
        if expectation == JUMP_EXPECTATION:
            details["days_checked"] = checked
        checks.append(
            _invariant(table, expectation, "followers", int(unexpected), details, critical=critical)
        )
    return checks


# A platform's day on which every one of at least this many accounts observed has exactly
# the day before's followers: a frozen cache or a stub answering yesterday's counts, not
# a day of executives' audiences (a warning: a quiet day of small accounts can be one).
FROZEN_MIN_ACCOUNTS = 10
FROZEN_EXPECTATION = "expect_a_platform_s_followers_to_change_from_the_day_before"


def _frozen_platforms(con: Any, validated: dict[str, date | None]) -> QualityCheck:
    """The platform days, on the days this gate validates (as :func:`_observed_counts`),
    whose every account observed from the API (:data:`FROZEN_MIN_ACCOUNTS` or more) has
    the followers of the day before: fresh-looking data that says nothing new (the
    data-as-of date and every other check saw a good day). The newest first."""
    table = "fct_executive_reach_daily"
    days, _ = _validated_days(table, validated)
    frozen = con.execute(
        f"""
        select platform, metric_date, count(*) as accounts
        from {qualified_name(MARTS_SCHEMA, table)}
        where {days} and is_observed and followers_change_1d is not null
            -- Fetched, not imported: a tool's export carries a weekly figure over its days.
            and source <> 'import'
        group by platform, metric_date
        having count(*) >= {FROZEN_MIN_ACCOUNTS} and bool_and(followers_change_1d = 0)
        order by metric_date desc, platform
        """
    ).fetchall()
    examples = [
        {"platform": platform, "metric_date": day, "accounts": accounts}
        for platform, day, accounts in frozen[:5]
    ]
    details: dict[str, Any] = {
        "partial_unexpected_list": [[row["platform"], row["metric_date"]] for row in examples],
        "example_rows": examples,
    }
    return _invariant(table, FROZEN_EXPECTATION, "followers", len(frozen), details, critical=False)


# The marts of survey figures: an empty one is said to await survey_ingest before any
# survey was loaded, and to have lost the survey data after.
SURVEY_MARTS = frozenset({"fct_survey_results", "fct_country_expectations_yearly"})
# Of those, the marts empty until survey_ingest has loaded a file: a gate that found rows in
# one saw survey data. fct_country_expectations_yearly is not one: it holds a row per tracked
# country, year and question without any survey (has_figure false).
SURVEY_ROW_MARTS = frozenset({"fct_survey_results"})
_AWAITING_SURVEYS = (
    "no survey loaded yet (raw.survey_results and raw.survey_respondent_answers are empty): "
    "survey_ingest loads the bundled and landed survey files"
)


def _surveys_loaded(con: Any) -> bool:
    row = con.execute(
        "select exists (select 1 from raw.survey_results) "
        "or exists (select 1 from raw.survey_respondent_answers)"
    ).fetchone()
    return bool(row and row[0])


_SURVEYS_LOST = (
    "surveys were published before (a gate on {day} found rows in {marts}) and "
    "raw.survey_results and raw.survey_respondent_answers are now empty: the survey data "
    "were lost or removed; restore the warehouse, or land the survey files again for "
    "survey_ingest"
)


def _surveys_published_on(con: Any) -> date | None:
    """The last day a gate found survey rows (a mart of :data:`SURVEY_ROW_MARTS` holding
    rows: surveys were loaded once), or None. A passing row count of
    fct_country_expectations_yearly says nothing of surveys: counted, a deployment without
    any survey failed its second gate, its survey data said to be lost."""
    if "quality_results" not in _audit_tables(con):
        return None
    row = con.execute(
        "select max(cast(timezone('UTC', checked_at) as date)) from audit.quality_results "
        "where table_name in (select unnest(?::varchar[])) and expectation in "
        "(select unnest(?::varchar[])) and success",
        [sorted(SURVEY_ROW_MARTS), sorted(TABLE_EXPECTATIONS)],
    ).fetchone()
    return row[0] if row else None


def _surveys_lost(check: QualityCheck, published_on: date) -> QualityCheck:
    """A survey mart's failed row count once surveys were published: critical, saying the
    survey data are gone (a green run emptied the survey marts every reader had)."""
    if not _empty_survey_mart(check):
        return check
    marts = ", ".join(f"{MARTS_SCHEMA}.{table}" for table in sorted(SURVEY_ROW_MARTS))
    note = _SURVEYS_LOST.format(day=published_on, marts=marts)
    details = {**check.details_dict(), "note": note}
    return replace(check, details=json.dumps(details))


def _empty_survey_mart(check: QualityCheck) -> bool:
    return (
        not check.success
        and check.table_name in SURVEY_MARTS
        and check.expectation in TABLE_EXPECTATIONS
    )


def _awaiting_surveys(check: QualityCheck) -> QualityCheck:
    """A survey mart's failed row count, before any survey was loaded, as a warning saying
    so: a deployment whose platform data came first (its first platform_metrics before its
    first survey_ingest) failed its gate and published nothing, told only that the table
    was empty."""
    if not _empty_survey_mart(check):
        return check
    details = {**check.details_dict(), "note": _AWAITING_SURVEYS}
    return replace(check, is_critical=False, details=json.dumps(details))


def check_marts(
    settings: Settings, run_id: str, *, data_docs_dir: Path | None = None
) -> QualityReport:
    """Validate every mart (of the daily facts, the days rebuilt since the last passing
    gate, see the module's docstring), record each result in audit.quality_results, move
    the gate's cursor unless a critical check of a daily fact failed, and return the report.

    With ``data_docs_dir``, also render the suites and this run's validation results there
    as GX Data Docs (docs_site.py publishes them with the marts).

    The caller decides what a failure means; the publishing DAG's task calls
    :meth:`QualityReport.raise_if_critical` and fails without Airflow retries on its
    :class:`QualityGateError` (this module stays free of Airflow).
    """
    context = _ephemeral_context()
    checks: list[QualityCheck] = []
    suites = {suite.table: suite for suite in MART_SUITES}
    checked_at = datetime.now(tz=UTC)
    contracts = read_contracts(settings.dbt_target_dir / "manifest.json")
    with connect(settings.warehouse_path, read_only=True) as con:
        # The try whose marts these are (one active build at a time, never during a gate).
        newest = newest_build_attempt(con)
        present = set(_mart_tables(con))
        incomplete = {}
        columns = _mart_columns(con)
        for table in sorted(present):
            documented = contracts[table].column_descriptions if table in contracts else {}
            if missing := [c for c in documented if c not in columns.get(table, set())]:
                incomplete[table] = missing
                checks.append(_missing_columns_check(table, missing))
        daily = {
            t: s for t, s in suites.items() if s.sliced_by and t in present - incomplete.keys()
        }
        scope = _scope(con, settings, run_id, sorted(daily), checked_at)
        prints = _fingerprints(con, daily, contracts)
        _widen_to_changed_days(scope, prints)
        for table in sorted(present | set(suites)):
            if table not in present:
                checks.append(_missing_table_check(table))
                continue
            if table in incomplete:
                continue
            if table in daily and table not in scope.since:
                continue
            since = scope.since.get(table)
            # A mart added without a suite of its own must still hold rows.
            suite = suites.get(table, MartSuite(table))
            key = contracts[table].primary_key if table in contracts else ()
            frames = _frames(con, suite, settings.quality_slice_rows, since, key)
            checks.extend(
                _validate_table(context, suite, frames, run_name=run_id, since=since, key=key)
            )
        if not _surveys_loaded(con):
            # Never published: a deployment awaiting its first survey_ingest, a warning.
            # Published before: the survey data are gone, critical (a green run emptied the
            # survey marts every reader had).
            published_on = _surveys_published_on(con)
            checks = [
                _awaiting_surveys(check)
                if published_on is None
                else _surveys_lost(check, published_on)
                for check in checks
            ]
        invariants, fingerprints = _invariants(
            con,
            settings,
            daily,
            frozenset(t for t in daily if scope.since.get(t, 0) is None),
            contracts,
            prints,
            checked_at.date(),
            scope.since,
        )
        checks.extend(invariants)
    for table, described in scope.described.items():
        log.info("%s: validated %s", table, described)
    # The cursor only says which days of the daily facts were validated (the other marts
    # are validated whole every time): it stays put when one of them failed.
    failed_daily = {
        check.table_name
        for check in checks
        if check.table_name in daily and check.is_critical and not check.success
    }
    _record(
        settings,
        run_id,
        checks,
        checked_at,
        None if failed_daily else scope.cursor,
        # A fact that failed keeps the fingerprints of its last passing gate: stored now,
        # the days it failed on would read as unchanged and go unvalidated by the next.
        [printed for printed in fingerprints if printed.table not in failed_daily],
        None if newest is None else newest.number,
    )
    if data_docs_dir is not None:
        from social_leadership.docs_site import build_gx_data_docs

        build_gx_data_docs(context, data_docs_dir)
    return QualityReport(run_id=run_id, results=checks, validated=scope.described)
