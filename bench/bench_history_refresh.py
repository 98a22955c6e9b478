"""history_refresh: importing one month of history into 3 years and rebuilding, over one
daily build of the same warehouse (bound 2.0).

The 3-year bench warehouse (2,000 executives x 5 platforms, bench/_common.py) is built
once. Then, in alternating rounds, (a) one new day of API counts arrives and the build
that ``warehouse_build`` plans runs (:func:`plan_build`, ``dbt build`` with its
arguments and windows), and (b) a history file of one month for every account, in the
middle of the 3 years, is imported and the planned build runs. Before, (b) was a ``--full-refresh``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _common import (
    LAST_HISTORY_DAY,
    LONG_DAYS,
    add_next_day,
    build_bench_warehouses,
    median,
    record_initial_build,
    report,
)

NAME = "history_refresh"
BOUND = 2.0
ROUNDS = 2
MONTH_DAYS = 30


def _import_month(settings: object, first_day: date) -> None:
    """A history file of ``MONTH_DAYS`` days from ``first_day`` for every roster account,
    counts a little above the API's (as an export of the platform's own history would be)."""
    from social_leadership.warehouse import connect, transaction

    with connect(settings.warehouse_path) as con, transaction(con):  # type: ignore[attr-defined]
        (import_id,) = con.execute("select nextval('raw.history_import_ids')").fetchone()
        con.execute(
            f"""
            insert into raw.imported_metrics
            select {import_id}, platform, date '{first_day}' + cast(d as integer),
                account_handle, 1100 + hash(account_handle) % 100000 + d, 100, d
            from raw.roster_accounts cross join range({MONTH_DAYS}) as t (d)
            """
        )
        con.execute(
            "insert into raw.history_imports select ?, 'bench-history.csv', count(*), "
            "count(*), 0, ?, false from raw.imported_metrics where import_id = ?",
            [import_id, datetime.now(UTC), import_id],
        )


def _planned_build(settings: object, run_id: str) -> tuple[float, str]:
    from social_leadership.dbt_runner import plan_build, record_build, run_dbt
    from social_leadership.warehouse import connect

    with connect(settings.warehouse_path) as con:  # type: ignore[attr-defined]
        plan = plan_build(con)
    if plan.full_refresh:
        raise SystemExit(f"{run_id}: planned a full refresh ({plan.reason})")
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    result = run_dbt(plan.args, settings, env=plan.env)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    with connect(settings.warehouse_path) as con:  # type: ignore[attr-defined]
        record_build(con, run_id, plan, started_at, result)
    return seconds, plan.reason


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="slw-bench-history-refresh-") as tmp:
        settings = build_bench_warehouses(Path(tmp), labels=("3y",))["3y"]
        record_initial_build(settings)
        middle = LAST_HISTORY_DAY - timedelta(days=LONG_DAYS // 2)
        timings: dict[str, list[float]] = {"daily": [], "history": []}
        for round_no in range(1, ROUNDS + 1):
            add_next_day(settings, LAST_HISTORY_DAY + timedelta(days=round_no))
            seconds, _ = _planned_build(settings, f"bench-daily-{round_no}")
            timings["daily"].append(seconds)
            _import_month(settings, middle + timedelta(days=MONTH_DAYS * (round_no - 1)))
            seconds, reason = _planned_build(settings, f"bench-history-{round_no}")
            timings["history"].append(seconds)
            print(
                f"round {round_no}: daily build {timings['daily'][-1]:.1f}s, month imported "
                f"and rebuilt {timings['history'][-1]:.1f}s ({reason})",
                flush=True,
            )
        ratio = median(timings["history"]) / median(timings["daily"])
        return report(NAME, ratio, BOUND)


if __name__ == "__main__":
    sys.exit(main())
