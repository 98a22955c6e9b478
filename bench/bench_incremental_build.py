"""incremental_build: the daily `dbt build` over 3 years of history against 30 days.

Two warehouses get the same roster (2,000 executives, 5 platforms each) and synthetic raw
counts generated with DuckDB SQL: one with 3 years of daily history, one with 30 days.
Both are built in full once (untimed). Then, in alternating rounds, one new day arrives in
each and the daily `dbt build` (models, snapshot and tests) is timed. The ratio is the
median 3-year time over the median 30-day time: an incremental build that really processes
only new days plus the lookback should cost about the same on both.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from _common import median, report

from social_leadership.reference import GICS_SECTORS

NAME = "incremental_build"
BOUND = 1.5
ROUNDS = 3
EXECUTIVES = 2_000
PLATFORMS = ("x", "bluesky", "mastodon", "youtube", "linkedin")
LONG_DAYS = 3 * 365
SHORT_DAYS = 30
LAST_HISTORY_DAY = date(2026, 6, 30)

COUNTRIES = ("US", "DE", "GB", "FR", "JP", "CN", "IN", "CA", "IT", "ES")
SECTORS = GICS_SECTORS


def _list_literal(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


def create_raw(warehouse_path: Path, days: int) -> None:
    from social_leadership.warehouse import connect

    first_day = LAST_HISTORY_DAY - timedelta(days=days - 1)
    with connect(warehouse_path) as con:
        con.execute(
            f"""
            insert into raw.roster_executives
            select
                'exec-' || i, 'Executive ' || i, 'CEO', 'Company ' || (i // 2),
                {_list_literal(COUNTRIES)}[1 + i % {len(COUNTRIES)}],
                {_list_literal(SECTORS)}[1 + (i // 3) % {len(SECTORS)}],
                true, null, 'bench.csv', timestamptz '{first_day} 03:00:00+00'
            from range({EXECUTIVES}) as t (i)
            """
        )
        con.execute(
            f"""
            insert into raw.roster_accounts
            select 'exec-' || i, platform, platform || '-' || i,
                timestamptz '{first_day} 03:00:00+00'
            from range({EXECUTIVES}) as t (i)
            cross join unnest({_list_literal(PLATFORMS)}) as p (platform)
            """
        )
        add_days(con, first_day, days)


def add_days(con: object, first_day: date, days: int) -> None:
    """Observations for every account on [first_day, first_day + days), ~4% days missed."""
    con.execute(  # type: ignore[attr-defined]
        f"""
        insert into raw.platform_metrics
        select
            accounts.platform,
            cast(date '{first_day}' + cast(d as integer) as date),
            accounts.account_handle,
            null,
            'ok',
            1000 + hash(accounts.account_handle) % 100000
                + d * (hash(accounts.account_handle) % 13),
            100,
            d,
            cast(date '{first_day}' + cast(d as integer) as timestamp) + interval 6 hour,
            'api',
            null,
            cast(date '{first_day}' + cast(d as integer) as timestamp) + interval 7 hour
        from raw.roster_accounts as accounts
        cross join range({days}) as t (d)
        where hash(accounts.account_handle || d) % 25 != 0
        """
    )


def row_counts(warehouse_path: Path) -> str:
    import duckdb

    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        counts = con.execute(
            """
            select
                (select count(*) from raw.platform_metrics),
                (select count(*) from marts.fct_executive_reach_daily),
                (select count(*) from marts.fct_reach_by_country_sector_daily),
                (select count(*) from marts.dim_executive)
            """
        ).fetchone()
    assert counts is not None
    return (
        f"raw.platform_metrics {counts[0]:,}, fct_executive_reach_daily {counts[1]:,}, "
        f"fct_reach_by_country_sector_daily {counts[2]:,}, dim_executive {counts[3]:,}"
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-incremental-") as tmp:
        os.environ.pop("SLW_WAREHOUSE_PATH", None)
        os.environ.pop("SLW_DBT_TARGET_DIR", None)
        os.environ.pop("SLW_LOGS_DIR", None)
        from social_leadership.dbt_runner import run_dbt
        from social_leadership.settings import load_settings
        from social_leadership.warehouse import connect

        warehouses = {}
        for label, days in (("3y", LONG_DAYS), ("30d", SHORT_DAYS)):
            os.environ["SLW_DATA_DIR"] = str(Path(tmp) / label)
            settings = load_settings()
            settings.ensure_dirs()
            started = time.perf_counter()
            create_raw(settings.warehouse_path, days)
            generated = time.perf_counter() - started
            started = time.perf_counter()
            run_dbt(["build"], settings)
            print(
                f"{label}: raw generated in {generated:.1f}s, full build "
                f"{time.perf_counter() - started:.1f}s",
                flush=True,
            )
            warehouses[label] = settings

        timings: dict[str, list[float]] = {"3y": [], "30d": []}
        for round_no in range(1, ROUNDS + 1):
            new_day = LAST_HISTORY_DAY + timedelta(days=round_no)
            for label, settings in warehouses.items():
                with connect(settings.warehouse_path) as con:
                    add_days(con, new_day, 1)
                started = time.perf_counter()
                run_dbt(["build"], settings)
                timings[label].append(time.perf_counter() - started)
            print(
                f"round {round_no} ({new_day}): daily build 3y {timings['3y'][-1]:.1f}s, "
                f"30d {timings['30d'][-1]:.1f}s",
                flush=True,
            )
        for label, settings in warehouses.items():
            print(f"{label} rows: {row_counts(settings.warehouse_path)}", flush=True)
        ratio = median(timings["3y"]) / median(timings["30d"])
        return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
