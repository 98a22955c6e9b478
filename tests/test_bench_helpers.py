"""The benchmarks' own measurements: what bench/_common.run_child reports of a child
process, the check that keeps bench report_growth from timing an empty report, and the
long-lived Airflow process of bench dbt_in_airflow's rounds."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import sys
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import _common
import bench_dbt_in_airflow
import bench_extract_requests
import bench_extract_time
import bench_report_growth

PARENT_BYTES = 300 * 2**20


def test_a_child_reports_its_own_peak_memory_not_its_parents(tmp_path):
    # Written, not only allocated, so the parent's resident peak is above PARENT_BYTES.
    held = bytearray(b"\x01") * PARENT_BYTES
    measured = _common.run_child(
        "import json; print(json.dumps({'peak_bytes': peak_bytes()}))", tmp_path
    )
    del held
    # A bare interpreter peaks near 10 MiB; the parent's peak must not show through.
    assert 0 < measured["peak_bytes"] < 100 * 2**20


def test_an_empty_serving_copy_gives_a_report_the_bench_rejects(tmp_path, monkeypatch):
    from social_leadership.reports.weekly import write_weekly_report
    from social_leadership.settings import load_settings

    for variable in ("SLW_WAREHOUSE_PATH", "SLW_DBT_TARGET_DIR", "SLW_LOGS_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    settings = load_settings()
    settings.ensure_dirs()
    result = write_weekly_report(settings, date(2026, 6, 30), mail=False)
    measured = {"enough_data": result.enough_data, "html": result.html, "pdf": result.pdf}

    assert bench_report_growth.has_data(measured) is False
    # The page's wording is what the bench looks for, not only the flag.
    assert bench_report_growth.NOT_ENOUGH_DATA in result.html.read_text(encoding="utf-8")
    assert bench_report_growth.has_data({**measured, "enough_data": True}) is False


def test_the_bench_runner_prints_each_bench_time_and_cpu_and_the_total_and_fails_on_a_failure(
    tmp_path, capfd
):
    import run

    (tmp_path / "bench_fine.py").write_text("print('BENCH fine ratio=1.000 bound=1.5 ok')\n")
    # Busy for 0.3 s of CPU in a child of its own: a benchmark's CPU counts its children's.
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    (tmp_path / "bench_slow.py").write_text(
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {busy!r}], check=True)\n"
        "print('BENCH slow ratio=9.000 bound=1.5 FAIL')\n"
        "sys.exit(1)\n"
    )

    returncode = run.main([], bench_dir=tmp_path)
    out = capfd.readouterr().out

    assert returncode == 1
    # Seconds, then minutes, then the outcome and the CPU (both vary with the machine).
    assert re.search(r"^== fine: \d+s \(0\.0 min\), ok \(CPU \d+s\)$", out, re.MULTILINE)
    assert re.search(r"^== slow: \d+s \(0\.0 min\), exit 1 \(CPU \d+s\)$", out, re.MULTILINE)
    times = out.split("== times (wall clock, then the CPU of the benchmark's processes)\n", 1)[1]
    lines = times.splitlines()
    assert lines[0].split()[0] == "fine"
    name, wall, cpu_label, cpu, outcome = lines[1].split()
    assert (name, cpu_label, outcome) == ("slow", "CPU", "FAIL")
    assert float(wall.removesuffix("s")) >= 0.3
    assert float(cpu.removesuffix("s")) >= 0.3
    assert float(lines[0].split()[3].removesuffix("s")) < 0.3
    assert lines[2].startswith("total ")
    assert lines[2].endswith(" min")
    # What the benchmarks used and what the rest of the host did meanwhile.
    assert re.fullmatch(
        r"host: \d+ cores \([\d,]+ core-seconds in [\d,]+ s\); the benchmarks' processes "
        r"used [\d,]+ s of CPU, other processes [\d,]+ s \(\d+% of the host\), steal [\d,]+ s",
        lines[3],
    )
    assert run.main(["fine"], bench_dir=tmp_path) == 0


def test_the_bench_runner_tells_the_benchmarks_cpu_from_the_other_processes(tmp_path):
    import run

    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice, in clock ticks.
    ticks = os.sysconf("SC_CLK_TCK")
    stat.write_text(f"cpu  {100 * ticks} 0 {20 * ticks} 999 7 {ticks} {ticks} {3 * ticks} 0 0\n")
    assert run.host_cpu_seconds(stat) == (122.0, 3.0)
    assert run.host_cpu_seconds(tmp_path / "missing") is None

    line = run.host_share(100.0, 150.0, (1000.0, 5.0), (1200.0, 9.0), 2)
    assert line == (
        "host: 2 cores (200 core-seconds in 100 s); the benchmarks' processes used 150 s of "
        "CPU, other processes 50 s (25% of the host), steal 4 s"
    )
    assert run.host_share(100.0, 150.0, None, (1200.0, 9.0), 2) is None


FAKE_PREPARE = """
import sys, time
from pathlib import Path
here = Path(__file__).parent
step = sys.argv[1]
started = time.time()
(here / (step + ".began")).touch()
# Each waits for every step the test expects to have begun: side by side, or a timeout.
expected = (here / "expected").read_text().split()
deadline = time.time() + 60
while not all((here / (s + ".began")).exists() for s in expected) and time.time() < deadline:
    time.sleep(0.01)
(here / (step + ".times")).write_text(f"{started} {time.time()}")
sys.exit(3 if step == "demo" and (here / "fail-demo").exists() else 0)
"""

FAKE_BENCH = """
import time
from pathlib import Path
Path(__file__).with_suffix(".started").write_text(str(time.time()))
print("BENCH x ratio=1.000 bound=1.5 ok")
"""


def test_the_setup_benchmarks_start_from_is_made_side_by_side_before_the_first_of_them(
    tmp_path, capfd
):
    import run

    (tmp_path / "_prepare.py").write_text(FAKE_PREPARE)
    for name in ("daily_growth", "dbt_in_airflow", "pipeline_overhead", "intake_linear"):
        (tmp_path / f"bench_{name}.py").write_text(FAKE_BENCH)
    (tmp_path / "expected").write_text("published-3y demo published-30d")

    assert run.main([], bench_dir=tmp_path) == 0
    out = capfd.readouterr().out

    assert "== prepare: published-3y, demo, published-30d, side by side (untimed setup)" in out
    steps = ("published-3y", "demo", "published-30d")
    spans = {
        step: [float(t) for t in (tmp_path / f"{step}.times").read_text().split()] for step in steps
    }
    # The 3-year warehouse is built by its published step, not once more apart.
    assert not (tmp_path / "built.times").exists()
    # Side by side: each started before any other ended.
    assert max(start for start, _ in spans.values()) < min(end for _, end in spans.values())
    # Every benchmark after the setup, which is in the times printed at the end.
    starts = [float(p.read_text()) for p in tmp_path.glob("bench_*.started")]
    assert len(starts) == 4
    assert min(starts) >= max(end for _, end in spans.values())
    times = out.split("== times (wall clock, then the CPU of the benchmark's processes)\n")[1]
    assert times.splitlines()[0].split()[0] == "prepare"

    # Alone, a benchmark that needs no setup starts none.
    (tmp_path / "published-3y.times").unlink()
    assert run.main(["intake_linear"], bench_dir=tmp_path) == 0
    assert not (tmp_path / "published-3y.times").exists()
    assert "== prepare" not in capfd.readouterr().out

    # A failed step fails the run, and the benchmarks still run.
    (tmp_path / "fail-demo").touch()
    (tmp_path / "expected").write_text("built demo")
    for started in [*tmp_path.glob("bench_*.started"), *tmp_path.glob("*.began")]:
        started.unlink()
    assert run.main(["pipeline_overhead", "dbt_in_airflow"], bench_dir=tmp_path) == 1
    out = capfd.readouterr().out
    assert "== prepare: built, demo, side by side (untimed setup)" in out
    assert re.search(r"^== prepare: \d+s \(0\.0 min\), failed: demo \(CPU \d+s\)$", out, re.M)
    assert "failed or out of bound: prepare" in out
    assert (tmp_path / "bench_pipeline_overhead.started").exists()


def test_each_bench_warehouse_is_published_and_cached_apart_and_only_once(tmp_path, monkeypatch):
    """bench/_prepare.py's published-3y and published-30d steps: each makes and caches its
    own warehouse (the built one, the published one, its first gate's record); a later
    call copies what the cache holds and makes only what it lacks. The build, gate and
    publishes are replaced by stand-ins that write a marker: the cache logic is the
    subject here, `make bench` runs the real ones."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(_common.CACHE_VARIABLE, str(cache))
    monkeypatch.setattr(_common, "_FIRST_GATES", {})
    made: list[str] = []

    def generate(root, label, days, build):
        from social_leadership.settings import load_settings

        monkeypatch.setenv("SLW_DATA_DIR", str(root / label))
        settings = load_settings()
        settings.warehouse_path.parent.mkdir(parents=True)
        settings.warehouse_path.write_text(label)
        made.append(f"build {label}")
        return settings

    monkeypatch.setattr(_common, "generate_warehouse", generate)
    monkeypatch.setattr(
        "social_leadership.dbt_runner.run_dbt", lambda args, settings, **kw: made.append("parse")
    )

    def gate(data_dir, run_id):
        made.append(f"gate {data_dir.name}")
        return {"validated": {"scope": "all"}, "peak_bytes": len(data_dir.name)}

    def publish(data_dir, run_id):
        (data_dir / f"published-{run_id}").touch()
        return {"seconds": 0.0}

    monkeypatch.setattr(_common, "gate_in_child", gate)
    monkeypatch.setattr(_common, "publish_in_child", publish)
    monkeypatch.setattr("social_leadership.serving_lake.follow_moved_data_dir", lambda *args: None)

    first = _common.published_bench_warehouses(tmp_path / "one", labels=("3y",))
    assert made == ["build 3y", "parse", "gate 3y"]
    assert set(first) == {"3y"}
    assert sorted(p.name for p in cache.iterdir()) == ["3y", "3y-published", "first-gate-3y.json"]
    assert (cache / "3y-published" / "published-bench-settled").is_file()
    # What the published folder was copied from is the built warehouse, not a partial copy.
    assert (
        cache / "3y" / first["3y"].warehouse_path.relative_to(first["3y"].data_dir)
    ).read_text() == "3y"

    made.clear()
    monkeypatch.setattr(_common, "_FIRST_GATES", {})
    both = _common.published_bench_warehouses(tmp_path / "two")
    # The 3-year warehouse is copied, only the 30-day one is made.
    assert made == ["build 30d", "parse", "gate 30d"]
    assert list(both) == ["3y", "30d"]
    assert both["3y"].data_dir == tmp_path / "two" / "3y"
    assert (tmp_path / "two" / "3y" / "published-bench-settled").is_file()
    monkeypatch.setattr(_common, "_FIRST_GATES", {})
    assert _common.first_gates() == {
        "3y": {"validated": {"scope": "all"}, "peak_bytes": 2},
        "30d": {"validated": {"scope": "all"}, "peak_bytes": 3},
    }


def test_each_setup_step_lists_exactly_the_benchmarks_that_start_from_it():
    import run

    published = ("published_bench_warehouses(", "daily_rounds(", "daily_run(")
    calls = {
        "published-3y": published,
        "published-30d": published,
        "built": ("build_bench_warehouses(",),
        "demo": ("demo_pipeline_run(",),
    }
    bench_dir = Path(run.__file__).parent
    for step, helpers in calls.items():
        users = {
            path.stem.removeprefix("bench_")
            for path in bench_dir.glob("bench_*.py")
            if any(helper in path.read_text(encoding="utf-8") for helper in helpers)
        }
        assert users == set(run.PREPARE_STEPS[step]), step


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["nothing"], {}, "usage: python bench/_prepare.py published-3y|published-30d|built|demo"),
        (["demo"], {"SLW_BENCH_CACHE_DIR": ""}, "SLW_BENCH_CACHE_DIR is not set"),
    ],
)
def test_a_setup_step_refuses_an_unknown_step_or_no_cache(args, env, message):
    import subprocess

    import run

    completed = subprocess.run(
        [sys.executable, str(Path(run.__file__).with_name("_prepare.py")), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert message in completed.stderr


def test_a_measurement_is_taken_once_per_bench_run_and_read_back_by_later_benchmarks(
    tmp_path, monkeypatch
):
    taken = []

    def measure():
        taken.append(1)
        return {"3y": [{"dbt": 21.5}], "30d": [{"dbt": 17.0}]}

    monkeypatch.setenv(_common.CACHE_VARIABLE, str(tmp_path))
    first = _common.cached_measurement("daily-rounds", measure)
    again = _common.cached_measurement("daily-rounds", measure)

    assert taken == [1]
    assert again == first == {"3y": [{"dbt": 21.5}], "30d": [{"dbt": 17.0}]}
    # Outside bench/run.py (no cache), every benchmark measures for itself.
    monkeypatch.delenv(_common.CACHE_VARIABLE)
    _common.cached_measurement("daily-rounds", measure)
    assert taken == [1, 1]


def test_daily_memory_reads_its_peaks_from_the_shared_daily_rounds_without_building(
    tmp_path, monkeypatch, capsys
):
    import bench_daily_memory

    def no_build(*args, **kwargs):
        raise AssertionError("daily_memory built a warehouse of its own")

    monkeypatch.setattr(_common, "generate_warehouse", no_build)
    monkeypatch.setattr(_common, "_measure_daily_rounds", no_build)
    mib = 2**20

    def day(build, dbt, gate, publish):
        return {
            "build_peak_bytes": build * mib,
            "dbt_peak_bytes": dbt * mib,
            "gate_peak_bytes": gate * mib,
            "gate_validated": {"fct_executive_reach_daily": "from 2026-06-21"},
            "publish_peak_bytes": publish * mib,
        }

    whole = {"fct_executive_reach_daily": "whole table: first gate"}
    (tmp_path / "daily-rounds.json").write_text(
        json.dumps(
            {
                # The largest stage of any round counts: dbt's 600 at 3 years, the
                # publish's 500 at 30 days.
                "rounds": {
                    "3y": [day(100, 600, 400, 450), day(100, 550, 420, 460)],
                    "30d": [day(100, 300, 350, 500), day(100, 310, 360, 480)],
                },
                "first_gates": {
                    "3y": {"validated": whole, "peak_bytes": 900 * mib},
                    "30d": {"validated": whole, "peak_bytes": 400 * mib},
                },
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv(_common.CACHE_VARIABLE, str(tmp_path))

    assert bench_daily_memory.main() == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "BENCH daily_memory ratio=1.200 bound=1.5 ok"
    assert "3y: first gate (whole validation) 900 MiB" in out


def test_the_second_benchmark_to_need_the_demo_run_copies_it_and_follows_the_moved_data(
    tmp_path, monkeypatch, capsys
):
    import sqlite3

    import social_leadership.dbt_runner as dbt_runner
    import social_leadership.demo.run as demo

    def no_pipeline(*args, **kwargs):
        raise AssertionError("the demo pipeline ran again")

    dbt_commands = []

    # What the first benchmark left in the cache: its run's folder, the serving catalog
    # naming the data folder it was made in.
    cache = tmp_path / "cache"
    made = cache / _common.DEMO_RUN
    catalog = made / "data" / "serving" / "lake" / "serving.sqlite"
    catalog.parent.mkdir(parents=True)
    (made / "airflow_home").mkdir()
    (made / "airflow_home" / "airflow.db").write_bytes(b"metadata")
    with sqlite3.connect(catalog) as con:
        con.execute("create table ducklake_metadata (key text, value text, scope text)")
        con.execute("insert into ducklake_metadata values ('data_path', '/gone/lake/', null)")
    con.close()
    monkeypatch.setenv(_common.CACHE_VARIABLE, str(cache))
    monkeypatch.setattr(demo, "run_pipeline", no_pipeline)
    monkeypatch.setattr(
        dbt_runner, "run_dbt", lambda args, settings: dbt_commands.append((args, settings))
    )
    # demo_pipeline_run sets SLW_DATA_DIR and drops the path settings, as a benchmark's process
    # wants: recorded here so that they are restored after the test.
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path))
    for variable in ("SLW_WAREHOUSE_PATH", "SLW_DBT_TARGET_DIR", "SLW_LOGS_DIR"):
        monkeypatch.delenv(variable, raising=False)

    settings, airflow_home = _common.demo_pipeline_run(tmp_path / "bench")

    assert settings.data_dir == tmp_path / "bench" / _common.DEMO_RUN / "data"
    assert (airflow_home / "airflow.db").read_bytes() == b"metadata"
    with sqlite3.connect(settings.serving_lake_path) as con:
        (data_path,) = con.execute("select value from ducklake_metadata").fetchone()
    con.close()
    assert data_path == f"{settings.serving_lake_data_dir}/"
    # No dbt command: the copy's saved parse stays valid (the profile names the warehouse
    # relative to the data folder; test_dbt_build_plan.py runs dbt on such a copy).
    assert dbt_commands == []
    assert "copied from this run's cache" in capsys.readouterr().out


def test_the_dbt_stage_is_first_start_to_last_end_of_the_latest_build_less_other_tasks(
    tmp_path,
):
    import sqlite3

    database = tmp_path / "airflow.db"
    with sqlite3.connect(database) as con:
        con.execute("create table dag_run (id integer, dag_id text, run_id text)")
        con.execute(
            "create table task_instance "
            "(dag_id text, run_id text, task_id text, start_date text, end_date text)"
        )
        con.executemany(
            "insert into dag_run values (?, ?, ?)",
            [
                (1, "warehouse_build", "old"),
                (2, "survey_ingest", "s"),
                (3, "warehouse_build", "new"),
            ],
        )
        at = "2026-12-02T10:00:{:02d}+00:00".format
        con.executemany(
            "insert into task_instance values ('warehouse_build', ?, ?, ?, ?)",
            [
                # An earlier run's dbt task, much longer: not the latest run.
                ("old", "dbt_build", at(0), at(50)),
                ("new", "source_freshness", at(0), at(4)),
                ("new", "dbt_build", at(5), at(20)),
                # Ran between dbt tasks: not part of the dbt stage.
                ("new", "plan_check", at(21), at(23)),
                ("new", "dbt_nodes", at(24), at(25)),
                ("new", "dbt_node", at(25), at(26)),
                ("new", "dbt_node", at(26), at(28)),
                ("new", "quality_gate", at(29), at(40)),
                # Never started: left out.
                ("new", "publish", None, None),
            ],
        )
    con.close()

    assert bench_dbt_in_airflow.dbt_stage_seconds(database) == (28 - 5 - 2, 4)
    assert bench_dbt_in_airflow.build_task_seconds(database) == 20 - 5


_WORKER_DAGS = """
import os

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def writes_its_pid():
    @task
    def write():
        with open(os.environ["SLW_TEST_PID_FILE"], "a") as pids:
            pids.write(f"{os.getpid()}\\n")

    @task
    def marked():
        raise RuntimeError("this task runs only when not marked successful")

    write() >> marked()


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def fails():
    @task
    def fail():
        raise RuntimeError("this task fails")

    fail()


writes_its_pid()
fails()
"""


@pytest.mark.e2e
def test_the_airflow_worker_runs_round_after_round_in_one_process_and_raises_on_a_failure(
    tmp_path,
):
    from _airflow_worker import AirflowWorker

    from social_leadership.local_airflow import airflow_environment

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "worker_dags.py").write_text(_WORKER_DAGS)
    pids = tmp_path / "pids.txt"
    airflow_home = tmp_path / "airflow_home"
    env = airflow_environment(
        airflow_home, {"AIRFLOW__CORE__DAGS_FOLDER": str(dags), "SLW_TEST_PID_FILE": str(pids)}
    )
    log = tmp_path / "worker.log"
    with AirflowWorker(env, log) as worker:
        worker.run(("writes_its_pid",), mark_success="marked")
        # Two DAGs in one round, as bench dbt_in_airflow's first: the failed one is named.
        with pytest.raises(
            RuntimeError, match=f"^fails did not succeed; see {re.escape(str(log))}"
        ):
            worker.run(("writes_its_pid", "fails"), mark_success="marked")
        worker.run(("writes_its_pid",), mark_success="marked")
        # Not marked: the task runs and fails its DAG.
        with pytest.raises(RuntimeError, match=r"^writes_its_pid did not succeed"):
            worker.run(("writes_its_pid",))

    # Every round ran in the one process the worker started, none in this one.
    ran_in = pids.read_text().split()
    assert len(ran_in) == 4
    assert len(set(ran_in)) == 1
    assert ran_in[0] != str(os.getpid())
    with closing(sqlite3.connect(airflow_home / "airflow.db")) as meta:
        states = meta.execute("select dag_id, state from dag_run order by id").fetchall()
    assert states == [
        ("writes_its_pid", "success"),
        ("writes_its_pid", "success"),
        ("fails", "failed"),
        ("writes_its_pid", "success"),
        ("writes_its_pid", "failed"),
    ]
    # Airflow's task logger writes each task's own log file, as in the pipeline's runs.
    fail_logs = list((airflow_home / "logs" / "dag_id=fails").rglob("*.log"))
    assert fail_logs
    assert "this task fails" in "".join(path.read_text() for path in fail_logs)
    assert "this task fails" in log.read_text()


def test_extract_time_slices_every_platform_into_parts_that_need_the_minimum_of_requests():
    # bench extract_requests counts the requests of extract_time's slices, summed: slicing
    # must neither add a request (a part batch per slice) nor leave an account out.
    for platform, batch in bench_extract_requests.BATCH_MAX.items():
        handles = [
            bench_extract_requests.handle(platform, n)
            for n in range(bench_extract_requests.ACCOUNTS)
        ]
        parts = bench_extract_time.slices(handles)
        assert len(parts) > 1
        assert [h for part in parts for h in part] == handles
        minimum = math.ceil(len(handles) / batch)
        assert sum(math.ceil(len(part) / batch) for part in parts) == minimum, platform
