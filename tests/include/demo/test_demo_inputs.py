"""The demo's inputs: synthetic history on the sandbox's curve, the synthetic survey
microdata, the roster generator, and their registration behind the ``SLW_DEMO`` switch."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from social_leadership import demo_hook
from social_leadership.demo.follower_history import demo_history_table, seed_demo_history
from social_leadership.demo.inputs import INPUTS
from social_leadership.demo.microdata import DEMO_MICRODATA_FILE, build_frame
from social_leadership.demo.synthetic import synthetic_metrics
from social_leadership.roster import Account, Executive, Roster
from social_leadership.settings import REPO_ROOT, load_settings
from social_leadership.surveys import ingest_folder
from social_leadership.surveys.ingest import BUNDLED_PUBLISHED_FILE
from social_leadership.warehouse import ensure_schema

KEY = b"demo-inputs-test-key-0123456789"
TODAY = date(2026, 3, 2)
ROSTER = Roster(
    executives=[
        Executive("satya", "S", "CEO", "Microsoft", "US", "Information Technology", False),
        Executive("joe", "J", "Chair", "Siemens Energy", "DE", "Industrials", False),
    ],
    accounts=[
        Account("satya", "linkedin", "satyanadella"),
        Account("joe", "x", "JoeKaeser"),
        Account("joe", "bluesky", "joe.bsky.social"),
    ],
)


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(connection)
    yield connection
    connection.close()


def test_demo_history_continues_into_the_sandbox_curve_without_a_jump() -> None:
    last_day = TODAY - timedelta(days=1)
    table = demo_history_table(ROSTER, last_day, days=30)

    rows = table.to_pylist()
    assert len(rows) == 30 * 3
    joe_x = [r for r in rows if r["platform"] == "x"]
    assert joe_x[-1]["date"] == last_day
    assert (joe_x[-1]["followers"], joe_x[-1]["following"], joe_x[-1]["posts"]) == (
        synthetic_metrics("x", "JoeKaeser", last_day)
    )
    today = synthetic_metrics("x", "JoeKaeser", TODAY)[0]
    assert abs(today - joe_x[-1]["followers"]) <= 0.01 * today


def test_demo_history_is_seeded_once(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    first = seed_demo_history(con, ROSTER, tmp_path / "demo", tmp_path / "q", today=TODAY)
    second = seed_demo_history(con, ROSTER, tmp_path / "demo", tmp_path / "q", today=TODAY)

    assert first is not None
    assert (first.rows_loaded, first.rows_rejected) == (3 * 730, 0)
    assert first.last_date == TODAY - timedelta(days=1)
    assert second is None
    assert con.execute("select count(*) from raw.imported_metrics").fetchone() == (3 * 730,)
    # Invented counts, real executives' included: the import says so at the source.
    assert con.execute("select is_synthetic from raw.history_imports").fetchall() == [(True,)]


def test_demo_microdata_is_synthetic_deterministic_and_loads_beside_the_bundled_figures(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    bundled = pd.read_parquet(DEMO_MICRODATA_FILE)
    pd.testing.assert_frame_equal(bundled, build_frame())
    per_country = bundled.groupby("country").size()
    assert len(per_country) >= 10
    assert set(per_country) == {1150}

    outcomes = ingest_folder(
        con,
        tmp_path / "none",
        tmp_path / "q",
        extra_bundled=INPUTS.survey_files(),
        pseudonym_key=KEY,
    )

    assert [(o.file, o.status) for o in outcomes] == [
        (BUNDLED_PUBLISHED_FILE.name, "loaded"),
        (DEMO_MICRODATA_FILE.name, "loaded"),
    ]
    assert DEMO_MICRODATA_FILE.exists()  # never moved
    assert con.execute("select bool_and(is_synthetic) from raw.survey_questions").fetchone() == (
        True,
    )


def test_the_generators_reproduce_the_bundled_files(tmp_path: Path) -> None:
    from social_leadership.demo.microdata import main as write_microdata
    from social_leadership.demo.roster import main as write_roster

    assert write_microdata(["--out", str(tmp_path / DEMO_MICRODATA_FILE.name)]) == 0
    sidecar = DEMO_MICRODATA_FILE.name.removesuffix(".parquet") + ".survey.json"
    assert (tmp_path / sidecar).read_bytes() == (DEMO_MICRODATA_FILE.parent / sidecar).read_bytes()
    assert write_roster(["--out", str(tmp_path / "executives.csv")]) == 0
    bundled_roster = REPO_ROOT / "include" / "data" / "roster" / "executives.csv"
    assert (tmp_path / "executives.csv").read_bytes() == bundled_roster.read_bytes()


def test_the_switch_loads_the_inputs_the_package_registers() -> None:
    settings = load_settings()
    on = dataclasses.replace(settings, demo=True)
    off = dataclasses.replace(settings, demo=False)

    assert demo_hook.demo_inputs(on) is INPUTS
    assert demo_hook.demo_inputs(off) is None
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    registered = pyproject["project"]["entry-points"][demo_hook.ENTRY_POINT_GROUP]
    assert registered == {demo_hook.ENTRY_POINT_NAME: "social_leadership.demo.inputs:INPUTS"}


def test_the_switch_on_without_an_installed_demo_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on = dataclasses.replace(load_settings(), demo=True)
    # As in an environment where the package was never installed: no entry point at all.
    monkeypatch.setattr(demo_hook, "entry_points", lambda **_: ())

    with pytest.raises(demo_hook.DemoNotInstalledError, match="SLW_DEMO is on, but no demo"):
        demo_hook.demo_inputs(on)
