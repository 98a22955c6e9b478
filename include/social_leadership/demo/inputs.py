"""What the demo adds to a warehouse when ``SLW_DEMO`` is on: the synthetic survey
microdata and two years of synthetic follower history.

:data:`INPUTS` is registered as the entry point ``inputs`` of the group
``social_leadership.demo`` (pyproject.toml); production code reaches it only through
:func:`social_leadership.demo_hook.demo_inputs`.
"""

from __future__ import annotations

from pathlib import Path

from social_leadership.demo.follower_history import seed_demo_history
from social_leadership.demo.microdata import DEMO_MICRODATA_FILE


class SyntheticDemoInputs:
    """The demo's :class:`~social_leadership.demo_hook.DemoInputs`."""

    # Already of the protocol's signature (its keyword ``today`` defaults to the current day).
    seed_history = staticmethod(seed_demo_history)

    def survey_files(self) -> tuple[Path, ...]:
        return (DEMO_MICRODATA_FILE,)


INPUTS = SyntheticDemoInputs()
