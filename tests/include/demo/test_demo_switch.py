"""The demo switch ``SLW_DEMO``: off (the default, and the deployed setup) no synthetic
survey microdata and no synthetic history reach the warehouse; on (``slw run``) they do.
Production code never imports the demo or the sandbox: it reaches the demo only through
the switch (:mod:`social_leadership.demo_hook`)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import duckdb
import pytest

from social_leadership.dbt_runner import run_dbt
from social_leadership.settings import REPO_ROOT, Settings, SettingsError, load_settings

PACKAGE_DIR = REPO_ROOT / "include" / "social_leadership"
FORBIDDEN = ("social_leadership.demo", "social_leadership.sandbox")
# Not production: the demo itself, the sandbox (a stand-in for the platform APIs, which
# serves the demo's synthetic counts), and the command line, whose `slw run` and
# `slw sandbox` are the demo's and the sandbox's doors.
NOT_PRODUCTION = ("demo", "sandbox", "cli.py", "__main__.py")
DEMO_SOURCE = "synthetic_trust_demo"
DEMO_RESPONDENTS = 12 * 1150


def _production_modules() -> list[Path]:
    package = [
        path
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if path.relative_to(PACKAGE_DIR).parts[0] not in NOT_PRODUCTION
    ]
    return sorted((REPO_ROOT / "dags").glob("*.py")) + package


def _forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names (at any depth, lazy imports included), and
    ``importlib.import_module`` / ``__import__`` of a literal name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            # `from social_leadership import demo` names the subpackage as an attribute.
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in ("import_module", "__import__") and isinstance(first, ast.Constant):
                found.append((node.lineno, str(first.value)))
    return found


def test_production_code_never_imports_the_demo_or_the_sandbox() -> None:
    modules = _production_modules()
    assert PACKAGE_DIR / "tasks.py" in modules
    assert PACKAGE_DIR / "follower_imports.py" in modules
    assert PACKAGE_DIR / "surveys" / "ingest.py" in modules
    assert REPO_ROOT / "dags" / "platform_metrics.py" in modules
    offending = [
        f"{path.relative_to(REPO_ROOT)}:{line}: imports {module}"
        for path in modules
        for line, module in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        if _forbidden(module)
    ]
    assert offending == []


def test_the_import_rule_sees_lazy_and_attribute_imports() -> None:
    tree = ast.parse(
        "def f():\n"
        "    from social_leadership import demo\n"
        "    import social_leadership.sandbox.server\n"
        "    importlib.import_module('social_leadership.demo.run')\n"
        "from social_leadership import demo_hook\n"
    )
    flagged = [module for _, module in _imported_modules(tree) if _forbidden(module)]
    assert flagged == [
        "social_leadership.demo",
        "social_leadership.sandbox.server",
        "social_leadership.demo.run",
    ]


# --- the switch ------------------------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("SLW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_the_switch_is_off_by_default_and_typed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().demo is False
    for text, expected in [("1", True), ("true", True), ("on", True), ("0", False), ("", False)]:
        monkeypatch.setenv("SLW_DEMO", text)
        assert load_settings().demo is expected, text
    monkeypatch.setenv("SLW_DEMO", "maybe")
    with pytest.raises(SettingsError, match="SLW_DEMO='maybe': not allowed, must be true or"):
        load_settings()


def _demo_rows(settings: Settings) -> dict[str, int]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        counts = {
            "synthetic questions": "select count(*) from raw.survey_questions where is_synthetic",
            "respondents": "select count(*) from raw.survey_respondent_answers",
            "published figures": "select count(*) from raw.survey_results",
            "imported history": "select count(*) from raw.imported_metrics",
        }
        return {name: con.execute(sql).fetchone()[0] for name, sql in counts.items()}


def _intake(settings: Settings) -> tuple[dict, dict]:
    """The survey_ingest and platform_metrics intake task bodies, as the DAGs run them."""
    from social_leadership.tasks import import_history_task, ingest_surveys_task, load_roster_task

    surveys = ingest_surveys_task()
    load_roster_task()  # the bundled (demo) roster: the default
    history = import_history_task()
    return surveys, history


@pytest.mark.dbt
def test_a_warehouse_built_with_the_switch_off_has_no_synthetic_survey_rows(
    clean_env: Path,
) -> None:
    settings = load_settings()
    settings.ensure_dirs()

    surveys, history = _intake(settings)
    build = run_dbt(
        ["build", "--select", "+fct_survey_results"],
        settings,
        log_path=settings.logs_dir / "dbt-build.log",
    )

    assert build.returncode == 0, build.output_tail
    assert (surveys["respondents_loaded"], history["rows_loaded"]) == (0, 0)
    rows = _demo_rows(settings)
    assert rows["synthetic questions"] == rows["respondents"] == rows["imported history"] == 0
    # The bundled published figures are real data: they load whatever the switch says.
    assert rows["published figures"] == surveys["published_rows_loaded"] > 0
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        marts = con.execute(
            "select count(*) filter (where is_synthetic), count(*) from marts.fct_survey_results"
        ).fetchone()
    assert marts[0] == 0
    assert marts[1] > 0
    assert not (settings.landing_dir / "history" / "demo").exists()


def test_with_the_switch_on_the_demo_microdata_and_history_are_loaded(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLW_DEMO", "1")
    settings = load_settings()
    settings.ensure_dirs()

    surveys, history = _intake(settings)

    assert surveys["respondents_loaded"] == DEMO_RESPONDENTS
    assert history["rows_loaded"] > 0
    rows = _demo_rows(settings)
    assert rows["respondents"] == DEMO_RESPONDENTS
    assert rows["synthetic questions"] == 3
    assert rows["imported history"] == history["rows_loaded"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        sources = con.execute(
            "select distinct source_id from raw.survey_respondent_answers"
        ).fetchall()
    assert sources == [(DEMO_SOURCE,)]
    assert list((settings.landing_dir / "history" / "demo").glob("demo-history-*.parquet"))


def test_a_demo_run_crossing_midnight_names_the_week_its_report_covers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make run` started on a Sunday before midnight (UTC) and ended on Monday: it printed
    the new week's report paths, a folder the run never wrote."""
    from datetime import date

    from social_leadership.demo import run
    from social_leadership.reports.data import ReportWeek

    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    weeks = iter([ReportWeek(date(2026, 12, 6)), ReportWeek(date(2026, 12, 7))])
    monkeypatch.setattr(run, "report_week", lambda: next(weeks))
    reported: list[ReportWeek] = []

    def pipeline(settings, airflow_home, *, week=None, **_):
        reported.append(week or run.report_week())
        return {}

    monkeypatch.setattr(run, "run_pipeline", pipeline)
    monkeypatch.setattr(run, "build_summary", lambda settings: "summary")

    assert run.main() == 0

    [week] = reported
    assert f"Weekly report {week.heading}:" in capsys.readouterr().out
    assert week.end == date(2026, 12, 6)


def _no_pipeline(*_, **__):
    raise AssertionError("slw run ran the pipeline")


def test_slw_run_refuses_a_roster_of_one_s_own(monkeypatch, tmp_path, capsys) -> None:
    # It turned SLW_DEMO on whatever the roster: the sandbox's invented counts of the
    # roster's real people went into that roster's warehouse, exit 0.
    from social_leadership.demo import run

    bundled = REPO_ROOT / "include" / "data" / "roster" / "executives.csv"
    # One's own elsewhere, and one's own written where the demo's is (README's place).
    edited = tmp_path / "checkout" / "include" / "data" / "roster" / "executives.csv"
    edited.parent.mkdir(parents=True)
    edited.write_text(
        bundled.read_text(encoding="utf-8") + "me,Me,CEO,Me Co,DE,Energy,false,,,,,,,,,\n"
    )
    for roster in (tmp_path / "our_roster.csv", edited):
        if not roster.exists():
            roster.write_text("executive_id,full_name\n", encoding="utf-8")
        monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("SLW_ROSTER_PATH", str(roster))
        monkeypatch.setattr(run, "run_pipeline", _no_pipeline)

        assert run.main() == 2

        said = capsys.readouterr().err
        assert f"error: the roster {roster} is not the bundled demo roster" in said
        assert "fix: for the demo, unset SLW_ROSTER_PATH" in said


def test_slw_run_refuses_a_warehouse_of_one_s_own_roster(monkeypatch, tmp_path, capsys) -> None:
    from datetime import UTC, datetime

    from social_leadership.demo import run
    from social_leadership.settings import load_settings
    from social_leadership.warehouse import connect

    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SLW_ROSTER_PATH", raising=False)
    monkeypatch.setattr(run, "run_pipeline", _no_pipeline)
    settings = load_settings()
    settings.ensure_dirs()

    def store_roster(roster_file: str) -> None:
        with connect(settings.warehouse_path) as con:
            con.execute("delete from raw.roster_executives")
            con.execute(
                "insert into raw.roster_executives values "
                "('e1', 'E One', 'CEO', 'Co', 'DE', 'Energy', false, null, ?, ?)",
                [roster_file, datetime(2026, 3, 1, 6, tzinfo=UTC)],
            )

    # A demo warehouse of any age (its rows' synthetic flag false before the flag existed).
    store_roster("/old/checkout/include/data/roster/executives.csv")
    assert run.refusal(settings) is None
    store_roster("/srv/slw/our_roster.csv")

    assert run.main() == 2

    said = capsys.readouterr().err
    assert (
        f"error: the warehouse in {settings.data_dir} holds the roster of "
        "/srv/slw/our_roster.csv, not the demo's"
    ) in said
    assert "fix: run the demo in a data folder of its own" in said

    # A copy of the demo roster stored from elsewhere is the demo's still.
    copy = tmp_path / "copy" / "roster.csv"
    copy.parent.mkdir()
    copy.write_bytes((REPO_ROOT / "include" / "data" / "roster" / "executives.csv").read_bytes())
    store_roster(str(copy))
    assert run.refusal(settings) is None

    # Counts a real API answered (the demo roster tracked with real connections, as a
    # deployment does without SLW_ROSTER_PATH): the run would replace the day's with the
    # sandbox's. A demo warehouse (its synthetic history imported) is the demo's whatever
    # its rows' flag says: the upgrade flagged its rows from before the flag real.
    loaded_at = datetime(2026, 12, 5, 6, tzinfo=UTC)
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into raw.platform_metrics values "
            "('x', ?, 'real_x', 'id-real_x', 'ok', 1000, 10, 5, ?, 'api', null, ?, false)",
            [loaded_at.date(), loaded_at, loaded_at],
        )
    said = run.refusal(settings) or ""
    assert "holds 1 platform count(s) read from real APIs: slw run would" in said
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into raw.history_imports values (1, ?, 1, 1, 0, ?, true)",
            [str(settings.landing_dir / "history" / "demo" / "demo-history-2026-12-05.parquet"),
             loaded_at],
        )  # fmt: skip
    assert run.refusal(settings) is None

    # In use by another process: what it holds cannot be read, so the run is refused.
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(settings.warehouse_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        said = run.refusal(settings) or ""
    finally:
        holder.communicate("", timeout=60)
    assert f"error: the warehouse in {settings.data_dir} is in use by another process" in said


def test_slw_run_runs_on_the_demo_roster_and_a_demo_warehouse(monkeypatch, tmp_path) -> None:
    from social_leadership.demo import run
    from social_leadership.settings import load_settings

    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SLW_ROSTER_PATH", raising=False)

    assert run.refusal(load_settings()) is None


def test_slw_run_runs_on_a_lake_not_made_yet(monkeypatch, tmp_path) -> None:
    # README's own command (SLW_WAREHOUSE_BACKEND=ducklake make run on a new folder) was
    # refused: the check opened a catalog that was not there yet.
    from social_leadership.demo import run
    from social_leadership.settings import load_settings

    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data-lake"))
    monkeypatch.setenv("SLW_WAREHOUSE_BACKEND", "ducklake")
    monkeypatch.delenv("SLW_ROSTER_PATH", raising=False)

    assert run.refusal(load_settings()) is None
