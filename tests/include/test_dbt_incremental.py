"""Incremental daily builds against a full refresh, and an independent pandas reproduction.

A generated dataset (seeded, so every run is the same) arrives in three loads, each
followed by a real ``dbt build``, the way the warehouse_build DAG meets it:

* load 1 (days 0-49): random follower paths on x, bluesky and youtube with random missing
  days, a 10-day outage of one account (longer than the gap-fill window), rate-limited
  rows, and days observed twice (an earlier API row and a later import that must win);
  ``kaeser`` declares history (Siemens CEO, then Siemens Energy chairman from day 40).
* load 2 (days 50-59): late rows for days 45-48 of the account that was out; ``mover``
  changes company and country in the roster without declaring when (the snapshot detects
  it on the load day, day 55).
* load 3 (days 60-69): late rows for day 58; ``redeclared`` gets declared history
  (Gamma Foods in FR until day 20, Delta Retail in DE since), which re-attributes days
  long before the incremental window.

The incremental result must equal a ``--full-refresh`` of the same warehouse, and both
must equal what pandas computes from the raw rows and the versions the dataset declares.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import BUILD_WITHOUT_TESTS, settings_for_data_dir

from social_leadership.dbt_runner import run_dbt
from social_leadership.settings import Settings
from social_leadership.warehouse import connect, transaction

pytestmark = pytest.mark.dbt


DAY_ZERO = date(2025, 3, 1)
GAP_FILL_DAYS = 7
LOADS = ((0, 49), (50, 59), (60, 69))
PLATFORMS = ("x", "bluesky", "youtube")

# executive_id -> versions (first day or None for "before anything", attributes)
Version = tuple[int | None, str, str, str, str]
ROSTER_BEFORE_LOAD_2: dict[str, list[tuple[date | None, str, str, str, str]]] = {
    "kaeser": [
        (date(2013, 8, 1), "CEO", "Siemens", "DE", "Industrials"),
        (DAY_ZERO + timedelta(days=40), "Chairman", "Siemens Energy", "DE", "Energy"),
    ],
    "mover": [(None, "CEO", "Alpha Bank", "US", "Financials")],
    "redeclared": [(None, "CEO", "Gamma Foods", "FR", "Consumer Staples")],
    "steady_us": [(None, "CEO", "Steady Soft", "US", "Information Technology")],
    "steady_de": [(None, "CEO", "Stetig Werke", "DE", "Industrials")],
    "quiet_de": [(None, "CEO", "Leise Bau", "DE", "Industrials")],
}
MOVER_AFTER_LOAD_2 = [(None, "CEO", "Bravo Bank", "GB", "Financials")]
REDECLARED_AT_LOAD_3 = [
    (date(2020, 1, 1), "CEO", "Gamma Foods", "FR", "Consumer Staples"),
    (DAY_ZERO + timedelta(days=20), "CEO", "Delta Retail", "DE", "Consumer Staples"),
]

# What the facts must attribute, written independently of the SQL rules: day number the
# version starts (None: first version, also covering earlier days) and its attributes.
EXPECTED_VERSIONS: dict[str, list[Version]] = {
    "kaeser": [
        (None, "CEO", "Siemens", "DE", "Industrials"),
        (40, "Chairman", "Siemens Energy", "DE", "Energy"),
    ],
    "mover": [
        (None, "CEO", "Alpha Bank", "US", "Financials"),
        (55, "CEO", "Bravo Bank", "GB", "Financials"),
    ],
    "redeclared": [
        (None, "CEO", "Gamma Foods", "FR", "Consumer Staples"),
        (20, "CEO", "Delta Retail", "DE", "Consumer Staples"),
    ],
    "steady_us": [(None, "CEO", "Steady Soft", "US", "Information Technology")],
    "steady_de": [(None, "CEO", "Stetig Werke", "DE", "Industrials")],
    "quiet_de": [(None, "CEO", "Leise Bau", "DE", "Industrials")],
}

ACCOUNTS = [
    ("kaeser", "x", "joe_kaeser"),
    ("kaeser", "bluesky", "kaeser.bsky.social"),
    ("mover", "x", "mover_x"),
    ("mover", "youtube", "UC-mover"),
    ("redeclared", "x", "redeclared_x"),
    ("steady_us", "x", "steady_x"),
    ("steady_us", "bluesky", "steady.bsky.social"),
    ("steady_de", "youtube", "UC-stetig"),
]
OUTAGE_HANDLE = "steady_x"
OUTAGE_DAYS = range(36, 49)  # 13 days; days 45-48 arrive late with load 2
LATE_IN_LOAD_2 = range(45, 49)
LATE_IN_LOAD_3 = {"mover_x": 58, "UC-stetig": 58}

FACT_KEY = ["executive_id", "platform", "metric_date"]
DAY_ORDER_CHUNK_DAYS = 20
AGGREGATE_KEY = ["country_code", "sector", "platform", "metric_date"]


def day(number: int) -> date:
    return DAY_ZERO + timedelta(days=number)


def load_time(number: int) -> datetime:
    return datetime.combine(day(number), datetime.min.time(), tzinfo=UTC) + timedelta(hours=3)


def _metric_row(
    handle: str,
    platform: str,
    number: int,
    followers: int | None,
    *,
    status: str = "ok",
    hour: int = 6,
    source: str = "api",
    loaded: int,
) -> tuple[object, ...]:
    observed = datetime.combine(day(number), datetime.min.time(), tzinfo=UTC)
    return (
        platform,
        day(number),
        handle,
        f"id-{handle}",
        status,
        followers,
        None if followers is None else followers // 7,
        None if followers is None else number * 3,
        observed + timedelta(hours=hour),
        source,
        None,
        load_time(loaded),
        # Some days' counts synthetic, so the synthetic shares change from day to day.
        number % 5 == 0,
    )


def generate_metrics() -> dict[int, list[tuple[object, ...]]]:
    """Raw platform_metrics rows per load index (0, 1, 2), deterministic."""
    rng = np.random.default_rng(20250301)
    per_load: dict[int, list[tuple[object, ...]]] = {0: [], 1: [], 2: []}
    load_of_day = {n: i for i, (first, last) in enumerate(LOADS) for n in range(first, last + 1)}
    for _executive, platform, handle in ACCOUNTS:
        followers = int(rng.integers(1_000, 50_000))
        for number in range(LOADS[-1][1] + 1):
            followers += int(rng.integers(-40, 120))
            load = load_of_day[number]
            if handle == OUTAGE_HANDLE and number in OUTAGE_DAYS:
                if number in LATE_IN_LOAD_2:
                    per_load[1].append(_metric_row(handle, platform, number, followers, loaded=55))
                continue
            if LATE_IN_LOAD_3.get(handle) == number:
                per_load[2].append(_metric_row(handle, platform, number, followers, loaded=65))
                continue
            draw = rng.random()
            if draw < 0.12:
                continue  # a missed run
            if draw < 0.16:
                per_load[load].append(
                    _metric_row(
                        handle, platform, number, None, status="rate_limited", loaded=LOADS[load][1]
                    )
                )
                continue
            if draw < 0.22:
                # An early API row that the same day's later import overrides.
                per_load[load].append(
                    _metric_row(
                        handle, platform, number, followers - 500, hour=5, loaded=LOADS[load][1]
                    )
                )
                per_load[load].append(
                    _metric_row(
                        handle,
                        platform,
                        number,
                        followers,
                        hour=20,
                        source="import",
                        loaded=LOADS[load][1],
                    )
                )
                continue
            per_load[load].append(
                _metric_row(handle, platform, number, followers, loaded=LOADS[load][1])
            )
    return per_load


def _write_roster(
    con: duckdb.DuckDBPyConnection,
    roster: dict[str, list[tuple[date | None, str, str, str, str]]],
    loaded: int,
) -> None:
    con.execute("delete from raw.roster_executives")
    con.execute("delete from raw.roster_accounts")
    con.executemany(
        "insert into raw.roster_executives values (?, ?, ?, ?, ?, ?, ?, ?, 'gen.csv', ?)",
        [
            (
                executive,
                executive.title(),
                title,
                company,
                country,
                sector,
                # Demo and real executives side by side, so both kinds of synthetic count.
                is_demo_executive(executive),
                valid_from,
                load_time(loaded),
            )
            for executive, versions in roster.items()
            for valid_from, title, company, country, sector in versions
        ],
    )
    con.executemany(
        "insert into raw.roster_accounts values (?, ?, ?, ?)",
        [(*account, load_time(loaded)) for account in ACCOUNTS],
    )


def apply_load(
    warehouse_path: Path, index: int, metrics: dict[int, list[tuple[object, ...]]]
) -> None:
    roster = dict(ROSTER_BEFORE_LOAD_2)
    if index >= 1:
        roster["mover"] = MOVER_AFTER_LOAD_2
    if index >= 2:
        roster["redeclared"] = REDECLARED_AT_LOAD_3
    loaded = LOADS[index][1] if index == 0 else LOADS[index][0] + 5
    with connect(warehouse_path) as con, transaction(con):
        _write_roster(con, roster, loaded)
        con.executemany(
            "insert into raw.platform_metrics values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            metrics[index],
        )


@dataclass(frozen=True)
class Builds:
    incremental: Settings
    full_refresh: Settings
    compiled_fact_sql: str


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    metrics = generate_metrics()
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = settings_for_data_dir(monkeypatch, tmp_path_factory.mktemp("incremental"))
        for index in range(len(LOADS)):
            apply_load(settings.warehouse_path, index, metrics)
            # Data tests run once, on the final incremental state; skipping them on the
            # earlier loads keeps this module fast.
            checks = (
                [] if index == len(LOADS) - 1 else ["--exclude-resource-type", "test", "unit_test"]
            )
            run_dbt(["build", *checks], settings, log_path=settings.logs_dir / f"build_{index}.log")
        compiled = (
            settings.dbt_target_dir
            / "compiled/social_leadership/models/marts/fct_executive_reach_daily.sql"
        ).read_text(encoding="utf-8")
        full = settings_for_data_dir(monkeypatch, tmp_path_factory.mktemp("full_refresh"))
        full.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(settings.warehouse_path, full.warehouse_path)
        # Chunks of 20 days: the full build's rewrite in day order copies the 70 days
        # in four chunks, and the comparisons below prove no row is lost or doubled.
        run_dbt(
            [
                *BUILD_WITHOUT_TESTS,
                "--full-refresh",
                "--vars",
                f"{{day_order_chunk_days: {DAY_ORDER_CHUNK_DAYS}}}",
            ],
            full,
            log_path=full.logs_dir / "full.log",
        )
        yield Builds(incremental=settings, full_refresh=full, compiled_fact_sql=compiled)


def read(settings: Settings, query: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.sql(query).df()


def sorted_frame(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame.sort_values(key).reset_index(drop=True)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        (
            "intermediate.int_account_metrics_deduplicated",
            ["platform", "account_handle", "snapshot_date"],
        ),
        ("intermediate.int_executive_reach_gap_filled", FACT_KEY),
        ("marts.fct_executive_reach_daily", FACT_KEY),
        ("marts.fct_reach_by_country_sector_daily", AGGREGATE_KEY),
        (
            "marts.fct_reach_by_country_sector_all_platforms_daily",
            ["country_code", "sector", "metric_date"],
        ),
        ("marts.fct_country_comparison_yearly", ["country_code", "calendar_year"]),
        ("marts.dim_executive", ["executive_id", "valid_from"]),
    ],
)
def test_incremental_builds_equal_a_full_refresh(
    builds: Builds, table: str, key: list[str]
) -> None:
    incremental = sorted_frame(read(builds.incremental, f"select * from {table}"), key)
    full = sorted_frame(read(builds.full_refresh, f"select * from {table}"), key)
    assert len(incremental) > 0
    pd.testing.assert_frame_equal(incremental, full)


def test_a_full_build_stores_the_gap_filled_series_in_day_order(builds: Builds) -> None:
    # Stored in day order, the daily builds' filters on recent days skip the row groups of
    # older days (fct_executive_reach_daily read the whole 3-year series every day).
    stored = read(
        builds.full_refresh,
        "select metric_date, lag(metric_date) over (order by rowid) as previous "
        "from intermediate.int_executive_reach_gap_filled",
    )
    days = pd.to_datetime(stored["metric_date"])
    assert (days.max() - days.min()).days > 2 * DAY_ORDER_CHUNK_DAYS
    assert (days < pd.to_datetime(stored["previous"])).sum() == 0


def test_the_country_comparison_reads_only_the_year_end_days_of_the_reach_fact(
    builds: Builds,
) -> None:
    # As constants in the query, which DuckDB checks against each row group's days: a
    # join on days computed in the query read the whole 3-year fact on every daily build.
    compiled = (
        builds.incremental.dbt_target_dir
        / "compiled/social_leadership/models/marts/fct_country_comparison_yearly.sql"
    ).read_text(encoding="utf-8")
    match = re.search(r"where metric_date in \(([^)]*)\)", compiled)
    assert match is not None, "the reach fact is read without a filter on its days"
    filtered = sorted(date.fromisoformat(d) for d in re.findall(r"'([\d-]+)'", match.group(1)))
    year_ends = read(
        builds.incremental,
        "select max(metric_date) as day from marts.fct_executive_reach_daily "
        "group by year(metric_date) order by day",
    )
    assert filtered == [pd.Timestamp(d).date() for d in year_ends["day"]]


def test_last_build_was_incremental_and_went_back_for_the_redeclared_history(
    builds: Builds,
) -> None:
    # Load 3 alone would redo days 59-69 (gap fill 7 + late data 3), but redeclared's new
    # versions re-attribute every day of its series, so the build starts on its first day.
    # The first day of the first window the fact recomputes (windows are in day order).
    match = re.search(
        r"\(reach_with_changes\.metric_date >= date '(\d{4}-\d{2}-\d{2})'", builds.compiled_fact_sql
    )
    assert match is not None, "the last build was not incremental"
    assert date.fromisoformat(match.group(1)) <= day(20)
    attributed = read(
        builds.incremental,
        "select metric_date, company_name from marts.fct_executive_reach_daily "
        "where executive_id = 'redeclared' and metric_date between "
        f"date '{day(15)}' and date '{day(25)}'",
    )
    before = attributed[pd.to_datetime(attributed["metric_date"]).dt.date < day(20)]
    after = attributed[pd.to_datetime(attributed["metric_date"]).dt.date >= day(20)]
    assert set(before["company_name"]) == {"Gamma Foods"}
    assert set(after["company_name"]) == {"Delta Retail"}


# ---- the independent computation -------------------------------------------------------


def expected_version(executive: str, number: int) -> Version:
    chosen = EXPECTED_VERSIONS[executive][0]
    for version in EXPECTED_VERSIONS[executive]:
        if version[0] is None or version[0] <= number:
            chosen = version
    return chosen


def is_demo_executive(executive: str) -> bool:
    """The roster flag _write_roster gives the executive."""
    return len(executive) % 2 == 0


def pandas_reach(raw: pd.DataFrame) -> pd.DataFrame:
    last_day = raw["snapshot_date"].max()
    ok = raw[raw["account_status"] == "ok"].sort_values(
        ["observed_at", "loaded_at", "source"], ascending=[False, False, True]
    )
    observed = ok.drop_duplicates(["platform", "account_handle", "snapshot_date"])
    accounts = pd.DataFrame(ACCOUNTS, columns=["executive_id", "platform", "account_handle"])
    observed = observed.merge(accounts, on=["platform", "account_handle"])
    rows = []
    for (executive, platform), series in observed.groupby(["executive_id", "platform"]):
        by_day = {row.snapshot_date: row for row in series.itertuples()}
        current = series["snapshot_date"].min()
        last_seen = None
        while current <= last_day:
            if current in by_day:
                last_seen = by_day[current]
            if last_seen is not None and (current - last_seen.snapshot_date).days <= GAP_FILL_DAYS:
                number = (current - DAY_ZERO).days
                _, _title, company, country, sector = expected_version(executive, number)
                rows.append(
                    {
                        "executive_id": executive,
                        "platform": platform,
                        "metric_date": current,
                        "account_handle": last_seen.account_handle,
                        "company_name": company,
                        "country_code": country,
                        "sector": sector,
                        "followers": last_seen.followers,
                        "is_observed": current == last_seen.snapshot_date,
                        "is_synthetic": is_demo_executive(executive)
                        or bool(last_seen.is_synthetic),
                    }
                )
            current += timedelta(days=1)
    reach = pd.DataFrame(rows)
    lookup = reach.set_index(["executive_id", "platform", "metric_date"])["followers"].to_dict()
    for days in (1, 7, 28):
        reach[f"followers_change_{days}d"] = [
            (row.followers - lookup[key])
            if (key := (row.executive_id, row.platform, row.metric_date - timedelta(days=days)))
            in lookup
            else None
            for row in reach.itertuples()
        ]
    return reach


def _sum_or_none(values: pd.Series) -> float | None:
    return values.sum() if values.notna().any() else None


def pandas_aggregate(reach: pd.DataFrame) -> pd.DataFrame:
    # Per executive first (for "all" that sums platforms), then per group.
    per_platform = reach.groupby(
        ["executive_id", "country_code", "sector", "platform", "metric_date"], as_index=False
    ).agg(followers=("followers", "sum"), change=("followers_change_28d", _sum_or_none))
    across = reach.groupby(
        ["executive_id", "country_code", "sector", "metric_date"], as_index=False
    ).agg(followers=("followers", "sum"), change=("followers_change_28d", _sum_or_none))
    across["platform"] = "all"
    per_executive = pd.concat([per_platform, across], ignore_index=True)
    measures = (
        per_executive.groupby(AGGREGATE_KEY, as_index=False)
        .agg(
            executives_active=("executive_id", "count"),
            total_followers=("followers", "sum"),
            median_followers=("followers", "median"),
            followers_change_28d=("change", _sum_or_none),
        )
        .set_index(AGGREGATE_KEY)
    )
    tracked_rows = []
    for metric_date in sorted(set(reach["metric_date"])):
        number = (metric_date - DAY_ZERO).days
        for executive in EXPECTED_VERSIONS:
            _, _, _, country, sector = expected_version(executive, number)
            tracked_rows.append((country, sector, metric_date, executive))
    # Synthetic per group, platform and day: demo executives tracked there, and executives
    # whose counts there are synthetic (for "all": on any platform).
    synthetic: dict[tuple[object, ...], set[str]] = {}
    platforms_of_day: dict[object, set[str]] = {}
    for row in reach.itertuples():
        platforms_of_day.setdefault(row.metric_date, set()).update((row.platform, "all"))
        if row.is_synthetic:
            for platform in (row.platform, "all"):
                key = (row.country_code, row.sector, platform, row.metric_date)
                synthetic.setdefault(key, set()).add(row.executive_id)
    for country, sector, metric_date, executive in tracked_rows:
        if is_demo_executive(executive):
            for platform in platforms_of_day.get(metric_date, ()):
                synthetic.setdefault((country, sector, platform, metric_date), set()).add(executive)
    tracked = (
        pd.DataFrame(tracked_rows, columns=["country_code", "sector", "metric_date", "e"])
        .groupby(["country_code", "sector", "metric_date"], as_index=False)
        .agg(executives_tracked=("e", "count"))
    )
    platform_days = pd.concat(
        [
            reach[["platform", "metric_date"]].drop_duplicates(),
            reach[["metric_date"]].drop_duplicates().assign(platform="all"),
        ]
    )
    rows = []
    for group in tracked.merge(platform_days, on="metric_date").itertuples(index=False):
        key = (group.country_code, group.sector, group.platform, group.metric_date)
        found = measures.loc[key] if key in measures.index else None
        active = 0 if found is None else int(found["executives_active"])
        change = None if found is None else found["followers_change_28d"]
        rows.append(
            {
                "country_code": group.country_code,
                "sector": group.sector,
                "platform": group.platform,
                "metric_date": group.metric_date,
                "executives_tracked": int(group.executives_tracked),
                "executives_active": active,
                "active_share_pct": 100.0 * active / group.executives_tracked,
                "total_followers": 0 if found is None else int(found["total_followers"]),
                "median_followers": None if found is None else float(found["median_followers"]),
                "followers_change_28d": None if change is None or pd.isna(change) else int(change),
                "synthetic_executives_pct": 100.0
                * len(synthetic.get(key, ()))
                / group.executives_tracked,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def raw_metrics(builds: Builds) -> pd.DataFrame:
    raw = read(builds.incremental, "select * from raw.platform_metrics")
    raw["snapshot_date"] = pd.to_datetime(raw["snapshot_date"]).dt.date
    return raw


def comparable(frame: pd.DataFrame, columns: list[str], key: list[str]) -> list[tuple[object, ...]]:
    subset = sorted_frame(frame[columns], key).astype(object)
    subset = subset.where(subset.notna(), None)
    return [tuple(row) for row in subset.itertuples(index=False)]


def test_pandas_reproduces_the_executive_reach_fact(
    raw_metrics: pd.DataFrame, builds: Builds
) -> None:
    expected = pandas_reach(raw_metrics)
    actual = read(builds.incremental, "select * from marts.fct_executive_reach_daily")
    actual["metric_date"] = pd.to_datetime(actual["metric_date"]).dt.date
    columns = [
        *FACT_KEY,
        "account_handle",
        "company_name",
        "country_code",
        "sector",
        "followers",
        "is_observed",
        "is_synthetic",
        "followers_change_1d",
        "followers_change_7d",
        "followers_change_28d",
    ]
    assert len(expected) > 400
    assert comparable(actual, columns, FACT_KEY) == comparable(expected, columns, FACT_KEY)
    # The dataset really has what it claims: carried days, a stopped series, a mover.
    assert (~expected["is_observed"]).sum() > 20
    assert expected[expected["executive_id"] == "mover"]["country_code"].nunique() == 2


def test_pandas_reproduces_the_country_sector_aggregate(
    raw_metrics: pd.DataFrame, builds: Builds
) -> None:
    expected = pandas_aggregate(pandas_reach(raw_metrics))
    # The per-platform mart and the cross-platform one, as platform "all".
    actual = read(
        builds.incremental,
        """
        select * from marts.fct_reach_by_country_sector_daily
        union all by name
        select *, 'all' as platform
        from marts.fct_reach_by_country_sector_all_platforms_daily
        """,
    )
    actual["metric_date"] = pd.to_datetime(actual["metric_date"]).dt.date
    columns = list(expected.columns)
    assert len(expected) > 400
    assert comparable(actual, columns, AGGREGATE_KEY) == comparable(
        expected, columns, AGGREGATE_KEY
    )
    # Demo executives, real ones with synthetic counts on some days, and real counts.
    assert expected["synthetic_executives_pct"].nunique() > 3
