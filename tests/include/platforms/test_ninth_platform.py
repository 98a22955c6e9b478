"""A ninth platform needs its connector (the registry entry), a sandbox route and a seed
row, and nothing else: defined in this file, it is validated in the roster, extracted,
landed and loaded by the same task code the DAG runs, remembers its account ids between
runs, gets its own task pair in platform_metrics, and reaches the marts through the
unchanged dbt project (given its seed row)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import duckdb
import httpx
import pytest
from slw_testing import PARSE_SEED_VARIABLE

from social_leadership.dbt_runner import run_dbt
from social_leadership.demo.synthetic import synthetic_account_id, synthetic_metrics
from social_leadership.platforms.base import (
    AccountObservation,
    AccountStatus,
    ConnectionField,
    Connector,
    RawResponse,
    count_value,
    failed_response_observations,
    json_document,
    observation_without_counts,
)
from social_leadership.platforms.registry import SEED_PATH, register, seed_drift, unregister
from social_leadership.roster import load_roster, roster_columns
from social_leadership.sandbox.server import (
    Reply,
    SandboxRoute,
    SandboxServer,
    register_route,
    unregister_route,
)
from social_leadership.settings import DBT_PROJECT_DIR, REPO_ROOT, load_settings

NINTH = "ninth"
PROFILES_PATH = "/ninth/v1/profiles"
TOKEN = "ninth-token-4f2c"
SEED_ROW = "ninth,Ninth,api\n"
HANDLES = ["ada_ninth", "ben_ninth", "cy_ninth"]


# --- the registry entry: the connector -------------------------------------------------


class NinthConnector(Connector):
    """Asks ``/ninth/v1/profiles`` for 10 accounts a call, by id where an earlier landing
    taught it, else by name."""

    platform = NINTH
    display_name = "Ninth"
    public_base_url = "https://api.ninth.example"
    connection_fields = (ConnectionField("api_token", "password", "an API token", required=True),)
    handle_pattern = re.compile(r"^[a-z][a-z0-9_]{1,19}$")
    drops_at_sign = True
    batch_size = 10
    state_option = "account_ids"

    def __init__(
        self,
        base_url: str,
        api_token: str | None = None,
        *,
        account_ids: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(base_url, **options)
        self._token = self.keep_secret(api_token)
        self._ids = dict(account_ids or {})

    def build_request(self, handles: Sequence[str]) -> httpx.Request:
        params = {
            "ids": ",".join(self._ids[h] for h in handles if h in self._ids),
            "names": ",".join(h for h in handles if h not in self._ids),
        }
        return httpx.Request(
            "GET",
            self.base_url + PROFILES_PATH,
            params={key: value for key, value in params.items() if value},
            headers={"Authorization": f"Bearer {self._token}"},
        )

    @classmethod
    def parse(cls, response: RawResponse) -> list[AccountObservation]:
        failed = failed_response_observations(response)
        if failed is not None:
            return failed
        document = json_document(response.body)
        profiles = document.get("profiles") if isinstance(document, dict) else None
        if not isinstance(profiles, list):
            return [
                observation_without_counts(response, handle, AccountStatus.ERROR)
                for handle in response.requested_handles
            ]
        by_name = {p["name"]: p for p in profiles if isinstance(p, dict) and "name" in p}
        observations = []
        for handle in response.requested_handles:
            profile = by_name.get(handle)
            if profile is None:
                observations.append(
                    observation_without_counts(response, handle, AccountStatus.NOT_FOUND)
                )
                continue
            observations.append(
                AccountObservation(
                    platform=cls.platform,
                    account_handle=handle,
                    account_id=str(profile["id"]),
                    status=AccountStatus.OK,
                    followers=count_value(profile, "followers"),
                    following=count_value(profile, "following"),
                    posts=count_value(profile, "posts"),
                    observed_at=response.fetched_at,
                )
            )
        return observations


# --- its sandbox route ------------------------------------------------------------------


def _answer(server: SandboxServer, path: str, params: dict[str, list[str]], headers: Any) -> Reply:
    if headers.get("authorization") != f"Bearer {TOKEN}":
        return Reply(401, {"error": "unauthorized"})
    known = {entry[0]: entry for entry in server.known_accounts(NINTH).values()}
    by_id = {synthetic_account_id(NINTH, handle): handle for handle in known}
    wanted = [n for n in ",".join(params.get("names", [])).split(",") if n]
    wanted += [by_id[i] for i in ",".join(params.get("ids", [])).split(",") if i in by_id]
    day = server.clock().date()
    profiles = []
    for name in wanted:
        if name in known:
            followers, following, posts = synthetic_metrics(NINTH, name, day)
            profiles.append(
                {
                    "id": synthetic_account_id(NINTH, name),
                    "name": name,
                    "followers": followers,
                    "following": following,
                    "posts": posts,
                }
            )
    return Reply(200, {"profiles": profiles})


NINTH_ROUTE = SandboxRoute(
    NINTH,
    matches=lambda path, params: path == PROFILES_PATH,
    answer=_answer,
    budget=(100, 60),
    connection=lambda server: {"host": server.base_url, "password": TOKEN},
)


# --- the run ----------------------------------------------------------------------------


@pytest.fixture
def ninth() -> Iterator[None]:
    register(NinthConnector)
    register_route(NINTH_ROUTE)
    try:
        yield
    finally:
        unregister_route(NINTH)
        unregister(NINTH)


def _write_roster(path: Path) -> None:
    header = roster_columns()
    rows = [
        {"executive_id": f"exec-{n}", "full_name": f"Exec {n}", "title": "CEO"}
        | {"company": f"Ninth Co {n}", "country": "DE", "sector": "Energy"}
        | {"is_synthetic": "true", NINTH: f"@{handle}"}
        for n, handle in enumerate(HANDLES)
    ]
    rows.append(
        {"executive_id": "exec-bad", "full_name": "Bad", "company": "Bad Co", "country": "DE"}
        | {"sector": "Energy", "is_synthetic": "true", NINTH: "Not A Handle!"}
    )
    lines = [",".join(header)]
    lines += [",".join(row.get(column, "") for column in header) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _TaskInstance:
    def __init__(self, xcoms: dict[str, Any]) -> None:
        self.xcoms = xcoms

    def xcom_pull(self, task_ids: list[str]) -> list[Any]:
        return [self.xcoms.get(task_id) for task_id in task_ids]


@pytest.mark.usefixtures("ninth")
@pytest.mark.dbt
def test_a_ninth_platform_runs_through_the_pipeline_with_no_other_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from social_leadership.orchestration import platform_endpoint
    from social_leadership.tasks import (
        extract_task,
        load_roster_task,
        load_task,
        platform_rows_arrived,
    )

    roster_path = tmp_path / "roster.csv"
    _write_roster(roster_path)
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLW_ROSTER_PATH", str(roster_path))
    now = datetime.now(UTC)

    # The roster has its column and checks its handles with the connector's pattern.
    handles = load_roster_task()["handles"]
    assert handles == {NINTH: HANDLES}
    [error] = load_roster(roster_path).errors
    assert (error.row, error.column) == (5, NINTH)
    assert "not a valid ninth handle" in error.reason

    # A connection without host opts into the declared public endpoint.
    monkeypatch.setenv(f"AIRFLOW_CONN_SLW_{NINTH.upper()}", json.dumps({"conn_type": "http"}))
    assert platform_endpoint(NINTH).base_url == "https://api.ninth.example"

    with SandboxServer(roster_path, clock=lambda: now) as sandbox:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_SLW_{NINTH.upper()}",
            sandbox.connection_env()[f"AIRFLOW_CONN_SLW_{NINTH.upper()}"],
        )
        outcomes = []
        for run in ("manual__first", "manual__second"):
            context = {"run_id": run, "logical_date": now}
            extracted = extract_task(NINTH, handles[NINTH], context)
            outcomes.append(load_task(NINTH, extracted, context))
        queries = [parse_qs(query) for path, query in sandbox.request_log if path == PROFILES_PATH]

    assert [(o["status"], o["accounts_loaded"]) for o in outcomes] == [("loaded", 3)] * 2
    # The first run asked by name; the second by the ids the first landing taught.
    assert queries == [
        {"names": [",".join(HANDLES)]},
        {"ids": [",".join(synthetic_account_id(NINTH, h) for h in HANDLES)]},
    ]
    settings = load_settings()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select account_handle, account_status, followers, following, posts "
            "from raw.platform_metrics where platform = ? order by account_handle",
            [NINTH],
        ).fetchall()
    assert rows == [(h, "ok", *synthetic_metrics(NINTH, h, now.date())) for h in HANDLES]
    assert platform_rows_arrived({"ti": _TaskInstance({f"load_{NINTH}": outcomes[-1]})})

    # platform_metrics gets the platform's own task pair, wired like the others'.
    dag = DagBag(dag_folder=str(REPO_ROOT / "dags" / "platform_metrics.py")).dags[
        "platform_metrics"
    ]
    assert dag.get_task(f"load_{NINTH}").upstream_task_ids == {f"extract_{NINTH}"}
    assert f"load_{NINTH}" in dag.get_task("anything_loaded").upstream_task_ids

    # The seed row is the one dbt edit: without it the seed check names the platform ...
    assert any(f"{NINTH} is registered" in p for p in seed_drift(SEED_PATH))
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    seed = project / "seeds" / "platforms.csv"
    seed.write_text(seed.read_text(encoding="utf-8") + SEED_ROW, encoding="utf-8")
    assert seed_drift(seed) == []
    # ... and with it the unchanged models and tests build the platform into the marts.
    monkeypatch.setenv("SLW_DBT_PROJECT_DIR", str(project))
    monkeypatch.setenv("SLW_DBT_PROFILES_DIR", str(project))
    # dbt parses the copy itself: the shared parse (tests/conftest.py) would give the
    # unchanged seeds the repository project's paths.
    monkeypatch.delenv(PARSE_SEED_VARIABLE, raising=False)
    settings = load_settings()
    build = run_dbt(["build"], settings, log_path=settings.logs_dir / "dbt_build.log")
    assert build.errored == 0, build.failing_nodes
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        reach = con.execute(
            "select count(*) from marts.fct_executive_reach_daily where platform = ?", [NINTH]
        ).fetchone()
        name = con.execute(
            "select platform_name from marts.dim_platform where platform = ?", [NINTH]
        ).fetchone()
    assert reach == (len(HANDLES),)
    assert name == ("Ninth",)
