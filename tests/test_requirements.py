"""requirements.txt pins every package (transitive ones included) and the venv matches it."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = PIN.match(stripped)
        assert match, f"not an exact pin: {line!r}"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_every_line_is_an_exact_pin_and_the_key_versions_hold():
    pins = _pins()
    assert pins["apache-airflow"].startswith("3.3.")
    assert pins["dbt-core"].startswith("1.11.")
    assert pins["great-expectations"].startswith("1.")
    assert pins["duckdb"] == pins["duckdb-extension-icu"]
    assert {"dbt-duckdb", "pandas", "pytest"} <= set(pins)


def test_installed_versions_match_the_pins():
    mismatched = {}
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            mismatched[name] = (version, None)
            continue
        if installed != version:
            mismatched[name] = (version, installed)
    assert mismatched == {}


def test_the_bi_extra_pins_what_requirements_txt_pins():
    """``pip install .[bi]`` gives a BI reader the versions the tests ran with."""
    import tomllib

    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["bi"]
    pins = _pins()
    extra_pins = {}
    for requirement in extra:
        match = PIN.match(requirement)
        assert match, f"not an exact pin in the bi extra: {requirement!r}"
        extra_pins[match.group(1).lower()] = match.group(2)
    assert {"duckdb-sqlalchemy", "sqlalchemy"} <= set(extra_pins)
    assert {name: pins.get(name) for name in extra_pins} == extra_pins
