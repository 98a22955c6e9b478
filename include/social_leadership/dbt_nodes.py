"""Every dbt node of a build, visible in Airflow at the cost of one ``dbt build``.

``warehouse_build`` runs one ``dbt build`` (dbt's file log as JSON lines) and keeps that
invocation's artefacts in a folder of its own per DAG run (:func:`run_folder`):

- ``run_results.json`` of the latest invocation: the ``--state`` of a ``dbt retry``;
- ``build.json``: the build's plan (its rebuild windows, :attr:`BuildPlan.env`) and start,
  which a ``dbt retry`` runs with and records, not a plan made again at the retry;
- ``manifest.json``: what each node is (type, name, relation, the node a test checks);
- ``try-<n>/``: each invocation's console output and run_results.json, and its JSON log
  split per node (``try-<n>/nodes/<unique_id>.log``);
- ``nodes.json``: every node's latest status, merged over the invocations.

A later try of the same DAG run (an Airflow retry, or a user clearing the task) finds the
earlier run_results.json and runs ``dbt retry`` on it: only the nodes that failed or were
skipped run again, and the merged view keeps what succeeded before. The per-node view in
Airflow is a set of mapped task instances built from ``nodes.json``: units of a model,
seed or snapshot with the tests that check it (:func:`node_units`, :func:`report_unit`),
each unit needing a look on its own instance and those that passed together in one, layer
by layer (:func:`view_units`, :func:`report_view`). One instance per node would cost more
Airflow overhead than the build itself (README, "dbt in Airflow").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from social_leadership.dbt_runner import (
    STATUS_BUCKETS,
    BuildPlan,
    DbtError,
    DbtResult,
    run_dbt,
)
from social_leadership.formatting import counted
from social_leadership.landing import safe_run_id
from social_leadership.settings import Settings

# Resource types that run something in the warehouse: each is a unit of the view, with
# the tests that check it folded in.
EXECUTABLE_TYPES = ("model", "seed", "snapshot")
TEST_TYPES = ("test", "unit_test")
# Run folders kept beside the newest: enough to retry any run still worth retrying.
RUN_FOLDERS_KEPT = 14
NODES_FILE = "nodes.json"
BUILD_FILE = "build.json"
_ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def run_folder(settings: Settings, run_id: str) -> Path:
    """The folder holding one DAG run's dbt artefacts (beside dbt's target folder)."""
    return settings.dbt_target_dir.parent / "runs" / safe_run_id(run_id)


@dataclass(frozen=True)
class BuildAttempt:
    """One invocation of dbt for a DAG run: a build, or a retry of its failed nodes."""

    result: DbtResult
    retried: bool
    attempt: int
    run_dir: Path
    nodes: list[dict[str, Any]]
    # The build this invocation ran or, for a retry, continued: its plan and its start,
    # what the run records (raw rows loaded after that start are the next build's).
    plan: BuildPlan
    started_at: datetime

    @property
    def succeeded(self) -> bool:
        return self.result.returncode == 0


def _retryable(run_results: Path) -> bool:
    """Whether an earlier invocation left nodes that ``dbt retry`` would run again."""
    try:
        payload = json.loads(run_results.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return any(
        STATUS_BUCKETS.get(str(node.get("status", "")).lower(), "error") in ("error", "skip")
        and str(node.get("status", "")).lower() != "no-op"
        for node in payload.get("results", [])
    )


def _save_build(path: Path, plan: BuildPlan, started_at: datetime) -> None:
    build = {**plan.as_dict(), "started_at": started_at.isoformat()}
    path.write_text(json.dumps(build), encoding="utf-8")


def _load_build(path: Path) -> tuple[BuildPlan, datetime]:
    build = json.loads(path.read_text(encoding="utf-8"))
    return BuildPlan.from_dict(build), datetime.fromisoformat(build["started_at"])


def build_or_retry(
    settings: Settings, run_id: str, plan: BuildPlan, started_at: datetime | None = None
) -> BuildAttempt:
    """``dbt build`` for this DAG run with ``plan`` (started now unless ``started_at``), or
    ``dbt retry`` when an earlier try of the same run left failed or skipped nodes, with
    that build's own plan; the run folder is updated either way, even on failure."""
    folder = run_folder(settings, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    _prune_run_folders(folder.parent, keep=folder)
    attempt = 1 + sum(1 for path in folder.glob("try-*") if path.is_dir())
    retried = _retryable(folder / "run_results.json")
    args = ["retry", "--state", str(folder)] if retried else plan.args
    # A retry runs the build's own nodes with the build's own windows: dbt retry repeats
    # the build's args, and the windows travel beside them (a new plan could differ).
    build = folder / BUILD_FILE
    if retried and build.is_file():
        plan, started_at = _load_build(build)
    else:
        started_at = started_at or datetime.now(UTC)
        _save_build(build, plan, started_at)
    try_dir = folder / f"try-{attempt}"
    try:
        result = run_dbt(
            args, settings, log_path=try_dir / "console.log", json_log_dir=try_dir, env=plan.env
        )
    except DbtError as exc:
        result = exc.result
    target = settings.dbt_target_dir
    for name in ("run_results.json", "manifest.json"):
        if (target / name).is_file():
            shutil.copyfile(target / name, try_dir / name)
    if (try_dir / "run_results.json").is_file():
        shutil.copyfile(try_dir / "run_results.json", folder / "run_results.json")
    elif not retried:
        # No results at all (dbt stopped before running any node): nothing to retry from.
        (folder / "run_results.json").unlink(missing_ok=True)
    if (try_dir / "manifest.json").is_file():
        shutil.copyfile(try_dir / "manifest.json", folder / "manifest.json")
    split_node_logs(try_dir / "dbt.log", try_dir / "nodes")
    # Split into the node files (the rest of it is in console.log): not kept twice.
    (try_dir / "dbt.log").unlink(missing_ok=True)
    nodes = merge_nodes(folder, attempt)
    return BuildAttempt(result, retried, attempt, folder, nodes, plan, started_at)


def _prune_run_folders(runs_dir: Path, *, keep: Path) -> None:
    """Remove all but the newest run folders; only run folders (:func:`_is_run_folder`):
    ``runs`` lies beside dbt's target folder, wherever SLW_DBT_TARGET_DIR puts
    it (``/srv/target`` makes it ``/srv/runs``), where other folders may be."""
    folders = sorted(
        (
            path
            for path in runs_dir.iterdir()
            if path.is_dir() and path != keep and _is_run_folder(path)
        ),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    for old in folders[RUN_FOLDERS_KEPT - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


def _is_run_folder(path: Path) -> bool:
    """A run's folder: its build's BUILD_FILE, or (made before that file) its tries."""
    return (path / BUILD_FILE).is_file() or any(child.is_dir() for child in path.glob("try-*"))


def _node_file_name(unique_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", unique_id)
    if len(safe) > 120:
        # Generic tests' ids carry their arguments: shortened, kept apart by a digest.
        safe = f"{safe[:100]}.{hashlib.sha256(unique_id.encode()).hexdigest()[:12]}"
    return safe + ".log"


def split_node_logs(json_log: Path, nodes_dir: Path) -> int:
    """Write each node's lines of dbt's JSON log to ``nodes_dir/<unique_id>.log`` as
    ``<time> [<level>] <message>``; return how many nodes had lines."""
    if not json_log.is_file():
        return 0
    lines: dict[str, list[str]] = {}
    with json_log.open(encoding="utf-8", errors="replace") as handle:
        for raw in handle:
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue
            data = event.get("data") or {}
            unique_id = (data.get("node_info") or {}).get("unique_id")
            if not unique_id:
                continue
            info = event.get("info") or {}
            message = _ANSI_COLOUR.sub("", str(info.get("msg", "")))
            lines.setdefault(unique_id, []).append(
                f"{info.get('ts', '')} [{info.get('level', '')}] {message}"
            )
    nodes_dir.mkdir(parents=True, exist_ok=True)
    for unique_id, node_lines in lines.items():
        (nodes_dir / _node_file_name(unique_id)).write_text(
            "\n".join(node_lines) + "\n", encoding="utf-8"
        )
    return len(lines)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _checked_node(definition: dict[str, Any]) -> str | None:
    """The node a test checks: dbt's ``attached_node``, else its first dependency (a
    source for source tests, the model for unit tests)."""
    attached = definition.get("attached_node")
    if attached:
        return str(attached)
    if definition.get("resource_type") == "unit_test" and definition.get("model"):
        depends = definition.get("depends_on", {}).get("nodes", [])
        model = [node for node in depends if node.endswith(f".{definition['model']}")]
        if model:
            return model[0]
    depends = definition.get("depends_on", {}).get("nodes", [])
    return str(depends[0]) if depends else None


def _layer(definition: dict[str, Any]) -> str:
    """Where a node sits in the project: a model's folder under models/ (staging,
    intermediate, marts), else its resource type (seeds, snapshots)."""
    fqn = definition.get("fqn") or []
    if definition.get("resource_type") == "model" and len(fqn) > 2:
        return str(fqn[1])
    return f"{definition.get('resource_type', 'node')}s"


def merge_nodes(folder: Path, attempt: int) -> list[dict[str, Any]]:
    """Every node of the manifest with its latest status over this run's tries; written to
    ``nodes.json`` and returned (sorted by unique_id)."""
    manifest = _read_json(folder / "manifest.json")
    definitions: dict[str, dict[str, Any]] = {
        **manifest.get("nodes", {}),
        **manifest.get("unit_tests", {}),
    }
    previous = {
        node["unique_id"]: node for node in _read_json(folder / NODES_FILE).get("nodes", [])
    }
    merged: dict[str, dict[str, Any]] = {}
    for unique_id, definition in definitions.items():
        resource_type = str(definition.get("resource_type", ""))
        if resource_type not in (*EXECUTABLE_TYPES, *TEST_TYPES):
            continue
        merged[unique_id] = previous.get(unique_id) or {
            "unique_id": unique_id,
            "resource_type": resource_type,
            "name": str(definition.get("name", unique_id)),
            "status": None,
            "execution_time": None,
            "message": None,
            "failures": None,
            "relation": definition.get("relation_name"),
            "attached_to": _checked_node(definition) if resource_type in TEST_TYPES else None,
            "layer": _layer(definition),
            "try": None,
        }
    results = _read_json(folder / f"try-{attempt}" / "run_results.json").get("results", [])
    for result in results:
        node = merged.get(str(result.get("unique_id")))
        if node is None:
            continue
        node.update(
            status=str(result.get("status", "")).lower() or None,
            execution_time=round(float(result.get("execution_time") or 0.0), 3),
            message=result.get("message"),
            failures=result.get("failures"),
        )
        node["try"] = attempt
    nodes = [merged[key] for key in sorted(merged)]
    (folder / NODES_FILE).write_text(
        json.dumps({"attempt": attempt, "nodes": nodes}, indent=1), encoding="utf-8"
    )
    return nodes


def merged_result(result: DbtResult, nodes: list[dict[str, Any]]) -> DbtResult:
    """``result`` with its counts taken from the run's merged node list: after a
    ``dbt retry`` the invocation's own counts cover only the nodes it ran again, while the
    run's figures (its XCom, ``audit.dbt_builds``, ``audit.runs``) are about every node."""
    counts = Counter(_bucket(node["status"]) for node in nodes if node.get("status"))
    return dataclasses.replace(
        result,
        passed=counts["pass"],
        warned=counts["warn"],
        errored=counts["error"],
        skipped=counts["skip"],
    )


def read_nodes(folder: Path) -> list[dict[str, Any]]:
    """The merged node view of a run folder (empty when no build wrote one)."""
    return list(_read_json(folder / NODES_FILE).get("nodes", []))


def node_units(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One unit per model, seed and snapshot (and per source that has tests), each with the
    tests that check it: what one mapped task instance shows when it needs a look, or one
    member of the instance of what passed."""
    units: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if node["resource_type"] in EXECUTABLE_TYPES:
            units[node["unique_id"]] = {**node, "tests": []}
    for node in nodes:
        if node["resource_type"] not in TEST_TYPES:
            continue
        owner = node.get("attached_to") or node["unique_id"]
        if owner not in units:
            # A source's tests (sources do not run): the source is a unit of its own.
            parts = owner.split(".")
            units[owner] = {
                "unique_id": owner,
                "resource_type": parts[0],
                "name": ".".join(parts[2:]) or owner,
                "status": None,
                "execution_time": None,
                "message": None,
                "failures": None,
                "relation": None,
                "attached_to": None,
                "layer": "sources",
                "try": None,
                "tests": [],
            }
        units[owner]["tests"].append(node)
    return [units[key] for key in sorted(units, key=_unit_order)]


def _unit_order(unique_id: str) -> tuple[int, str]:
    kind = unique_id.split(".")[0]
    order = {"seed": 0, "source": 1, "snapshot": 2, "model": 3}
    return order.get(kind, 4), unique_id


def _bucket(status: str | None) -> str:
    if status is None:
        return "not run"
    return STATUS_BUCKETS.get(status, "error")


@dataclass(frozen=True)
class UnitReport:
    """What a unit's Airflow instance shows: its label, its state and its log lines."""

    label: str
    state: str  # success | warn | failed | skipped
    lines: list[str]


def report_unit(unit: dict[str, Any], folder: Path | None) -> UnitReport:
    """The label (``model dim_company: success 0.4s, 5 tests 5 passed``), the instance state
    and the log lines of one unit: the node's dbt log, then each test's result (with the
    log of any test that did not pass)."""
    tests = unit.get("tests", [])
    own = _bucket(unit.get("status")) if unit["resource_type"] in EXECUTABLE_TYPES else None
    test_buckets = [_bucket(test.get("status")) for test in tests]
    buckets = [b for b in (own, *test_buckets) if b is not None]
    if "error" in buckets:
        state = "failed"
    elif buckets and all(b in ("skip", "not run") for b in buckets):
        state = "skipped"
    elif "warn" in buckets:
        state = "warn"
    else:
        state = "success"
    seconds = _seconds([unit])
    shown_status = unit.get("status") or ("not run" if own else state)
    by_word = {
        word: sum(b == bucket for b in test_buckets)
        for word, bucket in (
            ("passed", "pass"),
            ("warned", "warn"),
            ("failed", "error"),
            ("skipped", "skip"),
            ("not run", "not run"),
        )
    }
    tests_text = ", ".join(f"{n} {word}" for word, n in by_word.items() if n)
    label = f"{unit['resource_type']} {unit['name']}: {shown_status} {seconds:.1f}s" + (
        f", {counted(len(tests), 'test')} {tests_text}" if tests else ""
    )
    lines = [label]
    if unit.get("relation"):
        lines.append(f"relation: {unit['relation']}")
    if own is not None:
        lines.append(f"message: {unit.get('message')}")
        lines.extend(_node_log(folder, unit))
    for test in tests:
        lines.append(
            f"{test['resource_type']} {test['name']}: {test.get('status') or 'not run'}"
            f" {float(test.get('execution_time') or 0.0):.2f}s"
            + (f" ({test['message']})" if test.get("message") else "")
        )
        if _bucket(test.get("status")) in ("error", "warn"):
            lines.extend("    " + line for line in _node_log(folder, test))
    return UnitReport(label, state, lines)


def _node_log(folder: Path | None, node: dict[str, Any]) -> list[str]:
    if folder is None or not node.get("try"):
        return []
    path = folder / f"try-{node['try']}" / "nodes" / _node_file_name(node["unique_id"])
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


LAYER_ORDER = ("seeds", "sources", "snapshots", "staging", "intermediate", "marts")
# The name and the group of the one instance that shows every unit that passed.
PASSED = "passed"


def _layer_order(name: str) -> tuple[int, str]:
    return (LAYER_ORDER.index(name) if name in LAYER_ORDER else 99, name)


def _passed(unit: dict[str, Any]) -> bool:
    """Whether the unit and every test of it passed (a skipped or not-run test is a
    reason to look, as a warning is)."""
    nodes = [*((unit,) if unit["resource_type"] in EXECUTABLE_TYPES else ()), *unit["tests"]]
    return all(_bucket(node.get("status")) == "pass" for node in nodes)


def view_units(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the mapped instances show: each unit that needs a look (failed, warned, skipped
    or not run, itself or one of its tests) alone, under its own name; the units that
    passed together in one instance, listed layer by layer, each with its status, duration
    and tests. A green build is one instance: each instance costs Airflow a fixed 0.2-0.3 s,
    which grouping by layer (five) or by model (about thirty) would add to every build
    (README, "dbt in Airflow")."""
    passed: list[dict[str, Any]] = []
    alone: list[dict[str, Any]] = []
    for unit in units:
        if _passed(unit):
            passed.append(unit)
        else:
            alone.append({"group": None, "units": [unit]})
    return ([{"group": PASSED, "units": passed}] if passed else []) + alone


def _unit_layer(unit: dict[str, Any]) -> str:
    """The unit's layer (a node list written before nodes had one: its type, as _layer
    names it)."""
    return str(unit.get("layer") or f"{unit['resource_type']}s")


def _seconds(units: list[dict[str, Any]]) -> float:
    """The run time of ``units`` and of their tests."""
    tests = [test for unit in units for test in unit.get("tests", [])]
    return sum(float(node.get("execution_time") or 0.0) for node in (*units, *tests))


def _worst(states: set[str]) -> str:
    """The state of an instance showing units in ``states``: failed, else warn, skipped
    when all were skipped, else success."""
    return next(
        (state for state in ("failed", "warn") if state in states),
        "skipped" if states == {"skipped"} else "success",
    )


def _summary(units: list[dict[str, Any]], state: str) -> str:
    """``<n> nodes <state> <seconds>s, <m> tests <k> passed`` of ``units`` and their tests."""
    tests = [test for unit in units for test in unit.get("tests", [])]
    passed = sum(_bucket(test.get("status")) == "pass" for test in tests)
    return f"{counted(len(units), 'node')} {state} {_seconds(units):.1f}s" + (
        f", {counted(len(tests), 'test')} {passed} passed" if tests else ""
    )


def report_view(view: dict[str, Any], folder: Path | None) -> UnitReport:
    """One instance's label, state and log: a lone unit's own report, or the passed group's
    (``passed: 30 nodes success 8.5s, 111 tests 111 passed``) followed, layer by layer
    (``== staging: 8 nodes success 0.9s, 17 tests 17 passed``), by each member's."""
    units = view["units"]
    if view.get("group") is None:
        (unit,) = units
        return report_unit(unit, folder)
    reports = {unit["unique_id"]: report_unit(unit, folder) for unit in units}
    state = _worst({report.state for report in reports.values()})
    label = f"{view['group']}: {_summary(units, state)}"
    lines = [label]
    layers: dict[str, list[dict[str, Any]]] = {}
    for unit in units:
        layers.setdefault(_unit_layer(unit), []).append(unit)
    for name in sorted(layers, key=_layer_order):
        lines += ["", f"== {name}: {_summary(layers[name], state)}"]
        for unit in layers[name]:
            lines += ["", *reports[unit["unique_id"]].lines]
    return UnitReport(label, state, lines)
