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


# Names a newcomer would read wrongly, each with the name that replaced it.
MISLEADING_NAMES = {
    # landing.py and loading.py held the landing zone and the platform-metrics load.
    "social_leadership.loading": "social_leadership.platform_metrics",
    "social_leadership/loading.py": "social_leadership/platform_metrics.py",
    # "history" is the executives' versions elsewhere; this was the follower-count import.
    "social_leadership.history": "social_leadership.follower_imports",
    "social_leadership/history.py": "social_leadership/follower_imports.py",
    "social_leadership.demo.history": "social_leadership.demo.follower_history",
    # A pair that both "run Airflow": the launcher and the process it launches.
    "social_leadership.airflow_env": "social_leadership.local_airflow",
    "social_leadership.airflow_runner": "social_leadership.local_airflow_process",
    # The sandbox's token is every platform's, not X's.
    "x_token": "token",
    "SANDBOX_X_TOKEN": "SANDBOX_TOKEN",
    "--x-token": "--token",
    "SLW_SANDBOX_X_TOKEN": "SLW_SANDBOX_TOKEN",
}


def test_no_misleading_names():
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard").stdout.split()
    texts = {
        path: (REPO_ROOT / path).read_text(errors="replace")
        for path in listed
        if path.endswith((".py", ".md", ".toml", ".yml", ".cfg", "Makefile", "Dockerfile"))
        and (REPO_ROOT / path).is_file()
        and path != "tests/test_style.py"
    }
    found = [
        f"{path}: {old} (now {new})"
        for path, text in texts.items()
        for old, new in MISLEADING_NAMES.items()
        if re.search(rf"(?<![\w.-]){re.escape(old)}(?![\w-])", text)
    ]
    assert found == []


PACKAGE = REPO_ROOT / "include" / "social_leadership"
# Test-facing on purpose: the sandbox is the platforms' stand-in for the tests (and the
# demo), and the registries let a test add a platform of its own and take it away again.
TEST_FACING = {
    "sandbox/server.py": {
        "add_fault",
        "set_fault",
        "clear_faults",
        "requests_to",
        "authorizations_to",
        "reset_budgets",
        "known_accounts",
        "rename_account",
        "unregister_route",
        "handle_error",  # socketserver's hook, called by the standard library
    },
    "platforms/registry.py": {"unregister"},
    "reports/render.py": {"footer"},  # fpdf2's hook, called for every page
    "cli.py": {"convert"},  # click's hook, called for each value of a parameter type
    # codecs' hook: BufferedIncrementalDecoder.decode calls it for each piece read.
    "intake.py": {"_buffer_decode"},
    # dbt-duckdb's plugin and its hooks, named by dbt_project/profiles.yml (target lake).
    "dbt_lake_plugin.py": {"Plugin", "configure_connection", "configure_cursor"},
}


def _production_files() -> list[Path]:
    return [
        *PACKAGE.rglob("*.py"),
        *(REPO_ROOT / "dags").glob("*.py"),
        *(REPO_ROOT / "bench").glob("*.py"),
    ]


def _names_used(paths: list[Path]) -> set[str]:
    """Every name read or imported by ``paths`` (a package's re-exports excluded), and the
    ``module:attr`` entry points of pyproject.toml."""
    import ast

    used: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and path.name != "__init__.py":
                used.update(alias.name for alias in node.names)
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    used.update(re.findall(r'= "[\w.]+:(\w+)"', pyproject))
    return used


def _definitions(path: Path) -> list[tuple[str, int]]:
    import ast

    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body:
        registered = any(
            (isinstance(d, ast.Name) and d.id == "register")
            # A command of the slw command line is reached through its click group.
            or (
                isinstance(d, ast.Call)
                and isinstance(d.func, ast.Attribute)
                and d.func.attr in ("command", "group")
            )
            for d in getattr(node, "decorator_list", ())
        )
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not registered:
            # A registered class is reached through its registry, not by its name.
            found.append((node.name, node.lineno))
        if isinstance(node, ast.ClassDef):
            found += [
                (item.name, item.lineno)
                for item in node.body
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__")
            ]
        if isinstance(node, ast.Assign):
            found += [
                (target.id, node.lineno)
                for target in node.targets
                if isinstance(target, ast.Name) and target.id.isupper()
            ]
    return found


def _reexports(path: Path) -> list[tuple[str, int]]:
    """What a package's ``__init__`` imports for others to import: its imports that the
    ``__init__`` itself does not use."""
    import ast

    tree = ast.parse(path.read_text())
    own = _names_used([path])
    return [
        (alias.asname or alias.name, node.lineno)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module != "__future__"
        for alias in node.names
        if (alias.asname or alias.name) not in own
    ]


def test_no_code_only_tests_use():
    """Every function, class, method and constant of the package has a caller in the
    package, the DAGs or the benchmarks; tests exercise the entry points those use."""
    used = _names_used(_production_files())
    unused = [
        f"{path.relative_to(PACKAGE).as_posix()}:{line} {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for name, line in _definitions(path)
        if name not in used
        and name not in TEST_FACING.get(path.relative_to(PACKAGE).as_posix(), ())
    ]
    assert unused == [], "no caller outside tests: remove it, test the entry point the code uses"


def test_package_reexports_have_importers():
    """A name a package's ``__init__`` re-exports is imported through the package by the
    code, not kept for compatibility or for tests alone."""
    import ast

    imported_from: dict[str, set[str]] = {}
    for path in _production_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported_from.setdefault(node.module, set()).update(a.name for a in node.names)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                imported_from.setdefault(node.value.id, set()).add(node.attr)
    stale = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(PACKAGE.parent).parts)
        importers = imported_from.get(package, set()) | imported_from.get(
            package.rsplit(".", 1)[-1], set()
        )
        stale += [
            f"{package}.{name} (line {line})"
            for name, line in _reexports(init)
            if name not in importers and not name.startswith("_")
        ]
    assert stale == []
