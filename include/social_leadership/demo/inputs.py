"""What the demo adds to a warehouse when ``SLW_DEMO`` is on: the synthetic survey
microdata and two years of synthetic follower history.

:data:`INPUTS` is registered as the entry point ``inputs`` of the group
``social_leadership.demo`` (pyproject.toml); production code reaches it only through
:func:`social_leadership.demo_hook.demo_inputs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from social_leadership.demo.history import seed_demo_history
from social_leadership.demo.microdata import DEMO_MICRODATA_FILE

if TYPE_CHECKING:
    import duckdb

    from social_leadership.history import ImportOutcome
    from social_leadership.roster import Roster


class SyntheticDemoInputs:
    """The demo's :class:`~social_leadership.demo_hook.DemoInputs`."""

    def survey_files(self) -> tuple[Path, ...]:
        return (DEMO_MICRODATA_FILE,)

    def seed_history(
        self,
        con: duckdb.DuckDBPyConnection,
        roster: Roster,
        history_dir: Path,
        quarantine_dir: Path,
    ) -> ImportOutcome | None:
        return seed_demo_history(con, roster, history_dir, quarantine_dir)


INPUTS = SyntheticDemoInputs()
