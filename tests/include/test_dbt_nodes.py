"""The per-node view of a dbt build and ``dbt retry`` of a failed one (dbt_nodes.py), with
the failed build's rebuild windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import day

from social_leadership.dbt_nodes import (
    build_or_retry,
    merged_result,
    node_units,
    read_nodes,
    report_unit,
    report_view,
    run_folder,
    split_node_logs,
    view_units,
)
from social_leadership.dbt_runner import BuildPlan
from social_leadership.warehouse import connect


def _node(unique_id, status, seconds=0.5, attached_to=None, message=None, layer="marts"):
    return {
        "layer": layer,
        "unique_id": unique_id,
        "resource_type": unique_id.split(".")[0],
        "name": unique_id.split(".")[2],
        "status": status,
        "execution_time": seconds,
        "message": message,
        "failures": None,
        "relation": None,
        "attached_to": attached_to,
        "try": None,
    }


MODEL = "model.p.dim_company"


def test_a_model_with_a_failing_test_is_a_failed_unit_labelled_with_its_tests():
    nodes = [
        _node(MODEL, "success", 1.0, message="OK"),
        _node("test.p.unique_dim_company", "pass", 0.25, MODEL),
        _node("test.p.not_null_dim_company", "fail", 0.25, MODEL, "Got 3 results"),
        _node("unit_test.p.dim_company.keeps_one_row", "pass", 0.5, MODEL),
    ]
    (unit,) = node_units(nodes)
    assert [t["unique_id"] for t in unit["tests"]] == [n["unique_id"] for n in nodes[1:]]
    report = report_unit(unit, None)
    assert report.state == "failed"
    assert report.label == "model dim_company: success 2.0s, 3 tests 2 passed, 1 failed"
    assert any("not_null_dim_company: fail 0.25s (Got 3 results)" in line for line in report.lines)


@pytest.mark.parametrize(
    ("model_status", "test_status", "state"),
    [
        ("success", "pass", "success"),
        ("success", "warn", "warn"),
        ("error", "skipped", "failed"),
        ("skipped", "skipped", "skipped"),
        (None, None, "skipped"),
    ],
)
def test_the_unit_state_follows_the_node_and_its_tests(model_status, test_status, state):
    nodes = [_node(MODEL, model_status), _node("test.p.t", test_status, attached_to=MODEL)]
    assert report_unit(node_units(nodes)[0], None).state == state


def test_a_source_test_gets_a_unit_of_its_own():
    nodes = [_node("test.p.src_not_null", "pass", attached_to="source.p.raw.accounts")]
    (unit,) = node_units(nodes)
    assert (unit["resource_type"], unit["name"]) == ("source", "raw.accounts")
    assert report_unit(unit, None).state == "success"


def test_passing_units_share_one_instance_listed_by_layer_and_the_rest_stand_alone():
    nodes = [
        _node("model.p.stg_a", "success", 1.0, layer="staging"),
        _node("test.p.not_null_stg_a", "pass", 0.5, "model.p.stg_a"),
        _node("model.p.stg_b", "success", 1.0, layer="staging"),
        _node("model.p.dim_a", "success", 2.0),
        _node("test.p.unique_dim_a", "pass", 0.5, "model.p.dim_a"),
        _node("model.p.dim_b", "success", 1.0),
        _node("test.p.unique_dim_b", "warn", 0.5, "model.p.dim_b", "Got 1 result"),
        _node("model.p.fct_c", "skipped", 0.0),
        _node("seed.p.countries", "success", 0.5, layer="seeds"),
    ]
    views = view_units(node_units(nodes))
    reports = [report_view(view, None) for view in views]
    assert [(r.label, r.state) for r in reports] == [
        ("passed: 4 nodes success 5.5s, 2 tests 2 passed", "success"),
        ("model dim_b: success 1.5s, 1 test 1 warned", "warn"),
        ("model fct_c: skipped 0.0s", "skipped"),
    ]
    # Every node and test that passed is in the one instance's log with its status and
    # time, under a heading per layer, the layers in the order the build runs them.
    passed_log = reports[0].lines
    headings = [line for line in passed_log if line.startswith("== ")]
    assert headings == [
        "== seeds: 1 node success 0.5s",
        "== staging: 2 nodes success 2.5s, 1 test 1 passed",
        "== marts: 1 node success 2.5s, 1 test 1 passed",
    ]
    starts = [passed_log.index(heading) for heading in headings]
    seeds, staging, marts = (
        passed_log[start:end] for start, end in zip(starts, [*starts[1:], None], strict=True)
    )
    assert "seed countries: success 0.5s" in seeds
    assert "model stg_a: success 1.5s, 1 test 1 passed" in staging
    assert "model stg_b: success 1.0s" in staging
    assert "test not_null_stg_a: pass 0.50s" in staging
    assert "model dim_a: success 2.5s, 1 test 1 passed" in marts
    assert not any(line.startswith("model stg_") for line in (*seeds, *marts))
    shown = {n["unique_id"] for v in views for u in v["units"] for n in (u, *u["tests"])}
    assert shown == {node["unique_id"] for node in nodes}


def test_a_unit_whose_test_was_skipped_or_not_run_stands_alone():
    # dbt skips a relationships test when the other model it reads failed: the model
    # itself succeeded, but the unit is not one that passed.
    nodes = [
        _node("model.p.dim_a", "success", 1.0),
        _node("test.p.relationships_dim_a", "skipped", 0.0, "model.p.dim_a"),
        _node("model.p.dim_b", "success", 1.0),
        _node("test.p.unique_dim_b", None, 0.0, "model.p.dim_b"),
        _node("model.p.dim_c", "success", 1.0),
    ]
    views = view_units(node_units(nodes))
    assert [report_view(view, None).label for view in views] == [
        "passed: 1 node success 1.0s",
        "model dim_a: success 1.0s, 1 test 1 skipped",
        "model dim_b: success 1.0s, 1 test 1 not run",
    ]


def test_a_build_with_nothing_passed_has_no_passed_instance():
    nodes = [_node("model.p.fct_c", "error", 0.1), _node("model.p.fct_d", "skipped", 0.0)]
    views = view_units(node_units(nodes))
    assert [report_view(view, None).label for view in views] == [
        "model fct_c: error 0.1s",
        "model fct_d: skipped 0.0s",
    ]


def test_a_retrys_counts_cover_every_node_of_the_run():
    from social_leadership.dbt_runner import DbtResult

    # Try 1 built the model and passed one test; the retry ran the failed test again only.
    retry = DbtResult(args=("retry",), returncode=0, passed=1)
    nodes = [
        _node(MODEL, "success"),
        _node("test.p.unique_dim_company", "pass", attached_to=MODEL),
        _node("test.p.not_null_dim_company", "pass", attached_to=MODEL),
        _node("test.p.accepted_range", "warn", attached_to=MODEL),
        _node("model.p.never_reached", None),
    ]
    counted = merged_result(retry, nodes)
    assert (counted.passed, counted.warned, counted.errored, counted.skipped) == (3, 1, 0, 0)
    assert counted.args == ("retry",)


def test_split_node_logs_writes_each_nodes_lines_without_colour_codes(tmp_path):
    log = tmp_path / "dbt.log"
    events = [
        {"info": {"ts": "t1", "level": "info", "msg": "start"}, "data": {}},
        {
            "info": {"ts": "t2", "level": "info", "msg": "\x1b[32mOK\x1b[0m created"},
            "data": {"node_info": {"unique_id": MODEL}},
        },
        {
            "info": {"ts": "t3", "level": "debug", "msg": "select 1"},
            "data": {"node_info": {"unique_id": MODEL}},
        },
    ]
    log.write_text("\n".join(json.dumps(e) for e in events) + "\nnot json\n")
    assert split_node_logs(log, tmp_path / "nodes") == 1
    text = (tmp_path / "nodes" / f"{MODEL}.log").read_text()
    assert text == "t2 [info] OK created\nt3 [debug] select 1\n"


def _results(path):
    payload = json.loads(path.read_text())
    return {r["unique_id"]: r["status"] for r in payload["results"]}


def test_a_later_try_retries_only_what_failed_or_was_skipped(copied_built_warehouse):
    settings = copied_built_warehouse
    settings.ensure_dirs()
    # Days 5-6 reloaded since the last build: windows reaching back before the lookback.
    plan = BuildPlan(False, "incremental", rebuild_windows=((day(5), day(6)),))
    # An account of an executive the roster does not hold: a relationships test fails.
    with connect(settings.warehouse_path) as con:
        con.execute(
            "insert into raw.roster_accounts values ('ghost', 'x', 'ghost_handle', ?)",
            [datetime.now(UTC)],
        )
    first = build_or_retry(settings, "manual__2026-01-05", plan)
    assert not first.succeeded
    assert not first.retried
    folder = run_folder(settings, "manual__2026-01-05")
    first_results = _results(folder / "try-1" / "run_results.json")
    to_rerun = {uid for uid, status in first_results.items() if status in ("fail", "skipped")}
    failed = [uid for uid, status in first_results.items() if status == "fail"]
    assert failed
    assert all("stg_roster__accounts" in uid for uid in failed)
    assert any(uid.startswith("model.") for uid in to_rerun)  # the children were skipped
    # The node view lists every node of the manifest, also for a failed build.
    manifest = json.loads((folder / "manifest.json").read_text())
    expected = {
        uid
        for uid, node in {**manifest["nodes"], **manifest["unit_tests"]}.items()
        if node["resource_type"] in ("model", "seed", "snapshot", "test", "unit_test")
    }
    assert {n["unique_id"] for n in read_nodes(folder)} == expected
    failed_unit = next(
        u for u in node_units(first.nodes) if u["unique_id"].endswith(".stg_roster__accounts")
    )
    assert report_unit(failed_unit, folder).state == "failed"

    with connect(settings.warehouse_path) as con:
        con.execute("delete from raw.roster_accounts where executive_id = 'ghost'")
    # Planned again for the retry, the windows could differ (here: none); the retry runs
    # with the failed build's own.
    second = build_or_retry(settings, "manual__2026-01-05", BuildPlan(False, "incremental"))
    assert second.succeeded
    assert second.retried
    assert second.attempt == 2
    retry_invocation = json.loads((folder / "try-2" / "run_results.json").read_text())["metadata"][
        "invocation_id"
    ]
    with connect(settings.warehouse_path, read_only=True) as con:
        rebuilt_from = con.execute(
            "select min(rebuild_from) from audit.incremental_windows "
            "where invocation_id = ? and model_name = 'fct_executive_reach_daily'",
            [retry_invocation],
        ).fetchone()
    assert rebuilt_from == (day(5),)
    # And the run records that build: its plan and its start (raw rows loaded after it
    # are the next build's to plan).
    assert second.plan == plan
    assert second.started_at == first.started_at
    # dbt retry ran exactly what failed or was skipped: nothing that had succeeded.
    assert set(_results(folder / "try-2" / "run_results.json")) == to_rerun
    merged = {n["unique_id"]: n for n in read_nodes(folder)}
    assert {n["status"] for n in merged.values()} <= {"success", "pass"}
    # (dbt also lists exposures in run_results.json; they have no instance in the view.)
    assert {uid for uid, n in merged.items() if n["try"] == 2} == to_rerun & expected
    # A third try of a run that succeeded builds again rather than retrying nothing.
    third = build_or_retry(settings, "manual__2026-01-05", plan)
    assert third.succeeded
    assert not third.retried


def test_pruning_old_run_folders_removes_run_folders_only(tmp_path):
    # `runs` lies beside dbt's target folder wherever SLW_DBT_TARGET_DIR puts it
    # (/srv/target: /srv/runs): every folder there but the newest was removed, any folder.
    import os

    from social_leadership.dbt_nodes import BUILD_FILE, RUN_FOLDERS_KEPT, _prune_run_folders

    runs = tmp_path / "runs"
    for number in range(RUN_FOLDERS_KEPT + 5):
        folder = runs / f"run-{number:02d}"
        folder.mkdir(parents=True)
        (folder / BUILD_FILE).write_text("{}", encoding="utf-8")
        os.utime(folder, (1_000_000 + number, 1_000_000 + number))
    foreign = runs / "someone-elses"
    (foreign / "data").mkdir(parents=True)
    os.utime(foreign, (1, 1))
    # A run folder made before build.json was written: its tries say what it is.
    (runs / "older-run" / "try-1").mkdir(parents=True)
    os.utime(runs / "older-run", (2, 2))
    current = runs / "run-00"

    _prune_run_folders(runs, keep=current)

    left = sorted(path.name for path in runs.iterdir())
    newest = [f"run-{n:02d}" for n in range(RUN_FOLDERS_KEPT + 5)][-(RUN_FOLDERS_KEPT - 1) :]
    assert left == sorted(["someone-elses", "run-00", *newest])
