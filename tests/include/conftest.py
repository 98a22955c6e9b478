"""A small synthetic raw dataset and a warehouse built from it by a real ``dbt build``.

The dataset is shaped to exercise the reach models (day numbers count from DAY_ZERO, the
latest snapshot in raw is day LAST_DAY):

* ``us_one`` (US / Information Technology, x): 1000 + 10*day, a 2-day gap on days 20-21,
  and on day 10 an early API row (999) overridden by a later import row.
* ``us_two`` (US / Information Technology, x): 3000 + 5*day, missing days 10-19, so days
  10-16 are carried forward and 17-19 have no row (gap_fill_days = 7).
* ``de_one`` (DE / Industrials): x 500 + day and bluesky 200 + 2*day, every day.
* ``de_two`` (DE / Industrials, x): 50 followers on days 0-5 only, inactive afterwards.
* ``de_three`` (DE / Industrials): in the roster without any account.
* ``fr_one`` (FR / Financials, x): 700 every day, but day 30 was rate limited (no counts).

Every executive is synthetic (demo roster) except the two US ones; every count is synthetic
(a sandbox reply) except ``us_two``'s, so the US has one real executive with invented counts
and one wholly real. The survey rows ask ceo_clear_stand: a global figure and Germany's own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from slw_testing import shared_by_workers

from social_leadership.dbt_runner import DbtResult, run_dbt
from social_leadership.settings import Settings, load_settings
from social_leadership.warehouse import connect, transaction

DAY_ZERO = date(2025, 1, 1)
LAST_DAY = 34
GAP_FILL_DAYS = 7
LOADED_AT = datetime(2025, 2, 5, 3, 0, tzinfo=UTC)

# `dbt build` of the models, seeds and snapshot, without dbt's tests (data and unit): for a
# build whose tests the test does not need (the shared build runs them all once).
BUILD_WITHOUT_TESTS = ["build", "--exclude-resource-type", "test", "unit_test"]

EXECUTIVES = [
    ("us_one", "Ada Example", "CEO", "Example Systems", "US", "Information Technology"),
    ("us_two", "Ben Sample", "CEO", "Sample Software", "US", "Information Technology"),
    ("de_one", "Clara Muster", "CEO", "Muster Werke", "DE", "Industrials"),
    ("de_two", "Dieter Beispiel", "CEO", "Beispiel Maschinen", "DE", "Industrials"),
    ("de_three", "Eva Probe", "CEO", "Probe Anlagen", "DE", "Industrials"),
    ("fr_one", "Fleur Exemple", "CEO", "Exemple Banque", "FR", "Financials"),
]
REAL_EXECUTIVES = {"us_one", "us_two"}
REAL_COUNT_HANDLES = {"us_two_x"}

ACCOUNTS = [
    ("us_one", "x", "us_one_x"),
    ("us_two", "x", "us_two_x"),
    ("de_one", "x", "de_one_x"),
    ("de_one", "bluesky", "de-one.bsky.social"),
    ("de_two", "x", "de_two_x"),
    ("fr_one", "x", "fr_one_x"),
]


def day(number: int) -> date:
    return DAY_ZERO + timedelta(days=number)


def _observed_at(number: int, hour: int = 6) -> datetime:
    return datetime.combine(day(number), datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)


def _metric_rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []

    def ok(
        platform: str,
        handle: str,
        number: int,
        followers: int,
        *,
        hour: int = 6,
        source: str = "sandbox",
    ) -> None:
        rows.append(
            (
                platform,
                day(number),
                handle,
                f"id-{handle}",
                "ok",
                followers,
                followers // 10,
                number,
                _observed_at(number, hour),
                source,
                None,
                LOADED_AT,
                handle not in REAL_COUNT_HANDLES,
            )
        )

    for number in range(LAST_DAY + 1):
        if number not in (20, 21):
            ok("x", "us_one_x", number, 1000 + 10 * number, hour=9 if number == 10 else 6)
        if not 10 <= number <= 19:
            ok("x", "us_two_x", number, 3000 + 5 * number)
        ok("x", "de_one_x", number, 500 + number)
        ok("bluesky", "de-one.bsky.social", number, 200 + 2 * number)
        if number <= 5:
            ok("x", "de_two_x", number, 50)
        if number != 30:
            ok("x", "fr_one_x", number, 700)
    # An earlier API observation that the later import of the same day must override.
    ok("x", "us_one_x", 10, 999, hour=6, source="api")
    rows.append(
        (
            "x",
            day(30),
            "fr_one_x",
            None,
            "rate_limited",
            None,
            None,
            None,
            _observed_at(30),
            "api",
            None,
            LOADED_AT,
            True,
        )
    )
    return rows


SURVEY_ROWS = [
    (
        "trust_barometer",
        "Synthetic Trust Barometer",
        2019,
        "global",
        "ceo_clear_stand",
        "CEOs should take a clear stand",
        "share_pct",
        76.0,
        33000,
        0.6,
        True,
        "synthetic demo figure",
        "survey.csv",
        "0" * 64,
        LOADED_AT,
    ),
    (
        "trust_barometer",
        "Synthetic Trust Barometer",
        2019,
        "DE",
        "ceo_clear_stand",
        "CEOs should take a clear stand",
        "share_pct",
        63.0,
        1150,
        2.9,
        True,
        "synthetic demo figure",
        "survey.csv",
        "0" * 64,
        LOADED_AT,
    ),
]


def load_synthetic_raw(warehouse_path: Path) -> None:
    """Create the raw contract in a new warehouse file and fill it with the dataset above."""
    with connect(warehouse_path) as con, transaction(con):
        con.executemany(
            "insert into raw.roster_executives "
            "values (?, ?, ?, ?, ?, ?, ?, null, 'synthetic.csv', ?)",
            [(*row, row[0] not in REAL_EXECUTIVES, LOADED_AT) for row in EXECUTIVES],
        )
        con.executemany(
            "insert into raw.roster_accounts values (?, ?, ?, ?)",
            [(*row, LOADED_AT) for row in ACCOUNTS],
        )
        con.executemany(
            "insert into raw.platform_metrics values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _metric_rows(),
        )
        con.executemany(
            "insert into raw.survey_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            SURVEY_ROWS,
        )


def settings_for_data_dir(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Settings:
    """Point every SLW_* path at data_dir (the dbt project stays the repository's)."""
    for name in (
        "WAREHOUSE_PATH",
        "SERVING_PATH",
        "SERVING_PARQUET_DIR",
        "SERVING_LAKE_PATH",
        "SERVING_LAKE_DATA_DIR",
        "LOGS_DIR",
        "DBT_TARGET_DIR",
    ):
        monkeypatch.delenv(f"SLW_{name}", raising=False)
    monkeypatch.setenv("SLW_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SLW_GAP_FILL_DAYS", str(GAP_FILL_DAYS))
    settings = load_settings()
    settings.ensure_dirs()
    return settings


@dataclass(frozen=True)
class BuiltWarehouse:
    """What the tests get: settings of the built warehouse, dbt's result, dataset calendar."""

    settings: Settings
    build: DbtResult
    build_seconds: float
    last_day: int = LAST_DAY

    @staticmethod
    def day(number: int) -> date:
        return day(number)


def _build_synthetic(data_dir: Path) -> BuiltWarehouse:
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = settings_for_data_dir(monkeypatch, data_dir)
        load_synthetic_raw(settings.warehouse_path)
        started = datetime.now(tz=UTC)
        build = run_dbt(
            ["build"],
            settings,
            log_path=settings.logs_dir / "dbt_build.log",
            json_log_dir=settings.logs_dir / "dbt_json",
        )
        seconds = (datetime.now(tz=UTC) - started).total_seconds()
    return BuiltWarehouse(settings=settings, build=build, build_seconds=seconds)


def _dump_built(built: BuiltWarehouse, path: Path) -> None:
    path.write_text(
        json.dumps({"build": dataclasses.asdict(built.build), "seconds": built.build_seconds}),
        encoding="utf-8",
    )


def _load_built(data_dir: Path, path: Path) -> BuiltWarehouse:
    saved = json.loads(path.read_text(encoding="utf-8"))
    build = saved["build"]
    build["args"] = tuple(build["args"])
    build["failing_nodes"] = tuple(build["failing_nodes"])
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = settings_for_data_dir(monkeypatch, data_dir)
    return BuiltWarehouse(
        settings=settings, build=DbtResult(**build), build_seconds=saved["seconds"]
    )


def shared_build_root(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Where the workers of this run (pytest-xdist) share the synthetic build: their common
    temporary directory; None without workers."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return tmp_path_factory.getbasetemp().parent / "synthetic_build"


@pytest.fixture(scope="session")
def synthetic_built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    """One real ``dbt build`` per test run over the synthetic raw dataset, shared by the
    xdist workers (the first to need it builds it, the others wait for it).

    Tests only read it (read-only connections, from several processes at once) or copy it
    with ``copied_built_warehouse``. The SLW_* variables are restored before the first test
    runs: everything needed travels in ``settings``.
    """
    root = shared_build_root(tmp_path_factory)
    if root is None:
        return _build_synthetic(tmp_path_factory.mktemp("slw_data"))
    return shared_by_workers(root, _build_synthetic, _dump_built, _load_built)


@pytest.fixture
def copied_built_warehouse(
    synthetic_built_warehouse: BuiltWarehouse,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """A private copy of the built warehouse and of dbt's manifest (which publishing reads
    for keys and descriptions), for tests that corrupt or publish it."""
    settings = settings_for_data_dir(monkeypatch, tmp_path / "data")
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(synthetic_built_warehouse.settings.warehouse_path, settings.warehouse_path)
    manifest = synthetic_built_warehouse.settings.dbt_target_dir / "manifest.json"
    shutil.copyfile(manifest, settings.dbt_target_dir / "manifest.json")
    return settings
