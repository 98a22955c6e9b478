"""House style is enforced by the test suite, so CI fails on a lint error.

SQLFluff on the dbt project: tests/include/test_dbt_project_rules.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=600
    )


def test_ruff_lint_clean():
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_clean():
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("suffix", [".py", ".sql", ".yml", ".toml"])
def test_no_todo_markers(suffix):
    listed = _run(
        "git", "ls-files", "--cached", "--others", "--exclude-standard", f"*{suffix}"
    ).stdout.split()
    existing = [REPO_ROOT / path for path in listed if (REPO_ROOT / path).is_file()]
    assert existing, f"no {suffix} files found: is this a git checkout?"
    # Spelled apart so this file does not match itself; word bounds spare MASTODON.
    marker = re.compile(r"\b(" + "TO" + "DO|FIX" + "ME)\b")
    offenders = [str(p) for p in existing if marker.search(p.read_text(errors="replace"))]
    assert offenders == [], f"open an issue instead of a marker in {offenders}"
