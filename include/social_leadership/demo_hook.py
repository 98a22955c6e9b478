"""The one door from production code to the demo, opened by the ``SLW_DEMO`` switch.

Production code never imports :mod:`social_leadership.demo` (a test parses its imports):
the demo registers what it adds to a warehouse, an object with the methods of
:class:`DemoInputs`, as the entry point ``inputs`` of the group ``social_leadership.demo``
(pyproject.toml). :func:`demo_inputs` looks it up only when the switch is on, so with the
switch off (the default, and the deployed setup) no demo code is even imported, and
nothing synthetic reaches the warehouse but what the roster and the platforms bring.
An entry point rather than an import behind an ``if``: the tasks name no demo module, and
the demo could ship as a package of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import duckdb

    from social_leadership.follower_imports import ImportOutcome
    from social_leadership.roster import Roster
    from social_leadership.settings import Settings

ENTRY_POINT_GROUP = "social_leadership.demo"
ENTRY_POINT_NAME = "inputs"


class DemoInputs(Protocol):
    """What the demo adds to a warehouse: nothing else of it reaches production code."""

    def survey_files(self) -> Sequence[Path]:
        """Synthetic survey files (each with its sidecar) that ``survey_ingest`` loads beside
        the bundled published figures: never moved, and a failure raises."""
        ...

    def seed_history(
        self,
        con: duckdb.DuckDBPyConnection,
        roster: Roster,
        history_dir: Path,
        quarantine_dir: Path,
    ) -> ImportOutcome | None:
        """Import synthetic follower history of the roster's accounts once, into a warehouse
        without imported history (the file is written to ``history_dir``); None when the
        warehouse already has some."""
        ...


class DemoNotInstalledError(RuntimeError):
    """``SLW_DEMO`` is on, but no demo is registered (the package is not installed)."""


def demo_inputs(settings: Settings) -> DemoInputs | None:
    """The demo's inputs when ``settings.demo`` (``SLW_DEMO``) is on, else None."""
    if not settings.demo:
        return None
    found = entry_points(group=ENTRY_POINT_GROUP, name=ENTRY_POINT_NAME)
    if not found:
        raise DemoNotInstalledError(
            f"SLW_DEMO is on, but no demo is installed (no entry point {ENTRY_POINT_NAME!r} "
            f"in group {ENTRY_POINT_GROUP!r}): install the package (make install, or "
            "pip install --no-deps --editable .), or unset SLW_DEMO"
        )
    inputs: DemoInputs = next(iter(found)).load()
    return inputs
