"""Facts of the domain shared by every layer, cheap to import so DAG files can use them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import overload

# Every DAG's start date (orchestration.START_DATE, at midnight UTC): Airflow runs none of a
# DAG's tasks for a logical date before it. Here, not there, for the command line to check
# a date without importing Airflow (which sets up its logging on stdout).
DAGS_START_DAY = date(2000, 1, 1)


class RegisteredPlatforms(Sequence[str]):
    """The names of the registered platforms, read from the platform registry
    (:mod:`social_leadership.platforms.registry`) on every use, in registration order.

    A sequence rather than a tuple fixed at import: a platform registered later (a test's
    own platform) is in it everywhere at once. The registry is imported on first use only,
    so importing this module stays cheap.
    """

    def _names(self) -> tuple[str, ...]:
        # Importing the package registers the built-in connectors.
        from social_leadership.platforms import platform_names

        return platform_names()

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...
    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._names())

    def __repr__(self) -> str:
        return repr(self._names())


# Every platform the warehouse knows: roster columns, raw rows, dim_platform.
PLATFORMS: Sequence[str] = RegisteredPlatforms()
# The platforms platform_metrics extracts, one task pair each: every registered platform
# has a connector, so these are all of them (an account its API cannot count, such as a
# LinkedIn member, is import-only within its platform).
API_PLATFORMS: Sequence[str] = PLATFORMS
