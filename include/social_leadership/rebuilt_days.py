"""The days each dbt build rebuilt, as its daily models record them.

Each daily model records the first day an invocation recomputed in
``audit.incremental_windows`` (null: the whole table; see
dbt_project/macros/incremental_rebuild_from.sql). The publish and the quality gate each keep
a cursor (the newest record they consumed) and ask what was rebuilt since: the publish
replaces those days in the serving copies, the gate validates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

INCREMENTAL_WINDOWS = "audit.incremental_windows"


@dataclass(frozen=True)
class RebuiltDays:
    """What the builds since a cursor did to one model: the first day any of them rebuilt
    (None when one rebuilt it whole) and how many rebuilt it whole."""

    first_day: date | None
    full_builds: int

    @property
    def whole(self) -> bool:
        return self.full_builds > 0 or self.first_day is None


def recorded(con: duckdb.DuckDBPyConnection, source: str) -> tuple[frozenset[str], datetime | None]:
    """The models that ever recorded a window in ``source`` (the windows table, qualified
    as the caller attached it), and the newest record: the cursor to move to once
    everything up to it is consumed."""
    models = frozenset(
        row[0] for row in con.execute(f"select distinct model_name from {source}").fetchall()
    )
    newest = con.execute(f"select max(recorded_at) from {source}").fetchone()
    return models, newest[0] if newest else None


def rebuilt_since(
    con: duckdb.DuckDBPyConnection, source: str, since: datetime | None, until: datetime | None
) -> dict[str, RebuiltDays]:
    """Per model, what the builds recorded after ``since`` (a consumer's cursor; None: every
    build) and up to ``until`` rebuilt; a model no build rebuilt is absent."""
    if until is None:
        return {}
    rows = con.execute(
        f"select model_name, min(rebuild_from), count(*) - count(rebuild_from) from {source} "
        "where (? is null or recorded_at > ?) and recorded_at <= ? group by model_name",
        [since, since, until],
    ).fetchall()
    return {model: RebuiltDays(first, int(full_builds)) for model, first, full_builds in rows}
