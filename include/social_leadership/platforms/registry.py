"""The platform registry: every platform the warehouse knows, each declared once by its
connector class.

A connector class states its platform's facts (see :class:`~.base.Connector`): name and
display name, default public endpoint, the Airflow connection fields it takes and what
they mean, the handle pattern the roster validates with, its batch size, whether
executives' follower counts come by API or by import, and the state it keeps between runs.
Everything else reads them here: the platform lists (:data:`social_leadership.domain.PLATFORMS`),
:func:`~social_leadership.platforms.build_connector`, the roster, the Airflow endpoints,
the loader and the dbt seed ``platforms.csv`` (written and checked by this module)::

    python -m social_leadership.platforms --write-seed   # rewrite the seed
    python -m social_leadership.platforms --check        # exit 1 when it differs

The built-in connectors register on import of :mod:`social_leadership.platforms`, in the
order of the roster's platform columns; a module added to that package registers its own
connector with :func:`register` (CONTRIBUTING.md, "Add a platform").
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from social_leadership.platforms.base import ConnectionField, PlatformError

if TYPE_CHECKING:
    from social_leadership.platforms.base import Connector

PLATFORM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SEED_PATH = Path(__file__).resolve().parents[3] / "dbt_project" / "seeds" / "platforms.csv"
SEED_COLUMNS = ("platform", "platform_name", "follower_source")
FOLLOWER_SOURCES = ("api", "import")

__all__ = [
    "ConnectionField",
    "connector_class",
    "is_registered",
    "platform_names",
    "register",
    "registered",
    "seed_drift",
    "seed_rows",
    "seed_text",
    "unregister",
]


_REGISTRY: dict[str, type[Connector]] = {}


def register(connector: type[Connector]) -> type[Connector]:
    """Add a connector class to the registry (usable as a class decorator).

    Checks what the class declares, so that a mistake fails at import, naming the class,
    rather than at the first run.
    """
    problems = _declaration_problems(connector)
    if problems:
        raise TypeError(f"{connector.__qualname__}: {'; '.join(problems)}")
    held = _REGISTRY.get(connector.platform)
    if held is not None and held is not connector:
        raise ValueError(
            f"platform {connector.platform!r} is already registered by {held.__qualname__}"
        )
    _REGISTRY[connector.platform] = connector
    return connector


def unregister(platform: str) -> None:
    """Remove a platform (for a test that registered one of its own)."""
    _REGISTRY.pop(platform, None)


def registered() -> tuple[type[Connector], ...]:
    """The registered connector classes, in registration order."""
    return tuple(_REGISTRY.values())


def platform_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def is_registered(platform: str) -> bool:
    return platform in _REGISTRY


def connector_class(platform: str) -> type[Connector]:
    """The connector class of ``platform`` (its ``parse`` re-reads landed responses)."""
    try:
        return _REGISTRY[platform]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise PlatformError(f"unknown platform {platform!r} (known: {known})") from None


def seed_rows() -> list[tuple[str, str, str]]:
    """The rows of the dbt seed ``platforms.csv``, one per registered platform."""
    return [(c.platform, c.display_name, c.follower_source) for c in registered()]


def seed_text() -> str:
    """The seed file's content for the registered platforms."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SEED_COLUMNS)
    writer.writerows(seed_rows())
    return buffer.getvalue()


def seed_drift(seed_path: Path = SEED_PATH) -> list[str]:
    """How the seed at ``seed_path`` differs from the registry (empty: it matches)."""
    with seed_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or tuple(rows[0]) != SEED_COLUMNS:
        return [f"{seed_path}: header must be {','.join(SEED_COLUMNS)}"]
    in_seed = {row[0]: tuple(row) for row in rows[1:] if row}
    expected = {row[0]: row for row in seed_rows()}
    problems = [
        f"{seed_path}: {name} is registered but has no row (expected {','.join(row)})"
        for name, row in expected.items()
        if name not in in_seed
    ]
    problems += [
        f"{seed_path}: {name} has a row but no registered connector"
        for name in in_seed
        if name not in expected
    ]
    problems += [
        f"{seed_path}: {name} reads {','.join(in_seed[name])}, the registry says {','.join(row)}"
        for name, row in expected.items()
        if name in in_seed and in_seed[name] != row
    ]
    return problems


def _declaration_problems(connector: type[Connector]) -> list[str]:
    problems = []
    name = getattr(connector, "platform", None)
    if not isinstance(name, str) or not PLATFORM_NAME.match(name):
        problems.append(f"platform must be a name matching {PLATFORM_NAME.pattern}")
    for attribute in ("display_name", "public_base_url"):
        if not isinstance(getattr(connector, attribute, None), str):
            problems.append(f"{attribute} must be declared (a string)")
    if not isinstance(getattr(connector, "handle_pattern", None), re.Pattern):
        problems.append("handle_pattern must be a compiled regular expression")
    batch_size = getattr(connector, "batch_size", None)
    if not isinstance(batch_size, int) or batch_size < 1:
        problems.append("batch_size must be a whole number of at least 1")
    if getattr(connector, "follower_source", None) not in FOLLOWER_SOURCES:
        problems.append(f"follower_source must be one of {', '.join(FOLLOWER_SOURCES)}")
    if inspect.isabstract(connector):
        problems.append("it leaves abstract methods unimplemented")
    accepted = _constructor_options(connector)
    options = [f.option for f in connector.connection_fields]
    if connector.state_option is not None:
        options.append(connector.state_option)
    problems += [
        f"its constructor takes no {option!r} (declared as a connection field or state)"
        for option in options
        if accepted is not None and option not in accepted
    ]
    return problems


def _constructor_options(connector: type[Connector]) -> set[str] | None:
    """The keyword arguments the constructor names (None: it takes any, via ``**``)."""
    names: set[str] = set()
    for cls in connector.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names.update(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m social_leadership.platforms",
        description="Write or check the dbt seed platforms.csv against the platform registry.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write-seed", action="store_true", help="rewrite the seed file")
    action.add_argument("--check", action="store_true", help="exit 1 when the seed differs")
    parser.add_argument("--seed", type=Path, default=SEED_PATH, help="the seed file")
    args = parser.parse_args(argv)
    # The package import registers the built-in connectors (and any added module's).
    import social_leadership.platforms  # noqa: F401

    if args.write_seed:
        args.seed.write_text(seed_text(), encoding="utf-8")
        print(f"wrote {args.seed} ({len(seed_rows())} platforms)")
        return 0
    problems = seed_drift(args.seed)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # The command's earlier name (`python -m social_leadership.platforms.registry`), kept
    # for scripts that use it: `-m` runs this file as a second module, __main__, whose
    # registry no connector fills, so the package's own copy runs.
    from social_leadership.platforms import registry

    raise SystemExit(registry.main())
