"""``make install`` on a small project with the repository's Makefile: the pinned uv,
installed by the venv's pip, installs ``requirements.txt`` and the project (editable),
saying so as it goes; pip installs the same when uv cannot be installed.

Real installs from the package index, into a venv of their own: a one-package
``requirements.txt`` keeps them to seconds. They download, and tests use no network but
loopback, so they run only when asked (``SLW_TEST_NETWORK=1``); every fresh clone's
``make run`` and ``make test`` (CI) installs the real requirements the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from social_leadership.settings import REPO_ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("SLW_TEST_NETWORK") != "1",
    reason="downloads from the package index: set SLW_TEST_NETWORK=1 to run it",
)

PINNED = "iniconfig==2.3.0"
# What the editable install builds with, pinned as requirements.txt pins them.
BUILD_PINS = [
    line
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
    if line.startswith(("setuptools==", "wheel=="))
]


@pytest.fixture
def project(tmp_path):
    shutil.copy(REPO_ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "requirements.txt").write_text("\n".join([PINNED, *BUILD_PINS, ""]))
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tinyproject"\nversion = "0.1"\n'
        '[tool.setuptools]\npy-modules = ["tinyproject"]\n'
    )
    (tmp_path / "tinyproject.py").write_text("ANSWER = 42\n")
    return tmp_path


def _install(project, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MAKELEVEL"}
    }
    # As on many CI machines and containers: a module's bytecode is only ever what the
    # install wrote (see _compiled).
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        ["make", "install", f"PYTHON={sys.executable}", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def _installed(project) -> dict[str, str]:
    listed = subprocess.run(
        [
            str(project / ".venv/bin/python"),
            "-c",
            "import importlib.metadata as m; "
            "print('\\n'.join(f'{d.name.lower()}=={d.version}' for d in m.distributions()))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return dict(line.split("==", 1) for line in listed)


def _compiled(project, package: str) -> bool:
    """Whether the install left bytecode for ``package`` (no process wrote it: see
    _install), so that every process importing it need not compile it again."""
    tag = sys.implementation.cache_tag  # cpython-311
    cache = f"{package}/__pycache__/__init__.{tag}.pyc"
    return any((project / ".venv").glob(f"lib/python*/site-packages/{cache}"))


def _imports_the_project(project) -> bool:
    # Editable: the module is read from the project folder, not copied into the venv.
    found = subprocess.run(
        [str(project / ".venv/bin/python"), "-c", "import tinyproject as t; print(t.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    return found.returncode == 0 and found.stdout.strip() == str(project / "tinyproject.py")


def test_install_uses_the_pinned_uv_and_says_what_it_installs(project):
    pin = re.search(r"^UV_PIN := (uv==\S+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert pin, "the Makefile pins uv"
    done = _install(project)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = _installed(project)
    assert f"uv=={installed['uv']}" == pin.group(1)
    assert f"iniconfig=={installed['iniconfig']}" == PINNED
    assert _imports_the_project(project)
    assert _compiled(project, "iniconfig")
    output = done.stdout + done.stderr
    # Not silent: uv reports what it resolved and installed (with bars on a terminal).
    assert f"Installing {pin.group(1)}" in output
    assert re.search(r"Installed \d+ packages? in", output), output
    assert f"+ {PINNED}" in output
    assert "installing them with pip instead" not in output
    assert (project / ".venv/.installed").exists()


def test_install_falls_back_to_pip_when_uv_cannot_be_installed(project):
    # No such uv release: pip cannot install it, as on an index without uv.
    done = _install(project, "UV_PIN=uv==0.0.0")
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "uv could not install the requirements: installing them with pip instead" in output
    installed = _installed(project)
    assert "uv" not in installed
    assert f"iniconfig=={installed['iniconfig']}" == PINNED
    assert _imports_the_project(project)
    assert _compiled(project, "iniconfig")
    # pip's own lines show the progress.
    assert "Successfully installed iniconfig-2.3.0" in output
