"""Helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "include"))

from social_leadership.reference import GICS_SECTORS
from social_leadership.settings import Settings


def report(
    name: str,
    ratio: float,
    bound: float,
    *,
    lower_is_better: bool = True,
    limits_held: bool = True,
) -> int:
    """Print the BENCH line (always last) and return the process exit code.

    ``limits_held=False`` (a bench's other limit, such as peak memory, was exceeded) fails
    the bench whatever the ratio; the bench prints which limit beforehand.
    """
    ok = (ratio <= bound if lower_is_better else ratio >= bound) and limits_held
    print(f"BENCH {name} ratio={ratio:.3f} bound={bound} {'ok' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


def median(values: list[float]) -> float:
    return statistics.median(values)


# The bench roster and its synthetic daily counts (incremental_build, dbt_in_airflow,
# publish_growth): one generator, so the benchmarks compare like with like.
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
            cast(date '{first_day}' + cast(d as integer) as timestamp) + interval 7 hour,
            false
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


def generate_warehouse(
    root: Path, label: str, days: int, build: Callable[[Settings], object]
) -> Settings:
    """A warehouse in ``root / label`` with the bench roster and ``days`` of counts, built
    once with ``build``; prints how long generating and building took."""
    from social_leadership.settings import load_settings

    os.environ["SLW_DATA_DIR"] = str(root / label)
    settings = load_settings()
    settings.ensure_dirs()
    started = time.perf_counter()
    create_raw(settings.warehouse_path, days)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    build(settings)
    print(
        f"{label}: raw generated in {generated:.1f}s, full build "
        f"{time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return settings


# Set by bench/run.py for one run of several benchmarks: the built warehouses are kept
# there, so the benchmarks that start from the same ones generate and build them once.
CACHE_VARIABLE = "SLW_BENCH_CACHE_DIR"


def build_bench_warehouses(root: Path) -> dict[str, Settings]:
    """The 3-year (``3y``) and 30-day (``30d``) warehouses under ``root``, built in full
    with ``dbt build``, each in its own ``SLW_DATA_DIR`` (copied from the run's cache when
    an earlier benchmark built them)."""
    from social_leadership.dbt_runner import run_dbt
    from social_leadership.settings import load_settings

    clear_path_settings()
    cache = Path(os.environ[CACHE_VARIABLE]) if os.environ.get(CACHE_VARIABLE) else None
    warehouses = {}
    for label, days in (("3y", LONG_DAYS), ("30d", SHORT_DAYS)):
        cached = cache / label if cache is not None else None
        if cached is not None and cached.is_dir():
            shutil.copytree(cached, root / label, symlinks=True)
            os.environ["SLW_DATA_DIR"] = str(root / label)
            warehouses[label] = load_settings()
            print(f"{label}: built warehouse copied from this run's cache", flush=True)
            continue
        warehouses[label] = generate_warehouse(root, label, days, lambda s: run_dbt(["build"], s))
        if cached is not None:
            shutil.copytree(root / label, cached, symlinks=True)
    return warehouses


def clear_path_settings() -> None:
    """Drop path settings that would point every bench warehouse at one file."""
    for variable in ("SLW_WAREHOUSE_PATH", "SLW_DBT_TARGET_DIR", "SLW_LOGS_DIR"):
        os.environ.pop(variable, None)


def add_next_day(settings: Settings, day: date) -> None:
    """One new day of counts for every account (the daily build is the caller's)."""
    from social_leadership.warehouse import connect

    with connect(settings.warehouse_path) as con:
        add_days(con, day, 1)


INCLUDE = Path(__file__).resolve().parent.parent / "include"


def run_in_child(data_dir: Path, code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh Python process on the warehouse of ``data_dir``, as an
    Airflow task would (its own imports, its own peak memory); the child prints a JSON
    object as its last line, which is returned."""
    env = {**os.environ, "SLW_DATA_DIR": str(data_dir), "PYTHONPATH": str(INCLUDE)}
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child process failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
