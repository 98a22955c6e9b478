"""The Makefile for a new user: a clear line without a usable Python, make help."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
FIX = "install Python 3.11, or run make PYTHON=/path/to/python3.11"

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """What make install reads, in a folder of its own (the real .venv is never touched)."""
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def _make(clone: Path, *args: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    env["PATH"] = path
    return subprocess.run(
        [str(MAKE), "--no-print-directory", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _our_lines(stderr: str) -> list[str]:
    """stderr without make's own closing "make: *** [...] Error 1"."""
    return [line for line in stderr.splitlines() if not line.startswith("make: ***")]


@pytest.mark.parametrize("target", ["install", "old-duckdb"])
def test_without_python_on_path_make_says_so_in_one_line(clone, tmp_path, target):
    empty = tmp_path / "bin"
    empty.mkdir()

    made = _make(clone, target, path=str(empty))

    assert made.returncode != 0
    assert _our_lines(made.stderr) == [f"make: no python3.11 or python3 on PATH: {FIX}"]
    assert "command not found" not in made.stderr
    assert not (clone / ".venv").exists()
    assert not (clone / ".venv-duckdb-1.1").exists()


def test_a_python_that_is_not_a_program_is_named(clone, tmp_path):
    made = _make(clone, "install", "PYTHON=/no/such/python3.11", path=str(tmp_path))

    assert made.returncode != 0
    assert _our_lines(made.stderr) == [f"make: PYTHON=/no/such/python3.11 is not a program: {FIX}"]


@pytest.mark.parametrize("script", ["exit 0", 'echo "$@"'], ids=["silent", "echoing"])
def test_a_program_that_is_no_python_is_refused_in_one_line(clone, tmp_path, script):
    # A program that exits 0 whatever it is given passed the check: pip was said to fail.
    # One that prints what it is given was said to be of that "version".
    silent = tmp_path / "silent"
    silent.write_text(f"#!/bin/sh\n{script}\n")
    silent.chmod(0o755)

    made = _make(clone, "install", f"PYTHON={silent}", path=os.environ["PATH"])

    assert made.returncode != 0
    assert _our_lines(made.stderr) == [
        f"make: Python 3.11 is required, {silent} is not Python: {FIX}"
    ]
    assert not (clone / ".venv").exists()


def test_a_python_of_another_version_is_refused_in_one_line(clone, tmp_path):
    # A Python 3.11 made to report 3.12 (this machine has no other version).
    fake_site = tmp_path / "site"
    fake_site.mkdir()
    (fake_site / "sitecustomize.py").write_text(
        "import sys\nsys.version_info = (3, 12, 1, 'final', 0)\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python3 = bin_dir / "python3"
    python3.write_text(f'#!/bin/sh\nPYTHONPATH={fake_site} exec {sys.executable} "$@"\n')
    python3.chmod(0o755)

    made = _make(clone, "install", path=str(bin_dir))

    assert made.returncode != 0
    (line,) = _our_lines(made.stderr)
    assert re.fullmatch(rf"make: Python 3\.11 is required, \S+ is 3\.12: {re.escape(FIX)}", line)
    assert not (clone / ".venv").exists()


def test_make_help_lists_every_target_with_one_line(clone):
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", (clone / "Makefile").read_text(), re.M))
    assert {"install", "run", "test", "help"} <= targets

    made = _make(clone, "help", path=os.environ["PATH"])

    assert made.returncode == 0, made.stderr
    described = {}
    for line in made.stdout.splitlines()[1:]:
        name, _, text = line.strip().partition(" ")
        assert name not in described, name
        described[name] = text.strip()
    assert set(described) == targets
    assert all(described.values())


def test_make_alone_still_installs(clone):
    made = _make(clone, "-n", path=os.environ["PATH"])
    assert "pip install" in made.stdout or "-m venv" in made.stdout, made.stdout + made.stderr


def test_make_airflow_ui_keeps_a_checkout_path_with_spaces_whole(tmp_path):
    # Its paths were unquoted: in a checkout under "a dir", the shell ran "dir" as a
    # command (127) and the UI never started.
    import shlex

    clone = tmp_path / "a dir ☃"
    clone.mkdir()
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, clone / name)

    printed = _make(clone, "-n", "airflow-ui", path=os.environ["PATH"])

    assert printed.returncode == 0, printed.stderr
    command = printed.stdout.split(".venv/bin/airflow pools set")[1].split("\n", 1)[1]
    words = shlex.split(command.replace("\\\n", " "))
    assert words[-2:] == [".venv/bin/airflow", "standalone"]
    settings = dict(word.split("=", 1) for word in words[:-2])
    assert settings["PATH"] == f"{clone}/.venv/bin:$PATH"
    assert settings["AIRFLOW__CORE__DAGS_FOLDER"] == f"{clone}/dags"
    assert settings["PYTHONPATH"] == f"{clone}/include"
    assert settings["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == f"{os.environ['AIRFLOW_HOME']}/logs"
