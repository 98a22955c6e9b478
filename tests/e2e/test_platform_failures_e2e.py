"""End to end through real Airflow (``dag.test()``, as ``airflow dags test``): a
``platform_metrics`` run where some platforms fail, one server echoes the request with its
token, and others have no connection.

The run must end ``failed`` after the good platforms loaded and the warehouse was
signalled; failed platforms are ``failed`` in the audit, unconfigured ones ``not_configured``
and skipped; and the token is nowhere: not in the warehouse, the landing zone, Airflow's
metadata DB or any log. A second run with only good and unconfigured platforms succeeds.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import pytest
from slw_testing import clear_of_midnight

from social_leadership.local_airflow import AirflowCommandError, airflow_environment, run_dags
from social_leadership.sandbox.server import SandboxServer
from social_leadership.settings import load_settings

pytestmark = pytest.mark.e2e

# A token with characters that travel percent-encoded (as base64 tokens do).
SENTINEL = "SLW-sentinel/9xQ+tok=Zr7"
ROSTER = [
    # executive_id, x, bluesky, mastodon, youtube, facebook, linkedin, threads
    ("e2e-1", "E2eExecOne", "e2e-one.bsky.social", "one@mastodon.example", "@e2eone",
     "e2e.one.page", "urn:li:organization:9001", "e2e.one"),
    ("e2e-2", "E2eExecTwo", "e2e-two.bsky.social", "two@mastodon.example", "@e2etwo",
     "e2e.two.page", "", "e2e.two"),
]  # fmt: skip
GOOD = ("bluesky", "x")
FAILING = ("youtube", "facebook")
NOT_CONFIGURED = ("instagram", "linkedin", "threads")


def secret_fragments() -> set[bytes]:
    """The sentinel in every form it can be written, and every 10 characters of each."""
    forms = {SENTINEL, quote(SENTINEL, safe=""), quote(SENTINEL), quote_plus(SENTINEL)}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    forms.add(SENTINEL.replace("/", "\\/"))
    return {f[i : i + 10].encode() for f in forms for i in range(len(f) - 9)}


def write_roster(path: Path) -> None:
    header = "executive_id,full_name,title,company,country,sector,is_synthetic,x,bluesky,"
    header += "mastodon,youtube,facebook,instagram,linkedin,threads,valid_from"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header.split(","))
        for number, (executive, x, bsky, mastodon, youtube, page, linkedin, threads) in enumerate(
            ROSTER
        ):
            writer.writerow(
                [executive, f"E2E Exec {number}", "Chief Executive Officer", f"E2E Co {number}",
                 "DE", "Energy", "true", x, bsky, mastodon, youtube, page, "", linkedin, threads,
                 ""]
            )  # fmt: skip


def run_platform_metrics(env: dict[str, str], logs_dir: Path) -> str:
    """Runs the DAG; returns "success" or "failed" (a failed run raises in run_dags)."""
    try:
        run_dags(["platform_metrics"], env, logs_dir)
    except AirflowCommandError:
        return "failed"
    return "success"


def metadata(airflow_home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(airflow_home / "airflow.db") as meta:
        return meta.execute(sql).fetchall()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("platform_failures")
    roster = tmp / "roster.csv"
    write_roster(roster)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLW_DATA_DIR", str(tmp / "data"))
        mp.setenv("SLW_ROSTER_PATH", str(roster))
        settings = load_settings()
        settings.ensure_dirs()
        airflow_home = tmp / "airflow_home"
        with SandboxServer(roster, token=SENTINEL, youtube_key=SENTINEL) as sandbox:
            base = sandbox.base_url
            sandbox_connections = sandbox.connection_env()
            connections = {
                **{
                    name: sandbox_connections[name]
                    for name in (
                        "AIRFLOW_CONN_SLW_BLUESKY",
                        "AIRFLOW_CONN_SLW_X",
                        "AIRFLOW_CONN_SLW_YOUTUBE",
                        "AIRFLOW_CONN_SLW_FACEBOOK",
                    )
                },
                "AIRFLOW_CONN_SLW_MASTODON": json.dumps(
                    {
                        "conn_type": "http",
                        "host": base + "/mastodon/{instance}",
                        "password": SENTINEL,
                        "extra": {"allowed_instances": ["mastodon.example"]},
                    }
                ),
            }
            env = airflow_environment(airflow_home, {**settings.as_env(), **connections})
            for name in [n for n in env if n.startswith("AIRFLOW_CONN_SLW_")]:
                if name not in connections:
                    del env[name]
            # Servers that quote the request, token included: a refusal (400) fails the
            # platform; Mastodon's 404 is a per-account answer whose body is landed.
            for platform in FAILING:
                sandbox.set_fault("echo", platform=platform, status=400)
            sandbox.set_fault("echo", platform="mastodon", status=404)
            # Both runs load today's counts: none may cross midnight (UTC).
            clear_of_midnight(300)
            first = run_platform_metrics(env, settings.logs_dir)
            first_requests = list(zip(sandbox.request_log, sandbox.authorization_log, strict=True))
            first_run = metadata(
                airflow_home, "select run_id from dag_run order by id desc limit 1"
            )[0][0]

            sandbox.clear_faults()
            for platform in (*FAILING, "mastodon"):
                del env[f"AIRFLOW_CONN_SLW_{platform.upper()}"]
            # Its own log folder: the first run's log is one of the files searched below.
            second = run_platform_metrics(env, settings.logs_dir / "second_run")
        yield {
            "settings": settings,
            "airflow_home": airflow_home,
            "states": (first, second),
            "first_run": first_run,
            "first_requests": first_requests,
        }


def _audit(settings, run_id: str) -> dict[str, tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select platform, status, accounts_loaded, message from audit.platform_loads "
            "where run_id = ?",
            [run_id],
        ).fetchall()
    return {platform: rest for platform, *rest in rows}


def test_a_run_with_failed_platforms_fails_after_the_others_loaded(runs):
    assert runs["states"][0] == "failed"
    airflow_home, run_id = runs["airflow_home"], runs["first_run"]
    assert metadata(airflow_home, f"select state from dag_run where run_id = '{run_id}'") == [
        ("failed",)
    ]
    tasks = dict(
        metadata(
            airflow_home,
            f"select task_id, state from task_instance where run_id = '{run_id}'",
        )
    )
    assert {tasks[f"load_{p}"] for p in GOOD} == {"success"}
    assert {tasks[f"load_{p}"] for p in FAILING} == {"failed"}
    assert {tasks[f"extract_{p}"] for p in NOT_CONFIGURED} == {"skipped"}
    assert {tasks[f"load_{p}"] for p in NOT_CONFIGURED} == {"skipped"}
    # The warehouse was still signalled for what arrived; the last check failed the run.
    assert tasks["signal_warehouse"] == "success"
    assert tasks["check_platforms"] == "failed"


def test_the_audit_says_which_platform_failed_loaded_or_is_not_configured(runs):
    audit = _audit(runs["settings"], runs["first_run"])

    assert {p: status for p, (status, _, _) in audit.items()} == {
        "bluesky": "loaded",
        "x": "loaded",
        # Its server answered 404 for both accounts: every account not found reads as a
        # wrong host or path, and fails the platform.
        "mastodon": "failed",
        "youtube": "failed",
        "facebook": "failed",
        "instagram": "not_configured",
        "linkedin": "not_configured",
        "threads": "not_configured",
    }
    assert audit["x"][1] == audit["bluesky"][1] == len(ROSTER)
    assert "request rejected" in audit["youtube"][2]  # the server's reason is kept
    assert "every account it answered about (2) is not found" in audit["mastodon"][2]


def test_an_unconfigured_platform_logs_no_error(runs):
    """The second run went well: no task log of its unconfigured platforms holds an error
    line for someone on call to chase (Airflow logged 'XCom not found' for each)."""
    airflow_home = runs["airflow_home"]
    [(second_run,)] = metadata(airflow_home, "select run_id from dag_run order by id desc limit 1")
    run_logs = airflow_home / "logs" / "dag_id=platform_metrics" / f"run_id={second_run}"
    found = {}
    for platform in NOT_CONFIGURED:
        for task in (f"extract_{platform}", f"load_{platform}"):
            [log] = (run_logs / f"task_id={task}").glob("attempt=*.log")
            found[task] = [line for line in log.read_text().splitlines() if "[error" in line]

    assert runs["states"][1] == "success"
    assert found == {task: [] for task in found}


def test_good_platforms_rows_are_in_the_warehouse(runs):
    settings = runs["settings"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select platform, account_status, count(*) from raw.platform_metrics "
            "where source = 'api' group by all order by all"
        ).fetchall()
    assert ("bluesky", "ok", len(ROSTER)) in rows
    assert ("x", "ok", len(ROSTER)) in rows


def test_unconfigured_platforms_were_never_called(runs):
    paths = {path for (path, _), _ in runs["first_requests"]}
    assert not [p for p in paths if p.startswith(("/v2/networkSizes", "/v1.0/profile_lookup"))]
    assert not [p for p in paths if p.startswith("/v21.0/17841")]  # Instagram's own account


def test_unconfigured_platforms_do_not_fail_a_run(runs):
    assert runs["states"][1] == "success"
    airflow_home = runs["airflow_home"]
    [(run_id,)] = metadata(airflow_home, "select run_id from dag_run order by id desc limit 1")
    audit = _audit(runs["settings"], run_id)
    assert {p for p, (status, _, _) in audit.items() if status == "loaded"} == set(GOOD)
    assert {p for p, (status, _, _) in audit.items() if status == "not_configured"} == {
        *FAILING,
        "mastodon",
        *NOT_CONFIGURED,
    }


def _warehouse_texts(path: Path) -> list[str]:
    """Every text value of every table (DuckDB may compress strings in the file)."""
    texts: list[str] = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR'"
        ).fetchall()
        for schema, table, column in columns:
            values = con.execute(f'select distinct "{column}" from "{schema}"."{table}"')
            texts.extend(str(value) for (value,) in values.fetchall() if value is not None)
    return texts


def test_the_token_is_nowhere_it_was_stored_or_logged(runs):
    settings, airflow_home = runs["settings"], runs["airflow_home"]
    fragments = secret_fragments()
    # What the echoing servers got, and sent back, held the token: in the query (YouTube's
    # key=, percent-encoded) and in the Authorization header (Facebook, Mastodon).
    sent = {path.split("/")[1]: (query, authorization) for (path, query), (_, authorization)
            in runs["first_requests"]}  # fmt: skip
    assert quote(SENTINEL, safe="") in sent["youtube"][0]
    assert sent["mastodon"][1] == f"Bearer {SENTINEL}"

    files = [p for root in (settings.data_dir, airflow_home) for p in root.rglob("*")]
    files = [p for p in files if p.is_file()]
    landed = [p for p in files if p.name.endswith(".json.gz") and "platform=mastodon" in str(p)]
    assert b"REDACTED" in gzip.decompress(landed[0].read_bytes())  # the echo, scrubbed
    first_log = settings.logs_dir / "airflow-dags-test.log"
    assert "check_platforms" in first_log.read_text()
    found = []
    for path in files:
        payload = path.read_bytes()
        if path.name.endswith(".gz"):
            payload = gzip.decompress(payload)
        found += [(str(path), fragment) for fragment in fragments if fragment in payload]
    texts = "\n".join(_warehouse_texts(settings.warehouse_path)).encode()
    found += [("warehouse tables", f) for f in fragments if f in texts]
    rows = metadata(airflow_home, "select value from xcom")
    xcoms = "\n".join(str(value) for (value,) in rows).encode()
    found += [("xcom table", f) for f in fragments if f in xcoms]

    assert found == []


def test_the_failed_runs_summary_names_what_failed_without_changing_its_state(runs):
    settings, airflow_home, run_id = runs["settings"], runs["airflow_home"], runs["first_run"]
    # run_summary ran after the failure (a teardown), and the run stayed failed.
    assert metadata(
        airflow_home,
        f"select state from task_instance where run_id = '{run_id}' and task_id = 'run_summary'",
    ) == [("success",)]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        outcome, failed, by_source = con.execute(
            "select outcome, failed_tasks, rows_loaded_by_source from audit.runs "
            "where dag_id = 'platform_metrics' and run_id = ?",
            [run_id],
        ).fetchone()
    assert outcome == "failed"
    # The failed loads, not the check that failed the run for them.
    assert {"load_youtube", "load_facebook"} <= set(failed.split(", "))
    assert "check_platforms" not in failed
    rows = json.loads(by_source)
    assert rows["x"] == rows["bluesky"] == len(ROSTER)
    assert rows["youtube"] == rows["facebook"] == 0


def test_a_refused_roster_file_fails_the_run_after_the_stored_roster_s_counts_loaded(tmp_path):
    # The extracts waited for load_roster: a refused file lost every executive's day, which
    # the APIs cannot give later.
    from social_leadership.tasks import load_roster_task

    roster = tmp_path / "roster.csv"
    write_roster(roster)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
        mp.setenv("SLW_ROSTER_PATH", str(roster))
        settings = load_settings()
        settings.ensure_dirs()
        load_roster_task()
        with SandboxServer(roster) as sandbox:
            connections = {
                name: value
                for name, value in sandbox.connection_env().items()
                if name in {f"AIRFLOW_CONN_SLW_{p.upper()}" for p in GOOD}
            }
            env = airflow_environment(
                tmp_path / "airflow_home", {**settings.as_env(), **connections}
            )
            for name in [n for n in env if n.startswith("AIRFLOW_CONN_SLW_")]:
                if name not in connections:
                    del env[name]
            roster.write_bytes(b"PK\x03\x04" + b"\0" * 64)  # a workbook saved as .csv
            clear_of_midnight(120)
            state = run_platform_metrics(env, settings.logs_dir)
    [(run_id,)] = metadata(tmp_path / "airflow_home", "select run_id from dag_run")
    tasks = dict(
        metadata(
            tmp_path / "airflow_home",
            f"select task_id, state from task_instance where run_id = '{run_id}'",
        )
    )

    assert state == "failed"
    assert (tasks["load_roster"], tasks["check_platforms"]) == ("failed", "failed")
    assert {tasks[f"{step}_{p}"] for step in ("extract", "load") for p in GOOD} == {"success"}
    audit = _audit(settings, run_id)
    assert {p: tuple(audit[p][:2]) for p in GOOD} == {p: ("loaded", len(ROSTER)) for p in GOOD}
