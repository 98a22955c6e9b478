"""Helpers shared by the benchmarks."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "include"))

from social_leadership.reference import GICS_SECTORS
from social_leadership.settings import Settings


def report(
    name: str,
    ratio: float,
    bound: float,
    *,
    lower_is_better: bool = True,
    limits_held: bool = True,
) -> int:
    """Print the BENCH line (always last) and return the process exit code.

    ``limits_held=False`` (a bench's other limit, such as peak memory, was exceeded) fails
    the bench whatever the ratio; the bench prints which limit beforehand.
    """
    ok = (ratio <= bound if lower_is_better else ratio >= bound) and limits_held
    print(f"BENCH {name} ratio={ratio:.3f} bound={bound} {'ok' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


def median(values: list[float]) -> float:
    return statistics.median(values)


# The bench roster and its synthetic daily counts (incremental_build, dbt_in_airflow,
# publish_growth): one generator, so the benchmarks compare like with like.
EXECUTIVES = 2_000
PLATFORMS = ("x", "bluesky", "mastodon", "youtube", "linkedin")
LONG_DAYS = 3 * 365
SHORT_DAYS = 30
LAST_HISTORY_DAY = date(2026, 6, 30)

COUNTRIES = ("US", "DE", "GB", "FR", "JP", "CN", "IN", "CA", "IT", "ES")
SECTORS = GICS_SECTORS


def _list_literal(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


def create_raw(warehouse_path: Path, days: int) -> None:
    from social_leadership.warehouse import connect

    first_day = LAST_HISTORY_DAY - timedelta(days=days - 1)
    with connect(warehouse_path) as con:
        con.execute(
            f"""
            insert into raw.roster_executives
            select
                'exec-' || i, 'Executive ' || i, 'CEO', 'Company ' || (i // 2),
                {_list_literal(COUNTRIES)}[1 + i % {len(COUNTRIES)}],
                {_list_literal(SECTORS)}[1 + (i // 3) % {len(SECTORS)}],
                true, null, 'bench.csv', timestamptz '{first_day} 03:00:00+00'
            from range({EXECUTIVES}) as t (i)
            """
        )
        con.execute(
            f"""
            insert into raw.roster_accounts
            select 'exec-' || i, platform, platform || '-' || i,
                timestamptz '{first_day} 03:00:00+00'
            from range({EXECUTIVES}) as t (i)
            cross join unnest({_list_literal(PLATFORMS)}) as p (platform)
            """
        )
        add_days(con, first_day, days)


# The day the bench's follower counts start growing from.
GROWTH_EPOCH = date(2020, 1, 1)


def add_days(con: object, first_day: date, days: int) -> None:
    """Observations for every account on [first_day, first_day + days), ~4% days missed.
    Counts grow with the day itself, not its place in the batch: each new day added alone
    goes on from the day before (the same counts day after day read as a frozen cache)."""
    since = (first_day - GROWTH_EPOCH).days
    con.execute(  # type: ignore[attr-defined]
        f"""
        insert into raw.platform_metrics
        select
            accounts.platform,
            cast(date '{first_day}' + cast(d as integer) as date),
            accounts.account_handle,
            null,
            'ok',
            1000 + hash(accounts.account_handle) % 100000
                + ({since} + d) * (hash(accounts.account_handle) % 13),
            100,
            d,
            cast(date '{first_day}' + cast(d as integer) as timestamp) + interval 6 hour,
            'api',
            null,
            cast(date '{first_day}' + cast(d as integer) as timestamp) + interval 7 hour,
            false
        from raw.roster_accounts as accounts
        cross join range({days}) as t (d)
        where hash(accounts.account_handle || d) % 25 != 0
        """
    )


def row_counts(warehouse_path: Path) -> str:
    import duckdb

    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        counts = con.execute(
            """
            select
                (select count(*) from raw.platform_metrics),
                (select count(*) from marts.fct_executive_reach_daily),
                (select count(*) from marts.fct_reach_by_country_sector_daily),
                (select count(*) from marts.dim_executive)
            """
        ).fetchone()
    assert counts is not None
    return (
        f"raw.platform_metrics {counts[0]:,}, fct_executive_reach_daily {counts[1]:,}, "
        f"fct_reach_by_country_sector_daily {counts[2]:,}, dim_executive {counts[3]:,}"
    )


def generate_warehouse(
    root: Path, label: str, days: int, build: Callable[[Settings], object]
) -> Settings:
    """A warehouse in ``root / label`` with the bench roster and ``days`` of counts, built
    once with ``build``; prints how long generating and building took."""
    from social_leadership.settings import load_settings

    os.environ["SLW_DATA_DIR"] = str(root / label)
    settings = load_settings()
    settings.ensure_dirs()
    started = time.perf_counter()
    create_raw(settings.warehouse_path, days)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    build(settings)
    print(
        f"{label}: raw generated in {generated:.1f}s, full build "
        f"{time.perf_counter() - started:.1f}s",
        flush=True,
    )
    return settings


# Set by bench/run.py for one run of several benchmarks: the built warehouses are kept
# there, so the benchmarks that start from the same ones generate and build them once.
CACHE_VARIABLE = "SLW_BENCH_CACHE_DIR"


BENCH_WAREHOUSE_DAYS = {"3y": LONG_DAYS, "30d": SHORT_DAYS}


# The first (full) build of a bench warehouse is setup, never timed: DuckDB may use more
# memory than SLW_DUCKDB_MEMORY_LIMIT's worker-sized default there, so it does not spill
# the 3-year history to disk (the same tables, minutes sooner). Every timed build and every
# measured peak runs with the settings' own limit.
FIRST_BUILD_MEMORY_LIMIT = "6GB"
# The first build makes the tables and skips dbt's tests (data and unit): they check the
# generated rows, which the timed daily builds test again, and cost the 3-year first build
# about 13 s of 66-88 s (2026-12-03). dbt still writes the whole manifest (publish reads it).
FIRST_BUILD_ARGS = ["build", "--exclude-resource-type", "test", "unit_test"]


def first_build(settings: Settings) -> None:
    """``dbt build`` of a new bench warehouse without dbt's tests
    (:data:`FIRST_BUILD_ARGS`), within :data:`FIRST_BUILD_MEMORY_LIMIT`."""
    from social_leadership.dbt_runner import run_dbt

    run_dbt(
        FIRST_BUILD_ARGS,
        dataclasses.replace(settings, duckdb_memory_limit=FIRST_BUILD_MEMORY_LIMIT),
    )


def build_bench_warehouses(
    root: Path, labels: tuple[str, ...] = tuple(BENCH_WAREHOUSE_DAYS)
) -> dict[str, Settings]:
    """The 3-year (``3y``) and 30-day (``30d``) warehouses under ``root`` (or those of
    ``labels``), built in full with ``dbt build``, each in its own ``SLW_DATA_DIR`` (copied
    from the run's cache when it holds them: bench/_prepare.py builds them first)."""
    from social_leadership.dbt_runner import run_dbt

    clear_path_settings()
    cache = _cache_dir()
    warehouses = {}
    for label in labels:
        days = BENCH_WAREHOUSE_DAYS[label]
        settings = _from_cache(cache, label, root)
        if settings is None:
            settings = generate_warehouse(root, label, days, first_build)
            # With the settings' own memory limit, untimed and not in the build's printed
            # time: the limit is part of the profile that dbt's saved parse is kept for, so
            # the first timed build (here or in a copy) would parse the project otherwise.
            run_dbt(["parse"], settings)
            _to_cache(cache, label, root)
        warehouses[label] = settings
    return warehouses


def record_initial_build(settings: Settings) -> None:
    """Record a bench warehouse's first (full) build in ``audit.dbt_builds``, as
    ``warehouse_build`` records its builds: it ran outside the pipeline (or was copied from
    the cache), and without the record the pipeline's next build plans a full refresh."""
    from datetime import UTC, datetime

    from social_leadership.dbt_runner import BuildPlan, DbtResult, record_build
    from social_leadership.warehouse import connect

    with connect(settings.warehouse_path) as con:
        record_build(
            con,
            "bench-initial",
            BuildPlan(True, "bench: initial full build"),
            datetime.now(UTC),
            DbtResult(args=("build",), returncode=0),
        )


def published_bench_warehouses(
    root: Path, labels: tuple[str, ...] = tuple(BENCH_WAREHOUSE_DAYS)
) -> dict[str, Settings]:
    """:func:`build_bench_warehouses` (those of ``labels``), each then gated and published
    once in full, as the pipeline does after a first build (untimed, run id
    ``bench-initial``, each in a fresh process), and published once more (run id
    ``bench-settled``, nothing changed): a pipeline that has published twice keeps the file
    before last as the spare that its daily publish updates in place (serving.py,
    ``SLW_SERVING_FILE_SPARE``), so every timed round is a publish as it runs day after day.
    The published folders are cached too, each apart (bench/_prepare.py makes them side by
    side), so a later benchmark that starts from them skips the build, the full gate and
    the publishes."""
    from social_leadership.serving_lake import follow_moved_data_dir

    clear_path_settings()
    cache = _cache_dir()
    published = {}
    for label in labels:
        settings = _from_cache(cache, published_key(label), root)
        if settings is not None:
            # The catalog names the data folder it was published in (the cache's source).
            follow_moved_data_dir(settings.serving_lake_path, settings.serving_lake_data_dir)
            published[label] = settings
            continue
        settings = build_bench_warehouses(root, labels=(label,))[label]
        started = time.perf_counter()
        gate = gate_in_child(settings.data_dir, "bench-initial")
        gated = time.perf_counter() - started
        first = publish_in_child(settings.data_dir, "bench-initial")
        settled = publish_in_child(settings.data_dir, "bench-settled")
        print(
            f"{label}: first (full) gate {gated:.1f}s (peak "
            f"{gate['peak_bytes'] / 2**20:,.0f} MiB), publish "
            f"{first['seconds']:.1f}s, a second publish (the spare kept) "
            f"{settled['seconds']:.1f}s",
            flush=True,
        )
        # The gate's record first: a published folder in the cache always has one.
        _FIRST_GATES[label] = gate
        if cache is not None:
            (cache / first_gate_file(label)).write_text(json.dumps(gate), encoding="utf-8")
        _to_cache(cache, published_key(label), root, source=label)
        published[label] = settings
    return published


# What the first gate of each published bench warehouse validated and its peak memory
# (bench daily_memory's whole validation): kept in the run's cache with the published
# folders (a file per warehouse), and here for a run without a cache.
_FIRST_GATES: dict[str, dict[str, Any]] = {}


def first_gate_file(label: str) -> str:
    return f"first-gate-{label}.json"


# The run's cache holds each bench warehouse as built (key: its label) and as gated and
# published twice (this suffix added).
PUBLISHED_SUFFIX = "-published"


def published_key(label: str) -> str:
    """The cache key of the ``label`` warehouse gated and published twice."""
    return label + PUBLISHED_SUFFIX


def first_gates() -> dict[str, dict[str, Any]]:
    """Per warehouse label, the first gate's ``validated`` and ``peak_bytes``, as
    :func:`published_bench_warehouses` measured them in this process or this run."""
    cache = _cache_dir()
    if cache is not None:
        for label in BENCH_WAREHOUSE_DAYS:
            path = cache / first_gate_file(label)
            if label not in _FIRST_GATES and path.is_file():
                _FIRST_GATES[label] = json.loads(path.read_text(encoding="utf-8"))
    return dict(_FIRST_GATES)


def _cache_dir() -> Path | None:
    return Path(os.environ[CACHE_VARIABLE]) if os.environ.get(CACHE_VARIABLE) else None


def _from_cache(cache: Path | None, key: str, root: Path) -> Settings | None:
    """The cached folder ``key`` copied to ``root / <label>`` (its settings), or None. dbt's
    saved parse comes with it (made with the settings' own memory limit, see
    :func:`build_bench_warehouses`) and stays valid: the profile names the warehouse relative to the
    data folder (dbt_runner.dbt_env)."""
    from social_leadership.settings import load_settings

    cached = cache / key if cache is not None else None
    if cached is None or not cached.is_dir():
        return None
    label = key.removesuffix(PUBLISHED_SUFFIX)
    shutil.copytree(cached, root / label, symlinks=True)
    os.environ["SLW_DATA_DIR"] = str(root / label)
    settings = load_settings()
    print(
        f"{label}: {'published' if key != label else 'built'} warehouse copied from "
        "this run's cache",
        flush=True,
    )
    return settings


def _to_cache(cache: Path | None, key: str, root: Path, *, source: str | None = None) -> None:
    """Copy ``root / (source or key)`` to the run's cache as ``key``: under a temporary name,
    then renamed, so a process that dies mid-copy leaves no folder that looks whole."""
    if cache is None or (cache / key).exists():
        return
    partial = cache / f".{key}.partial-{os.getpid()}"
    shutil.copytree(root / (source or key), partial, symlinks=True)
    partial.rename(cache / key)


def cached(key: str) -> bool:
    """Whether the run's cache holds ``key`` (a folder or a file)."""
    cache = _cache_dir()
    return cache is not None and (cache / key).exists()


INCLUDE = Path(__file__).resolve().parent.parent / "include"

# Given to every child: peak_bytes(), the child's own peak resident memory, imports
# included. VmHWM, not ru_maxrss: Linux carries the parent's peak over to the child across
# exec, so a child of a bench that ran dbt in-process reported the parent's peak.
CHILD_PRELUDE = """
def peak_bytes():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
"""

# Timed inside the child, so interpreter start-up and imports are not counted.
_PUBLISH_CHILD = """
import json, sys, time
from social_leadership.serving import publish
from social_leadership.settings import load_settings
settings = load_settings()
started = time.perf_counter()
publication = publish(settings, sys.argv[1], synthetic=False)
seconds = time.perf_counter() - started
print(json.dumps({
    "seconds": seconds,
    "copy_seconds": publication.serving_file_copy_seconds,
    "from_spare": publication.serving_file_from_spare,
    "peak_bytes": peak_bytes(),
}))
"""


def run_child(
    code: str, data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``code`` in a fresh Python process on ``data_dir`` (``env``: more variables);
    its last stdout line is JSON. The code can call ``peak_bytes()``."""
    env = {
        **os.environ,
        "SLW_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(INCLUDE),
        # The setting's default, whatever the caller's environment says: a daily gate
        # validates the days rebuilt, the first gate of a warehouse everything.
        "SLW_QUALITY_FULL_EVERY_DAYS": str(FULL_EVERY_DAYS),
        **(env or {}),
    }
    completed = subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child process failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def publish_in_child(data_dir: Path, run_id: str) -> dict[str, Any]:
    """Publish the warehouse of ``data_dir`` in a fresh process, as an Airflow task would:
    the publish's seconds, those of its copy of the last single file (None: no copy),
    whether it updated the spare instead (``from_spare``) and the process's peak memory."""
    return run_child(_PUBLISH_CHILD, data_dir, run_id)


def clear_path_settings() -> None:
    """Drop the settings that would point every bench warehouse (a data folder each, the
    setup's side by side) at one file or folder: every one whose default is in the data
    folder."""
    from social_leadership.settings import DATA_DIR_SETTINGS, env_variable

    for name in DATA_DIR_SETTINGS:
        os.environ.pop(env_variable(name), None)


# The demo pipeline's first run on a new data folder (its first build, a full refresh, and
# the demo history seeded): the first step of dbt_in_airflow and pipeline_overhead's
# warm-up. Made once per `make bench` (bench/_prepare.py); the benchmarks copy it.
DEMO_RUN = "demo-run"


def demo_pipeline_run(root: Path) -> tuple[Settings, Path]:
    """The settings and Airflow home of the demo pipeline run once in ``root / DEMO_RUN``
    (data folder ``data``, Airflow home ``airflow_home``), copied from the run's cache
    when it is there (bench/_prepare.py makes it first). Cached only when its Airflow home has no
    airflow.cfg (every path then comes from AIRFLOW_HOME when Airflow starts); a copy's
    serving catalog is told where its data folder now is (dbt's saved parse stays valid:
    see :func:`_from_cache`), so the copy runs as the original would."""
    from social_leadership.demo.run import run_pipeline
    from social_leadership.serving_lake import follow_moved_data_dir
    from social_leadership.settings import load_settings

    clear_path_settings()
    folder = root / DEMO_RUN
    airflow_home = folder / "airflow_home"
    cache = _cache_dir()
    copied = cache is not None and (cache / DEMO_RUN).is_dir()
    if copied:
        shutil.copytree(cache / DEMO_RUN, folder, symlinks=True)
    os.environ["SLW_DATA_DIR"] = str(folder / "data")
    settings = load_settings()
    if copied:
        follow_moved_data_dir(settings.serving_lake_path, settings.serving_lake_data_dir)
        print("demo: pipeline run copied from this run's cache", flush=True)
        return settings, airflow_home
    started = time.perf_counter()
    run_pipeline(settings, airflow_home, echo=False)
    print(f"demo: pipeline run in {time.perf_counter() - started:.1f}s", flush=True)
    if (airflow_home / "airflow.cfg").exists():
        print("demo: not cached, its airflow.cfg would name this folder", flush=True)
    else:
        _to_cache(cache, DEMO_RUN, root)
    return settings, airflow_home


def add_next_day(settings: Settings, day: date) -> None:
    """One new day of counts for every account (the daily build is the caller's)."""
    from social_leadership.warehouse import connect

    with connect(settings.warehouse_path) as con:
        add_days(con, day, 1)


# The quality gate, in a fresh process as its Airflow task runs it (imports included):
# what it validated (whole tables or the days rebuilt) and the process's peak memory.
_GATE_CHILD = """
import json, sys
from social_leadership.docs_site import pending_gx_dir
from social_leadership.quality import check_marts
from social_leadership.settings import load_settings
settings = load_settings()
report = check_marts(settings, sys.argv[1], data_docs_dir=pending_gx_dir(settings, sys.argv[1]))
print(json.dumps({
    "checks": len(report.results),
    "failed": [c.table_name for c in report.failed],
    "validated": report.validated,
    "peak_bytes": peak_bytes(),
}))
"""

# quality_full_every_days' default (the weekly whole validation), read from the settings'
# definition so the benches follow it.
FULL_EVERY_DAYS = next(
    f.default for f in dataclasses.fields(Settings) if f.name == "quality_full_every_days"
)

# dbt as the venv's `dbt` script runs it, recording its own peak in BENCH_DBT_PEAK_FILE.
DBT_WRAPPER = (
    CHILD_PRELUDE
    + """
import atexit, os, sys
def _record():
    with open(os.environ["BENCH_DBT_PEAK_FILE"], "w", encoding="ascii") as out:
        out.write(str(peak_bytes()))
atexit.register(_record)
from dbt.cli.main import cli
sys.argv[0] = "dbt"
sys.exit(cli())
"""
)

# The daily `dbt build`, in a fresh process as its Airflow task runs it, dbt in its own
# process below (through DBT_WRAPPER): the build's own seconds (run_dbt, as when the bench
# called it itself), the task process's peak memory and dbt's.
_BUILD_CHILD = """
import json, os, sys, tempfile, time
from social_leadership import dbt_runner
from social_leadership.settings import load_settings
settings = load_settings()
dbt_runner.dbt_command = lambda: [sys.executable, "-c", sys.argv[1]]
with tempfile.TemporaryDirectory() as tmp:
    os.environ["BENCH_DBT_PEAK_FILE"] = peak_file = os.path.join(tmp, "peak")
    started = time.perf_counter()
    dbt_runner.run_dbt(["build"], settings)
    seconds = time.perf_counter() - started
    with open(peak_file, encoding="ascii") as recorded:
        dbt_peak = int(recorded.read())
print(json.dumps({"seconds": seconds, "dbt_peak_bytes": dbt_peak, "peak_bytes": peak_bytes()}))
"""


def build_in_child(data_dir: Path) -> dict[str, Any]:
    """The daily ``dbt build`` of ``data_dir`` in a fresh process (see ``_BUILD_CHILD``)."""
    return run_child(_BUILD_CHILD, data_dir, DBT_WRAPPER)


# The bench warehouses hold no survey data: the gate fails the survey marts (empty), which
# the publish, run directly, does not mind; any other failure stops the bench.
EXPECTED_GATE_FAILURES = frozenset({"fct_survey_results", "fct_country_expectations_yearly"})


def gate_in_child(data_dir: Path, run_id: str) -> dict[str, Any]:
    """The quality gate of ``data_dir`` in a fresh process: what it validated (table: scope)
    and its peak memory; raises when a mart other than the empty survey marts failed."""
    gated = run_child(_GATE_CHILD, data_dir, run_id)
    failed = set(gated["failed"])
    if failed - EXPECTED_GATE_FAILURES:
        raise RuntimeError(f"quality gate failed on {sorted(failed)}")
    return {"validated": gated["validated"], "peak_bytes": gated["peak_bytes"]}


def validated_whole(validated: dict[str, str]) -> bool | None:
    """True when a gate validated every daily fact whole, False when each only the days
    rebuilt, None when it validated neither (or a mix)."""
    whole = {scope.startswith("whole table") for scope in validated.values()}
    return whole.pop() if len(whole) == 1 else None


DAILY_ROUNDS = 3
DAILY_STEPS = ("dbt", "gate", "publish")


def one_day(settings: Settings, run_id: str) -> dict[str, Any]:
    """One day's work on a bench warehouse whose new day has arrived: the daily
    ``dbt build``, then the quality gate and the publish, each in a fresh process as
    Airflow tasks are. Seconds of each step: the build's own (``run_dbt``, process
    start-up not counted, as when the bench ran it itself), the gate's and the publish's
    wall clock (start-up and imports included), and the publish's own seconds as
    :func:`publish_in_child` measures them. Peak memory (``VmHWM``) of each step's process
    and of dbt's (``*_peak_bytes``, bench daily_memory's), and what the gate validated."""
    day: dict[str, Any] = {}
    built = build_in_child(settings.data_dir)
    day["dbt"] = built["seconds"]
    day["build_peak_bytes"] = built["peak_bytes"]
    day["dbt_peak_bytes"] = built["dbt_peak_bytes"]
    started = time.perf_counter()
    gated = gate_in_child(settings.data_dir, run_id)
    day["gate"] = time.perf_counter() - started
    day["gate_peak_bytes"] = gated["peak_bytes"]
    day["gate_validated"] = gated["validated"]
    started = time.perf_counter()
    published = publish_in_child(settings.data_dir, run_id)
    day["publish"] = time.perf_counter() - started
    day["publish_own"] = published["seconds"]
    day["publish_copy"] = published["copy_seconds"]
    day["publish_from_spare"] = published["from_spare"]
    day["publish_peak_bytes"] = published["peak_bytes"]
    return day


def cached_measurement(key: str, measure: Callable[[], Any]) -> Any:
    """``measure()``, or what it returned for an earlier benchmark of this run (kept as
    JSON in the run's cache as ``<key>.json``)."""
    cache = _cache_dir()
    saved = cache / f"{key}.json" if cache is not None else None
    if saved is not None and saved.is_file():
        print(f"{key}: measured by an earlier benchmark of this run", flush=True)
        return json.loads(saved.read_text(encoding="utf-8"))
    measured = measure()
    if saved is not None:
        saved.write_text(json.dumps(measured), encoding="utf-8")
    return measured


def daily_rounds(root: Path) -> dict[str, list[dict[str, Any]]]:
    """One day's work (:func:`one_day`) in each bench warehouse, ``DAILY_ROUNDS`` rounds,
    the 3-year and 30-day warehouses alternating, from :func:`published_bench_warehouses`
    (an untimed first, full, gate and two publishes of each); per warehouse label, each round's
    :func:`one_day` figures.

    bench daily_growth times the whole day, incremental_build its ``dbt build``,
    publish_growth its publish, daily_memory takes each step's peak memory: the same rounds
    serve all four in one ``make bench`` (the first to run measures them, the run's cache
    keeps them), since each round's steps run one after the other, each timed and measured
    alone."""
    return daily_run(root)["rounds"]


def daily_run(root: Path) -> dict[str, Any]:
    """:func:`daily_rounds` (``rounds``) and, per warehouse label, what its first gate
    validated and its peak memory (``first_gates``, see :func:`first_gates`)."""
    return cached_measurement("daily-rounds", lambda: _measure_daily_rounds(root))


def _measure_daily_rounds(root: Path) -> dict[str, Any]:
    warehouses = published_bench_warehouses(root)
    rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in warehouses}
    for round_no in range(1, DAILY_ROUNDS + 1):
        new_day = LAST_HISTORY_DAY + timedelta(days=round_no)
        for label, settings in warehouses.items():
            add_next_day(settings, new_day)
            rounds[label].append(one_day(settings, f"bench-{new_day}"))
        print(
            f"round {round_no} ({new_day}): "
            + "; ".join(
                f"{label} "
                + ", ".join(f"{step} {days[-1][step]:.1f}s" for step in DAILY_STEPS)
                + f" (publish's own {days[-1]['publish_own']:.1f}s, peak "
                f"{days[-1]['publish_peak_bytes'] / 2**20:.0f} MiB)"
                for label, days in rounds.items()
            ),
            flush=True,
        )
    for label, settings in warehouses.items():
        print(f"{label} rows: {row_counts(settings.warehouse_path)}", flush=True)
    gates = first_gates()
    missing = [label for label in warehouses if label not in gates]
    if missing:
        raise RuntimeError(f"no first gate recorded for the {', '.join(missing)} warehouse")
    return {"rounds": rounds, "first_gates": gates}
