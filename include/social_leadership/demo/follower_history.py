"""Synthetic demo follower history: every roster account's counts for two years up to
yesterday, on the sandbox's own curve (:mod:`.synthetic`), imported as an ordinary history
file (recorded as synthetic) so that the demo's marts show time series after the first
``make run``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from social_leadership.demo.synthetic import synthetic_metrics
from social_leadership.follower_imports import ImportOutcome, import_history, warehouse_has_imports
from social_leadership.progress import step
from social_leadership.roster import Roster, is_linkedin_organization

DEMO_HISTORY_DAYS = 730
DEMO_HISTORY_PREFIX = "demo-history-"


def demo_history_table(roster: Roster, last_day: date, days: int = DEMO_HISTORY_DAYS) -> pa.Table:
    """Synthetic history of every roster account for the ``days`` days up to ``last_day``.

    The counts are the sandbox's own curve (:func:`synthetic_metrics`), so the sandbox's
    answer for the day after ``last_day`` continues this history without a jump. LinkedIn
    members are included: the demo shows how member counts arrive by import.
    """
    executives: list[str] = []
    handles: list[str] = []
    platforms: list[str] = []
    dates: list[date] = []
    followers: list[int] = []
    following: list[int] = []
    posts: list[int] = []
    first_day = last_day - timedelta(days=days - 1)
    for account in roster.accounts:
        if account.platform == "linkedin" and is_linkedin_organization(account.account_handle):
            continue
        for offset in range(days):
            day = first_day + timedelta(days=offset)
            counts = synthetic_metrics(account.platform, account.account_handle, day)
            executives.append(account.executive_id)
            handles.append(account.account_handle)
            platforms.append(account.platform)
            dates.append(day)
            followers.append(counts[0])
            following.append(counts[1])
            posts.append(counts[2])
    return pa.table(
        {
            "executive_id": pa.array(executives, pa.string()),
            "account_handle": pa.array(handles, pa.string()),
            "platform": pa.array(platforms, pa.string()),
            "date": pa.array(dates, pa.date32()),
            "followers": pa.array(followers, pa.int64()),
            "following": pa.array(following, pa.int64()),
            "posts": pa.array(posts, pa.int64()),
        }
    )


def seed_demo_history(
    con: duckdb.DuckDBPyConnection,
    roster: Roster,
    history_dir: Path,
    quarantine_dir: Path,
    *,
    today: date | None = None,
) -> ImportOutcome | None:
    """Import the synthetic demo history once: only into a warehouse without imports.

    The generated file is written to ``history_dir`` (so the import is an ordinary file
    import, replayable and inspectable) and covers the days before ``today``.
    """
    if warehouse_has_imports(con):
        return None
    today = today or datetime.now(UTC).date()
    step(
        f"seeding the demo's synthetic follower history: {DEMO_HISTORY_DAYS} days of "
        f"{len(roster.accounts)} accounts "
        "(first run only)"
    )
    history_dir.mkdir(parents=True, exist_ok=True)
    target = history_dir / f"{DEMO_HISTORY_PREFIX}{today.isoformat()}.parquet"
    partial = target.with_name(target.name + ".tmp")
    pq.write_table(demo_history_table(roster, today - timedelta(days=1)), partial)
    partial.replace(target)
    # Labelled at the source: the import records the file as synthetic, and every mart row
    # built from it carries is_synthetic.
    return import_history(con, target, roster, quarantine_dir, today=today, is_synthetic=True)
