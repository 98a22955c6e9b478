"""Sizing: rows, bytes, time and peak memory of one day per pipeline component, on the
embedded default (one DuckDB file), at 1x, 4x and 16x the bundled demo roster.

Not a benchmark with a bound (``make bench`` does not run it): ``make sizing`` prints the
figures README's "Scaling" section quotes. For each scale, in its own ``SLW_DATA_DIR``:

* setup, untimed per component: the demo roster replicated ``scale`` times (each copy of
  an executive a new synthetic executive with its own id and handles), its synthetic
  follower history for the ``history_days`` days before today (the demo's generator,
  imported as a history file), the bundled survey figures and the demo's microdata, then
  the first (full) ``dbt build``, quality gate and publish, as the first day leaves them;
* the day, each component in a fresh Python process as its Airflow task runs (imports
  counted in the wall time, not in the component's own time): extraction of every
  platform from the sandbox API on loopback (a real HTTP server in this process, with its
  own request budgets), the loads into ``raw``, the daily incremental ``dbt build`` (as
  ``warehouse_build`` plans it), the quality gate, the publish and the weekly report
  (written, not mailed). Each records its process's peak resident memory (``VmHWM``; dbt's
  own process for the build), the rows it wrote or read, and the bytes of what it wrote.

History (warehouse bytes and rows per executive-day, and what each day beyond 30 adds)
comes from the bench generators' 30-day and 3-year warehouses at 2,000 executives when a
bench cache (``SLW_BENCH_CACHE_DIR``) holds them; the time and memory of a day against
history length are the benchmarks' own (README's Benchmarks section).

Usage: ``python bench/sizing.py [--scales 1,4,16] [--history-days 30] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import _common
from _common import DBT_WRAPPER, run_child

from social_leadership.roster import ACCOUNT_COLUMNS, ROSTER_COLUMNS
from social_leadership.settings import BUNDLED_DATA_DIR

DEFAULT_SCALES = (1, 4, 16)
DEFAULT_HISTORY_DAYS = 30
COMPONENTS = ("extract", "load", "dbt build", "quality gate", "publish", "report")
DEMO_ROSTER = BUNDLED_DATA_DIR / "roster" / "executives.csv"
# X usernames are at most 15 characters (the sandbox and the connector check it).
X_HANDLE_MAX = 15


@dataclasses.dataclass(frozen=True)
class Measured:
    """One component's day at one scale."""

    scale: int
    executives: int
    accounts: int
    component: str
    wall_seconds: float  # the process, start-up and imports included
    own_seconds: float  # the component's own work, timed inside the process
    peak_bytes: int
    rows: int
    rows_are: str
    bytes: int
    bytes_are: str
    growth_bytes: int | None = None  # what the store grew by during the component


# --- the scaled roster ---------------------------------------------------------------


def replica_handle(platform: str, handle: str, copy: int) -> str:
    """``handle`` of copy ``copy`` (2 and up) of the roster: unique, and still a valid handle
    on ``platform``."""
    tag = f"r{copy}"
    if platform == "x":
        # Keep the end: the demo's synthetic handles end in the executive's number.
        return tag + handle[-(X_HANDLE_MAX - len(tag)) :]
    if handle.startswith("@"):
        return "@" + tag + handle[1:]
    if ":" in handle:
        prefix, _, name = handle.rpartition(":")
        return f"{prefix}:{tag}{name}"
    return tag + handle


def scaled_roster_rows(rows: list[dict[str, str]], scale: int) -> list[dict[str, str]]:
    """``rows`` (roster CSV rows) and ``scale - 1`` copies of them, each executive of a copy
    a new synthetic one: its own id, name, company and handles."""
    scaled = [dict(row) for row in rows]
    for copy in range(2, scale + 1):
        for row in rows:
            replica = dict(row)
            replica["executive_id"] = f"{row['executive_id']}-r{copy}"
            replica["full_name"] = f"{row['full_name']} (copy {copy})"
            replica["company"] = f"{row['company']} (copy {copy})"
            replica["is_synthetic"] = "true"
            for platform in ACCOUNT_COLUMNS:
                if replica.get(platform):
                    replica[platform] = replica_handle(platform, replica[platform], copy)
            scaled.append(replica)
    return scaled


def read_roster_rows(path: Path = DEMO_ROSTER) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_roster_rows(rows: list[dict[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ROSTER_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows({column: row.get(column, "") for column in ROSTER_COLUMNS} for row in rows)


# --- the stages, each in a fresh process ---------------------------------------------

_STAGE = """
import json, os, sys, tempfile, time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from social_leadership.settings import load_settings
stage, run_id, arg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
settings = load_settings()
settings.ensure_dirs()
today = datetime.now(UTC).date()
out = {"dbt_peak": 0}

def daily_rows(con, table, column, since):
    return con.execute(
        f"select count(*) from marts.{table} where {column} >= ?", [since]
    ).fetchone()[0]

def build(run_id):
    from social_leadership import dbt_runner
    from social_leadership.warehouse import connect
    dbt_runner.dbt_command = lambda: [sys.executable, "-c", arg["dbt_wrapper"]]
    with connect(settings.warehouse_path) as con:
        plan = dbt_runner.plan_build(con, settings.dbt_project_dir)
    started_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCH_DBT_PEAK_FILE"] = peak_file = os.path.join(tmp, "peak")
        result = dbt_runner.run_dbt(plan.args, settings, env=plan.env)
        with open(peak_file, encoding="ascii") as recorded:
            out["dbt_peak"] = max(out["dbt_peak"], int(recorded.read()))
    with connect(settings.warehouse_path) as con:
        dbt_runner.record_build(con, run_id, plan, started_at, result)
    return plan

def gate(run_id):
    from social_leadership.docs_site import pending_gx_dir
    from social_leadership.quality import check_marts
    docs = pending_gx_dir(settings, run_id)
    report = check_marts(settings, run_id, data_docs_dir=docs)
    return report, docs

def publish(run_id):
    from social_leadership.serving import publish as publish_marts
    return publish_marts(settings, run_id, synthetic=True)

started = time.perf_counter()
if stage == "setup":
    from social_leadership.demo.follower_history import demo_history_table
    from social_leadership.follower_imports import import_history
    from social_leadership.roster import load_roster, write_roster
    from social_leadership.tasks import ingest_surveys_task
    from social_leadership.warehouse import connect
    import pyarrow.parquet as pq
    roster = load_roster(settings.roster_path)
    if roster.errors:
        raise SystemExit(f"scaled roster has invalid rows: {roster.errors[:3]}")
    history = settings.landing_dir / "history" / "sizing" / f"history-{today}.parquet"
    history.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(demo_history_table(roster, today - timedelta(days=1), arg["days"]), history)
    with connect(settings.warehouse_path) as con:
        write_roster(con, roster, str(settings.roster_path), datetime.now(UTC))
        imported = import_history(
            con, history, roster, settings.quarantine_dir, today=today, is_synthetic=True
        )
    # The bundled published figures and (SLW_DEMO) the demo's synthetic microdata.
    ingest_surveys_task()
    steps = {}
    mark = time.perf_counter()
    build(run_id)
    steps["first build"] = time.perf_counter() - mark
    mark = time.perf_counter()
    gate(run_id)
    steps["first gate"] = time.perf_counter() - mark
    mark = time.perf_counter()
    publish(run_id)
    steps["first publish"] = time.perf_counter() - mark
    out.update(
        executives=len({e.executive_id for e in roster.executives}),
        accounts=len(roster.accounts),
        history_rows=imported.rows_loaded,
        steps=steps,
    )
elif stage == "extract":
    from social_leadership.platform_metrics import extract_platform
    from social_leadership.roster import load_roster
    handles = {}
    for account in load_roster(settings.roster_path).accounts:
        handles.setdefault(account.platform, []).append(account.account_handle)
    platforms = {}
    for platform, connection in arg["connections"].items():
        if platform not in handles:
            continue
        mark = time.perf_counter()
        outcome = extract_platform(
            platform, handles[platform], connection.get("host"), connection.get("password"),
            settings.landing_dir, run_id, datetime.now(UTC), login=connection.get("login"),
        )
        platforms[platform] = {
            "seconds": time.perf_counter() - mark,
            "status": outcome.status,
            "requests": outcome.requests_sent,
            "accounts": outcome.accounts_requested,
            "deferred": outcome.deferred,
            "landing_dir": outcome.landing_dir,
        }
    out["platforms"] = platforms
    out["rows"] = sum(p["accounts"] - p["deferred"] for p in platforms.values())
elif stage == "load":
    from social_leadership.platform_metrics import load_platform_day
    from social_leadership.warehouse import connect
    loaded = {}
    with connect(settings.warehouse_path) as con:
        for platform, landing_dir in arg["landings"].items():
            outcome = load_platform_day(
                con, settings.landing_dir, platform, today, run_id, run_dir=Path(landing_dir)
            )
            loaded[platform] = {"status": outcome.status, "accounts": outcome.accounts_loaded}
        out["rows"] = con.execute(
            "select count(*) from raw.platform_metrics where snapshot_date = ?", [today]
        ).fetchone()[0]
    out["platforms"] = loaded
elif stage == "build":
    from social_leadership.warehouse import connect
    plan = build(run_id)
    out["full_refresh"] = plan.full_refresh
    with connect(settings.warehouse_path, read_only=True) as con:
        out["rows"] = daily_rows(con, "fct_executive_reach_daily", "metric_date", today) + (
            daily_rows(con, "fct_reach_by_country_sector_daily", "metric_date", today)
        )
elif stage == "gate":
    from social_leadership.warehouse import connect
    report, docs = gate(run_id)
    starts = [
        c.validated_from for c in report.results if c.table_name == "fct_executive_reach_daily"
    ]
    since = min((s for s in starts if s is not None), default=date(1900, 1, 1))
    with connect(settings.warehouse_path, read_only=True) as con:
        out["rows"] = daily_rows(con, "fct_executive_reach_daily", "metric_date", since)
    out["checks"] = len(report.results)
    out["failed"] = sorted({c.table_name for c in report.failed})
    out["validated"] = report.validated
    out["docs_dir"] = str(docs)
elif stage == "publish":
    publication = publish(run_id)
    out["changes"] = publication.changes
elif stage == "report":
    from social_leadership.reports.weekly import write_weekly_report
    report = write_weekly_report(settings, today, mail=False)
    out["folder"] = str(report.folder)
    out["enough_data"] = report.enough_data
out["seconds"] = time.perf_counter() - started
out["peak"] = peak_bytes()
print(json.dumps(out))
"""


def run_stage(data_dir: Path, stage: str, run_id: str, arg: dict | None = None) -> dict:
    """Run ``stage`` in a fresh process on ``data_dir``; its result, with ``wall``: the
    process's seconds, start-up and imports included."""
    env = {
        "SLW_ROSTER_PATH": str(data_dir / "roster.csv"),
        # Only the setup loads the demo's survey microdata; the day runs as in production.
        "SLW_DEMO": "1" if stage == "setup" else "0",
    }
    started = time.perf_counter()
    try:
        result = run_child(
            _STAGE,
            data_dir,
            stage,
            run_id,
            json.dumps({**(arg or {}), "dbt_wrapper": DBT_WRAPPER}),
            env=env,
        )
    except RuntimeError as error:
        raise RuntimeError(f"sizing stage {stage} failed: {error}") from error
    result["wall"] = time.perf_counter() - started
    return result


def tree_bytes(*paths: Path) -> int:
    """Bytes of the files under ``paths`` (files or folders; missing ones count 0)."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return total


def measure_scale(
    root: Path, base_rows: list[dict[str, str]], scale: int, history_days: int
) -> tuple[list[Measured], dict]:
    """One day of every component on the roster ``base_rows`` replicated ``scale`` times,
    after ``history_days`` days of history and a first build; the measured rows and the
    setup's figures. Points ``SLW_DATA_DIR`` and ``SLW_ROSTER_PATH`` of this process at the
    scale's folder, as the pipeline's own helpers read them."""
    import duckdb

    from social_leadership.sandbox.server import SandboxServer
    from social_leadership.settings import load_settings

    _common.clear_path_settings()
    data_dir = root / f"{scale}x"
    data_dir.mkdir(parents=True)
    write_roster_rows(scaled_roster_rows(base_rows, scale), data_dir / "roster.csv")
    os.environ["SLW_DATA_DIR"] = str(data_dir)
    os.environ["SLW_ROSTER_PATH"] = str(data_dir / "roster.csv")
    settings = load_settings()
    setup = run_stage(data_dir, "setup", "sizing-first", {"days": history_days})
    executives, accounts = setup["executives"], setup["accounts"]
    today = datetime.now(UTC).date()
    run_id = f"sizing-{today}"
    serving = (
        settings.serving_path,
        settings.serving_parquet_dir,
        settings.serving_lake_path.parent,
    )

    def row(
        component: str,
        result: dict,
        rows_are: str,
        size: int,
        size_is: str,
        growth: int | None = None,
    ) -> Measured:
        return Measured(
            scale,
            executives,
            accounts,
            component,
            result["wall"],
            result["seconds"],
            max(result["peak"], result["dbt_peak"]),
            result["rows"],
            rows_are,
            size,
            size_is,
            growth,
        )

    measured: list[Measured] = []
    with SandboxServer(settings.roster_path) as sandbox:
        connections = {
            name.removeprefix("AIRFLOW_CONN_SLW_").lower(): json.loads(value)
            for name, value in sandbox.connection_env().items()
        }
        extract = run_stage(data_dir, "extract", run_id, {"connections": connections})
    landings = {
        platform: outcome["landing_dir"]
        for platform, outcome in extract["platforms"].items()
        if outcome["landing_dir"]
    }
    incomplete = {p: o for p, o in extract["platforms"].items() if o["status"] != "landed"}
    if incomplete:
        raise RuntimeError(f"extraction did not land every platform: {incomplete}")
    landed = tree_bytes(*(Path(d) for d in landings.values()))
    measured.append(row("extract", extract, "accounts answered", landed, "landed responses"))

    before = settings.warehouse_path.stat().st_size
    load = run_stage(data_dir, "load", run_id, {"landings": landings})
    after = settings.warehouse_path.stat().st_size
    measured.append(row("load", load, "raw rows", after, "warehouse file", after - before))

    before = after
    built = run_stage(data_dir, "build", run_id)
    if built["full_refresh"]:
        raise RuntimeError("the daily build was planned as a full refresh")
    after = settings.warehouse_path.stat().st_size
    measured.append(
        row("dbt build", built, "fact rows of the day", after, "warehouse file", after - before)
    )

    gated = run_stage(data_dir, "gate", run_id)
    measured.append(
        row(
            "quality gate",
            gated,
            "fact rows validated",
            tree_bytes(Path(gated["docs_dir"])),
            "GX Data Docs",
        )
    )

    before = tree_bytes(*serving)
    published = run_stage(data_dir, "publish", run_id)
    after = tree_bytes(*serving)
    with duckdb.connect(str(settings.serving_path), read_only=True) as con:
        published["rows"] = con.execute(
            "select count(*) from marts.fct_executive_reach_daily where metric_date = ?", [today]
        ).fetchone()[0]
    measured.append(
        row(
            "publish",
            published,
            "fact rows of the day served",
            after,
            "serving copies",
            after - before,
        )
    )

    reported = run_stage(data_dir, "report", run_id)
    folder = Path(reported["folder"])
    reported["rows"] = _csv_rows(folder)
    measured.append(row("report", reported, "CSV rows", tree_bytes(folder), "report files"))

    figures = {
        "scale": scale,
        "executives": executives,
        "accounts": accounts,
        "history_rows": setup["history_rows"],
        "setup": setup["steps"],
        "warehouse_bytes": settings.warehouse_path.stat().st_size,
        "serving_bytes": tree_bytes(*serving),
        "extract": extract["platforms"],
        "gate_checks": gated["checks"],
        "gate_failed": gated["failed"],
    }
    return measured, figures


def _csv_rows(folder: Path) -> int:
    rows = 0
    for path in folder.rglob("*.csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            rows += max(sum(1 for _ in csv.reader(handle)) - 1, 0)
    return rows


def measure(
    root: Path,
    scales: tuple[int, ...] = DEFAULT_SCALES,
    *,
    base_rows: list[dict[str, str]] | None = None,
    history_days: int = DEFAULT_HISTORY_DAYS,
    echo: bool = True,
) -> tuple[list[Measured], list[dict]]:
    """Every component's day at every scale (the demo roster unless ``base_rows``)."""
    base_rows = base_rows if base_rows is not None else read_roster_rows()
    measured: list[Measured] = []
    figures: list[dict] = []
    for scale in scales:
        started = time.perf_counter()
        rows, figure = measure_scale(root, base_rows, scale, history_days)
        measured.extend(rows)
        figures.append(figure)
        if echo:
            print(
                f"{scale}x: {figure['executives']:,} executives, {figure['accounts']:,} accounts, "
                f"{figure['history_rows']:,} history rows; setup "
                + ", ".join(f"{k} {v:.1f}s" for k, v in figure["setup"].items())
                + f"; gate {figure['gate_checks']} checks, failed: "
                + (", ".join(figure["gate_failed"]) or "none")
                + f"; {time.perf_counter() - started:.0f}s in all",
                flush=True,
            )
    return measured, figures


# --- output --------------------------------------------------------------------------


def mib(size: float) -> str:
    return f"{size / 2**20:,.1f}"


def table(measured: list[Measured]) -> str:
    lines = [
        "| scale | executives | accounts | component | wall s | own s | peak MiB | rows | "
        "bytes | growth |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measured:
        growth = "" if m.growth_bytes is None else f"{m.growth_bytes / 2**10:+,.0f} KiB"
        lines.append(
            f"| {m.scale}x | {m.executives:,} | {m.accounts:,} | {m.component} | "
            f"{m.wall_seconds:.1f} | {m.own_seconds:.1f} | {mib(m.peak_bytes)} | "
            f"{m.rows:,} {m.rows_are} | {m.bytes / 2**10:,.0f} KiB {m.bytes_are} | {growth} |"
        )
    return "\n".join(lines)


def per_executive(measured: list[Measured]) -> dict[str, tuple[float, float]]:
    """Per component, the seconds per 1,000 more executives between the smallest and the
    largest scale measured, and the seconds at the smallest: a linear model of the day."""
    scales = sorted({m.scale for m in measured})
    low, high = scales[0], scales[-1]
    model = {}
    for component in COMPONENTS:
        a = next(m for m in measured if m.scale == low and m.component == component)
        b = next(m for m in measured if m.scale == high and m.component == component)
        slope = (b.wall_seconds - a.wall_seconds) / max(b.executives - a.executives, 1) * 1000
        model[component] = (slope, a.wall_seconds - slope * a.executives / 1000)
    return model


def history_figures(cache: Path | None) -> list[str]:
    """Bytes and rows per executive-day of the bench's 30-day and 3-year warehouses (2,000
    executives) from the bench cache, if it holds them."""
    import duckdb

    if cache is None:
        return ["history: no SLW_BENCH_CACHE_DIR; see README's Benchmarks section"]
    sizes = {}
    for label, days in _common.BENCH_WAREHOUSE_DAYS.items():
        folder = next(
            (
                cache / key
                for key in (label, _common.published_key(label))
                if (cache / key).is_dir()
            ),
            None,
        )
        if folder is None:
            return [f"history: {cache} holds no {label} bench warehouse"]
        path = folder / "warehouse" / "warehouse.duckdb"
        with duckdb.connect(str(path), read_only=True) as con:
            raw, facts = con.execute(
                "select (select count(*) from raw.platform_metrics), "
                "(select count(*) from marts.fct_executive_reach_daily)"
            ).fetchone()
        built = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        sizes[label] = (days, path.stat().st_size, raw, facts, built)
    accounts = _common.EXECUTIVES * len(_common.PLATFORMS)
    lines = []
    for label, (days, size, raw, facts, built) in sizes.items():
        executive_days = _common.EXECUTIVES * days
        lines.append(
            f"history {label} (built {built:%Y-%m-%d %H:%M} UTC): {_common.EXECUTIVES:,} "
            f"executives ({accounts:,} accounts) x {days} days, warehouse "
            f"{size / 2**20:,.0f} MiB = {size / executive_days:,.0f} bytes per executive-day; "
            f"raw.platform_metrics {raw:,} rows, fct_executive_reach_daily {facts:,} rows"
        )
    (short_days, short, *_), (long_days, long, *_) = sizes["30d"], sizes["3y"]
    marginal = (long - short) / (_common.EXECUTIVES * (long_days - short_days))
    lines.append(
        f"history: each executive-day beyond 30 days adds {marginal:,.0f} bytes to the "
        f"warehouse file ({marginal * _common.EXECUTIVES / accounts:,.0f} per account-day)"
    )
    return lines


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=",".join(map(str, DEFAULT_SCALES)))
    parser.add_argument("--history-days", type=int, default=DEFAULT_HISTORY_DAYS)
    parser.add_argument("--keep", type=Path, help="measure in this (new) folder and keep it")
    args = parser.parse_args(argv)
    scales = tuple(int(s) for s in args.scales.split(","))
    print(
        f"sizing on {datetime.now(UTC).date()} ({os.cpu_count()} cores), "
        f"load average {load_average()}"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slw-sizing-") as tmp:
        root = args.keep or Path(tmp)
        measured, figures = measure(root, scales, history_days=args.history_days)
    print(table(measured))
    for figure in figures:
        print(
            f"{figure['scale']}x after the day: warehouse {mib(figure['warehouse_bytes'])} MiB "
            f"({figure['warehouse_bytes'] / (figure['executives'] * (args.history_days + 1)):,.0f}"
            f" bytes per executive-day), serving copies {mib(figure['serving_bytes'])} MiB; "
            "extract per platform: "
            + ", ".join(
                f"{p} {o['accounts']} accounts {o['requests']} requests {o['seconds']:.2f}s"
                for p, o in figure["extract"].items()
            )
        )
    if len(figures) > 1:
        low, high = figures[0], figures[-1]
        account_days = (high["accounts"] - low["accounts"]) * (args.history_days + 1)
        print(
            f"growth per added account-day, {low['scale']}x to {high['scale']}x: warehouse "
            f"file {(high['warehouse_bytes'] - low['warehouse_bytes']) / account_days:,.0f} "
            f"bytes, serving copies "
            f"{(high['serving_bytes'] - low['serving_bytes']) / account_days:,.0f} bytes"
        )
    model = per_executive(measured)
    print(
        "linear model, wall seconds of the day = a + b per 1,000 executives: "
        + "; ".join(f"{c} {a:.1f} + {b:.2f}" for c, (b, a) in model.items())
    )
    for executives in (10_000, 50_000):
        total = sum(a + b * executives / 1000 for b, a in model.values())
        print(f"extrapolated day at {executives:,} executives: {total:,.0f} s")
    for line in history_figures(_common._cache_dir()):
        print(line)
    day = {s: sum(m.wall_seconds for m in measured if m.scale == s) for s in scales}
    peak = max(m.peak_bytes for m in measured)
    print(
        "SIZING "
        + ", ".join(f"{s}x day {seconds:.0f}s" for s, seconds in day.items())
        + f"; largest peak {mib(peak)} MiB; load average now {load_average()}; "
        f"{time.perf_counter() - started:.0f}s in all",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
