"""The deployed image's packages: requirements.txt without the test and lint tools.

The Dockerfile installs what this prints, so the image runs exactly the versions the tests
ran, without pytest, ruff, SQLFluff and what only they need::

    python include/social_leadership/runtime_requirements.py requirements.txt

It reads the ``# via`` notes that ``make pins`` (uv pip compile) writes under each pin: a
package stays when requirements.in names it and it is not a test or lint tool, or when a
package that stays needs it. A package added to requirements.in is thus in the image
without a second list to keep in step (a new test tool goes into ``DEV_TOOLS``). Standard
library only: it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# requirements.in's packages that only the tests and the linters use; `pytest-*` plugins too.
DEV_TOOLS = frozenset(
    {
        "aiosmtpd",
        "flask",
        "flask-cors",
        "moto",
        "pypdf",
        "pytest",
        "ruff",
        "sqlfluff",
        "statsmodels",
    }
)
REQUIREMENTS_IN = "-r requirements.in"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+")
_VIA = re.compile(r"^#\s+(?:via\s+)?(\S.*)$")


def is_dev_tool(name: str) -> bool:
    return name in DEV_TOOLS or name.startswith("pytest-")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins_and_parents(text: str) -> dict[str, tuple[str, set[str]]]:
    """Each pinned package's line and what its ``# via`` notes name (packages, or
    ``-r requirements.in``)."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current: set[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        match = _PIN.match(line)
        if match:
            current = set()
            pins[_normalized(match.group(1))] = (line, current)
            continue
        via = _VIA.match(line)
        if via and current is not None and raw.startswith(" "):
            parent = via.group(1).strip()
            current.add(parent if parent.startswith("-") else _normalized(parent))
    return pins


def runtime_pins(text: str) -> list[str]:
    """The lines of ``text`` (a requirements.txt written by uv pip compile) the image
    installs, in their order."""
    pins = _pins_and_parents(text)
    kept = {
        name
        for name, (_, parents) in pins.items()
        # A pin without notes (written by hand) is kept: better one package too many.
        if not is_dev_tool(name) and (REQUIREMENTS_IN in parents or not parents)
    }
    grown = True
    while grown:
        needed = {name for name, (_, parents) in pins.items() if parents & kept} - kept
        needed = {name for name in needed if not is_dev_tool(name)}
        kept |= needed
        grown = bool(needed)
    return [line for name, (line, _) in pins.items() if name in kept]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: runtime_requirements.py REQUIREMENTS_TXT", file=sys.stderr)
        return 2
    lines = runtime_pins(Path(argv[0]).read_text())
    print("# requirements.txt without the test and lint tools (runtime_requirements.py)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
